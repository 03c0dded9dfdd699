//! The generator against a real crv server: `crv::api::serve` on 127.0.0.1:0 over a small
//! generated store, each scenario run briefly through `run::run`, and every answer checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crv::ScoreParams;
use crv::api::{self, AppState, ServerConfig};
use crv::kernel::TierScheme;
use crv::live::{FsyncPolicy, Live, LiveOptions};
use crv_loadtest::report::Report;
use crv_loadtest::run::{self, Plan, SelectionPlan, StreamPlan};
use crv_loadtest::scenario::Scenario;
use crv_loadtest::workload::{Popularity, Workload};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const CUSTOMERS: u64 = 2_000;
const TOKEN: &str = "loadtest-token";

struct Served {
    _dir: tempfile::TempDir,
    store: PathBuf,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve() -> Served {
    serve_with(false).await
}

/// The server over a fresh store; with `events`, taking events into a log in the temporary
/// directory, writes guarded by [`TOKEN`].
async fn serve_with(events: bool) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    let store = dir.path().join("customers.crv");
    crv::synthetic::write_customers_csv(std::fs::File::create(&csv).unwrap(), CUSTOMERS, 3)
        .unwrap();
    crv::store::import(&csv, &store, &mut |_| {}).unwrap();
    let state = AppState::open(
        &store,
        ScoreParams::default(),
        TierScheme::default(),
        ServerConfig::default(),
    )
    .unwrap();
    let state = if events {
        let options = LiveOptions {
            wal: dir.path().join("wal"),
            store_path: store.clone(),
            fsync: FsyncPolicy::EverySec,
            salvage: false,
            compact_bytes: None,
        };
        let (live, _) = Live::serve(state.table(), options).unwrap();
        state
            .with_token(Some(TOKEN.to_string()))
            .unwrap()
            .with_live(live)
    } else {
        state
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, Arc::new(state), async {
        let _ = stopped.await;
    }));
    Served {
        _dir: dir,
        store,
        addr,
        _stop: stop,
    }
}

fn plan(served: &Served, scenario: Scenario) -> Plan {
    Plan {
        target: served.addr,
        scenario,
        connections: 4,
        rate: None,
        batch: 50,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        max_requests: None,
        check_every: 1,
        seed: 9,
        selections: None,
        token: None,
        stream: None,
    }
}

async fn load(served: &Served, plan: Plan, popularity: Popularity, miss_rate: f64) -> Report {
    // Every answer is checked against the library's scores: CRV, tier, rank and percentile.
    let workload = Workload::from_store(&served.store, popularity, miss_rate, 5)
        .unwrap()
        .expect_scores(
            &served.store,
            &ScoreParams::default(),
            &TierScheme::default(),
        )
        .unwrap();
    run::run(plan, Arc::new(workload)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_lookups_with_misses_are_all_answered_correctly() {
    let served = serve().await;
    for (scenario, popularity) in [
        (Scenario::Uniform, Popularity::Uniform),
        (Scenario::Zipf, Popularity::Zipf { exponent: 1.0 }),
    ] {
        let report = load(&served, plan(&served, scenario), popularity, 0.2).await;
        assert!(report.tally.requests > 0, "{report}");
        assert_eq!(report.errors(), 0, "{report}");
        assert_eq!(report.tally.ids, report.tally.requests);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_batches_count_every_id() {
    let served = serve().await;
    let report = load(
        &served,
        plan(&served, Scenario::BatchJson),
        Popularity::Uniform,
        0.1,
    )
    .await;
    assert!(report.tally.requests > 0, "{report}");
    assert_eq!(report.errors(), 0, "{report}");
    assert_eq!(report.tally.ids, report.tally.requests * 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_batches_are_checked_against_the_binary_protocol() {
    let served = serve().await;
    let report = load(
        &served,
        plan(&served, Scenario::BatchBincode),
        Popularity::Uniform,
        0.1,
    )
    .await;
    assert!(report.tally.requests > 0, "{report}");
    assert_eq!(report.errors(), 0, "{report}");
    assert_eq!(report.tally.ids, report.tally.requests * 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_runs_split_lookups_by_selection_overlap() {
    let served = serve().await;
    let mut plan = plan(&served, Scenario::Mixed);
    plan.duration = Duration::from_millis(600);
    plan.selections = Some(SelectionPlan {
        budget: 1_000.0,
        interval: Duration::from_millis(200),
        max_ids: 10,
    });
    let report = load(&served, plan, Popularity::Uniform, 0.0).await;
    assert_eq!(report.errors(), 0, "{report}");
    assert!(report.selections.len() >= 2, "{report}");
    let (during, outside) = report.tally.by_overlap.as_ref().unwrap();
    assert_eq!(during.len() + outside.len(), report.tally.latency.len());
    assert!(report.to_json()["selections"].as_array().unwrap().len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_scenarios_are_accepted_and_counted_per_event() {
    let served = serve_with(true).await;
    let workload =
        || Arc::new(Workload::from_store(&served.store, Popularity::Uniform, 0.0, 5).unwrap());
    for (scenario, per_request) in [(Scenario::Events, 1), (Scenario::EventsBatch, 50)] {
        let mut plan = plan(&served, scenario);
        plan.token = Some(TOKEN.to_string());
        let report = run::run(plan, workload()).await.unwrap();
        assert!(report.tally.requests > 0, "{report}");
        assert_eq!(report.errors(), 0, "{report}");
        assert_eq!(report.tally.ids, report.tally.requests * per_request);
    }
    // Without the token every event is refused, and counted as wrong.
    let report = run::run(plan(&served, Scenario::Events), workload())
        .await
        .unwrap();
    assert!(report.tally.requests > 0);
    assert_eq!(report.errors(), report.tally.requests, "{report}");
    assert!(
        report.tally.errors.keys().any(|kind| kind.contains("401")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_mixed_streams_events_at_the_rate_beside_lookups() {
    let served = serve_with(true).await;
    let mut plan = plan(&served, Scenario::EventsMixed);
    plan.token = Some(TOKEN.to_string());
    plan.duration = Duration::from_millis(1_000);
    plan.stream = Some(StreamPlan {
        rate: 10_000.0,
        batch: 100,
        connections: 2,
    });
    let workload = Workload::from_store(&served.store, Popularity::Uniform, 0.0, 5).unwrap();
    let report = run::run(plan, Arc::new(workload)).await.unwrap();
    assert_eq!(report.errors(), 0, "{report}");
    assert!(report.tally.requests > 0, "{report}");
    let stream = report.stream.as_ref().unwrap();
    // 10,000 events/s in batches of 100 over 2 connections: 50 batches a second each, about
    // 100 measured requests in 1 s (the rate is kept, not exceeded).
    assert!((60..=110).contains(&stream.requests), "{report}");
    assert_eq!(stream.ids, stream.requests * 100);
    assert!(report.to_json()["stream"]["events_per_s"].as_f64().unwrap() > 5_000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_sends_at_its_rate_whatever_the_connections() {
    let served = serve().await;
    let mut plan = plan(&served, Scenario::Uniform);
    plan.rate = Some(2_000.0);
    plan.duration = Duration::from_millis(1_000);
    let report = load(&served, plan, Popularity::Uniform, 0.0).await;
    assert_eq!(report.errors(), 0, "{report}");
    // 2,000 a second over 4 connections for 1 s: 2,000 requests due in the measured second
    // (a few at the edges may fall either side of the deadline).
    assert!((1_950..=2_000).contains(&report.tally.requests), "{report}");
    assert_eq!(report.to_json()["offered_rate"], 2_000.0);
    assert!(report.to_string().contains("open loop, 2000 req/s asked"));
}

/// A server on 127.0.0.1 answering every request `200 {}` after `delay`, one at a time per
/// connection.
async fn slow_server(delay: Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut buffer, mut filled) = (vec![0u8; 4096], 0);
                loop {
                    let Ok(read) = socket.read(&mut buffer[filled..]).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    filled += read;
                    // GET requests: each ends at its blank line.
                    while let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        buffer.copy_within(end + 4..filled, 0);
                        filled -= end + 4;
                        tokio::time::sleep(delay).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_charges_a_slow_server_for_the_requests_it_delays() {
    // Answers take 20 ms; one connection is asked for 200 a second (one every 5 ms). The
    // closed loop waits for each answer and sees ~20 ms; the open loop counts from the time
    // each request was due, so its latency grows with the backlog (~15 ms more per request).
    let addr = slow_server(Duration::from_millis(20)).await;
    let run = |rate| {
        let plan = Plan {
            target: addr,
            scenario: Scenario::Uniform,
            connections: 1,
            rate,
            batch: 1,
            duration: Duration::from_millis(500),
            warmup: Duration::ZERO,
            max_requests: None,
            check_every: 0,
            seed: 3,
            selections: None,
            token: None,
            stream: None,
        };
        let workload = Workload::new(vec![1, 2, 3], Popularity::Uniform, 0.0, 1).unwrap();
        run::run(plan, Arc::new(workload))
    };
    let closed = run(None).await.unwrap();
    let open = run(Some(200.0)).await.unwrap();
    let p50 = |report: &Report| crv_loadtest::report::Percentiles::of(&report.tally.latency).p50;
    assert_eq!(closed.errors() + open.errors(), 0, "{closed}{open}");
    assert!(p50(&closed) < 80_000, "{closed}");
    assert!(p50(&open) > 80_000, "{open}");
}

#[tokio::test]
async fn a_missing_server_is_an_error_not_a_report() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let workload = Workload::new(vec![1, 2, 3], Popularity::Uniform, 0.0, 1).unwrap();
    let plan = Plan {
        target: addr,
        scenario: Scenario::Uniform,
        connections: 1,
        rate: None,
        batch: 1,
        duration: Duration::from_millis(100),
        warmup: Duration::ZERO,
        max_requests: None,
        check_every: 1,
        seed: 1,
        selections: None,
        token: None,
        stream: None,
    };
    let error = run::run(plan, Arc::new(workload)).await.unwrap_err();
    assert!(error.to_string().contains("cannot connect"), "{error}");
}
