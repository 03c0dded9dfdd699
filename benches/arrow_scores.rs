//! Scoring customers held in Arrow record batches (what `crv.score(table)` does in Python):
//! in place (`crv::arrow_scores::score_batches`) against the two ways through a store, in the
//! same run: the store path (the batches read into an in-memory store by `crv import`'s rules,
//! then scored: what `crv.score(table)` did before), and a store file already open (what
//! `crv.score(crv.Store(path))` and `crv score` do, the baseline). The batches are the
//! generated customers' Parquet file read into memory (row groups of 1M rows, `Float64`
//! numbers, random `Int64` ids), 1e6 rows; `CRV_BENCH_LARGE=1` makes it 1e7.

mod common;

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::{RecordBatch, RecordBatchReader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crv::arrow_scores::score_batches;
use crv::kernel::TierScheme;
use crv::score_file::scores_batch;
use crv::store::columnar::store_from_batches;
use crv::{ScoreParams, Store, Table};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn scores(c: &mut Criterion) {
    let started = SystemTime::now();
    let rows: u64 = if std::env::var_os("CRV_BENCH_LARGE").is_some() {
        10_000_000
    } else {
        1_000_000
    };
    let label = if rows == 10_000_000 { "10m" } else { "1m" };
    let parquet = common::generated_parquet(rows, 1 << 20);
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&parquet).expect("opens"))
        .expect("a Parquet file")
        .with_batch_size(1 << 20)
        .build()
        .expect("a reader");
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(|batch| batch.expect("decodes")).collect();
    let store = Arc::new(Store::open(common::generated_store(rows)).expect("the store opens"));
    let (params, scheme) = (ScoreParams::default(), TierScheme::default());

    let mut group = c.benchmark_group("arrow_scores");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(rows));
    group.bench_function(format!("in_place/{label}"), |b| {
        b.iter(|| score_batches(&schema, &batches, params, scheme).expect("scores"))
    });
    group.bench_function(format!("through_a_store/{label}"), |b| {
        b.iter(|| {
            let store = store_from_batches(&schema, &batches, "<table>").expect("reads");
            scores_batch(&Table::score(Arc::new(store), params, scheme).expect("scores"))
                .expect("a batch")
        })
    });
    group.bench_function(format!("store_file/{label}"), |b| {
        b.iter(|| {
            scores_batch(&Table::score(Arc::clone(&store), params, scheme).expect("scores"))
                .expect("a batch")
        })
    });
    group.finish();
    let in_place = format!("in_place/{label}");
    common::print_ratio(
        "arrow_scores",
        &in_place,
        &format!("store_file/{label}"),
        started,
    );
    common::print_ratio(
        "arrow_scores",
        &format!("through_a_store/{label}"),
        &in_place,
        started,
    );
}

criterion_group!(benches, scores);
criterion_main!(benches);
