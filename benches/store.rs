//! Store benches: CSV import throughput against bare CSV tokenizing of the same file, and store
//! open time against a bare memory map of the same file; both ratios come from the same run.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crv::Store;

fn import(c: &mut Criterion) {
    let rows = 1_000_000;
    let csv = common::generated_csv(rows);
    let bytes = std::fs::metadata(&csv).expect("csv exists").len();
    let out = tempfile::tempdir().expect("temp dir");
    let target = out.path().join("bench.crv");

    let mut group = c.benchmark_group("import");
    group.sample_size(10).throughput(Throughput::Bytes(bytes));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("csv_tokenize/1m", |b| {
        b.iter(|| {
            let mut reader = csv::Reader::from_path(&csv).expect("csv opens");
            let mut record = csv::ByteRecord::new();
            let mut fields = 0usize;
            while reader.read_byte_record(&mut record).expect("csv reads") {
                fields += record.len();
            }
            black_box(fields)
        })
    });
    group.bench_function("crv_import/1m", |b| {
        b.iter(|| crv::store::import(&csv, &target, &mut |_| {}).expect("import"))
    });
    group.finish();
    common::print_ratio("import", "crv_import/1m", "csv_tokenize/1m");
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    for rows in [1_000_000u64, 10_000_000] {
        let path = common::generated_store(rows);
        let label = if rows == 1_000_000 { "1m" } else { "10m" };
        group.bench_function(format!("bare_mmap/{label}"), |b| {
            b.iter(|| {
                let file = std::fs::File::open(&path).expect("store opens");
                // Baseline only: the same map Store::open makes, without validation.
                #[allow(unsafe_code)]
                // SAFETY: the bench data file is not modified while it is mapped.
                let map = unsafe { memmap2::Mmap::map(&file) }.expect("maps");
                black_box(map.len())
            })
        });
        group.bench_function(format!("store_open/{label}"), |b| {
            b.iter(|| black_box(Store::open(&path).expect("store opens").rows()))
        });
    }
    group.finish();
    for label in ["1m", "10m"] {
        common::print_ratio(
            "open",
            &format!("store_open/{label}"),
            &format!("bare_mmap/{label}"),
        );
    }

    let path = common::generated_store(10_000_000);
    let store = Store::open(&path).expect("store opens");
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(store.file_bytes()));
    group.bench_function("store_verify/10m", |b| {
        b.iter(|| black_box(store.verify().expect("verifies")))
    });
    group.finish();
}

criterion_group!(benches, import, open);
criterion_main!(benches);
