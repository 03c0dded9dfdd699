//! The HTTP API as a client sees it: a real server on 127.0.0.1:0 over a small generated store,
//! a real HTTP/1.1 client, answers checked against the library's own scores and selections, every
//! error status, and a graceful shutdown with a request in flight.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crv::api::admission::AdmissionLimits;
use crv::api::wire::MAX_BODY_BYTES;
use crv::api::{self, AppState};
use crv::campaign::{self, CampaignSpec};
use crv::kernel::{self, Scored, TierScheme};
use crv::{CustomerId, ScoreParams, Store};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const CUSTOMERS: u64 = 3_000;

/// A served store and what the library says about it, computed apart from the server.
struct Served {
    _dir: tempfile::TempDir,
    store_path: PathBuf,
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(limits: AdmissionLimits) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("customers.csv");
        let store_path = dir.path().join("customers.crv");
        let csv = std::fs::File::create(&csv_path).unwrap();
        crv::synthetic::write_customers_csv(csv, CUSTOMERS, 7).unwrap();
        crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
        let store = Store::open(&store_path).unwrap();
        let state = Arc::new(
            AppState::new(store, ScoreParams::default(), TierScheme::default(), limits).unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(api::serve(listener, Arc::clone(&state), async {
            let _ = stopped.await;
        }));
        Served {
            _dir: dir,
            store_path,
            addr,
            state,
            stop: Some(stop),
            server,
        }
    }

    async fn default() -> Served {
        Served::start(AdmissionLimits::default()).await
    }

    /// The store and its scores, opened and computed by the library, not the server.
    fn library(&self) -> (Store, Scored) {
        let store = Store::open(&self.store_path).unwrap();
        let scored =
            kernel::score_store(&store, &ScoreParams::default(), &TierScheme::default()).unwrap();
        (store, scored)
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Some("application/json"), Vec::new())
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// One request on a fresh connection.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{status}: body is not JSON ({e}): {bytes:?}");
        });
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Answer {
    /// Asserts an error answer: its status, code, and a fragment of its message.
    fn assert_error(&self, status: StatusCode, code: &str, fragment: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["error"]["code"], code, "{}", self.json);
        let message = self.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(fragment),
            "`{fragment}` not in `{message}`"
        );
    }
}

fn f32_of(value: &Value) -> f32 {
    value.as_f64().unwrap() as f32
}

/// Asserts a JSON number equals `expected` up to the last bit or two: serde_json's default
/// float parser may be one ulp off.
fn assert_close(value: &Value, expected: f64, what: &str) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {value} is not a number"));
    assert!(
        (got - expected).abs() <= 1e-14 * expected.abs().max(1.0),
        "{what}: {got} != {expected}"
    );
}

#[tokio::test]
async fn healthz_answers_ok() {
    let served = Served::default().await;
    let answer = served.get("/healthz").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["status"], "ok");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    served.stop().await;
}

#[tokio::test]
async fn customer_endpoint_returns_the_library_scores() {
    let served = Served::default().await;
    let (store, scored) = served.library();
    for row in [0, 1, 1_234, CUSTOMERS as usize - 1] {
        let id = store.ids()[row];
        let answer = served.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        let json = &answer.json;
        assert_eq!(json["customer_id"], id);
        assert_eq!(f32_of(&json["crv"]), scored.crv[row]);
        assert_eq!(json["tier"], scored.tiers.tier[row].as_str());
        assert_eq!(json["rank"], scored.tiers.rank[row]);
        assert_eq!(f32_of(&json["percentile"]), scored.tiers.percentile[row]);
    }
    served.stop().await;
}

#[tokio::test]
async fn customer_endpoint_rejects_a_malformed_id_with_400() {
    let served = Served::default().await;
    for id in ["abc", "-1", "1.5", "18446744073709551616"] {
        let answer = served.get(&format!("/v1/customers/{id}")).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_id", id);
    }
    served.stop().await;
}

#[tokio::test]
async fn customer_endpoint_answers_404_for_an_unknown_id() {
    let served = Served::default().await;
    let (store, _) = served.library();
    assert_eq!(store.row_of(CustomerId(u64::MAX)), None);
    let answer = served.get(&format!("/v1/customers/{}", u64::MAX)).await;
    answer.assert_error(StatusCode::NOT_FOUND, "not_found", "not in the store");
    served.stop().await;
}

#[tokio::test]
async fn tiers_endpoint_matches_the_library_summary() {
    let served = Served::default().await;
    let (_, scored) = served.library();
    let answer = served.get("/v1/tiers").await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = &answer.json;
    assert_eq!(json["customers"], CUSTOMERS);
    assert_eq!(json["scheme"], "cumulative_value");
    assert_eq!(json["cuts"], json!([0.8, 0.95]));
    for tier in crv::Tier::ALL {
        let stats = scored.tiers.summary.get(tier);
        let got = &json["tiers"][tier.as_str()];
        assert_eq!(got["count"], stats.count, "tier {tier}");
        assert_close(
            &got["customer_share"],
            stats.customer_share,
            "customer_share",
        );
        assert_close(&got["crv_sum"], stats.crv_sum, "crv_sum");
        assert_close(&got["value_share"], stats.value_share, "value_share");
        assert_eq!(
            got["lowest_crv"].as_f64().map(|v| v as f32),
            stats.lowest_crv,
            "tier {tier}"
        );
    }
    assert_close(&json["total_crv"], scored.totals.crv_sum(), "total_crv");
    served.stop().await;
}

#[tokio::test]
async fn lookup_returns_one_entry_per_id_and_marks_unknown_ids() {
    let served = Served::default().await;
    let (store, scored) = served.library();
    let known = [store.ids()[5], store.ids()[2_999], store.ids()[5]];
    let ids = json!([known[0], u64::MAX, known[1], known[2]]);
    let answer = served
        .post("/v1/customers/lookup", &json!({ "ids": ids }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let customers = answer.json["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 4);
    assert_eq!(
        customers[1],
        json!({"customer_id": u64::MAX, "found": false})
    );
    for (entry, row) in [
        (&customers[0], 5),
        (&customers[2], 2_999),
        (&customers[3], 5),
    ] {
        assert_eq!(entry["found"], true);
        assert_eq!(entry["customer_id"], store.ids()[row]);
        assert_eq!(f32_of(&entry["crv"]), scored.crv[row]);
        assert_eq!(entry["tier"], scored.tiers.tier[row].as_str());
        assert_eq!(entry["rank"], scored.tiers.rank[row]);
    }
    served.stop().await;
}

#[tokio::test]
async fn lookup_rejects_malformed_json_with_400_naming_the_problem() {
    let served = Served::default().await;
    let cases: [(&[u8], &str, &str); 5] = [
        (b"{\"ids\": [1, 2", "malformed_json", "line 1 column"),
        (b"[1, 2]", "malformed_json", "JSON object"),
        (b"{\"ids\": [\"x\"]}", "malformed_json", "field `ids`"),
        (b"{}", "malformed_json", "field `ids` is required"),
        (b"{\"ids\": [], \"id\": 1}", "unknown_field", "field `id`"),
    ];
    for (body, code, fragment) in cases {
        let answer = served
            .send(
                Method::POST,
                "/v1/customers/lookup",
                Some("application/json"),
                body.to_vec(),
            )
            .await;
        answer.assert_error(StatusCode::BAD_REQUEST, code, fragment);
    }
    served.stop().await;
}

#[tokio::test]
async fn lookup_rejects_more_ids_than_the_limit() {
    let served = Served::default().await;
    let ids: Vec<u64> = (0..=crv::api::wire::MAX_LOOKUP_IDS as u64).collect();
    let answer = served
        .post("/v1/customers/lookup", &json!({ "ids": ids }))
        .await;
    answer.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
        "at most 10000",
    );
    served.stop().await;
}

#[tokio::test]
async fn select_matches_the_library_selection() {
    let served = Served::default().await;
    let (store, scored) = served.library();
    let spec = CampaignSpec {
        budget: 2_000.0,
        filter: "tier in (A, B)".to_string(),
        ..CampaignSpec::default()
    };
    let expected = campaign::select_targets(&store, &scored, &spec).unwrap();
    let answer = served
        .post(
            "/v1/select",
            &json!({"budget": 2_000.0, "where": "tier in (A, B)", "time_limit_ms": 30_000}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let json = &answer.json;
    let selection = &expected.selection;
    assert!(!selection.rows.is_empty());
    assert_eq!(json["selected"], selection.rows.len());
    assert_close(&json["total_crv"], selection.objective, "total_crv");
    assert_close(&json["total_cost"], expected.total_cost, "total_cost");
    assert_close(&json["budget_left"], expected.budget_left, "budget_left");
    assert_close(&json["upper_bound"], selection.upper_bound, "upper_bound");
    assert_close(&json["gap"], selection.gap, "gap");
    assert_eq!(json["optimal"], selection.optimal);
    assert!(json["time_ms"].as_f64().unwrap() >= 0.0);
    let ids: Vec<u64> = selection.rows.iter().map(|&row| store.ids()[row]).collect();
    assert_eq!(json["ids"], json!(ids));
    assert_eq!(json["ids_truncated"], false);
    served.stop().await;
}

#[tokio::test]
async fn select_returns_at_most_max_ids_target_ids() {
    let served = Served::default().await;
    let answer = served
        .post("/v1/select", &json!({"budget": 2_000.0, "max_ids": 3}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["ids"].as_array().unwrap().len(), 3);
    assert!(answer.json["selected"].as_u64().unwrap() > 3);
    assert_eq!(answer.json["ids_truncated"], true);
    served.stop().await;
}

#[tokio::test]
async fn select_accepts_the_served_scoring_parameters_and_rejects_others() {
    let served = Served::default().await;
    let same = served
        .post(
            "/v1/select",
            &json!({"budget": 100.0, "discount": 0.1, "horizon": 5}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.json);
    let other_discount = served
        .post("/v1/select", &json!({"budget": 100.0, "discount": 0.2}))
        .await;
    other_discount.assert_error(StatusCode::BAD_REQUEST, "invalid_parameter", "`discount`");
    let other_horizon = served
        .post("/v1/select", &json!({"budget": 100.0, "horizon": "inf"}))
        .await;
    other_horizon.assert_error(StatusCode::BAD_REQUEST, "invalid_parameter", "`horizon`");
    served.stop().await;
}

#[tokio::test]
async fn select_rejects_invalid_parameters_with_400() {
    let served = Served::default().await;
    let cases = [
        (json!({"budget": -1.0}), "invalid_parameter", "budget"),
        (
            json!({"budget": "a lot"}),
            "malformed_json",
            "field `budget`",
        ),
        (
            json!({"budget": 1.0, "cost": "nope"}),
            "invalid_parameter",
            "`cost`",
        ),
        (
            json!({"budget": 1.0, "where": "tier ="}),
            "invalid_parameter",
            "",
        ),
        (
            json!({"budget": 1.0, "time_limit_ms": 3_600_000}),
            "invalid_parameter",
            "time_limit_ms",
        ),
        (
            json!({"budget": 1.0, "budjet": 2.0}),
            "unknown_field",
            "`budjet`",
        ),
    ];
    for (body, code, fragment) in cases {
        let answer = served.post("/v1/select", &body).await;
        answer.assert_error(StatusCode::BAD_REQUEST, code, fragment);
    }
    served.stop().await;
}

#[tokio::test]
async fn wrong_method_gets_405_naming_the_allowed_one() {
    let served = Served::default().await;
    for (method, path, allowed) in [
        (Method::POST, "/healthz", "GET"),
        (Method::DELETE, "/v1/customers/1", "GET"),
        (Method::GET, "/v1/customers/lookup", "POST"),
        (Method::GET, "/v1/select", "POST"),
        (Method::PUT, "/v1/tiers", "GET"),
    ] {
        let answer = served
            .send(method, path, Some("application/json"), Vec::new())
            .await;
        answer.assert_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            allowed,
        );
        assert_eq!(answer.headers[header::ALLOW], allowed);
    }
    served.stop().await;
}

#[tokio::test]
async fn unknown_path_gets_404() {
    let served = Served::default().await;
    for path in [
        "/",
        "/v2/tiers",
        "/v1/customers",
        "/v1/customers/1/orders",
        "/healthz/",
    ] {
        served
            .get(path)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found", "no endpoint");
    }
    served.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let served = Served::default().await;
    let mut body = b"{\"ids\": [".to_vec();
    body.resize(MAX_BODY_BYTES + 1, b' ');
    let answer = served
        .send(
            Method::POST,
            "/v1/customers/lookup",
            Some("application/json"),
            body,
        )
        .await;
    answer.assert_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "1048576",
    );
    served.stop().await;
}

#[tokio::test]
async fn post_without_a_json_content_type_gets_415() {
    let served = Served::default().await;
    for content_type in [None, Some("text/plain"), Some("application/jsonp")] {
        let answer = served
            .send(
                Method::POST,
                "/v1/select",
                content_type,
                b"{\"budget\": 1}".to_vec(),
            )
            .await;
        answer.assert_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        );
    }
    let with_charset = served
        .send(
            Method::POST,
            "/v1/select",
            Some("application/json; charset=utf-8"),
            b"{\"budget\": 1}".to_vec(),
        )
        .await;
    assert_eq!(with_charset.status, StatusCode::OK, "{}", with_charset.json);
    served.stop().await;
}

#[tokio::test]
async fn select_beyond_the_admission_queue_gets_503_with_retry_after() {
    // No turns to run and one place to wait: the first select waits for ever, the second is
    // turned away.
    let served = Arc::new(
        Served::start(AdmissionLimits {
            max_running: 0,
            max_waiting: 1,
        })
        .await,
    );
    let waiting = {
        let served = Arc::clone(&served);
        tokio::spawn(async move { served.post("/v1/select", &json!({"budget": 1.0})).await })
    };
    while served.state.admission().admitted() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let answer = served.post("/v1/select", &json!({"budget": 1.0})).await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "retry");
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    assert!(!waiting.is_finished());
    waiting.abort();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_serve_returns() {
    let served = Served::default().await;
    let (store, _) = served.library();
    let body = json!({"ids": [store.ids()[0]]}).to_string();
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    // `Expect: 100-continue`: the server says `100 Continue` when the handler starts reading
    // the body, so the request is provably in flight before shutdown fires.
    let head = format!(
        "POST /v1/customers/lookup HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    let Served {
        mut stop,
        server,
        addr,
        ..
    } = served;
    stop.take().unwrap().send(()).unwrap();
    // Give serve time to stop accepting; the in-flight request must be unaffected by it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !server.is_finished(),
        "serve waits for the in-flight request"
    );
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\"found\":true"), "{response}");

    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once the connection is drained")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// A JSON row field as the CSV writes it: numbers and booleans as text, `null` empty.
fn csv_field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_answers_the_rows_crv_simulate_writes() {
    let served = Served::default().await;
    let scenarios = json!({
        "scenarios": [
            {"name": "plain", "budget": 300, "objective": "crv"},
            {"name": "offer", "budget": 300, "retention_uplift": 0.05, "response_rate": 0.3,
             "where": "segment != basic"}
        ],
        "sweep": {"discount": [0.08, 0.12], "margin_uplift": [0.0, 0.1]}
    });
    let dir = tempfile::tempdir().unwrap();
    let (file, results) = (dir.path().join("s.json"), dir.path().join("r.csv"));
    std::fs::write(&file, scenarios.to_string()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
        .args([
            "simulate",
            served.store_path.to_str().unwrap(),
            "--scenarios",
        ])
        .args([&file, &PathBuf::from("-o"), &results])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut body = scenarios.clone();
    body["frontier"] = json!({"scenario": "offer", "points": 5});
    let answer = served.post("/v1/simulate", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let rows = answer.json["results"].as_array().unwrap();
    let mut reader = csv::Reader::from_path(&results).unwrap();
    let headers = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(rows) {
        assert_eq!(row.as_object().unwrap().len(), headers.len());
        for (field, written) in headers.iter().zip(record) {
            if field == "time_ms" {
                continue;
            }
            let answered = csv_field(&row[field]);
            // serde_json's default float parser may be one ulp off the text it reads.
            match (written.parse::<f64>(), answered.parse::<f64>()) {
                (Ok(a), Ok(b)) => assert!(
                    (a - b).abs() <= 1e-14 * a.abs().max(1.0),
                    "{field}: {written} vs {answered}"
                ),
                _ => assert_eq!(written, answered, "{field}"),
            }
        }
    }
    let frontier = &answer.json["frontier"];
    assert_eq!(frontier["scenario"], "offer");
    assert_eq!(frontier["points"].as_array().unwrap().len(), 5);

    let bad = served
        .post(
            "/v1/simulate",
            &json!({"scenarios": [{"name": "x", "discount": -1}]}),
        )
        .await;
    bad.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_scenario",
        "request body: scenario `x`, field `discount`",
    );
    let unknown = served
        .post("/v1/simulate", &json!({"scenarios": [{}], "frontiers": {}}))
        .await;
    unknown.assert_error(StatusCode::BAD_REQUEST, "unknown_field", "`frontiers`");
    served.stop().await;
}
