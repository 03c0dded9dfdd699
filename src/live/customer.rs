//! What the live server knows of one customer beyond the store: the events applied to them
//! (their count, the most recent ones), their contact history (contacts and responses tagged
//! with campaign and offer), and, once an event changed a column, their whole row with its
//! value. Applying an event is O(columns) plus, under a purchase model, one evaluation of the
//! model over the horizon.

use bincode::{Decode, Encode};

use super::event::{Event, SetValue, compact};
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
        if matches!(event, Event::Contact { .. } | Event::Response { .. }) {
            self.contacts.push(sequence, event);
        }
    }
}

/// A customer's contacts and responses, oldest first, at most [`MAX_CONTACT_HISTORY`], kept
/// encoded ([`compact`]) in one buffer: one pointer for the many customers without any (a
/// checkpoint stores them as a sequence of [`ContactRecord`]). A contact takes its entry's
/// bytes in one buffer, where a record with its three texts took five allocations (176 bytes
/// with short texts; 1.1 million contacted customers in a 10^7-event replay).
#[derive(Debug, Clone, Default)]
pub struct Contacts(Option<Box<ContactLog>>);

/// The entries of [`Contacts`].
#[derive(Debug, Clone)]
struct ContactLog {
    /// The entries: each its length (u16 LE) and the contact or response with its sequence
    /// as [`compact`] writes them; those before `start` are dropped (the buffer is shifted
    /// down once they are half of it, so that dropping the oldest of a full history is not a
    /// copy of all the others each time).
    bytes: Vec<u8>,
    /// Where the oldest entry kept starts.
    start: u32,
    /// How many entries are kept.
    count: u32,
}

const _: () = assert!(
    compact::MAX_ENTRY_BYTES <= u16::MAX as usize
        && MAX_CONTACT_HISTORY * 2 * (2 + compact::MAX_ENTRY_BYTES) <= u32::MAX as usize,
    "entry lengths fit their prefix, and a history's offsets a u32"
);

impl ContactLog {
    /// The length of the entry at `at` and where its bytes are.
    fn entry_at(&self, at: usize) -> std::ops::Range<usize> {
        let len = usize::from(u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]));
        at + 2..at + 2 + len
    }
}

impl Contacts {
    /// Appends contact or response `event` (number `sequence`), dropping the oldest past
    /// [`MAX_CONTACT_HISTORY`].
    pub fn push(&mut self, sequence: u64, event: &Event) {
        debug_assert!(matches!(
            event,
            Event::Contact { .. } | Event::Response { .. }
        ));
        let len = compact::len(sequence, event);
        // Room for this one only at first: most customers are contacted once or twice.
        let log = self.0.get_or_insert_with(|| {
            Box::new(ContactLog {
                bytes: Vec::with_capacity(2 + len),
                start: 0,
                count: 0,
            })
        });
        if log.count as usize == MAX_CONTACT_HISTORY {
            log.start = log.entry_at(log.start as usize).end as u32;
            log.count -= 1;
            if log.start as usize >= log.bytes.len() / 2 {
                log.bytes.drain(..log.start as usize);
                log.start = 0;
            }
        }
        let at = log.bytes.len();
        log.bytes.resize(at + 2 + len, 0);
        log.bytes[at..at + 2].copy_from_slice(&(len as u16).to_le_bytes());
        compact::write(sequence, event, &mut log.bytes[at + 2..]);
        log.count += 1;
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |log| log.count as usize)
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, oldest first.
    pub fn iter(&self) -> std::vec::IntoIter<ContactRecord> {
        let mut records = Vec::with_capacity(self.len());
        if let Some(log) = &self.0 {
            let mut at = log.start as usize;
            while at < log.bytes.len() {
                let entry = log.entry_at(at);
                at = entry.end;
                records.push(ContactRecord::from(compact::read(&log.bytes[entry])));
            }
        }
        records.into_iter()
    }
}

impl PartialEq for Contacts {
    /// The same records, wherever they are in however much room.
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl From<LoggedEvent> for ContactRecord {
    /// A contact or response as its history records it.
    ///
    /// # Panics
    /// For another kind of event: only contacts and responses are in a contact history.
    fn from(logged: LoggedEvent) -> ContactRecord {
        let (time, campaign, offer, touch) = match logged.event {
            Event::Contact {
                channel,
                campaign,
                offer,
                time,
            } => (time, campaign, offer, Touch::Contact { channel }),
            Event::Response {
                campaign,
                offer,
                value,
                time,
            } => (time, campaign, offer, Touch::Response { value }),
            Event::Purchase { .. } | Event::Set { .. } => {
                unreachable!("a contact history holds contacts and responses")
            }
        };
        ContactRecord {
            sequence: logged.sequence,
            time,
            campaign,
            offer,
            touch,
        }
    }
}

impl ContactRecord {
    /// The event it records.
    pub(in crate::live) fn event(self) -> Event {
        let ContactRecord {
            time,
            campaign,
            offer,
            touch,
            ..
        } = self;
        match touch {
            Touch::Contact { channel } => Event::Contact {
                channel,
                campaign,
                offer,
                time,
            },
            Touch::Response { value } => Event::Response {
                campaign,
                offer,
                value,
                time,
            },
        }
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
        let mut contacts = Contacts::default();
        for record in Vec::<ContactRecord>::decode(decoder)? {
            let sequence = record.sequence;
            let event = record.event();
            if let Some(why) = event.outside_limits() {
                return Err(bincode::error::DecodeError::OtherString(format!(
                    "a contact holds {why}, which no accepted event has"
                )));
            }
            contacts.push(sequence, &event);
        }
        Ok(contacts)
    }
}

bincode::impl_borrow_decode!(Contacts);

/// A customer's columns as events left them: the numeric columns the row holds (those `set`
/// events changed), the repeat purchases since (their count and amounts), the others being
/// the base store's (0 for a customer the store lacks), and the text columns once a `set`
/// changed one of them (`None`: the store's texts, or empty ones for a customer the store
/// lacks).
///
/// A purchase reads nothing: the purchase history columns it changes are worked out when they
/// are read ([`Row::number`]), from the columns as they stood before the purchases (held, or
/// the store's) and the purchases since. A replay of millions of customers is bound by its
/// cache misses, and reading `frequency`, `monetary_value` and `age` from the store at each
/// customer's first purchase cost three misses an event, a sixth of a 10^7-event replay
/// (`loadtest/README.md`). A `set` of a purchase history column first settles the purchases
/// into the columns it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The customer's row in the base store, [`NOT_STORED`] for one the store lacks (rows
    /// are `u32` in the store's format).
    stored: u32,
    /// Repeat purchases since the purchase history columns were settled.
    purchases: u32,
    /// Their amounts' sum (where the store has `frequency`; else the last amount, which is
    /// then the mean a purchase leaves, as no count says how many came before).
    spent: f64,
    /// The numeric and text columns `set` events changed, once one did (one word for the
    /// many rows only purchases changed).
    set: Option<Box<SetColumns>>,
}

/// The columns of a [`Row`] that `set` events changed.
#[derive(Debug, Clone, Default, PartialEq)]
struct SetColumns {
    /// The numeric columns held, ascending by column.
    held: Vec<HeldNumber>,
    /// The text columns, once one was set.
    texts: Option<Box<[String]>>,
}

/// [`Row::stored`] of a customer the store lacks.
const NOT_STORED: u32 = u32::MAX;

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
    /// The columns a purchase changes (`frequency`, `monetary_value`, `recency`), those
    /// present (`recency` only with `age`).
    pub fn changed_by_purchase(&self) -> impl Iterator<Item = usize> + use<> {
        let recency = self.recency.filter(|_| self.age.is_some());
        [self.frequency, self.monetary_value, recency]
            .into_iter()
            .flatten()
    }

    /// Whether numeric column `column` is one of the purchase history.
    fn holds(&self, column: usize) -> bool {
        [self.frequency, self.recency, self.age, self.monetary_value].contains(&Some(column))
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
            purchases: 0,
            spent: 0.0,
            set: None,
        }
    }

    /// The customer's row in the base store, `None` for a customer the store lacks.
    pub fn stored(&self) -> Option<usize> {
        (self.stored != NOT_STORED).then_some(self.stored as usize)
    }

    /// Numeric column `column` as a `set` (or a settling) left it, if the row holds it.
    fn held(&self, column: usize) -> Option<f32> {
        self.held_slice()
            .iter()
            .find(|held| held.column as usize == column)
            .map(|held| held.value)
    }

    /// The numeric columns the row holds, `(column, value)` ascending by column.
    #[cfg(test)]
    fn held_numbers(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.held_slice()
            .iter()
            .map(|held| (held.column as usize, held.value))
    }

    /// Numeric column `column` (`rfm`: where the purchase history is): held, or `base(column)`
    /// (the store's value, or 0), then moved by the purchases since. After `n` purchases of
    /// amounts `a_1..a_n` on `frequency` f and `monetary_value` m: `frequency` f + n,
    /// `monetary_value` (m f + a_1 + ... + a_n) / (f + n) in double precision (the running
    /// mean of one purchase after another, rounded once), `recency` the `age`.
    pub fn number(&self, column: usize, rfm: &RfmColumns, base: impl Fn(usize) -> f32) -> f32 {
        let settled = |column: usize| self.held(column).unwrap_or_else(|| base(column));
        if self.purchases == 0 || !rfm.changed_by_purchase().any(|c| c == column) {
            return settled(column);
        }
        let purchases = f64::from(self.purchases);
        let frequency = || rfm.frequency.map(|i| f64::from(settled(i)));
        if Some(column) == rfm.frequency {
            (frequency().unwrap_or(0.0) + purchases) as f32
        } else if Some(column) == rfm.monetary_value {
            let mean = f64::from(settled(column));
            match frequency() {
                Some(frequency) => {
                    ((mean * frequency + self.spent) / (frequency + purchases)) as f32
                }
                None => self.spent as f32,
            }
        } else {
            // `recency`, with `age` (`changed_by_purchase`): the latest purchase is now.
            rfm.age.map_or(0.0, settled)
        }
    }

    /// The text columns once a `set` changed one (`None`: the store's).
    pub fn texts(&self) -> Option<&[String]> {
        self.set.as_ref()?.texts.as_deref()
    }

    /// The numeric columns held, ascending by column.
    fn held_slice(&self) -> &[HeldNumber] {
        self.set.as_ref().map_or(&[], |set| &set.held[..])
    }

    /// The bits of the first and last numbers held (0 when none): reads that bring them, and
    /// every line between, into the cache.
    pub fn held_bits(&self) -> u32 {
        let bits = |held: Option<&HeldNumber>| held.map_or(0, |held| held.value.to_bits());
        let held = self.held_slice();
        bits(held.first()) ^ bits(held.last())
    }

    /// Holds `numbers` (`(column, value)`): each replaces the value held, or is inserted in
    /// column order.
    fn hold(&mut self, numbers: &[(usize, f32)]) {
        let held = &mut self.set.get_or_insert_with(Box::default).held;
        for &(column, value) in numbers {
            let column = u32::try_from(column).expect("a store has fewer than 2^32 columns");
            let number = HeldNumber { column, value };
            match held.iter().position(|held| held.column >= column) {
                Some(at) if held[at].column == column => held[at] = number,
                Some(at) => held.insert(at, number),
                None => held.push(number),
            }
        }
    }

    /// Holds the purchase history columns the purchases since moved, as they read now, and
    /// forgets the purchases.
    fn settle(&mut self, rfm: &RfmColumns, base: impl Fn(usize) -> f32) {
        if self.purchases == 0 {
            return;
        }
        let mut numbers = [(0, 0.0); 3];
        let mut count = 0;
        for column in rfm.changed_by_purchase() {
            numbers[count] = (column, self.number(column, rfm, &base));
            count += 1;
        }
        (self.purchases, self.spent) = (0, 0.0);
        self.hold(&numbers[..count]);
    }

    /// Applies what `event` changes in the columns: a `set` its column (`numeric` or `text`
    /// index, resolved and checked by the caller; `texts` gives the row's texts before the
    /// first text changes; a set of a purchase history column first settles the purchases,
    /// `base` giving the store's value of a column the row does not hold), a purchase the
    /// purchase history (counted: see [`Row::number`]). Contacts and responses change no
    /// column.
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
                (SetValue::Number(v), ColumnRef::Number(i)) => {
                    if rfm.holds(i) {
                        self.settle(rfm, base);
                    }
                    self.hold(&[(i, *v as f32)]);
                }
                (SetValue::Text(text), ColumnRef::Text(i)) => {
                    let set = self.set.get_or_insert_with(Box::default);
                    set.texts.get_or_insert_with(texts)[i].clone_from(text)
                }
                _ => unreachable!("the kind of a set's value is checked before it is logged"),
            },
            (Event::Purchase { amount, .. }, _) => {
                if self.purchases == u32::MAX {
                    self.settle(rfm, base);
                }
                self.purchases += 1;
                self.spent = if rfm.frequency.is_some() {
                    self.spent + amount
                } else {
                    *amount
                };
            }
            _ => {}
        }
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
    use std::collections::VecDeque;

    use super::*;
    use crate::limits::{MAX_EVENT_TEXT_BYTES, RECENT_EVENTS};

    /// Applies a purchase of `amount` to `row`, checking it reads nothing.
    fn purchase(row: &mut Row, rfm: &RfmColumns, amount: f64) {
        row.apply(
            &Event::Purchase { amount, time: 0 },
            None,
            rfm,
            |_| unreachable!("a purchase reads no column"),
            || unreachable!("a purchase changes no text"),
        )
    }

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
        let base = |column: usize| stored[column];
        let numbers = |row: &Row| -> Vec<f32> {
            (0..stored.len())
                .map(|column| row.number(column, &rfm, base))
                .collect()
        };
        let mut row = Row::new(Some(4));
        let purchase = |row: &mut Row, amount: f64| purchase(row, &rfm, amount);
        purchase(&mut row, 8.0);
        assert_eq!(row.stored(), Some(4));
        assert_eq!(row.held_numbers().count(), 0);
        // (5 * 2 + 8) / 3
        assert_eq!(numbers(&row), [3.0, 30.0, 30.0, 6.0, 7.0]);
        purchase(&mut row, 10.0);
        // (5 * 2 + 8 + 10) / 4
        assert_eq!(numbers(&row), [4.0, 30.0, 30.0, 7.0, 7.0]);
        // A set holds its column, in column order, and changes nothing else.
        let set = |row: &mut Row, column: usize, value: f64| {
            row.apply(
                &Event::Set {
                    column: String::new(),
                    value: SetValue::Number(value),
                },
                Some(ColumnRef::Number(column)),
                &rfm,
                base,
                || unreachable!("a numeric set changes no text"),
            )
        };
        set(&mut row, 4, 9.5);
        let held: Vec<(usize, f32)> = row.held_numbers().collect();
        assert_eq!(held, [(4, 9.5)]);
        assert_eq!(numbers(&row), [4.0, 30.0, 30.0, 7.0, 9.5]);
        // A set of a purchase history column settles the purchases first: the recency they
        // left stays when the age moves.
        set(&mut row, 2, 40.0);
        let held: Vec<(usize, f32)> = row.held_numbers().collect();
        assert_eq!(held, [(0, 4.0), (1, 30.0), (2, 40.0), (3, 7.0), (4, 9.5)]);
        assert_eq!(numbers(&row), [4.0, 30.0, 40.0, 7.0, 9.5]);
        purchase(&mut row, 12.0);
        // (7 * 4 + 12) / 5
        assert_eq!(numbers(&row), [5.0, 40.0, 40.0, 8.0, 9.5]);
        assert_eq!(Row::new(None).stored(), None);
    }

    #[test]
    fn without_a_frequency_a_purchase_leaves_its_amount_as_the_mean() {
        let rfm = RfmColumns {
            monetary_value: Some(0),
            ..RfmColumns::default()
        };
        let mut row = Row::new(None);
        for amount in [3.0, 8.0] {
            purchase(&mut row, &rfm, amount);
            assert_eq!(row.number(0, &rfm, |_| 0.0), amount as f32);
        }
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
        let as_sequence: VecDeque<ContactRecord> = history.contacts.iter().collect();
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

    #[test]
    fn contacts_keep_the_latest_of_every_size_past_the_cap() {
        let mut contacts = Contacts::default();
        let mut model = VecDeque::new();
        for sequence in 1..=(3 * MAX_CONTACT_HISTORY as u64 + 7) {
            let text = "t".repeat((sequence as usize * 37) % (MAX_EVENT_TEXT_BYTES + 1));
            let event = if sequence % 3 == 0 {
                Event::Response {
                    campaign: text.clone(),
                    offer: "o".into(),
                    value: sequence as f64 / 7.0,
                    time: -(sequence as i64),
                }
            } else {
                Event::Contact {
                    channel: "email".into(),
                    campaign: "c".into(),
                    offer: text.clone(),
                    time: sequence as i64,
                }
            };
            contacts.push(sequence, &event);
            model.push_back(ContactRecord::from(LoggedEvent { sequence, event }));
            if model.len() > MAX_CONTACT_HISTORY {
                model.pop_front();
            }
            assert_eq!(contacts.len(), model.len());
            if sequence % 97 == 0 {
                assert!(contacts.iter().eq(model.iter().cloned()), "at {sequence}");
            }
        }
        assert!(contacts.iter().eq(model.iter().cloned()));
        assert!(contacts.iter().rev().eq(model.iter().rev().cloned()));
        // Dropped entries are shifted out: the buffer holds at most twice what is kept.
        let log = contacts.0.as_ref().unwrap();
        let kept = log.bytes.len() - log.start as usize;
        assert!(log.bytes.len() <= 2 * kept + 2 + compact::MAX_ENTRY_BYTES);
    }

    #[test]
    fn a_checkpoint_contact_no_request_could_have_made_is_refused() {
        let config = bincode::config::standard();
        let long = VecDeque::from([ContactRecord {
            sequence: 1,
            time: 0,
            campaign: "x".repeat(MAX_EVENT_TEXT_BYTES + 1),
            offer: String::new(),
            touch: Touch::Response { value: 1.0 },
        }]);
        let encoded = bincode::encode_to_vec(&long, config).unwrap();
        assert!(bincode::decode_from_slice::<Contacts, _>(&encoded, config).is_err());
        let nan = VecDeque::from([ContactRecord {
            sequence: 1,
            time: 0,
            campaign: "spring".into(),
            offer: String::new(),
            touch: Touch::Response { value: f64::NAN },
        }]);
        let encoded = bincode::encode_to_vec(&nan, config).unwrap();
        let error = bincode::decode_from_slice::<Contacts, _>(&encoded, config).unwrap_err();
        assert!(error.to_string().contains("the number NaN"), "{error}");
    }

    use proptest::prelude::*;

    proptest! {
        /// Against the documented update applied one purchase after another in double
        /// precision: purchases and `set`s of the purchase history in any order, on a store's
        /// row and on a new customer's.
        #[test]
        fn purchases_and_sets_agree_with_one_update_after_another(
            stored in proptest::collection::vec(0.0f32..1e4, 4),
            in_store in proptest::bool::ANY,
            events in proptest::collection::vec(
                proptest::prop_oneof![
                    (0.0f64..1e4).prop_map(|amount| (None, amount)),
                    (0..4usize, 0.0f64..1e4).prop_map(|(column, value)| (Some(column), value)),
                ],
                1..40,
            ),
        ) {
            let rfm = RfmColumns {
                frequency: Some(0),
                recency: Some(1),
                age: Some(2),
                monetary_value: Some(3),
            };
            let base = |column: usize| if in_store { stored[column] } else { 0.0 };
            let mut row = Row::new(in_store.then_some(0));
            let mut model: Vec<f64> = (0..4).map(|c| f64::from(base(c))).collect();
            for (set, value) in events {
                match set {
                    None => {
                        row.apply(&Event::Purchase { amount: value, time: 0 }, None, &rfm, base, || unreachable!());
                        let (f, m) = (model[0], model[3]);
                        model[3] = (m * f + value) / (f + 1.0);
                        model[0] = f + 1.0;
                        model[1] = model[2];
                    }
                    Some(column) => {
                        let set = Event::Set { column: String::new(), value: SetValue::Number(value) };
                        row.apply(&set, Some(ColumnRef::Number(column)), &rfm, base, || unreachable!());
                        model[column] = f64::from(value as f32);
                    }
                }
                for (column, &want) in model.iter().enumerate() {
                    let got = f64::from(row.number(column, &rfm, base));
                    prop_assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "column {} is {} where one update after another gives {}", column, got, want
                    );
                }
            }
        }

        /// Against a map of column to value: numbers held in any order, columns repeated
        /// within one change and across changes.
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
