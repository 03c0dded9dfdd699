//! Store benches: CSV import throughput against bare CSV tokenizing of the same file, Parquet
//! import of the same customers (one row group, and 16) against the CSV import, store
//! open time against a bare memory map of the same file, and batched id lookups against one
//! `row_of` after another over the same ids, and the id index built in rounds against one probe
//! after another; every ratio comes from the same run. Each group's
//! data is made (or found in `target/bench-data/`) only when one of its benches is selected,
//! so `cargo bench --bench store -- import` generates no 10M store.

mod common;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crv::synthetic::RowRng;
use crv::{CustomerId, Store};

fn import(c: &mut Criterion) {
    let started = SystemTime::now();
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
    // The same customers from Parquet: one row group (decoded by one thread) and 16 (decoded in
    // parallel). Throughput is still the CSV's bytes, so the rates compare per row.
    for groups in [1, 16] {
        let parquet = common::generated_parquet(rows, (rows as usize).div_ceil(groups));
        group.bench_function(format!("parquet_import/1m/{groups}rg"), |b| {
            b.iter(|| crv::store::import(&parquet, &target, &mut |_| {}).expect("import"))
        });
    }
    group.finish();
    common::print_ratio("import", "crv_import/1m", "csv_tokenize/1m", started);
    for groups in [1, 16] {
        let parquet = format!("parquet_import/1m/{groups}rg");
        common::print_ratio("import", &parquet, "crv_import/1m", started);
    }
}

fn open(c: &mut Criterion) {
    let started = SystemTime::now();
    let mut group = c.benchmark_group("open");
    for rows in [1_000_000u64, 10_000_000] {
        let label = if rows == 1_000_000 { "1m" } else { "10m" };
        group.bench_function(format!("bare_mmap/{label}"), |b| {
            let path = common::generated_store(rows);
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
            let path = common::generated_store(rows);
            b.iter(|| black_box(Store::open(&path).expect("store opens").rows()))
        });
    }
    group.finish();
    for label in ["1m", "10m"] {
        common::print_ratio(
            "open",
            &format!("store_open/{label}"),
            &format!("bare_mmap/{label}"),
            started,
        );
    }

    let store = OnceLock::new();
    let store = || store.get_or_init(|| open_store(10_000_000));
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.bench_function("store_verify/10m", |b| {
        b.iter(|| black_box(store().verify().expect("verifies")))
    });
    group.finish();
}

fn open_store(rows: u64) -> Store {
    Store::open(common::generated_store(rows)).expect("store opens")
}

/// Batches of 100 random ids (the load test's batch size) on the 10M store, whose id index and
/// ids (~110 MB) are far larger than the cache: every probe is a cache and TLB miss.
fn lookup(c: &mut Criterion) {
    let started = SystemTime::now();
    let data = OnceLock::new();
    let data = || {
        data.get_or_init(|| {
            let store = open_store(10_000_000);
            let mut rng = RowRng::new(7, 0);
            let all = store.ids();
            let batches: Vec<Vec<u64>> = (0..BATCHES)
                .map(|_| {
                    (0..100)
                        .map(|_| all[rng.range(0, all.len() as u64 - 1) as usize])
                        .collect()
                })
                .collect();
            (store, batches)
        })
    };
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(100 * BATCHES as u64));
    group.bench_function("row_of_each/10m", |b| {
        let (store, batches) = data();
        b.iter(|| {
            for batch in batches {
                for &id in batch {
                    black_box(store.row_of(CustomerId(id)));
                }
            }
        })
    });
    let mut rows = Vec::new();
    group.bench_function("rows_of_batch/10m", |b| {
        let (store, batches) = data();
        b.iter(|| {
            for batch in batches {
                store.rows_of(batch, &mut rows);
                black_box(&rows);
            }
        })
    });
    group.finish();
    common::print_ratio("lookup", "row_of_each/10m", "rows_of_batch/10m", started);
}

/// Building the id index of 10 million customers (a 64 MB table, far beyond the cache) in
/// rounds of `BUILD_ROUND` rows against one probe after another (rounds of one), and rounds of
/// 16 and 128 for the choice of the round; the ids are random, as the hash makes any ids.
fn index(c: &mut Criterion) {
    use crv::store::id_index::{BUILD_ROUND, build_in_rounds};
    let started = SystemTime::now();
    let mut rng = RowRng::new(11, 0);
    let ids: Vec<u64> = (0..10_000_000).map(|_| rng.next_u64()).collect();
    let mut group = c.benchmark_group("index");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(ids.len() as u64));
    type Build = fn(&[u64]) -> Result<Vec<u32>, crv::store::id_index::DuplicateId>;
    let builds: [(String, Build); 4] = [
        ("one_probe_at_a_time".to_string(), build_in_rounds::<1>),
        ("rounds_of_16".to_string(), build_in_rounds::<16>),
        (
            format!("rounds_of_{BUILD_ROUND}"),
            build_in_rounds::<BUILD_ROUND>,
        ),
        ("rounds_of_128".to_string(), build_in_rounds::<128>),
    ];
    for (name, build) in builds {
        group.bench_function(format!("{name}/10m"), |b| {
            b.iter(|| black_box(build(&ids).expect("distinct ids").len()))
        });
    }
    group.finish();
    for round in [16, BUILD_ROUND, 128] {
        common::print_ratio(
            "index",
            "one_probe_at_a_time/10m",
            &format!("rounds_of_{round}/10m"),
            started,
        );
    }
}

/// Batches of 100 ids each lookup bench resolves.
const BATCHES: usize = 1_000;

criterion_group!(benches, import, open, lookup, index);
criterion_main!(benches);
