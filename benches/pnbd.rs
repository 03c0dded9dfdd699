//! The Pareto/NBD log-likelihood with its analytic gradient, per history, against two
//! baselines in the same run: the value alone, and the central finite-difference gradient a
//! fit without analytic derivatives would pay (8 more values). Histories: 100,000 drawn from
//! the model at the CDNOW estimates (ages 27-39 weeks, as in CDNOW's cohort), nearly all
//! distinct. After criterion, a short timing loop prints medians, ns per history and ratios.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use crv::btyd::pnbd::ParetoNbd;
use crv::btyd::{History, PurchaseModel};
use crv::synthetic::rng::RowRng;

const HISTORIES: u64 = 100_000;
/// Repetitions of the manual timing loop whose median is printed.
const REPEATS: usize = 7;
/// Step of the finite differences in the log-parameters.
const STEP: f64 = 1e-5;

const CDNOW: ParetoNbd = ParetoNbd {
    r: 0.5534,
    alpha: 10.5802,
    s: 0.6061,
    beta: 11.6562,
};

fn analytic(model: &ParetoNbd, histories: &[History]) -> (f64, [f64; 4]) {
    let mut total = (0.0, [0.0; 4]);
    for &history in histories {
        let (ll, gradient) = model.log_likelihood(history);
        total.0 += ll;
        for (sum, g) in total.1.iter_mut().zip(gradient) {
            *sum += g;
        }
    }
    total
}

fn value_only(model: &ParetoNbd, histories: &[History]) -> f64 {
    histories
        .iter()
        .map(|&history| model.log_likelihood_value(history))
        .sum()
}

fn finite_differences(model: &ParetoNbd, histories: &[History]) -> (f64, [f64; 4]) {
    let shifted: Vec<[ParetoNbd; 2]> = (0..4)
        .map(|k| {
            [STEP, -STEP].map(|step| {
                let mut params = model.params();
                params[k] *= f64::exp(step);
                ParetoNbd::from_params(params)
            })
        })
        .collect();
    let mut total = (0.0, [0.0; 4]);
    for &history in histories {
        total.0 += model.log_likelihood_value(history);
        for (k, [up, down]) in shifted.iter().enumerate() {
            total.1[k] += (up.log_likelihood_value(history) - down.log_likelihood_value(history))
                / (2.0 * STEP);
        }
    }
    total
}

fn main() {
    let histories: Vec<History> = (0..HISTORIES)
        .map(|row| {
            let mut rng = RowRng::new(42, row);
            let age = 27.0 + 12.0 * rng.uniform();
            CDNOW.draw_history(&mut rng, age)
        })
        .collect();
    let repeat_buyers = histories.iter().filter(|h| h.frequency > 0.0).count();

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = criterion.benchmark_group("pnbd");
    group.bench_function("log_likelihood_gradient/100k", |b| {
        b.iter(|| analytic(black_box(&CDNOW), &histories))
    });
    group.bench_function("log_likelihood_value/100k", |b| {
        b.iter(|| value_only(black_box(&CDNOW), &histories))
    });
    group.bench_function("finite_difference_gradient/100k", |b| {
        b.iter(|| finite_differences(black_box(&CDNOW), &histories))
    });
    group.finish();
    criterion.final_summary();

    let gradient = common::median_seconds(REPEATS, || {
        black_box(analytic(black_box(&CDNOW), &histories));
    });
    let value = common::median_seconds(REPEATS, || {
        black_box(value_only(black_box(&CDNOW), &histories));
    });
    let differences = common::median_seconds(REPEATS, || {
        black_box(finite_differences(black_box(&CDNOW), &histories));
    });
    let per_history = |seconds: f64| seconds * 1e9 / HISTORIES as f64;
    println!(
        "\npnbd: {HISTORIES} histories ({repeat_buyers} repeat buyers), one thread; medians of {REPEATS}:"
    );
    println!(
        "  log-likelihood + analytic gradient {:>8.1} ns/history",
        per_history(gradient)
    );
    println!(
        "  log-likelihood value only          {:>8.1} ns/history",
        per_history(value)
    );
    println!(
        "  value + central differences        {:>8.1} ns/history",
        per_history(differences)
    );
    println!("  differences / analytic = {:.2}", differences / gradient);
    println!("  analytic / value only = {:.2}", gradient / value);
}
