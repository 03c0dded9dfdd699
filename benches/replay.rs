//! The start-up replay of `crv serve --wal`: one million logged events (`crv::synthetic::events`,
//! customers uniform) replayed over the 1M-customer bench store into the overlay, against
//! reading the same log alone (checksums and decoding of every record: the floor any replay
//! pays). The ratio of criterion's medians is printed after them.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use crv::Store;
use crv::live::{FsyncPolicy, Live, LiveOptions, log};
use crv::synthetic::rng::RowRng;

const CUSTOMERS: u64 = 1_000_000;
const EVENTS: u64 = 1_000_000;
const SEED: u64 = 5;

/// Writes `EVENTS` events over `store`'s customers as one log segment in `wal`.
fn write_log(store: &Store, wal: &Path) -> Vec<u8> {
    std::fs::create_dir_all(wal).expect("log directory");
    let ids = store.ids();
    let mut bytes = Vec::new();
    for sequence in 1..=EVENTS {
        let pick = RowRng::new(SEED ^ 0xC0FFEE, sequence).next_u64() % ids.len() as u64;
        let event = crv::synthetic::events::event(SEED, sequence, ids[pick as usize]);
        log::encode_record(sequence, &event, &mut bytes);
    }
    std::fs::write(log::segment_path(wal, 1), &bytes).expect("log segment");
    bytes
}

/// Replays the log of `options` over `store`; the replay alone is timed (not the freeing).
fn replay(store: &Arc<Store>, options: &LiveOptions) -> Duration {
    let started = Instant::now();
    let (live, report) =
        Live::for_compaction(Arc::clone(store), options.clone()).expect("the log replays");
    let elapsed = started.elapsed();
    assert_eq!(report.replayed, EVENTS);
    drop(live);
    elapsed
}

fn main() {
    let store_path = common::generated_store(CUSTOMERS);
    let store = Arc::new(Store::open(&store_path).expect("bench store opens"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let wal = dir.path().join("wal");
    let log_bytes = write_log(&store, &wal);
    let options = LiveOptions {
        wal,
        store_path,
        fsync: FsyncPolicy::No,
        salvage: false,
        compact_bytes: None,
    };

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();
    let since = SystemTime::now();
    let mut group = criterion.benchmark_group("replay");
    group.bench_function("replay/1m", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| replay(&store, &options)).sum())
    });
    group.bench_function("read_log/1m", |b| {
        b.iter(|| {
            let read = log::read_segment(&log_bytes);
            assert_eq!(read.records.len() as u64, EVENTS);
            read
        })
    });
    group.finish();
    criterion.final_summary();
    println!(
        "\nreplay: {EVENTS} events ({} MB of log) over {CUSTOMERS} customers, {} rayon threads",
        log_bytes.len() / 1_000_000,
        rayon::current_num_threads()
    );
    common::print_ratio("replay", "replay/1m", "read_log/1m", since);
}
