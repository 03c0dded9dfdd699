//! The simulation through the library on real store files: a plain scenario is `crv select`
//! exactly, incremental values match the scalar reference, sweeps expand to their product, and
//! the frontier is monotone and ends at the unconstrained optimum.

use std::path::PathBuf;

use std::sync::Arc;

use crv::campaign::simulate::{
    self, FrontierSpec, Objective, Scenario, ScenarioSet, ScenarioValues, SimulateOptions,
    kernel_params, prepare,
};
use crv::campaign::{CampaignSpec, SelectionRequest};
use crv::cancel::Cancel;
use crv::kernel::scenario::delta_tolerance;
use crv::kernel::{CrvInputs, TierScheme, scenario_scalar};
use crv::select::{SolveLimits, as_written};
use crv::{ScoreParams, Store, Table};

/// `path`'s customers as a table (scored with the default parameters).
fn table_of(path: &std::path::Path) -> Table {
    let store = Arc::new(Store::open(path).unwrap());
    Table::score(store, ScoreParams::default(), TierScheme::default()).unwrap()
}

/// A generated store of `customers` customers as a table, kept alive with its directory.
fn generated_store(customers: u64) -> (tempfile::TempDir, Table) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    let path = dir.path().join("customers.crv");
    crv::synthetic::write_customers_csv(std::fs::File::create(&csv).unwrap(), customers, 7)
        .unwrap();
    crv::store::import(&csv, &path, &mut |_| {}).unwrap();
    let table = table_of(&path);
    (dir, table)
}

/// A small store with a response-rate column `p` from CSV text, as a table.
fn store_from_csv(text: &str) -> (tempfile::TempDir, Table) {
    let dir = tempfile::tempdir().unwrap();
    let csv: PathBuf = dir.path().join("customers.csv");
    let path = dir.path().join("customers.crv");
    std::fs::write(&csv, text).unwrap();
    crv::store::import(&csv, &path, &mut |_| {}).unwrap();
    let table = table_of(&path);
    (dir, table)
}

/// `scenario`'s values over `table`'s customers, prepared as `simulate` prepares them (never
/// cancelled).
fn prepared(
    table: &Table,
    inputs: &CrvInputs<'_>,
    scenario: &Scenario,
    file: &str,
) -> ScenarioValues {
    let params = kernel_params(table.store(), scenario, file).unwrap();
    prepare(table, inputs, scenario, &params, file, &Cancel::default()).unwrap()
}

fn set(json: &str) -> ScenarioSet {
    ScenarioSet::parse(json, "test.json").unwrap()
}

#[test]
fn a_plain_crv_scenario_reproduces_crv_select_exactly() {
    let (_dir, table) = generated_store(20_000);
    let store = table.store();
    let scored = &table;
    let inputs = CrvInputs::from_store(store).unwrap();
    for budget in [0.0, 777.77, 5_000.0, 1e9] {
        let spec = CampaignSpec {
            budget,
            ..CampaignSpec::default()
        };
        let expected = SelectionRequest {
            campaign: spec,
            params: ScoreParams::default(),
        }
        .bind(scored)
        .and_then(|selection| selection.select(scored))
        .unwrap();
        let set = set(&format!(
            r#"{{"scenarios": [{{"budget": {budget}, "objective": "crv"}}]}}"#
        ));
        let scenario = &set.scenarios[0];
        let values = prepared(&table, &inputs, scenario, &set.file);
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(values.objective(Objective::Crv)), bits(scored.crv()));
        let targets =
            simulate::solve_scenario(store, &values, scenario, &SolveLimits::default(), &set.file)
                .unwrap();
        let (got, want) = (&targets.selection, &expected.selection);
        assert_eq!(got.rows, want.rows, "budget {budget}");
        assert_eq!(got.objective.to_bits(), want.objective.to_bits());
        assert_eq!(got.upper_bound.to_bits(), want.upper_bound.to_bits());
        assert_eq!(targets.total_cost, expected.total_cost);

        let row = &simulate::simulate(&table, &set, &SimulateOptions::default())
            .unwrap()
            .results[0];
        assert_eq!(row.contacted, want.rows.len() as u64);
        assert_eq!(row.spend, expected.total_cost);
        assert_eq!(row.total_crv, scored.totals().crv_sum());
        assert!((row.targets_crv - want.objective).abs() <= 1e-9 * want.objective.abs().max(1.0));
        assert_eq!(row.incremental_value, 0.0);
        assert_eq!(row.optimal, want.optimal);
        let tiers: u64 = row.targets_A + row.targets_B + row.targets_C + row.targets_N;
        assert_eq!(tiers, row.contacted);
        assert_eq!(row.targets_N, 0, "CRV <= 0 is never worth taking");
    }
}

#[test]
fn incremental_values_match_the_scalar_reference() {
    let (_dir, table) = generated_store(10_000);
    let store = table.store();
    let inputs = CrvInputs::from_store(store).unwrap();
    let set = set(
        r#"{"scenarios": [{"discount": 0.12, "horizon": 8, "margin_multiplier": 1.1,
            "retention_shift": -0.02, "retention_uplift": 0.05, "margin_uplift": 0.03,
            "response_rate": 0.3, "budget": 2000}]}"#,
    );
    let scenario = &set.scenarios[0];
    let values = prepared(&table, &inputs, scenario, &set.file);
    let (mut crv, mut delta) = (vec![0.0; inputs.len()], vec![0.0; inputs.len()]);
    let params = kernel_params(store, scenario, &set.file).unwrap();
    scenario_scalar(&inputs, &params, &mut crv, &mut delta);
    let lanes = values.objective(Objective::Incremental);
    let cost = inputs.retention_cost.unwrap();
    for row in 0..inputs.len() {
        let tolerance = delta_tolerance(
            inputs.margin[row],
            cost[row],
            inputs.retention[row],
            &params,
            0.3,
        );
        let error = (f64::from(lanes[row]) - f64::from(delta[row])).abs();
        assert!(
            error <= tolerance,
            "row {row}: {} vs {}",
            lanes[row],
            delta[row]
        );
    }
    let row = &simulate::simulate(&table, &set, &SimulateOptions::default())
        .unwrap()
        .results[0];
    let targets =
        simulate::solve_scenario(store, &values, scenario, &SolveLimits::default(), &set.file)
            .unwrap();
    let reference: f64 = targets
        .selection
        .rows
        .iter()
        .map(|&r| f64::from(delta[r]))
        .sum();
    assert!((row.incremental_value - reference).abs() <= 1e-4 * reference.abs());
    let objective = targets.selection.objective;
    assert!((row.incremental_value - objective).abs() <= 1e-9 * objective);
    assert!(row.spend <= 2000.0);
    let roi = row.roi.unwrap();
    assert!((roi - (row.incremental_value - row.spend) / row.spend).abs() < 1e-12);
}

#[test]
fn a_sweep_expands_to_the_right_product_in_order() {
    let (_dir, table) = generated_store(2_000);
    let set = set(r#"{"scenarios": [{"name": "first"}],
            "sweep": {"discount": [0.08, 0.1, 0.12], "budget": [100, 400],
                      "retention_uplift": [0.0, 0.05]}}"#);
    let results = simulate::simulate(&table, &set, &SimulateOptions::default())
        .unwrap()
        .results;
    assert_eq!(results.len(), 1 + 3 * 2 * 2);
    assert_eq!(results[0].name, "first");
    let mut expected = Vec::new();
    for budget in [100.0, 400.0] {
        for discount in [0.08, 0.1, 0.12] {
            for uplift in [0.0, 0.05] {
                expected.push((budget, discount, uplift));
            }
        }
    }
    let got: Vec<(f64, f64, f64)> = results[1..]
        .iter()
        .map(|r| (r.budget.unwrap(), r.discount, r.retention_uplift))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        results[1].name,
        "budget=100 discount=0.08 retention_uplift=0.0"
    );
    assert_eq!(results[1].objective, Objective::Crv);
    assert_eq!(results[2].objective, Objective::Incremental);
    assert!(results.iter().all(|r| r.scored == 2_000 && r.optimal));
}

#[test]
fn the_frontier_is_non_decreasing_and_ends_at_the_unconstrained_optimum() {
    let (_dir, table) = generated_store(20_000);
    let store = table.store();
    let set = set(r#"{"scenarios": [{"name": "plain", "budget": 10},
            {"name": "offer", "retention_uplift": 0.05, "response_rate": 0.4,
             "cost_multiplier": 2, "where": "segment != basic"}]}"#);
    let options = SimulateOptions {
        frontier: Some(FrontierSpec {
            scenario: Some("offer".to_owned()),
            points: 25,
        }),
        ..SimulateOptions::default()
    };
    let simulation = simulate::simulate(&table, &set, &options).unwrap();
    let frontier = simulation.frontier.unwrap();
    assert_eq!(frontier.scenario, "offer");
    assert_eq!(frontier.points.len(), 25);
    assert_eq!(frontier.points[0].budget, 0.0);
    for pair in frontier.points.windows(2) {
        assert!(pair[1].budget > pair[0].budget);
        // Sums of the same f32 values in f64 may differ in the last bits between two optimal sets.
        assert!(
            pair[1].objective >= pair[0].objective * (1.0 - 1e-12),
            "{:?} then {:?}",
            pair[0],
            pair[1]
        );
        assert!(pair[1].spend <= pair[1].budget);
    }
    assert!(frontier.points.iter().all(|p| p.optimal));

    // The unconstrained optimum: every eligible customer with a positive delta, which the
    // `offer` row (no budget: unlimited) selects too.
    let inputs = CrvInputs::from_store(store).unwrap();
    let scenario = &set.scenarios[1];
    let values = prepared(&table, &inputs, scenario, &set.file);
    let eligible = values.eligible.as_ref().unwrap();
    let delta = values.objective(Objective::Incremental);
    let optimum: f64 = (0..delta.len())
        .filter(|&row| eligible[row] && delta[row] > 0.0)
        .map(|row| f64::from(delta[row]))
        .sum();
    let last = frontier.points.last().unwrap();
    assert!(
        (last.objective - optimum).abs() <= 1e-9 * optimum,
        "{} vs {optimum}",
        last.objective
    );
    let total_cost: f64 = (0..delta.len())
        .filter(|&row| eligible[row])
        .map(|row| values.units.get(row) as f64 / 100.0)
        .sum();
    assert!((last.budget - total_cost).abs() < 1e-6 * total_cost);
    let row = &simulation.results[1];
    assert!((row.incremental_value - optimum).abs() <= 1e-9 * optimum);
    assert_eq!(row.budget, None);
    let knee = frontier.knee.unwrap();
    assert!(knee > 0 && knee < 24);
}

#[test]
fn a_response_rate_column_is_read_and_checked() {
    let header = "customer_id,margin,retention,cost,p\n";
    let (_dir, table) = store_from_csv(&format!(
        "{header}1,100,0.5,1,0.5\n2,50,0.8,1,1\n3,10,0.2,1,0\n"
    ));
    let set = set(
        r#"{"scenarios": [{"name": "by column", "retention_uplift": 0.1, "response_rate": "p"},
                          {"name": "constant", "retention_uplift": 0.1, "response_rate": 0.5}]}"#,
    );
    let results = simulate::simulate(&table, &set, &SimulateOptions::default())
        .unwrap()
        .results;
    // Customer 3 responds with probability 0: no incremental value, never contacted.
    assert_eq!(results[0].contacted, 2);
    assert_eq!(results[1].contacted, 3);

    let (_dir, table) = store_from_csv(&format!("{header}1,100,0.5,1,0.5\n2,50,0.8,1,1.5\n"));
    let error = simulate::simulate(&table, &set, &SimulateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("scenario `by column`, field `response_rate`")
            && error.contains("row 1: 1.5"),
        "{error}"
    );
}

#[test]
fn store_dependent_errors_name_the_scenario_and_field() {
    let (_dir, table) = generated_store(500);
    for (json, fragment) in [
        (
            r#"{"scenarios": [{"name": "a", "cost": "nope"}]}"#,
            "scenario `a`, field `cost`",
        ),
        (
            r#"{"scenarios": [{"cost": "segment"}]}"#,
            "scenario `#1`, field `cost`",
        ),
        (
            r#"{"scenarios": [{"name": "b", "retention_uplift": 0.1, "response_rate": "nope"}]}"#,
            "scenario `b`, field `response_rate`",
        ),
        (
            r#"{"scenarios": [{"name": "c", "where": "segmnt = gold"}]}"#,
            "scenario `c`, field `where`: at position 1: unknown column `segmnt`",
        ),
    ] {
        let error = simulate::simulate(&table, &set(json), &SimulateOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("test.json: ") && error.contains(fragment),
            "{error}"
        );
    }
    let options = SimulateOptions {
        frontier: Some(FrontierSpec {
            scenario: Some("missing".to_owned()),
            points: 10,
        }),
        ..SimulateOptions::default()
    };
    let error = simulate::simulate(&table, &set(r#"{"scenarios": [{}]}"#), &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no scenario is named `missing`"), "{error}");
}

#[test]
fn a_scenario_spends_its_real_multiplied_cost_within_the_budget() {
    let mut csv = String::from("customer_id,margin,retention,cost\n");
    let fine = [0.004, 1.005, 0.333, 2.675, 0.0049];
    for i in 1..=2000u32 {
        let margin = 5.0 + f64::from(i * 37 % 751) / 10.0;
        let retention = 0.5 + f64::from(i * 13 % 450) / 1000.0;
        let cost = fine[i as usize % fine.len()];
        csv.push_str(&format!("{i},{margin:.2},{retention:.4},{cost}\n"));
    }
    let (_dir, table) = store_from_csv(&csv);
    let store = table.store();
    let inputs = CrvInputs::from_store(store).unwrap();
    let costs = store.numeric("cost").unwrap();
    for (scale, multiplier) in [(1.0, 1.0), (100.0, 1.5), (0.01, 1.0), (1e4, 0.7)] {
        let set = set(&format!(
            r#"{{"scenarios": [{{"budget": 100, "objective": "crv", "resource_scale": {scale},
                "cost_multiplier": {multiplier}}}]}}"#
        ));
        let scenario = &set.scenarios[0];
        let values = prepared(&table, &inputs, scenario, &set.file);
        let targets =
            simulate::solve_scenario(store, &values, scenario, &SolveLimits::default(), &set.file)
                .unwrap();
        // Each cost as written: its shortest decimal, as crv writes it.
        let written = |r: usize| as_written(costs[r]) * multiplier;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        let real: f64 = targets.selection.rows.iter().map(|&r| written(r)).sum();
        assert!(!targets.selection.rows.is_empty());
        assert!(real <= 100.0 + 1e-9, "scale {scale}: spent {real} of 100");
        assert!(targets.total_cost <= 100.0, "scale {scale}");
        assert!(
            close(targets.total_cost, real),
            "{} != {real}",
            targets.total_cost
        );
        let options = SimulateOptions {
            frontier: Some(FrontierSpec {
                scenario: None,
                points: 5,
            }),
            ..SimulateOptions::default()
        };
        let simulation = simulate::simulate(&table, &set, &options).unwrap();
        assert_eq!(
            simulation.results[0].spend, targets.total_cost,
            "scale {scale}"
        );
        // The frontier's spend is real too: at its last budget every positive customer, whose
        // written costs sum to the last point's spend.
        let frontier = simulation.frontier.unwrap();
        let values = values.objective(Objective::Crv);
        let everyone: f64 = (0..costs.len())
            .filter(|&r| values[r] > 0.0)
            .map(written)
            .sum();
        let last = frontier.points.last().unwrap().spend;
        assert!(close(last, everyone), "scale {scale}: {last} != {everyone}");
        for point in &frontier.points {
            assert!(point.spend <= point.budget + 1e-9, "{point:?}");
        }
    }
}

#[test]
fn a_scenario_whose_values_are_not_finite_is_an_error_naming_it_and_its_field() {
    let (_dir, table) = generated_store(2_000);
    for (json, field, value) in [
        (
            r#"{"scenarios": [{"name": "huge", "budget": 100, "margin_multiplier": 1e38}]}"#,
            "scenario `huge`, field `margin_multiplier`",
            "CRV inf",
        ),
        (
            r#"{"scenarios": [{"name": "forever", "budget": 100, "discount": 0,
                "horizon": "inf", "retention_shift": -0.5, "retention_uplift": 1}]}"#,
            "scenario `forever`, field `retention_uplift`",
            "expected incremental value inf",
        ),
    ] {
        let message = simulate::simulate(&table, &set(json), &SimulateOptions::default())
            .unwrap_err()
            .to_string();
        for fragment in ["test.json", field, value, "customer "] {
            assert!(
                message.contains(fragment),
                "`{fragment}` not in `{message}`"
            );
        }
    }
}
