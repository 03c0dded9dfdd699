//! What the live server knows of one customer beyond the store: the events applied to them
//! (their count, the most recent ones), their contact history (contacts and responses tagged
//! with campaign and offer), and, once an event changed a column, their whole row with its
//! value. Applying an event is O(columns) plus, under a purchase model, one evaluation of the
//! model over the horizon.

use std::collections::VecDeque;

use bincode::{Decode, Encode};

use super::event::{Event, SetValue};
use crate::limits::{MAX_CONTACT_HISTORY, RECENT_EVENTS};

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
    /// The most recent events, oldest first, at most [`RECENT_EVENTS`].
    pub recent: VecDeque<LoggedEvent>,
    /// The most recent contacts and responses, oldest first, at most [`MAX_CONTACT_HISTORY`].
    pub contacts: VecDeque<ContactRecord>,
}

impl History {
    /// Records `event` (number `sequence`).
    pub fn record(&mut self, sequence: u64, event: &Event) {
        self.events += 1;
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        } else if self.recent.capacity() == 0 {
            // Most customers have one or two events: room for one, not the default four
            // (a replay of millions of customers allocates gigabytes less).
            self.recent.reserve_exact(1);
        }
        self.recent.push_back(LoggedEvent {
            sequence,
            event: event.clone(),
        });
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
        if self.contacts.len() == MAX_CONTACT_HISTORY {
            self.contacts.pop_front();
        }
        self.contacts.push_back(ContactRecord {
            sequence,
            time: contact.0,
            campaign: contact.1.clone(),
            offer: contact.2.clone(),
            touch: contact.3,
        });
    }
}

/// A customer's columns as events left them: every numeric and text column of the store, in
/// the store's order of each kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Numeric columns.
    pub numbers: Vec<f32>,
    /// Text columns.
    pub texts: Vec<String>,
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

impl Row {
    /// Applies what `event` changes in the columns: a `set` its column (`numeric` or `text`
    /// index, resolved and checked by the caller), a purchase the purchase history (see
    /// [`Row::purchase`]). Contacts and responses change no column.
    pub fn apply(&mut self, event: &Event, column: Option<ColumnRef>, rfm: &RfmColumns) {
        match (event, column) {
            (Event::Set { value, .. }, Some(column)) => match (value, column) {
                (SetValue::Number(v), ColumnRef::Number(i)) => self.numbers[i] = *v as f32,
                (SetValue::Text(text), ColumnRef::Text(i)) => self.texts[i].clone_from(text),
                _ => unreachable!("the kind of a set's value is checked before it is logged"),
            },
            (Event::Purchase { amount, .. }, _) => self.purchase(*amount, rfm),
            _ => {}
        }
    }

    /// A repeat purchase of `amount` at the end of observation: `frequency` + 1, `recency` =
    /// `age` (the latest purchase is now), `monetary_value` the running mean of the repeat
    /// purchases including this one. Columns the store lacks are left out.
    fn purchase(&mut self, amount: f64, rfm: &RfmColumns) {
        let frequency = rfm.frequency.map_or(0.0, |i| f64::from(self.numbers[i]));
        if let Some(i) = rfm.monetary_value {
            let mean = f64::from(self.numbers[i]);
            self.numbers[i] = ((mean * frequency + amount) / (frequency + 1.0)) as f32;
        }
        if let Some(i) = rfm.frequency {
            self.numbers[i] = (frequency + 1.0) as f32;
        }
        if let (Some(recency), Some(age)) = (rfm.recency, rfm.age) {
            self.numbers[recency] = self.numbers[age];
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
    use super::*;

    #[test]
    fn a_purchase_updates_the_history_columns() {
        let rfm = RfmColumns {
            frequency: Some(0),
            recency: Some(1),
            age: Some(2),
            monetary_value: Some(3),
        };
        let mut row = Row {
            numbers: vec![2.0, 10.0, 30.0, 5.0],
            texts: vec![],
        };
        row.apply(
            &Event::Purchase {
                amount: 8.0,
                time: 0,
            },
            None,
            &rfm,
        );
        assert_eq!(row.numbers, vec![3.0, 30.0, 30.0, 6.0]);
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
        assert_eq!(history.contacts[0].sequence, 6);
    }
}
