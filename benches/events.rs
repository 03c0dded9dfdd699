//! Batches of live events as `POST /v1/events` receives them: bodies of 100 purchases (the
//! load test's `events-batch` body) over the 1M-customer bench store, customers uniform.
//! - `decode/100` (`live::event::decode`: every event checked into a `CustomerEvent`, the body
//!   read in its plain form without serde) against `serde_decode/100` (the same events read by
//!   serde alone, the reader for every other form) and `json_syntax/100` (serde_json skipping
//!   the same body, `IgnoredAny`: what serde_json pays before any field is matched);
//! - `submit/100` (decoded, checked, logged under `--fsync no` and applied to the overlay:
//!   the server's work for a batch but its HTTP) against `decode/100`.
//!
//! The overlay grows as the bench runs, as a server's does. Ratios of criterion's medians are
//! printed after them.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use crv::kernel::TierScheme;
use crv::live::{FsyncPolicy, Live, LiveOptions, event};
use crv::synthetic::rng::RowRng;
use crv::{ScoreParams, Store, Table};

const CUSTOMERS: u64 = 1_000_000;
const BATCH: usize = 100;
const BODIES: u64 = 1_000;

/// Body `index`: `BATCH` purchases of customers of `ids`, as the load test writes them.
fn body(ids: &[u64], index: u64) -> Vec<u8> {
    let mut rng = RowRng::new(0xE7E7, index);
    let events: Vec<String> = (0..BATCH)
        .map(|_| {
            let id = ids[(rng.next_u64() % ids.len() as u64) as usize];
            let cents = 100 + rng.next_u64() % 99_900;
            format!(
                r#"{{"type":"purchase","customer_id":{id},"amount":{}.{:02},"time":"2026-11-30T10:00:00Z"}}"#,
                cents / 100,
                cents % 100
            )
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
}

fn main() {
    let store_path = common::generated_store(CUSTOMERS);
    let store = Arc::new(Store::open(&store_path).expect("bench store opens"));
    let bodies: Vec<Vec<u8>> = (0..BODIES).map(|index| body(store.ids(), index)).collect();
    let table = Arc::new(
        Table::score(
            Arc::clone(&store),
            ScoreParams::default(),
            TierScheme::default(),
        )
        .expect("the bench store scores"),
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (live, _) = runtime
        .block_on(async {
            Live::serve(
                table,
                LiveOptions {
                    wal: dir.path().join("wal"),
                    store_path,
                    fsync: FsyncPolicy::No,
                    salvage: false,
                    compact_bytes: None,
                },
            )
        })
        .expect("the live state opens");

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let since = SystemTime::now();
    let mut group = criterion.benchmark_group("events");
    let mut next = bodies.iter().cycle();
    group.bench_function("json_syntax/100", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(next.next().expect("cycles"))
                .expect("a body is JSON")
        })
    });
    group.bench_function("decode/100", |b| {
        b.iter(|| event::decode(next.next().expect("cycles"), None, || 0).expect("a body decodes"))
    });
    group.bench_function("serde_decode/100", |b| {
        b.iter(|| {
            event::decode_by_serde(next.next().expect("cycles"), None, || 0)
                .expect("a body decodes")
        })
    });
    group.bench_function("submit/100", |b| {
        b.iter(|| {
            let events = event::decode(next.next().expect("cycles"), None, || 0).expect("decodes");
            live.check(&events).expect("purchases pass");
            runtime
                .block_on(live.submit(events))
                .expect("the log takes them")
        })
    });
    group.finish();
    criterion.final_summary();
    live.close();
    common::print_ratio("events", "decode/100", "serde_decode/100", since);
    common::print_ratio("events", "decode/100", "json_syntax/100", since);
    common::print_ratio("events", "submit/100", "decode/100", since);
}
