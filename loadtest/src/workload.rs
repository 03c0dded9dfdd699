//! What the requests ask for: the served store's own ids (read once, so every lookup names a
//! real customer), a pool of ids known to be absent from it for deliberate misses, and how ids
//! are picked (uniformly, or Zipf-popular over a fixed random permutation).

use std::path::Path;

use crv::ScoreParams;
use crv::api::binary::CustomerScore;
use crv::kernel::TierScheme;

use crate::error::{Error, Result};
use crate::zipf::Zipf;

/// Absent ids drawn once; misses cycle through them at random.
const ABSENT_POOL: usize = 4_096;
/// Absent ids stay below 2^53 so that every JSON reader sees them exactly.
const MAX_JSON_SAFE_ID: u64 = 1 << 53;

/// How popular each customer is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Popularity {
    /// Every customer equally likely.
    Uniform,
    /// Zipf-distributed over a fixed random permutation of the customers, with this exponent.
    Zipf {
        /// The Zipf exponent `s` (1 is classic Zipf).
        exponent: f64,
    },
}

/// One picked id and whether the store holds it (what the answer must say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// The customer id to ask for.
    pub id: u64,
    /// `true` when the id is in the store: 200 expected; `false`: a deliberate miss, 404.
    pub present: bool,
    /// The CRV, tier, rank and percentile the answer must carry, when the workload knows the
    /// served scores ([`Workload::expect_scores`]); `None`: only the id is checked.
    pub score: Option<CustomerScore>,
}

/// The ids a run draws from and the rule it draws by.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The store's ids in a fixed random order: Zipf rank `k` is customer `by_rank[k]`.
    by_rank: Vec<u64>,
    /// Ids not in the store.
    absent: Vec<u64>,
    /// `Some` for Zipf popularity.
    zipf: Option<Zipf>,
    /// Share of picks that are deliberate misses, in [0, 1].
    miss_rate: f64,
    /// The served score of `by_rank[k]` at `k`, when known.
    scores: Option<Vec<CustomerScore>>,
}

impl Workload {
    /// Reads the ids of the store at `path` and builds a workload over them; `seed` fixes the
    /// permutation and the absent ids.
    pub fn from_store(
        path: &Path,
        popularity: Popularity,
        miss_rate: f64,
        seed: u64,
    ) -> Result<Workload> {
        let store = crv::Store::open(path).map_err(Error::Store)?;
        Workload::new(store.ids().to_vec(), popularity, miss_rate, seed)
    }

    /// A workload over `ids` (the store's customers, unique); `seed` fixes the permutation
    /// and the absent ids.
    pub fn new(
        mut ids: Vec<u64>,
        popularity: Popularity,
        miss_rate: f64,
        seed: u64,
    ) -> Result<Workload> {
        if ids.is_empty() {
            return Err(Error::Usage("the store holds no customers".into()));
        }
        if !(0.0..=1.0).contains(&miss_rate) {
            return Err(Error::Usage(format!(
                "--miss-rate {miss_rate} is not a share in [0, 1]"
            )));
        }
        let zipf = match popularity {
            Popularity::Uniform => None,
            Popularity::Zipf { exponent } if exponent.is_finite() && exponent >= 0.0 => {
                Some(Zipf::new(ids.len(), exponent))
            }
            Popularity::Zipf { exponent } => {
                return Err(Error::Usage(format!(
                    "--zipf-s {exponent} must be a finite number >= 0"
                )));
            }
        };
        let mut rng = fastrand::Rng::with_seed(seed);
        ids.sort_unstable();
        let absent = absent_ids(&ids, &mut rng);
        // Popular customers are spread over the id space, not the lowest ids.
        rng.shuffle(&mut ids);
        Ok(Workload {
            by_rank: ids,
            absent,
            zipf,
            miss_rate,
            scores: None,
        })
    }

    /// The same workload, each pick carrying the score the server must answer for it: the
    /// store at `path` scored by the library with the server's `params` and `scheme`.
    pub fn expect_scores(
        mut self,
        path: &Path,
        params: &ScoreParams,
        scheme: &TierScheme,
    ) -> Result<Workload> {
        let store = crv::Store::open(path).map_err(Error::Store)?;
        let table = crv::Table::score(std::sync::Arc::new(store), *params, *scheme)
            .map_err(Error::Store)?;
        let (store, crv, tiers) = (table.store(), table.crv(), table.tiers());
        let scores = self
            .by_rank
            .iter()
            .map(|&id| {
                let row = store.row_of(crv::CustomerId(id)).ok_or_else(|| {
                    Error::Usage(format!("customer {id} is not in {}", path.display()))
                })?;
                Ok(CustomerScore {
                    crv: crv[row],
                    tier: tiers.tier[row],
                    rank: tiers.rank[row],
                    percentile: tiers.percentile[row],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.scores = Some(scores);
        Ok(self)
    }

    /// How many customers the store holds.
    pub fn customers(&self) -> usize {
        self.by_rank.len()
    }

    /// Picks one id: a deliberate miss with probability `miss_rate`, otherwise a customer by
    /// the workload's popularity.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> Pick {
        if self.miss_rate > 0.0 && rng.f64() < self.miss_rate {
            return Pick {
                id: self.absent[rng.usize(..self.absent.len())],
                present: false,
                score: None,
            };
        }
        let rank = match &self.zipf {
            Some(zipf) => zipf.sample(rng),
            None => rng.usize(..self.by_rank.len()),
        };
        Pick {
            id: self.by_rank[rank],
            present: true,
            score: self.scores.as_ref().map(|scores| scores[rank]),
        }
    }
}

/// [`ABSENT_POOL`] distinct ids below [`MAX_JSON_SAFE_ID`] that `sorted_ids` does not hold.
fn absent_ids(sorted_ids: &[u64], rng: &mut fastrand::Rng) -> Vec<u64> {
    let mut absent = Vec::with_capacity(ABSENT_POOL);
    while absent.len() < ABSENT_POOL {
        let id = rng.u64(..MAX_JSON_SAFE_ID);
        if sorted_ids.binary_search(&id).is_err() && !absent.contains(&id) {
            absent.push(id);
        }
    }
    absent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<u64> {
        (0..1_000).map(|i| i * 7 + 3).collect()
    }

    #[test]
    fn picks_without_misses_are_store_ids() {
        let store = ids();
        let workload = Workload::new(store.clone(), Popularity::Uniform, 0.0, 1).unwrap();
        let mut rng = fastrand::Rng::with_seed(2);
        for _ in 0..10_000 {
            let pick = workload.pick(&mut rng);
            assert!(pick.present && store.contains(&pick.id));
        }
    }

    #[test]
    fn misses_come_at_the_miss_rate_and_are_absent() {
        let store = ids();
        let workload = Workload::new(store.clone(), Popularity::Uniform, 0.25, 1).unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        let picks: Vec<Pick> = (0..40_000).map(|_| workload.pick(&mut rng)).collect();
        let misses: Vec<&Pick> = picks.iter().filter(|pick| !pick.present).collect();
        assert!((9_200..10_800).contains(&misses.len()), "{}", misses.len());
        assert!(misses.iter().all(|pick| !store.contains(&pick.id)));
    }

    #[test]
    fn zipf_popularity_favours_one_customer_per_rank() {
        let workload = Workload::new(ids(), Popularity::Zipf { exponent: 1.0 }, 0.0, 1).unwrap();
        let mut rng = fastrand::Rng::with_seed(4);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..50_000 {
            *counts.entry(workload.pick(&mut rng).id).or_insert(0) += 1;
        }
        // Rank 1 of 1,000 has probability 1 / H(1000) ~ 13.4%.
        let top = counts.values().max().copied().unwrap();
        assert!((6_200..7_200).contains(&top), "{top}");
    }

    #[test]
    fn flags_out_of_range_are_refused() {
        assert!(Workload::new(ids(), Popularity::Uniform, 1.5, 1).is_err());
        assert!(Workload::new(ids(), Popularity::Zipf { exponent: -1.0 }, 0.0, 1).is_err());
        assert!(Workload::new(Vec::new(), Popularity::Uniform, 0.0, 1).is_err());
    }
}
