//! The CRV kernel on 10M generated customers, read in place from a store file: the scalar specification, `wide` lanes on one thread (T = 5
//! by doubling, T = 33 by the ln1p/expm1 closed form), lanes on rayon, and a SIMD sum over the same columns as the memory-bandwidth baseline. After
//! criterion, a short timing loop prints medians and the ratios (rayon / bandwidth, lanes /
//! scalar) from this same run. In that loop, lanes on rayon, the same into an output 4 bytes off
//! a vector's alignment (plain stores instead of streaming ones: the kernel's stores before
//! they streamed) and the bandwidth baseline take turns, so their ratios compare runs under the
//! same load on a shared machine.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use crv::kernel::{self, CrvInputs, crv_scalar, score_lanes};
use crv::{Horizon, ScoreParams, Store};
use rayon::prelude::*;
use wide::f32x8;

const ROWS: usize = 10_000_000;
/// Rows per rayon task in the baseline, as in the kernel.
const CHUNK_ROWS: usize = 16 * 1024;
/// Repetitions of the manual timing loop whose median is printed.
const REPEATS: usize = 7;
/// Rounds of the alternating loop (rayon, plain stores, bandwidth) whose medians are printed.
const ROUNDS: usize = 15;

/// Sums every column with f32x8 lanes over rayon chunks: reads the bytes the kernel reads.
fn bandwidth_sum(columns: &[&[f32]; 7]) -> f32 {
    let rows = columns[0].len();
    (0..rows.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|chunk| {
            let range = chunk * CHUNK_ROWS..rows.min((chunk + 1) * CHUNK_ROWS);
            let mut sum = f32x8::ZERO;
            for column in columns {
                let (vectors, tail) = column[range.clone()].as_chunks::<8>();
                for vector in vectors {
                    sum += f32x8::new(*vector);
                }
                sum += f32x8::from(tail);
            }
            sum.reduce_add()
        })
        .sum()
}

/// The median wall times of `repeats` rounds in which every run of `runs` goes once, in turn,
/// in seconds: runs timed under the same load.
fn median_seconds_alternating<const N: usize>(
    repeats: usize,
    mut runs: [&mut dyn FnMut(); N],
) -> [f64; N] {
    let mut seconds = [(); N].map(|()| Vec::with_capacity(repeats));
    for _ in 0..repeats {
        for (run, seconds) in runs.iter_mut().zip(&mut seconds) {
            let start = std::time::Instant::now();
            run();
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    seconds.map(|mut seconds| {
        seconds.sort_by(f64::total_cmp);
        seconds[repeats / 2]
    })
}

/// Bytes of input the CRV kernel reads: seven f32 columns.
fn input_bytes(inputs: &CrvInputs<'_>) -> u64 {
    (inputs.len() * 7 * size_of::<f32>()) as u64
}

/// All seven columns, for the bandwidth baseline (generated stores have every one).
fn all_columns<'a>(inputs: &CrvInputs<'a>) -> [&'a [f32]; 7] {
    let present = |column: Option<&'a [f32]>| column.expect("generated stores have every column");
    [
        inputs.margin,
        inputs.retention,
        present(inputs.retention_cost),
        present(inputs.referral_value),
        present(inputs.competence_value),
        present(inputs.development_cost),
        present(inputs.acquisition_cost),
    ]
}

fn main() {
    let store = Store::open(common::generated_store(ROWS as u64)).expect("bench store opens");
    let inputs = CrvInputs::from_store(&store).expect("generated stores have the CRV columns");
    let all = all_columns(&inputs);
    let params = ScoreParams::default();
    // The shortest horizon past doubling: the ln1p/expm1 closed form, whose cost does not
    // depend on T.
    let long = ScoreParams {
        horizon: Horizon::Periods(33),
        ..params
    };
    let mut out = vec![0.0f32; ROWS];
    // 4 bytes off any vector's alignment: the kernel stores into it without streaming.
    let mut shifted = vec![0.0f32; ROWS + 1];
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("crv");
    group.throughput(Throughput::Bytes(input_bytes(&inputs)));
    group.bench_function("scalar/10m", |b| {
        b.iter(|| crv_scalar(&inputs, &params, &mut out))
    });
    group.bench_function("lanes/10m", |b| {
        b.iter(|| score_lanes(&inputs, &params, &mut out))
    });
    group.bench_function("lanes_closed_form/10m", |b| {
        b.iter(|| score_lanes(&inputs, &long, &mut out))
    });
    group.bench_function("lanes_rayon/10m", |b| {
        b.iter(|| kernel::score(&inputs, &params, &mut out))
    });
    group.bench_function("bandwidth_sum/10m", |b| b.iter(|| bandwidth_sum(&all)));
    group.finish();
    criterion.final_summary();

    let scalar = common::median_seconds(REPEATS, || {
        black_box(crv_scalar(&inputs, &params, &mut out));
    });
    let lanes = common::median_seconds(REPEATS, || {
        black_box(single.install(|| score_lanes(&inputs, &params, &mut out)));
    });
    let closed_form = common::median_seconds(REPEATS, || {
        black_box(single.install(|| score_lanes(&inputs, &long, &mut out)));
    });
    let [rayon, plain_stores, bandwidth] = median_seconds_alternating(
        ROUNDS,
        [
            &mut || {
                black_box(kernel::score(&inputs, &params, &mut out));
            },
            &mut || {
                black_box(kernel::score(&inputs, &params, &mut shifted[1..]));
            },
            &mut || {
                black_box(bandwidth_sum(&all));
            },
        ],
    );
    let totals = kernel::score(&inputs, &params, &mut out);
    println!(
        "\ncrv: {ROWS} customers, {} rayon threads, {:.1}% with CRV <= 0; medians of {REPEATS} \
         ({ROUNDS} alternating rounds for lanes_rayon, lanes_rayon_plain, bandwidth_sum):",
        rayon::current_num_threads(),
        100.0 * totals.non_positive_customers as f64 / ROWS as f64
    );
    for (name, seconds) in [
        ("scalar", scalar),
        ("lanes", lanes),
        ("lanes_closed_form", closed_form),
        ("lanes_rayon", rayon),
        ("lanes_rayon_plain", plain_stores),
        ("bandwidth_sum", bandwidth),
    ] {
        println!(
            "  {name:<18} {:>8.2} ms {:>6.2} ns/customer {:>6.2} GB/s",
            seconds * 1e3,
            seconds * 1e9 / ROWS as f64,
            input_bytes(&inputs) as f64 / seconds / 1e9
        );
    }
    println!(
        "  lanes_rayon / bandwidth_sum = {:.2} (target <= 1.1)",
        rayon / bandwidth
    );
    println!(
        "  lanes_rayon_plain / bandwidth_sum = {:.2} (plain stores)",
        plain_stores / bandwidth
    );
    println!(
        "  scalar / lanes (speedup)    = {:.2} (target >= 3)",
        scalar / lanes
    );
}
