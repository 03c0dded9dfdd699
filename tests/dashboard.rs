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
use serde_json::Value;

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
    /// A customer id of the store (its first row).
    customer: String,
}

impl Server {
    fn start(customers: &str) -> Server {
        let work = tempfile::tempdir().unwrap();
        let csv = work.path().join("customers.csv");
        let store = work.path().join("customers.crv");
        run(&[
            "gen",
            "--customers",
            customers,
            "--seed",
            "17",
            "-o",
            s(&csv),
        ]);
        run(&["import", s(&csv), "-o", s(&store)]);
        let customer = std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .nth(1)
            .and_then(|row| row.split(',').next())
            .unwrap()
            .to_string();
        let log_path = work.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_crv"))
            .args([
                "serve",
                s(&store),
                "--addr",
                "127.0.0.1:0",
                "--currency",
                "EUR",
            ])
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
        }
    }

    /// `GET path`: status line, headers and body.
    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
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

#[test]
fn the_page_works_in_a_headless_chromium() {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let chromium = Path::new("/usr/bin/chromium");
    let playwright = e2e.join("node_modules/playwright-core");
    if !tools_ready(&[chromium, &playwright]) {
        return;
    }
    let server = Server::start(CUSTOMERS);
    let shots = e2e_dir().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let output = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .args([&server.base, s(&shots), &server.customer])
        .output()
        .expect("node runs (tests/e2e/setup.sh)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for shot in ["dashboard-1366x768.png", "dashboard-390x844.png"] {
        assert!(shots.join(shot).exists(), "no screenshot {shot}");
    }
    assert!(!server.log().contains("panicked"));
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
