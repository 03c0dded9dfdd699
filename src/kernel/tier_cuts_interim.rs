//! Interim cut points from the full sort, until the selection-based ones land.

use super::tier::{TierScheme, TierSummary};
use crate::model::Tier;

/// The tier cut points: the summary and the last customer of A, B and C in rank order.
#[derive(Debug, Clone, PartialEq)]
pub struct TierCuts {
    /// Counts, value and cut points per tier.
    pub summary: TierSummary,
    /// `(crv, id)` of the last customer of A, B and C (`None` when the tier is empty).
    last: [Option<(f32, u64)>; 3],
}

impl TierCuts {
    /// The tier of a customer with this CRV and id.
    pub fn tier(&self, crv: f32, id: u64) -> Tier {
        if crv.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Tier::N;
        }
        for (tier, last) in [Tier::A, Tier::B, Tier::C].into_iter().zip(self.last) {
            if let Some((last_crv, last_id)) = last
                && match crv.total_cmp(&last_crv) {
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => id <= last_id,
                    std::cmp::Ordering::Less => false,
                }
            {
                return tier;
            }
        }
        Tier::N
    }
}

/// The cut points of `crv` (ids `ids`) under `scheme`.
pub fn tier_cuts(crv: &[f32], ids: &[u64], scheme: &TierScheme) -> TierCuts {
    let tiers = super::tiers(crv, ids, scheme);
    let mut last = [None; 3];
    let mut end = 0u64;
    for (index, tier) in [Tier::A, Tier::B, Tier::C].into_iter().enumerate() {
        let count = tiers.summary.get(tier).count;
        end += count;
        if count > 0 {
            let row = tiers
                .rank
                .iter()
                .position(|&rank| u64::from(rank) == end)
                .expect("every rank is some row's");
            last[index] = Some((crv[row], ids[row]));
        }
    }
    TierCuts {
        summary: tiers.summary,
        last,
    }
}
