//! Value tiers (ABC analysis), ranks and percentiles. Customers are ordered by CRV descending,
//! ties by customer id ascending; that order is found by radix-sorting `(order-preserving CRV
//! key, row)` words, and every tier is a contiguous range of ranks.
//!
//! Value sums are exact: every sum of CRVs (the total positive CRV, each tier's sum, and the
//! value before a customer that the cumulative-value rule compares) is the exact sum of the f32
//! values, rounded once to the nearest f64 (a fixed-point integer accumulator). It does not depend on the order of
//! addition, the thread count or the SIMD width, so the full sort ([`crate::kernel::tiers`])
//! and the selection of the cut points alone ([`tier_cuts`]) agree bit for bit. The
//! cumulative-value rule: a positive customer is A while `round(exact CRV of the positive
//! customers ranked before it) / round(exact total positive CRV)` is below `a`, B while it is
//! below `b`, C after. Where f64 sums in rank order are exact (e.g. whole numbers, or values of
//! similar magnitude), this is the same as summing in rank order; where they are not (a huge
//! CRV followed by many small ones), the exact sum keeps what rank-order f64 sums drop.
//!
//! Customers with a CRV `<= 0` (by `f32::total_cmp`: `-0.0` and `0.0` included) are N. CRVs
//! must be finite (the pipeline refuses others, [`crate::kernel::check_finite`]); an infinite
//! or NaN CRV gives infinite or NaN sums and shares, never a panic.

mod cuts;
mod exact;

pub(crate) use cuts::CutSearch;
pub use cuts::{Histogram, TierCuts, boundary, tier_cuts};

use super::partition;
use crate::error::{Error, Result};
use crate::model::Tier;

/// How positive customers are split into tiers A, B and C; customers with CRV <= 0 are always N.
/// Both cuts lie in (0, 1] with `a < b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TierScheme {
    /// By share of value: in rank order, a customer is A while the positive CRV ranked before
    /// it is below `a` of the total positive CRV, B while below `b`, C after (both sums exact,
    /// rounded once to f64: see the module doc).
    CumulativeValue {
        /// Value share that closes tier A (default 0.80).
        a: f64,
        /// Value share that closes tier B (default 0.95).
        b: f64,
    },
    /// By count: a positive customer is A while the positive customers ranked before it are
    /// fewer than `a` of all positive customers, B while fewer than `b`, C after.
    Quantile {
        /// Count share that closes tier A (0.2: the top 20%).
        a: f64,
        /// Count share that closes tier B (0.5: the next 30%).
        b: f64,
    },
}

impl Default for TierScheme {
    /// The default cuts: 80% and 95% of positive value.
    fn default() -> Self {
        TierScheme::CumulativeValue { a: 0.80, b: 0.95 }
    }
}

impl TierScheme {
    /// The quantile scheme with the usual top 20% / next 30% / rest.
    pub const QUANTILE_DEFAULT: TierScheme = TierScheme::Quantile { a: 0.2, b: 0.5 };

    /// Checks `0 < a < b <= 1`; the error names `tier-cuts` or `quantiles`.
    pub fn validate(&self) -> Result<()> {
        let (name, a, b) = match *self {
            TierScheme::CumulativeValue { a, b } => ("tier-cuts", a, b),
            TierScheme::Quantile { a, b } => ("quantiles", a, b),
        };
        if 0.0 < a && a < b && b <= 1.0 {
            Ok(())
        } else {
            Err(Error::invalid(
                name,
                format!("{a}, {b}: cuts must be strictly increasing in (0, 1]"),
            ))
        }
    }
}

/// Every customer's tier, rank and percentile (indexed by row), and the per-tier summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiers {
    /// Tier per row.
    pub tier: Vec<Tier>,
    /// Rank per row: 1 is the highest CRV; ties go to the lower customer id.
    pub rank: Vec<u32>,
    /// Percentile per row, in (0, 100]: the share of customers ranked at or below this one,
    /// `100 * (customers - rank + 1) / customers`. Rank 1 has 100.
    pub percentile: Vec<f32>,
    /// Counts, value and cut points per tier.
    pub summary: TierSummary,
}

/// Counts, value and cut points per tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierSummary {
    /// The scheme that made the tiers.
    pub scheme: TierScheme,
    /// Customers tiered.
    pub customers: u64,
    /// Sum of CRV over customers with CRV > 0: exact, rounded once to f64.
    pub positive_crv: f64,
    /// Statistics per tier, indexed by `Tier as usize` (A, B, C, N).
    pub tiers: [TierStats; 4],
}

impl TierSummary {
    /// The statistics of one tier.
    pub fn get(&self, tier: Tier) -> &TierStats {
        &self.tiers[tier as usize]
    }

    /// The tier of the customer at `rank` (1-based); tiers are contiguous rank ranges.
    pub fn tier_of_rank(&self, rank: u32) -> Tier {
        let mut last_rank = 0;
        for tier in [Tier::A, Tier::B, Tier::C] {
            last_rank += self.get(tier).count;
            if u64::from(rank) <= last_rank {
                return tier;
            }
        }
        Tier::N
    }
}

/// One tier's share of customers and of value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TierStats {
    /// Customers in the tier.
    pub count: u64,
    /// `count` over all customers, in [0, 1] (0 when there are none).
    pub customer_share: f64,
    /// Sum of the tier's CRV: exact, rounded once to f64.
    pub crv_sum: f64,
    /// `crv_sum` over the total positive CRV (0 when that is 0): A + B + C = 1, and N's share
    /// is the value it destroys, as a negative fraction of the positive value.
    pub value_share: f64,
    /// The cut point: the lowest CRV in the tier (`None` when it is empty).
    pub lowest_crv: Option<f32>,
}

/// Maps a CRV to a u32 whose ascending order is the CRV's descending `f32::total_cmp` order.
pub(crate) fn descending_key(crv: f32) -> u32 {
    let bits = crv.to_bits();
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    !ascending
}

/// The inverse of [`descending_key`].
fn crv_of_key(key: u32) -> f32 {
    let ascending = !key;
    let bits = if ascending >> 31 == 1 {
        ascending & !(1 << 31)
    } else {
        !ascending
    };
    f32::from_bits(bits)
}

/// One customer's place in the sort: the CRV key in the high word, the row in the low word.
pub(crate) fn order_word(crv: f32, row: usize) -> u64 {
    (u64::from(descending_key(crv)) << 32) | row as u64
}

/// The row of an [`order_word`].
pub(crate) fn row_of(word: u64) -> usize {
    (word & u64::from(u32::MAX)) as usize
}

/// Key bits that the first step of the sort ([`crate::kernel::tiers`]) splits on: the sign, the
/// exponent and two mantissa bits, so a bucket holds a quarter of a binade and the buckets sort
/// independently.
const TOP_BITS: u32 = 11;

/// Buckets smaller than this are sorted by comparison: two radix passes would spend more time
/// clearing their 2048-entry histograms than moving words.
const SMALL_BUCKET: usize = 1024;

/// Buckets larger than this (in words: 2 MiB, a core's L2) are split on their high digit first
/// and each part, now cache-sized, sorted on its own: two passes over a bucket far larger than
/// the cache would each miss on every word (at 1e8 customers a bucket holds millions).
const CACHE_BUCKET: usize = 1 << 18;

/// Number of buckets of the first sorting step, one per value of the top [`TOP_BITS`].
pub(crate) const BUCKETS: usize = 1 << TOP_BITS;

pub(crate) fn bucket_of(crv: f32) -> usize {
    (descending_key(crv) >> (32 - TOP_BITS)) as usize
}

/// Buffers that [`sort_bucket`] reuses from one bucket to the next on the same thread, so
/// the sort needs scratch for the largest bucket only, not for every customer.
#[derive(Debug, Default)]
pub(crate) struct BucketScratch {
    /// Radix-pass target, grown to the largest bucket seen.
    words: Vec<u64>,
    /// `(customer id, word)` of every word in a run of equal CRV, in bucket order.
    tied: Vec<(u64, u64)>,
}

/// Sorts one bucket of the first step of the sort (words of one [`bucket_of`]) into rank
/// order: CRV descending, then customer id ascending.
///
/// A radix sort on the key's other 21 bits (stable, so equal CRV keeps row order): LSD (the low
/// 11 bits, then the high 10) while the bucket fits the cache, else MSD (the high 10 bits into
/// parts, then each part on the low 11 in cache; [`CACHE_BUCKET`]). Then each run of equal CRV
/// is sorted by id, unless `ids_ascending` (ids ascend with the row) makes row order id order
/// already.
pub(crate) fn sort_bucket(
    bucket: &mut [u64],
    scratch: &mut BucketScratch,
    ids: &[u64],
    ids_ascending: bool,
) {
    if bucket.len() > CACHE_BUCKET {
        return sort_large_bucket(bucket, scratch, ids, ids_ascending);
    }
    if bucket.len() < SMALL_BUCKET {
        bucket.sort_unstable(); // whole words: (key, row), the order the radix passes give
    } else {
        if scratch.words.len() < bucket.len() {
            scratch.words.resize(bucket.len(), 0);
        }
        let scratch = &mut scratch.words[..bucket.len()];
        let moved_low = radix_pass(bucket, scratch, 32, 11);
        let moved_high = if moved_low {
            radix_pass(scratch, bucket, 43, 10)
        } else {
            radix_pass(bucket, scratch, 43, 10)
        };
        if moved_low != moved_high {
            bucket.copy_from_slice(scratch); // an odd number of passes left it in scratch
        }
    }
    if !ids_ascending {
        break_ties(bucket, ids, &mut scratch.tied);
    }
}

/// [`sort_bucket`] of a bucket larger than [`CACHE_BUCKET`]: split on the high 10 bits, then
/// the parts (each cache-sized, ties never crossing two of them) sorted and their ties broken
/// in parallel. A bucket is a quarter-binade, and those around the typical CRV are large (at
/// 10^7 customers of `crv gen`'s data, seventeen hold more than [`CACHE_BUCKET`] words, 65% of
/// the customers, the largest 5.8%): sorted each on one thread, the last of them kept one core
/// busy for a fifth of a second while the others idled (`benches/README.md`, "Tiers").
fn sort_large_bucket(
    bucket: &mut [u64],
    scratch: &mut BucketScratch,
    ids: &[u64],
    ids_ascending: bool,
) {
    use rayon::prelude::*;
    if scratch.words.len() < bucket.len() {
        scratch.words.resize(bucket.len(), 0);
    }
    let scratch = &mut scratch.words[..bucket.len()];
    let lengths = split_pass(bucket, scratch, 43, 10);
    let parts = partition::split_lengths(scratch, &lengths);
    let targets = partition::split_lengths(bucket, &lengths);
    parts
        .into_par_iter()
        .zip(targets)
        .for_each_init(Vec::new, |tied, (part, target)| {
            if part.len() < SMALL_BUCKET || !radix_pass(part, target, 32, 11) {
                target.copy_from_slice(part);
                if part.len() < SMALL_BUCKET {
                    target.sort_unstable();
                }
            }
            if !ids_ascending {
                break_ties(target, ids, tied);
            }
        });
}

/// Sorts each run of equal CRV in `bucket` (in rank order otherwise) by customer id.
///
/// The ids of all tied words are looked up first, in one loop of independent loads: at 10M
/// customers about 14% of them share their CRV with another one (mostly pairs), and the ids
/// are read at random rows, so overlapping those cache misses is what makes this step cheap.
fn break_ties(bucket: &mut [u64], ids: &[u64], tied: &mut Vec<(u64, u64)>) {
    tied.clear();
    for run in bucket.chunk_by(|x, y| x >> 32 == y >> 32) {
        if run.len() > 1 {
            tied.extend(run.iter().map(|&word| (0, word)));
        }
    }
    if tied.is_empty() {
        return;
    }
    for (id, word) in tied.iter_mut() {
        *id = ids[row_of(*word)];
    }
    let mut tied = tied.as_mut_slice();
    for run in bucket.chunk_by_mut(|x, y| x >> 32 == y >> 32) {
        if run.len() > 1 {
            let (by_id, rest) = tied.split_at_mut(run.len());
            by_id.sort_unstable(); // ids are unique: by id alone
            for (slot, &(_, word)) in run.iter_mut().zip(by_id.iter()) {
                *slot = word;
            }
            tied = rest;
        }
    }
}

/// One stable counting-sort pass from `from` into `to` on `bits` (<= 11) bits at `shift`;
/// returns false, leaving `to` alone, when every word has the same digit.
fn radix_pass(from: &[u64], to: &mut [u64], shift: u32, bits: u32) -> bool {
    let mask = (1u64 << bits) - 1;
    let mut next = [0usize; 1 << 11];
    for &word in from {
        next[((word >> shift) & mask) as usize] += 1;
    }
    if next.contains(&from.len()) {
        return false;
    }
    let mut offset = 0;
    for next in &mut next {
        (*next, offset) = (offset, offset + *next);
    }
    for &word in from {
        let digit = ((word >> shift) & mask) as usize;
        to[next[digit]] = word;
        next[digit] += 1;
    }
    true
}

/// One stable counting-sort pass from `from` into `to` on `bits` (<= 11) bits at `shift`,
/// always moving the words, in parallel parts ([`partition`]); returns how many words have each
/// digit, in digit order.
fn split_pass(from: &[u64], to: &mut [u64], shift: u32, bits: u32) -> Vec<usize> {
    let mask = (1u64 << bits) - 1;
    let digit = |word: &u64| ((word >> shift) & mask) as usize;
    let rows = partition::part_rows(from.len(), SPLIT_PARTS);
    let counts = partition::count_parts(from, rows, 1 << bits, digit);
    partition::scatter_parts(from, rows, &counts, digit, |_, &word| word, to);
    partition::digit_totals(&counts)
}

/// Parts that split a bucket larger than the cache in parallel ([`split_pass`]).
const SPLIT_PARTS: usize = 4;

/// The last rank of tiers A, B and C, from a summary: a row's tier follows from its rank.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RankCuts([u64; 3]);

impl RankCuts {
    /// The cuts of `summary`'s tiers.
    pub(crate) fn new(summary: &TierSummary) -> Self {
        let last_a = summary.get(Tier::A).count;
        let last_b = last_a + summary.get(Tier::B).count;
        RankCuts([last_a, last_b, last_b + summary.get(Tier::C).count])
    }

    /// The tier of `rank`, as [`TierSummary::tier_of_rank`] but without branches.
    pub(crate) fn tier(&self, rank: u32) -> Tier {
        let rank = u64::from(rank);
        let above = self.0.iter().filter(|&&last| rank > last).count();
        [Tier::A, Tier::B, Tier::C, Tier::N][above]
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole == 0.0 { 0.0 } else { part / whole }
}

/// `100 * (customers - rank + 1) / customers`: see [`Tiers::percentile`].
pub(crate) fn percentile(rank: u32, customers: usize) -> f32 {
    (100.0 * (customers as f64 - f64::from(rank) + 1.0) / customers as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_larger_than_the_cache_sorts_as_a_small_one() {
        // One bucket (values in [1, 1.25): one quarter-binade) of 3 x CACHE_BUCKET words, with
        // runs of tied CRV, sub-buckets of every size, and ids in scrambled order.
        let rows = 3 * CACHE_BUCKET;
        let mut state = 5u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            state >> 11
        };
        let crv: Vec<f32> = (0..rows)
            .map(|row| {
                let spread = if row % 3 == 0 { 1 << 20 } else { 1 << 9 };
                1.0 + (next() % spread) as f32 / (4.0 * spread as f32)
            })
            .collect();
        assert!(crv.iter().all(|&c| bucket_of(c) == bucket_of(1.0)));
        let ids: Vec<u64> = (0..rows as u64)
            .map(|row| row.wrapping_mul(0x9E37_79B9) % 1_000_003_333)
            .collect();
        let got = sorted(&crv, &ids);
        let mut want: Vec<u64> = (0..rows).map(|row| order_word(crv[row], row)).collect();
        want.sort_unstable_by_key(|&word| (word >> 32, ids[row_of(word)]));
        assert_eq!(got, want);
    }

    fn sorted(crv: &[f32], ids: &[u64]) -> Vec<u64> {
        let mut sorted = vec![0; crv.len()];
        let lengths = crate::kernel::scatter_to_buckets(crv, &mut sorted).lengths();
        let mut scratch = BucketScratch::default();
        for bucket in partition::split_lengths(&mut sorted, &lengths) {
            sort_bucket(bucket, &mut scratch, ids, false);
        }
        sorted
    }

    fn summarise(crv: &[f32], ids: &[u64], scheme: &TierScheme) -> TierSummary {
        let summary = crate::kernel::tiers(crv, ids, scheme).summary;
        assert_eq!(tier_cuts(crv, ids, scheme).summary, summary);
        summary
    }

    #[test]
    fn descending_key_reverses_total_order_and_round_trips() {
        let values = [
            f32::INFINITY,
            1e30,
            2.5,
            1.0,
            1e-40,
            0.0,
            -0.0,
            -1e-40,
            -1.0,
            -1e30,
        ];
        let keys: Vec<u32> = values.iter().map(|&v| descending_key(v)).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
        for value in values {
            assert_eq!(crv_of_key(descending_key(value)).to_bits(), value.to_bits());
        }
    }

    #[test]
    fn equal_crv_ranks_the_lower_customer_id_first() {
        let crv = [5.0, 7.0, 5.0, 5.0, -1.0];
        let ids = [30, 99, 10, 20, 1];
        let rows: Vec<usize> = sorted(&crv, &ids).iter().map(|&w| row_of(w)).collect();
        assert_eq!(rows, [1, 2, 3, 0, 4]);
    }

    #[test]
    fn cumulative_tiers_close_when_the_value_before_reaches_the_cut() {
        // Total 100: A takes 50 and 30 (50 before the second < 80), B 10 and 5 (80, 90 < 95).
        let crv = [50.0, 30.0, 10.0, 5.0, 3.0, 2.0, 0.0, -4.0];
        let ids: Vec<u64> = (0..8).collect();
        let summary = summarise(&crv, &ids, &TierScheme::default());
        let counts: Vec<u64> = summary.tiers.iter().map(|s| s.count).collect();
        assert_eq!(counts, [2, 2, 2, 2]);
        assert_eq!(summary.get(Tier::A).value_share, 0.8);
        assert_eq!(summary.get(Tier::A).lowest_crv, Some(30.0));
        assert_eq!(summary.get(Tier::N).crv_sum, -4.0);
        assert_eq!(summary.get(Tier::N).customer_share, 0.25);
        assert_eq!(summary.tier_of_rank(3), Tier::B);
        assert_eq!(summary.tier_of_rank(8), Tier::N);
    }

    #[test]
    fn rank_cuts_agree_with_tier_of_rank() {
        let crv = [50.0, 30.0, 10.0, 5.0, 3.0, 2.0, 0.0, -4.0, -5.0];
        let ids: Vec<u64> = (0..9).collect();
        for scheme in [TierScheme::default(), TierScheme::QUANTILE_DEFAULT] {
            let summary = summarise(&crv, &ids, &scheme);
            let cuts = RankCuts::new(&summary);
            for rank in 1..=9 {
                assert_eq!(cuts.tier(rank), summary.tier_of_rank(rank), "rank {rank}");
            }
        }
    }

    #[test]
    fn quantile_tiers_count_positive_customers_only() {
        let crv: Vec<f32> = (1..=10).map(|v| v as f32).chain([-1.0, -2.0]).collect();
        let ids: Vec<u64> = (0..12).collect();
        let summary = summarise(&crv, &ids, &TierScheme::QUANTILE_DEFAULT);
        let counts: Vec<u64> = summary.tiers.iter().map(|s| s.count).collect();
        assert_eq!(counts, [2, 3, 5, 2]);
    }

    #[test]
    fn a_single_positive_customer_is_tier_a() {
        for scheme in [TierScheme::default(), TierScheme::QUANTILE_DEFAULT] {
            let summary = summarise(&[3.0, -1.0], &[1, 2], &scheme);
            assert_eq!(summary.tier_of_rank(1), Tier::A);
            assert_eq!(summary.tier_of_rank(2), Tier::N);
        }
    }

    #[test]
    fn scheme_rejects_cuts_that_are_not_increasing_in_the_unit_interval() {
        for (a, b) in [
            (0.8, 0.8),
            (0.9, 0.8),
            (0.0, 0.5),
            (0.5, 1.5),
            (f64::NAN, 0.9),
        ] {
            let message = TierScheme::CumulativeValue { a, b }
                .validate()
                .unwrap_err()
                .to_string();
            assert!(message.contains("tier-cuts"), "{message}");
            let message = TierScheme::Quantile { a, b }
                .validate()
                .unwrap_err()
                .to_string();
            assert!(message.contains("quantiles"), "{message}");
        }
        assert!(
            TierScheme::CumulativeValue { a: 0.5, b: 1.0 }
                .validate()
                .is_ok()
        );
        assert!(TierScheme::default().validate().is_ok());
        assert!(TierScheme::QUANTILE_DEFAULT.validate().is_ok());
    }

    #[test]
    fn percentile_is_one_hundred_for_rank_one() {
        assert_eq!(percentile(1, 4), 100.0);
        assert_eq!(percentile(4, 4), 25.0);
    }
}
