//! Contact histories and the campaign's contact rules over them. [`ContactHistory`] is the one
//! history the rules and the campaign report read: each customer's past contacts and
//! responses, keyed by the store's customer id. It is filled from a `contacts.csv`
//! (`customer_id,time,channel,campaign,offer`: [`ContactHistory::read`]) on the command line,
//! or from the contacts and responses a live server holds (`crv serve --wal`:
//! `crate::live::Live::contact_history`); [`verdict`] evaluates the rules over either the
//! same way. Rules are evaluated as of one instant: a contact counts when its time is in
//! `(as_of - window, as_of]`; responses never count as contacts.

use std::collections::HashMap;
use std::path::Path;

use super::definition::ContactRule;
use crate::capped_records::CappedRecords;
use crate::error::{Error, Result, quote};
use crate::limits::MAX_CONTACT_RECORD_BYTES;
use crate::rfm::date::{MICROS_PER_DAY, parse_moment};
use crate::store::Store;

/// One past contact. Text fields are codes into the history's dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// When, microseconds since 1970 UTC.
    pub time_micros: i64,
    /// The channel's code.
    pub channel: u32,
    /// The campaign's code.
    pub campaign: u32,
    /// The offer's code.
    pub offer: u32,
}

/// One recorded response to a campaign's offer. Text fields are codes into the history's
/// dictionary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Response {
    /// When, microseconds since 1970 UTC.
    pub time_micros: i64,
    /// The campaign's code.
    pub campaign: u32,
    /// The offer's code (the code of `""` when the response named none).
    pub offer: u32,
    /// What the response was worth.
    pub value: f64,
}

/// One customer's contacts and responses, each in the order recorded.
#[derive(Debug, Clone, Default)]
struct Touches {
    contacts: Vec<Contact>,
    responses: Vec<Response>,
}

/// Each customer's past contacts and responses, as the contact rules and the campaign report
/// read them.
#[derive(Debug, Clone, Default)]
pub struct ContactHistory {
    by_customer: HashMap<u64, Touches>,
    codes: HashMap<String, u32>,
}

impl ContactHistory {
    /// The customers with at least one contact or response, ascending.
    pub fn customers(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.by_customer.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Customer `id`'s contacts, in the order recorded.
    pub fn contacts(&self, id: u64) -> &[Contact] {
        self.by_customer
            .get(&id)
            .map_or(&[], |touches| touches.contacts.as_slice())
    }

    /// Customer `id`'s responses, in the order recorded.
    pub fn responses(&self, id: u64) -> &[Response] {
        self.by_customer
            .get(&id)
            .map_or(&[], |touches| touches.responses.as_slice())
    }

    /// The code of `text` (a channel, campaign or offer name), `None` if nothing recorded has
    /// it.
    pub fn code(&self, text: &str) -> Option<u32> {
        self.codes.get(text).copied()
    }

    /// The code of `text`, given one if it has none yet.
    fn code_of(&mut self, text: &str) -> u32 {
        if let Some(&code) = self.codes.get(text) {
            return code;
        }
        let code = self.codes.len() as u32;
        self.codes.insert(text.to_string(), code);
        code
    }

    /// Records that customer `id` was contacted on `channel` for `campaign`'s `offer` at
    /// `time_micros`.
    pub fn add_contact(
        &mut self,
        id: u64,
        time_micros: i64,
        channel: &str,
        campaign: &str,
        offer: &str,
    ) {
        let contact = Contact {
            time_micros,
            channel: self.code_of(channel),
            campaign: self.code_of(campaign),
            offer: self.code_of(offer),
        };
        self.by_customer
            .entry(id)
            .or_default()
            .contacts
            .push(contact);
    }

    /// Records customer `id`'s response worth `value` to `campaign`'s `offer` (`""`: none
    /// named) at `time_micros`.
    pub fn add_response(
        &mut self,
        id: u64,
        time_micros: i64,
        campaign: &str,
        offer: &str,
        value: f64,
    ) {
        let response = Response {
            time_micros,
            campaign: self.code_of(campaign),
            offer: self.code_of(offer),
            value,
        };
        self.by_customer
            .entry(id)
            .or_default()
            .responses
            .push(response);
    }
}

/// The columns of `contacts.csv`, in this order.
pub const CONTACTS_CSV_HEADER: [&str; 5] = ["customer_id", "time", "channel", "campaign", "offer"];

impl ContactHistory {
    /// Reads `contacts.csv` for the customers of `store`; errors name the file, line and
    /// column.
    pub fn read(path: &Path, store: &Store) -> Result<ContactHistory> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        ContactHistory::from_reader(file, &path.display().to_string(), store)
    }

    /// Reads contacts CSV from `reader` (`file` names it in errors), keyed by `store`'s ids:
    /// whole numbers, or in a store of text ids the id as written (a text id the store does not
    /// have is no customer the rules could apply to, and is skipped).
    pub fn from_reader(
        reader: impl std::io::Read,
        file: &str,
        store: &Store,
    ) -> Result<ContactHistory> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(CappedRecords::new(reader, MAX_CONTACT_RECORD_BYTES));
        let header = csv.headers().map_err(|e| Error::CsvFile {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        if header.iter().collect::<Vec<_>>() != CONTACTS_CSV_HEADER {
            return Err(Error::CsvFile {
                file: file.to_string(),
                message: format!(
                    "the header must be `{}`, found {}",
                    CONTACTS_CSV_HEADER.join(","),
                    quote(&header.iter().collect::<Vec<_>>().join(","))
                ),
            });
        }
        let mut history = ContactHistory::default();
        let mut record = csv::StringRecord::new();
        loop {
            let line = csv.position().line() + 1;
            let read = csv.read_record(&mut record).map_err(|e| Error::Csv {
                file: file.to_string(),
                line,
                column: String::new(),
                message: e.to_string(),
            })?;
            if !read {
                break;
            }
            let line = record.position().map_or(line, |p| p.line());
            let cell_error = |column: usize, message: String| Error::Csv {
                file: file.to_string(),
                line,
                column: CONTACTS_CSV_HEADER[column].to_string(),
                message,
            };
            let time = parse_moment(record[1].trim().as_bytes())
                .map_err(|why| cell_error(1, format!("{}: {why}", quote(&record[1]))))?;
            let written = record[0].trim();
            let id = match store.text_ids() {
                None => written.parse::<u64>().map_err(|_| {
                    cell_error(0, format!("{} is not a customer id", quote(&record[0])))
                })?,
                Some(_) => match store.internal_id(written) {
                    Some(id) => id.0,
                    None => continue,
                },
            };
            history.add_contact(id, time.micros, &record[2], &record[3], &record[4]);
        }
        Ok(history)
    }
}

/// What the rules say about one customer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleVerdict {
    /// The rule (index in the campaign) that excludes the customer from every offer.
    pub excluded_by: Option<usize>,
    /// Per offer of the campaign: the rule that excludes the customer from it.
    pub offer_excluded_by: Vec<Option<usize>>,
}

/// Evaluates `rules` for customer `id` as of `as_of_micros`; `offers` are the campaign's offer
/// names.
pub fn verdict(
    rules: &[ContactRule],
    offers: &[&str],
    history: &ContactHistory,
    id: u64,
    as_of_micros: i64,
) -> RuleVerdict {
    let contacts = history.contacts(id);
    let within = |days: f64, c: &Contact| {
        let window = (days * MICROS_PER_DAY as f64) as i64;
        c.time_micros <= as_of_micros && c.time_micros > as_of_micros.saturating_sub(window)
    };
    let mut verdict = RuleVerdict {
        excluded_by: None,
        offer_excluded_by: vec![None; offers.len()],
    };
    for (r, rule) in rules.iter().enumerate() {
        match rule {
            ContactRule::MaxContacts {
                max_contacts,
                within_days,
                channel,
            } => {
                let channel = channel.as_deref().map(|c| history.code(c));
                let recent = contacts
                    .iter()
                    .filter(|c| within(*within_days, c))
                    .filter(|c| channel.is_none_or(|code| code == Some(c.channel)))
                    .count() as u64;
                if recent >= *max_contacts && verdict.excluded_by.is_none() {
                    verdict.excluded_by = Some(r);
                }
            }
            ContactRule::Spacing {
                offer,
                not_within_days,
                of_offer,
            } => {
                let Some(earlier) = history.code(of_offer) else {
                    continue;
                };
                let hit = contacts
                    .iter()
                    .any(|c| c.offer == earlier && within(*not_within_days, c));
                if let Some(o) = offers.iter().position(|name| name == offer)
                    && hit
                    && verdict.offer_excluded_by[o].is_none()
                {
                    verdict.offer_excluded_by[o] = Some(r);
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "customer_id,time,channel,campaign,offer\n\
        1,2026-11-20,email,spring,coupon\n\
        1,2026-11-25T10:00:00Z,call,spring,retention\n\
        2,2026-10-01,email,autumn,coupon\n\
        3,2026-11-28,email,spring,coupon\n";

    /// A store of the customers written in `ids` (a CSV column: numbers or text).
    fn store(ids: &[&str]) -> Store {
        let mut csv = String::from("customer_id,margin\n");
        for id in ids {
            csv += &format!("{id},1\n");
        }
        let parsed = crate::store::csv::read_csv(csv.as_bytes(), "c.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        crate::store::writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        Store::from_bytes(&bytes).unwrap()
    }

    fn read(csv: &str) -> Result<ContactHistory> {
        ContactHistory::from_reader(csv.as_bytes(), "contacts.csv", &store(&["1", "2", "3"]))
    }

    #[test]
    fn a_record_past_the_cap_is_an_error_naming_it() {
        let endless = format!(
            "{CSV}4,2026-11-28,email,\"{}",
            "x".repeat(MAX_CONTACT_RECORD_BYTES)
        );
        let message = read(&endless).unwrap_err().to_string();
        assert!(
            message.contains("contacts.csv")
                && message
                    .contains("record 6 (counting the header as 1) is longer than 16384 bytes"),
            "{message}"
        );
    }

    fn log() -> ContactHistory {
        read(CSV).unwrap()
    }

    fn as_of() -> i64 {
        parse_moment(b"2026-12-01").unwrap().micros
    }

    #[test]
    fn rules_count_contacts_inside_their_window() {
        let rules = [
            ContactRule::MaxContacts {
                max_contacts: 2,
                within_days: 30.0,
                channel: None,
            },
            ContactRule::Spacing {
                offer: "call_retention".into(),
                not_within_days: 14.0,
                of_offer: "coupon".into(),
            },
        ];
        let offers = ["call_retention", "email_coupon"];
        let log = log();
        let one = verdict(&rules, &offers, &log, 1, as_of());
        assert_eq!(one.excluded_by, Some(0));
        assert_eq!(one.offer_excluded_by, [Some(1), None]);
        let two = verdict(&rules, &offers, &log, 2, as_of());
        assert_eq!(
            two,
            RuleVerdict {
                excluded_by: None,
                offer_excluded_by: vec![None, None]
            }
        );
        let three = verdict(&rules, &offers, &log, 3, as_of());
        assert_eq!(three.excluded_by, None);
        assert_eq!(three.offer_excluded_by, [Some(1), None]);
        // Contacts after as_of do not count.
        let early = parse_moment(b"2026-11-01").unwrap().micros;
        assert_eq!(
            verdict(&rules, &offers, &log, 1, early),
            RuleVerdict {
                excluded_by: None,
                offer_excluded_by: vec![None, None]
            }
        );
        let by_channel = [ContactRule::MaxContacts {
            max_contacts: 1,
            within_days: 30.0,
            channel: Some("call".into()),
        }];
        assert_eq!(
            verdict(&by_channel, &offers, &log, 3, as_of()).excluded_by,
            None
        );
        assert_eq!(
            verdict(&by_channel, &offers, &log, 1, as_of()).excluded_by,
            Some(0)
        );
    }

    #[test]
    fn bad_contact_files_name_the_line_and_column() {
        let bad = "customer_id,time,channel,campaign,offer\n1,2026-11-20,email,spring,coupon\nx,2026-11-20,email,spring,coupon\n";
        let message = read(bad).unwrap_err().to_string();
        assert!(
            message.contains("contacts.csv: line 3, column `customer_id`"),
            "{message}"
        );
        let bad = "customer_id,time,channel,campaign,offer\n1,yesterday,email,spring,coupon\n";
        let message = read(bad).unwrap_err().to_string();
        assert!(message.contains("line 2, column `time`"), "{message}");
        let message = read("id,when\n").unwrap_err().to_string();
        assert!(message.contains("the header must be"), "{message}");
    }

    #[test]
    fn text_ids_are_read_as_the_store_keys_them() {
        let store = store(&["ann", "bob"]);
        let csv = "customer_id,time,channel,campaign,offer\n\
            bob,2026-11-20,email,spring,coupon\n\
            zed,2026-11-20,email,spring,coupon\n\
            bob,2026-11-21,call,spring,coupon\n";
        let history = ContactHistory::from_reader(csv.as_bytes(), "contacts.csv", &store).unwrap();
        let bob = store.internal_id("bob").unwrap().0;
        // `zed` is no customer of the store: skipped.
        assert_eq!(history.customers(), [bob]);
        assert_eq!(history.contacts(bob).len(), 2);
        // A bad time is an error whatever the id.
        let bad = "customer_id,time,channel,campaign,offer\nzed,soon,email,spring,coupon\n";
        let message = ContactHistory::from_reader(bad.as_bytes(), "contacts.csv", &store)
            .unwrap_err()
            .to_string();
        assert!(message.contains("line 2, column `time`"), "{message}");
    }
}
