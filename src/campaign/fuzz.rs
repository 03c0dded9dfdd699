//! The bodies of the `campaign_definition` and `contacts_csv` fuzz targets, compiled only with
//! the `fuzzing` feature (as `store::fuzz` and `api::fuzz`): a definition parsed, bound to a
//! three-customer table and solved (a plan must keep every limit, count and eligibility); a
//! contacts CSV read for that table's customers and the contact rules evaluated over it.

use std::sync::Arc;

use super::contacts::{ContactHistory, verdict};
use super::definition::{CampaignDefinition, ContactRule};
use crate::cancel::Cancel;
use crate::model::ScoreParams;
use crate::select::lagrange::Outcome as Solved;
use crate::store::fuzz::Outcome;
use crate::store::{Store, csv, writer};
use crate::table::Table;

/// Arbitrary bytes as a campaign definition: refused (not a definition), parsed but not bound
/// to the fixture table (an unknown column, a non-finite value), or bound and solved.
///
/// # Panics
/// When a plan exceeds a limit or a maximum count, misses a minimum, or gives an offer to a
/// customer not eligible for it.
pub fn campaign_definition(bytes: &[u8]) -> Outcome {
    let Ok(definition) = CampaignDefinition::parse(bytes, "fuzz.json") else {
        return Outcome::Refused;
    };
    let table = Table::score(
        Arc::new(fixture()),
        ScoreParams::default(),
        Default::default(),
    )
    .expect("the fixture scores");
    let limits: Vec<f64> = definition.resources.iter().map(|(_, l)| *l).collect();
    let offers: Vec<(u64, Option<u64>)> =
        definition.offers.iter().map(|o| (o.min, o.max)).collect();
    let Ok(bound) = definition.bind(&table, &ContactHistory::default(), 0, &Cancel::default())
    else {
        return Outcome::Opened;
    };
    let plan = bound.solve(std::time::Duration::ZERO, Cancel::default());
    if let Solved::Plan(solved) = &plan.outcome {
        for (k, limit) in limits.iter().enumerate() {
            assert!(
                solved.used[k] <= *limit * (1.0 + 1e-12),
                "resource {k} over its limit"
            );
        }
        for (o, (min, max)) in offers.iter().enumerate() {
            assert!(solved.counts[o] >= *min, "offer {o} below its minimum");
            assert!(
                max.is_none_or(|m| solved.counts[o] <= m),
                "offer {o} above its maximum"
            );
        }
        for i in 0..table.rows() {
            assert!(plan.assignment_row(solved, i).is_some() == solved.offer_of(i).is_some());
        }
    }
    Outcome::Verified
}

/// The three customers (ids 1, 2, 3) both targets work on.
fn fixture() -> Store {
    let text = "customer_id,margin,retention,cost,segment\n\
                1,50,0.8,1.5,gold\n2,150,0.5,2,silver\n3,-5,0.9,0.25,basic\n";
    let parsed =
        csv::read_csv(text.as_bytes(), "fixture.csv", &mut |_| {}).expect("the fixture parses");
    let mut store_bytes = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut store_bytes)
        .expect("writing to memory cannot fail");
    Store::from_bytes(&store_bytes).expect("the fixture store opens")
}

/// Arbitrary bytes as a `contacts.csv` for the fixture's customers: refused (a bad header,
/// line or cell), or read and every customer's rules evaluated.
///
/// # Panics
/// When a read history loses or invents a contact (their number is not the file's records'),
/// or a rule's verdict names a rule or offer that does not exist.
pub fn contacts_csv(bytes: &[u8]) -> Outcome {
    let Ok(history) = ContactHistory::from_reader(bytes, "fuzz.csv", &fixture()) else {
        return Outcome::Refused;
    };
    let records = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes)
        .records()
        .count();
    let customers = history.customers();
    let contacts: usize = customers.iter().map(|&id| history.contacts(id).len()).sum();
    assert_eq!(contacts, records, "every record is one contact");
    let rules = [
        ContactRule::MaxContacts {
            max_contacts: 1,
            within_days: 30.0,
            channel: Some("email".to_string()),
        },
        ContactRule::Spacing {
            offer: "B".to_string(),
            not_within_days: 14.0,
            of_offer: "A".to_string(),
        },
    ];
    let offers = ["A", "B"];
    for id in customers {
        let last = history.contacts(id).iter().map(|c| c.time_micros).max();
        let seen = verdict(&rules, &offers, &history, id, last.unwrap_or(0));
        assert!(
            seen.excluded_by.is_none_or(|r| r == 0),
            "only rule 0 excludes"
        );
        assert_eq!(seen.offer_excluded_by.len(), offers.len());
        assert!(
            seen.offer_excluded_by[0].is_none(),
            "no rule restricts offer A"
        );
        assert!(seen.offer_excluded_by[1].is_none_or(|r| r == 1));
    }
    Outcome::Verified
}
