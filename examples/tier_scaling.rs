//! How `kernel::tiers` (the full sort) and `kernel::tier_cuts` (cut points by selection) grow
//! with the number of customers: in-memory synthetic CRVs, heavy-tailed like the select bench's
//! marketing class (`exp(3 + 1.4 N)`, 10% negative), ids ascending with the row or scrambled.
//!
//!     cargo run --release --example tier_scaling -- 10000000 100000000
//!
//! Prints the median of a few runs per size, ns per customer, and each size's time over the
//! first size's. One size at a time is in memory (1e8 customers: about 4.5 GB in all).

use std::hint::black_box;
use std::time::Instant;

use crv::kernel::{self, TierScheme};
use crv::synthetic::RowRng;
use rayon::prelude::*;

/// The allocator of the `crv` binary: large buffers behave differently under glibc's malloc.
#[global_allocator]
static GLOBAL: crv::allocator::Mimalloc = crv::allocator::Mimalloc;

const REPEATS: usize = 3;

fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut ms: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[REPEATS / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("sizes are whole numbers of customers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000_000, 100_000_000]
    } else {
        sizes
    };
    let scheme = TierScheme::default();
    let mut first: Option<Vec<f64>> = None;
    println!(
        "{} rayon threads, medians of {REPEATS} (ms, ns/customer, x first size)",
        rayon::current_num_threads()
    );
    for rows in sizes {
        let crv: Vec<f32> = (0..rows as u64)
            .into_par_iter()
            .map(|row| {
                let mut rng = RowRng::new(42, row);
                let value = (3.0 + 1.4 * rng.normal_pair().0).exp() as f32;
                if rng.chance(0.1) { -value } else { value }
            })
            .collect();
        let ascending: Vec<u64> = (0..rows as u64).collect();
        // A bijection of the row (odd multiplier): unique ids unrelated to row order.
        let scrambled: Vec<u64> = (0..rows as u64)
            .into_par_iter()
            .map(|row| row.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let timings = [
            (
                "tiers, ascending ids",
                median_ms(|| {
                    black_box(kernel::tiers(&crv, &ascending, &scheme));
                }),
            ),
            (
                "tiers, scrambled ids",
                median_ms(|| {
                    black_box(kernel::tiers(&crv, &scrambled, &scheme));
                }),
            ),
            (
                "tier_cuts, scrambled ids",
                median_ms(|| {
                    black_box(kernel::tier_cuts(&crv, &scrambled, &scheme));
                }),
            ),
        ];
        let first = first.get_or_insert_with(|| timings.iter().map(|t| t.1).collect());
        for ((name, ms), first_ms) in timings.iter().zip(first.iter()) {
            println!(
                "{rows:>11} {name:<26} {ms:>9.1} ms {:>6.2} ns/customer {:>6.2}x",
                ms * 1e6 / rows as f64,
                ms / first_ms
            );
        }
    }
}
