//! The body of the `campaign_definition` fuzz target, compiled only with the `fuzzing` feature
//! (as `store::fuzz` and `api::fuzz`): a definition parsed, bound to a three-customer table and
//! solved; a plan must keep every limit, count and eligibility.

use std::sync::Arc;

use super::contacts::ContactHistory;
use super::definition::CampaignDefinition;
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
    let text = "customer_id,margin,retention,cost,segment\n\
                1,50,0.8,1.5,gold\n2,150,0.5,2,silver\n3,-5,0.9,0.25,basic\n";
    let parsed =
        csv::read_csv(text.as_bytes(), "fixture.csv", &mut |_| {}).expect("the fixture parses");
    let mut store_bytes = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut store_bytes)
        .expect("writing to memory cannot fail");
    let store = Store::from_bytes(&store_bytes).expect("the fixture store opens");
    let table = Table::score(Arc::new(store), ScoreParams::default(), Default::default())
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
