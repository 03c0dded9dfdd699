//! The events of a live customer (README.md, "Live events"): purchases, contacts, responses and
//! column changes, decoded from the JSON of `POST /v1/customers/{id}/events` and `POST
//! /v1/events` with an error naming the event and the field, and encoded for the log with
//! bincode. Decoding is linear in the body; every text and count is capped (`limits`).

use std::borrow::Cow;

use bincode::{Decode, Encode};
use serde::Deserialize;

use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_EVENT_VALUE, MAX_EVENTS_PER_REQUEST};
use crate::rfm::date::parse_moment;

/// One event as it is applied and logged. Times are microseconds since 1970-01-01 UTC.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Event {
    /// A purchase of `amount` at `time`.
    Purchase {
        /// What the customer spent, finite and >= 0.
        amount: f64,
        /// When.
        time: i64,
    },
    /// A marketing contact.
    Contact {
        /// The channel (email, phone, mail...).
        channel: String,
        /// The campaign, empty when none.
        campaign: String,
        /// The offer, empty when none.
        offer: String,
        /// When.
        time: i64,
    },
    /// The customer's response to a campaign's offer.
    Response {
        /// The campaign.
        campaign: String,
        /// The offer, empty when none.
        offer: String,
        /// What the response was worth (0 when not given).
        value: f64,
        /// When.
        time: i64,
    },
    /// A new value for one of the store's columns.
    Set {
        /// The column.
        column: String,
        /// The value: a number for a numeric column, text for a text column.
        value: SetValue,
    },
}

/// The value of a `set` event.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum SetValue {
    /// For a numeric column.
    Number(f64),
    /// For a text column.
    Text(String),
}

impl Event {
    /// The event's `type` in the JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Purchase { .. } => "purchase",
            Event::Contact { .. } => "contact",
            Event::Response { .. } => "response",
            Event::Set { .. } => "set",
        }
    }

    /// The length in bytes of the longest text the event carries (0 for none): at most
    /// [`MAX_EVENT_TEXT_BYTES`] for every event the server accepts, so a longer one read from
    /// a file is corrupt.
    pub fn longest_text(&self) -> usize {
        match self {
            Event::Purchase { .. } => 0,
            Event::Contact {
                channel,
                campaign,
                offer,
                ..
            } => channel.len().max(campaign.len()).max(offer.len()),
            Event::Response {
                campaign, offer, ..
            } => campaign.len().max(offer.len()),
            Event::Set { column, value } => column.len().max(match value {
                SetValue::Number(_) => 0,
                SetValue::Text(text) => text.len(),
            }),
        }
    }
}

/// An event for one customer.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct CustomerEvent {
    /// The customer.
    pub customer_id: u64,
    /// What happened.
    pub event: Event,
}

/// Why a body of events was refused: the event's index and field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// The message, naming the event (`events[3]`) and the field.
    pub message: String,
}

fn error(message: String) -> EventError {
    EventError { message }
}

/// The body as sent; texts borrow from it where they hold no escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<'a> {
    #[serde(borrow)]
    events: Vec<RawEvent<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    customer_id: Option<u64>,
    amount: Option<f64>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    channel: Option<String>,
    campaign: Option<String>,
    offer: Option<String>,
    column: Option<String>,
    value: Option<serde_json::Value>,
}

/// Decodes `{"events": [...]}`. `customer` is the path's id for the per-customer form (an
/// event may then omit `customer_id`, or must repeat the same one); `None` for the batch form,
/// where every event names its customer. `now` stamps the events that give no `time`.
pub fn decode(
    bytes: &[u8],
    customer: Option<u64>,
    now: i64,
) -> Result<Vec<CustomerEvent>, EventError> {
    let body: Body = serde_json::from_slice(bytes)
        .map_err(|e| error(format!("the body is not an events document: {e}")))?;
    if body.events.is_empty() {
        return Err(error("`events` is empty: give at least one event".into()));
    }
    if body.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(error(format!(
            "{} events: at most {MAX_EVENTS_PER_REQUEST} per request",
            body.events.len()
        )));
    }
    body.events
        .into_iter()
        .enumerate()
        .map(|(index, raw)| convert(index, raw, customer, now))
        .collect()
}

fn convert(
    index: usize,
    raw: RawEvent<'_>,
    customer: Option<u64>,
    now: i64,
) -> Result<CustomerEvent, EventError> {
    let at = |field: &str, why: &str| error(format!("events[{index}].{field}: {why}"));
    let customer_id = match (customer, raw.customer_id) {
        (Some(path), Some(own)) if path != own => {
            return Err(at(
                "customer_id",
                &format!("{own} differs from the customer {path} of the path"),
            ));
        }
        (Some(path), _) => path,
        (None, Some(own)) => own,
        (None, None) => return Err(at("customer_id", "required in a batch of events")),
    };
    let text = |field: &str, value: Option<String>| -> Result<Option<String>, EventError> {
        match value {
            Some(text) if text.len() > MAX_EVENT_TEXT_BYTES => Err(at(
                field,
                &format!("{} bytes: at most {MAX_EVENT_TEXT_BYTES}", text.len()),
            )),
            other => Ok(other),
        }
    };
    let required = |field: &str, value: Option<String>| {
        text(field, value)?.ok_or_else(|| at(field, &format!("required for a {}", raw.kind)))
    };
    let time = match &raw.time {
        None => now,
        Some(text) => {
            parse_moment(text.as_bytes())
                .map_err(|why| at("time", &format!("`{}`: {why}", crate::error::quote(text))))?
                .micros
        }
    };
    let amount = |field: &str, value: Option<f64>, non_negative: bool| match value {
        Some(v) if !v.is_finite() || v.abs() > MAX_EVENT_VALUE => Err(at(
            field,
            &format!("{v}: a finite number of magnitude at most {MAX_EVENT_VALUE:e}"),
        )),
        Some(v) if non_negative && v < 0.0 => Err(at(field, &format!("{v} is negative"))),
        other => Ok(other),
    };
    let unexpected = |fields: &[(&str, bool)]| -> Result<(), EventError> {
        match fields.iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(at(field, &format!("not a field of a {} event", raw.kind))),
            None => Ok(()),
        }
    };
    let event = match &*raw.kind {
        "purchase" => {
            unexpected(&[
                ("channel", raw.channel.is_some()),
                ("campaign", raw.campaign.is_some()),
                ("offer", raw.offer.is_some()),
                ("column", raw.column.is_some()),
                ("value", raw.value.is_some()),
            ])?;
            Event::Purchase {
                amount: amount("amount", raw.amount, true)?
                    .ok_or_else(|| at("amount", "required for a purchase"))?,
                time,
            }
        }
        "contact" => {
            unexpected(&[
                ("amount", raw.amount.is_some()),
                ("column", raw.column.is_some()),
                ("value", raw.value.is_some()),
            ])?;
            Event::Contact {
                channel: required("channel", raw.channel)?,
                campaign: text("campaign", raw.campaign)?.unwrap_or_default(),
                offer: text("offer", raw.offer)?.unwrap_or_default(),
                time,
            }
        }
        "response" => {
            unexpected(&[
                ("amount", raw.amount.is_some()),
                ("channel", raw.channel.is_some()),
                ("column", raw.column.is_some()),
            ])?;
            let value = match raw.value {
                None => None,
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                Some(_) => return Err(at("value", "must be a number")),
            };
            Event::Response {
                campaign: required("campaign", raw.campaign)?,
                offer: text("offer", raw.offer)?.unwrap_or_default(),
                value: amount("value", value, false)?.unwrap_or(0.0),
                time,
            }
        }
        "set" => {
            unexpected(&[
                ("amount", raw.amount.is_some()),
                ("time", raw.time.is_some()),
                ("channel", raw.channel.is_some()),
                ("campaign", raw.campaign.is_some()),
                ("offer", raw.offer.is_some()),
            ])?;
            let column = required("column", raw.column)?;
            let value = match raw.value {
                Some(serde_json::Value::Number(n)) => SetValue::Number(
                    amount("value", n.as_f64(), false)?.expect("a number was given"),
                ),
                Some(serde_json::Value::String(s)) => {
                    SetValue::Text(text("value", Some(s))?.expect("a text was given"))
                }
                Some(_) => return Err(at("value", "must be a number or a text")),
                None => return Err(at("value", "required for a set")),
            };
            Event::Set { column, value }
        }
        other => {
            return Err(at(
                "type",
                &format!(
                    "`{}` is not an event type: purchase, contact, response or set",
                    crate::error::quote(other)
                ),
            ));
        }
    };
    Ok(CustomerEvent { customer_id, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<Event, EventError> {
        decode(json.as_bytes(), Some(7), 99).map(|mut events| events.remove(0).event)
    }

    #[test]
    fn every_type_decodes_and_time_defaults_to_now() {
        let events = decode(
            br#"{"events":[{"type":"purchase","amount":42.5,"time":"2026-11-30T10:00:00Z"},
                {"type":"contact","channel":"email","campaign":"spring","offer":"coupon"},
                {"type":"response","campaign":"spring","value":30},
                {"type":"set","column":"segment","value":"gold"}]}"#,
            Some(7),
            99,
        )
        .unwrap();
        assert_eq!(events.len(), 4);
        assert!(events.iter().all(|e| e.customer_id == 7));
        assert!(
            matches!(events[0].event, Event::Purchase { amount, time } if amount == 42.5 && time > 0 && time != 99)
        );
        assert!(
            matches!(&events[1].event, Event::Contact { time: 99, offer, .. } if offer == "coupon")
        );
        assert!(
            matches!(&events[2].event, Event::Response { value, offer, .. } if *value == 30.0 && offer.is_empty())
        );
        assert_eq!(
            events[3].event,
            Event::Set {
                column: "segment".into(),
                value: SetValue::Text("gold".into())
            }
        );
    }

    #[test]
    fn errors_name_the_event_and_the_field() {
        let cases = [
            (r#"{"events":[{"type":"purchase"}]}"#, "events[0].amount"),
            (
                r#"{"events":[{"type":"purchase","amount":-1}]}"#,
                "negative",
            ),
            (
                r#"{"events":[{"type":"set","column":"margin","value":[1]}]}"#,
                "events[0].value",
            ),
            (r#"{"events":[{"type":"gift"}]}"#, "events[0].type"),
            (r#"{"events":[{"type":"contact"}]}"#, "events[0].channel"),
            (
                r#"{"events":[{"type":"purchase","amount":1,"time":"yesterday"}]}"#,
                "events[0].time",
            ),
            (
                r#"{"events":[{"type":"purchase","amount":1,"column":"x"}]}"#,
                "events[0].column",
            ),
            (
                r#"{"events":[{"type":"purchase","amount":1,"customer_id":8}]}"#,
                "differs",
            ),
            (r#"{"events":[]}"#, "empty"),
            (
                r#"{"events":[{"type":"purchase","amount":1,"colour":1}]}"#,
                "colour",
            ),
            (
                r#"{"events":[{"type":"purchase","amount":1e300}]}"#,
                "magnitude",
            ),
        ];
        for (json, expected) in cases {
            let message = one(json).unwrap_err().message;
            assert!(message.contains(expected), "{json}: {message}");
        }
        let message = decode(br#"{"events":[{"type":"purchase","amount":1}]}"#, None, 0)
            .unwrap_err()
            .message;
        assert!(message.contains("events[0].customer_id"), "{message}");
    }
}
