//! The probabilistic CRV (`crv score --model`) over 1M generated customers: the shared-curve
//! kernel (`score_histories`: distinct histories, one purchase curve per (frequency, age)
//! pair, a gather per customer) against its per-customer f64 specification (`crv_reference`:
//! 52 conditional expectations per customer), for BG/NBD and Pareto/NBD with Gamma-Gamma.
//! After criterion, a timing loop prints nanoseconds per customer of both and their ratio,
//! measured in this same run (the specification on the first 20k customers: it is slow).

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use crv::Store;
use crv::btyd::PurchaseModel;
use crv::btyd::bgnbd::BgNbd;
use crv::btyd::columns::HistoryColumns;
use crv::btyd::gamma_gamma::GammaGamma;
use crv::btyd::pnbd::ParetoNbd;
use crv::kernel::history::{HistoryInputs, HistoryParams, crv_reference, score_histories};

const ROWS: u64 = 1_000_000;
/// Customers the per-customer specification is timed on.
const REFERENCE_ROWS: usize = 20_000;
const PARAMS: HistoryParams = HistoryParams {
    discount: 0.01,
    horizon_periods: 52,
    margin_rate: 1.0,
};
/// CDNOW's published estimates.
const BGNBD: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};
const PNBD: ParetoNbd = ParetoNbd {
    r: 0.5534,
    alpha: 10.5802,
    s: 0.6061,
    beta: 11.6562,
};

fn first_rows<'a>(inputs: &HistoryInputs<'a>, rows: usize) -> HistoryInputs<'a> {
    let cut = |column: Option<&'a [f32]>| column.map(|c| &c[..rows]);
    HistoryInputs {
        histories: HistoryColumns {
            frequency: &inputs.histories.frequency[..rows],
            recency: &inputs.histories.recency[..rows],
            age: &inputs.histories.age[..rows],
        },
        monetary_value: cut(inputs.monetary_value),
        referral_value: cut(inputs.referral_value),
        competence_value: cut(inputs.competence_value),
        development_cost: cut(inputs.development_cost),
        acquisition_cost: cut(inputs.acquisition_cost),
    }
}

fn bench_model<M: PurchaseModel>(
    c: &mut Criterion,
    name: &str,
    model: &M,
    inputs: &HistoryInputs<'_>,
) {
    let spend = GammaGamma::from_params([6.25, 3.74, 15.44]);
    let sample = first_rows(inputs, REFERENCE_ROWS);
    let mut group = c.benchmark_group(format!("history_{name}"));
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("shared_curves/1m", |b| {
        b.iter(|| black_box(score_histories(model, &spend, inputs, &PARAMS)))
    });
    group.throughput(Throughput::Elements(REFERENCE_ROWS as u64));
    group.bench_function("per_customer/20k", |b| {
        b.iter(|| black_box(crv_reference(model, &spend, &sample, &PARAMS)))
    });
    group.finish();
    let shared = common::median_seconds(5, || {
        black_box(score_histories(model, &spend, inputs, &PARAMS));
    }) / ROWS as f64;
    let reference = common::median_seconds(3, || {
        black_box(crv_reference(model, &spend, &sample, &PARAMS));
    }) / REFERENCE_ROWS as f64;
    println!(
        "ratio history {name}: per-customer specification / shared curves = {:.0}x \
         ({:.0} ns vs {:.0} ns per customer, medians, 52 periods)",
        reference / shared,
        reference * 1e9,
        shared * 1e9
    );
}

fn main() {
    let path = common::generated_store(ROWS);
    let store = Store::open(&path).expect("the generated store opens");
    let inputs = HistoryInputs::from_store(&store).expect("generated histories are valid");
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    bench_model(&mut c, "bgnbd", &BGNBD, &inputs);
    bench_model(&mut c, "pnbd", &PNBD, &inputs);
    c.final_summary();
}
