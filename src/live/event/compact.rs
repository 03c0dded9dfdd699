//! An event with its log sequence as the live state keeps it in memory (a customer's recent
//! events, [`crate::live::recent_events`], and contact history, [`crate::live::customer`]),
//! written and read by hand.
//!
//! An entry is the event's kind (one byte: purchase, contact, response, `set` of a number,
//! `set` of a text), its sequence as a LEB128 varint, then its fields in declaration order:
//! numbers and times as eight bytes little-endian, texts as their length (varint) and their
//! bytes. A purchase with a sequence below 2^28 takes 21 bytes. Entries live only in memory
//! (a checkpoint stores the decoded events), so the encoding is free to be the one that is
//! quickest to write: its length is known before a byte is written, and writing a purchase
//! is a few stores (a recent event's push took 389 instructions with bincode's encoder, 339
//! with this one, callgrind of a 10^6-event replay, `loadtest/README.md`).

use super::{Event, SetValue};
use crate::limits::MAX_EVENT_TEXT_BYTES;
use crate::live::customer::LoggedEvent;

/// The kinds of entry, its first byte.
const PURCHASE: u8 = 0;
const CONTACT: u8 = 1;
const RESPONSE: u8 = 2;
const SET_NUMBER: u8 = 3;
const SET_TEXT: u8 = 4;

/// The longest varint: a `u64` takes ten bytes of seven bits.
const MAX_VARINT_BYTES: usize = 10;

/// The bytes of the longest entry: three texts of [`MAX_EVENT_TEXT_BYTES`] and a time (a
/// contact), a response's two texts and two numbers, a `set`'s two texts and its kind being
/// shorter.
pub(in crate::live) const MAX_ENTRY_BYTES: usize =
    1 + MAX_VARINT_BYTES + 3 * (varint_len(MAX_EVENT_TEXT_BYTES as u64) + MAX_EVENT_TEXT_BYTES) + 8;

/// Bytes of `value` as a varint.
const fn varint_len(value: u64) -> usize {
    // One byte per started group of seven bits, one for zero.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes of `text` as an entry holds it: its length, then its bytes.
fn text_len(text: &str) -> usize {
    varint_len(text.len() as u64) + text.len()
}

/// Bytes of the entry of event `sequence`.
pub(in crate::live) fn len(sequence: u64, event: &Event) -> usize {
    let fields = match event {
        Event::Purchase { .. } => 16,
        Event::Contact {
            channel,
            campaign,
            offer,
            ..
        } => text_len(channel) + text_len(campaign) + text_len(offer) + 8,
        Event::Response {
            campaign, offer, ..
        } => text_len(campaign) + text_len(offer) + 16,
        Event::Set { column, value } => {
            text_len(column)
                + match value {
                    SetValue::Number(_) => 8,
                    SetValue::Text(text) => text_len(text),
                }
        }
    };
    1 + varint_len(sequence) + fields
}

/// Writes the entry of event `sequence` into `out`, exactly [`len`] bytes long.
///
/// # Panics
/// If `out` is not [`len`] bytes long.
pub(in crate::live) fn write(sequence: u64, event: &Event, out: &mut [u8]) {
    let mut out = Writer { out, at: 0 };
    match event {
        Event::Purchase { amount, time } => {
            out.byte(PURCHASE);
            out.varint(sequence);
            out.bytes(&amount.to_le_bytes());
            out.bytes(&time.to_le_bytes());
        }
        Event::Contact {
            channel,
            campaign,
            offer,
            time,
        } => {
            out.byte(CONTACT);
            out.varint(sequence);
            out.text(channel);
            out.text(campaign);
            out.text(offer);
            out.bytes(&time.to_le_bytes());
        }
        Event::Response {
            campaign,
            offer,
            value,
            time,
        } => {
            out.byte(RESPONSE);
            out.varint(sequence);
            out.text(campaign);
            out.text(offer);
            out.bytes(&value.to_le_bytes());
            out.bytes(&time.to_le_bytes());
        }
        Event::Set { column, value } => {
            out.byte(match value {
                SetValue::Number(_) => SET_NUMBER,
                SetValue::Text(_) => SET_TEXT,
            });
            out.varint(sequence);
            out.text(column);
            match value {
                SetValue::Number(number) => out.bytes(&number.to_le_bytes()),
                SetValue::Text(text) => out.text(text),
            }
        }
    }
    assert_eq!(
        out.at,
        out.out.len(),
        "an entry fills the room its length gave"
    );
}

/// Reads an entry [`write`] wrote.
///
/// # Panics
/// If `entry` is not one: entries are only ever written by [`write`].
pub(in crate::live) fn read(entry: &[u8]) -> LoggedEvent {
    let mut entry = Reader { entry, at: 0 };
    let kind = entry.byte();
    let sequence = entry.varint();
    let event = match kind {
        PURCHASE => Event::Purchase {
            amount: f64::from_le_bytes(entry.array()),
            time: i64::from_le_bytes(entry.array()),
        },
        CONTACT => Event::Contact {
            channel: entry.text(),
            campaign: entry.text(),
            offer: entry.text(),
            time: i64::from_le_bytes(entry.array()),
        },
        RESPONSE => Event::Response {
            campaign: entry.text(),
            offer: entry.text(),
            value: f64::from_le_bytes(entry.array()),
            time: i64::from_le_bytes(entry.array()),
        },
        SET_NUMBER | SET_TEXT => Event::Set {
            column: entry.text(),
            value: if kind == SET_NUMBER {
                SetValue::Number(f64::from_le_bytes(entry.array()))
            } else {
                SetValue::Text(entry.text())
            },
        },
        _ => panic!("an entry starts with the kind of its event, not {kind}"),
    };
    assert_eq!(entry.at, entry.entry.len(), "an entry ends with its event");
    LoggedEvent { sequence, event }
}

/// Writes an entry front to back.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn byte(&mut self, byte: u8) {
        self.out[self.at] = byte;
        self.at += 1;
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }

    fn text(&mut self, text: &str) {
        self.varint(text.len() as u64);
        self.bytes(text.as_bytes());
    }
}

/// Reads an entry front to back.
struct Reader<'a> {
    entry: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.entry[self.at];
        self.at += 1;
        byte
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let bytes = self.entry[self.at..self.at + N]
            .try_into()
            .expect("N bytes");
        self.at += N;
        bytes
    }

    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
        }
        panic!("a varint of an entry ends within ten bytes")
    }

    fn text(&mut self) -> String {
        let len = usize::try_from(self.varint()).expect("a text's length fits memory");
        let bytes = &self.entry[self.at..self.at + len];
        self.at += len;
        std::str::from_utf8(bytes)
            .expect("an entry's texts were strings")
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z]{1,12}",
            "\\PC{0,40}",
            Just("é".repeat(MAX_EVENT_TEXT_BYTES / 2)),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<f64>(), any::<i64>())
                .prop_map(|(amount, time)| Event::Purchase { amount, time }),
            (text(), text(), text(), any::<i64>()).prop_map(|(channel, campaign, offer, time)| {
                Event::Contact {
                    channel,
                    campaign,
                    offer,
                    time,
                }
            }),
            (text(), text(), any::<f64>(), any::<i64>()).prop_map(
                |(campaign, offer, value, time)| Event::Response {
                    campaign,
                    offer,
                    value,
                    time,
                }
            ),
            (text(), any::<f64>()).prop_map(|(column, number)| Event::Set {
                column,
                value: SetValue::Number(number),
            }),
            (text(), text()).prop_map(|(column, text)| Event::Set {
                column,
                value: SetValue::Text(text),
            }),
        ]
    }

    #[test]
    fn varint_lengths_agree_with_the_bytes_written() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let mut out = [0u8; MAX_VARINT_BYTES];
                let mut writer = Writer {
                    out: &mut out,
                    at: 0,
                };
                writer.varint(value);
                assert_eq!(writer.at, varint_len(value), "{value}");
            }
        }
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(u64::MAX), MAX_VARINT_BYTES);
    }

    #[test]
    fn the_longest_event_fits_the_longest_entry() {
        let long = "x".repeat(MAX_EVENT_TEXT_BYTES);
        let contact = Event::Contact {
            channel: long.clone(),
            campaign: long.clone(),
            offer: long,
            time: i64::MIN,
        };
        assert_eq!(len(u64::MAX, &contact), MAX_ENTRY_BYTES);
        let purchase = Event::Purchase {
            amount: 19.99,
            time: 1_800_000_000_000_000,
        };
        assert_eq!(len(10_000_000, &purchase), 21);
    }

    proptest! {
        /// Every event reads back as written, bit for bit (NaNs and -0.0 included), in
        /// exactly the bytes [`len`] gave.
        #[test]
        fn entries_read_back_as_written(sequence in any::<u64>(), event in event()) {
            let mut out = vec![0u8; len(sequence, &event)];
            write(sequence, &event, &mut out);
            let back = read(&out);
            prop_assert_eq!(back.sequence, sequence);
            prop_assert_eq!(format!("{:?}", back.event), format!("{event:?}"));
            let bits = |event: &Event| match event {
                Event::Purchase { amount, .. } => amount.to_bits(),
                Event::Response { value, .. } => value.to_bits(),
                Event::Set { value: SetValue::Number(number), .. } => number.to_bits(),
                _ => 0,
            };
            prop_assert_eq!(bits(&back.event), bits(&event));
        }
    }
}
