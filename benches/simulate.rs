//! Batch simulation benchmarks on generated customers read from a store:
//!
//! - `scoring`: 100 scenarios (discount x horizon x retention uplift, every one with an uplift
//!   or an adjustment to evaluate), scoring only: the fused pass (`kernel::score_scenarios` over
//!   all 100) against 100 separate passes of the same kernel, one scenario each, in the same
//!   run; prints the ratio. 1e6 customers, and 1e7 with `CRV_BENCH_LARGE=1`.
//! - `with_selection/1m`: `simulate::simulate` of 100 scenarios (discount x budget x uplift),
//!   each with its exact selection.
//! - `frontier/1m`: one scenario's 50-point frontier (`prepare` + `frontier::trace`).
//!
//! Figures and commands live in `benches/README.md`.

mod common;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use crv::campaign::simulate::{self, ScenarioSet, SimulateOptions, frontier};
use crv::kernel::{self, CrvInputs, ScenarioParams, TierScheme};
use crv::{ScoreParams, Store, Table};

/// The 100 scoring scenarios: 10 discounts x 2 horizons x 5 uplifts.
const SCORING_SWEEP: &str = r#"{"sweep": {
    "discount": [0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.13, 0.14, 0.15],
    "horizon": [5, 10],
    "retention_uplift": [0.0, 0.02, 0.04, 0.06, 0.08],
    "margin_multiplier": [1.05],
    "response_rate": [0.3]
}}"#;

fn scoring(criterion: &mut Criterion, rows: u64, id: &str) {
    let store = Store::open(common::generated_store(rows)).expect("bench store opens");
    let inputs = CrvInputs::from_store(&store).expect("generated stores have the CRV columns");
    let set = ScenarioSet::parse(SCORING_SWEEP, "bench").expect("the sweep parses");
    let params: Vec<ScenarioParams<'_>> = set
        .scenarios
        .iter()
        .map(|scenario| simulate::kernel_params(&store, scenario, "bench").expect("binds"))
        .collect();
    assert_eq!(params.len(), 100);
    let started = SystemTime::now();
    let mut group = criterion.benchmark_group("simulate");
    group.bench_function(format!("fused_100/{id}"), |b| {
        b.iter(|| kernel::score_scenarios(&inputs, black_box(&params)))
    });
    group.bench_function(format!("separate_100/{id}"), |b| {
        b.iter(|| {
            for scenario in &params {
                black_box(kernel::score_scenarios(
                    &inputs,
                    std::slice::from_ref(scenario),
                ));
            }
        })
    });
    group.finish();
    common::print_ratio(
        "simulate",
        &format!("separate_100/{id}"),
        &format!("fused_100/{id}"),
        started,
    );
}

/// 100 scenarios with selection: 5 discounts x 4 budgets x 5 uplifts, budgets 2% to 20% of the
/// total contact cost.
fn selection_sweep(store: &Store) -> ScenarioSet {
    let total: f64 = store
        .numeric("cost")
        .expect("generated stores have a cost column")
        .iter()
        .map(|&c| f64::from(c))
        .sum();
    let budgets: Vec<String> = [0.02, 0.05, 0.1, 0.2]
        .iter()
        .map(|share| format!("{:.0}", total * share))
        .collect();
    let json = format!(
        r#"{{"sweep": {{"discount": [0.06, 0.08, 0.10, 0.12, 0.14], "budget": [{}],
            "retention_uplift": [0.0, 0.02, 0.04, 0.06, 0.08], "response_rate": [0.3]}}}}"#,
        budgets.join(", ")
    );
    ScenarioSet::parse(&json, "bench").expect("the sweep parses")
}

/// `rows` generated customers as a table (scored with the default parameters).
fn generated_table(rows: u64) -> Table {
    let store = Store::open(common::generated_store(rows)).expect("bench store opens");
    Table::score(
        std::sync::Arc::new(store),
        ScoreParams::default(),
        TierScheme::default(),
    )
    .expect("generated stores score")
}

fn with_selection(criterion: &mut Criterion) {
    let table = generated_table(1_000_000);
    let set = selection_sweep(table.store());
    assert_eq!(set.scenarios.len(), 100);
    let options = SimulateOptions::default();
    let simulation = simulate::simulate(&table, &set, &options).expect("the sweep runs");
    let optimal = simulation.results.iter().filter(|r| r.optimal).count();
    let slowest = simulation
        .results
        .iter()
        .map(|r| r.time_ms)
        .fold(0.0, f64::max);
    println!(
        "with_selection/1m: {optimal} of 100 selections proven optimal; fused scoring pass \
         {:.1} ms; slowest scenario {slowest:.1} ms",
        simulation.scoring_time.as_secs_f64() * 1e3
    );
    let mut group = criterion.benchmark_group("simulate");
    group.bench_function("with_selection/1m", |b| {
        b.iter(|| simulate::simulate(&table, black_box(&set), &options))
    });
    group.finish();
}

fn frontier_1m(criterion: &mut Criterion) {
    let table = generated_table(1_000_000);
    let store = table.store();
    let inputs = CrvInputs::from_store(store).expect("generated stores have the CRV columns");
    let set = ScenarioSet::parse(
        r#"{"scenarios": [{"retention_uplift": 0.05, "response_rate": 0.3}]}"#,
        "bench",
    )
    .expect("the scenario parses");
    let scenario = &set.scenarios[0];
    let params = simulate::kernel_params(store, scenario, "bench").expect("binds");
    let limits = SimulateOptions::default().limits;
    let run = || {
        let values = simulate::prepare(&table, &inputs, scenario, &params, "bench", &limits.cancel)
            .expect("prepares");
        frontier::trace(
            values.objective(scenario.objective),
            &values.units,
            values.eligible.as_deref(),
            crv::campaign::RealCosts {
                column: store
                    .numeric(&scenario.cost)
                    .expect("the cost column is numeric"),
                multiplier: scenario.cost_multiplier,
            },
            frontier::DEFAULT_POINTS,
            scenario.resource_scale,
            &limits,
        )
        .expect("nothing cancels the bench")
    };
    let points = run();
    println!(
        "frontier/1m: {} points, {} proven optimal, last objective {:.2}",
        points.len(),
        points.iter().filter(|p| p.optimal).count(),
        points.last().expect("50 points").objective
    );
    let mut group = criterion.benchmark_group("simulate");
    group.bench_function("frontier/1m", |b| b.iter(run));
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    scoring(&mut criterion, 1_000_000, "1m");
    if std::env::var_os("CRV_BENCH_LARGE").is_some() {
        scoring(&mut criterion, 10_000_000, "10m");
    }
    with_selection(&mut criterion);
    frontier_1m(&mut criterion);
    criterion.final_summary();
}
