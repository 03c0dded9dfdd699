//! Batch kernels over columns: CRV scoring ([`score`]) and value tiers ([`tiers`]). This is the
//! only place rayon splits work: chunks have a fixed size and are reduced in chunk order, so
//! every result, f64 totals included, is the same for any number of threads.

pub mod crv;
pub mod tier;

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

pub use crv::{CrvInputs, ScoreTotals, annuity_factor, crv_scalar, score_lanes};
pub use tier::{TierScheme, TierStats, TierSummary, Tiers};

use crate::model::ScoreParams;

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
    let lengths = tier::bucket_by_top_bits(&words, &mut sorted);
    let mut scratch = words;
    tier::split_lengths(&mut sorted, &lengths)
        .into_par_iter()
        .zip(tier::split_lengths(&mut scratch, &lengths))
        .for_each(|(bucket, scratch)| tier::sort_bucket(bucket, scratch, ids, ids_ascending));
    drop(scratch);
    let summary = tier::summarise(&sorted, scheme);
    let rank = scatter_ranks(&sorted);
    drop(sorted);
    let (tier, percentile) = rank
        .par_iter()
        .map(|&rank| {
            (
                summary.tier_of_rank(rank),
                tier::percentile(rank, crv.len()),
            )
        })
        .unzip();
    Tiers {
        tier,
        rank,
        percentile,
        summary,
    }
}

/// Each row's 1-based rank from the words in rank order. Every slot is stored exactly once, so
/// relaxed atomics make the parallel random writes safe without ordering cost.
fn scatter_ranks(sorted: &[u64]) -> Vec<u32> {
    let rank: Vec<AtomicU32> = (0..sorted.len()).map(|_| AtomicU32::new(0)).collect();
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
