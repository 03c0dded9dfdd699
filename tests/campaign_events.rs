//! Campaigns against a live server's events (`crv serve --wal`, real sockets): contact rules
//! read the contacts posted to the server and exclude exactly the customers they should, with
//! the plan `crv optimise --contacts` makes from the same contacts as a CSV; and the campaign
//! report counts the contacts and responses recorded for the plan's campaign, per offer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "campaign-events-token";
const CUSTOMERS: u64 = 240;

/// A store of [`CUSTOMERS`] generated customers in `dir`, and their ids in store order.
fn store_file(dir: &Path) -> (PathBuf, Vec<u64>) {
    let csv_path = dir.join("customers.csv");
    let store_path = dir.join("customers.crv");
    let csv = std::fs::File::create(&csv_path).unwrap();
    crv::synthetic::write_customers_csv(csv, CUSTOMERS, 5).unwrap();
    crv::store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    let ids = crv::Store::open(&store_path).unwrap().ids().to_vec();
    (store_path, ids)
}

/// A `crv serve --wal` child process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(store: &Path, wal: &Path) -> Server {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_crv"))
            .args([
                "serve",
                store.to_str().unwrap(),
                "--addr",
                &addr.to_string(),
            ])
            .args(["--wal", wal.to_str().unwrap(), "--token-env", "CRV_TOKEN"])
            .env("CRV_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, addr };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "no server");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// One request with the token on a fresh connection: status and JSON body.
    fn request(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: crv\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let status = String::from_utf8_lossy(&answer[9..12]).parse().unwrap();
        let json = serde_json::from_slice(&answer[split + 4..]).unwrap_or(Value::Null);
        (status, json)
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, json) = self.request("POST", path, body);
        assert_eq!(status, 200, "POST {path}: {json}");
        json
    }

    fn get(&self, path: &str) -> Value {
        let (status, json) = self.request("GET", path, &Value::Null);
        assert_eq!(status, 200, "GET {path}: {json}");
        json
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A campaign of two resources and two offers whose limits leave room for every customer
/// (every value is positive): only the contact rule keeps anyone out.
fn campaign() -> Value {
    json!({
        "name": "spring",
        "resources": {"budget": 1e9, "calls": 25},
        "offers": [
            {"name": "coupon", "value": "1 + 0.01 * cost", "uses": {"budget": "cost"}},
            {"name": "call", "value": 3, "uses": {"budget": "cost", "calls": 1}}
        ],
        "contact_rules": [{"max_contacts": 1, "within_days": 30}],
        "as_of": "2026-12-01T00:00:00Z"
    })
}

/// A contact event of `campaign`'s `offer` for customer `id` at `time`.
fn contact(id: u64, time: &str, campaign: &str, offer: &str) -> Value {
    json!({"customer_id": id, "type": "contact", "channel": "email", "campaign": campaign,
           "offer": offer, "time": time})
}

/// A response event worth `value`; `offer` left out when empty.
fn response(id: u64, campaign: &str, offer: &str, value: f64) -> Value {
    let mut event = json!({"customer_id": id, "type": "response", "campaign": campaign,
                           "value": value, "time": "2026-12-10T09:00:00Z"});
    if !offer.is_empty() {
        event["offer"] = json!(offer);
    }
    event
}

/// Each customer's offer in plan `plan_id` (`None`: left out), and those a contact rule
/// excluded, by the plan's customer lookups.
fn offers_of(
    server: &Server,
    plan_id: &str,
    ids: &[u64],
) -> (BTreeMap<u64, Option<String>>, BTreeSet<u64>) {
    let mut offers = BTreeMap::new();
    let mut excluded = BTreeSet::new();
    for &id in ids {
        let lookup = server.get(&format!("/v1/campaigns/{plan_id}/customers/{id}"));
        offers.insert(id, lookup["offer"].as_str().map(str::to_string));
        if !lookup["contact_rules"].as_array().unwrap().is_empty() {
            assert_eq!(lookup["in_plan"], false, "{lookup}");
            assert!(
                lookup["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("excluded by contact rule 0"),
                "{lookup}"
            );
            excluded.insert(id);
        }
    }
    (offers, excluded)
}

#[test]
fn contact_rules_read_the_event_log_as_the_cli_reads_a_contacts_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_file(dir.path());
    let server = Server::start(&store, &dir.path().join("wal"));

    // Inside the 30 days before as_of: excluded. Before the window, after as_of, or a response
    // (not a contact): not excluded.
    let inside: Vec<u64> = ids[..12].to_vec();
    let mut contacts = Vec::new();
    for (k, &id) in inside.iter().enumerate() {
        let time = if k % 2 == 0 {
            "2026-11-20T10:00:00Z"
        } else {
            "2026-11-01T00:00:01Z"
        };
        contacts.push(contact(id, time, "autumn", "coupon"));
    }
    for &id in &ids[12..17] {
        contacts.push(contact(id, "2026-10-01T00:00:00Z", "autumn", "coupon"));
    }
    for &id in &ids[17..20] {
        contacts.push(contact(id, "2026-12-05T00:00:00Z", "autumn", "coupon"));
    }
    let mut events = contacts.clone();
    for &id in &ids[20..23] {
        events.push(response(id, "autumn", "coupon", 5.0));
    }
    server.post("/v1/events", &json!({ "events": events }));

    let summary = server.post("/v1/campaigns/optimise", &campaign());
    assert_eq!(summary["name"], "spring");
    let plan_id = summary["plan_id"].as_str().unwrap().to_string();
    let (offers, excluded) = offers_of(&server, &plan_id, &ids);
    assert_eq!(excluded, inside.iter().copied().collect::<BTreeSet<u64>>());
    // Every customer the rule lets through gets an offer (the limits leave room for all).
    for (id, offer) in &offers {
        assert_eq!(offer.is_none(), excluded.contains(id), "customer {id}");
    }
    assert_eq!(
        summary["assigned"].as_u64().unwrap(),
        CUSTOMERS - inside.len() as u64
    );
    assert_eq!(summary["offers"]["call"]["count"], 25);

    // The same contacts as a CSV: the command line makes the same plan.
    let mut csv = String::from("customer_id,time,channel,campaign,offer\n");
    for event in &contacts {
        csv += &format!(
            "{},{},email,{},{}\n",
            event["customer_id"],
            event["time"].as_str().unwrap(),
            event["campaign"].as_str().unwrap(),
            event["offer"].as_str().unwrap()
        );
    }
    let contacts_csv = dir.path().join("contacts.csv");
    std::fs::write(&contacts_csv, csv).unwrap();
    let campaign_json = dir.path().join("campaign.json");
    std::fs::write(&campaign_json, campaign().to_string()).unwrap();
    let assignment = dir.path().join("assignment.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(["optimise", store.to_str().unwrap(), "--campaign"])
        .arg(&campaign_json)
        .arg("--contacts")
        .arg(&contacts_csv)
        .arg("-o")
        .arg(&assignment)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let cli: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in [
        "objective",
        "upper_bound",
        "gap",
        "assigned",
        "offers",
        "name",
    ] {
        assert_eq!(cli[key], summary[key], "{key}");
    }
    let mut cli_offers: BTreeMap<u64, Option<String>> = ids.iter().map(|&id| (id, None)).collect();
    let text = std::fs::read_to_string(&assignment).unwrap();
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let id: u64 = fields.next().unwrap().parse().unwrap();
        cli_offers.insert(id, Some(fields.next().unwrap().to_string()));
    }
    assert_eq!(cli_offers, offers);
}

#[test]
fn the_campaign_report_counts_the_responses_recorded_for_each_offer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = store_file(dir.path());
    let server = Server::start(&store, &dir.path().join("wal"));
    // One customer the rule excludes.
    let left_out = ids[0];
    server.post(
        "/v1/events",
        &json!({"events": [contact(left_out, "2026-11-25T00:00:00Z", "autumn", "call")]}),
    );
    let summary = server.post("/v1/campaigns/optimise", &campaign());
    let plan_id = summary["plan_id"].as_str().unwrap().to_string();
    let (offers, _) = offers_of(&server, &plan_id, &ids);
    let holding = |offer: &str| -> Vec<u64> {
        offers
            .iter()
            .filter(|(_, held)| held.as_deref() == Some(offer))
            .map(|(&id, _)| id)
            .collect()
    };
    let (coupon, call) = (holding("coupon"), holding("call"));
    let report_path = format!("/v1/campaigns/{plan_id}/report");

    // Before any event of the campaign: the plan's numbers, nothing realised.
    let empty = server.get(&report_path);
    assert_eq!(empty["campaign"], "spring");
    assert_eq!(empty["plan_id"], plan_id.as_str());
    for offer in ["coupon", "call"] {
        let tally = &empty["offers"][offer];
        assert_eq!(tally["assigned"], summary["offers"][offer]["count"]);
        assert_eq!(tally["predicted_value"], summary["offers"][offer]["value"]);
        assert_eq!(tally["contacted"], 0);
        assert_eq!(tally["response_rate"], Value::Null);
        assert_eq!(tally["realised_ratio"], 0.0);
    }

    let (c1, c2, c3) = (coupon[0], coupon[1], coupon[2]);
    let (d1, d2) = (call[0], call[1]);
    let events = vec![
        contact(c1, "2026-12-02T00:00:00Z", "spring", "coupon"),
        contact(c2, "2026-12-02T00:00:00Z", "spring", "coupon"),
        contact(c3, "2026-12-02T00:00:00Z", "spring", "coupon"),
        contact(d1, "2026-12-02T00:00:00Z", "spring", "call"),
        response(c1, "spring", "coupon", 10.0),
        // No offer named: it counts for the customer's own.
        response(c1, "spring", "", 2.5),
        response(c2, "spring", "coupon", 4.0),
        response(d1, "spring", "call", 7.0),
        // A responder without a recorded contact.
        response(d2, "spring", "call", 1.0),
        // Outside the plan: a customer it left out, another offer than the customer's.
        response(left_out, "spring", "coupon", 3.0),
        contact(left_out, "2026-12-02T00:00:00Z", "spring", "coupon"),
        response(c3, "spring", "call", 5.0),
        // Another campaign never counts.
        response(c2, "autumn", "coupon", 100.0),
        contact(c3, "2026-12-02T00:00:00Z", "autumn", "coupon"),
        // Recorded late, but from before the plan's `as_of`: history, not its outcome.
        contact(d2, "2026-11-30T00:00:00Z", "spring", "call"),
        json!({"customer_id": c2, "type": "response", "campaign": "spring", "offer": "coupon",
               "value": 40.0, "time": "2026-12-01T00:00:00Z"}),
    ];
    let posted = server.post("/v1/events", &json!({ "events": events }));
    let report = server.get(&report_path);
    assert_eq!(report["last_sequence"], posted["sequence"]);
    let coupon_value = summary["offers"]["coupon"]["value"].as_f64().unwrap();
    let call_value = summary["offers"]["call"]["value"].as_f64().unwrap();
    assert_eq!(
        report["offers"]["coupon"],
        json!({"assigned": coupon.len(), "predicted_value": coupon_value, "contacted": 3,
               "responders": 2, "responses": 3, "response_value": 16.5,
               "response_rate": 2.0 / 3.0, "realised_ratio": 16.5 / coupon_value})
    );
    assert_eq!(
        report["offers"]["call"],
        json!({"assigned": 25, "predicted_value": call_value, "contacted": 1,
               "responders": 2, "responses": 2, "response_value": 8.0,
               "response_rate": 2.0, "realised_ratio": 8.0 / call_value})
    );
    let total = &report["total"];
    assert_eq!(total["assigned"], summary["assigned"]);
    assert_eq!(total["contacted"], 4);
    assert_eq!(total["responders"], 4);
    assert_eq!(total["responses"], 5);
    assert_eq!(total["response_value"], 24.5);
    assert_eq!(total["response_rate"], 1.0);
    assert_eq!(total["realised_ratio"], 24.5 / (coupon_value + call_value));
    assert_eq!(
        report["outside_plan"],
        json!({"contacts": 1, "responses": 2, "response_value": 8.0})
    );
    assert_eq!(
        report["before_plan"],
        json!({"contacts": 1, "responses": 1, "response_value": 40.0})
    );

    // A definition without a name cannot be matched to events; an unknown plan is a 404.
    let mut unnamed = campaign();
    unnamed.as_object_mut().unwrap().remove("name");
    let unnamed = server.post("/v1/campaigns/optimise", &unnamed);
    let (status, error) = server.request(
        "GET",
        &format!(
            "/v1/campaigns/{}/report",
            unnamed["plan_id"].as_str().unwrap()
        ),
        &Value::Null,
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "no_campaign_name");
    let (status, _) = server.request("GET", "/v1/campaigns/999/report", &Value::Null);
    assert_eq!(status, 404);
    let (status, error) = server.request("POST", &report_path, &Value::Null);
    assert_eq!(status, 405, "{error}");
}
