//! Campaign optimisation with several resources and offers (`select::lagrange`): time to a
//! certified plan on a marketing-like campaign of 5 offers and 3 resources (money, call-centre
//! minutes, emails), one offer per customer, against the baseline measured in the same run:
//! the plan at the prices of one pricing pass (every customer's best offer by value, repaired),
//! which is what "solve the LP relaxation once and round" gives without the dual.
//!
//! `cargo bench --bench optimise` runs 1e5 and 1e6 customers; `CRV_BENCH_LARGE=1` adds 1e7;
//! `CRV_OPTIMISE_SIZES=2000,20000` runs those sizes instead (a quick check that it runs).
//! Before timing, each size prints one line: objective, bound, certified gap (the target is
//! [`TARGET_GAP`]), passes, and the baseline's value. The HiGHS comparison at 1e5 is
//! `benches/optimise_highs.py` (benches/README.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crv::select::lagrange::{
    Coefficients, Offer, Options, Outcome, PROOF_CORE_NODES, Problem, solve,
};
use crv::synthetic::RowRng;

/// The campaign's columns: per offer a value and three uses.
struct Instance {
    ids: Vec<u64>,
    values: Vec<Vec<f32>>,
    uses: Vec<Vec<Vec<f32>>>,
    limits: Vec<f64>,
}

const OFFERS: usize = 5;
const RESOURCES: usize = 3;

/// Per offer: value multiplier of the customer's base value, cost in money, call minutes,
/// emails.
const OFFER_SHAPES: [(f64, f64, f64, f64); OFFERS] = [
    (0.30, 8.0, 12.0, 0.0), // retention call
    (0.18, 4.0, 6.0, 0.0),  // courtesy call
    (0.06, 0.3, 0.0, 1.0),  // email coupon
    (0.10, 1.5, 0.0, 1.0),  // email + voucher
    (0.22, 5.0, 0.0, 0.0),  // direct mail
];

fn instance(customers: usize, seed: u64) -> Instance {
    let mut values: Vec<Vec<f32>> = (0..OFFERS).map(|_| Vec::with_capacity(customers)).collect();
    let mut uses: Vec<Vec<Vec<f32>>> = (0..OFFERS)
        .map(|_| {
            (0..RESOURCES)
                .map(|_| Vec::with_capacity(customers))
                .collect()
        })
        .collect();
    for i in 0..customers {
        let mut rng = RowRng::new(seed, i as u64);
        let (z, w) = rng.normal_pair();
        let base = (4.0 + 1.1 * z).exp();
        for (o, &(share, money, minutes, emails)) in OFFER_SHAPES.iter().enumerate() {
            let response = (0.5 + rng.uniform()) * (1.0 + 0.2 * w);
            values[o].push((base * share * response - money) as f32);
            let jitter = 0.75 + 0.5 * rng.uniform();
            uses[o][0].push((money * jitter) as f32);
            uses[o][1].push((minutes * jitter).round() as f32);
            uses[o][2].push(emails as f32);
        }
    }
    let n = customers as f64;
    Instance {
        ids: (1..=customers as u64).collect(),
        values,
        uses,
        limits: vec![1.2 * n, 1.5 * n, 0.3 * n],
    }
}

impl Instance {
    fn problem(&self) -> Problem<'_> {
        Problem {
            ids: &self.ids,
            limits: self.limits.clone(),
            offers: (0..OFFERS)
                .map(|o| Offer {
                    value: Coefficients::PerCustomer(&self.values[o]),
                    uses: self.uses[o]
                        .iter()
                        .map(|u| Coefficients::PerCustomer(u))
                        .collect(),
                    eligible: None,
                    min: 0,
                    max: None,
                })
                .collect(),
        }
    }
}

impl Instance {
    /// Writes the instance (`instance_N.csv`: per customer, per offer its value and uses) and
    /// crv's answer (`crv_N.json`) for `benches/optimise_highs.py`.
    fn dump(
        &self,
        dir: &std::path::Path,
        customers: usize,
        plan: &crv::select::lagrange::Plan,
        time: Duration,
    ) {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(dir.join(format!("instance_{customers}.csv"))).expect("dump dir"),
        );
        for i in 0..self.ids.len() {
            let row: Vec<String> = (0..OFFERS)
                .flat_map(|o| {
                    std::iter::once(self.values[o][i])
                        .chain((0..RESOURCES).map(move |k| self.uses[o][k][i]))
                })
                .map(|v| v.to_string())
                .collect();
            writeln!(out, "{}", row.join(",")).expect("dump");
        }
        let answer = serde_json::json!({
            "customers": customers, "offers": OFFERS, "resources": RESOURCES,
            "limits": self.limits, "objective": plan.objective, "upper_bound": plan.upper_bound,
            "gap": plan.gap, "seconds": time.as_secs_f64(),
        });
        std::fs::write(
            dir.join(format!("crv_{customers}.json")),
            answer.to_string(),
        )
        .expect("dump");
    }
}

/// The certified gap the solve stops at by default: the target of the 1e7 benchmark.
const TARGET_GAP: f64 = 1e-6;

/// The gap to stop at: `CRV_OPTIMISE_GAP` (e.g. `0` to search until the plan is proven
/// optimal, as for the comparison with HiGHS's exact MIP), else [`TARGET_GAP`].
fn target_gap() -> f64 {
    std::env::var("CRV_OPTIMISE_GAP").map_or(TARGET_GAP, |gap| {
        gap.parse()
            .ok()
            .filter(|gap: &f64| *gap >= 0.0)
            .expect("CRV_OPTIMISE_GAP: a gap >= 0")
    })
}

/// The full method, or (`max_passes` 1) the baseline: one pricing pass and the repair, no
/// core search.
fn options(max_passes: usize) -> Options {
    Options {
        target_gap: target_gap(),
        max_passes,
        time_limit: None,
        core_nodes: match max_passes {
            1 => 0,
            _ if target_gap() == 0.0 => PROOF_CORE_NODES,
            _ => Options::default().core_nodes,
        },
        ..Options::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut sizes = vec![100_000, 1_000_000];
    if std::env::var_os("CRV_BENCH_LARGE").is_some() {
        sizes.push(10_000_000);
    }
    if let Ok(list) = std::env::var("CRV_OPTIMISE_SIZES") {
        sizes = list
            .split(',')
            .map(|size| {
                size.trim()
                    .parse()
                    .expect("CRV_OPTIMISE_SIZES: customer counts")
            })
            .collect();
    }
    let mut group = c.benchmark_group("optimise");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for customers in sizes {
        let instance = instance(customers, 7);
        let problem = instance.problem();
        let started = Instant::now();
        let Outcome::Plan(plan) = solve(&problem, &options(400)) else {
            panic!("the bench campaign is feasible");
        };
        let time = started.elapsed();
        let started = Instant::now();
        let Outcome::Plan(baseline) = solve(&problem, &options(1)) else {
            panic!("the bench campaign is feasible");
        };
        let baseline_time = started.elapsed();
        println!(
            "optimise/{customers}: objective {:.2}, bound {:.2}, gap {:.3e} ({} target {:e}{}), \
             {} passes, {:.2?} | one pass + repair: objective {:.2}, gap {:.3e}, {:.2?} | time ratio {:.1}",
            plan.objective,
            plan.upper_bound,
            plan.gap,
            if plan.gap <= target_gap() || plan.optimal {
                "meets"
            } else {
                "MISSES"
            },
            target_gap(),
            if plan.optimal { ", proven optimal" } else { "" },
            plan.passes,
            time,
            baseline.objective,
            baseline.gap,
            baseline_time,
            time.as_secs_f64() / baseline_time.as_secs_f64()
        );
        if let Some(dir) = std::env::var_os("CRV_OPTIMISE_DUMP") {
            instance.dump(std::path::Path::new(&dir), customers, &plan, time);
        }
        group.bench_function(BenchmarkId::new("certified", customers), |b| {
            b.iter(|| black_box(solve(&problem, &options(400))))
        });
        group.bench_function(BenchmarkId::new("one_pass", customers), |b| {
            b.iter(|| black_box(solve(&problem, &options(1))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
