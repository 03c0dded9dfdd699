//! The events of a live customer (README.md, "Live events"): purchases, contacts, responses and
//! column changes, decoded from the JSON of `POST /v1/customers/{id}/events` and `POST
//! /v1/events` with an error naming the event and the field, and encoded for the log with
//! bincode. Decoding is linear in the body; every text and count is capped (`limits`).

use std::borrow::Cow;

use bincode::{Decode, Encode};
use serde::Deserialize;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::limits::{MAX_EVENT_TEXT_BYTES, MAX_EVENT_VALUE, MAX_EVENTS_PER_REQUEST};
use crate::rfm::date::{MOMENT_MICROS, parse_moment};
use crate::rfm::fast::{self, LastDate};

pub(in crate::live) mod compact;
mod plain;

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

    /// Why no request could have given this event, `None` when one could: a text longer
    /// than [`MAX_EVENT_TEXT_BYTES`], a number not finite or of magnitude over
    /// [`MAX_EVENT_VALUE`], a negative purchase, a time outside the years 0001 to 9999. An
    /// event read from a file (a log record, a checkpoint) that breaks one is corrupt, however
    /// good its checksum: what the server applies keeps every CRV finite.
    pub fn outside_limits(&self) -> Option<String> {
        let text = |text: &str| {
            (text.len() > MAX_EVENT_TEXT_BYTES).then(|| {
                format!(
                    "a text of {} bytes, more than {MAX_EVENT_TEXT_BYTES}",
                    text.len()
                )
            })
        };
        let number = |number: f64| {
            (!number.is_finite() || number.abs() > MAX_EVENT_VALUE).then(|| {
                format!(
                    "the number {}, not finite of magnitude at most {MAX_EVENT_VALUE:e}",
                    crate::error::number(number)
                )
            })
        };
        let time = |time: i64| {
            (!MOMENT_MICROS.contains(&time))
                .then(|| format!("the time {time} µs since 1970, outside the years 0001 to 9999"))
        };
        match self {
            Event::Purchase { amount, .. } if *amount < 0.0 => {
                Some(format!("a purchase of {amount}, negative"))
            }
            Event::Purchase { amount, time: at } => number(*amount).or_else(|| time(*at)),
            Event::Contact {
                channel,
                campaign,
                offer,
                time: at,
            } => text(channel)
                .or_else(|| text(campaign))
                .or_else(|| text(offer))
                .or_else(|| time(*at)),
            Event::Response {
                campaign,
                offer,
                value,
                time: at,
            } => text(campaign)
                .or_else(|| text(offer))
                .or_else(|| number(*value))
                .or_else(|| time(*at)),
            Event::Set { column, value } => text(column).or_else(|| match value {
                SetValue::Number(value) => number(*value),
                SetValue::Text(value) => text(value),
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

/// One event as sent; texts borrow from the body where they hold no escapes.
#[derive(Default)]
struct RawEvent<'a> {
    kind: Cow<'a, str>,
    customer_id: Option<u64>,
    amount: Option<f64>,
    time: Option<Cow<'a, str>>,
    channel: Option<Cow<'a, str>>,
    campaign: Option<Cow<'a, str>>,
    offer: Option<Cow<'a, str>>,
    column: Option<Cow<'a, str>>,
    value: Option<RawValue<'a>>,
}

/// The fields of an event.
#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier, rename_all = "snake_case")]
enum EventField {
    #[serde(rename = "type")]
    Kind,
    CustomerId,
    Amount,
    Time,
    Channel,
    Campaign,
    Offer,
    Column,
    Value,
}

/// An event's `value` as sent: [`convert`] says which kinds its event takes.
enum RawValue<'a> {
    Number(f64),
    Text(Cow<'a, str>),
    /// `true`, `false`, an array or an object (skipped).
    Other,
}

/// A text of the body, borrowed where it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for RawValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = RawValue<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a text")
            }

            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawValue::Number(v))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(RawValue::Number(v as f64))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawValue::Number(v as f64))
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(RawValue::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(RawValue::Text(Cow::Owned(text.to_owned())))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawValue::Other)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawValue::Other)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawValue::Other)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    /// Each field read straight into its place (`null` as absent); an unknown or repeated
    /// field, or a missing `type`, is refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = RawEvent<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event: an object with a `type`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut raw, mut seen, mut kind) = (RawEvent::default(), 0u16, None);
                let text = |text: Option<Text<'de>>| text.map(|Text(text)| text);
                while let Some(field) = map.next_key::<EventField>()? {
                    let bit = 1 << field as u16;
                    if seen & bit != 0 {
                        return Err(A::Error::duplicate_field(FIELDS[field as usize]));
                    }
                    seen |= bit;
                    match field {
                        EventField::Kind => kind = Some(map.next_value::<Text>()?.0),
                        EventField::CustomerId => raw.customer_id = map.next_value()?,
                        EventField::Amount => raw.amount = map.next_value()?,
                        EventField::Time => raw.time = text(map.next_value()?),
                        EventField::Channel => raw.channel = text(map.next_value()?),
                        EventField::Campaign => raw.campaign = text(map.next_value()?),
                        EventField::Offer => raw.offer = text(map.next_value()?),
                        EventField::Column => raw.column = text(map.next_value()?),
                        EventField::Value => raw.value = map.next_value()?,
                    }
                }
                raw.kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
                Ok(raw)
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

/// The names of [`EventField`]'s fields, in its order.
const FIELDS: [&str; 9] = [
    "type",
    "customer_id",
    "amount",
    "time",
    "channel",
    "campaign",
    "offer",
    "column",
    "value",
];

/// The body's one field.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum BodyField {
    Events,
}

/// Decodes `{"events": [...]}`. `customer` is the path's id for the per-customer form (an
/// event may then omit `customer_id`, or must repeat the same one); `None` for the batch form,
/// where every event names its customer. `now` stamps the events that give no `time`: read
/// once, by the first of them (a body whose events all carry their time reads no clock).
///
/// Each event is checked as soon as it is read, into the answer (no array of raw events in
/// between); the first wrong event, or the one past [`MAX_EVENTS_PER_REQUEST`], stops the
/// decoding. A body in the plain form clients write (no escapes, no `null`, numbers without an
/// exponent) is read by [`plain::decode`] without serde, to the same events; any other body, and
/// every refused one, by serde, whose errors name the event and the field.
pub fn decode(
    bytes: &[u8],
    customer: Option<u64>,
    now: impl FnOnce() -> i64,
) -> Result<Vec<CustomerEvent>, EventError> {
    decode_body(bytes, customer, now, true)
}

/// [`decode`] by serde alone, the plain reader skipped: what the plain reader must agree with
/// wherever it reads a body (its tests and the `event_json` fuzz target check it; the `events`
/// bench measures both).
#[cfg(any(test, feature = "fuzzing"))]
pub fn decode_by_serde(
    bytes: &[u8],
    customer: Option<u64>,
    now: impl FnOnce() -> i64,
) -> Result<Vec<CustomerEvent>, EventError> {
    decode_body(bytes, customer, now, false)
}

/// `plain_first`: whether [`plain::decode`] is tried before serde.
fn decode_body(
    bytes: &[u8],
    customer: Option<u64>,
    now: impl FnOnce() -> i64,
    plain_first: bool,
) -> Result<Vec<CustomerEvent>, EventError> {
    let text = body_text(bytes)?;
    let (mut clock, mut stamp) = (Some(now), None);
    let mut now = || *stamp.get_or_insert_with(|| clock.take().map_or(0, |now| now()));
    if plain_first && let Some(events) = plain::decode(text, customer, &mut now) {
        return Ok(events);
    }
    let mut refused = None;
    let body = Body {
        events: EventsSeed {
            customer,
            now: &mut now,
            capacity: capacity_for(text.len()),
            refused: &mut refused,
            last_date: LastDate::default(),
        },
    };
    let mut json = serde_json::Deserializer::from_str(text);
    let decoded = body.deserialize(&mut json).and_then(|events| {
        json.end()?;
        Ok(events)
    });
    match decoded {
        Ok(events) if events.is_empty() => {
            Err(error("`events` is empty: give at least one event".into()))
        }
        Ok(events) => Ok(events),
        Err(e) => {
            Err(refused
                .unwrap_or_else(|| error(format!("the body is not an events document: {e}"))))
        }
    }
}

/// The room to reserve for the events of a body of `len` bytes: a purchase takes about 90
/// bytes of JSON, the shortest event 30.
fn capacity_for(len: usize) -> usize {
    (len / 32).min(MAX_EVENTS_PER_REQUEST)
}

/// `bytes` as text, checked once: serde_json then borrows each string of the body without
/// checking its UTF-8 again (one `from_utf8` per key and text cost a tenth of the decoding).
fn body_text(bytes: &[u8]) -> Result<&str, EventError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line_start = valid
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        error(format!(
            "the body is not an events document: invalid UTF-8 at line {} column {}",
            valid.iter().filter(|&&b| b == b'\n').count() + 1,
            valid.len() - line_start + 1
        ))
    })
}

/// The body `{"events": [...]}`, decoded by `events`.
struct Body<'r> {
    events: EventsSeed<'r>,
}

impl<'de> DeserializeSeed<'de> for Body<'_> {
    type Value = Vec<CustomerEvent>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = Vec<CustomerEvent>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with a field `events`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(BodyField::Events) = map.next_key()? else {
            return Err(A::Error::missing_field("events"));
        };
        let events = map.next_value_seed(self.events)?;
        match map.next_key::<BodyField>()? {
            Some(BodyField::Events) => Err(A::Error::duplicate_field("events")),
            None => Ok(events),
        }
    }
}

/// The array of events: each converted ([`convert`]) as it is read; the reason a conversion
/// failed is left in `refused`.
struct EventsSeed<'r> {
    customer: Option<u64>,
    now: &'r mut dyn FnMut() -> i64,
    capacity: usize,
    refused: &'r mut Option<EventError>,
    /// The date of the last `time` read on the fast path: a body's events mostly share it.
    last_date: LastDate,
}

impl<'de> DeserializeSeed<'de> for EventsSeed<'_> {
    type Value = Vec<CustomerEvent>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_> {
    type Value = Vec<CustomerEvent>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(self.capacity);
        while let Some(raw) = seq.next_element::<RawEvent>()? {
            let converted = if events.len() == MAX_EVENTS_PER_REQUEST {
                Err(error(format!(
                    "more than {MAX_EVENTS_PER_REQUEST} events: at most \
                     {MAX_EVENTS_PER_REQUEST} per request"
                )))
            } else {
                convert(
                    events.len(),
                    raw,
                    self.customer,
                    &mut *self.now,
                    &mut self.last_date,
                )
            };
            match converted {
                Ok(event) => events.push(event),
                Err(why) => {
                    let message = why.message.clone();
                    *self.refused = Some(why);
                    return Err(A::Error::custom(message));
                }
            }
        }
        Ok(events)
    }
}

fn convert(
    index: usize,
    raw: RawEvent<'_>,
    customer: Option<u64>,
    now: &mut dyn FnMut() -> i64,
    last_date: &mut LastDate,
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
    let text = |field: &str, value: Option<Cow<str>>| -> Result<Option<String>, EventError> {
        match value {
            Some(text) if text.len() > MAX_EVENT_TEXT_BYTES => Err(at(
                field,
                &format!("{} bytes: at most {MAX_EVENT_TEXT_BYTES}", text.len()),
            )),
            other => Ok(other.map(Cow::into_owned)),
        }
    };
    let required = |field: &str, value: Option<Cow<str>>| {
        text(field, value)?.ok_or_else(|| at(field, &format!("required for a {}", raw.kind)))
    };
    // The common `yyyy-mm-ddThh:mm:ssZ` on the fast path of purchase logs (the same value, bit
    // for bit; ~250 instructions an event in the general parser, callgrind), else the
    // general parser, which says what is wrong.
    let time = match &raw.time {
        None => now(),
        Some(text) => match fast::moment(text.as_bytes(), last_date) {
            Some(moment) => moment.micros,
            None => {
                parse_moment(text.as_bytes())
                    .map_err(|why| at("time", &format!("{}: {why}", crate::error::quote(text))))?
                    .micros
            }
        },
    };
    let amount = |field: &str, value: Option<f64>, non_negative: bool| match value {
        Some(v) if !v.is_finite() || v.abs() > MAX_EVENT_VALUE => Err(at(
            field,
            &format!(
                "{}: a finite number of magnitude at most {MAX_EVENT_VALUE:e}",
                crate::error::number(v)
            ),
        )),
        Some(v) if non_negative && v < 0.0 => Err(at(
            field,
            &format!("{} is negative", crate::error::number(v)),
        )),
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
                Some(RawValue::Number(n)) => Some(n),
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
                Some(RawValue::Number(n)) => {
                    SetValue::Number(amount("value", Some(n), false)?.expect("a number was given"))
                }
                Some(RawValue::Text(s)) => {
                    SetValue::Text(text("value", Some(s))?.expect("a text was given"))
                }
                Some(RawValue::Other) => return Err(at("value", "must be a number or a text")),
                None => return Err(at("value", "required for a set")),
            };
            Event::Set { column, value }
        }
        other => {
            return Err(at(
                "type",
                &format!(
                    "{} is not an event type: purchase, contact, response or set",
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
        decode(json.as_bytes(), Some(7), || 99).map(|mut events| events.remove(0).event)
    }

    #[test]
    fn the_extremes_a_request_may_give_are_within_the_limits_a_file_is_held_to() {
        let long = "x".repeat(MAX_EVENT_TEXT_BYTES);
        let body = format!(
            r#"{{"events":[
            {{"type":"purchase","amount":1e15,"time":"0001-01-01T00:00:00+14:00"}},
            {{"type":"purchase","amount":-0.0,"time":"9999-12-31T23:59:59.999999-14:00"}},
            {{"type":"contact","channel":"{long}","campaign":"{long}","offer":"{long}"}},
            {{"type":"response","campaign":"{long}","value":-1e15,"time":"2026-12-06"}},
            {{"type":"set","column":"segment","value":"{long}"}}]}}"#
        );
        let events = decode(body.as_bytes(), Some(1), || 5).unwrap();
        assert_eq!(events.len(), 5);
        for event in &events {
            assert_eq!(event.event.outside_limits(), None, "{event:?}");
        }
        // One step past each is refused, by the request's reader and by a file's.
        let past = [
            (
                r#"{"type":"purchase","amount":1.000000000000001e15}"#,
                "1e15",
            ),
            (r#"{"type":"purchase","amount":-0.01}"#, "negative"),
        ];
        for (event, why) in past {
            let body = format!(r#"{{"events":[{event}]}}"#);
            let message = decode(body.as_bytes(), Some(1), || 5).unwrap_err().message;
            assert!(message.contains(why), "{message}");
        }
        for amount in [1.000000000000001e15, -0.01] {
            let event = Event::Purchase { amount, time: 5 };
            assert!(event.outside_limits().is_some(), "{amount}");
        }
        let too_long = Event::Set {
            column: "segment".into(),
            value: SetValue::Text("x".repeat(MAX_EVENT_TEXT_BYTES + 1)),
        };
        assert!(too_long.outside_limits().is_some());
        for time in [
            MOMENT_MICROS.start() - 1,
            MOMENT_MICROS.end() + 1,
            i64::MIN,
            i64::MAX,
        ] {
            let event = Event::Purchase { amount: 1.0, time };
            assert!(
                event
                    .outside_limits()
                    .unwrap()
                    .contains("outside the years")
            );
        }
    }

    #[test]
    fn times_read_on_the_fast_path_are_the_general_parsers() {
        // One body: the fast path's remembered date must not leak into the next event.
        let times = [
            "2026-11-30T10:00:00Z",
            "2026-11-30T10:00:01Z",
            "2026-11-30 23:59:59",
            "2026-12-01t00:00:00z",
            "2026-12-01",
            "2026-12-01T00:00:00+02:00",
            "2026-12-01T00:00:00.250Z",
            "20261201",
            "2024-02-29T12:00:00Z",
        ];
        let events: Vec<String> = times
            .iter()
            .map(|time| format!(r#"{{"type":"purchase","amount":1,"time":"{time}"}}"#))
            .collect();
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let decoded = decode(body.as_bytes(), Some(7), || 0).unwrap();
        for (event, time) in decoded.iter().zip(times) {
            let expected = parse_moment(time.as_bytes()).unwrap().micros;
            assert_eq!(
                event.event,
                Event::Purchase {
                    amount: 1.0,
                    time: expected
                },
                "{time}"
            );
        }
        let refused = r#"{"events":[{"type":"purchase","amount":1,"time":"2026-11-30T10:00:00Z"},
            {"type":"purchase","amount":1,"time":"2026-11-31T10:00:00Z"}]}"#;
        let why = decode(refused.as_bytes(), Some(7), || 0).unwrap_err();
        assert!(
            why.message.starts_with("events[1].time: "),
            "{}",
            why.message
        );
    }

    #[test]
    fn the_clock_is_read_once_and_only_for_events_without_a_time() {
        let reads = std::cell::Cell::new(0);
        let clock = || {
            reads.set(reads.get() + 1);
            5
        };
        let timed = br#"{"events":[{"type":"purchase","amount":1,"time":"2026-11-30T10:00:00Z"}]}"#;
        decode(timed, Some(7), clock).unwrap();
        assert_eq!(reads.get(), 0);
        let untimed =
            br#"{"events":[{"type":"purchase","amount":1},{"type":"purchase","amount":2}]}"#;
        let events = decode(untimed, Some(7), clock).unwrap();
        assert_eq!(reads.get(), 1);
        assert!(
            events
                .iter()
                .all(|e| matches!(e.event, Event::Purchase { time: 5, .. }))
        );
    }

    #[test]
    fn every_type_decodes_and_time_defaults_to_now() {
        let events = decode(
            br#"{"events":[{"type":"purchase","amount":42.5,"time":"2026-11-30T10:00:00Z"},
                {"type":"contact","channel":"email","campaign":"spring","offer":"coupon"},
                {"type":"response","campaign":"spring","value":30},
                {"type":"set","column":"segment","value":"gold"}]}"#,
            Some(7),
            || 99,
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
        // A number out of range is echoed as its sender could have written it, not as its
        // hundreds of digits.
        assert_eq!(
            one(r#"{"events":[{"type":"purchase","amount":1e300}]}"#)
                .unwrap_err()
                .message,
            "events[0].amount: 1e300: a finite number of magnitude at most 1e15"
        );
        // The sender's text is quoted once (in backticks, as every message quotes it).
        assert_eq!(
            one(r#"{"events":[{"type":"gift"}]}"#).unwrap_err().message,
            "events[0].type: `gift` is not an event type: purchase, contact, response or set"
        );
        let message = one(r#"{"events":[{"type":"purchase","amount":1,"time":"soon"}]}"#)
            .unwrap_err()
            .message;
        assert!(
            message.starts_with("events[0].time: `soon`: not an ISO 8601"),
            "{message}"
        );
        let message = decode(
            br#"{"events":[{"type":"purchase","amount":1}]}"#,
            None,
            || 0,
        )
        .unwrap_err()
        .message;
        assert!(message.contains("events[0].customer_id"), "{message}");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_where_it_breaks() {
        let body = b"{\"events\":[\n{\"type\":\"contact\",\"channel\":\"e\xffmail\"}]}";
        let message = decode(body, Some(7), || 0).unwrap_err().message;
        assert_eq!(
            message,
            "the body is not an events document: invalid UTF-8 at line 2 column 31"
        );
    }

    #[test]
    fn the_field_names_of_errors_follow_the_fields_decoded() {
        for (index, name) in FIELDS.iter().enumerate() {
            let field: EventField = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(field as usize, index, "{name}");
        }
    }

    #[test]
    fn the_body_is_one_field_of_at_most_the_cap_of_events() {
        let purchase = r#"{"type":"purchase","amount":1}"#;
        let cases = [
            ("{}".to_string(), "missing field `events`"),
            (r#"{"evnts":[]}"#.to_string(), "unknown field `evnts`"),
            (
                format!(r#"{{"events":[{purchase}],"events":[{purchase}]}}"#),
                "duplicate field `events`",
            ),
            (format!(r#"{{"events":[{purchase}]}} x"#), "trailing"),
            (format!(r#"{{"events":[{purchase}]"#), "EOF"),
            (r#"{"events":{}}"#.to_string(), "an array of events"),
            (r#"[]"#.to_string(), "an object with a field `events`"),
            (
                r#"{"events":[{"type":"purchase","amount":1,"amount":2}]}"#.to_string(),
                "duplicate field `amount`",
            ),
            (
                r#"{"events":[{"amount":1}]}"#.to_string(),
                "missing field `type`",
            ),
            (r#"{"events":[7]}"#.to_string(), "expected an event"),
            (
                r#"{"events":[{"type":"purchase","amount":null}]}"#.to_string(),
                "events[0].amount: required",
            ),
            (
                r#"{"events":[{"type":"set","column":"margin","value":true}]}"#.to_string(),
                "events[0].value: must be a number or a text",
            ),
            (
                r#"{"events":[{"type":"response","campaign":"c","value":{"a":[1]}}]}"#.to_string(),
                "events[0].value: must be a number",
            ),
            (
                r#"{"events":[{"type":"contact","channel":7}]}"#.to_string(),
                "expected a text",
            ),
            // The first wrong event is named, whatever follows it.
            (
                format!(r#"{{"events":[{purchase},{{"type":"gift"}},"#),
                "events[1].type",
            ),
        ];
        for (json, expected) in cases {
            let message = one(&json).unwrap_err().message;
            assert!(message.contains(expected), "{json}: {message}");
        }
        // Texts with escapes are decoded; `null` is an absent field.
        let escaped = one(
            r#"{"events":[{"type":"cont\u0061ct","channel":"e\u006dail","offer":null,
                "campaign":"sp\"ring\""}]}"#,
        )
        .unwrap();
        assert_eq!(
            escaped,
            Event::Contact {
                channel: "email".into(),
                campaign: "sp\"ring\"".into(),
                offer: String::new(),
                time: 99
            }
        );
        let many = |count: usize| format!(r#"{{"events":[{}]}}"#, vec![purchase; count].join(","));
        let most = decode(many(MAX_EVENTS_PER_REQUEST).as_bytes(), Some(7), || 0).unwrap();
        assert_eq!(most.len(), MAX_EVENTS_PER_REQUEST);
        let message = decode(many(MAX_EVENTS_PER_REQUEST + 1).as_bytes(), Some(7), || 0)
            .unwrap_err()
            .message;
        assert!(
            message.contains(&format!("at most {MAX_EVENTS_PER_REQUEST} per request")),
            "{message}"
        );
    }
}
