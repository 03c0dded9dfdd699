//! Tier cut points by selection, without sorting: one histogram pass over the CRV keys' top bits
//! (customers and exact value per bucket), the buckets holding the A and B cuts narrowed down on
//! the key's remaining bits, and the customers tied at a cut ordered by id. The full sort
//! ([`crate::kernel::tiers`]) builds its summary from the same histogram and the same search,
//! so both give the same summary, bit for bit.

use rayon::prelude::*;

use super::exact::{ExactSum, significand};
use super::{
    BUCKETS, TOP_BITS, TierScheme, TierStats, TierSummary, crv_of_key, descending_key, order_word,
    row_of, share,
};
use crate::model::Tier;

/// The [`descending_key`] of +0.0: exactly the keys below it are positive CRVs.
pub(crate) const ZERO_KEY: u32 = 0x7fff_ffff;

/// The bucket of +0.0: it also holds the smallest positive subnormals, all of them ranked
/// before the zeros.
const ZERO_BUCKET: usize = (ZERO_KEY >> (32 - TOP_BITS)) as usize;

/// Rows per parallel part of the histogram pass (integer counts and sums: any split gives the
/// same histogram).
const HISTOGRAM_ROWS: usize = 1 << 20;

/// Rows per parallel part of the pass that gathers the cut buckets' words.
const GATHER_ROWS: usize = 1 << 16;

fn bucket_of_key(key: u32) -> usize {
    (key >> (32 - TOP_BITS)) as usize
}

/// The sign and the biased exponent every CRV of `bucket` has (the top key bits are the sign,
/// the exponent and two fraction bits).
fn bucket_scale(bucket: usize) -> (bool, u32) {
    let bits = crv_of_key((bucket as u32) << (32 - TOP_BITS)).to_bits();
    (bits >> 31 == 1, (bits >> 23) & 0xff)
}

fn significand_of_key(key: u32) -> u64 {
    significand(crv_of_key(key).to_bits())
}

/// Per bucket of the key's top `TOP_BITS`: customers and the sum of their CRV's
/// significands; and the counts and last keys the summary needs. Integer counts and sums, so
/// the histograms of parts merge into the whole's exactly (the tier cuts of customers held in
/// parts: [`TierCuts::from_parts`]).
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Histogram {
    /// `[customers, sum of significands]` per bucket, in rank order of the buckets.
    buckets: Vec<[u64; 2]>,
    /// Customers in all.
    customers: u64,
    /// Customers with a positive CRV (key below [`ZERO_KEY`]).
    positive: u64,
    /// The largest key among positive CRVs (the last positive rank); 0 when there are none.
    last_positive_key: u32,
    /// The largest key of all (the last rank); 0 when there are no customers.
    last_key: u32,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![[0; 2]; BUCKETS],
            customers: 0,
            positive: 0,
            last_positive_key: 0,
            last_key: 0,
        }
    }
}

impl Histogram {
    /// The histogram of `crv`.
    pub fn of(crv: &[f32]) -> Self {
        Histogram::default().with(crv)
    }

    /// Adds `crv` to the histogram.
    fn with(mut self, crv: &[f32]) -> Self {
        for &value in crv {
            let key = descending_key(value);
            let bucket = &mut self.buckets[bucket_of_key(key)];
            bucket[0] += 1;
            bucket[1] += significand(value.to_bits());
            let positive = key < ZERO_KEY;
            self.positive += u64::from(positive);
            self.last_positive_key = self.last_positive_key.max(if positive { key } else { 0 });
            self.last_key = self.last_key.max(key);
        }
        self.customers += crv.len() as u64;
        self
    }

    /// Whether the histogram has the shape [`Histogram::of`] gives (one decoded from bytes may
    /// not).
    pub fn is_well_formed(&self) -> bool {
        let counted: Option<u64> = self
            .buckets
            .iter()
            .try_fold(0u64, |total, bucket| total.checked_add(bucket[0]));
        self.buckets.len() == BUCKETS
            && counted == Some(self.customers)
            && self.positive <= self.customers
    }

    /// The buckets holding the A and B cuts under `scheme` (at most two): the customers
    /// [`TierCuts::from_parts`] needs are those whose CRV [`Histogram::bucket_of`] gives one of
    /// them.
    pub fn cut_buckets(&self, scheme: &TierScheme) -> Vec<usize> {
        CutSearch::new(self, scheme).buckets()
    }

    /// The bucket of a CRV.
    pub fn bucket_of(crv: f32) -> usize {
        bucket_of_key(descending_key(crv))
    }

    /// The histogram of both parts' customers.
    pub fn merge(mut self, other: &Histogram) -> Self {
        for (bucket, other) in self.buckets.iter_mut().zip(&other.buckets) {
            bucket[0] += other[0];
            bucket[1] += other[1];
        }
        self.customers += other.customers;
        self.positive += other.positive;
        self.last_positive_key = self.last_positive_key.max(other.last_positive_key);
        self.last_key = self.last_key.max(other.last_key);
        self
    }

    /// Customers per bucket.
    pub(crate) fn lengths(&self) -> Vec<usize> {
        self.buckets
            .iter()
            .map(|&[customers, _]| customers as usize)
            .collect()
    }

    /// Adds bucket `bucket`'s CRV (the first `customers` of it) to `sum`; only the zeros of
    /// [`ZERO_BUCKET`] are ever left out, and they add nothing.
    fn add_bucket(&self, sum: &mut ExactSum, bucket: usize, customers: u64) {
        let (negative, exponent) = bucket_scale(bucket);
        sum.add_significands(negative, exponent, customers, self.buckets[bucket][1]);
    }

    /// Positive customers in `bucket`.
    fn positive_in(&self, bucket: usize, before: u64) -> u64 {
        match bucket {
            ZERO_BUCKET => self.positive - before,
            _ => self.buckets[bucket][0],
        }
    }
}

/// When a tier is closed: the rule of [`TierScheme`], over exact sums (see the module doc of
/// [`super`]), capped at the last positive customer.
#[derive(Debug, Clone, Copy)]
struct Rule {
    cumulative: bool,
    cut: f64,
    /// The positive CRV, rounded once.
    total: f64,
    positive: u64,
}

impl Rule {
    /// Whether a tier that holds the first `index` positive customers, of exact CRV `prefix`,
    /// is closed: the share before the next customer is not below the cut, or no positive
    /// customer is left. Never true before it is true for a smaller `index`.
    fn closed(&self, index: u64, prefix: &ExactSum) -> bool {
        if index >= self.positive {
            return true;
        }
        let share = if self.cumulative {
            prefix.round() / self.total
        } else {
            index as f64 / self.positive as f64
        };
        // Not below the cut (a NaN share, from a non-finite total, closes no tier early).
        share.partial_cmp(&self.cut) != Some(std::cmp::Ordering::Less)
    }
}

/// The bucket where a tier closes, with the positive customers and their exact CRV before it.
#[derive(Debug, Clone, Copy)]
struct Crossing {
    bucket: usize,
    before: u64,
    prefix: ExactSum,
}

/// Where a tier closes: the positive customers ranked up to its end, their exact CRV, and the
/// key of the last of them (`None` when there are none).
#[derive(Debug, Clone, Copy, Default)]
struct End {
    index: u64,
    prefix: ExactSum,
    last_key: Option<u32>,
}

/// The customers tied at a cut (same CRV key, rows of one bucket) and how many of them, by id
/// ascending, are inside the tier.
#[derive(Debug, Clone)]
pub(crate) struct Tie {
    key: u32,
    rows: Vec<usize>,
    inside: usize,
}

/// The search for the A and B cuts: which buckets hold them, before any bucket is looked into.
#[derive(Debug, Clone)]
pub(crate) struct CutSearch {
    rules: [Rule; 2],
    crossings: [Option<Crossing>; 2],
    /// Exact CRV of the positive customers and of the others.
    positive_crv: ExactSum,
    other_crv: ExactSum,
}

impl CutSearch {
    /// Finds the buckets where tiers A and B close, from the histogram alone.
    pub(crate) fn new(histogram: &Histogram, scheme: &TierScheme) -> Self {
        let mut positive_crv = ExactSum::default();
        let mut other_crv = ExactSum::default();
        for bucket in 0..BUCKETS {
            let sum = if bucket <= ZERO_BUCKET {
                &mut positive_crv
            } else {
                &mut other_crv
            };
            histogram.add_bucket(sum, bucket, histogram.buckets[bucket][0]);
        }
        let (cumulative, cuts) = match *scheme {
            TierScheme::CumulativeValue { a, b } => (true, [a, b]),
            TierScheme::Quantile { a, b } => (false, [a, b]),
        };
        let rules = cuts.map(|cut| Rule {
            cumulative,
            cut,
            total: positive_crv.round(),
            positive: histogram.positive,
        });
        CutSearch {
            rules,
            crossings: rules.map(|rule| crossing(histogram, &rule)),
            positive_crv,
            other_crv,
        }
    }

    /// The buckets whose words [`CutSearch::summarise`] asks for (at most two).
    pub(crate) fn buckets(&self) -> Vec<usize> {
        let mut buckets: Vec<usize> = self.crossings.iter().flatten().map(|c| c.bucket).collect();
        buckets.dedup();
        buckets
    }

    /// The summary, and the ties at the ends of A and B (`None` for an empty tier), given the
    /// `(key, row)` words ([`order_word`]s, any order) of each bucket of [`CutSearch::buckets`].
    pub(crate) fn summarise<'w>(
        &self,
        histogram: &Histogram,
        scheme: &TierScheme,
        words_of: impl Fn(usize) -> &'w [u64],
    ) -> (TierSummary, [Option<Tie>; 2]) {
        let [(end_a, tie_a), (end_b, tie_b)] = [0, 1].map(|tier| match self.crossings[tier] {
            Some(crossing) => {
                let (end, tie) = narrow(&crossing, words_of(crossing.bucket), &self.rules[tier]);
                (end, Some(tie))
            }
            None => (End::default(), None),
        });
        // B closes where its rule first holds, but never before A.
        let (end_b, tie_b) = if end_b.index <= end_a.index {
            (end_a, None)
        } else {
            (end_b, tie_b)
        };
        let positive = histogram.positive;
        let counts = [
            end_a.index,
            end_b.index - end_a.index,
            positive - end_b.index,
            histogram.customers - positive,
        ];
        let sums = [
            end_a.prefix,
            end_b.prefix.minus(&end_a.prefix),
            self.positive_crv.minus(&end_b.prefix),
            self.other_crv,
        ]
        .map(|sum| sum.round());
        let last_keys = [
            end_a.last_key,
            end_b.last_key,
            Some(histogram.last_positive_key),
            Some(histogram.last_key),
        ];
        let positive_crv = self.positive_crv.round();
        let customers = histogram.customers;
        let tiers = std::array::from_fn(|tier| TierStats {
            count: counts[tier],
            customer_share: share(counts[tier] as f64, customers as f64),
            crv_sum: sums[tier],
            value_share: share(sums[tier], positive_crv),
            lowest_crv: last_keys[tier].filter(|_| counts[tier] > 0).map(crv_of_key),
        });
        let summary = TierSummary {
            scheme: *scheme,
            customers,
            positive_crv,
            tiers,
        };
        (summary, [tie_a, tie_b])
    }
}

/// The bucket where `rule` closes the tier; `None` when it is closed before any customer.
fn crossing(histogram: &Histogram, rule: &Rule) -> Option<Crossing> {
    let mut prefix = ExactSum::default();
    if rule.closed(0, &prefix) {
        return None;
    }
    let mut before = 0;
    for bucket in 0..=ZERO_BUCKET {
        let customers = histogram.positive_in(bucket, before);
        if customers == 0 {
            continue;
        }
        let mut next = prefix;
        histogram.add_bucket(&mut next, bucket, customers);
        if rule.closed(before + customers, &next) {
            return Some(Crossing {
                bucket,
                before,
                prefix,
            });
        }
        (before, prefix) = (before + customers, next);
    }
    unreachable!("a rule always closes at the last positive customer, and some are positive")
}

/// Where `rule` closes the tier inside `crossing`'s bucket, from the bucket's `words`: the
/// words are narrowed to one digit of the key's next 11, then last 10 bits (customers and
/// significands per digit, as the histogram), leaving customers of one CRV; how many of them
/// the tier takes follows by bisection.
fn narrow(crossing: &Crossing, words: &[u64], rule: &Rule) -> (End, Tie) {
    let (negative, exponent) = bucket_scale(crossing.bucket);
    let add = |sum: &mut ExactSum, customers: u64, significands: u64| {
        sum.add_significands(negative, exponent, customers, significands)
    };
    let (mut before, mut prefix) = (crossing.before, crossing.prefix);
    let mut candidates: Vec<u64> = Vec::new();
    for (level, (shift, bits)) in [(10u32, 11u32), (0, 10)].into_iter().enumerate() {
        let digit = |word: u64| (((word >> 32) as u32 >> shift) & ((1 << bits) - 1)) as usize;
        let source: &[u64] = if level == 0 { words } else { &candidates };
        let mut digits = vec![[0u64; 2]; 1 << bits];
        for &word in source
            .iter()
            .filter(|&&word| (word >> 32) < u64::from(ZERO_KEY))
        {
            let counts = &mut digits[digit(word)];
            counts[0] += 1;
            counts[1] += significand_of_key((word >> 32) as u32);
        }
        let mut chosen = None;
        for (value, &[customers, significands]) in digits.iter().enumerate() {
            if customers == 0 {
                continue;
            }
            let mut next = prefix;
            add(&mut next, customers, significands);
            if rule.closed(before + customers, &next) {
                chosen = Some(value);
                break;
            }
            (before, prefix) = (before + customers, next);
        }
        let chosen = chosen.expect("the rule closes inside the crossing bucket");
        candidates = source
            .iter()
            .copied()
            .filter(|&word| (word >> 32) < u64::from(ZERO_KEY) && digit(word) == chosen)
            .collect();
    }
    let key = (candidates[0] >> 32) as u32;
    let significand = significand_of_key(key);
    let prefix_with = |inside: u64| {
        let mut sum = prefix;
        add(&mut sum, inside, inside * significand);
        sum
    };
    // The smallest number of the tied customers that closes the tier: all of them do.
    let (mut low, mut high) = (1u64, candidates.len() as u64);
    while low < high {
        let middle = low + (high - low) / 2;
        if rule.closed(before + middle, &prefix_with(middle)) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let end = End {
        index: before + low,
        prefix: prefix_with(low),
        last_key: Some(key),
    };
    let rows = candidates.iter().map(|&word| row_of(word)).collect();
    let tie = Tie {
        key,
        rows,
        inside: low as usize,
    };
    (end, tie)
}

/// The tier cut points of a set of customers, found without sorting them ([`tier_cuts`]):
/// enough to tier any customer from its CRV and id, and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct TierCuts {
    /// Counts, value and cut points per tier: the same as [`crate::kernel::tiers`]' summary.
    pub summary: TierSummary,
    /// Where tiers A and B end in rank order: the first `(CRV key << 64) | id` after the last
    /// customer of the tier (0 for an empty A; B's equals A's when B is empty).
    ends: [u128; 2],
}

impl TierCuts {
    /// The tier of a customer with this CRV and id among the customers the cuts were found for:
    /// the same as [`crate::kernel::tiers`] gives. A CRV <= 0 is always [`Tier::N`].
    pub fn tier(&self, crv: f32, id: u64) -> Tier {
        TierCuts::tier_by_ends(self.ends, crv, id)
    }
}

/// The tier cuts and summary of customers with these CRVs and ids, in O(n) time without a full
/// sort: a parallel histogram pass, a pass gathering the (at most two) buckets that hold the
/// A and B cuts, then work on those buckets alone. The summary is [`crate::kernel::tiers`]'
/// bit for bit and [`TierCuts::tier`] agrees with its tiers row by row, for any thread count.
///
/// Same contract as [`crate::kernel::tiers`]: ids unique, CRV finite, `scheme` validated.
///
/// # Panics
///
/// If `crv` and `ids` differ in length, or there are more than `u32::MAX` customers.
pub fn tier_cuts(crv: &[f32], ids: &[u64], scheme: &TierScheme) -> TierCuts {
    assert_eq!(crv.len(), ids.len(), "one customer id per CRV");
    assert!(
        u32::try_from(crv.len()).is_ok(),
        "rows are u32: at most u32::MAX customers"
    );
    let histogram = crv
        .par_chunks(HISTOGRAM_ROWS)
        .map(Histogram::of)
        .reduce(Histogram::default, |x, y| x.merge(&y));
    let buckets = histogram.cut_buckets(scheme);
    let gathered: Vec<(Vec<f32>, Vec<u64>)> = crv
        .par_chunks(GATHER_ROWS)
        .zip(ids.par_chunks(GATHER_ROWS))
        .map(|(crv, ids)| boundary(crv, ids, &buckets))
        .collect();
    let (crv, ids): (Vec<f32>, Vec<u64>) = gathered
        .into_iter()
        .flat_map(|(crv, ids)| crv.into_iter().zip(ids))
        .unzip();
    TierCuts::from_parts(&histogram, scheme, &crv, &ids)
}

/// The customers of `crv` and `ids` whose CRV falls in one of `buckets`
/// ([`Histogram::cut_buckets`]): what a part contributes to [`TierCuts::from_parts`].
pub fn boundary(crv: &[f32], ids: &[u64], buckets: &[usize]) -> (Vec<f32>, Vec<u64>) {
    crv.iter()
        .zip(ids)
        .filter(|&(&value, _)| buckets.contains(&Histogram::bucket_of(value)))
        .map(|(&value, &id)| (value, id))
        .unzip()
}

impl TierCuts {
    /// The cuts of customers held in parts: `histogram` merges every part's [`Histogram::of`],
    /// `crv` and `ids` are every part's [`boundary`] customers. The same cuts as [`tier_cuts`]
    /// over all the customers at once.
    ///
    /// # Panics
    ///
    /// If `crv` and `ids` differ in length, or there are more than `u32::MAX` of them.
    pub fn from_parts(
        histogram: &Histogram,
        scheme: &TierScheme,
        crv: &[f32],
        ids: &[u64],
    ) -> TierCuts {
        assert_eq!(crv.len(), ids.len(), "one customer id per CRV");
        let search = CutSearch::new(histogram, scheme);
        let buckets = search.buckets();
        let words: Vec<Vec<u64>> = buckets
            .iter()
            .map(|&bucket| {
                crv.iter()
                    .enumerate()
                    .filter(|&(_, &value)| Histogram::bucket_of(value) == bucket)
                    .map(|(row, &value)| order_word(value, row))
                    .collect()
            })
            .collect();
        let words_of = |bucket: usize| {
            let index = buckets
                .iter()
                .position(|&b| b == bucket)
                .expect("summarise asks for the search's buckets");
            words[index].as_slice()
        };
        let (summary, ties) = search.summarise(histogram, scheme, words_of);
        let [end_a, end_b] = ties.map(|tie| tie.map(|tie| tie_end(tie, ids)));
        let end_a = end_a.unwrap_or(0);
        TierCuts {
            summary,
            ends: [end_a, end_b.unwrap_or(end_a)],
        }
    }

    /// Where tiers A and B end, for [`TierCuts::tier_by_ends`] in another process.
    pub fn ends(&self) -> [u128; 2] {
        self.ends
    }

    /// [`TierCuts::tier`] from [`TierCuts::ends`] alone.
    pub fn tier_by_ends(ends: [u128; 2], crv: f32, id: u64) -> Tier {
        let key = descending_key(crv);
        if key >= ZERO_KEY {
            return Tier::N;
        }
        let place = u128::from(key) << 64 | u128::from(id);
        if place < ends[0] {
            Tier::A
        } else if place < ends[1] {
            Tier::B
        } else {
            Tier::C
        }
    }
}

/// The first `(key << 64) | id` after the tier's last customer: the tied customers inside the
/// tier are those with the smallest ids.
fn tie_end(tie: Tie, ids: &[u64]) -> u128 {
    let mut tied_ids: Vec<u64> = tie.rows.iter().map(|&row| ids[row]).collect();
    let (_, &mut last_id, _) = tied_ids.select_nth_unstable(tie.inside - 1);
    (u128::from(tie.key) << 64 | u128::from(last_id)) + 1
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::kernel::tiers;

    fn scheme() -> impl Strategy<Value = TierScheme> {
        (0.01f64..0.99, 0.01f64..1.0, any::<bool>()).prop_map(|(a, t, quantile)| {
            let b = a + (1.0 - a) * t;
            if quantile {
                TierScheme::Quantile { a, b }
            } else {
                TierScheme::CumulativeValue { a, b }
            }
        })
    }

    /// Small inputs with many ties, zeros of both signs, negatives, subnormals and magnitudes
    /// far apart; ids unique, ascending with the row or shuffled.
    fn crv_and_ids() -> impl Strategy<Value = (Vec<f32>, Vec<u64>)> {
        (0usize..200, any::<bool>()).prop_flat_map(|(rows, ascending)| {
            let value = prop_oneof![
                3 => prop::sample::select(vec![
                    0.0f32, -0.0, 1.0, 1.0625, 2.5, -3.0, 1e-30, 1e30, 7e5, f32::from_bits(3),
                ]),
                2 => -1e6f32..1e6,
                1 => 1.0f32..1.25,
            ];
            let ids: Vec<u64> = (0..rows as u64).map(|i| i * 7919 % 1_000_003).collect();
            let ids = if ascending {
                let mut ids = ids;
                ids.sort_unstable();
                Just(ids).boxed()
            } else {
                Just(ids).prop_shuffle().boxed()
            };
            (prop::collection::vec(value, rows), ids)
        })
    }

    fn assert_agree(crv: &[f32], ids: &[u64], scheme: &TierScheme) {
        let sorted = tiers(crv, ids, scheme);
        let cuts = tier_cuts(crv, ids, scheme);
        assert_eq!(cuts.summary, sorted.summary);
        for row in 0..crv.len() {
            assert_eq!(
                cuts.tier(crv[row], ids[row]),
                sorted.tier[row],
                "row {row}: crv {} id {}",
                crv[row],
                ids[row]
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn cuts_from_parts_equal_the_whole(
            (crv, ids) in crv_and_ids(),
            scheme in scheme(),
            cut in 0usize..200,
        ) {
            let cut = cut.min(crv.len());
            let whole = tier_cuts(&crv, &ids, &scheme);
            let (left, right) = (Histogram::of(&crv[..cut]), Histogram::of(&crv[cut..]));
            let histogram = right.merge(&left);
            prop_assert!(histogram.is_well_formed());
            let buckets = histogram.cut_buckets(&scheme);
            let (mut b_crv, mut b_ids) = boundary(&crv[cut..], &ids[cut..], &buckets);
            let (l_crv, l_ids) = boundary(&crv[..cut], &ids[..cut], &buckets);
            b_crv.extend(l_crv);
            b_ids.extend(l_ids);
            let parts = TierCuts::from_parts(&histogram, &scheme, &b_crv, &b_ids);
            prop_assert_eq!(parts, whole);
        }

        #[test]
        fn cuts_tier_every_customer_as_the_full_sort_does(
            (crv, ids) in crv_and_ids(),
            scheme in scheme(),
        ) {
            assert_agree(&crv, &ids, &scheme);
        }
    }

    #[test]
    fn a_cut_inside_a_long_tie_takes_the_lowest_ids() {
        // 100 customers of CRV 1 after one of 10: A closes inside the tie.
        let mut crv = vec![1.0f32; 100];
        crv.push(10.0);
        let ids: Vec<u64> = (0..101).map(|i| (i * 37) % 101).collect();
        let scheme = TierScheme::CumulativeValue { a: 0.5, b: 0.9 };
        assert_agree(&crv, &ids, &scheme);
        let cuts = tier_cuts(&crv, &ids, &scheme);
        // Total 110: A is the 10 and 45 ones (55 before the 46th reaches 50%).
        assert_eq!(cuts.summary.get(Tier::A).count, 46);
        assert_eq!(cuts.tier(1.0, 44), Tier::A);
        assert_eq!(cuts.tier(1.0, 45), Tier::B);
        assert_eq!(cuts.tier(0.0, 0), Tier::N);
        assert_eq!(cuts.tier(-0.0, 0), Tier::N);
    }

    #[test]
    fn value_shares_use_the_exact_sums() {
        // Rank order 2^60, then 200 ones: f64 sums in rank order would lose every one.
        let mut crv = vec![2f32.powi(60)];
        crv.extend([1.0f32; 200]);
        let ids: Vec<u64> = (0..crv.len() as u64).collect();
        let cuts = tier_cuts(&crv, &ids, &TierScheme::default());
        assert_eq!(cuts.summary.positive_crv, 2f64.powi(60) + 256.0);
        // A is 2^60 alone; the ones are C, their sum exact.
        assert_eq!(cuts.summary.get(Tier::A).crv_sum, 2f64.powi(60));
        assert_eq!(cuts.summary.get(Tier::C).crv_sum, 200.0);
        assert_agree(&crv, &ids, &TierScheme::default());
    }

    #[test]
    fn cuts_are_the_same_on_one_and_several_threads() {
        // Over two histogram parts, heavy-tailed with ties, ids scrambled.
        let rows = HISTOGRAM_ROWS * 2 + 12_345;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let crv: Vec<f32> = (0..rows)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let magnitude = ((state >> 40) as f32 / (1u64 << 24) as f32 * 30.0)
                    .exp2()
                    .round();
                if state & 15 == 0 {
                    -magnitude
                } else {
                    magnitude
                }
            })
            .collect();
        let ids: Vec<u64> = (0..rows as u64)
            .map(|row| row.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let scheme = TierScheme::default();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool for the test")
                .install(|| tier_cuts(&crv, &ids, &scheme))
        };
        let one = on(1);
        assert_eq!(on(3), one);
        assert!(one.summary.positive_crv.is_finite());
        assert!(one.summary.get(Tier::B).count > 0);
        assert_eq!(one.summary, tiers(&crv, &ids, &scheme).summary);
    }

    #[test]
    fn no_customers_and_no_positive_customers() {
        for scheme in [TierScheme::default(), TierScheme::QUANTILE_DEFAULT] {
            assert_agree(&[], &[], &scheme);
            assert_agree(&[0.0, -1.0, -0.0], &[3, 1, 2], &scheme);
            let cuts = tier_cuts(&[0.0, -1.0], &[1, 2], &scheme);
            assert_eq!(cuts.summary.get(Tier::N).count, 2);
            assert_eq!(cuts.summary.get(Tier::N).lowest_crv, Some(-1.0));
        }
    }
}
