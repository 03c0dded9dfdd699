//! Pareto/NBD, in two parts.
//!
//! The log-likelihood with its analytic gradient, per history, against two baselines in the
//! same run: the value alone, and the central finite-difference gradient a fit without
//! analytic derivatives would pay (8 more values). Histories: 100,000 drawn from the model at
//! the CDNOW estimates (ages 27-39 weeks, as in CDNOW's cohort), nearly all distinct. After
//! criterion, a short timing loop prints medians, ns per history and ratios.
//!
//! The whole fit (compress, maximum likelihood, standard errors) of 1e6 customers drawn from
//! the model at the CDNOW estimates in CDNOW's design (first purchases over the first 12
//! weeks, observed to week 78, recency rounded down to a whole day as a purchase log gives
//! it), timed by criterion and a manual loop; then `benches/lifetimes_pnbd.py` fits lifetimes'
//! `ParetoNBDFitter` to the first 1e5 of those customers (1e6 takes lifetimes minutes), crv
//! fits the same 1e5 in this run, and the ratio is printed (skipped when python3 cannot import
//! lifetimes, or with CRV_BENCH_LIFETIMES=0).

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use crv::btyd::fit::{PurchaseData, fit_purchase_model};
use crv::btyd::pnbd::ParetoNbd;
use crv::btyd::{History, PurchaseModel};
use crv::synthetic::rng::RowRng;
use rayon::prelude::*;

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

/// Customers of the whole fit.
const FIT_CUSTOMERS: u64 = 1_000_000;
/// The first customers lifetimes fits (and crv again, for the ratio).
const LIFETIMES_CUSTOMERS: usize = 100_000;
/// Repetitions of the manual timing loop of the whole fit.
const FIT_REPEATS: usize = 3;

/// Customer `i` of the fit: first purchase on one of the first 84 days (12 weeks), observed to
/// day 546 (78 weeks); recency rounded down to a whole day.
fn draw_customer(i: u64) -> History {
    let mut rng = RowRng::new(common::SEED, i);
    let first_day = rng.range(0, 83) as f64;
    let age = (546.0 - first_day) / 7.0;
    let mut history = CDNOW.draw_history(&mut rng, age);
    history.recency = (history.recency * 7.0).floor() / 7.0;
    history
}

/// The whole fit from the columns: compress, maximum likelihood, standard errors.
fn fit(histories: &[History]) -> ParetoNbd {
    fit_purchase_model::<ParetoNbd>(&PurchaseData::compress(histories), None)
        .expect("the bench data identify Pareto/NBD")
        .0
}

/// The CSV lifetimes reads: frequency,recency,T (shortest exact decimals).
fn write_csv(path: &Path, histories: &[History]) {
    crv::atomic_file::write_atomically(path, |out| {
        use std::io::Write;
        let io = |e| crv::Error::io(path, e);
        writeln!(out, "frequency,recency,T").map_err(io)?;
        for h in histories {
            writeln!(out, "{},{},{}", h.frequency, h.recency, h.age).map_err(io)?;
        }
        Ok(())
    })
    .expect("bench data is writable");
}

/// Runs `benches/lifetimes_pnbd.py` on `csv`: lifetimes' seconds for the Pareto/NBD fit.
fn lifetimes_seconds(csv: &Path) -> Option<f64> {
    if std::env::var("CRV_BENCH_LIFETIMES").as_deref() == Ok("0") {
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/lifetimes_pnbd.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(csv)
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        eprintln!("lifetimes: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last()?).ok()?;
    last["pnbd_s"].as_f64()
}

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

    fit_bench();
}

/// The whole fit at 1e6 customers, and against lifetimes at 1e5.
fn fit_bench() {
    let customers: Vec<History> = (0..FIT_CUSTOMERS)
        .into_par_iter()
        .map(draw_customer)
        .collect();
    let data = PurchaseData::compress(&customers);
    println!(
        "\npnbd fit: {FIT_CUSTOMERS} customers, {} distinct histories, {} repeat buyers",
        data.histories.len(),
        data.repeat_buyers
    );
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = criterion.benchmark_group("pnbd");
    group.bench_function("fit/1m", |b| b.iter(|| fit(black_box(&customers))));
    group.finish();
    criterion.final_summary();
    let (model, estimate) = fit_purchase_model::<ParetoNbd>(&data, None).expect("identified");
    println!(
        "fitted {:?} (drawn from {:?}): {} iterations, {} evaluations",
        model.params(),
        CDNOW.params(),
        estimate.iterations,
        estimate.evaluations
    );
    let seconds = common::median_seconds(FIT_REPEATS, || {
        black_box(fit(&customers));
    });
    println!("crv fit Pareto/NBD, 1e6 customers: median {seconds:.3} s of {FIT_REPEATS}");

    let first = &customers[..LIFETIMES_CUSTOMERS];
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-data/pnbd-{LIFETIMES_CUSTOMERS}-{}.csv",
        common::SEED
    ));
    std::fs::create_dir_all(csv.parent().expect("a directory")).expect("target/ is writable");
    write_csv(&csv, first);
    let small = common::median_seconds(FIT_REPEATS, || {
        black_box(fit(first));
    });
    println!(
        "crv fit Pareto/NBD, {LIFETIMES_CUSTOMERS} customers: median {small:.3} s of {FIT_REPEATS} ({:?})",
        fit(first).params()
    );
    match lifetimes_seconds(&csv) {
        Some(lifetimes) => println!(
            "ratio pnbd fit at {LIFETIMES_CUSTOMERS}: lifetimes {lifetimes:.2} s / crv {small:.3} s = {:.0}x",
            lifetimes / small
        ),
        None => println!(
            "ratio pnbd fit: lifetimes not run (python3 with lifetimes, CRV_BENCH_LIFETIMES)"
        ),
    }
}
