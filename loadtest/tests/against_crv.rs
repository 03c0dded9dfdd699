//! The generator against a real crv server: `crv::api::serve` on 127.0.0.1:0 over a small
//! generated store, each scenario run briefly through `run::run`, and every answer checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crv::ScoreParams;
use crv::api::{self, AppState, ServerConfig};
use crv::kernel::TierScheme;
use crv_loadtest::report::Report;
use crv_loadtest::run::{self, Plan, SelectionPlan};
use crv_loadtest::scenario::Scenario;
use crv_loadtest::workload::{Popularity, Workload};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const CUSTOMERS: u64 = 2_000;

struct Served {
    _dir: tempfile::TempDir,
    store: PathBuf,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve() -> Served {
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
        batch: 50,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        max_requests: None,
        check_every: 1,
        seed: 9,
        selections: None,
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
        batch: 1,
        duration: Duration::from_millis(100),
        warmup: Duration::ZERO,
        max_requests: None,
        check_every: 1,
        seed: 1,
        selections: None,
    };
    let error = run::run(plan, Arc::new(workload)).await.unwrap_err();
    assert!(error.to_string().contains("cannot connect"), "{error}");
}
