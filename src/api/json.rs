//! The JSON of the lookups, written straight into the response bytes (`itoa`, `zmij`): no
//! `serde_json::Value` tree and no allocation but the output. The bytes equal what serde_json
//! wrote for the same answers: keys in sorted order, each f32 exactly as
//! [`crate::campaign::report::f32_json`] gives it.

use super::binary::{CustomerOutlook, CustomerScore, ServedCustomer};
use crate::model::ExternalId;

/// Bytes of output to reserve per customer: enough for the longest entry of a batch.
pub const ENTRY_BYTES: usize = 128;

/// Appends `{"crv","customer_id","percentile","rank","tier"}` of a customer, with
/// `"expected_purchases"` and `"p_alive"` in their sorted places when it has an outlook.
pub fn write_customer(out: &mut Vec<u8>, id: ExternalId<'_>, customer: &ServedCustomer) {
    write_score(out, id, customer, b"");
}

/// Appends `{"customers": [...]}` with one entry per id in order:
/// `{"crv","customer_id","found":true,"percentile","rank","tier"}` for a customer in the store
/// (with its outlook as in [`write_customer`]), `{"customer_id","found":false}` for one that is
/// not.
pub fn write_lookup<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (ExternalId<'a>, Option<ServedCustomer>)>,
) {
    out.extend_from_slice(b"{\"customers\":[");
    for (index, (id, score)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match score {
            Some(score) => write_score(out, id, &score, b",\"found\":true"),
            None => {
                out.extend_from_slice(b"{\"customer_id\":");
                write_id(out, id);
                out.extend_from_slice(b",\"found\":false}");
            }
        }
    }
    out.extend_from_slice(b"]}");
}

/// One customer's object; `found` is spliced in after `customer_id` (and `expected_purchases`),
/// where a sorted map puts it.
fn write_score(out: &mut Vec<u8>, id: ExternalId<'_>, customer: &ServedCustomer, found: &[u8]) {
    let score: &CustomerScore = &customer.score;
    out.extend_from_slice(b"{\"crv\":");
    write_f32(out, score.crv);
    out.extend_from_slice(b",\"customer_id\":");
    write_id(out, id);
    if let Some(CustomerOutlook {
        expected_purchases, ..
    }) = customer.outlook
    {
        out.extend_from_slice(b",\"expected_purchases\":");
        write_f32(out, expected_purchases);
    }
    out.extend_from_slice(found);
    if let Some(CustomerOutlook { p_alive, .. }) = customer.outlook {
        out.extend_from_slice(b",\"p_alive\":");
        write_f32(out, p_alive);
    }
    out.extend_from_slice(b",\"percentile\":");
    write_f32(out, score.percentile);
    out.extend_from_slice(b",\"rank\":");
    write_u64(out, u64::from(score.rank));
    out.extend_from_slice(b",\"tier\":\"");
    out.extend_from_slice(score.tier.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The answer to accepted events, as `serde_json` would write `{"accepted", "crv",
/// "customer_id", "sequence", "tier"}` (the customer's fields only for one customer's events).
pub fn write_events_answer(
    out: &mut Vec<u8>,
    accepted: usize,
    sequence: u64,
    customer: Option<(ExternalId<'_>, f32, crate::Tier)>,
) {
    out.extend_from_slice(b"{\"accepted\":");
    write_u64(out, accepted as u64);
    if let Some((_, crv, _)) = customer {
        out.extend_from_slice(b",\"crv\":");
        write_f32(out, crv);
    }
    if let Some((id, _, _)) = customer {
        out.extend_from_slice(b",\"customer_id\":");
        write_id(out, id);
    }
    out.extend_from_slice(b",\"sequence\":");
    write_u64(out, sequence);
    if let Some((_, _, tier)) = customer {
        out.extend_from_slice(b",\"tier\":\"");
        out.extend_from_slice(tier.as_str().as_bytes());
        out.extend_from_slice(b"\"");
    }
    out.push(b'}');
}

/// A whole-number id as a JSON number, a text id as a JSON string.
fn write_id(out: &mut Vec<u8>, id: ExternalId<'_>) {
    match id {
        ExternalId::Number(id) => write_u64(out, id),
        ExternalId::Text(text) => {
            serde_json::to_writer(&mut *out, text)
                .expect("writing a string into a Vec cannot fail");
        }
    }
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` as [`crate::campaign::report::f32_json`] writes it, without a `serde_json::Value`: the f32's
/// shortest decimal by zmij, in the notation serde_json's f64 formatter gives those digits.
/// `null` when `value` is not finite (JSON has no NaN or infinity; a validated store cannot
/// produce them).
pub fn write_f32(out: &mut Vec<u8>, value: f32) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let mut digits = zmij::Buffer::new();
    let magnitude = value.abs();
    if magnitude == 0.0 || F32_AND_F64_FIXED_NOTATION.contains(&magnitude) {
        out.extend_from_slice(digits.format_finite(value).as_bytes());
    } else {
        let wide = crate::campaign::report::f32_shortest_as_f64(value);
        out.extend_from_slice(digits.format_finite(wide).as_bytes());
    }
}

/// Magnitudes zmij writes in fixed notation both as an f32 (decimal exponents -6 to 12) and as
/// an f64 (-5 to 15), so there the f32's own output is what serde_json writes for it. A value
/// in the range has a shortest decimal in it too (rounding to f32 is monotonic), and that
/// decimal's exponent is what picks the notation. Outside, the digits are re-read as f64 and
/// written by the f64 formatter: `1e13`, not `10000000000000.0`; `1e-6`, not `0.000001`.
const F32_AND_F64_FIXED_NOTATION: std::ops::Range<f32> = 1e-5..1e13;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::campaign::report::f32_json;
    use crate::model::Tier;

    fn written(value: f32) -> String {
        let mut out = Vec::new();
        write_f32(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn events_answers_equal_serde_json_output() {
        let written = |customer| {
            let mut out = Vec::new();
            write_events_answer(&mut out, 3, 1234, customer);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(None),
            json!({"accepted": 3, "sequence": 1234}).to_string()
        );
        for crv in [0.0, -12.5, 1234.567, 3.0e13] {
            let expected = json!({"accepted": 3, "sequence": 1234, "customer_id": 42u64,
                                  "crv": f32_json(crv), "tier": Tier::B.as_str()});
            assert_eq!(
                written(Some((ExternalId::Number(42), crv, Tier::B))),
                expected.to_string()
            );
        }
        let expected = json!({"accepted": 1, "sequence": 7, "customer_id": "C-\"0042",
                              "crv": f32_json(2.5), "tier": Tier::A.as_str()});
        let mut out = Vec::new();
        write_events_answer(
            &mut out,
            1,
            7,
            Some((ExternalId::Text("C-\"0042"), 2.5, Tier::A)),
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected.to_string());
    }

    #[test]
    fn f32_output_equals_report_f32_json_on_many_values() {
        // Every 9973rd bit pattern (about 430,000 values over every exponent, both signs), the
        // extremes, and values typical of CRVs and percentiles.
        let strided = (0..=u32::MAX).step_by(9_973).map(f32::from_bits);
        let special = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            1e-45,
            49.83921,
            0.1,
            100.0,
            1e7,
            1e16,
            1e17,
            123_456_790.0,
            1e-5,
            1e-6,
            1916.2812,
            -1e-45,
            9.999999e-6,
            1.0000001e-5,
            9.999999e12,
            1e13,
            1.0000001e13,
            1e15,
            9.999999e15,
        ];
        let mut compared = 0;
        for value in strided.chain(special).filter(|value| value.is_finite()) {
            assert_eq!(written(value), f32_json(value).to_string(), "{value:e}");
            compared += 1;
        }
        assert!(compared > 400_000);
    }

    #[test]
    fn non_finite_values_are_written_as_null() {
        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(written(value), "null");
            assert_eq!(f32_json(value), Value::Null);
        }
    }

    fn score(crv: f32, tier: Tier, rank: u32, percentile: f32) -> ServedCustomer {
        ServedCustomer {
            score: CustomerScore {
                crv,
                tier,
                rank,
                percentile,
            },
            outlook: None,
        }
    }

    /// The object serde_json wrote before, from a `json!` map.
    fn reference(id: ExternalId<'_>, customer: &ServedCustomer) -> Value {
        let score = &customer.score;
        let mut object = json!({
            "customer_id": id,
            "crv": f32_json(score.crv),
            "tier": score.tier.as_str(),
            "rank": score.rank,
            "percentile": f32_json(score.percentile),
        });
        if let Some(outlook) = customer.outlook {
            object["p_alive"] = f32_json(outlook.p_alive);
            object["expected_purchases"] = f32_json(outlook.expected_purchases);
        }
        object
    }

    fn with_outlook(
        customer: ServedCustomer,
        p_alive: f32,
        expected_purchases: f32,
    ) -> ServedCustomer {
        ServedCustomer {
            outlook: Some(CustomerOutlook {
                p_alive,
                expected_purchases,
            }),
            ..customer
        }
    }

    #[test]
    fn customer_bytes_equal_serde_json_output() {
        for (id, score) in [
            (ExternalId::Number(0), score(49.83921, Tier::A, 1, 100.0)),
            (
                ExternalId::Number(u64::MAX),
                score(-1234.5, Tier::N, u32::MAX, 1e-7),
            ),
            (
                ExternalId::Number(17),
                score(0.0, Tier::C, 3_000, 33.333332),
            ),
            (
                ExternalId::Number(18),
                with_outlook(score(12.5, Tier::A, 2, 99.0), 0.7315, 3.25),
            ),
            (ExternalId::Text("C-0001234"), score(1.0, Tier::B, 9, 50.0)),
            (
                ExternalId::Text("a \"quoted\"\\ id\u{7} é"),
                score(1.0, Tier::B, 9, 50.0),
            ),
        ] {
            let mut out = Vec::new();
            write_customer(&mut out, id, &score);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                reference(id, &score).to_string()
            );
        }
    }

    #[test]
    fn lookup_bytes_equal_serde_json_output() {
        let known = score(7.25, Tier::B, 42, 98.6);
        let modelled = with_outlook(known, 0.25, 1e-3);
        let entries = [
            (ExternalId::Number(5), Some(known)),
            (ExternalId::Text("C-6"), None),
            (ExternalId::Number(5), Some(known)),
            (ExternalId::Number(7), Some(modelled)),
        ];
        let mut out = Vec::new();
        write_lookup(&mut out, entries);
        let mut found = reference(ExternalId::Number(5), &known);
        found["found"] = Value::Bool(true);
        let mut found_modelled = reference(ExternalId::Number(7), &modelled);
        found_modelled["found"] = Value::Bool(true);
        let expected = json!({
            "customers": [found, {"customer_id": "C-6", "found": false}, found, found_modelled],
        });
        assert_eq!(String::from_utf8(out).unwrap(), expected.to_string());

        let mut empty = Vec::new();
        write_lookup(&mut empty, []);
        assert_eq!(empty, br#"{"customers":[]}"#);
    }
}
