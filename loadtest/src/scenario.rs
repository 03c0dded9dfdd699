//! The scenarios: what one request of each looks like, and how its answer is checked. A status
//! other than the expected one is always an error; bodies are checked on a sample (they must
//! name the requested ids), except bincode bodies, which are always decoded and counted.

use std::net::SocketAddr;

use bytes::Bytes;
use crv::api::binary::{self, LookupRequest};
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::workload::{Pick, Workload};

/// A load scenario (`--scenario`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /v1/customers/{id}`, ids uniform over the store.
    Uniform,
    /// `GET /v1/customers/{id}`, ids Zipf-popular over a fixed permutation of the store.
    Zipf,
    /// `POST /v1/customers/lookup` with `{"ids": [...]}` of `--batch` ids.
    BatchJson,
    /// `POST /v1/customers/lookup` with a bincode `LookupRequest` of `--batch` ids.
    BatchBincode,
    /// Uniform single lookups plus, on one more connection, a `POST /v1/select` every interval.
    Mixed,
    /// `POST /v1/customers/{id}/events` with one purchase, ids uniform over the store (needs
    /// the server's bearer token).
    Events,
    /// `POST /v1/events` with `--batch` purchases, each naming its customer.
    EventsBatch,
    /// Uniform single lookups plus, on more connections, batches of purchases at a fixed rate
    /// (`--event-rate`): lookups while events stream.
    EventsMixed,
}

impl Scenario {
    /// The name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::Zipf => "zipf",
            Scenario::BatchJson => "batch-json",
            Scenario::BatchBincode => "batch-bincode",
            Scenario::Mixed => "mixed",
            Scenario::Events => "events",
            Scenario::EventsBatch => "events-batch",
            Scenario::EventsMixed => "events-mixed",
        }
    }

    /// Ids (or events) per request: `batch` for the batch scenarios, 1 otherwise.
    pub fn ids_per_request(self, batch: usize) -> usize {
        match self {
            Scenario::BatchJson | Scenario::BatchBincode | Scenario::EventsBatch => batch,
            Scenario::Uniform
            | Scenario::Zipf
            | Scenario::Mixed
            | Scenario::Events
            | Scenario::EventsMixed => 1,
        }
    }

    /// Whether the scenario writes events, and so needs the server's bearer token.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Scenario::Events | Scenario::EventsBatch | Scenario::EventsMixed
        )
    }

    /// The next request of this scenario's closed-loop connections to the server named by
    /// `headers` ([`Headers::new`]), with what its answer must say.
    pub fn exchange(
        self,
        headers: &Headers,
        workload: &Workload,
        rng: &mut fastrand::Rng,
        batch: usize,
    ) -> Exchange {
        let host = &headers.host;
        match self {
            Scenario::Events => {
                let pick = workload.pick(rng);
                events(headers, Some(pick), &[pick], rng)
            }
            Scenario::EventsBatch => {
                let picks: Vec<Pick> = (0..batch).map(|_| workload.pick(rng)).collect();
                events(headers, None, &picks, rng)
            }
            Scenario::Uniform | Scenario::Zipf | Scenario::Mixed | Scenario::EventsMixed => {
                let pick = workload.pick(rng);
                Exchange {
                    request: request(
                        host,
                        Method::GET,
                        &format!("/v1/customers/{}", pick.id),
                        None,
                        Bytes::new(),
                    ),
                    expected: Expected::Customer(pick),
                }
            }
            Scenario::BatchJson | Scenario::BatchBincode => {
                let picks: Vec<Pick> = (0..batch).map(|_| workload.pick(rng)).collect();
                let (media_type, body, encoding) = if self == Scenario::BatchJson {
                    ("application/json", json_ids(&picks), Encoding::Json)
                } else {
                    let ids = picks.iter().map(|pick| pick.id).collect();
                    let body = binary::encode(&LookupRequest { ids });
                    (binary::MEDIA_TYPE, Bytes::from(body), Encoding::Bincode)
                };
                Exchange {
                    request: request(
                        host,
                        Method::POST,
                        "/v1/customers/lookup",
                        Some(media_type),
                        body,
                    ),
                    expected: Expected::Batch { picks, encoding },
                }
            }
        }
    }
}

/// The headers every request of a connection carries, built once per connection.
#[derive(Debug, Clone)]
pub struct Headers {
    /// `Host`.
    pub host: HeaderValue,
    /// `Authorization: Bearer <token>` of event requests, when a token is given.
    pub authorization: Option<HeaderValue>,
}

impl Headers {
    /// The headers for requests to `target`, events authorised by `token` when given.
    pub fn new(target: SocketAddr, token: Option<&str>) -> crate::Result<Headers> {
        let authorization = token
            .map(|token| HeaderValue::try_from(format!("Bearer {token}")))
            .transpose()
            .map_err(|_| crate::Error::Usage("the token is not a valid header value".into()))?;
        Ok(Headers {
            host: HeaderValue::try_from(target.to_string())
                .expect("a socket address is a valid header value"),
            authorization,
        })
    }
}

/// A time every generated purchase carries (fixed: the figure is the event path, not dates).
const PURCHASE_TIME: &str = "2026-11-30T10:00:00Z";

/// A purchase for each of `picks`: `POST /v1/customers/{id}/events` for `customer`, otherwise
/// `POST /v1/events` with each event naming its customer. Amounts are whole cents. Numbers are
/// written by `itoa`, not `core::fmt`: at a million events a second the generator's core spent
/// a quarter of its time formatting (`perf`, `loadtest/README.md`).
pub fn events(
    headers: &Headers,
    customer: Option<Pick>,
    picks: &[Pick],
    rng: &mut fastrand::Rng,
) -> Exchange {
    let mut digits = itoa::Buffer::new();
    let mut body = Vec::with_capacity(16 + picks.len() * 96);
    body.extend_from_slice(br#"{"events":["#);
    for (index, pick) in picks.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        let cents = rng.u32(100..100_000);
        body.extend_from_slice(br#"{"type":"purchase","#);
        if customer.is_none() {
            body.extend_from_slice(br#""customer_id":"#);
            body.extend_from_slice(digits.format(pick.id).as_bytes());
            body.push(b',');
        }
        body.extend_from_slice(br#""amount":"#);
        body.extend_from_slice(digits.format(cents / 100).as_bytes());
        let hundredths = (cents % 100) as u8;
        body.extend_from_slice(&[b'.', b'0' + hundredths / 10, b'0' + hundredths % 10]);
        body.extend_from_slice(br#","time":""#);
        body.extend_from_slice(PURCHASE_TIME.as_bytes());
        body.extend_from_slice(br#""}"#);
    }
    body.extend_from_slice(b"]}");
    let path = match customer {
        Some(pick) => format!("/v1/customers/{}/events", pick.id),
        None => "/v1/events".to_string(),
    };
    let mut request = request(
        &headers.host,
        Method::POST,
        &path,
        Some("application/json"),
        Bytes::from(body),
    );
    if let Some(authorization) = &headers.authorization {
        request
            .headers_mut()
            .insert(AUTHORIZATION, authorization.clone());
    }
    Exchange {
        request,
        expected: Expected::Events {
            customer: customer.map(|pick| pick.id),
            count: picks.len(),
        },
    }
}

/// `{"ids":[...]}` written straight into the body: the batch scenarios send tens of thousands
/// of these a second, and a `serde_json::Value` per id would cost the generator's core.
fn json_ids(picks: &[Pick]) -> Bytes {
    let mut digits = itoa::Buffer::new();
    let mut body = Vec::with_capacity(10 + picks.len() * 21);
    body.extend_from_slice(br#"{"ids":["#);
    for (index, pick) in picks.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(digits.format(pick.id).as_bytes());
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// `POST /v1/select` for `budget` (in the cost column's units), answering at most `max_ids`
/// target ids so that the response stays small and the figure is the selection's own.
pub fn selection(headers: &Headers, budget: f64, max_ids: usize) -> Exchange {
    let body = json!({ "budget": budget, "max_ids": max_ids }).to_string();
    Exchange {
        request: request(
            &headers.host,
            Method::POST,
            "/v1/select",
            Some("application/json"),
            Bytes::from(body),
        ),
        expected: Expected::Selection,
    }
}

fn request(
    host: &HeaderValue,
    method: Method,
    path: &str,
    media_type: Option<&'static str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host.clone());
    if let Some(media_type) = media_type {
        builder = builder.header(CONTENT_TYPE, media_type);
    }
    builder
        .body(Full::new(body))
        .expect("a fixed method, an ASCII path and valid headers make a valid request")
}

/// One request and what its answer must say.
#[derive(Debug)]
pub struct Exchange {
    /// The request to send.
    pub request: Request<Full<Bytes>>,
    /// What the answer must say.
    pub expected: Expected,
}

/// How a batch travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`.
    Json,
    /// `application/x-bincode` ([`crv::api::binary`]).
    Bincode,
}

/// What a correct answer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// One customer: 200 naming it when present, 404 for a deliberate miss.
    Customer(Pick),
    /// A batch: 200 with one entry per pick, in order, found exactly when present.
    Batch {
        /// The requested ids in request order.
        picks: Vec<Pick>,
        /// The body's encoding, both ways.
        encoding: Encoding,
    },
    /// A selection: 200 with a summary naming how many customers were selected.
    Selection,
    /// Events: 200 with `accepted` = `count` (and `customer_id` for one customer's events).
    Events {
        /// The customer of the path, for one customer's events.
        customer: Option<u64>,
        /// Events sent.
        count: usize,
    },
}

impl Expected {
    /// Customer ids the request asks for (0 for a selection).
    pub fn ids(&self) -> usize {
        match self {
            Expected::Customer(_) => 1,
            Expected::Batch { picks, .. } => picks.len(),
            Expected::Selection => 0,
            Expected::Events { count, .. } => *count,
        }
    }

    /// Checks an answer: its status always, and its body when `inspect_body` (bincode bodies
    /// are always decoded and counted). The error is the kind of failure, for the report.
    pub fn check(&self, status: StatusCode, body: &[u8], inspect_body: bool) -> Result<(), String> {
        let expected_status = match self {
            Expected::Customer(Pick { present: false, .. }) => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        if status != expected_status {
            return Err(format!(
                "status {} (expected {})",
                status.as_u16(),
                expected_status.as_u16()
            ));
        }
        match self {
            Expected::Batch {
                picks,
                encoding: Encoding::Bincode,
            } => check_bincode_batch(picks, body, inspect_body),
            _ if !inspect_body || status == StatusCode::NOT_FOUND => Ok(()),
            Expected::Customer(pick) => {
                let body = parse_json(body)?;
                if body["customer_id"].as_u64() != Some(pick.id) {
                    Err("body does not name the requested customer".into())
                } else if !json_score_matches(pick, &body) {
                    Err("body's crv, tier, rank or percentile differs from the library's".into())
                } else {
                    Ok(())
                }
            }
            Expected::Batch { picks, .. } => check_json_batch(picks, &parse_json(body)?),
            Expected::Selection => match parse_json(body)?["selected"] {
                Value::Number(_) => Ok(()),
                _ => Err("selection body has no `selected` count".into()),
            },
            Expected::Events { customer, count } => {
                let body = parse_json(body)?;
                if body["accepted"].as_u64() != Some(*count as u64) {
                    Err("events answer's `accepted` differs from the events sent".into())
                } else if body["sequence"].as_u64().is_none() {
                    Err("events answer has no `sequence`".into())
                } else if customer.is_some() && body["customer_id"].as_u64() != *customer {
                    Err("events answer does not name the customer".into())
                } else {
                    Ok(())
                }
            }
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|_| "body is not JSON".to_string())
}

fn check_json_batch(picks: &[Pick], body: &Value) -> Result<(), String> {
    let entries = body["customers"]
        .as_array()
        .ok_or("batch body has no `customers` array")?;
    if entries.len() != picks.len() {
        return Err("batch entry count differs from the ids sent".into());
    }
    let matches = entries.iter().zip(picks).all(|(entry, pick)| {
        entry["customer_id"].as_u64() == Some(pick.id)
            && entry["found"].as_bool() == Some(pick.present)
    });
    if !matches {
        return Err("batch entry names another id or the wrong `found`".into());
    }
    if !entries
        .iter()
        .zip(picks)
        .all(|(entry, pick)| json_score_matches(pick, entry))
    {
        return Err(
            "batch entry's crv, tier, rank or percentile differs from the library's".into(),
        );
    }
    Ok(())
}

/// Whether a JSON customer carries the pick's expected score (always, when none is known). The
/// server writes f32 digits that read back to the same f32.
fn json_score_matches(pick: &Pick, entry: &Value) -> bool {
    let Some(score) = pick.score else {
        return true;
    };
    let f32_of = |name: &str| entry[name].as_f64().map(|v| (v as f32).to_bits());
    f32_of("crv") == Some(score.crv.to_bits())
        && entry["tier"].as_str() == Some(score.tier.as_str())
        && entry["rank"].as_u64() == Some(u64::from(score.rank))
        && f32_of("percentile") == Some(score.percentile.to_bits())
}

fn check_bincode_batch(picks: &[Pick], body: &[u8], inspect_body: bool) -> Result<(), String> {
    let response =
        binary::decode_response(body).map_err(|_| "body is not a bincode LookupResponse")?;
    if response.customers.len() != picks.len() {
        return Err("batch entry count differs from the ids sent".into());
    }
    let matches = !inspect_body
        || response.customers.iter().zip(picks).all(|(entry, pick)| {
            entry.customer_id == pick.id && entry.score.is_some() == pick.present
        });
    if !matches {
        return Err("batch entry names another id or the wrong presence".into());
    }
    let scores_match = !inspect_body
        || response.customers.iter().zip(picks).all(|(entry, pick)| {
            pick.score.is_none_or(|score| {
                entry.score.is_some_and(|served| {
                    served.crv.to_bits() == score.crv.to_bits()
                        && served.tier == score.tier
                        && served.rank == score.rank
                        && served.percentile.to_bits() == score.percentile.to_bits()
                })
            })
        });
    if scores_match {
        Ok(())
    } else {
        Err("batch entry's crv, tier, rank or percentile differs from the library's".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crv::Tier;
    use crv::api::binary::{CustomerScore, LookupEntry, LookupResponse};

    const PRESENT: Pick = Pick {
        id: 42,
        present: true,
        score: None,
    };
    const ABSENT: Pick = Pick {
        id: 7,
        present: false,
        score: None,
    };

    #[test]
    fn single_lookups_expect_200_naming_the_id_or_404_for_a_miss() {
        let present = Expected::Customer(PRESENT);
        let body = br#"{"customer_id":42,"crv":1.5,"tier":"A","rank":1,"percentile":100}"#;
        assert_eq!(present.check(StatusCode::OK, body, true), Ok(()));
        let other = br#"{"customer_id":43}"#;
        assert!(present.check(StatusCode::OK, other, true).is_err());
        assert_eq!(present.check(StatusCode::OK, other, false), Ok(()));
        assert_eq!(
            present.check(StatusCode::NOT_FOUND, b"", false),
            Err("status 404 (expected 200)".into())
        );
        let absent = Expected::Customer(ABSENT);
        assert_eq!(absent.check(StatusCode::NOT_FOUND, b"{}", true), Ok(()));
        assert!(absent.check(StatusCode::OK, body, true).is_err());
    }

    #[test]
    fn known_scores_must_match_in_json_and_bincode_answers() {
        let score = CustomerScore {
            crv: 1.5,
            tier: Tier::A,
            rank: 1,
            percentile: 100.0,
        };
        let scored = Pick {
            score: Some(score),
            ..PRESENT
        };
        let single = Expected::Customer(scored);
        let body = br#"{"customer_id":42,"crv":1.5,"tier":"A","rank":1,"percentile":100}"#;
        assert_eq!(single.check(StatusCode::OK, body, true), Ok(()));
        for wrong in [
            &br#"{"customer_id":42,"crv":1.25,"tier":"A","rank":1,"percentile":100}"#[..],
            br#"{"customer_id":42,"crv":1.5,"tier":"B","rank":1,"percentile":100}"#,
            br#"{"customer_id":42,"crv":1.5,"tier":"A","rank":2,"percentile":100}"#,
            br#"{"customer_id":42,"crv":1.5,"tier":"A","rank":1,"percentile":99}"#,
            br#"{"customer_id":42}"#,
        ] {
            assert!(single.check(StatusCode::OK, wrong, true).is_err());
            let batch = Expected::Batch {
                picks: vec![scored],
                encoding: Encoding::Json,
            };
            let mut entry: Value = serde_json::from_slice(wrong).unwrap();
            entry["found"] = json!(true);
            let body = json!({ "customers": [entry] }).to_string();
            assert!(batch.check(StatusCode::OK, body.as_bytes(), true).is_err());
        }
        let mut entry: Value = serde_json::from_slice(body).unwrap();
        entry["found"] = json!(true);
        let good = json!({ "customers": [entry] }).to_string();
        let batch = Expected::Batch {
            picks: vec![scored],
            encoding: Encoding::Json,
        };
        assert_eq!(batch.check(StatusCode::OK, good.as_bytes(), true), Ok(()));
        let bincode = Expected::Batch {
            picks: vec![scored],
            encoding: Encoding::Bincode,
        };
        let answer = |score: CustomerScore| {
            binary::encode(&LookupResponse {
                customers: vec![LookupEntry {
                    customer_id: 42,
                    score: Some(score),
                }],
            })
        };
        assert_eq!(bincode.check(StatusCode::OK, &answer(score), true), Ok(()));
        let other_rank = CustomerScore { rank: 3, ..score };
        assert!(
            bincode
                .check(StatusCode::OK, &answer(other_rank), true)
                .is_err()
        );
    }

    #[test]
    fn json_batches_must_answer_every_id_in_order() {
        let expected = Expected::Batch {
            picks: vec![PRESENT, ABSENT],
            encoding: Encoding::Json,
        };
        let good =
            br#"{"customers":[{"customer_id":42,"found":true},{"customer_id":7,"found":false}]}"#;
        assert_eq!(expected.check(StatusCode::OK, good, true), Ok(()));
        let short = br#"{"customers":[{"customer_id":42,"found":true}]}"#;
        assert!(expected.check(StatusCode::OK, short, true).is_err());
    }

    #[test]
    fn bincode_batches_are_decoded_and_counted() {
        let picks = vec![PRESENT, ABSENT];
        let expected = Expected::Batch {
            picks,
            encoding: Encoding::Bincode,
        };
        let response = LookupResponse {
            customers: vec![
                LookupEntry {
                    customer_id: 42,
                    score: Some(CustomerScore {
                        crv: 1.0,
                        tier: Tier::A,
                        rank: 1,
                        percentile: 100.0,
                    }),
                },
                LookupEntry {
                    customer_id: 7,
                    score: None,
                },
            ],
        };
        let body = binary::encode(&response);
        assert_eq!(expected.check(StatusCode::OK, &body, true), Ok(()));
        let mut short = response.clone();
        short.customers.pop();
        assert!(
            expected
                .check(StatusCode::OK, &binary::encode(&short), false)
                .is_err()
        );
        assert!(expected.check(StatusCode::OK, b"{}", false).is_err());
    }

    #[test]
    fn json_batch_bodies_are_the_ids_array() {
        let picks = [
            PRESENT,
            ABSENT,
            Pick {
                id: u64::MAX,
                present: false,
                score: None,
            },
        ];
        let body: Value = serde_json::from_slice(&json_ids(&picks)).unwrap();
        assert_eq!(body, json!({"ids": [42, 7, u64::MAX]}));
        assert_eq!(&json_ids(&[])[..], br#"{"ids":[]}"#);
    }

    #[test]
    fn bincode_requests_use_the_binary_protocol() {
        let workload = Workload::new(vec![5, 6, 7], crate::workload::Popularity::Uniform, 0.0, 1)
            .expect("a valid workload");
        let mut rng = fastrand::Rng::with_seed(1);
        let headers = Headers::new("127.0.0.1:8080".parse().unwrap(), None).unwrap();
        let exchange = Scenario::BatchBincode.exchange(&headers, &workload, &mut rng, 3);
        assert_eq!(exchange.request.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(exchange.request.headers()[CONTENT_TYPE], binary::MEDIA_TYPE);
        assert_eq!(exchange.request.uri().path(), "/v1/customers/lookup");
        assert_eq!(exchange.expected.ids(), 3);
    }

    #[test]
    fn event_requests_carry_the_token_and_a_purchase_per_pick() {
        let workload = Workload::new(vec![5, 6, 7], crate::workload::Popularity::Uniform, 0.0, 1)
            .expect("a valid workload");
        let mut rng = fastrand::Rng::with_seed(1);
        let headers = Headers::new("127.0.0.1:8080".parse().unwrap(), Some("s3cret")).unwrap();
        let single = Scenario::Events.exchange(&headers, &workload, &mut rng, 100);
        assert_eq!(single.request.headers()[AUTHORIZATION], "Bearer s3cret");
        let Expected::Events {
            customer: Some(id),
            count: 1,
        } = single.expected
        else {
            panic!("{:?}", single.expected)
        };
        assert_eq!(
            single.request.uri().path(),
            format!("/v1/customers/{id}/events")
        );
        let batch = Scenario::EventsBatch.exchange(&headers, &workload, &mut rng, 4);
        assert_eq!(batch.request.uri().path(), "/v1/events");
        assert_eq!(batch.expected.ids(), 4);
        let body = body_json(batch.request.body().clone());
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 4);
        for event in events {
            assert_eq!(event["type"], "purchase");
            assert!([5, 6, 7].contains(&event["customer_id"].as_u64().unwrap()));
            let cents = event["amount"].as_f64().unwrap() * 100.0;
            assert!((100.0..100_000.0).contains(&cents) && cents.fract().abs() < 1e-6);
            assert_eq!(event["time"], PURCHASE_TIME);
        }
        // Whole cents written with two decimals, as a client would.
        let text = body_text(batch.request.body().clone());
        for amount in text.split(r#""amount":"#).skip(1) {
            let number = &amount[..amount.find(',').unwrap()];
            let (units, hundredths) = number.split_once('.').unwrap();
            assert!(
                units.parse::<u32>().is_ok() && hundredths.len() == 2,
                "{number}"
            );
        }
        let good = br#"{"accepted":4,"sequence":9}"#;
        assert_eq!(batch.expected.check(StatusCode::OK, good, true), Ok(()));
        let short = br#"{"accepted":3,"sequence":9}"#;
        assert!(batch.expected.check(StatusCode::OK, short, true).is_err());
        let other = format!(r#"{{"accepted":1,"sequence":2,"customer_id":{}}}"#, id + 1);
        assert!(
            single
                .expected
                .check(StatusCode::OK, other.as_bytes(), true)
                .is_err()
        );
        assert!(
            batch
                .expected
                .check(StatusCode::UNAUTHORIZED, good, true)
                .is_err()
        );
    }

    /// The JSON of a request body built by [`events`].
    fn body_text(body: Full<Bytes>) -> String {
        use http_body_util::BodyExt;
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(body.collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn body_json(body: Full<Bytes>) -> Value {
        serde_json::from_str(&body_text(body)).unwrap()
    }
}
