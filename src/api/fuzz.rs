//! The body of the `api_request` fuzz target, compiled only with the `fuzzing` feature (enabled
//! by `fuzz/Cargo.toml` and, through a dev-dependency, by `cargo test`), so that `fuzz/` and the
//! test that replays the committed corpus run exactly the same code. It returns which decoders
//! accepted the input; a broken property panics, which is the fuzzer's finding.

use super::binary;
use super::request::{self, SelectRequest, SimulateBody};
use super::wire::DEFAULT_MAX_BODY_BYTES;
use crate::campaign::contacts::ContactHistory;
use crate::campaign::simulate::trace_resource;
use crate::cancel::Cancel;
use crate::model::ScoreParams;
use crate::store::{Store, csv, writer};
use crate::table::Table;

/// Arbitrary bytes as every request body the server decodes: a JSON lookup, a bincode lookup,
/// a JSON selection and a JSON simulation. A decoded lookup must re-encode to a body that
/// decodes to the same ids; a decoded selection is bound to a three-customer table and, when
/// that succeeds, run on it (re-scored when it asks for its own parameters), within its budget;
/// a decoded simulation holds at least one scenario, every one named uniquely; a decoded
/// campaign frontier is traced on that table, its limits ascending and no point's bound below
/// its plan.
///
/// # Panics
/// When a decoded lookup does not survive its own re-encoding, a selection bound to a small
/// table has invalid parameters or overspends, or a decoded simulation has no scenario or two
/// of one name.
pub fn requests(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    if let Ok(lookup) = request::lookup_from_json(bytes) {
        decoded.lookup_json = true;
        let json = serde_json::json!({ "ids": lookup.ids }).to_string();
        let again =
            request::lookup_from_json(json.as_bytes()).expect("a lookup's own JSON must decode");
        assert_eq!(again, lookup);
    }
    if let Ok(lookup) = request::lookup_from_bincode(bytes, DEFAULT_MAX_BODY_BYTES) {
        decoded.lookup_bincode = true;
        // The decoder takes exactly one message with nothing after it: the same bytes.
        assert_eq!(binary::encode(&lookup), bytes);
    }
    if let Ok(select) = SelectRequest::from_json(bytes) {
        decoded.select = true;
        let table = fixture_table();
        if let Ok(selection) = select.selection(table.params(), Cancel::default())
            && let Ok(bound) = selection.bind(table)
        {
            bound
                .params()
                .validate()
                .expect("a bound selection's parameters are valid");
            let selected = if bound.rescores(table) {
                table
                    .rescored(*bound.params())
                    .and_then(|table| bound.select(&table))
            } else {
                bound.select(table)
            };
            if let Ok(targets) = selected {
                assert!(
                    targets.total_cost <= targets.budget,
                    "a selection never spends beyond its budget"
                );
            }
        }
    }
    match SimulateBody::from_json(bytes) {
        Ok(SimulateBody::Scenarios(simulate)) => {
            decoded.simulate = true;
            let scenarios = &simulate.scenarios.scenarios;
            assert!(!scenarios.is_empty(), "a decoded simulation has a scenario");
            let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), scenarios.len(), "scenario names are unique");
            let _ = simulate.options(Default::default());
        }
        Ok(SimulateBody::Campaign(request)) => {
            decoded.simulate = true;
            let cancel = Cancel::default();
            let bound =
                request
                    .definition
                    .bind(fixture_table(), &ContactHistory::default(), 0, &cancel);
            if let Ok(bound) = bound
                && let Ok(frontier) =
                    trace_resource(&bound, &request.frontier, "frontier.", &cancel)
            {
                let points = &frontier.points;
                assert!(
                    points.windows(2).all(|w| w[0].limit < w[1].limit),
                    "a campaign frontier's limits ascend"
                );
                for point in points {
                    if let (Some(objective), Some(bound)) = (point.objective, point.upper_bound) {
                        assert!(
                            bound >= objective - 1e-9 * objective.abs().max(1.0),
                            "a point's bound is never below its plan"
                        );
                    }
                }
            }
        }
        Err(_) => {}
    }
    decoded
}

/// The table selections are bound to: three customers, scored with the default parameters.
fn fixture_table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let text = "customer_id,margin,retention,cost,segment\n\
                    1,50,0.8,1.5,gold\n2,150,0.5,2,silver\n3,-5,0.9,0.25,basic\n";
        let parsed =
            csv::read_csv(text.as_bytes(), "fixture.csv", &mut |_| {}).expect("the fixture parses");
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes)
            .expect("writing to memory cannot fail");
        let store = Store::from_bytes(&bytes).expect("the fixture store opens");
        Table::score(
            std::sync::Arc::new(store),
            ScoreParams::default(),
            Default::default(),
        )
        .expect("the fixture scores")
    })
}

/// Arbitrary bytes as the start of a connection's unanswered bytes, read by the direct lane
/// ([`super::direct::read_head`]) under a body limit of 1,000 bytes. A head it answers lies
/// within the bytes, with its path and every header inside it and a body within the limit;
/// it reads the same with more bytes after it; its path is the path hyper's `Uri` reads in
/// its target; its fields make hyper's `HeaderName`s and `HeaderValue`s, and each field the
/// router reads has the same values, and names the same media types, among the lane's fields
/// as in hyper's `HeaderMap` of them. Returns what the lane made of the input: `"direct"`, `"partial"` or `"hyper"`.
///
/// # Panics
/// When a property above does not hold.
pub fn request_head(bytes: &[u8]) -> &'static str {
    use super::direct::{HeadRead, read_head};
    use super::request_head::{Field, Headers};
    use hyper::header::{HeaderMap, HeaderName, HeaderValue};
    const LIMIT: usize = 1_000;
    let head = match read_head(bytes, LIMIT) {
        HeadRead::Direct(head) => head,
        HeadRead::Partial => return "partial",
        HeadRead::ForHyper => return "hyper",
    };
    assert!(head.len <= bytes.len() && head.body_len <= LIMIT);
    assert!(head.path.end <= head.len);
    for (name, value) in &head.fields {
        assert!(name.end <= head.len && value.end <= head.len);
    }
    let mut longer = bytes[..head.len].to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
    assert_eq!(read_head(&longer, LIMIT), HeadRead::Direct(head.clone()));
    // The target runs from the path to the space before the version.
    let target_len = bytes[head.path.start..]
        .iter()
        .position(|&byte| byte == b' ')
        .expect("a space follows the target");
    let target = &bytes[head.path.start..head.path.start + target_len];
    let uri = hyper::Uri::try_from(target).expect("hyper reads a target the lane answers");
    assert_eq!(uri.path().as_bytes(), &bytes[head.path.clone()]);
    let mut map = HeaderMap::new();
    for (name, value) in &head.fields {
        map.append(
            HeaderName::from_bytes(&bytes[name.clone()]).expect("a field name the lane read"),
            HeaderValue::from_bytes(&bytes[value.clone()]).expect("a field value the lane read"),
        );
    }
    let raw = Headers::Raw {
        bytes,
        fields: &head.fields,
        places: &head.places,
    };
    let parsed = Headers::Parsed(&map);
    for field in Field::ALL {
        assert!(
            raw.all(field).eq(parsed.all(field)),
            "the values of {field:?}"
        );
        for media in [super::wire::JSON, "text/csv"] {
            assert_eq!(
                super::wire::names_media_type(raw, field, media),
                super::wire::names_media_type(parsed, field, media),
            );
        }
    }
    "direct"
}

/// Which of the server's decoders accepted one input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// As a JSON lookup (`POST /v1/customers/lookup`).
    pub lookup_json: bool,
    /// As a bincode lookup.
    pub lookup_bincode: bool,
    /// As a JSON selection (`POST /v1/select`).
    pub select: bool,
    /// As a JSON simulation (`POST /v1/simulate`).
    pub simulate: bool,
}
