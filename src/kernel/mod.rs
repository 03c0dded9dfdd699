//! Batch kernels over columns: CRV scoring ([`score`]) and value tiers ([`tiers`]). This is the
//! only place rayon splits work: chunks have a fixed size and are reduced in chunk order, so
//! every result, f64 totals included, is the same for any number of threads.

pub mod crv;
pub mod tier;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

pub use crv::{CrvInputs, ScoreTotals, annuity_factor, crv_scalar, score_lanes};
pub use tier::{TierScheme, TierStats, TierSummary, Tiers};

use crate::error::Result;
use crate::model::{ScoreParams, Tier};
use crate::store::Store;

/// A store scored: every customer's CRV, the totals, and the tiers, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// CRV per row.
    pub crv: Vec<f32>,
    /// Sums over all customers.
    pub totals: ScoreTotals,
    /// Tier, rank and percentile per row, and the per-tier summary.
    pub tiers: Tiers,
    /// Time the CRV kernel took.
    pub score_time: Duration,
    /// Time the tiers took.
    pub tier_time: Duration,
}

/// Scores every customer of `store` and sorts them into tiers: the pipeline behind `crv score`,
/// `crv select` and the server. Validates the parameters and the columns first.
pub fn score_store(store: &Store, params: &ScoreParams, scheme: &TierScheme) -> Result<Scored> {
    params.validate()?;
    scheme.validate()?;
    let inputs = CrvInputs::from_store(store)?;
    let started = Instant::now();
    let mut crv = vec![0.0f32; inputs.len()];
    let totals = score(&inputs, params, &mut crv);
    let score_time = started.elapsed();
    let started = Instant::now();
    let tiers = tiers(&crv, store.ids(), scheme);
    Ok(Scored {
        crv,
        totals,
        tiers,
        score_time,
        tier_time: started.elapsed(),
    })
}

/// Every customer's CRV into `out` (same rows as `inputs`), on the rayon pool; returns the
/// totals. Values and totals are bit-identical to [`score_lanes`] on one thread.
///
/// `inputs` and `params` must be validated at the edge ([`CrvInputs::validate`],
/// [`ScoreParams::validate`]). Allocates one [`ScoreTotals`] per 16 Ki rows, never per customer.
///
/// # Panics
///
/// If the columns' lengths differ or `out.len()` differs from them, or the horizon is zero
/// periods (unvalidated `params`).
pub fn score(inputs: &CrvInputs<'_>, params: &ScoreParams, out: &mut [f32]) -> ScoreTotals {
    inputs.expect_rows(out);
    let lanes = crv::Lanes::new(params);
    let chunk_totals: Vec<ScoreTotals> = out
        .par_chunks_mut(crv::CHUNK_ROWS)
        .enumerate()
        .map(|(chunk, out)| {
            lanes.score_chunk(&inputs.slice(chunk * crv::CHUNK_ROWS, out.len()), out)
        })
        .collect();
    chunk_totals
        .into_iter()
        .fold(ScoreTotals::default(), ScoreTotals::merge)
}

/// Every customer's tier, rank and percentile from its CRV, with the per-tier summary.
///
/// Ranks order CRV descending (`f32::total_cmp`), ties by customer id ascending; `ids` must be
/// unique (as in a store). CRV values should be finite: an infinite CRV makes the value shares
/// NaN. `scheme` must be validated ([`TierScheme::validate`]). Costs O(n) time and 16 bytes
/// per customer of scratch besides the output; faster when `ids` ascend with the row (no tie
/// breaking by id lookups is needed then).
///
/// # Panics
///
/// If `crv` and `ids` differ in length, or there are more than `u32::MAX` customers.
pub fn tiers(crv: &[f32], ids: &[u64], scheme: &TierScheme) -> Tiers {
    assert_eq!(crv.len(), ids.len(), "one customer id per CRV");
    assert!(
        u32::try_from(crv.len()).is_ok(),
        "ranks are u32: at most u32::MAX customers"
    );
    let ids_ascending = ids.is_sorted();
    let words: Vec<u64> = crv
        .par_iter()
        .enumerate()
        .map(|(row, &value)| tier::order_word(value, row))
        .collect();
    let mut sorted = vec![0u64; crv.len()];
    let lengths = scatter_to_buckets(&words, &mut sorted);
    let mut scratch = words;
    tier::split_lengths(&mut sorted, &lengths)
        .into_par_iter()
        .zip(tier::split_lengths(&mut scratch, &lengths))
        .for_each(|(bucket, scratch)| tier::sort_bucket(bucket, scratch, ids, ids_ascending));
    drop(scratch);
    let summary = tier::summarise(&sorted, scheme);
    let rank = scatter_ranks(&sorted);
    drop(sorted);
    let mut tier = vec![Tier::N; crv.len()];
    let mut percentile = vec![0.0f32; crv.len()];
    tier.par_chunks_mut(crv::CHUNK_ROWS)
        .zip(percentile.par_chunks_mut(crv::CHUNK_ROWS))
        .zip(rank.par_chunks(crv::CHUNK_ROWS))
        .for_each(|((tier, percentile), rank)| {
            for ((tier, percentile), &rank) in tier.iter_mut().zip(percentile).zip(rank) {
                *tier = summary.tier_of_rank(rank);
                *percentile = tier::percentile(rank, crv.len());
            }
        });
    Tiers {
        tier,
        rank,
        percentile,
        summary,
    }
}

/// Parts that bucket their words in parallel in the first sorting step. The result does not
/// depend on it: each part owns its own slice of every bucket, in part order.
const BUCKET_PARTS: usize = 4;

/// [`tier::scatter_to_buckets`] of all `words` into `sorted` (stable), in parallel parts;
/// returns the bucket lengths.
fn scatter_to_buckets(words: &[u64], sorted: &mut [u64]) -> Vec<usize> {
    let part_rows = words.len().div_ceil(BUCKET_PARTS).max(1);
    let part_lengths: Vec<Vec<usize>> = words
        .par_chunks(part_rows)
        .map(tier::bucket_lengths)
        .collect();
    // Bucket-major, part-minor: bucket b of part p is slice b * parts + p.
    let slice_lengths: Vec<usize> = (0..tier::BUCKETS)
        .flat_map(|bucket| part_lengths.iter().map(move |lengths| lengths[bucket]))
        .collect();
    let mut part_targets: Vec<Vec<&mut [u64]>> = part_lengths.iter().map(|_| Vec::new()).collect();
    for (slice, target) in tier::split_lengths(sorted, &slice_lengths)
        .into_iter()
        .enumerate()
    {
        part_targets[slice % part_lengths.len()].push(target);
    }
    words
        .par_chunks(part_rows)
        .zip(part_targets)
        .for_each(|(words, targets)| tier::scatter_to_buckets(words, targets));
    (0..tier::BUCKETS)
        .map(|bucket| part_lengths.iter().map(|lengths| lengths[bucket]).sum())
        .collect()
}

/// Each row's 1-based rank from the words in rank order. Every slot is stored exactly once, so
/// relaxed atomics make the parallel random writes safe without ordering cost.
fn scatter_ranks(sorted: &[u64]) -> Vec<u32> {
    let rank: Vec<AtomicU32> = (0..sorted.len())
        .into_par_iter()
        .map(|_| AtomicU32::new(0))
        .collect();
    sorted
        .par_chunks(crv::CHUNK_ROWS)
        .enumerate()
        .for_each(|(chunk, words)| {
            let first_rank = chunk * crv::CHUNK_ROWS + 1;
            for (index, &word) in words.iter().enumerate() {
                rank[tier::row_of(word)].store((first_rank + index) as u32, Ordering::Relaxed);
            }
        });
    rank.into_iter().map(AtomicU32::into_inner).collect()
}
