//! Bodies of events in their plain form, read without serde: the JSON that clients write, with
//! no escape in a text, no `null`, numbers without an exponent and of at most 15 digits, and
//! only the fields an event has. Each event read goes through the same [`convert`] as serde's,
//! so its checks and values are one definition; anything else in the body, and any event that
//! `convert` refuses, makes [`decode`] give up (`None`), and the body is read again by serde,
//! whose errors name the event and the field.
//!
//! Why a second reader: serde_json took ~2,100 of the ~2,500 instructions a batch event costs
//! to decode (callgrind, `events-batch`: its key and text scans, number parsing and the
//! visitor's calls; benches/README.md, "Events read in their plain form"). Here a body is
//! matched against the few shapes an event can take: keys and types compared eight bytes at a
//! time with a table made at compile time, texts scanned eight bytes at a time.
//!
//! The contract, checked by a property test and the `event_json` fuzz target against serde
//! alone (`decode_by_serde`): wherever this reader gives events, serde gives the same events,
//! bit for bit. A number is its digits as an integer below 2^53 divided by a power of ten up to
//! 10^15 (`rfm::fast::decimal`, the purchase logs' fast path): both exact in an `f64`, one
//! rounding, the value serde_json computes (with or without its `float_roundtrip` feature).

use std::borrow::Cow;

use super::{CustomerEvent, EventField, RawEvent, RawValue, capacity_for, convert};
use crate::limits::MAX_EVENTS_PER_REQUEST;
use crate::rfm::fast::{self, LastDate, MOST_AMOUNT_DIGITS};

/// The most digits of a `customer_id` (u64::MAX has 20; a larger one overflows, refused).
const MOST_ID_DIGITS: u32 = 20;

/// The events of `text` (a body already checked as UTF-8) when it is in the plain form and
/// every event converts; `None` otherwise. `customer` and `now` as in [`super::decode`].
pub(super) fn decode(
    text: &str,
    customer: Option<u64>,
    now: &mut dyn FnMut() -> i64,
) -> Option<Vec<CustomerEvent>> {
    let mut reader = Reader { text, at: 0 };
    reader.expect(b'{')?;
    (reader.string()? == "events").then_some(())?;
    reader.expect(b':')?;
    reader.expect(b'[')?;
    let mut events = Vec::with_capacity(capacity_for(text.len()));
    let mut last_date = LastDate::default();
    loop {
        if events.len() == MAX_EVENTS_PER_REQUEST {
            return None;
        }
        let raw = reader.event()?;
        events.push(convert(events.len(), raw, customer, now, &mut last_date).ok()?);
        match reader.token()? {
            b',' => {}
            b']' => break,
            _ => return None,
        }
    }
    reader.expect(b'}')?;
    reader.skip_whitespace();
    (reader.at == text.len()).then_some(events)
}

/// Where the text that starts `bytes` ends: the offset of its closing `"`; `None` at a `\` or
/// a control character before it, or at the end of the body. Eight bytes at a time (the texts
/// and keys of events are a few to a few dozen bytes): a byte is flagged by the high bit of its
/// lane when it is `"` or `\` (a zero after the XOR) or below 0x20, the classic SWAR tests;
/// they can flag a lane above a true one (a borrow), never below, so the lowest flag is exact.
fn closing_quote(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let below =
        |lanes: u64, bound: u8| lanes.wrapping_sub(ONES * u64::from(bound)) & !lanes & HIGHS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let lanes = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let flags = below(lanes ^ (ONES * u64::from(b'"')), 1)
            | below(lanes ^ (ONES * u64::from(b'\\')), 1)
            | below(lanes, 0x20);
        if flags != 0 {
            let found = at + (flags.trailing_zeros() / 8) as usize;
            return (bytes[found] == b'"').then_some(found);
        }
        at += 8;
    }
    let found = at
        + bytes[at..]
            .iter()
            .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
    (bytes[found] == b'"').then_some(found)
}

/// A text the body may hold, with its closing quote, as two eight-byte words to compare the
/// body against (the bytes past it masked off), and what it stands for.
struct Literal<T> {
    means: T,
    len: usize,
    words: [u64; 2],
    masks: [u64; 2],
}

/// `text"` (at most 15 bytes of text) meaning `means`.
const fn literal<T: Copy>(text: &str, means: T) -> Literal<T> {
    let bytes = text.as_bytes();
    assert!(bytes.len() < 16, "a literal and its quote fit in two words");
    let (mut words, mut masks, mut at) = ([0; 2], [0; 2], 0);
    while at <= bytes.len() {
        let byte = if at == bytes.len() { b'"' } else { bytes[at] };
        words[at / 8] |= (byte as u64) << (8 * (at % 8));
        masks[at / 8] |= 0xff << (8 * (at % 8));
        at += 1;
    }
    Literal {
        means,
        len: bytes.len() + 1,
        words,
        masks,
    }
}

/// The keys of an event, the most frequent first.
const KEYS: [Literal<EventField>; 9] = [
    literal("type", EventField::Kind),
    literal("customer_id", EventField::CustomerId),
    literal("amount", EventField::Amount),
    literal("time", EventField::Time),
    literal("channel", EventField::Channel),
    literal("campaign", EventField::Campaign),
    literal("offer", EventField::Offer),
    literal("column", EventField::Column),
    literal("value", EventField::Value),
];

/// The types of event [`convert`] knows: any other goes to serde, and is refused there.
const KINDS: [Literal<&str>; 4] = [
    literal("purchase", "purchase"),
    literal("contact", "contact"),
    literal("response", "response"),
    literal("set", "set"),
];

/// A position in the body.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, taken.
    fn token(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        loop {
            let byte = *bytes.get(self.at)?;
            self.at += 1;
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
        }
    }

    /// The next byte after whitespace, left in place.
    fn peek_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    /// `byte`, next or after whitespace, taken.
    fn expect(&mut self, byte: u8) -> Option<()> {
        if self.text.as_bytes().get(self.at) == Some(&byte) {
            self.at += 1;
            return Some(());
        }
        (self.token()? == byte).then_some(())
    }

    /// The literal of `table` the body goes on with (after an opening quote), taken.
    fn literal<T: Copy>(&mut self, table: &[Literal<T>]) -> Option<T> {
        let rest = &self.text.as_bytes()[self.at..];
        let mut padded = [0; 16];
        let next = match rest.get(..16) {
            Some(next) => next,
            None => {
                padded[..rest.len()].copy_from_slice(rest);
                &padded
            }
        };
        let word = |at: usize| u64::from_le_bytes(next[at..at + 8].try_into().expect("8 bytes"));
        let (head, tail) = (word(0), word(8));
        let found = table.iter().find(|literal| {
            head & literal.masks[0] == literal.words[0]
                && tail & literal.masks[1] == literal.words[1]
        })?;
        self.at += found.len;
        Some(found.means)
    }

    /// A text without escapes or control characters (which JSON allows only escaped).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = start + closing_quote(&self.text.as_bytes()[start..])?;
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// Digits after the first, appended to `value`; `None` past `most` digits in all or past
    /// `u64::MAX`.
    fn more_digits(&mut self, value: &mut u64, count: &mut u32, most: u32) -> Option<()> {
        while let Some(&digit @ b'0'..=b'9') = self.text.as_bytes().get(self.at) {
            *count += 1;
            if *count > most {
                return None;
            }
            *value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        Some(())
    }

    /// An unsigned integer: `0`, or digits not starting with `0`. What follows it is checked
    /// by the caller (a `,` or a `}`), which refuses a fraction or an exponent.
    fn id(&mut self) -> Option<u64> {
        let mut id = u64::from(self.token()?.wrapping_sub(b'0'));
        match id {
            0 => Some(0),
            1..=9 => {
                self.more_digits(&mut id, &mut 1, MOST_ID_DIGITS)?;
                Some(id)
            }
            _ => None,
        }
    }

    /// `-`? (`0` | digits not starting with `0`) (`.` digits)?, as serde_json computes it.
    fn number(&mut self) -> Option<f64> {
        let mut first = self.token()?;
        let negative = first == b'-';
        if negative {
            first = *self.text.as_bytes().get(self.at)?;
            self.at += 1;
        }
        let mut significand = u64::from(first.wrapping_sub(b'0'));
        let mut digits = 1;
        match significand {
            0 => {}
            1..=9 => self.more_digits(&mut significand, &mut digits, MOST_AMOUNT_DIGITS)?,
            _ => return None,
        }
        let mut decimals = 0;
        if self.text.as_bytes().get(self.at) == Some(&b'.') {
            self.at += 1;
            let before = digits;
            self.more_digits(&mut significand, &mut digits, MOST_AMOUNT_DIGITS)?;
            decimals = digits - before;
            if decimals == 0 {
                return None;
            }
        }
        let value = fast::decimal(significand, decimals as usize);
        Some(if negative { -value } else { value })
    }

    /// `{` fields `}`: each known field once, with a value of its kind, and a `type`.
    fn event(&mut self) -> Option<RawEvent<'a>> {
        self.expect(b'{')?;
        let (mut raw, mut seen, mut kind) = (RawEvent::default(), 0u16, None);
        loop {
            self.expect(b'"')?;
            let field = self.literal(&KEYS)?;
            let bit = 1 << field as u16;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.expect(b':')?;
            let text = |reader: &mut Self| Some(Cow::Borrowed(reader.string()?));
            match field {
                EventField::Kind => {
                    self.expect(b'"')?;
                    kind = Some(Cow::Borrowed(self.literal(&KINDS)?));
                }
                EventField::CustomerId => raw.customer_id = Some(self.id()?),
                EventField::Amount => raw.amount = Some(self.number()?),
                EventField::Time => raw.time = Some(text(self)?),
                EventField::Channel => raw.channel = Some(text(self)?),
                EventField::Campaign => raw.campaign = Some(text(self)?),
                EventField::Offer => raw.offer = Some(text(self)?),
                EventField::Column => raw.column = Some(text(self)?),
                EventField::Value => {
                    raw.value = Some(match self.peek_token()? {
                        b'"' => RawValue::Text(text(self)?),
                        _ => RawValue::Number(self.number()?),
                    })
                }
            }
            match self.token()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        raw.kind = kind?;
        Some(raw)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::decode_by_serde;
    use super::*;

    /// `decode` then serde when it gives up: the server's reading.
    fn read(body: &str, customer: Option<u64>) -> Option<Vec<CustomerEvent>> {
        decode(body, customer, &mut || 5)
    }

    /// Both readers' answers as text, so that `-0.0` and `0.0` differ.
    fn agree(body: &str, customer: Option<u64>) {
        let by_serde = format!("{:?}", decode_by_serde(body.as_bytes(), customer, || 5));
        if let Some(events) = read(body, customer) {
            let plain: Result<_, super::super::EventError> = Ok(events);
            assert_eq!(format!("{plain:?}"), by_serde, "{body}");
        }
        let served = format!(
            "{:?}",
            super::super::decode(body.as_bytes(), customer, || 5)
        );
        assert_eq!(served, by_serde, "{body}");
    }

    #[test]
    fn the_plain_form_of_every_event_is_read_here() {
        let body = r#"{"events":[
            {"type":"purchase","customer_id":18446744073709551,"amount":42.5,"time":"2026-11-30T10:00:00Z"},
            {"customer_id":8,"type":"contact","channel":"email","campaign":"spring","offer":"é"},
            { "type" : "response" , "customer_id" : 0 , "campaign" : "spring", "value" : -0.25 },
            {"type":"set","customer_id":9,"column":"segment","value":"gold"},
            {"type":"set","customer_id":9,"column":"margin","value":0}
        ]}"#;
        let events = read(body, None).expect("a plain body");
        assert_eq!(events.len(), 5);
        agree(body, None);
        let single =
            r#"{"events":[{"type":"purchase","amount":123456789.012345,"time":"2026-11-30"}]}"#;
        assert_eq!(read(single, Some(7)).expect("a plain body").len(), 1);
        agree(single, Some(7));
    }

    #[test]
    fn every_other_form_is_left_to_serde() {
        let others = [
            r#"{"events":[{"type":"purchase","amount":1e2}]}"#,
            r#"{"events":[{"type":"purchase","amount":1234567890123456}]}"#,
            r#"{"events":[{"type":"purchase","amount":01}]}"#,
            r#"{"events":[{"type":"purchase","amount":1.}]}"#,
            r#"{"events":[{"type":"purchase","amount":null}]}"#,
            r#"{"events":[{"type":"purchase","amount":"1"}]}"#,
            r#"{"events":[{"type":"purch\u0061se","amount":1}]}"#,
            r#"{"events":[{"type":"purchase","amount":1,"amount":2}]}"#,
            r#"{"events":[{"type":"purchase","amount":1,"colour":2}]}"#,
            r#"{"events":[{"type":"purchase","amount":1,"customer_id":-1}]}"#,
            r#"{"events":[{"type":"purchase","amount":1,"customer_id":12345678901234567890}]}"#,
            r#"{"events":[{"type":"purchase","amount":1,"customer_id":1.0}]}"#,
            r#"{"events":[{"type":"purchase","amount":-1}]}"#,
            r#"{"events":[{"type":"gift"}]}"#,
            r#"{"events":[{"amount":1}]}"#,
            r#"{"events":[{}]}"#,
            r#"{"events":[]}"#,
            r#"{"events":[{"type":"purchase","amount":1}],"events":[]}"#,
            r#"{"events":[{"type":"purchase","amount":1}]} x"#,
            r#"{"events":[{"type":"purchase","amount":1}]"#,
            r#"{"events":[{"type":"set","column":"margin","value":true}]}"#,
            "{\"events\":[{\"type\":\"contact\",\"channel\":\"e\tmail\"}]}",
        ];
        for body in others {
            assert!(read(body, Some(7)).is_none(), "{body}");
            agree(body, Some(7));
        }
        let purchase = r#"{"type":"purchase","amount":1}"#;
        let many = |count: usize| format!(r#"{{"events":[{}]}}"#, vec![purchase; count].join(","));
        assert!(read(&many(MAX_EVENTS_PER_REQUEST), Some(7)).is_some());
        assert!(read(&many(MAX_EVENTS_PER_REQUEST + 1), Some(7)).is_none());
    }

    #[test]
    fn keys_are_serdes_names_and_match_whole() {
        for (index, name) in super::super::FIELDS.iter().enumerate() {
            for after in ["\":", "\":1,\"amount\":2.5,\"time\":\"2026-11-30\"}]}"] {
                let body = format!("{name}{after}");
                let mut reader = Reader { text: &body, at: 0 };
                let field = reader.literal(&KEYS).map(|field| field as usize);
                assert_eq!(field, Some(index), "{body}");
                assert_eq!(reader.at, name.len() + 1, "{body}");
            }
            for near in [
                format!("{name}s\":"),
                format!("{name}\\\":"),
                name[1..].to_string(),
            ] {
                let mut reader = Reader { text: &near, at: 0 };
                assert!(reader.literal(&KEYS).is_none(), "{near}");
            }
        }
    }

    /// A token of the body and the whitespace before it.
    fn spaced(token: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["", "", "", " ", "\n  ", "\t", "\r\n"]),
            token,
        )
            .prop_map(|(space, token)| format!("{space}{token}"))
    }

    /// `significand` with a point before its last `point` digits: `decimal(5, 2)` is `0.05`.
    fn decimal(significand: u64, point: usize) -> String {
        let digits = significand.to_string();
        if point == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = point + 1);
        let (whole, fraction) = padded.split_at(padded.len() - point);
        format!("{whole}.{fraction}")
    }

    fn number() -> impl Strategy<Value = String> {
        let decimal = |most: u64| {
            (prop::bool::weighted(0.1), 0..most, 0usize..8).prop_map(
                |(negative, significand, point)| {
                    format!(
                        "{}{}",
                        if negative { "-" } else { "" },
                        decimal(significand, point)
                    )
                },
            )
        };
        prop_oneof![
            6 => decimal(1_000_000_000_000),
            1 => decimal(u64::MAX),
            1 => any::<f64>().prop_map(|v| format!("{v:e}")),
            1 => prop::sample::select(vec![
                "0", "-0", "-0.0", "1000000000000000", "01", "1.", "-", "1e3", "null", "\"1\"",
                "true", "[1]",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        let texts = vec![
            "email",
            "spring",
            "coupon",
            "margin",
            "segment",
            "",
            "é€",
            "sp\\\"ring",
            "a\\u0062c",
        ];
        prop_oneof![
            8 => prop::sample::select(texts).prop_map(|text| format!("\"{text}\"")),
            1 => "[a-z]{250,260}".prop_map(|text| format!("\"{text}\"")),
            1 => prop::sample::select(vec!["null", "7", "[]", "\"tab\there\""]).prop_map(str::to_string),
        ]
    }

    fn time() -> impl Strategy<Value = String> {
        let times = vec![
            "2026-11-30T10:00:00Z",
            "2026-11-30T10:00:01Z",
            "2026-11-30",
            "2026-11-31",
            "2026-11-30 10:00:00",
            "2026-11-30T10:00:00+01:00",
            "2026-11-30T10:00:00\\u005a",
            "soon",
        ];
        prop::sample::select(times).prop_map(|time| format!("\"{time}\""))
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<u64>().prop_map(|id| id.to_string()),
            4 => (0u64..20).prop_map(|id| id.to_string()),
            8 => Just("7".to_string()),
            1 => prop::sample::select(vec![
                "-1", "7.0", "07", "1e2", "null", "\"7\"", "18446744073709551616",
            ])
            .prop_map(str::to_string),
        ]
    }

    /// A field as `"name":value`, spaced.
    fn named(
        name: &'static str,
        value: impl Strategy<Value = String> + 'static,
    ) -> BoxedStrategy<String> {
        (
            spaced(Just(format!("\"{name}\""))),
            spaced(Just(":".into())),
            spaced(value),
        )
            .prop_map(|(name, colon, value)| format!("{name}{colon}{value}"))
            .boxed()
    }

    /// Any field, an unknown one or one out of place.
    fn stray() -> BoxedStrategy<String> {
        prop_oneof![
            named("type", text()),
            named("customer_id", id()),
            named("amount", number()),
            named("time", time()),
            named("channel", text()),
            named("value", prop_oneof![number(), text()]),
            named("colour", number()),
            named("typ\\u0065", text()),
        ]
        .boxed()
    }

    /// An event of each type with its fields, most of them valid, now and then a stray field;
    /// in any order.
    fn event() -> impl Strategy<Value = String> {
        let kind = |kind: &'static str| named("type", Just(format!("\"{kind}\"")));
        let maybe = |field: BoxedStrategy<String>| prop::option::of(field);
        let fields = prop_oneof![
            (
                kind("purchase"),
                named("amount", number()),
                maybe(named("time", time()))
            )
                .prop_map(|(kind, amount, time)| [Some(kind), Some(amount), time].to_vec()),
            (
                kind("contact"),
                named("channel", text()),
                maybe(named("campaign", text())),
                maybe(named("offer", text())),
                maybe(named("time", time()))
            )
                .prop_map(|(kind, channel, campaign, offer, time)| {
                    [Some(kind), Some(channel), campaign, offer, time].to_vec()
                }),
            (
                kind("response"),
                named("campaign", text()),
                maybe(named("offer", text())),
                maybe(named("value", number()))
            )
                .prop_map(|(kind, campaign, offer, value)| {
                    [Some(kind), Some(campaign), offer, value].to_vec()
                }),
            (
                kind("set"),
                named("column", text()),
                named("value", prop_oneof![number(), text()])
            )
                .prop_map(|(kind, column, value)| [
                    Some(kind),
                    Some(column),
                    Some(value)
                ]
                .to_vec()),
        ];
        (
            fields,
            prop::option::weighted(0.9, named("customer_id", id())),
            prop::option::weighted(0.1, stray()),
        )
            .prop_map(|(mut fields, id, stray)| {
                fields.extend([id, stray]);
                fields.into_iter().flatten().collect::<Vec<_>>()
            })
            .prop_shuffle()
            .prop_map(|fields| format!("{{{}}}", fields.join(",")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Eight bytes at a time finds what a byte at a time finds.
        #[test]
        fn the_closing_quote_is_found_as_a_byte_at_a_time_would(
            bytes in prop::collection::vec(
                prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')],
                0..40,
            ),
        ) {
            let first = bytes.iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
            prop_assert_eq!(closing_quote(&bytes), first.filter(|&at| bytes[at] == b'"'));
        }

        /// Wherever the plain reader gives events, serde gives the same, bit for bit; the
        /// server's reading answers as serde does, errors included.
        #[test]
        fn the_plain_reader_agrees_with_serde(
            events in prop::collection::vec(spaced(event()), 1..5),
            before in spaced(Just(String::new())),
            after in prop_oneof![
                8 => Just(""),
                1 => prop::sample::select(vec![" ", "\n", "x", ",", "]"]),
            ],
            batch in any::<bool>(),
        ) {
            let body = format!("{before}{{\"events\":[{}]}}{after}", events.join(","));
            agree(&body, if batch { None } else { Some(7) });
        }

        /// Bodies as clients write them are read here, not left to serde.
        #[test]
        fn plain_purchases_are_read_here(
            purchases in prop::collection::vec((any::<u64>(), 0u64..10_000_000_000, 0usize..4), 1..50),
        ) {
            let events: Vec<String> = purchases
                .iter()
                .map(|(id, cents, point)| {
                    let amount = decimal(*cents, *point);
                    format!(r#"{{"type":"purchase","customer_id":{id},"amount":{amount},"time":"2026-11-30T10:00:00Z"}}"#)
                })
                .collect();
            let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
            prop_assert!(read(&body, None).is_some(), "{}", body);
            agree(&body, None);
        }
    }
}
