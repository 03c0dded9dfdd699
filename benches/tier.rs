//! Tiers on 10M customers (both schemes; ids shuffled, and ascending with the row) against a comparison sort of (CRV, id) pairs as the
//! baseline, and the cut points alone (`tier_cuts`, no sort); after criterion, a short timing
//! loop prints medians and the ratios from this run.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use crv::kernel::{self, CrvInputs, TierScheme};
use crv::{ScoreParams, Store};

const ROWS: usize = 10_000_000;
/// Repetitions of the manual timing loop whose median is printed.
const REPEATS: usize = 5;

/// The baseline: sort (CRV, id) pairs by CRV descending, then id, one thread.
fn comparison_sort(crv: &[f32], ids: &[u64]) -> Vec<(f32, u64)> {
    let mut pairs: Vec<(f32, u64)> = crv.iter().copied().zip(ids.iter().copied()).collect();
    pairs.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    pairs
}

fn main() {
    let store = Store::open(common::generated_store(ROWS as u64)).expect("bench store opens");
    let inputs = CrvInputs::from_store(&store).expect("generated stores have the CRV columns");
    let mut crv = vec![0.0f32; ROWS];
    kernel::score(&inputs, &ScoreParams::default(), &mut crv);
    // The generated ids are a scramble of the row number: unrelated to row order, unique.
    let ids = store.ids();
    // Ids ascending with the row (a store sorted by id): ties need no id lookups.
    let ascending_ids: Vec<u64> = (0..ROWS as u64).map(|row| row * 7).collect();
    let cumulative = TierScheme::default();
    let quantile = TierScheme::QUANTILE_DEFAULT;

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = criterion.benchmark_group("tier");
    group.bench_function("cumulative/10m", |b| {
        b.iter(|| kernel::tiers(&crv, ids, &cumulative))
    });
    group.bench_function("quantile/10m", |b| {
        b.iter(|| kernel::tiers(&crv, ids, &quantile))
    });
    group.bench_function("cumulative_ascending_ids/10m", |b| {
        b.iter(|| kernel::tiers(&crv, &ascending_ids, &cumulative))
    });
    group.bench_function("tier_cuts/10m", |b| {
        b.iter(|| kernel::tier_cuts(&crv, ids, &cumulative))
    });
    group.bench_function("comparison_sort/10m", |b| {
        b.iter(|| comparison_sort(&crv, ids))
    });
    group.finish();
    criterion.final_summary();

    let tiers = common::median_seconds(REPEATS, || {
        black_box(kernel::tiers(&crv, ids, &cumulative));
    });
    let tiers_ascending = common::median_seconds(REPEATS, || {
        black_box(kernel::tiers(&crv, &ascending_ids, &cumulative));
    });
    let cuts = common::median_seconds(REPEATS, || {
        black_box(kernel::tier_cuts(&crv, ids, &cumulative));
    });
    let sort = common::median_seconds(REPEATS, || {
        black_box(comparison_sort(&crv, ids));
    });
    println!(
        "\ntier: {ROWS} customers, {} rayon threads; medians of {REPEATS}:",
        rayon::current_num_threads()
    );
    println!(
        "  tiers, shuffled ids     {:>8.2} ms (target < 300)",
        tiers * 1e3
    );
    println!(
        "  tiers, ascending ids    {:>8.2} ms (target < 300)",
        tiers_ascending * 1e3
    );
    println!("  tier_cuts, shuffled ids {:>8.2} ms", cuts * 1e3);
    println!("  comparison sort only    {:>8.2} ms", sort * 1e3);
    println!("  comparison sort / tiers = {:.2}", sort / tiers);
    println!("  tiers / tier_cuts = {:.2}", tiers / cuts);
    println!("  comparison sort / tier_cuts = {:.2}", sort / cuts);
}
