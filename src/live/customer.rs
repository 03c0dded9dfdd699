//! What the live server knows of one customer beyond the store: the events applied to them
//! (their count, the most recent ones), their contact history (contacts and responses tagged
//! with campaign and offer), and, once an event changed a column, their whole row with its
//! value. Applying an event is O(columns) plus, under a purchase model, one evaluation of the
//! model over the horizon.

use std::collections::VecDeque;

use bincode::{Decode, Encode};
use smallvec::SmallVec;

use super::event::{Event, SetValue};
use super::recent_events::RecentEvents;
use crate::limits::MAX_CONTACT_HISTORY;

/// An event with its log sequence number.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LoggedEvent {
    /// Its place in the log.
    pub sequence: u64,
    /// The event.
    pub event: Event,
}

/// What a contact-history entry records.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Touch {
    /// The firm contacted the customer through `channel`.
    Contact {
        /// The channel.
        channel: String,
    },
    /// The customer responded, worth `value`.
    Response {
        /// What the response was worth.
        value: f64,
    },
}

/// One entry of a customer's contact history.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ContactRecord {
    /// Its place in the log.
    pub sequence: u64,
    /// When (microseconds since 1970-01-01 UTC).
    pub time: i64,
    /// The campaign (empty when none).
    pub campaign: String,
    /// The offer (empty when none).
    pub offer: String,
    /// Contact or response.
    pub touch: Touch,
}

/// A customer's event history: kept across restarts (the log, then checkpoints) and
/// compactions (checkpoints).
#[derive(Debug, Clone, Default, PartialEq, Encode, Decode)]
pub struct History {
    /// Every event ever applied to the customer.
    pub events: u64,
    /// The most recent events, oldest first, at most [`crate::limits::RECENT_EVENTS`].
    pub recent: RecentEvents,
    /// The most recent contacts and responses, oldest first, at most [`MAX_CONTACT_HISTORY`].
    pub contacts: Contacts,
}

impl History {
    /// Records `event` (number `sequence`).
    pub fn record(&mut self, sequence: u64, event: &Event) {
        self.events += 1;
        self.recent.push(sequence, event);
        let contact = match event {
            Event::Contact {
                channel,
                campaign,
                offer,
                time,
            } => (
                *time,
                campaign,
                offer,
                Touch::Contact {
                    channel: channel.clone(),
                },
            ),
            Event::Response {
                campaign,
                offer,
                value,
                time,
            } => (*time, campaign, offer, Touch::Response { value: *value }),
            Event::Purchase { .. } | Event::Set { .. } => return,
        };
        self.contacts.push(ContactRecord {
            sequence,
            time: contact.0,
            campaign: contact.1.clone(),
            offer: contact.2.clone(),
            touch: contact.3,
        });
    }
}

/// A customer's contacts and responses, oldest first, at most [`MAX_CONTACT_HISTORY`]: one
/// pointer for the many customers without any, where an empty ring takes four words in every
/// customer's state (a checkpoint stores them as a sequence).
#[derive(Debug, Clone, Default, PartialEq)]
// One word in the state is the point of the box.
#[allow(clippy::box_collection)]
pub struct Contacts(Option<Box<VecDeque<ContactRecord>>>);

impl Contacts {
    /// Appends `record`, dropping the oldest past [`MAX_CONTACT_HISTORY`].
    pub fn push(&mut self, record: ContactRecord) {
        // Room for this one only at first: most customers are contacted once or twice, where
        // a ring's first allocation holds four records.
        let records = self
            .0
            .get_or_insert_with(|| Box::new(VecDeque::with_capacity(1)));
        if records.len() == MAX_CONTACT_HISTORY {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |records| records.len())
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &ContactRecord> {
        self.0.iter().flat_map(|records| records.iter())
    }
}

/// Encodes `len` `items` as bincode encodes a sequence of them (its length, then each): the
/// checkpoint form of [`RecentEvents`] and [`Contacts`], whatever they hold in memory.
pub(super) fn encode_sequence<E: bincode::enc::Encoder, T: Encode>(
    encoder: &mut E,
    len: usize,
    mut items: impl Iterator<Item = T>,
) -> Result<(), bincode::error::EncodeError> {
    (len as u64).encode(encoder)?;
    items.try_for_each(|item| item.encode(encoder))
}

impl Encode for Contacts {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        encode_sequence(encoder, self.len(), self.iter())
    }
}

impl<Context> Decode<Context> for Contacts {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let records = VecDeque::<ContactRecord>::decode(decoder)?;
        Ok(Contacts((!records.is_empty()).then(|| Box::new(records))))
    }
}

bincode::impl_borrow_decode!(Contacts);

/// A customer's columns as events left them: the numeric columns the row holds (those events
/// set, and those a purchase read), the others being the base store's (0 for a customer the
/// store lacks), and the text columns once a `set` changed one of them (`None`: the store's
/// texts, or empty ones for a customer the store lacks). A first purchase reads three columns
/// of the store and holds four, where copying the whole row read one cache line per column
/// of every changed customer: a replay of millions of customers is bound by those misses.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The customer's row in the base store, [`NOT_STORED`] for one the store lacks (rows
    /// are `u32` in the store's format).
    stored: u32,
    /// The numeric columns held, ascending by column: in the row itself up to
    /// [`INLINE_HELD`] (a purchase holds four), so that an event reads them with the state
    /// instead of after one more miss, and a changed customer takes one allocation less.
    held: SmallVec<[HeldNumber; INLINE_HELD]>,
    /// Text columns, once one was set (boxed twice: one word for the many rows without).
    #[allow(clippy::box_collection)]
    texts: Option<Box<Box<[String]>>>,
}

/// [`Row::stored`] of a customer the store lacks.
const NOT_STORED: u32 = u32::MAX;

/// Numbers a [`Row`] holds in place before they move to the heap: what a purchase holds
/// (`frequency`, `recency`, `age`, `monetary_value`).
const INLINE_HELD: usize = 4;

/// A numeric column a [`Row`] holds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeldNumber {
    column: u32,
    value: f32,
}

/// Where the purchase history columns of a store are, among its numeric columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RfmColumns {
    /// `frequency`.
    pub frequency: Option<usize>,
    /// `recency`.
    pub recency: Option<usize>,
    /// `age` (or `T`).
    pub age: Option<usize>,
    /// `monetary_value`.
    pub monetary_value: Option<usize>,
}

impl RfmColumns {
    /// The columns a purchase reads (`frequency`, `monetary_value`, `age`), those present.
    pub fn read_by_purchase(&self) -> impl Iterator<Item = usize> + use<> {
        [self.frequency, self.monetary_value, self.age]
            .into_iter()
            .flatten()
    }

    /// The columns a purchase changes (`frequency`, `monetary_value`, `recency`), those
    /// present (`recency` only with `age`).
    pub fn changed_by_purchase(&self) -> impl Iterator<Item = usize> + use<> {
        let recency = self.recency.filter(|_| self.age.is_some());
        [self.frequency, self.monetary_value, recency]
            .into_iter()
            .flatten()
    }
}

impl Row {
    /// The row of store row `stored` (`None`: a customer the store lacks) before any event
    /// changed it: it holds nothing yet.
    pub fn new(stored: Option<usize>) -> Row {
        let stored = match stored {
            Some(row) => u32::try_from(row)
                .ok()
                .filter(|&row| row != NOT_STORED)
                .expect("store rows are below u32::MAX (the format's limit)"),
            None => NOT_STORED,
        };
        Row {
            stored,
            held: SmallVec::new(),
            texts: None,
        }
    }

    /// The customer's row in the base store, `None` for a customer the store lacks.
    pub fn stored(&self) -> Option<usize> {
        (self.stored != NOT_STORED).then_some(self.stored as usize)
    }

    /// Numeric column `column` if the row holds it (else it is the base store's, or 0).
    pub fn held(&self, column: usize) -> Option<f32> {
        self.held
            .iter()
            .find(|held| held.column as usize == column)
            .map(|held| held.value)
    }

    /// The numeric columns the row holds, `(column, value)` ascending by column.
    pub fn held_numbers(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.held
            .iter()
            .map(|held| (held.column as usize, held.value))
    }

    /// Numeric column `column`: held, or `base(column)` (the store's value, or 0).
    pub fn number(&self, column: usize, base: impl Fn(usize) -> f32) -> f32 {
        self.held(column).unwrap_or_else(|| base(column))
    }

    /// The text columns once a `set` changed one (`None`: the store's).
    pub fn texts(&self) -> Option<&[String]> {
        self.texts.as_deref().map(|texts| &texts[..])
    }

    /// The bits of the first and last numbers held (0 when none): reads that bring them, and
    /// every line between, into the cache.
    pub fn held_bits(&self) -> u32 {
        let bits = |held: Option<&HeldNumber>| held.map_or(0, |held| held.value.to_bits());
        bits(self.held.first()) ^ bits(self.held.last())
    }

    /// Holds `numbers` (`(column, value)`): each replaces the value held, or is inserted in
    /// column order.
    fn hold(&mut self, numbers: &[(usize, f32)]) {
        let held = |(column, value): (usize, f32)| HeldNumber {
            column: u32::try_from(column).expect("a store has fewer than 2^32 columns"),
            value,
        };
        if self.held.is_empty() && numbers.len() <= INLINE_HELD {
            // A row's first change (most rows of a replay have one): its numbers sorted in
            // place, the row's in one move. Pushed one by one, then sorted, they took ~230
            // instructions a first purchase (callgrind of a replay, `loadtest/README.md`).
            let mut sorted = [HeldNumber {
                column: 0,
                value: 0.0,
            }; INLINE_HELD];
            let mut len = 0;
            for &number in numbers {
                let number = held(number);
                if let Some(same) = sorted[..len].iter_mut().find(|h| h.column == number.column) {
                    same.value = number.value;
                    continue;
                }
                let mut at = len;
                while at > 0 && sorted[at - 1].column > number.column {
                    sorted[at] = sorted[at - 1];
                    at -= 1;
                }
                sorted[at] = number;
                len += 1;
            }
            self.held = SmallVec::from_buf_and_len(sorted, len);
            return;
        }
        for &number in numbers {
            let number = held(number);
            match self.held.iter().position(|h| h.column >= number.column) {
                Some(at) if self.held[at].column == number.column => self.held[at] = number,
                Some(at) => self.held.insert(at, number),
                None => self.held.push(number),
            }
        }
    }

    /// Applies what `event` changes in the columns: a `set` its column (`numeric` or `text`
    /// index, resolved and checked by the caller; `texts` gives the row's texts before the
    /// first text changes), a purchase the purchase history (see `Row::purchase`; `base`
    /// gives the store's value of a column the row does not hold). Contacts and responses
    /// change no column.
    pub fn apply(
        &mut self,
        event: &Event,
        column: Option<ColumnRef>,
        rfm: &RfmColumns,
        base: impl Fn(usize) -> f32,
        texts: impl FnOnce() -> Box<[String]>,
    ) {
        match (event, column) {
            (Event::Set { value, .. }, Some(column)) => match (value, column) {
                (SetValue::Number(v), ColumnRef::Number(i)) => self.hold(&[(i, *v as f32)]),
                (SetValue::Text(text), ColumnRef::Text(i)) => {
                    self.texts.get_or_insert_with(|| Box::new(texts()))[i].clone_from(text)
                }
                _ => unreachable!("the kind of a set's value is checked before it is logged"),
            },
            (Event::Purchase { amount, .. }, _) => self.purchase(*amount, rfm, base),
            _ => {}
        }
    }

    /// A repeat purchase of `amount` at the end of observation: `frequency` + 1, `recency` =
    /// `age` (the latest purchase is now), `monetary_value` the running mean of the repeat
    /// purchases including this one. Columns the store lacks are left out; `age` is held too,
    /// so that the next purchase reads nothing from the store.
    fn purchase(&mut self, amount: f64, rfm: &RfmColumns, base: impl Fn(usize) -> f32) {
        let number = |i: usize| self.number(i, &base);
        let frequency = rfm.frequency.map_or(0.0, |i| f64::from(number(i)));
        let mut numbers = [(0, 0.0); 4];
        let mut count = 0;
        let mut hold = |column: usize, value: f32| {
            numbers[count] = (column, value);
            count += 1;
        };
        if let Some(i) = rfm.monetary_value {
            let mean = f64::from(number(i));
            hold(i, ((mean * frequency + amount) / (frequency + 1.0)) as f32);
        }
        if let Some(i) = rfm.frequency {
            hold(i, (frequency + 1.0) as f32);
        }
        if let (Some(recency), Some(age)) = (rfm.recency, rfm.age) {
            let age_value = number(age);
            hold(recency, age_value);
            hold(age, age_value);
        }
        self.hold(&numbers[..count]);
    }
}

/// A column of a [`Row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRef {
    /// The numeric column at this index.
    Number(usize),
    /// The text column at this index.
    Text(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::RECENT_EVENTS;

    #[test]
    fn a_purchase_updates_the_history_columns() {
        let rfm = RfmColumns {
            frequency: Some(0),
            recency: Some(1),
            age: Some(2),
            monetary_value: Some(3),
        };
        // The store's row: frequency, recency, age, monetary value, margin.
        let stored = [2.0, 10.0, 30.0, 5.0, 7.0];
        let mut row = Row::new(Some(4));
        let purchase = |row: &mut Row, amount: f64| {
            row.apply(
                &Event::Purchase { amount, time: 0 },
                None,
                &rfm,
                |column| stored[column],
                || unreachable!("a purchase changes no text"),
            )
        };
        purchase(&mut row, 8.0);
        assert_eq!(row.stored(), Some(4));
        let held: Vec<(usize, f32)> = row.held_numbers().collect();
        assert_eq!(held, [(0, 3.0), (1, 30.0), (2, 30.0), (3, 6.0)]);
        assert_eq!(row.number(4, |column| stored[column]), 7.0);
        // The next purchase reads only what the row holds.
        purchase(&mut row, 10.0);
        let held: Vec<(usize, f32)> = row.held_numbers().collect();
        assert_eq!(held, [(0, 4.0), (1, 30.0), (2, 30.0), (3, 7.0)]);
        let mut again = row.clone();
        again.apply(
            &Event::Purchase {
                amount: 1.0,
                time: 0,
            },
            None,
            &rfm,
            |_| unreachable!("every column a purchase reads is held"),
            || unreachable!("a purchase changes no text"),
        );
        // A set holds its column, in column order, and changes nothing else.
        row.apply(
            &Event::Set {
                column: "margin".into(),
                value: SetValue::Number(9.5),
            },
            Some(ColumnRef::Number(4)),
            &rfm,
            |_| unreachable!("a set reads nothing"),
            || unreachable!("a numeric set changes no text"),
        );
        let held: Vec<(usize, f32)> = row.held_numbers().collect();
        assert_eq!(held, [(0, 4.0), (1, 30.0), (2, 30.0), (3, 7.0), (4, 9.5)]);
        assert_eq!(Row::new(None).stored(), None);
    }

    #[test]
    fn history_keeps_counts_and_caps_lists() {
        let mut history = History::default();
        for sequence in 1..=(MAX_CONTACT_HISTORY as u64 + 5) {
            let event = Event::Contact {
                channel: "email".into(),
                campaign: "c".into(),
                offer: "o".into(),
                time: sequence as i64,
            };
            history.record(sequence, &event);
        }
        assert_eq!(history.events, MAX_CONTACT_HISTORY as u64 + 5);
        assert_eq!(history.recent.len(), RECENT_EVENTS);
        assert_eq!(history.contacts.len(), MAX_CONTACT_HISTORY);
        assert_eq!(history.contacts.iter().next().unwrap().sequence, 6);
        // A checkpoint holds them as the sequence it always held; none as an empty one.
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding();
        let as_sequence: VecDeque<ContactRecord> = history.contacts.iter().cloned().collect();
        let encoded = bincode::encode_to_vec(&history.contacts, config).unwrap();
        assert_eq!(
            encoded,
            bincode::encode_to_vec(&as_sequence, config).unwrap()
        );
        let (back, _): (Contacts, usize) = bincode::decode_from_slice(&encoded, config).unwrap();
        assert_eq!(back, history.contacts);
        let none = bincode::encode_to_vec(Contacts::default(), config).unwrap();
        assert_eq!(
            none,
            bincode::encode_to_vec(VecDeque::<ContactRecord>::new(), config).unwrap()
        );
    }

    proptest::proptest! {
        /// Against a map of column to value: numbers held in any order, columns repeated
        /// within one change and across changes, rows first changed by up to
        /// [`INLINE_HELD`] numbers (held in one move) and by more.
        #[test]
        fn held_numbers_are_the_latest_of_each_column_in_column_order(
            changes in proptest::collection::vec(
                proptest::collection::vec((0..9usize, -1e6f32..1e6), 0..7),
                1..6,
            )
        ) {
            let mut row = Row::new(Some(0));
            let mut model = std::collections::BTreeMap::new();
            for numbers in changes {
                row.hold(&numbers);
                model.extend(numbers.iter().copied());
                let held: Vec<(usize, f32)> = row.held_numbers().collect();
                let expected: Vec<(usize, f32)> = model.iter().map(|(&c, &v)| (c, v)).collect();
                proptest::prop_assert_eq!(held, expected);
            }
        }
    }
}
