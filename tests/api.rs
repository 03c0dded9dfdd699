//! The HTTP API as a client sees it: a real server on 127.0.0.1:0 over a small generated store,
//! a real HTTP/1.1 client, answers checked against the library's own scores and selections
//! (JSON, bincode and CSV), every error status, the limits, the metrics, and a graceful
//! shutdown with a request in flight.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crv::Table;
use crv::api::admission::AdmissionLimits;
use crv::api::binary::{self, LookupRequest};
use crv::api::wire::{CSV_CHUNK_BYTES, DEFAULT_MAX_BODY_BYTES, MAX_LOOKUP_IDS};
use crv::api::{self, AppState, ServerConfig};
use crv::campaign::report::{TARGETS_CSV_HEADER, TargetColumns};
use crv::campaign::{CampaignSpec, SelectionRequest, Targets};
use crv::kernel::TierScheme;
use crv::{CustomerId, Horizon, ScoreParams, Store};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod common;
use common::purchase_valuation;

const CUSTOMERS: u64 = 3_000;
/// Customers of the store that a selection runs on while lookups go on.
const BUSY_CUSTOMERS: u64 = 100_000;

/// A served store and what the library says about it, computed apart from the server.
struct Served {
    _dir: tempfile::TempDir,
    store_path: PathBuf,
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
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
        assert_eq!(f32_of(&json["crv"]), scored.crv()[row]);
        assert_eq!(json["tier"], scored.tiers().tier[row].as_str());
        assert_eq!(json["rank"], scored.tiers().rank[row]);
        assert_eq!(f32_of(&json["percentile"]), scored.tiers().percentile[row]);
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
        let stats = scored.tiers().summary.get(tier);
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
    assert_close(&json["total_crv"], scored.totals().crv_sum(), "total_crv");
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
        assert_eq!(f32_of(&entry["crv"]), scored.crv()[row]);
        assert_eq!(entry["tier"], scored.tiers().tier[row].as_str());
        assert_eq!(entry["rank"], scored.tiers().rank[row]);
    }
    served.stop().await;
}

#[tokio::test]
async fn lookup_rejects_malformed_json_with_400_naming_the_problem() {
    let served = Served::default().await;
    let cases: [(&[u8], &str, &str); 5] = [
        (b"{\"ids\": [1, 2", "malformed_json", "line 1 column"),
        (b"[1, 2]", "malformed_json", "JSON object"),
        (b"{\"ids\": [true]}", "malformed_json", "field `ids`"),
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
    let expected = select_targets(&scored, &spec).unwrap();
    let sent = std::time::Instant::now();
    let answer = served
        .post(
            "/v1/select",
            &json!({"budget": 2_000.0, "where": "tier in (A, B)", "time_limit_ms": 30_000}),
        )
        .await;
    let round_trip_ms = sent.elapsed().as_secs_f64() * 1e3;
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
    // The solve's own time lies inside the request's round trip.
    let time_ms = json["time_ms"].as_f64().unwrap();
    assert!(
        time_ms > 0.0 && time_ms <= round_trip_ms,
        "time_ms {time_ms}, round trip {round_trip_ms} ms"
    );
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
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::DELETE, "/v1/customers/1", "GET, HEAD"),
        (Method::GET, "/v1/customers/lookup", "POST"),
        (Method::GET, "/v1/select", "POST"),
        (Method::PUT, "/v1/tiers", "GET, HEAD"),
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
        "/v1",
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
    body.resize(DEFAULT_MAX_BODY_BYTES + 1, b' ');
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
async fn lookup_by_bincode_gives_the_library_scores() {
    let served = Served::default().await;
    let (store, scored) = served.library();
    let rows = [7, 2_999, 7];
    let ids = vec![
        store.ids()[rows[0]],
        u64::MAX,
        store.ids()[rows[1]],
        store.ids()[rows[2]],
    ];
    let (status, headers, bytes) = served
        .send_raw(
            Method::POST,
            "/v1/customers/lookup",
            &[(header::CONTENT_TYPE, binary::MEDIA_TYPE)],
            binary::encode(&LookupRequest { ids: ids.clone() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bytes:?}");
    assert_eq!(headers[header::CONTENT_TYPE], binary::MEDIA_TYPE);
    let customers = binary::decode_response(&bytes).unwrap().customers;
    assert_eq!(customers.len(), 4);
    assert_eq!(customers[1].customer_id, u64::MAX);
    assert_eq!(customers[1].score, None);
    for (entry, row) in [&customers[0], &customers[2], &customers[3]]
        .into_iter()
        .zip(rows)
    {
        assert_eq!(entry.customer_id, store.ids()[row]);
        let score = entry.score.unwrap();
        assert_eq!(score.crv, scored.crv()[row]);
        assert_eq!(score.tier, scored.tiers().tier[row]);
        assert_eq!(score.rank, scored.tiers().rank[row]);
        assert_eq!(score.percentile, scored.tiers().percentile[row]);
    }
    served.stop().await;
}

#[tokio::test]
async fn lookup_rejects_malformed_bincode_and_too_many_ids_with_400() {
    let served = Served::default().await;
    let too_many = LookupRequest {
        ids: (0..=MAX_LOOKUP_IDS as u64).collect(),
    };
    let mut trailing = binary::encode(&LookupRequest { ids: vec![1] });
    trailing.push(0);
    for (body, code, fragment) in [
        (vec![1, 2, 3], "malformed_bincode", "8-byte id count"),
        (trailing, "malformed_bincode", "1 bytes follow"),
        (
            binary::encode(&too_many),
            "invalid_parameter",
            "at most 10000",
        ),
    ] {
        served
            .send(
                Method::POST,
                "/v1/customers/lookup",
                Some(binary::MEDIA_TYPE),
                body,
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST, code, fragment);
    }
    served.stop().await;
}

#[tokio::test]
async fn lookup_with_another_content_type_gets_415_naming_both_types() {
    let served = Served::default().await;
    for content_type in [None, Some("text/plain"), Some("application/octet-stream")] {
        let answer = served
            .send(
                Method::POST,
                "/v1/customers/lookup",
                content_type,
                b"{\"ids\": []}".to_vec(),
            )
            .await;
        answer.assert_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "application/json",
        );
        assert!(
            answer.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains(binary::MEDIA_TYPE)
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn select_rescores_with_its_own_discount_and_horizon_and_keeps_the_served_scores() {
    let served = Served::default().await;
    let tiers_before = served.get("/v1/tiers").await.json;
    let (store, _) = served.library();
    let probe = store.ids()[11];
    let lookup_before = served.get(&format!("/v1/customers/{probe}")).await.json;

    let params = ScoreParams {
        discount: 0.25,
        horizon: Horizon::Infinite,
    };
    let (_, rescored) = served.library_with(&params);
    let spec = CampaignSpec {
        budget: 1_500.0,
        filter: "tier = A".to_string(),
        ..CampaignSpec::default()
    };
    let expected = select_targets(&rescored, &spec).unwrap();
    let answer = served
        .post(
            "/v1/select",
            &json!({"budget": 1_500.0, "where": "tier = A", "discount": 0.25, "horizon": "inf"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let json = &answer.json;
    assert_eq!(json["rescored"], true);
    assert_eq!(json["discount"], 0.25);
    assert_eq!(json["horizon"], "inf");
    assert_eq!(json["selected"], expected.selection.rows.len());
    assert_close(
        &json["total_crv"],
        expected.selection.objective,
        "total_crv",
    );
    let ids: Vec<u64> = expected
        .selection
        .rows
        .iter()
        .map(|&row| store.ids()[row])
        .collect();
    assert_eq!(json["ids"], json!(ids));

    let served_params = served
        .post(
            "/v1/select",
            &json!({"budget": 100.0, "discount": 0.1, "horizon": 5}),
        )
        .await;
    assert_eq!(
        served_params.json["rescored"], false,
        "{}",
        served_params.json
    );
    assert_eq!(served_params.json["horizon"], 5);

    assert_eq!(served.get("/v1/tiers").await.json, tiers_before);
    assert_eq!(
        served.get(&format!("/v1/customers/{probe}")).await.json,
        lookup_before
    );
    served.stop().await;
}

#[tokio::test]
async fn select_rejects_invalid_scoring_parameters_naming_the_field() {
    let served = Served::default().await;
    for (body, code, fragment) in [
        (
            json!({"budget": 1.0, "discount": -0.1}),
            "invalid_parameter",
            "discount",
        ),
        (
            json!({"budget": 1.0, "discount": "abc"}),
            "malformed_json",
            "field `discount`",
        ),
        (
            json!({"budget": 1.0, "horizon": 0}),
            "invalid_parameter",
            "horizon",
        ),
        (
            json!({"budget": 1.0, "horizon": "abc"}),
            "invalid_parameter",
            "horizon",
        ),
    ] {
        served.post("/v1/select", &body).await.assert_error(
            StatusCode::BAD_REQUEST,
            code,
            fragment,
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn select_streams_every_target_as_csv_when_asked() {
    let served = Served::default().await;
    let (_, scored) = served.library();
    // A budget that takes nearly every positive customer: more rows than one chunk holds.
    let spec = CampaignSpec {
        budget: 1e7,
        ..CampaignSpec::default()
    };
    let expected = select_targets(&scored, &spec).unwrap();
    let columns = TargetColumns::new(&scored, "cost").unwrap();
    let mut csv = TARGETS_CSV_HEADER.as_bytes().to_vec();
    for &row in &expected.selection.rows {
        columns.write_row(&mut csv, row).unwrap();
    }
    assert!(csv.len() > CSV_CHUNK_BYTES, "the test must span chunks");

    let (status, headers, body) = served
        .send_raw(
            Method::POST,
            "/v1/select",
            &[
                (header::CONTENT_TYPE, "application/json"),
                (header::ACCEPT, "text/csv"),
            ],
            json!({"budget": 1e7, "max_ids": 3})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv");
    assert_eq!(
        headers["crv-selected"],
        expected.selection.rows.len().to_string()
    );
    assert_eq!(
        headers["crv-optimal"],
        expected.selection.optimal.to_string()
    );
    assert_eq!(headers["crv-rescored"], "false");
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        String::from_utf8(csv).unwrap()
    );
    served.stop().await;
}

/// One Prometheus sample: metric name, labels in order, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Every sample of a Prometheus text exposition as (name, labels, value), checking the syntax of
/// each line: `# HELP`/`# TYPE` comments, or `name{key="value",...} number`.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, mut rest) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}")),
            ),
            None => (series, ""),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let mut labels = Vec::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
            let (label, after) = after.split_once('"').unwrap_or_else(|| panic!("{line}"));
            labels.push((key.to_string(), label.to_string()));
            rest = after.strip_prefix(',').unwrap_or(after);
        }
        samples.push((name.to_string(), labels, value));
    }
    samples
}

fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| *value)
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status_and_parse() {
    let served = Served::default().await;
    let (store, _) = served.library();
    for row in [1, 2, 3] {
        let answer = served
            .get(&format!("/v1/customers/{}", store.ids()[row]))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    served.get(&format!("/v1/customers/{}", u64::MAX)).await;
    served.get("/v1/customers/abc").await;
    served.get("/nowhere").await;
    served.get("/v2/customers/1").await;
    served
        .post("/v1/customers/lookup", &json!({"ids": [1]}))
        .await;
    served.post("/v1/select", &json!({"budget": 10.0})).await;

    let (status, headers, body) = served
        .send_raw(Method::GET, "/metrics", &[], Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    let samples = parse_metrics(&text);
    let requests = |route: &str, status: &str| {
        sample(
            &samples,
            "crv_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/v1/customers/{id}", "200"), Some(3.0), "{text}");
    assert_eq!(requests("/v1/customers/{id}", "404"), Some(1.0));
    assert_eq!(requests("/v1/customers/{id}", "400"), Some(1.0));
    assert_eq!(requests("unmatched", "404"), Some(2.0));
    assert_eq!(requests("/v1/customers/lookup", "200"), Some(1.0));
    assert_eq!(requests("/v1/select", "200"), Some(1.0));
    assert_eq!(requests("/v1/tiers", "200"), None);
    assert!(
        !text.contains("abc") && !text.contains("/v2/"),
        "raw paths leak into labels"
    );
    assert_eq!(
        sample(&samples, "crv_store_rows", &[]),
        Some(CUSTOMERS as f64)
    );
    let scored = served.state.table();
    for (phase, time) in [
        ("open", served.state.open_time()),
        ("score", scored.score_time()),
        ("tiers", scored.tier_time()),
    ] {
        let seconds = sample(&samples, "crv_startup_seconds", &[("phase", phase)]).unwrap();
        assert!(
            (seconds - time.as_secs_f64()).abs() <= 1e-9 + 1e-6 * seconds,
            "{phase}: exported {seconds} s, measured {time:?}"
        );
    }
    assert_eq!(sample(&samples, "crv_admission_running", &[]), Some(0.0));
    assert_eq!(sample(&samples, "crv_admission_waiting", &[]), Some(0.0));
    assert_eq!(
        sample(&samples, "crv_selection_duration_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "crv_rescoring_duration_seconds_count", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&samples, "crv_simulation_duration_seconds_count", &[]),
        Some(0.0)
    );

    // Every histogram: cumulative buckets ending at +Inf, and `_count` equal to that bucket;
    // a request histogram's count is the request counter of its series.
    let mut histograms = 0;
    for (name, labels, count) in &samples {
        let Some(base) = name.strip_suffix("_count") else {
            continue;
        };
        let bucket_name = format!("{base}_bucket");
        let buckets: Vec<(String, f64)> = samples
            .iter()
            .filter(|(n, l, _)| {
                *n == bucket_name && l.iter().filter(|(k, _)| k != "le").eq(labels.iter())
            })
            .map(|(_, l, v)| (l.iter().find(|(k, _)| k == "le").unwrap().1.clone(), *v))
            .collect();
        assert!(buckets.len() > 2, "{name}");
        assert!(
            buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{name}"
        );
        assert_eq!(buckets.last().unwrap().0, "+Inf");
        assert_eq!(buckets.last().unwrap().1, *count, "{name} {labels:?}");
        if base == "crv_http_request_duration_seconds" {
            let counter = samples
                .iter()
                .find(|(n, l, _)| n == "crv_http_requests_total" && l == labels)
                .unwrap();
            assert_eq!(counter.2, *count);
        }
        histograms += 1;
    }
    assert!(histograms >= 8, "{text}");
    for family in [
        "crv_http_requests_total",
        "crv_http_request_duration_seconds",
        "crv_selection_duration_seconds",
        "crv_rescoring_duration_seconds",
        "crv_simulation_duration_seconds",
        "crv_store_rows",
        "crv_startup_seconds",
        "crv_admission_running",
        "crv_admission_waiting",
    ] {
        assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
    served.stop().await;
}

fn config_with(change: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig::default();
    change(&mut config);
    config
}

#[tokio::test]
async fn client_that_does_not_finish_its_request_head_is_disconnected() {
    // A header timeout far from both the default (10 s) and the drain timeout, and a bracket
    // around it: a server that waits out another deadline fails.
    let header_timeout = Duration::from_millis(300);
    let served = Served::start(config_with(|config| {
        config.header_timeout = header_timeout;
        config.drain_timeout = Duration::from_secs(30);
    }))
    .await;
    // Half a head, and nothing at all: both connections are closed by the server.
    for sent in [&b"GET /healthz HTTP/1.1\r\nHost: loc"[..], b""] {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        let started = std::time::Instant::now();
        stream.write_all(sent).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("the server keeps a connection that sent {sent:?}"));
        let waited = started.elapsed();
        // The server's clock for a silent client starts at accept, which may come a moment
        // before `started`: a little slack below.
        assert!(
            waited >= header_timeout - Duration::from_millis(50)
                && waited < header_timeout + Duration::from_secs(2),
            "disconnected after {waited:?}, header timeout {header_timeout:?}"
        );
        // A close or a reset; never an answer to the unfinished request.
        if read.is_ok() {
            let answer = String::from_utf8_lossy(&answer);
            assert!(!answer.contains("200 OK"), "{answer}");
        }
    }
    // A whole request is still answered.
    assert_eq!(served.get("/healthz").await.status, StatusCode::OK);
    served.stop().await;
}

#[tokio::test]
async fn body_just_over_a_configured_limit_gets_413() {
    let served = Served::start(config_with(|config| config.max_body_bytes = 64)).await;
    let mut fits = b"{\"ids\": [1]}".to_vec();
    fits.resize(64, b' ');
    let mut over = fits.clone();
    over.push(b' ');
    let answer = served
        .send(
            Method::POST,
            "/v1/customers/lookup",
            Some("application/json"),
            fits,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    served
        .send(
            Method::POST,
            "/v1/customers/lookup",
            Some("application/json"),
            over,
        )
        .await
        .assert_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "64 bytes",
        );
    served.stop().await;
}

#[tokio::test]
async fn select_beyond_the_admission_queue_gets_503_with_retry_after() {
    // One turn to run and no place to wait: while a job holds the turn, a selection is turned
    // away at once; once it is released, selections run again.
    let served = Served::start(config_with(|config| {
        config.admission = AdmissionLimits {
            max_running: 1,
            max_waiting: 0,
        };
    }))
    .await;
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let state = Arc::clone(&served.state);
        tokio::spawn(async move {
            state
                .admission()
                .run(&Default::default(), move || {
                    released.recv().expect("the test releases the turn")
                })
                .await
        })
    };
    while served.state.admission().running() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let answer = served.post("/v1/select", &json!({"budget": 1.0})).await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "retry");
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let answer = served.post("/v1/select", &json!({"budget": 1.0})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    served.stop().await;
}

#[test]
fn server_config_rejects_absurd_limits_naming_the_flag() {
    assert!(ServerConfig::default().validate().is_ok());
    for (config, flag) in [
        (
            config_with(|c| {
                c.admission = AdmissionLimits {
                    max_running: 0,
                    max_waiting: 0,
                }
            }),
            "max-running",
        ),
        (config_with(|c| c.max_body_bytes = 0), "max-body-bytes"),
        (
            config_with(|c| c.admission.max_waiting = usize::MAX),
            "invalid max-waiting: 18446744073709551615: at most 65536",
        ),
        (
            config_with(|c| c.admission.max_running = 65_537),
            "invalid max-running",
        ),
        (config_with(|c| c.heavy_nice = 20), "heavy-nice"),
        (config_with(|c| c.max_connections = 0), "max-connections"),
        (config_with(|c| c.io_threads = 0), "invalid io-threads: 0"),
        (
            config_with(|c| c.io_threads = 1025),
            "invalid io-threads: 1025",
        ),
        (
            config_with(|c| c.header_timeout = Duration::ZERO),
            "header-timeout-ms",
        ),
    ] {
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains(flag), "{message}");
    }
}

#[tokio::test]
async fn lookups_keep_answering_while_a_selection_runs() {
    let served = Arc::new(Served::with_customers(BUSY_CUSTOMERS, ServerConfig::default()).await);
    let (store, scored) = served.library();
    // Re-scoring 10^5 customers and a knapsack over them keeps the rayon pool busy for a
    // while; selections follow one another until a lookup has been answered during one (a
    // single selection may end before the first lookup is sent: it no longer sorts tiers).
    let body = json!({"budget": 50_000.0, "discount": 0.3, "horizon": "inf"});
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let selections = {
        let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                answers.push(served.post("/v1/select", &body).await);
            }
            answers
        })
    };
    while served.state.admission().admitted() == 0 {
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    let started = std::time::Instant::now();
    let mut lookups = 0;
    let mut during = 0;
    while lookups < 50 || (during == 0 && started.elapsed() < Duration::from_secs(20)) {
        let row = (lookups * 7_919) % BUSY_CUSTOMERS as usize;
        let running = served.state.admission().admitted() > 0;
        let answer = served
            .get(&format!("/v1/customers/{}", store.ids()[row]))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(f32_of(&answer.json["crv"]), scored.crv()[row]);
        assert_eq!(answer.json["rank"], scored.tiers().rank[row]);
        lookups += 1;
        during += usize::from(running && served.state.admission().admitted() > 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = selections.await.unwrap();
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["rescored"], true);
    }
    eprintln!(
        "{lookups} lookups, {during} of them answered while one of {} selections ran",
        answers.len()
    );
    assert!(during > 0, "no lookup overlapped the selection");
}

/// Sends a request whose head asks `Expect: 100-continue` on each of `connections`
/// connections to a server of as many reactors (one connection each); once the server says
/// `100 Continue` on all of them (their handlers are reading the bodies, so the requests are in
/// flight), shuts the server down, then sends the bodies: every answer must still come, and
/// serve must return after them.
async fn assert_shutdown_drains(path: &str, body: String, fragment: &str, connections: usize) {
    // A drain timeout far longer than the wait below: serve must return because the
    // connections drained, not because the deadline passed.
    let served = Served::start(config_with(|config| {
        config.drain_timeout = Duration::from_secs(30);
        config.io_threads = connections;
    }))
    .await;
    let mut streams = Vec::new();
    for _ in 0..connections {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).await.unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        streams.push(stream);
    }

    let Served {
        mut stop,
        server,
        addr,
        ..
    } = served;
    stop.take().unwrap().send(()).unwrap();
    // Give serve time to stop accepting; the in-flight requests must be unaffected by it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !server.is_finished(),
        "serve waits for the in-flight requests"
    );
    for mut stream in streams {
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains(fragment), "{response}");
    }

    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once the connections are drained, long before the drain timeout")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_lookup_finish_then_serve_returns() {
    assert_shutdown_drains(
        "/v1/customers/lookup",
        json!({"ids": [1]}).to_string(),
        "\"customers\":[",
        1,
    )
    .await;
}

#[tokio::test]
async fn shutdown_drains_the_lookups_in_flight_on_every_reactor() {
    assert_shutdown_drains(
        "/v1/customers/lookup",
        json!({"ids": [1]}).to_string(),
        "\"customers\":[",
        3,
    )
    .await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_selection_finish_then_serve_returns() {
    assert_shutdown_drains(
        "/v1/select",
        json!({"budget": 500.0}).to_string(),
        "\"selected\":",
        1,
    )
    .await;
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

    // The one batch that computed is timed; the two refused while decoding are not.
    let (_, _, metrics) = served
        .send_raw(Method::GET, "/metrics", &[], Vec::new())
        .await;
    let samples = parse_metrics(std::str::from_utf8(&metrics).unwrap());
    assert_eq!(
        sample(&samples, "crv_simulation_duration_seconds_count", &[]),
        Some(1.0)
    );
    served.stop().await;
}

/// Sends a JSON POST on a fresh connection and keeps the connection without reading the answer;
/// dropping the stream is the client going away.
async fn post_and_hold(addr: std::net::SocketAddr, path: &str, body: &Value) -> TcpStream {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream
}

/// Polls `condition` until it holds; panics naming `what` after `within`.
async fn wait_until(what: &str, within: Duration, condition: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A filter of 3000 conditions joined by `or`: evaluation is linear in the rows, but each row
/// is compared 3000 times, about a third of a second of CPU per 10^5 rows, within the
/// expression's byte cap.
fn pathological_filter() -> String {
    let conditions: Vec<String> = (0..3_000).map(|k| format!("margin > {k}.5")).collect();
    conditions.join(" or ")
}

/// A simulation of `BUSY_CUSTOMERS` that runs for more than a minute of CPU unless stopped,
/// within the longest time limit: 256 budgeted scenarios, each with the pathological filter,
/// and a 1000-point frontier.
fn long_simulation() -> Value {
    let budgets: Vec<f64> = (1..=16).map(|k| f64::from(k) * 2_000.0).collect();
    let discounts: Vec<f64> = (1..=16).map(|k| f64::from(k) / 100.0).collect();
    let filter = pathological_filter();
    json!({
        "sweep": {"budget": budgets, "discount": discounts, "where": [filter]},
        "frontier": {"points": 1_000},
        "time_limit_ms": 60_000,
    })
}

/// The admission gauges as `/metrics` renders them: (running, waiting).
async fn admission_gauges(served: &Served) -> (f64, f64) {
    let (_, _, metrics) = served
        .send_raw(Method::GET, "/metrics", &[], Vec::new())
        .await;
    let samples = parse_metrics(std::str::from_utf8(&metrics).unwrap());
    let gauge = |name| sample(&samples, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    (
        gauge("crv_admission_running"),
        gauge("crv_admission_waiting"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_turns_heavy_requests_away_until_left_work_is_cancelled() {
    let served = Served::with_customers(
        BUSY_CUSTOMERS,
        config_with(|config| {
            config.admission = AdmissionLimits {
                max_running: 1,
                max_waiting: 1,
            };
        }),
    )
    .await;
    let admission = served.state.admission();
    let first = post_and_hold(served.addr, "/v1/simulate", &long_simulation()).await;
    wait_until("the first simulation runs", Duration::from_secs(10), || {
        admission.running() == 1
    })
    .await;
    let second = post_and_hold(served.addr, "/v1/simulate", &long_simulation()).await;
    wait_until(
        "the second simulation waits",
        Duration::from_secs(10),
        || admission.admitted() == 2,
    )
    .await;
    // Full: more heavy requests are turned away at once, and the gauges say why.
    for (path, body) in [
        ("/v1/simulate", json!({"scenarios": [{}]})),
        ("/v1/select", json!({"budget": 1.0})),
    ] {
        let answer = served.post(path, &body).await;
        answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "retry");
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    }
    assert_eq!(admission_gauges(&served).await, (1.0, 1.0));

    // Both clients leave: the running simulation is cancelled, the waiting one never runs,
    // and their places are given back well before the minute and more the work would take.
    drop(first);
    drop(second);
    wait_until(
        "the places of the clients that left are free",
        Duration::from_secs(10),
        || admission.admitted() == 0,
    )
    .await;
    assert_eq!(admission_gauges(&served).await, (0.0, 0.0));
    let answer = served.post("/v1/select", &json!({"budget": 100.0})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_stops_its_simulation() {
    let served = Served::with_customers(BUSY_CUSTOMERS, ServerConfig::default()).await;
    let admission = served.state.admission();
    let client = post_and_hold(served.addr, "/v1/simulate", &long_simulation()).await;
    wait_until("the simulation runs", Duration::from_secs(10), || {
        admission.running() == 1
    })
    .await;
    // Well into its scenarios, then the client goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admission_gauges(&served).await, (1.0, 0.0));
    drop(client);
    wait_until(
        "the simulation stops (it would run for over a minute)",
        Duration::from_secs(10),
        || admission.admitted() == 0,
    )
    .await;
    assert_eq!(admission_gauges(&served).await, (0.0, 0.0));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_limit_ms_bounds_a_pathological_filter_evaluation() {
    let served = Served::with_customers(BUSY_CUSTOMERS, ServerConfig::default()).await;
    // Far beyond the request's 20 ms (and over a second when the machine is busy).
    let filter = pathological_filter();
    let started = std::time::Instant::now();
    let answer = served
        .post(
            "/v1/select",
            &json!({"budget": 1_000.0, "where": filter, "time_limit_ms": 20}),
        )
        .await;
    answer.assert_error(
        StatusCode::GATEWAY_TIMEOUT,
        "time_limit_exceeded",
        "stopped during filter evaluation (`where`): the time limit of 20 ms passed",
    );
    eprintln!("stopped after {:?}", started.elapsed());
    // The same time limit on a simulation's filter.
    let answer = served
        .post(
            "/v1/simulate",
            &json!({"scenarios": [{"where": filter}], "time_limit_ms": 20}),
        )
        .await;
    answer.assert_error(
        StatusCode::GATEWAY_TIMEOUT,
        "time_limit_exceeded",
        "the time limit of 20 ms passed",
    );
    assert_eq!(served.state.admission().admitted(), 0);
    served.stop().await;
}

#[tokio::test]
async fn sizes_and_time_limits_over_their_caps_get_400_naming_the_field() {
    let served = Served::default().await;
    for limit in [json!(0), json!(60_001), json!(1e300), json!(-1), json!(1.5)] {
        for (path, mut body) in [
            ("/v1/select", json!({"budget": 1.0})),
            ("/v1/simulate", json!({"scenarios": [{}]})),
        ] {
            body["time_limit_ms"] = limit.clone();
            let answer = served.post(path, &body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} {limit}");
            let message = answer.json["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("time_limit_ms"),
                "{path} {limit}: {message}"
            );
        }
    }
    for points in [1_001_u64, 4_294_967_296, 1] {
        let body = json!({"scenarios": [{}], "frontier": {"points": points}});
        served.post("/v1/simulate", &body).await.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "frontier.points",
        );
    }
    // A sweep is counted before it is expanded, against the HTTP cap, which its error names.
    for axis in [17, 1_000] {
        let values: Vec<f64> = (0..axis).map(|k| f64::from(k) / 1e4).collect();
        let body = json!({"sweep": {"discount": values, "retention_shift": &values[..16]}});
        served.post("/v1/simulate", &body).await.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_scenario",
            &format!("{} scenarios, at most 256", axis * 16),
        );
    }
    let long = format!("margin > {}", "1".repeat(70_000));
    served
        .post("/v1/select", &json!({"budget": 1.0, "where": long}))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "at most 65536",
        );
    served.stop().await;
}

#[tokio::test]
async fn parameters_that_make_a_crv_infinite_are_refused_at_start_and_per_request() {
    let served = Served::default().await;
    let infinite = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Infinite,
    };
    // The generated store holds contract customers with retention exactly 1.
    let Err(error) = AppState::open(
        &served.store_path,
        infinite,
        TierScheme::default(),
        ServerConfig::default(),
    ) else {
        panic!("the server started on an infinite CRV");
    };
    let message = error.to_string();
    assert!(message.contains("retention 1"), "{message}");
    assert!(message.contains("horizon inf"), "{message}");
    served
        .post(
            "/v1/select",
            &json!({"budget": 100.0, "discount": 0, "horizon": "inf"}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_parameter", "horizon inf");
    served
        .post(
            "/v1/simulate",
            &json!({"scenarios": [{"name": "huge", "budget": 100, "margin_multiplier": 1e38}]}),
        )
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_scenario",
            "scenario `huge`, field `margin_multiplier`",
        );
    served.stop().await;
}

impl Served {
    async fn start(config: ServerConfig) -> Served {
        Served::with_customers(CUSTOMERS, config).await
    }

    async fn with_customers(customers: u64, config: ServerConfig) -> Served {
        Served::with_state(customers, config, |state| state).await
    }

    /// A server over a store of `customers`, its state finished by `finish` (e.g. a token).
    async fn with_state(
        customers: u64,
        config: ServerConfig,
        finish: impl FnOnce(AppState) -> AppState,
    ) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let store_path = store_file(dir.path(), customers);
        let state = finish(
            AppState::open(
                &store_path,
                ScoreParams::default(),
                TierScheme::default(),
                config,
            )
            .unwrap(),
        );
        Served::serving(dir, store_path, state).await
    }

    /// A server of `state`, over the store at `store_path` in `dir`.
    async fn serving(dir: tempfile::TempDir, store_path: PathBuf, state: AppState) -> Served {
        let state = Arc::new(state);
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
        Served::start(ServerConfig::default()).await
    }

    /// The store and its scores, opened and computed by the library, not the server.
    fn library(&self) -> (Arc<Store>, Table) {
        self.library_with(&ScoreParams::default())
    }

    /// The store scored with `params` by the library.
    fn library_with(&self, params: &ScoreParams) -> (Arc<Store>, Table) {
        let store = Arc::new(Store::open(&self.store_path).unwrap());
        let scored = Table::score(Arc::clone(&store), *params, TierScheme::default()).unwrap();
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

    /// One request with a JSON answer on a fresh connection.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let headers: Vec<_> = content_type
            .map(|value| (header::CONTENT_TYPE, value))
            .into_iter()
            .collect();
        let (status, headers, bytes) = self.send_raw(method, path, &headers, body).await;
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{status}: body is not JSON ({e}): {bytes:?}");
        });
        Answer {
            status,
            headers,
            json,
        }
    }

    /// One request on a fresh connection; the answer's body as bytes.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes)
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

/// A store of `customers` generated customers (seed 7) in `dir`.
fn store_file(dir: &std::path::Path, customers: u64) -> PathBuf {
    let csv_path = dir.join("customers.csv");
    let store_path = dir.join("customers.crv");
    let csv = std::fs::File::create(&csv_path).unwrap();
    crv::synthetic::write_customers_csv(csv, customers, 7).unwrap();
    crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    store_path
}

/// What `stream` reads until the server closes it (a reset counts as a close), within 10 s.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        while let Ok(read @ 1..) = stream.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..read]);
        }
    })
    .await
    .expect("the server closes the connection");
    answer
}

/// One raw request on a fresh connection, read until the server closes it (a reset after the
/// answer counts as a close): the status, the head as lower-case text, and the body.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    let end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no whole head in {:?}", answer.escape_ascii().to_string()));
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, answer[end + 4..].to_vec())
}

/// A raw HTTP/1.1 request that asks the server to close after answering; `Content-Length`
/// is added for a non-empty body.
fn raw_request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn bad_input_matrix_gets_json_errors_over_http() {
    let served = Served::default().await;
    let (known, unknown) = {
        let (store, _) = served.library();
        let known = store.ids()[0];
        let unknown = (0..)
            .find(|&id| store.row_of(CustomerId(id)).is_none())
            .unwrap();
        (known, unknown)
    };
    let json = "Content-Type: application/json";
    let many_headers: Vec<String> = (0..200).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let many_headers: Vec<&str> = many_headers.iter().map(String::as_str).collect();
    let customer = format!("/v1/customers/{known}");
    let missing = format!("/v1/customers/{unknown}");
    // (case, request, status, error code; `None` for an answer without a body)
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "malformed JSON",
            raw_request("POST", "/v1/customers/lookup", &[json], b"{\"ids\": [1,"),
            400,
            Some("malformed_json"),
        ),
        (
            "wrong type",
            raw_request("POST", "/v1/customers/lookup", &[json], b"{\"ids\": \"x\"}"),
            400,
            Some("malformed_json"),
        ),
        (
            "unknown field",
            raw_request(
                "POST",
                "/v1/customers/lookup",
                &[json],
                b"{\"ids\": [1], \"idz\": 2}",
            ),
            400,
            Some("unknown_field"),
        ),
        (
            "select: wrong type",
            raw_request("POST", "/v1/select", &[json], b"{\"budget\": \"lots\"}"),
            400,
            Some("malformed_json"),
        ),
        (
            "select: unknown field",
            raw_request(
                "POST",
                "/v1/select",
                &[json],
                b"{\"budget\": 1, \"budjet\": 2}",
            ),
            400,
            Some("unknown_field"),
        ),
        (
            "id not a number",
            raw_request("GET", "/v1/customers/abc", &[], b""),
            400,
            Some("invalid_id"),
        ),
        (
            "id beyond u64",
            raw_request("GET", "/v1/customers/18446744073709551616", &[], b""),
            400,
            Some("invalid_id"),
        ),
        (
            "unknown id",
            raw_request("GET", &missing, &[], b""),
            404,
            Some("not_found"),
        ),
        (
            "unknown path",
            raw_request("GET", "/v2/tiers", &[], b""),
            404,
            Some("not_found"),
        ),
        (
            "DELETE on a GET endpoint",
            raw_request("DELETE", "/v1/tiers", &[], b""),
            405,
            Some("method_not_allowed"),
        ),
        (
            "GET on a POST endpoint",
            raw_request("GET", "/v1/select", &[], b""),
            405,
            Some("method_not_allowed"),
        ),
        (
            "declared body over the limit",
            raw_request(
                "POST",
                "/v1/customers/lookup",
                &[json, "Content-Length: 2000000"],
                b"",
            ),
            413,
            Some("payload_too_large"),
        ),
        (
            "text/plain body",
            raw_request(
                "POST",
                "/v1/customers/lookup",
                &["Content-Type: text/plain"],
                b"{\"ids\": [1]}",
            ),
            415,
            Some("unsupported_media_type"),
        ),
        (
            "select without a content type",
            raw_request("POST", "/v1/select", &[], b"{\"budget\": 1}"),
            415,
            Some("unsupported_media_type"),
        ),
        (
            "header name with a space",
            raw_request("GET", "/healthz", &["Bad Header: x"], b""),
            400,
            Some("malformed_request"),
        ),
        (
            "control byte in a header value",
            raw_request("GET", "/healthz", &["X-Note: a\u{1}b"], b""),
            400,
            Some("malformed_request"),
        ),
        (
            "request line garbage",
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            400,
            Some("malformed_request"),
        ),
        (
            "too many headers",
            raw_request("GET", "/healthz", &many_headers, b""),
            431,
            Some("headers_too_large"),
        ),
        (
            "HEAD liveness",
            raw_request("HEAD", "/healthz", &[], b""),
            200,
            None,
        ),
        (
            "HEAD readiness",
            raw_request("HEAD", "/readyz", &[], b""),
            200,
            None,
        ),
        (
            "HEAD a customer",
            raw_request("HEAD", &customer, &[], b""),
            200,
            None,
        ),
        (
            "HEAD tiers",
            raw_request("HEAD", "/v1/tiers", &[], b""),
            200,
            None,
        ),
        (
            "HEAD a POST endpoint",
            raw_request("HEAD", "/v1/select", &[], b""),
            405,
            None,
        ),
    ];
    for (case, request, status, code) in cases {
        let (got, head, body) = raw_exchange(served.addr, &request).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{case}: {head}\n{text}");
        match code {
            Some(code) => {
                assert!(
                    head.contains("content-type: application/json"),
                    "{case}: {head}"
                );
                let error: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {text}"));
                assert_eq!(error["error"]["code"], code, "{case}: {text}");
                assert!(
                    !error["error"]["message"].as_str().unwrap().is_empty(),
                    "{case}: {text}"
                );
                if status == 405 {
                    assert!(head.contains("\r\nallow: "), "{case}: {head}");
                }
            }
            None => assert!(body.is_empty(), "{case}: HEAD answered a body: {text}"),
        }
    }
    // HEAD announces the length GET sends.
    let (_, get_head, get_body) =
        raw_exchange(served.addr, &raw_request("GET", &customer, &[], b"")).await;
    let (_, head_head, _) =
        raw_exchange(served.addr, &raw_request("HEAD", &customer, &[], b"")).await;
    let length = format!("content-length: {}", get_body.len());
    assert!(get_head.contains(&length), "{get_head}");
    assert!(head_head.contains(&length), "{head_head}");
    served.stop().await;
}

#[tokio::test]
async fn heavy_endpoints_need_the_bearer_token_and_lookups_stay_open() {
    let served = Served::with_state(CUSTOMERS, ServerConfig::default(), |state| {
        state.with_token(Some("s3cret-token".to_string())).unwrap()
    })
    .await;
    let json = (header::CONTENT_TYPE, "application/json");
    let select = json!({"budget": 10.0}).to_string().into_bytes();
    for (authorization, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("Bearer wrong"), StatusCode::UNAUTHORIZED),
        (Some("Bearer s3cret-tokeN"), StatusCode::UNAUTHORIZED),
        (
            Some("Bearer s3cret-token-and-more"),
            StatusCode::UNAUTHORIZED,
        ),
        (Some("Basic s3cret-token"), StatusCode::UNAUTHORIZED),
        (Some("s3cret-token"), StatusCode::UNAUTHORIZED),
        (Some("Bearer s3cret-token"), StatusCode::OK),
        (Some("bearer s3cret-token "), StatusCode::OK),
    ] {
        let mut headers = vec![json.clone()];
        headers.extend(authorization.map(|value| (header::AUTHORIZATION, value)));
        let (status, answer_headers, body) = served
            .send_raw(Method::POST, "/v1/select", &headers, select.clone())
            .await;
        assert_eq!(status, expected, "{authorization:?}: {body:?}");
        if status == StatusCode::UNAUTHORIZED {
            let error: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["error"]["code"], "unauthorized");
            assert_eq!(answer_headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    let simulate = json!({"scenarios": [{"name": "base"}]})
        .to_string()
        .into_bytes();
    let (status, _, _) = served
        .send_raw(
            Method::POST,
            "/v1/simulate",
            std::slice::from_ref(&json),
            simulate,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/campaigns/optimise",
            json!({"offers": [{"name": "a", "value": 1}]})
                .to_string()
                .into_bytes(),
        ),
        (Method::GET, "/v1/campaigns/1", Vec::new()),
        (Method::GET, "/v1/campaigns/1/customers/1", Vec::new()),
    ] {
        let (status, _, _) = served
            .send_raw(method, path, std::slice::from_ref(&json), body)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Lookups and the read-only endpoints need no token.
    let id = served.library().0.ids()[0];
    assert_eq!(
        served.get(&format!("/v1/customers/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        served
            .post("/v1/customers/lookup", &json!({"ids": [id]}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(served.get("/v1/tiers").await.status, StatusCode::OK);
    assert!(
        !format!("{:?}", served.state).contains("s3cret"),
        "the state's Debug form shows the token"
    );
    served.stop().await;
}

/// Reads one answer's head from `stream` (lower-case text).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test]
async fn an_answer_before_the_body_is_read_says_the_connection_closes() {
    let served = Served::with_state(CUSTOMERS, ServerConfig::default(), |state| {
        state.with_token(Some("s3cret-token".to_string())).unwrap()
    })
    .await;
    let body = json!({"budget": 10.0}).to_string();
    // A selection without the token: refused before its body, which has not been sent yet
    // (and so cannot have been read). The answer says the connection closes, and it does.
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    let head = format!(
        "POST /v1/select HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    let _ = stream.write_all(body.as_bytes()).await;
    read_until_closed(&mut stream).await;
    // A request whose body was read keeps its connection: two lookups on one connection,
    // the second answered too, neither saying close.
    let lookup = json!({"ids": [1]}).to_string();
    let request = format!(
        "POST /v1/customers/lookup HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{lookup}",
        lookup.len()
    );
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).await.unwrap();
        let (status, answer, _) = read_answer(&mut stream).await;
        assert_eq!(status, 200, "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
    }
    served.stop().await;
}

#[test]
fn an_empty_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_file(dir.path(), 100);
    let state = AppState::open(
        &path,
        ScoreParams::default(),
        TierScheme::default(),
        ServerConfig::default(),
    )
    .unwrap();
    let message = state
        .with_token(Some(String::new()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("token-env"), "{message}");
}

/// A kept-alive HTTP/1.1 connection to `addr` that has answered one request.
async fn open_connection(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    assert_eq!(get_on(&mut sender, "/healthz").await.0, StatusCode::OK);
    sender
}

/// `GET path` on an open connection: the status and the body as JSON (or text as a string).
async fn get_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
) -> (StatusCode, Value) {
    let request = Request::get(path)
        .header(header::HOST, "crv")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// Waits until the server counts `open` connections.
async fn until_open_connections(served: &Served, open: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while served.state.open_connections() != open {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} connections open, not {open}",
            served.state.open_connections()
        )
    });
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_at_once_and_readiness_says_so() {
    let served = Served::start(config_with(|config| config.max_connections = 2)).await;
    let mut first = open_connection(served.addr).await;
    let second = open_connection(served.addr).await;
    until_open_connections(&served, 2).await;

    // A third is answered and closed at once: no waiting in the listen queue, no timeout.
    let (status, head, body) = raw_exchange(served.addr, b"").await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "at_capacity");

    let (status, ready) = get_on(&mut first, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["status"], "at_capacity");
    assert_eq!(
        get_on(&mut first, "/healthz").await.0,
        StatusCode::OK,
        "still alive"
    );
    let (_, metrics) = get_on(&mut first, "/metrics").await;
    let samples = parse_metrics(metrics.as_str().unwrap());
    assert_eq!(
        sample(&samples, "crv_connections_refused_total", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&samples, "crv_connections_open", &[]), Some(2.0));

    // A slot given back is a connection accepted again.
    drop(second);
    until_open_connections(&served, 1).await;
    let (status, ready) = get_on(&mut first, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "ready");
    assert_eq!(served.get("/healthz").await.status, StatusCode::OK);
    drop(first);
    served.stop().await;
}

#[tokio::test]
async fn drain_gives_up_on_a_stuck_request_at_the_drain_timeout() {
    // A drain timeout far from both the default (10 s) and the header timeout: shutdown must
    // end at it, not before (the request is in flight) and not at another deadline.
    let drain_timeout = Duration::from_millis(400);
    let served = Served::start(config_with(|config| {
        config.drain_timeout = drain_timeout;
        config.header_timeout = Duration::from_secs(30);
    }))
    .await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    // The body is announced and never sent: the request stays in flight.
    stream
        .write_all(
            b"POST /v1/customers/lookup HTTP/1.1\r\nHost: crv\r\nContent-Type: application/json\r\n\
              Content-Length: 12\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    let Served {
        mut stop,
        server,
        state,
        ..
    } = served;
    stop.take().unwrap().send(()).unwrap();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returns after the drain timeout")
        .unwrap()
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= drain_timeout && waited < drain_timeout + Duration::from_secs(2),
        "serve returned after {waited:?}, drain timeout {drain_timeout:?}"
    );
    assert_eq!(state.unready_reason(), Some("draining"));
    drop(stream);
}

#[tokio::test]
async fn a_store_copied_to_memory_keeps_answering_after_its_file_is_truncated() {
    let served = Served::start(config_with(|config| config.copy_to_memory = true)).await;
    // The expected scores, read before the file is cut (the library's own mapping of it is
    // dropped first: reading it afterwards would fault this test).
    let expected: Vec<(u64, f32)> = {
        let (store, scored) = served.library();
        (0..CUSTOMERS as usize)
            .step_by(97)
            .map(|row| (store.ids()[row], scored.crv()[row]))
            .collect()
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&served.store_path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    for &(id, crv) in &expected {
        let answer = served.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(f32_of(&answer.json["crv"]), crv);
    }
    let ids: Vec<u64> = expected.iter().map(|&(id, _)| id).collect();
    let answer = served
        .post("/v1/customers/lookup", &json!({"ids": ids}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["customers"].as_array().unwrap().len(),
        ids.len()
    );
    served.stop().await;
}

#[test]
fn a_served_mapped_store_holds_a_shared_lock_and_an_exclusive_one_blocks_serving() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_file(dir.path(), 100);
    let open = |path: &std::path::Path, config: ServerConfig| {
        AppState::open(path, ScoreParams::default(), TierScheme::default(), config)
    };
    let state = open(&store_path, ServerConfig::default()).unwrap();
    let file = std::fs::File::open(&store_path).unwrap();
    assert!(
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the served file is not locked"
    );
    assert!(file.try_lock_shared().is_ok(), "readers share the lock");
    file.unlock().unwrap();
    drop(state);

    // A writer's exclusive lock: the server refuses to map the file under it. On a store no
    // server has opened: a child process that another test forks while the first state's lock
    // is open shares that lock until it execs, so the first file may stay locked a moment.
    let other_dir = tempfile::tempdir().unwrap();
    let other_store = store_file(other_dir.path(), 100);
    let writer = std::fs::File::open(&other_store).unwrap();
    writer.try_lock().unwrap();
    let error = open(&other_store, ServerConfig::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("exclusive lock"), "{error}");
    assert!(error.contains("customers.crv"), "{error}");
    // Copied into memory, the store does not depend on the file afterwards: no lock needed.
    assert!(
        open(
            &other_store,
            config_with(|config| config.copy_to_memory = true)
        )
        .is_ok()
    );
}

/// A `crv serve` child process on a store; its stderr read line by line.
struct ChildServer {
    child: std::process::Child,
    log: std::io::BufReader<std::process::ChildStderr>,
    /// Every log line read so far.
    lines: Vec<String>,
}

impl ChildServer {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> ChildServer {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::io::BufReader::new(child.stderr.take().unwrap());
        ChildServer {
            child,
            log,
            lines: Vec::new(),
        }
    }

    /// Reads log lines up to and including the first that contains `fragment`.
    fn until(&mut self, fragment: &str) -> String {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            let read = self.log.read_line(&mut line).unwrap();
            assert!(
                read > 0,
                "server exited before `{fragment}`: {:#?}",
                self.lines
            );
            self.lines.push(line.clone());
            if line.contains(fragment) {
                return line;
            }
        }
    }

    /// The address of the text log's `listening addr=...` line.
    fn addr(&mut self) -> String {
        let line = self.until("listening");
        let at = line.find("addr=").expect("listening names its address");
        line[at + 5..].trim().to_string()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request over a plain blocking connection; the answer as text (empty if the server
/// died before answering).
fn blocking_exchange(addr: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn truncating_a_mapped_store_under_serve_names_the_file_before_it_dies() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_file(dir.path(), CUSTOMERS);
    let id = Store::open(&store_path).unwrap().ids()[CUSTOMERS as usize / 2];
    let mut server = ChildServer::spawn(
        &[store_path.to_str().unwrap(), "--addr", "127.0.0.1:0"],
        &[],
    );
    let addr = server.addr();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&store_path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    // The lookup probes the mapped id index, now past the end of the file.
    let answer = blocking_exchange(
        &addr,
        format!("GET /v1/customers/{id} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(
        !answer.contains("200 OK"),
        "answered from a truncated file: {answer}"
    );
    let status = server.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut server.log, &mut rest).unwrap();
    let path = store_path.display().to_string();
    assert!(rest.contains("SIGBUS") && rest.contains(&path), "{rest}");
    assert!(rest.contains("--copy-to-memory"), "{rest}");
}

#[test]
fn serve_names_real_ids_and_warns_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_file(dir.path(), 200);
    let store = store_path.to_str().unwrap();
    let ids_line = "customer ids in this store";
    let warning = "without a token";

    // A name is resolved; the start-up log names ids that answer.
    let mut server = ChildServer::spawn(&[store, "--addr", "localhost:0"], &[]);
    let addr = server.addr();
    let line = server.until(ids_line);
    let id = line
        .split("/v1/customers/")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or_else(|| panic!("no id in {line}"));
    let answer = blocking_exchange(
        &addr,
        format!("GET /v1/customers/{id} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !server.lines.concat().contains(warning),
        "{:#?}",
        server.lines
    );
    drop(server);

    // Beyond loopback: a warning without a token, none with one.
    let mut server = ChildServer::spawn(&[store, "--addr", "0.0.0.0:0"], &[]);
    server.until(ids_line);
    assert!(
        server.lines.concat().contains(warning),
        "{:#?}",
        server.lines
    );
    drop(server);
    let mut server = ChildServer::spawn(
        &[
            store,
            "--addr",
            "0.0.0.0:0",
            "--token-env",
            "CRV_TEST_TOKEN",
        ],
        &[("CRV_TEST_TOKEN", "s3cret")],
    );
    server.until(ids_line);
    assert!(
        !server.lines.concat().contains(warning),
        "{:#?}",
        server.lines
    );
    drop(server);

    // A token variable that is not set, and an address without a port: refused at start.
    for (args, fragment) in [
        (
            vec![
                store,
                "--addr",
                "127.0.0.1:0",
                "--token-env",
                "CRV_TEST_NO_SUCH_TOKEN",
            ],
            "CRV_TEST_NO_SUCH_TOKEN",
        ),
        (vec![store, "--addr", "localhost"], "host:port"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
            .arg("serve")
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} accepted");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(fragment), "{args:?}: {message}");
    }
}

#[test]
fn serve_writes_json_log_lines_with_an_access_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_file(dir.path(), 200);
    let id = Store::open(&store_path).unwrap().ids()[0];
    let mut server = ChildServer::spawn(
        &[
            store_path.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &[],
    );
    let listening: Value = serde_json::from_str(&server.until("\"listening\"")).unwrap();
    let addr = listening["addr"].as_str().unwrap().to_string();
    server.until("customer ids in this store");
    let answer = blocking_exchange(
        &addr,
        format!(
            "GET /v1/customers/{id} HTTP/1.1\r\nHost: crv\r\nX-Request-Id: trace-42\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: trace-42"),
        "{answer}"
    );
    let access: Value = serde_json::from_str(&server.until("crv::access")).unwrap();
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/v1/customers/{id}");
    assert_eq!(access["status"], 200);
    assert_eq!(access["request_id"], "trace-42");
    assert!(access["micros"].is_u64(), "{access}");
    assert!(
        access["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{access}"
    );
    for line in &server.lines {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            line["timestamp"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
}

/// The library's selection of `spec` on `table` (scored with the request's parameters), as
/// `crv select` makes it.
fn select_targets(table: &Table, spec: &CampaignSpec) -> crv::Result<Targets> {
    SelectionRequest {
        campaign: spec.clone(),
        params: *table.params(),
    }
    .bind(table)?
    .select(table)
}

#[tokio::test]
async fn a_request_holding_version_n_keeps_seeing_it_while_n_plus_1_is_published() {
    let served = Served::default().await;
    let held = served.state.table();
    assert_eq!(held.version(), 1);
    let id = held.ids()[0];
    let crv_before = held.crv().to_vec();
    let answer = served.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let summary = served.get("/v1/summary").await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.json);
    assert_eq!(summary.json["version"], 1);
    assert_eq!(summary.json["tiers"]["customers"], CUSTOMERS);

    // Version 2: other customers (another seed, so other ids).
    let dir = tempfile::tempdir().unwrap();
    let (csv_path, store_path) = (dir.path().join("next.csv"), dir.path().join("next.crv"));
    crv::synthetic::write_customers_csv(std::fs::File::create(&csv_path).unwrap(), 500, 11)
        .unwrap();
    crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    let next = held
        .successor(Arc::new(Store::open(&store_path).unwrap()))
        .unwrap();
    let next_id = next.ids()[0];
    let next_crv = next.crv()[0];
    assert!(next.store().row_of(CustomerId(id)).is_none());
    assert_eq!(served.state.publish(next).unwrap(), 2);

    // The holder still sees version 1, whole.
    assert_eq!(held.version(), 1);
    assert_eq!(held.rows(), CUSTOMERS as usize);
    assert_eq!(held.crv(), &crv_before[..]);
    assert!(held.store().row_of(CustomerId(id)).is_some());
    // New requests see version 2 (on every runtime thread's cached handle).
    assert_eq!(served.state.table().version(), 2);
    for _ in 0..8 {
        let gone = served.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.json);
        let found = served.get(&format!("/v1/customers/{next_id}")).await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.json);
        assert_eq!(f32_of(&found.json["crv"]), next_crv);
    }
    let tiers = served.get("/v1/tiers").await;
    assert_eq!(tiers.json["customers"], 500);
    // The dashboard's summary follows the publication (computed in the background or by the
    // first request, whichever comes first), the same as the library's.
    let summary = served.get("/v1/summary").await;
    assert_eq!(summary.json["version"], 2);
    assert_eq!(summary.json["tiers"]["customers"], 500);
    let table = served.state.table();
    assert_eq!(
        served.state.summary().await.unwrap(),
        crv::api::dashboard::summary::encode(&table, table.tiers())
    );
    let (_, _, metrics) = served
        .send_raw(Method::GET, "/metrics", &[], Vec::new())
        .await;
    let text = String::from_utf8(metrics.to_vec()).unwrap();
    assert!(text.contains("crv_table_version 2\n"), "{text}");
    // Versions only move forward, one at a time.
    let stale = held
        .successor(Arc::new(Store::open(&store_path).unwrap()))
        .unwrap();
    let error = served.state.publish(stale).unwrap_err().to_string();
    assert!(error.contains("over version 2"), "{error}");
    served.stop().await;
}

#[tokio::test]
async fn a_selection_is_checked_by_the_same_function_from_the_cli_and_the_server() {
    let served = Served::default().await;
    let cases: [(&[&str], Value); 7] = [
        (&["--budget=-1"], json!({"budget": -1.0})),
        (
            &["--budget", "5", "--cost", "nope"],
            json!({"budget": 5.0, "cost": "nope"}),
        ),
        (
            &["--budget", "5", "--cost", "segment"],
            json!({"budget": 5.0, "cost": "segment"}),
        ),
        (
            &["--budget", "5", "--where", "tier ="],
            json!({"budget": 5.0, "where": "tier ="}),
        ),
        (
            &["--budget", "5", "--where", "colour = red"],
            json!({"budget": 5.0, "where": "colour = red"}),
        ),
        (
            &["--budget", "5", "--discount=-0.5"],
            json!({"budget": 5.0, "discount": -0.5}),
        ),
        (
            &["--budget", "5", "--resource-scale", "0"],
            json!({"budget": 5.0, "resource_scale": 0.0}),
        ),
    ];
    for (flags, body) in cases {
        let answer = served.post("/v1/select", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.json);
        let message = answer.json["error"]["message"].as_str().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
            .arg("select")
            .arg(&served.store_path)
            .args(flags)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flags:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(message),
            "{flags:?}: the server says `{message}`, the command line `{stderr}`"
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn a_server_valuing_purchase_histories_answers_p_alive_and_expected_purchases() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = store_file(dir.path(), CUSTOMERS);
    let params = ScoreParams {
        discount: 0.01,
        horizon: Horizon::Periods(52),
    };
    let state = AppState::open_valued(
        &store_path,
        params,
        TierScheme::default(),
        purchase_valuation(),
        ServerConfig::default(),
    )
    .unwrap();
    let served = Served::serving(dir, store_path, state).await;
    let store = Arc::new(Store::open(&served.store_path).unwrap());
    let library = Table::valued(
        Arc::clone(&store),
        params,
        TierScheme::default(),
        purchase_valuation(),
    )
    .unwrap();
    let outlook = library.outlook().expect("a purchase model's outlook");
    let rows = [0, 17, CUSTOMERS as usize - 1];
    for row in rows {
        let id = store.ids()[row];
        let answer = served.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(f32_of(&answer.json["crv"]), library.crv()[row]);
        assert_eq!(f32_of(&answer.json["p_alive"]), outlook.p_alive[row]);
        assert_eq!(
            f32_of(&answer.json["expected_purchases"]),
            outlook.expected_purchases[row]
        );
    }
    let ids: Vec<u64> = rows.iter().map(|&row| store.ids()[row]).collect();
    let answer = served
        .post("/v1/customers/lookup", &json!({ "ids": ids }))
        .await;
    for (entry, &row) in answer.json["customers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&rows)
    {
        assert_eq!(f32_of(&entry["p_alive"]), outlook.p_alive[row], "{entry}");
    }
    // A selection with its own horizon re-scores with the same model.
    let other = ScoreParams {
        discount: 0.01,
        horizon: Horizon::Periods(26),
    };
    let answer = served
        .post(
            "/v1/select",
            &json!({"budget": 500.0, "horizon": 26, "discount": 0.01}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let rescored = library.rescored(other).unwrap();
    assert!(rescored.outlook().is_some(), "the view keeps the model");
    let expected = SelectionRequest {
        campaign: CampaignSpec {
            budget: 500.0,
            ..CampaignSpec::default()
        },
        params: other,
    }
    .bind(&rescored)
    .unwrap()
    .select(&rescored)
    .unwrap();
    assert_close(
        &answer.json["total_crv"],
        expected.selection.objective,
        "total_crv",
    );
    // `inf` cannot value purchases: a 400 naming the horizon.
    let answer = served
        .post("/v1/select", &json!({"budget": 500.0, "horizon": "inf"}))
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_parameter", "horizon");
    served.stop().await;
}

/// A campaign of two resources and two offers over the generated store.
fn campaign_definition(budget: f64) -> Value {
    json!({
        "resources": {"budget": budget, "calls": 40},
        "offers": [
            {"name": "call", "value": "crv", "eligible": "segment != basic",
             "uses": {"budget": "cost", "calls": 1}, "max": 30},
            {"name": "email", "value": "0.3 * crv", "uses": {"budget": 0.5}}
        ]
    })
}

#[tokio::test]
async fn campaign_plans_are_kept_and_answer_customer_lookups() {
    let served = Served::default().await;
    let definition = campaign_definition(300.0);
    let answer = served.post("/v1/campaigns/optimise", &definition).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let summary = &answer.json;
    let plan_id = summary["plan_id"].as_str().unwrap().to_string();

    // The same definition solved by the library on the library's table.
    let (_, table) = served.library();
    let library = crv::campaign::stored::StoredPlan::solve(
        Arc::new(table),
        crv::campaign::definition::CampaignDefinition::parse(
            definition.to_string().as_bytes(),
            "test",
        )
        .unwrap(),
        &crv::campaign::contacts::ContactHistory::default(),
        0,
        crv::cancel::Cancel::default(),
    )
    .unwrap();
    // Through JSON text and back, as the server's answer came (serde_json's default float
    // parsing may land an ulp or two off the printed value).
    let expected: Value = serde_json::from_str(&library.plan().summary().to_string()).unwrap();
    for key in ["objective", "upper_bound", "gap", "assigned"] {
        assert_eq!(summary[key], expected[key], "{key}: {summary}");
    }
    let objective = summary["objective"].as_f64().unwrap();
    assert!(objective > 0.0);
    assert!(summary["upper_bound"].as_f64().unwrap() >= objective * (1.0 - 1e-12));
    for resource in ["budget", "calls"] {
        let entry = &summary["resources"][resource];
        assert!(entry["used"].as_f64().unwrap() <= entry["limit"].as_f64().unwrap() + 1e-6);
        assert!(entry["shadow_price"].as_f64().unwrap() >= 0.0, "{entry}");
        assert_eq!(
            entry["shadow_price"],
            expected["resources"][resource]["shadow_price"]
        );
    }
    assert!(summary["offers"]["call"]["count"].as_u64().unwrap() <= 30);

    let again = served.get(&format!("/v1/campaigns/{plan_id}")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
    assert_eq!(again.json["plan_id"], plan_id.as_str());
    assert_eq!(again.json["objective"], summary["objective"]);

    // Every customer's lookup agrees with the library's plan.
    let plan = library.plan().plan().unwrap();
    let ids = library.borrow_owner().ids().to_vec();
    let (mut inside, mut outside) = (0, 0);
    for (row, &id) in ids.iter().enumerate().step_by(37) {
        let lookup = served
            .get(&format!("/v1/campaigns/{plan_id}/customers/{id}"))
            .await;
        assert_eq!(lookup.status, StatusCode::OK, "{}", lookup.json);
        let json = &lookup.json;
        assert_eq!(json["customer_id"], id);
        assert_eq!(json["plan_id"], plan_id.as_str());
        match plan.offer_of(row) {
            Some(o) => {
                inside += 1;
                assert_eq!(json["in_plan"], true, "{json}");
                assert_eq!(json["offer"], ["call", "email"][o], "{json}");
            }
            None => {
                outside += 1;
                assert_eq!(json["in_plan"], false, "{json}");
                assert!(json["offer"].is_null());
            }
        }
        assert!(!json["reason"].as_str().unwrap().is_empty(), "{json}");
        assert_eq!(json["offers"].as_array().unwrap().len(), 2);
    }
    assert!(inside > 0 && outside > 0, "{inside} in, {outside} out");

    served
        .get(&format!("/v1/campaigns/{plan_id}/customers/999999999"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found", "999999999");
    served
        .get(&format!("/v1/campaigns/{plan_id}/customers/abc"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id", "abc");
    served.get("/v1/campaigns/12345").await.assert_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "12345",
    );
    // The report compares the plan with recorded responses: none without an event log.
    served
        .get(&format!("/v1/campaigns/{plan_id}/report"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found", "--wal");
    served.get("/v1/campaigns/optimise").await.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "POST",
    );
    served.stop().await;
}

#[tokio::test]
async fn campaign_optimise_rejects_bad_definitions_and_names_conflicts() {
    let served = Served::default().await;
    let unknown = json!({"resources": {"budget": 10},
        "offers": [{"name": "a", "value": "no_such_column", "uses": {"budget": 1}}]});
    served
        .post("/v1/campaigns/optimise", &unknown)
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "offers[0].value: at position 1: unknown column `no_such_column`",
        );
    let negative = json!({"resources": {"budget": -1}, "offers": [{"name": "a", "value": 1}]});
    served
        .post("/v1/campaigns/optimise", &negative)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_campaign", "budget");
    let rules = json!({"offers": [{"name": "a", "value": 1}],
        "contact_rules": [{"max_contacts": 2, "within_days": 30}]});
    served
        .post("/v1/campaigns/optimise", &rules)
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "no_contact_history",
            "contact_rules",
        );
    // Minimums the budget cannot meet: the conflict names the limit and the offer.
    let infeasible = json!({"resources": {"budget": 1, "calls": 1000},
        "offers": [{"name": "call", "value": "crv", "uses": {"budget": "cost", "calls": 1}, "min": 50},
                   {"name": "email", "value": 1, "uses": {"budget": 0}}]});
    let answer = served.post("/v1/campaigns/optimise", &infeasible).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let conflict = &answer.json["infeasible"];
    assert_eq!(conflict["resources"], json!(["budget"]), "{conflict}");
    assert_eq!(conflict["offers"], json!(["call"]), "{conflict}");
    assert_eq!(conflict["proven"], true);
    served.stop().await;
}

#[tokio::test]
async fn simulate_traces_a_campaign_along_one_resource_as_the_library_does() {
    let served = Served::with_customers(500, ServerConfig::default()).await;
    let definition = campaign_definition(300.0);
    let body = json!({"campaign": definition,
                      "frontier": {"resource": "calls", "points": 4, "spend": "budget"}});
    let answer = served.post("/v1/simulate", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let frontier = &answer.json["frontier"];

    let (_, table) = served.library();
    let bound = crv::campaign::definition::CampaignDefinition::parse(
        definition.to_string().as_bytes(),
        "test",
    )
    .unwrap()
    .bind(
        &table,
        &crv::campaign::contacts::ContactHistory::default(),
        0,
        &crv::cancel::Cancel::default(),
    )
    .unwrap();
    let spec = crv::campaign::simulate::ResourceFrontierSpec {
        resource: "calls".into(),
        grid: crv::campaign::simulate::LimitGrid::Points(4),
        spend: Some("budget".into()),
    };
    let library = crv::campaign::simulate::trace_resource(
        &bound,
        &spec,
        "frontier.",
        &crv::cancel::Cancel::default(),
    )
    .unwrap();
    // The library's answer read back as the server's was (serde_json parses floats to the
    // last bit or two): the same text.
    let expected: Value = serde_json::from_str(&json!(library).to_string()).unwrap();
    assert_eq!(frontier, &expected, "{frontier}");
    // 0 to the 30 calls the offer's `max` allows, in whole calls.
    let limits: Vec<f64> = frontier["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["limit"].as_f64().unwrap())
        .collect();
    assert_eq!(limits, [0.0, 13.0, 27.0, 40.0]);
    assert_eq!(frontier["limit"], 40.0);

    let with =
        |frontier: Value| json!({"campaign": campaign_definition(300.0), "frontier": frontier});
    served
        .post("/v1/simulate", &with(json!({"resource": "minutes"})))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "frontier.resource: `minutes` is not a resource of the campaign (resources: budget, calls)",
        );
    served
        .post(
            "/v1/simulate",
            &with(json!({"resource": "calls", "points": 3, "limits": [1]})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_parameter", "not both");
    served
        .post(
            "/v1/simulate",
            &with(json!({"resource": "calls", "limits": [-1]})),
        )
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "frontier.limits",
        );
    served
        .post(
            "/v1/simulate",
            &json!({"campaign": campaign_definition(300.0)}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json", "frontier");
    let mut rules = campaign_definition(300.0);
    rules["contact_rules"] = json!([{"max_contacts": 1, "within_days": 30}]);
    served
        .post(
            "/v1/simulate",
            &json!({"campaign": rules, "frontier": {"resource": "calls"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "no_contact_history", "--wal");
    let mut unknown = with(json!({"resource": "calls"}));
    unknown["scenarios"] = json!([]);
    served.post("/v1/simulate", &unknown).await.assert_error(
        StatusCode::BAD_REQUEST,
        "unknown_field",
        "scenarios",
    );
    served.stop().await;
}

#[tokio::test]
async fn only_the_last_campaign_plans_are_kept() {
    let served = Served::with_customers(500, ServerConfig::default()).await;
    let mut ids = Vec::new();
    for plan in 0..=crv::limits::MAX_STORED_PLANS {
        let answer = served
            .post(
                "/v1/campaigns/optimise",
                &campaign_definition(100.0 + plan as f64),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        ids.push(answer.json["plan_id"].as_str().unwrap().to_string());
    }
    let oldest = served.get(&format!("/v1/campaigns/{}", ids[0])).await;
    assert_eq!(oldest.status, StatusCode::NOT_FOUND, "{}", oldest.json);
    for id in &ids[1..] {
        let kept = served.get(&format!("/v1/campaigns/{id}")).await;
        assert_eq!(kept.status, StatusCode::OK, "{}", kept.json);
    }
    served.stop().await;
}

/// A server over the store of a CSV whose ids are text (`C-` and 14 digits, from generated
/// customers).
async fn served_with_text_ids() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut generated = Vec::new();
    crv::synthetic::write_customers_csv(&mut generated, 500, 7).unwrap();
    let text = String::from_utf8(generated).unwrap();
    let mut lines = text.lines();
    let mut csv = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let (id, rest) = line.split_once(',').unwrap();
        csv.push_str(&format!("C-{id:0>14},{rest}\n"));
    }
    let csv_path = dir.path().join("customers.csv");
    let store_path = dir.path().join("customers.crv");
    std::fs::write(&csv_path, csv).unwrap();
    crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    let state = AppState::open(
        &store_path,
        ScoreParams::default(),
        TierScheme::default(),
        ServerConfig::default(),
    )
    .unwrap();
    Served::serving(dir, store_path, state).await
}

#[tokio::test]
async fn text_ids_are_found_in_paths_lookups_and_selections_as_given() {
    let served = served_with_text_ids().await;
    let (store, scored) = served.library();
    assert!(store.text_ids().is_some());
    for row in [0, 17, 499] {
        let id = store.customer_id(row).to_string();
        assert!(id.starts_with("C-"), "{id}");
        let answer = served.get(&format!("/v1/customers/{id}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["customer_id"], id.as_str());
        assert_eq!(f32_of(&answer.json["crv"]), scored.crv()[row]);
        assert_eq!(answer.json["rank"], scored.tiers().rank[row]);
    }
    // A path piece %-escaped as browsers escape ids (here every `-`) names the same customer.
    let id = store.customer_id(17).to_string();
    let answer = served
        .get(&format!("/v1/customers/{}", id.replace('-', "%2D")))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["customer_id"], id.as_str());
    assert_eq!(answer.json["rank"], scored.tiers().rank[17]);
    // Bincode lookups carry whole numbers, which here would be internal positions: refused.
    let (status, _, bytes) = served
        .send_raw(
            Method::POST,
            "/v1/customers/lookup",
            &[(header::CONTENT_TYPE, binary::MEDIA_TYPE)],
            binary::encode(&LookupRequest { ids: vec![0, 1] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bytes).contains("ids are text"));
    served.get("/v1/customers/C-missing").await.assert_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "C-missing",
    );

    let known = store.customer_id(3).to_string();
    let answer = served
        .post(
            "/v1/customers/lookup",
            &json!({ "ids": [known, "nobody", 5] }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let customers = answer.json["customers"].as_array().unwrap();
    assert_eq!(customers[0]["customer_id"], known.as_str());
    assert_eq!(customers[0]["found"], true);
    assert_eq!(f32_of(&customers[0]["crv"]), scored.crv()[3]);
    assert_eq!(
        customers[1],
        json!({"customer_id": "nobody", "found": false})
    );
    // A number is the text of its digits here: no customer is called `5`.
    assert_eq!(customers[2], json!({"customer_id": 5, "found": false}));

    let answer = served
        .post("/v1/select", &json!({"budget": 50.0, "max_ids": 5}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let ids = answer.json["ids"].as_array().unwrap();
    assert!(!ids.is_empty());
    for id in ids {
        let id = id.as_str().expect("text ids are strings");
        assert!(store.row_of_external(id).is_some(), "{id}");
    }
    served.stop().await;
}

/// Reads one answer with a `Content-Length` body from a kept-alive `stream`: its status, its
/// head (lower-case text) and its body.
async fn read_answer(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let head = read_head(stream).await;
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|n| n.trim().parse().unwrap())
        .expect("a content length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, head, body)
}

/// The `customer_id` of a lookup's answer.
fn looked_up(body: &[u8]) -> String {
    let json: Value = serde_json::from_slice(body).unwrap();
    json["customer_id"].to_string()
}

#[tokio::test]
async fn one_connection_takes_pipelined_split_and_chunked_requests_in_order() {
    let served = Served::default().await;
    let ids = served.library().0.ids().to_vec();
    let get = |id: u64| format!("GET /v1/customers/{id} HTTP/1.1\r\nHost: crv\r\n\r\n");
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    // Two requests in one write: two answers, in order.
    let both = format!("{}{}", get(ids[0]), get(ids[1]));
    stream.write_all(both.as_bytes()).await.unwrap();
    for id in &ids[..2] {
        let (status, _, body) = read_answer(&mut stream).await;
        assert_eq!(status, 200);
        assert_eq!(looked_up(&body), id.to_string());
    }
    // A head in pieces, a pause between them.
    let request = get(ids[2]);
    let (first, second) = request.split_at(9);
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(second.as_bytes()).await.unwrap();
    let (status, _, body) = read_answer(&mut stream).await;
    assert_eq!((status, looked_up(&body)), (200, ids[2].to_string()));
    // A chunked body (hyper's from here on), then a plain request on the same connection.
    let lookup = json!({"ids": [ids[3]]}).to_string();
    let chunked = format!(
        "POST /v1/customers/lookup HTTP/1.1\r\nHost: crv\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{lookup}\r\n0\r\n\r\n",
        lookup.len()
    );
    stream.write_all(chunked.as_bytes()).await.unwrap();
    let (status, _, body) = read_answer(&mut stream).await;
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["customers"][0]["customer_id"].to_string(),
        ids[3].to_string()
    );
    stream.write_all(get(ids[4]).as_bytes()).await.unwrap();
    let (status, _, body) = read_answer(&mut stream).await;
    assert_eq!((status, looked_up(&body)), (200, ids[4].to_string()));
    served.stop().await;
}

#[tokio::test]
async fn a_body_that_follows_its_head_later_is_read() {
    let served = Served::default().await;
    let id = served.library().0.ids()[0];
    let lookup = json!({"ids": [id]}).to_string();
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    for _ in 0..2 {
        let head = format!(
            "POST /v1/customers/lookup HTTP/1.1\r\nHost: crv\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            lookup.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(lookup.as_bytes()).await.unwrap();
        let (status, head, body) = read_answer(&mut stream).await;
        assert_eq!(status, 200, "{head}");
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["customers"][0]["customer_id"].to_string(),
            id.to_string()
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn the_direct_lane_and_hyper_answer_alike() {
    let served = Served::default().await;
    let id = served.library().0.ids()[0];
    // HTTP/1.1 is answered by the direct lane, HTTP/1.0 by hyper (which closes without
    // saying so: HTTP/1.0's default).
    let mut answers = Vec::new();
    for version in ["1.1", "1.0"] {
        for path in [
            format!("/v1/customers/{id}"),
            "/v1/customers/0".to_string(),
            "/nowhere".to_string(),
            format!("/v1/customers/{id}?fields=crv&x=%20"),
            // Absolute-form: the lane hands it to hyper, whose `Uri` reads the path.
            format!("http://crv/v1/customers/{id}"),
        ] {
            let request = format!(
                "GET {path} HTTP/{version}\r\nHost: crv\r\nX-REQUEST-ID: id-{version}\r\n\
                 Connection: close\r\n\r\n"
            );
            let (status, head, body) = raw_exchange(served.addr, request.as_bytes()).await;
            assert!(
                head.contains(&format!("\r\nx-request-id: id-{version}\r\n")),
                "{head}"
            );
            let headers: Vec<String> = head
                .lines()
                .skip(1)
                .filter(|line| !line.is_empty())
                .map(|line| line.split(':').next().unwrap().to_string())
                .filter(|name| !["x-request-id", "date", "connection"].contains(&name.as_str()))
                .collect();
            assert!(head.contains("\r\ndate: "), "{head}");
            if version == "1.1" {
                assert!(head.contains("\r\nconnection: close"), "{head}");
            }
            let mut headers = headers;
            headers.sort();
            answers.push((path, status, headers, body));
        }
    }
    let (direct, hyper) = answers.split_at(answers.len() / 2);
    assert_eq!(direct, hyper);
    assert_eq!(direct[0].1, 200);
    assert_eq!(direct[1].1, 404);
    // With a query, or in absolute-form, the same customer's answer.
    for (_, status, headers, body) in &direct[3..] {
        assert_eq!(
            (status, headers, body),
            (&direct[0].1, &direct[0].2, &direct[0].3)
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_kept_alive_connections_at_once() {
    let served = Served::start(config_with(|config| {
        config.drain_timeout = Duration::from_secs(30);
        config.header_timeout = Duration::from_secs(30);
    }))
    .await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: crv\r\n\r\n")
        .await
        .unwrap();
    let (status, _, _) = read_answer(&mut stream).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    served.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for an idle connection",
        started.elapsed()
    );
    assert!(read_until_closed(&mut stream).await.is_empty());
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let served = Served::default().await;
    let id = served.library().0.ids()[0];
    let stream = TcpStream::connect(served.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for _ in 0..2 {
        let request = Request::builder()
            .uri(format!("http://crv/v1/customers/{id}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(looked_up(&body), id.to_string());
    }
    served.stop().await;
}
