//! Knapsack selection benchmarks: time to a proven optimum against the greedy + LP-bound
//! baseline measured in the same run, on customers from `crv gen` (read from a store), the classic instance classes and a
//! marketing-like class.
//!
//! `cargo bench --bench select` runs 1e5 and 1e6 items; `CRV_BENCH_LARGE=1` adds 1e7.
//! Before timing, each instance prints one line: exact/greedy ratio, core size, states and
//! the greedy answer's gap to the optimum. A plain-substring filter skips (neither generates nor
//! reports) the instances none of whose benchmark IDs contain it. Figures and commands live in `benches/README.md`.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crv::kernel::TierScheme;
use crv::select::{SolveLimits, knapsack, knapsack_greedy, scale_costs};
use crv::synthetic::RowRng;
use crv::{ScoreParams, Store, Table};

/// Instance classes: Pisinger's classic ones with costs in 1..=10_000, and marketing-like.
#[derive(Debug, Clone, Copy)]
enum Class {
    Uncorrelated,
    Weakly,
    Strongly,
    SubsetSum,
    /// Lognormal CRVs (10% non-positive), heavy-tailed costs of 1..=50 units in cents.
    Marketing,
    /// As `Marketing`, with costs to the cent (no common divisor).
    MarketingCents,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Uncorrelated => "uncorrelated",
            Class::Weakly => "weakly",
            Class::Strongly => "strongly",
            Class::SubsetSum => "subset_sum",
            Class::Marketing => "marketing",
            Class::MarketingCents => "marketing_cents",
        }
    }
}

fn generate(class: Class, n: usize, seed: u64) -> (Vec<f32>, Vec<u64>) {
    let mut rng = RowRng::new(seed, 0);
    (0..n)
        .map(|_| match class {
            Class::Marketing => {
                let units = (1.0 / (1.0 - rng.uniform()).powf(1.0 / 1.2))
                    .min(50.0)
                    .floor();
                let crv = (3.0 + 1.4 * rng.normal_pair().0).exp();
                let crv = if rng.range(0, 9) == 0 {
                    -crv * 0.3
                } else {
                    crv
                };
                (crv as f32, units as u64 * 100)
            }
            _ => {
                let w = rng.range(1, 10_000);
                let v = match class {
                    Class::Uncorrelated => rng.range(1, 10_000),
                    Class::Weakly => (w + rng.range(0, 2_000)).saturating_sub(1_000).max(1),
                    Class::Strongly => w + 1_000,
                    _ => w,
                };
                (v as f32, w)
            }
        })
        .unzip()
}

fn capacity_at(values: &[f32], costs: &[u64], fraction: f64) -> u64 {
    let total: u64 = values
        .iter()
        .zip(costs)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, w)| w)
        .sum();
    (total as f64 * fraction) as u64
}

fn sizes() -> Vec<(usize, &'static str)> {
    let mut sizes = vec![(100_000, "1e5"), (1_000_000, "1e6")];
    if std::env::var_os("CRV_BENCH_LARGE").is_some_and(|v| v == "1") {
        sizes.push((10_000_000, "1e7"));
    }
    sizes
}

/// One line per instance: times of one exact and one greedy run, and what the exact run saw.
fn report(id: &str, values: &[f32], costs: &[u64], capacity: u64) {
    let limits = SolveLimits::default();
    let t = Instant::now();
    let exact = knapsack(values, costs, capacity, None, &limits);
    let exact_time = t.elapsed();
    let t = Instant::now();
    let greedy = knapsack_greedy(values, costs, capacity, None);
    let greedy_time = t.elapsed();
    let s = &exact.stats;
    println!(
        "{id}: exact {:.1} ms, greedy+LP {:.1} ms, ratio {:.2}; optimal {} gap {:.1e}; core {} \
         processed {} states {} (max {}); greedy gap to optimum {:.2e}; phases ms \
         pre {:.1} split {:.1} reduce {:.1} search {:.1} out {:.1}",
        ms(exact_time),
        ms(greedy_time),
        ms(exact_time) / ms(greedy_time),
        exact.optimal,
        exact.gap,
        s.core_items,
        s.core_processed,
        s.states,
        s.max_states,
        (exact.objective - greedy.objective) / exact.objective,
        ms(s.times.preprocess),
        ms(s.times.split),
        ms(s.times.reduce),
        ms(s.times.search),
        ms(s.times.output),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_class(c: &mut Criterion, class: Class, fractions: &[f64]) {
    bench_instances(c, class.name(), fractions, |n| generate(class, n, 42));
}

/// Customers from `crv gen` (seed 42) read from a store: CRV from the kernel at the default
/// parameters, the `cost` column in cents.
fn generated_customers(n: usize) -> (Vec<f32>, Vec<u64>) {
    let store = Store::open(common::generated_store(n as u64)).expect("bench store opens");
    let table = Table::score(
        Arc::new(store),
        ScoreParams::default(),
        TierScheme::default(),
    )
    .expect("generated stores score");
    let costs = scale_costs(table.store().numeric("cost").expect("cost column"), 100.0)
        .expect("generated costs scale")
        .into_wide();
    (table.crv().to_vec(), costs)
}

fn bench_instances(
    c: &mut Criterion,
    name: &str,
    fractions: &[f64],
    make: impl Fn(usize) -> (Vec<f32>, Vec<u64>),
) {
    let mut group = c.benchmark_group(format!("select/{name}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let filter = plain_filter();
    for (n, label) in sizes() {
        let id_of = |fraction: f64| format!("{label}/cap{:.0}", fraction * 100.0);
        let wanted = |fraction: f64| {
            filter.as_deref().is_none_or(|f| {
                ["exact", "greedy"]
                    .iter()
                    .any(|kind| format!("select/{name}/{kind}/{}", id_of(fraction)).contains(f))
            })
        };
        if !fractions.iter().any(|&f| wanted(f)) {
            continue;
        }
        let (values, costs) = make(n);
        for &fraction in fractions.iter().filter(|&&f| wanted(f)) {
            let capacity = capacity_at(&values, &costs, fraction);
            let id = id_of(fraction);
            report(&format!("select/{name}/{id}"), &values, &costs, capacity);
            let limits = SolveLimits::default();
            group.bench_function(BenchmarkId::new("exact", &id), |b| {
                b.iter(|| knapsack(black_box(&values), &costs, capacity, None, &limits))
            });
            group.bench_function(BenchmarkId::new("greedy", &id), |b| {
                b.iter(|| knapsack_greedy(black_box(&values), &costs, capacity, None))
            });
        }
    }
    group.finish();
}

/// The bench filter given on the command line when it is a plain substring (no regex
/// syntax), so that instances no benchmark ID matches are neither generated nor reported.
fn plain_filter() -> Option<String> {
    const TAKES_VALUE: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().enumerate().find(|(i, a)| {
        !a.starts_with('-') && (*i == 0 || !TAKES_VALUE.contains(&args[i - 1].as_str()))
    })?;
    let plain = !filter.1.contains(|c: char| "^$.*+?()[]{}|\\".contains(c));
    plain.then(|| filter.1.clone())
}

fn classic(c: &mut Criterion) {
    for class in [
        Class::Uncorrelated,
        Class::Weakly,
        Class::Strongly,
        Class::SubsetSum,
    ] {
        bench_class(c, class, &[0.05, 0.2, 0.5]);
    }
}

fn marketing(c: &mut Criterion) {
    bench_instances(c, "crv_gen", &[0.05, 0.2, 0.5], generated_customers);
    bench_class(c, Class::Marketing, &[0.05, 0.2, 0.5]);
    bench_class(c, Class::MarketingCents, &[0.05, 0.2, 0.5]);
}

criterion_group!(benches, classic, marketing);
criterion_main!(benches);
