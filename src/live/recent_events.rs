//! A customer's most recent events, kept encoded in one ring buffer.

use std::borrow::Cow;

use bincode::{Decode, Encode};
use smallvec::SmallVec;

use super::customer::{LoggedEvent, encode_sequence};
use super::event::{Event, compact};
use crate::limits::RECENT_EVENTS;

/// A customer's most recent events, oldest first, at most [`RECENT_EVENTS`], kept encoded: a
/// purchase takes 23 bytes in one buffer instead of a 96-byte [`LoggedEvent`] in a growing
/// ring (a replay of millions of customers touches a fraction of the memory).
///
/// The buffer starts with a header of `HEADER_BYTES` (5): how many entries it holds (u8), where
/// the oldest starts in the ring that follows the header (u16 LE) and how many bytes the
/// entries take (u16 LE), so that an event is appended without walking the entries (a full
/// buffer of twenty is eight cache lines, and the walk a chain of dependent loads through
/// them: 90% of a push's time with events streaming, `loadtest/README.md`). Each entry is its
/// length (u16 LE, never 0) and the event with its sequence as [`compact`] writes them; an entry
/// may wrap around the ring's end. Dropping the oldest entry of a full buffer moves where the entries start:
/// the others stay where they are (shifting them down cost a copy of the whole buffer, all of
/// its cache lines, for every event of a customer with twenty: 1.8% of the server's cycles
/// under single events, `loadtest/README.md`). An empty buffer holds none.
///
/// Up to `INLINE_RECENT_BYTES` (32) the buffer is in the state itself: a customer's first
/// purchase (28 bytes with the header) takes no allocation of its own and is read with the
/// state, and most customers of a replay have one event (a 10^7-event replay over 10^7
/// customers made 6.3 million 32-byte allocations for them, a sixth of its time in the
/// allocator, `loadtest/README.md`). Past that it is on the heap, its ring grown fourfold when
/// an event does not fit (the state's room for one purchase becomes room for four), but never
/// past the room [`RECENT_EVENTS`] entries of the average size take: a customer's twenty
/// purchases take two allocations, not one per event (grown fourfold rather than doubled,
/// batches of events 6% faster and a 10^7-event replay's start-up 7% faster, each grow being
/// a copy and a free that miss the cache, `loadtest/README.md`), and an entry replacing the
/// oldest of a full buffer mostly fits in the room that one leaves. The buffer's length is its
/// size. A checkpoint stores the decoded events, as a sequence of [`LoggedEvent`].
#[derive(Debug, Clone, Default)]
pub struct RecentEvents {
    bytes: SmallVec<[u8; INLINE_RECENT_BYTES]>,
}

/// Bytes of [`RecentEvents`] kept in the state itself: a purchase's entry and the header.
const INLINE_RECENT_BYTES: usize = 32;

/// How many times larger a buffer's ring becomes when an event does not fit in it.
const GROWTH: usize = 4;

/// Bytes of [`RecentEvents`]' header: the count of entries (u8), where the oldest starts in
/// the ring (u16) and the bytes they take (u16).
const HEADER_BYTES: usize = 5;
const _: () = assert!(
    RECENT_EVENTS <= u8::MAX as usize
        && RECENT_EVENTS * (2 + compact::MAX_ENTRY_BYTES) <= u16::MAX as usize,
    "a full buffer's count, size and offsets fit its header"
);

/// Where a [`RecentEvents`]' entries are: how many, the ring offset of the oldest, the bytes
/// they take.
#[derive(Debug, Clone, Copy)]
struct Entries {
    count: usize,
    start: usize,
    used: usize,
}

impl RecentEvents {
    /// Appends event `sequence`, dropping the oldest past [`RECENT_EVENTS`].
    pub fn push(&mut self, sequence: u64, event: &Event) {
        let mut entries = self.header();
        let ring = self.ring_len();
        if entries.count == RECENT_EVENTS {
            let oldest = 2 + self.length_at(entries.start);
            entries = Entries {
                count: entries.count - 1,
                start: wrap(entries.start + oldest, ring),
                used: entries.used - oldest,
            };
        }
        let len = compact::len(sequence, event);
        if 2 + len > ring - entries.used {
            self.grow(entries, sequence, event, len);
            return;
        }
        // In the ring's room after the entries.
        let at = wrap(entries.start + entries.used, ring);
        self.write_length(at, len);
        let from = wrap(at + 2, ring);
        if from + len <= ring {
            let room = HEADER_BYTES + from..HEADER_BYTES + from + len;
            compact::write(sequence, event, &mut self.bytes[room]);
        } else {
            // Around the ring's end: written aside, then copied in two pieces.
            let mut aside = [0u8; compact::MAX_ENTRY_BYTES];
            compact::write(sequence, event, &mut aside[..len]);
            self.write_at(from, &aside[..len]);
        }
        self.set_header(Entries {
            count: entries.count + 1,
            used: entries.used + 2 + len,
            ..entries
        });
    }

    /// Moves the `entries` into a larger buffer, the oldest first at the ring's start, and
    /// appends there the entry of event `sequence`, `len` bytes.
    fn grow(&mut self, entries: Entries, sequence: u64, event: &Event, len: usize) {
        let used = entries.used + 2 + len;
        let ring = if self.bytes.is_empty() {
            used
        } else {
            // Quadrupled, but never past the room a full buffer of entries of this size takes.
            let count = entries.count.min(RECENT_EVENTS - 1) + 1;
            let room_for_all = used / count * RECENT_EVENTS;
            used.max((self.ring_len() * GROWTH).min(room_for_all))
        };
        // In the state while it fits (then all of its room), else on the heap at exactly the
        // size, zeroed at once, then the entries copied in. Grown piece by piece
        // (`extend_from_slice` four times, then `resize`, which pushes the room's zeros one at
        // a time) the buffer cost ~300 instructions an event more (callgrind of a replay,
        // `loadtest/README.md`).
        let size = (HEADER_BYTES + ring).max(INLINE_RECENT_BYTES);
        let mut bytes = if size == INLINE_RECENT_BYTES {
            SmallVec::from_buf([0; INLINE_RECENT_BYTES])
        } else {
            SmallVec::from_vec(vec![0; size])
        };
        self.read_at(
            entries.start,
            &mut bytes[HEADER_BYTES..HEADER_BYTES + entries.used],
        );
        let at = HEADER_BYTES + entries.used;
        bytes[at..at + 2].copy_from_slice(&entry_length(len));
        compact::write(sequence, event, &mut bytes[at + 2..at + 2 + len]);
        self.bytes = bytes;
        self.set_header(Entries {
            count: entries.count + 1,
            start: 0,
            used,
        });
    }

    /// The bytes of the ring that follows the header.
    fn ring_len(&self) -> usize {
        self.bytes.len().saturating_sub(HEADER_BYTES)
    }

    /// How many entries the buffer holds, where they start and the bytes they take.
    fn header(&self) -> Entries {
        match self.bytes[..] {
            [count, start_low, start_high, used_low, used_high, ..] => Entries {
                count: usize::from(count),
                start: usize::from(u16::from_le_bytes([start_low, start_high])),
                used: usize::from(u16::from_le_bytes([used_low, used_high])),
            },
            _ => Entries {
                count: 0,
                start: 0,
                used: 0,
            },
        }
    }

    /// Records where the entries are.
    fn set_header(&mut self, entries: Entries) {
        debug_assert!(entries.count <= RECENT_EVENTS && entries.used <= self.ring_len());
        self.bytes[0] = entries.count as u8;
        self.bytes[1..3].copy_from_slice(&(entries.start as u16).to_le_bytes());
        self.bytes[3..5].copy_from_slice(&(entries.used as u16).to_le_bytes());
    }

    /// Copies the ring's bytes from offset `at` on, around its end, into `out`.
    fn read_at(&self, at: usize, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        let ring = &self.bytes[HEADER_BYTES..];
        let first = out.len().min(ring.len() - at);
        out[..first].copy_from_slice(&ring[at..at + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&ring[..rest]);
    }

    /// Writes `data` into the ring from offset `at` on, around its end.
    fn write_at(&mut self, at: usize, data: &[u8]) {
        let ring = &mut self.bytes[HEADER_BYTES..];
        let first = data.len().min(ring.len() - at);
        ring[at..at + first].copy_from_slice(&data[..first]);
        ring[..data.len() - first].copy_from_slice(&data[first..]);
    }

    /// The length of the entry at ring offset `at` (its two bytes read one by one: a copy of
    /// a slice calls `memcpy`).
    fn length_at(&self, at: usize) -> usize {
        let ring = &self.bytes[HEADER_BYTES..];
        usize::from(u16::from_le_bytes([
            ring[at],
            ring[wrap(at + 1, ring.len())],
        ]))
    }

    /// Writes the length prefix of an entry of `written` bytes at ring offset `at`.
    fn write_length(&mut self, at: usize, written: usize) {
        let [low, high] = entry_length(written);
        let ring = &mut self.bytes[HEADER_BYTES..];
        let next = wrap(at + 1, ring.len());
        (ring[at], ring[next]) = (low, high);
    }

    /// Each entry's encoded event, oldest first (copied only where it wraps around the ring).
    fn entries(&self) -> Vec<Cow<'_, [u8]>> {
        let Entries { count, start, .. } = self.header();
        let ring = self.ring_len();
        let mut at = start;
        (0..count)
            .map(|_| {
                let length = self.length_at(at);
                let from = wrap(at + 2, ring);
                at = wrap(at + 2 + length, ring);
                match self
                    .bytes
                    .get(HEADER_BYTES + from..HEADER_BYTES + from + length)
                {
                    Some(entry) if from + length <= ring => Cow::Borrowed(entry),
                    _ => {
                        let mut entry = vec![0; length];
                        self.read_at(from, &mut entry);
                        Cow::Owned(entry)
                    }
                }
            })
            .collect()
    }

    /// The buffer: its header, then the ring of entries (a read of where they are:
    /// `live::read_ahead` then reads its first byte, bringing the header into the cache).
    pub fn encoded(&self) -> &[u8] {
        &self.bytes
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.header().count
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = LoggedEvent> + '_ {
        self.entries()
            .into_iter()
            .map(|encoded| compact::read(&encoded))
    }
}

/// `offset`, less than twice the ring's length `ring`, as an offset in the ring: a subtraction
/// where `%` by a length known only at run time is a division (tens of cycles, several a push).
fn wrap(offset: usize, ring: usize) -> usize {
    debug_assert!(offset < 2 * ring, "{offset} is not below twice {ring}");
    if offset >= ring {
        offset - ring
    } else {
        offset
    }
}

/// The length prefix of an entry of `written` bytes.
fn entry_length(written: usize) -> [u8; 2] {
    assert!(
        (1..=compact::MAX_ENTRY_BYTES).contains(&written),
        "an event of capped texts fits MAX_ENTRY_BYTES"
    );
    (written as u16).to_le_bytes()
}

impl PartialEq for RecentEvents {
    /// The same events, wherever they are in however much room.
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Encode for RecentEvents {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        encode_sequence(encoder, self.len(), self.iter())
    }
}

impl<Context> Decode<Context> for RecentEvents {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let mut recent = RecentEvents::default();
        for logged in Vec::<LoggedEvent>::decode(decoder)? {
            if let Some(why) = logged.event.outside_limits() {
                return Err(bincode::error::DecodeError::OtherString(format!(
                    "a recent event holds {why}, which no accepted event has"
                )));
            }
            recent.push(logged.sequence, &logged.event);
        }
        Ok(recent)
    }
}

bincode::impl_borrow_decode!(RecentEvents);

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::super::event::SetValue;
    use super::*;
    use crate::limits::MAX_EVENT_TEXT_BYTES;

    #[test]
    fn recent_events_keep_the_latest_and_encode_as_a_sequence_of_events() {
        let long = "x".repeat(MAX_EVENT_TEXT_BYTES);
        let events: Vec<LoggedEvent> = (1..=RECENT_EVENTS as u64 + 3)
            .map(|sequence| LoggedEvent {
                sequence: sequence << 40,
                event: match sequence % 4 {
                    0 => Event::Purchase {
                        amount: sequence as f64 / 3.0,
                        time: -(sequence as i64) << 45,
                    },
                    1 => Event::Contact {
                        channel: long.clone(),
                        campaign: long.clone(),
                        offer: long.clone(),
                        time: *crate::rfm::date::MOMENT_MICROS.end(),
                    },
                    2 => Event::Response {
                        campaign: "c".into(),
                        offer: String::new(),
                        value: -1.5,
                        time: 0,
                    },
                    _ => Event::Set {
                        column: long.clone(),
                        value: SetValue::Text(long.clone()),
                    },
                },
            })
            .collect();
        let mut recent = RecentEvents::default();
        for (count, logged) in events.iter().enumerate() {
            recent.push(logged.sequence, &logged.event);
            assert_eq!(recent.len(), (count + 1).min(RECENT_EVENTS));
        }
        let kept: Vec<LoggedEvent> = recent.iter().collect();
        assert_eq!(kept, events[3..]);
        assert_eq!(recent.iter().next_back(), events.last().cloned());
        // A checkpoint holds them as the sequence of events it always held.
        let as_sequence: VecDeque<LoggedEvent> = events[3..].iter().cloned().collect();
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding();
        let encoded = bincode::encode_to_vec(&recent, config).unwrap();
        assert_eq!(
            encoded,
            bincode::encode_to_vec(&as_sequence, config).unwrap()
        );
        let (back, _): (RecentEvents, usize) =
            bincode::decode_from_slice(&encoded, config).unwrap();
        assert_eq!(back, recent);
        let too_long = VecDeque::from([LoggedEvent {
            sequence: 1,
            event: Event::Set {
                column: "x".repeat(MAX_EVENT_TEXT_BYTES + 1),
                value: SetValue::Number(1.0),
            },
        }]);
        let encoded = bincode::encode_to_vec(&too_long, config).unwrap();
        assert!(bincode::decode_from_slice::<RecentEvents, _>(&encoded, config).is_err());
        let negative = VecDeque::from([LoggedEvent {
            sequence: 1,
            event: Event::Purchase {
                amount: -1.0,
                time: 0,
            },
        }]);
        let encoded = bincode::encode_to_vec(&negative, config).unwrap();
        let error = bincode::decode_from_slice::<RecentEvents, _>(&encoded, config).unwrap_err();
        assert!(error.to_string().contains("negative"), "{error}");
    }

    #[test]
    fn recent_events_grow_fourfold_up_to_a_full_buffer_and_reuse_their_room() {
        let mut recent = RecentEvents::default();
        let (mut sizes, mut grown) = (Vec::new(), 0);
        for sequence in 1..=3 * RECENT_EVENTS as u64 {
            let before = recent.encoded().len();
            let event = Event::Purchase {
                amount: sequence as f64,
                time: 1_800_000_000_000_000 + sequence as i64,
            };
            recent.push(sequence, &event);
            grown += usize::from(recent.encoded().len() != before);
            sizes.push(recent.encoded().len());
            assert_eq!(recent.iter().next_back().unwrap().event, event);
        }
        // The first event is kept in the state; twenty take two allocations (room for four,
        // then for all twenty), and once full the buffer is reused as the oldest makes room,
        // the entries going around its ring.
        assert_eq!(sizes[0], INLINE_RECENT_BYTES);
        let first_entry = {
            let mut first = RecentEvents::default();
            first.push(
                1,
                &Event::Purchase {
                    amount: 1.0,
                    time: 1_800_000_000_000_001,
                },
            );
            assert!(!first.bytes.spilled(), "a purchase is kept in the state");
            first.header().used
        };
        assert_eq!(recent.len(), RECENT_EVENTS);
        assert_eq!(grown - 1, 2, "allocations: {sizes:?}");
        assert_eq!(
            sizes[RECENT_EVENTS..],
            [sizes[RECENT_EVENTS]; 2 * RECENT_EVENTS]
        );
        // Growth stops at the room twenty entries of this size take.
        assert!(
            sizes[RECENT_EVENTS] <= HEADER_BYTES + RECENT_EVENTS * first_entry,
            "{sizes:?}"
        );
        let kept: Vec<u64> = recent.iter().map(|logged| logged.sequence).collect();
        assert_eq!(
            kept,
            (2 * RECENT_EVENTS as u64 + 1..=3 * RECENT_EVENTS as u64).collect::<Vec<_>>()
        );
        // Equal events are equal wherever they are in however much room: the same twenty
        // purchases after a contact with long texts grew the buffer, and wrapped around it.
        let mut roomier = RecentEvents::default();
        let long = "x".repeat(MAX_EVENT_TEXT_BYTES);
        roomier.push(
            1,
            &Event::Contact {
                channel: long.clone(),
                campaign: long.clone(),
                offer: long,
                time: 0,
            },
        );
        for sequence in 1..=3 * RECENT_EVENTS as u64 {
            let event = Event::Purchase {
                amount: sequence as f64,
                time: 1_800_000_000_000_000 + sequence as i64,
            };
            roomier.push(sequence, &event);
        }
        assert!(roomier.encoded().len() > recent.encoded().len());
        assert_eq!(roomier.len(), RECENT_EVENTS);
        assert_eq!(roomier, recent);
    }

    /// An event of `kind` whose texts are `text` bytes long.
    fn event_of(kind: u8, text: usize, number: f64) -> Event {
        let text = "t".repeat(text);
        match kind % 4 {
            0 => Event::Purchase {
                amount: number.abs(),
                time: number as i64,
            },
            1 => Event::Contact {
                channel: text.clone(),
                campaign: text.clone(),
                offer: text,
                time: -(number as i64),
            },
            2 => Event::Response {
                campaign: text,
                offer: String::new(),
                value: number,
                time: 0,
            },
            _ => Event::Set {
                column: text.clone(),
                value: SetValue::Text(text),
            },
        }
    }

    proptest! {
        /// Against a plain list of the last [`RECENT_EVENTS`] events: events of every kind
        /// and size (the buffer kept in the state, grown, full with entries wrapping around
        /// its end, entries larger and smaller than the oldest they replace), sequences of
        /// every varint length.
        #[test]
        fn recent_events_keep_what_a_plain_list_of_the_latest_keeps(
            events in prop::collection::vec(
                (any::<u8>(), prop_oneof![0..8usize, 0..=MAX_EVENT_TEXT_BYTES],
                 any::<u64>(), -1e9..1e9f64),
                1..80,
            )
        ) {
            let mut recent = RecentEvents::default();
            let mut model = VecDeque::new();
            for (kind, text, sequence, number) in events {
                let logged = LoggedEvent { sequence, event: event_of(kind, text, number) };
                recent.push(logged.sequence, &logged.event);
                model.push_back(logged);
                if model.len() > RECENT_EVENTS {
                    model.pop_front();
                }
                prop_assert_eq!(recent.len(), model.len());
                prop_assert!(recent.iter().eq(model.iter().cloned()));
                prop_assert!(recent.iter().rev().eq(model.iter().rev().cloned()));
            }
            let config = bincode::config::standard();
            let encoded = bincode::encode_to_vec(&recent, config).unwrap();
            prop_assert_eq!(&encoded, &bincode::encode_to_vec(&model, config).unwrap());
            let (back, _): (RecentEvents, usize) =
                bincode::decode_from_slice(&encoded, config).unwrap();
            prop_assert_eq!(back, recent);
        }
    }
}
