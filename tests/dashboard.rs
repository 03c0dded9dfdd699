//! The dashboard and the API's description against a real `crv serve`: the OpenAPI document
//! names exactly the router's routes; the page, summary and document are served; a headless
//! Chromium loads the page, types a budget and a customer id and sees the answers with no
//! console error (tests/e2e/dashboard.mjs); schemathesis, driven by the document, finds no 5xx
//! and no response contradicting it (tests/e2e/schemathesis.sh).
//!
//! The browser and schemathesis need tools outside Cargo: `tests/e2e/setup.sh` installs them
//! (Debian's chromium, the pinned npm and PyPI packages under `target/e2e/`); `.ci/run` runs it
//! first. Without them these two tests fail saying so, unless `CRV_SKIP_BROWSER_TESTS=1` opts
//! out on a machine that cannot have them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crv::api::dashboard::OPENAPI;
use crv::api::metrics::Route;
use serde_json::{Value, json};

/// Customers in the test store: enough for tiers and a curved frontier, quick to generate.
const CUSTOMERS: &str = "20000";
/// Customers in schemathesis's store: its generated simulations (up to 100 frontier points)
/// must finish within their time limit on the unoptimised test binary of a busy machine.
const FUZZED_CUSTOMERS: &str = "2000";

/// Every (method, path) pair the document describes equals every route of the router.
#[test]
fn openapi_describes_every_route_and_nothing_else() {
    let document: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                .map(|method| (method.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let routed: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .filter(|route| **route != Route::Unmatched)
        .map(|route| {
            let method = route.method().split(',').next().unwrap().trim();
            (method.to_string(), route.template().to_string())
        })
        .collect();
    let missing: Vec<_> = routed.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes not in src/api/openapi.json: {missing:?}; described routes the router lacks: {extra:?}"
    );
    // Every operation documents its errors with the one error schema.
    for (method, path) in &described {
        let operation = &document["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("200"), "{method} {path}: no 200");
        assert!(responses.contains_key("405"), "{method} {path}: no 405");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let expected = if path == "/readyz" && status == "503" {
                    "#/components/schemas/Status"
                } else {
                    "#/components/schemas/Error"
                };
                assert_eq!(schema, expected, "{method} {path} {status}");
            }
        }
    }
}

/// A generated store and a `crv serve` on it, killed on drop.
struct Server {
    child: Child,
    base: String,
    work: tempfile::TempDir,
    /// The customer id the browser test looks up.
    customer: String,
    /// The bearer token the server asks for, sent with every request here.
    token: Option<&'static str>,
}

/// The full server's bearer token (`CRV_TOKEN`).
const TOKEN: &str = "dashboard-test-token";

impl Server {
    /// A server on a generated store of `customers`.
    fn start(customers: &str) -> Server {
        let work = tempfile::tempdir().unwrap();
        let csv = work.path().join("customers.csv");
        run(&[
            "gen",
            "--customers",
            customers,
            "--seed",
            "17",
            "-o",
            s(&csv),
        ]);
        Server::spawn(work, &csv, None, &[])
    }

    /// A server with every panel's data: the CDNOW histories with their holdout period valued
    /// by a BG/NBD + Gamma-Gamma model fitted here, events (`--wal`) and room for plans, behind
    /// the bearer token [`TOKEN`]; the customer looked up is one [`feed`] gives events.
    fn start_with_model_and_events() -> Server {
        let work = tempfile::tempdir().unwrap();
        let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_holdout.csv");
        let fitted = work.path().join("fitted.crv");
        run(&["import", s(&csv), "-o", s(&fitted)]);
        let model = work.path().join("model.json");
        run(&[
            "fit",
            s(&fitted),
            "--model",
            "bgnbd",
            "--spend",
            "gamma-gamma",
            "--time-unit",
            "week",
            "-o",
            s(&model),
        ]);
        let wal = work.path().join("wal");
        let mut server = Server::spawn(
            work,
            &csv,
            Some(TOKEN),
            &[
                "--model",
                s(&model),
                "--horizon",
                "52",
                "--discount",
                "0.01",
                "--wal",
                s(&wal),
            ],
        );
        server.customer = PROMOTED[0].to_string();
        server
    }

    /// Imports `csv` and serves it with `extra` flags, asking for `token` if given.
    fn spawn(
        work: tempfile::TempDir,
        csv: &Path,
        token: Option<&'static str>,
        extra: &[&str],
    ) -> Server {
        let store = work.path().join("customers.crv");
        run(&["import", s(csv), "-o", s(&store)]);
        let customer = std::fs::read_to_string(csv)
            .unwrap()
            .lines()
            .nth(1)
            .and_then(|row| row.split(',').next())
            .unwrap()
            .to_string();
        let log_path = work.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_crv"));
        if let Some(token) = token {
            command.env("CRV_TOKEN", token);
        }
        let child = command
            .args([
                "serve",
                s(&store),
                "--addr",
                "127.0.0.1:0",
                "--currency",
                "EUR",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let started = Instant::now();
        let base = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = text.lines().find(|line| line.contains("listening")) {
                let at = line
                    .find("addr=")
                    .expect("the listening line names its address");
                break format!(
                    "http://{}",
                    line[at + 5..].split_whitespace().next().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "crv serve did not listen: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            base,
            work,
            customer,
            token,
        }
    }

    /// `GET path`: status, headers and body.
    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\r\n"
        ))
    }

    /// `POST path` of `body` (JSON): status and the answer as JSON.
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let (status, _, answer) = self.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        (status, serde_json::from_slice(&answer).unwrap())
    }

    /// One request (its head ends in a blank line) over a new connection, with the token if
    /// the server asks for one: status, headers and body.
    fn request(&self, request: &str) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        let request = match self.token {
            Some(token) => {
                request.replacen("\r\n", &format!("\r\nAuthorization: Bearer {token}\r\n"), 1)
            }
            None => request.to_string(),
        };
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head, raw[split + 4..].to_vec())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "crv {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn page_summary_and_description_are_served() {
    let server = Server::start(CUSTOMERS);
    let (status, head, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase().contains("content-type: text/html"),
        "{head}"
    );
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("/v1/summary") && !page.contains("http://") && !page.contains("https://")
    );
    let (status, _, document) = server.get("/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(document, OPENAPI.as_bytes());

    let (status, _, body) = server.get("/v1/summary");
    assert_eq!(status, 200);
    let summary: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(summary["server"]["currency"], "EUR");
    let endpoints: Vec<&str> = summary["server"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(endpoints.contains(&"POST /v1/select") && endpoints.contains(&"GET /v1/summary"));
    assert_eq!(summary["tiers"]["customers"], 20000);
    let lorenz = summary["lorenz"]["value_share"].as_array().unwrap();
    assert_eq!(lorenz[0], 0.0);
    // The top fifth brings more than a fifth of the value, and the curve reaches 100% at the
    // last customer of positive value.
    assert!(lorenz[lorenz.len() / 5].as_f64().unwrap() > 0.2);
    let peak = lorenz
        .iter()
        .map(|v| v.as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!((peak - 1.0).abs() < 1e-3, "{peak}");
    let frontier = &summary["frontier"];
    let values: Vec<f64> = frontier["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1] + 1e-6),
        "the frontier rises"
    );
    assert!(summary["p_alive"].is_null(), "no model, no P(alive)");
    assert!(body.len() < 40_000, "summary of {} bytes", body.len());
    assert!(!server.log().contains("panicked"));
}

/// Where the e2e tools live (tests/e2e/setup.sh puts them there).
fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e")
}

/// Whether a browser test may run: `Ok(false)` when opted out; `Err` naming what is missing.
fn tools_ready(needs: &[&Path]) -> bool {
    if std::env::var_os("CRV_SKIP_BROWSER_TESTS").is_some_and(|v| v == "1") {
        eprintln!("CRV_SKIP_BROWSER_TESTS=1: the browser and schemathesis tests are skipped");
        return false;
    }
    for need in needs {
        assert!(
            need.exists(),
            "{} is missing: run tests/e2e/setup.sh (installs chromium and the pinned npm and \
             PyPI packages; .ci/run does), or set CRV_SKIP_BROWSER_TESTS=1 to skip these tests \
             on this machine",
            need.display()
        );
    }
    true
}

/// tests/e2e when its tools are there (`None` when opted out).
fn browser_ready() -> Option<PathBuf> {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let chromium = Path::new("/usr/bin/chromium");
    let playwright = e2e.join("node_modules/playwright-core");
    tools_ready(&[chromium, &playwright]).then_some(e2e)
}

/// Runs tests/e2e/dashboard.mjs in `mode` (`plain` or `full`) against `server`; its
/// screenshots go to target/e2e/screenshots.
fn browse(e2e: &Path, server: &Server, mode: &str) {
    let shots = e2e_dir().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let output = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .args([&server.base, s(&shots), &server.customer, mode])
        .args(server.token)
        .output()
        .expect("node runs (tests/e2e/setup.sh)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    for width in ["1366x768", "390x844"] {
        let shot = format!("dashboard-{mode}-{width}.png");
        assert!(shots.join(&shot).exists(), "no screenshot {shot}");
    }
    assert!(!server.log().contains("panicked"));
}

#[test]
fn the_page_works_in_a_headless_chromium() {
    let Some(e2e) = browser_ready() else {
        return;
    };
    let server = Server::start(CUSTOMERS);
    browse(&e2e, &server, "plain");
}

/// Customers an event makes frequent, recent, big buyers (tier A): each had at most one repeat
/// purchase, long ago.
const PROMOTED: [u64; 3] = [2, 3, 7];
/// Contact events posted besides, for the rate of events.
const CONTACTS: u64 = 100;

/// Posts the events and the campaign behind the live and plan panels; answers the events
/// posted.
fn feed(server: &Server) -> u64 {
    let mut events = Vec::new();
    for id in PROMOTED {
        for (column, value) in [
            ("frequency", 25.0),
            ("recency", 38.0),
            ("monetary_value", 80.0),
        ] {
            events
                .push(json!({"type": "set", "customer_id": id, "column": column, "value": value}));
        }
    }
    for id in 10..10 + CONTACTS {
        events.push(json!({"type": "contact", "customer_id": id, "channel": "email"}));
    }
    let (status, answer) = server.post("/v1/events", &json!({ "events": events }));
    assert_eq!(status, 200, "{answer}");
    let (status, plan) = server.post(
        "/v1/campaigns/optimise",
        &json!({
            "resources": {"budget": 500, "calls": 40},
            "offers": [
                {"name": "call", "value": "crv", "uses": {"budget": 5, "calls": 1}},
                {"name": "email", "value": "0.3 * crv", "uses": {"budget": 0.5}}
            ]
        }),
    );
    assert_eq!(status, 200, "{plan}");
    events.len() as u64
}

fn get_json(server: &Server, path: &str) -> Value {
    let (status, _, body) = server.get(path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The model, live and plan panels' data: the P(alive) matrix and the holdout calibration
/// (Fader, Hardie & Lee's 1411 customers without a repeat purchase), the events of the last
/// seconds with the customers they moved to tier A, the newest plan with its resources.
#[test]
fn the_model_events_and_plan_panels_have_their_data() {
    let server = Server::start_with_model_and_events();
    let tier = |id: u64| get_json(&server, &format!("/v1/customers/{id}"))["tier"].clone();
    let before: Vec<Value> = PROMOTED.iter().map(|&id| tier(id)).collect();
    assert!(before.iter().all(|t| t != "A"), "{before:?}");
    let summary = get_json(&server, "/v1/summary");
    assert_eq!(summary["server"]["live"], true);
    assert_eq!(summary["server"]["plans"], 0);
    let model = &summary["model"];
    assert_eq!(model["purchase_model"], "bgnbd");
    assert_eq!(model["spend_model"], "gamma-gamma");
    assert_eq!(model["time_unit"], "week");
    let matrix = &model["p_alive_matrix"];
    let rows = matrix["p_alive"].as_array().unwrap();
    assert_eq!(rows.len(), matrix["recencies"].as_array().unwrap().len());
    assert_eq!(
        rows[0].as_array().unwrap().len(),
        matrix["frequencies"].as_array().unwrap().len()
    );
    let holdout = model["holdout"].as_array().unwrap();
    assert_eq!(holdout[0]["label"], "0");
    assert_eq!(holdout[0]["customers"], 1411);
    assert!((holdout[0]["actual"].as_f64().unwrap() - 0.2367).abs() < 1e-4);
    assert!((holdout[0]["predicted"].as_f64().unwrap() - 0.2251).abs() < 1e-3);

    let posted = feed(&server);
    // The events' second is over: it is among the whole seconds answered.
    std::thread::sleep(Duration::from_millis(1100));
    let activity = get_json(&server, "/v1/events/activity");
    let rate: u64 = activity["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(rate, posted, "{activity}");
    assert_eq!(activity["events_total"], posted);
    let changes = activity["tier_changes"].as_array().unwrap();
    for (&id, before) in PROMOTED.iter().zip(&before) {
        assert_eq!(tier(id), "A");
        // The last change of the customer's tier: from where they stood to A.
        let change = changes
            .iter()
            .find(|c| c["customer_id"] == id)
            .unwrap_or_else(|| panic!("no change of customer {id}: {activity}"));
        assert_eq!(change["to"], "A", "{change}");
        let first = changes
            .iter()
            .rev()
            .find(|c| c["customer_id"] == id)
            .unwrap();
        assert_eq!(&first["from"], before, "{first}");
    }
    let profile = get_json(&server, &format!("/v1/customers/{}/profile", PROMOTED[0]));
    assert_eq!(profile["events"]["count"], 3, "{profile}");
    assert_eq!(profile["columns"]["frequency"], 25.0);
    assert_eq!(profile["events"]["recent"][0]["type"], "set");
    // Newest first.
    let sequences: Vec<u64> = changes
        .iter()
        .map(|c| c["sequence"].as_u64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");

    let plans = get_json(&server, "/v1/campaigns");
    assert_eq!(plans["plan_ids"], json!(["1"]));
    let latest = &plans["latest"];
    assert_eq!(latest["plan_id"], "1");
    assert_eq!(latest["resources"]["calls"]["limit"], 40.0);
    assert!(latest["resources"]["calls"]["used"].as_f64().unwrap() <= 40.0);
    assert_eq!(get_json(&server, "/v1/summary")["server"]["plans"], 1);
    assert!(!server.log().contains("panicked"));
}

/// The dashboard of [`the_model_events_and_plan_panels_have_their_data`]'s server in a headless
/// Chromium: every panel drawn, at both widths, with no console error.
#[test]
fn the_full_page_works_in_a_headless_chromium() {
    let Some(e2e) = browser_ready() else {
        return;
    };
    let server = Server::start_with_model_and_events();
    feed(&server);
    browse(&e2e, &server, "full");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_contradiction() {
    let schemathesis = e2e_dir().join("venv/bin/schemathesis");
    if !tools_ready(&[&schemathesis]) {
        return;
    }
    let server = Server::start(FUZZED_CUSTOMERS);
    let document = server.work.path().join("openapi.json");
    std::fs::write(&document, OPENAPI).unwrap();
    // Run in the server's scratch directory: schemathesis keeps a `.schemathesis/` cache in its
    // working directory, which must not land in the checkout.
    let output = Command::new(&schemathesis)
        .current_dir(server.work.path())
        .args([
            "run",
            s(&document),
            "--url",
            &server.base,
            "--max-examples",
            "25",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--seed",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
