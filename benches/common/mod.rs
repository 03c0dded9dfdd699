//! Bench data: seeded customers from `crv::synthetic`, generated once into
//! `target/bench-data/` and reused by later runs (never committed).

#![allow(dead_code)] // Each bench uses the part it needs.

use std::path::PathBuf;
use std::time::SystemTime;

use crv::{Store, store, synthetic};

/// Benches run on the allocator the `crv` binary runs on (its big per-call buffers behave
/// differently under glibc's malloc, which returns them to the OS on every free).
#[global_allocator]
static GLOBAL: crv::allocator::Mimalloc = crv::allocator::Mimalloc;

/// The seed every bench uses, so figures are comparable across runs.
pub const SEED: u64 = 42;

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    dir
}

/// A CSV of `rows` generated customers.
pub fn generated_csv(rows: u64) -> PathBuf {
    let path = data_dir().join(format!("customers-{rows}-{SEED}.csv"));
    if !path.exists() {
        eprintln!("generating {rows} customers into {}", path.display());
        crv::atomic_file::write_atomically(&path, |out| {
            synthetic::write_customers_csv(out, rows, SEED).map_err(|e| crv::Error::io(&path, e))
        })
        .expect("bench data is writable");
    }
    path
}

/// The customers of [`generated_csv`] as a Parquet file in row groups of `row_group_rows`.
pub fn generated_parquet(rows: u64, row_group_rows: usize) -> PathBuf {
    let path = data_dir().join(format!(
        "customers-{rows}-{SEED}-rg{row_group_rows}.parquet"
    ));
    if !path.exists() {
        eprintln!("generating {rows} customers into {}", path.display());
        crv::atomic_file::write_atomically(&path, |out| {
            synthetic::write_customers_parquet(out, rows, SEED, row_group_rows)
                .map_err(|e| crv::Error::io(&path, e))
        })
        .expect("bench data is writable");
    }
    path
}

/// A store of `rows` generated customers (imported from [`generated_csv`] once).
pub fn generated_store(rows: u64) -> PathBuf {
    let path = data_dir().join(format!("customers-{rows}-{SEED}.crv"));
    if Store::open(&path).is_err() {
        let csv = generated_csv(rows);
        eprintln!("importing {} into {}", csv.display(), path.display());
        store::import(&csv, &path, &mut |_| {}).expect("generated customers import");
    }
    path
}

/// Where criterion writes its results, found as criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else this package's `target/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("criterion"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion"),
    }
}

/// The median time criterion measured for `group/bench` since `since` (this run), in
/// nanoseconds; `None` when it was not measured then (filtered out, or an older run's result).
fn median_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        // criterion turns the `/` of a bench id into `_` in its directory names.
        .join(bench.replace('/', "_"))
        .join("new/estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Prints `group/bench` against `group/baseline` from the medians criterion measured since
/// `since` (taken before the group ran), e.g.
/// `ratio open: store_open/10m / bare_mmap/10m = 1.07x`.
pub fn print_ratio(group: &str, bench: &str, baseline: &str, since: SystemTime) {
    match (
        median_ns(group, bench, since),
        median_ns(group, baseline, since),
    ) {
        (Some(measured), Some(base)) => println!(
            "ratio {group}: {bench} / {baseline} = {:.2}x  ({} vs {}, medians)",
            measured / base,
            duration_text(measured),
            duration_text(base)
        ),
        _ => println!("ratio {group}: {bench} / {baseline}: not measured in this run"),
    }
}

/// `ns` nanoseconds as text, in milliseconds (`12.345 ms`) or, under a microsecond, in
/// nanoseconds (`43.6 ns`).
fn duration_text(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

/// The median wall time of `repeats` runs of `run`, in seconds: the manual timing loop the
/// kernel benches print their ratios from.
pub fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    let mut seconds: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = std::time::Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    seconds[repeats / 2]
}
