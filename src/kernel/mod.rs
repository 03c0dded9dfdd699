//! Batch kernels over columns: CRV scoring ([`score`]), what-if scenarios ([`score_scenarios`],
//! fused over many scenarios, and [`score_scenario`]) and value tiers ([`tiers`], and their cut
//! points alone: [`tier_cuts`]). This is the
//! only place rayon splits work: chunks have a fixed size and are reduced in chunk order, so
//! every result, f64 totals included, is the same for any number of threads.

pub mod crv;
pub mod history;
pub(crate) mod partition;
pub mod scenario;
pub mod tier;

use rayon::prelude::*;

pub use crv::{CrvInputs, ScoreTotals, annuity_factor, crv_scalar, score_lanes};
pub use scenario::{Response, ScenarioParams, ScenarioTotals, Uplift, scenario_scalar};
pub use tier::{TierCuts, TierScheme, TierStats, TierSummary, Tiers, tier_cuts};

use crate::error::{Error, Result};
use crate::model::{Horizon, ScoreParams};

/// An error when `non_finite` (a [`ScoreTotals::non_finite`] count of `crv`) is not zero: it
/// names the first customer whose CRV is infinite or NaN, its margin and retention (and
/// retention cost when the store has one), the discount and the horizon. A CRV that is not a
/// number cannot be ranked, tiered or selected, so no caller goes on with one.
pub fn check_finite(
    inputs: &CrvInputs<'_>,
    store: &crate::store::Store,
    params: &ScoreParams,
    crv: &[f32],
    non_finite: u64,
) -> Result<()> {
    if non_finite == 0 {
        return Ok(());
    }
    let row = first_non_finite(crv).expect("the count says some CRV is not finite");
    let retention_cost = inputs
        .retention_cost
        .map(|cost| format!(", retention_cost {}", cost[row]))
        .unwrap_or_default();
    let hint = if params.horizon == Horizon::Infinite && params.discount == 0.0 {
        "a retention of 1 without discount is worth an infinite sum: use a positive discount or \
         a finite horizon"
    } else {
        "the value overflows f32: use a shorter horizon or a higher discount"
    };
    Err(Error::invalid(
        "discount and horizon",
        format!(
            "customer {} (margin {}{retention_cost}, retention {}) has a CRV of {} at discount \
             {} and horizon {} ({non_finite} customer(s) in all); every CRV must be finite: \
             {hint}",
            store.customer_id(row),
            inputs.margin[row],
            inputs.retention[row],
            crv[row],
            params.discount,
            params.horizon,
        ),
    ))
}

/// The first row of `values` that is infinite or NaN.
pub fn first_non_finite(values: &[f32]) -> Option<usize> {
    values.iter().position(|value| !value.is_finite())
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
    match score_chunks(inputs, params, out) {
        Ok(totals) => totals,
        Err(never) => match never {},
    }
}

/// Where [`score_chunks`] reads the CRV columns of a range of rows from: columns already in
/// memory as `f32` (a [`CrvInputs`]), or columns of another type or layout, converted (and
/// checked) chunk by chunk into per-thread scratch space, so that no full-size copy is made.
pub trait CrvChunks: Sync {
    /// Per-thread space a chunk's columns are converted into (`()` when read in place).
    type Scratch: Default + Send;
    /// Why a chunk cannot be scored (a value outside its domain, say).
    type Error: Send;

    /// The columns of `rows` (at most `crv::CHUNK_ROWS` rows, never crossing a multiple of
    /// it), each of `rows.len()` values.
    fn chunk<'s>(
        &'s self,
        rows: std::ops::Range<usize>,
        scratch: &'s mut Self::Scratch,
    ) -> std::result::Result<CrvInputs<'s>, Self::Error>;
}

impl CrvChunks for CrvInputs<'_> {
    type Scratch = ();
    type Error = std::convert::Infallible;

    fn chunk<'s>(
        &'s self,
        rows: std::ops::Range<usize>,
        _: &'s mut (),
    ) -> std::result::Result<CrvInputs<'s>, Self::Error> {
        Ok(self.slice(rows.start, rows.len()))
    }
}

/// [`score`] over any [`CrvChunks`]: `out` holds one CRV per row, the chunks are the same
/// 16 Ki-row chunks (so values and totals are bit-identical to [`score`] on the same `f32`
/// values), and the first chunk (in row order) that fails stops the call with its error.
///
/// # Panics
///
/// If a chunk's columns do not have the chunk's rows, or the horizon is zero periods.
pub fn score_chunks<C: CrvChunks>(
    columns: &C,
    params: &ScoreParams,
    out: &mut [f32],
) -> std::result::Result<ScoreTotals, C::Error> {
    let lanes = crv::Lanes::new(params);
    let chunk_totals: Vec<std::result::Result<ScoreTotals, C::Error>> = out
        .par_chunks_mut(crv::CHUNK_ROWS)
        .enumerate()
        .map_init(C::Scratch::default, |scratch, (chunk, out)| {
            let start = chunk * crv::CHUNK_ROWS;
            let inputs = columns.chunk(start..start + out.len(), scratch)?;
            inputs.expect_rows(out);
            Ok(lanes.score_chunk(&inputs, out))
        })
        .collect();
    chunk_totals
        .into_iter()
        .try_fold(ScoreTotals::default(), |totals, chunk| {
            Ok(totals.merge(chunk?))
        })
}

/// The totals of every scenario in one pass over the columns: the rows go by in chunks of
/// 16 Ki rows on the rayon pool, and within a chunk, block by block, every scenario runs
/// over a block while it is in cache. Scenarios that differ only in their uplift share one
/// evaluation of the CRV without uplift. No per-scenario array is materialised: memory is one
/// [`ScenarioTotals`] per scenario and chunk. Each scenario's totals are bit-identical to
/// [`score_scenario`]'s, whatever the thread count.
///
/// `inputs` and every scenario must be validated at the edge (see [`ScenarioParams`]).
///
/// # Panics
///
/// If the columns' lengths differ, a response column has another length, or a horizon is zero.
pub fn score_scenarios(
    inputs: &CrvInputs<'_>,
    scenarios: &[ScenarioParams<'_>],
) -> Vec<ScenarioTotals> {
    let rows = inputs.len();
    for params in scenarios {
        scenario::expect_rows(inputs, params);
    }
    let fused = scenario::FusedScenarios::new(scenarios);
    let chunk_totals: Vec<Vec<ScenarioTotals>> = (0..rows.div_ceil(crv::CHUNK_ROWS))
        .into_par_iter()
        .map(|chunk| {
            let first = chunk * crv::CHUNK_ROWS;
            let len = crv::CHUNK_ROWS.min(rows - first);
            fused.totals_chunk(&inputs.slice(first, len), first)
        })
        .collect();
    chunk_totals.into_iter().fold(
        vec![ScenarioTotals::default(); scenarios.len()],
        |totals, chunk| {
            totals
                .into_iter()
                .zip(chunk)
                .map(|(totals, chunk)| totals.merge(chunk))
                .collect()
        },
    )
}

/// One scenario's CRV without uplift into `crv_out` and, when given, every customer's expected
/// incremental value into `delta_out`, on the rayon pool; returns the totals (bit-identical to
/// [`score_scenarios`]'). A plain scenario ([`ScenarioParams::plain`]) writes exactly what
/// [`score`] writes. Agrees with [`scenario_scalar`] within the tolerances of
/// [`scenario::delta_tolerance`] and [`crv::TOLERANCE_RELATIVE`].
///
/// # Panics
///
/// If the columns, the outputs and a response column differ in length, or a horizon is zero.
pub fn score_scenario(
    inputs: &CrvInputs<'_>,
    params: &ScenarioParams<'_>,
    crv_out: &mut [f32],
    delta_out: Option<&mut [f32]>,
) -> ScenarioTotals {
    scenario::expect_rows(inputs, params);
    inputs.expect_rows(crv_out);
    let lanes = scenario::ScenarioLanes::new(params);
    let delta_chunks: Vec<Option<&mut [f32]>> = match delta_out {
        Some(delta_out) => {
            inputs.expect_rows(delta_out);
            delta_out.chunks_mut(crv::CHUNK_ROWS).map(Some).collect()
        }
        None => (0..crv_out.len().div_ceil(crv::CHUNK_ROWS))
            .map(|_| None)
            .collect(),
    };
    let chunk_totals: Vec<ScenarioTotals> = crv_out
        .par_chunks_mut(crv::CHUNK_ROWS)
        .zip(delta_chunks)
        .enumerate()
        .map(|(chunk, (crv_out, delta_out))| {
            let first = chunk * crv::CHUNK_ROWS;
            lanes.values_chunk(
                &inputs.slice(first, crv_out.len()),
                first,
                crv_out,
                delta_out,
            )
        })
        .collect();
    chunk_totals
        .into_iter()
        .fold(ScenarioTotals::default(), ScenarioTotals::merge)
}

/// `solve` once per item on the rayon pool, answers in item order: for whole, independent,
/// single-threaded solves such as a frontier's budgets. Each answer depends on its item alone,
/// so the result does not depend on the thread count; at most one solve per pool thread holds
/// its buffers at a time.
pub fn solve_each<T: Sync, R: Send>(items: &[T], solve: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    items.par_iter().map(solve).collect()
}

/// Every customer's tier, rank and percentile from its CRV, with the per-tier summary.
///
/// Ranks order CRV descending (`f32::total_cmp`), ties by customer id ascending; `ids` must be
/// unique (as in a store). CRV values should be finite: an infinite CRV makes the value shares
/// NaN. `scheme` must be validated ([`TierScheme::validate`]). Costs O(n) time and 8 bytes per
/// customer of scratch besides the output (plus one bucket's worth per thread); faster when
/// `ids` ascend with the row (no tie breaking by id lookups is needed then).
///
/// The steps: bucket `(CRV key, row)` words on the key's top bits straight from `crv` (with a
/// histogram of customers and exact value per bucket), radix sort each bucket and break its
/// ties by id, then the summary (one thread: the cut search of [`tier_cuts`] on the histogram
/// and the sorted cut buckets, exact sums) alongside the rank scatter (the other threads), then
/// tier and percentile per row from the rank alone, since tiers are contiguous rank ranges.
/// When only the tiers of some customers and the summary are needed, [`tier_cuts`] gives them
/// without sorting.
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
    let mut sorted = vec![0u64; crv.len()];
    let histogram = scatter_to_buckets(crv, &mut sorted);
    let lengths = histogram.lengths();
    partition::split_lengths(&mut sorted, &lengths)
        .into_par_iter()
        .for_each_init(tier::BucketScratch::default, |scratch, bucket| {
            tier::sort_bucket(bucket, scratch, ids, ids_ascending)
        });
    let (summary, rank) = rayon::join(
        || {
            let offsets: Vec<usize> = lengths
                .iter()
                .scan(0, |offset, &length| {
                    *offset += length;
                    Some(*offset - length)
                })
                .collect();
            let words_of =
                |bucket: usize| &sorted[offsets[bucket]..offsets[bucket] + lengths[bucket]];
            tier::CutSearch::new(&histogram, scheme)
                .summarise(&histogram, scheme, words_of)
                .0
        },
        || scatter_ranks(&sorted),
    );
    drop(sorted);
    let cuts = tier::RankCuts::new(&summary);
    let mut tier = Vec::new();
    let mut percentile = Vec::new();
    rank.par_iter()
        .with_min_len(crv::CHUNK_ROWS)
        .map(|&rank| (cuts.tier(rank), tier::percentile(rank, crv.len())))
        .unzip_into_vecs(&mut tier, &mut percentile);
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

/// Every row's [`tier::order_word`] into `sorted`, grouped by [`tier::bucket_of`] in bucket
/// order, row order within a bucket (a stable [`partition`] in parallel parts); returns the
/// histogram of the buckets.
fn scatter_to_buckets(crv: &[f32], sorted: &mut [u64]) -> tier::Histogram {
    let rows = partition::part_rows(crv.len(), BUCKET_PARTS);
    let part_histograms: Vec<tier::Histogram> =
        crv.par_chunks(rows).map(tier::Histogram::of).collect();
    let counts: Vec<Vec<usize>> = part_histograms
        .iter()
        .map(tier::Histogram::lengths)
        .collect();
    partition::scatter_parts(
        crv,
        rows,
        &counts,
        |&value| tier::bucket_of(value),
        |row, &value| tier::order_word(value, row),
        sorted,
    );
    part_histograms
        .iter()
        .fold(tier::Histogram::default(), |all, part| all.merge(part))
}

/// Each row's 1-based rank from the words in rank order.
fn scatter_ranks(sorted: &[u64]) -> Vec<u32> {
    partition::permute(
        sorted.len(),
        crv::CHUNK_ROWS,
        |index| tier::row_of(sorted[index]),
        |index| (index + 1) as u32,
    )
}
