//! Fitting BG/NBD and Gamma-Gamma to 1e6 customers drawn from the models (CDNOW-like
//! parameters, times in weeks rounded to whole days as a purchase log gives them), against
//! lifetimes fitting the same customers in the same run: after criterion, a short timing loop
//! prints the median, then `benches/lifetimes_fit.py` fits the same CSV and the ratio is
//! printed (skipped when python3 cannot import lifetimes, or with CRV_BENCH_LIFETIMES=0).

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use crv::btyd::bgnbd::BgNbd;
use crv::btyd::fit::{PurchaseData, fit_purchase_model};
use crv::btyd::gamma_gamma::{GammaGamma, Spend, SpendData, fit_gamma_gamma};
use crv::btyd::{History, PurchaseModel};
use crv::synthetic::RowRng;
use rayon::prelude::*;

const CUSTOMERS: u64 = 1_000_000;
/// Repetitions of the manual timing loop whose median is printed.
const REPEATS: usize = 5;

/// The customers' true purchase model: Fader, Hardie & Lee's CDNOW estimates (weeks).
const PURCHASE: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

/// Their true spend model: the CDNOW Gamma-Gamma estimates.
const SPEND: GammaGamma = GammaGamma {
    p: 6.25,
    q: 3.74,
    gamma: 15.44,
};

/// Customer `i`: first purchase on one of the first 84 days (12 weeks), observed to day 546
/// (78 weeks) as in CDNOW; recency rounded down to a whole day; mean spend in cents.
fn draw(i: u64) -> (History, f64) {
    let mut rng = RowRng::new(common::SEED, i);
    let first_day = rng.range(0, 83) as f64;
    let age = (546.0 - first_day) / 7.0;
    let mut history = PURCHASE.draw_history(&mut rng, age);
    history.recency = (history.recency * 7.0).floor() / 7.0;
    let spend = if history.frequency > 0.0 {
        (SPEND.draw_mean_spend(&mut rng, history.frequency as u32) * 100.0)
            .round()
            .max(1.0)
            / 100.0
    } else {
        0.0
    };
    (history, spend)
}

/// The CSV lifetimes reads: frequency,recency,T,monetary_value (shortest exact decimals).
fn write_csv(path: &Path, customers: &[(History, f64)]) {
    crv::atomic_file::write_atomically(path, |out| {
        use std::io::Write;
        let io = |e| crv::Error::io(path, e);
        writeln!(out, "frequency,recency,T,monetary_value").map_err(io)?;
        for (h, m) in customers {
            writeln!(out, "{},{},{},{}", h.frequency, h.recency, h.age, m).map_err(io)?;
        }
        Ok(())
    })
    .expect("bench data is writable");
}

/// What one fit costs from the columns: compress, BG/NBD, compress the repeat buyers'
/// spend, Gamma-Gamma.
fn fit_both(histories: &[History], spends: &[Spend]) -> (BgNbd, GammaGamma) {
    let (purchase, _) = fit_purchase_model::<BgNbd>(&PurchaseData::compress(histories), None)
        .expect("the bench data identify BG/NBD");
    let (spend, _) = fit_gamma_gamma(&SpendData::compress(spends), None).expect("and Gamma-Gamma");
    (purchase, spend)
}

/// Runs `benches/lifetimes_fit.py` on `csv`: lifetimes' seconds for BG/NBD + Gamma-Gamma.
fn lifetimes_seconds(csv: &Path) -> Option<f64> {
    if std::env::var("CRV_BENCH_LIFETIMES").as_deref() == Ok("0") {
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/lifetimes_fit.py");
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
    last["total_s"].as_f64()
}

fn main() {
    let customers: Vec<(History, f64)> = (0..CUSTOMERS).into_par_iter().map(draw).collect();
    let histories: Vec<History> = customers.iter().map(|(h, _)| *h).collect();
    let spends: Vec<Spend> = customers
        .iter()
        .filter(|(h, _)| h.frequency > 0.0)
        .map(|(h, m)| Spend {
            frequency: h.frequency,
            monetary_value: *m,
        })
        .collect();
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-data/btyd-{CUSTOMERS}-{}.csv",
        common::SEED
    ));
    std::fs::create_dir_all(csv.parent().expect("a directory")).expect("target/ is writable");
    write_csv(&csv, &customers);
    let data = PurchaseData::compress(&histories);
    println!(
        "{CUSTOMERS} customers: {} distinct histories, {} repeat buyers ({} distinct spends)",
        data.histories.len(),
        spends.len(),
        SpendData::compress(&spends).spends.len()
    );

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = criterion.benchmark_group("btyd");
    group.bench_function("fit_bgnbd_gamma_gamma/1m", |b| {
        b.iter(|| fit_both(black_box(&histories), black_box(&spends)))
    });
    group.bench_function("compress/1m", |b| {
        b.iter(|| PurchaseData::compress(black_box(&histories)))
    });
    group.finish();
    criterion.final_summary();

    let (purchase, spend) = fit_both(&histories, &spends);
    println!(
        "fitted {:?} (drawn from {:?})",
        purchase.params(),
        PURCHASE.params()
    );
    println!(
        "fitted {:?} (drawn from {:?})",
        spend.params(),
        SPEND.params()
    );
    let crv_seconds = common::median_seconds(REPEATS, || {
        black_box(fit_both(&histories, &spends));
    });
    println!("crv fit BG/NBD + Gamma-Gamma, 1e6 customers: median {crv_seconds:.3} s of {REPEATS}");
    match lifetimes_seconds(&csv) {
        Some(lifetimes) => println!(
            "ratio fit: lifetimes {lifetimes:.2} s / crv {crv_seconds:.3} s = {:.0}x",
            lifetimes / crv_seconds
        ),
        None => {
            println!("ratio fit: lifetimes not run (python3 with lifetimes, CRV_BENCH_LIFETIMES)")
        }
    }
}
