//! The exact knapsack over items held in parts that are never brought together (the partitions
//! of a Spark DataFrame): every step but the core search is a linear pass whose per-part answers
//! merge, and the small core left after reduction is solved on one machine by [`super::knapsack`].
//!
//! A [`PartsKnapsack`] (the driver) asks [`Question`]s; each part answers with [`answer`] over
//! its `(id, value, cost)` items; [`Answer::merge`] folds the answers (in any order: counts
//! and costs are integers, the few value sums are f64); [`PartsKnapsack::step`] reads the
//! merged answer and asks the next question, until it has the selection:
//!
//! 1. **Break ratio**: a histogram of the candidates' ratios `v / w` over 16 bits of the f64
//!    ratio (costs as u128 sums), then, in the bucket where the cumulative cost in descending
//!    ratio order passes the capacity, the next 16 bits, and so on until that bucket holds at
//!    most [`GATHER_LIMIT`] items (or one ratio): those are gathered and ordered (ratio
//!    descending, id ascending), and the item where the greedy prefix stops fitting gives
//!    `lambda`. When every candidate fits, all are chosen.
//! 2. **Bounds**: each part sums `max(0, v - lambda w)` (the Dantzig bound in its Lagrangian
//!    form, `U = lambda W + sum max(0, v - lambda w)`, valid for any `lambda`) and counts its
//!    items by the top 16 bits of `|v - lambda w|`. The greedy prefix is the lower bound `L`.
//! 3. **Reduction and core**: an item with `|v - lambda w| > U - L` is fixed at its LP value
//!    (in when the reduced value is positive): flipping it bounds every such solution below
//!    `L`. The parts send the items whose reduced value falls in the buckets up to a threshold
//!    (the core: about [`CORE_TARGET`] items first), and the counts, costs and values of the
//!    items fixed in. The driver solves the core (ordered by id) with the capacity the fixed
//!    items leave. The answer is proven when `U - (edge of the threshold) <= objective`; if
//!    not, the threshold rises to `U - objective` once (a core of at most `core_limit` items).
//!    The threshold is never below the reduced values' rounding (`1e-12 U`), so the break item
//!    and items of its ratio stay in the core whatever the sign rounding gives their `v - lambda w`.
//! 4. **Chosen**: each part keeps its items fixed in and the core items the driver chose.
//!
//! The outcome depends on the items, not on how they are split: the histograms are integer
//! counts, thresholds are bucket edges, and the core is solved in id order. Value sums are f64
//! sums merged in the order the parts answer, so totals may differ in their last digits.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use super::{OPTIMALITY_TOLERANCE, SolveLimits, knapsack};
use crate::error::{Error, Result};

/// Items at most in the break bucket before it is gathered to the driver.
pub const GATHER_LIMIT: u64 = 1 << 16;

/// Items the first core aims at.
pub const CORE_TARGET: u64 = 1 << 14;

/// Bits of an f64 one histogram level resolves.
const LEVEL_BITS: u32 = 16;

/// The reduced values' rounding, relative to the Dantzig bound `U`: `v - lambda w` is computed
/// with an error of a few ulps of `lambda w <= lambda W <= U` (every candidate's cost is at
/// most the capacity `W`), so a magnitude under `ROUNDING * U` may be a zero that rounding
/// moved (the break item's own, or an item of the same ratio); such items always stay in the
/// core, never fixed by the sign of a rounding error.
const ROUNDING: f64 = 1e-12;

/// Bytes an answer or question may decode from.
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// What the driver asks every part.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Question {
    /// Histogram of the candidates' ratios whose top bits are `prefix` (above `shift + 16`),
    /// by the 16 bits at `shift`; `None`: all candidates, by the top 16 bits.
    Ratios {
        /// `(prefix, shift)`.
        within: Option<(u64, u32)>,
    },
    /// The candidates whose ratio's bits above `shift` are `prefix`.
    Gather {
        /// Bits of the ratio above `shift`.
        prefix: u64,
        /// Where the prefix ends.
        shift: u32,
    },
    /// `sum max(0, v - lambda w)` and the histogram of `|v - lambda w|`.
    Reduced {
        /// The break ratio.
        lambda: f64,
    },
    /// The core (`|v - lambda w|` in buckets up to `key`) and the sums of the items fixed in.
    Core {
        /// The break ratio.
        lambda: f64,
        /// Highest bucket of the core.
        key: u16,
    },
}

/// One histogram bucket: items, their cost and value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Encode, Decode)]
pub struct Bucket {
    /// Items.
    pub count: u64,
    /// Sum of their costs.
    pub cost: u128,
    /// Sum of their values.
    pub value: f64,
}

impl Bucket {
    fn add(&mut self, value: f32, cost: u64) {
        self.count += 1;
        self.cost += u128::from(cost);
        self.value += f64::from(value);
    }

    fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.cost += other.cost;
        self.value += other.value;
    }
}

/// Items gathered to the driver: ids, values, costs.
#[derive(Debug, Clone, Default, PartialEq, Encode, Decode)]
pub struct Gathered {
    /// Customer ids.
    pub ids: Vec<u64>,
    /// Values.
    pub values: Vec<f32>,
    /// Costs in resource units.
    pub costs: Vec<u64>,
}

impl Gathered {
    fn push(&mut self, id: u64, value: f32, cost: u64) {
        self.ids.push(id);
        self.values.push(value);
        self.costs.push(cost);
    }

    fn merge(&mut self, other: Gathered) {
        self.ids.extend(other.ids);
        self.values.extend(other.values);
        self.costs.extend(other.costs);
    }
}

/// Every part's answer, merged with [`Answer::merge`].
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Answer {
    /// To [`Question::Ratios`].
    Ratios {
        /// Rows seen.
        rows: u64,
        /// Positive values at zero cost: always chosen.
        free: Bucket,
        /// All candidates (value > 0, cost in `1..=capacity`) in the range asked.
        candidates: Bucket,
        /// Per bucket.
        buckets: BTreeMap<u16, Bucket>,
    },
    /// To [`Question::Gather`].
    Gather(Gathered),
    /// To [`Question::Reduced`].
    Reduced {
        /// `sum max(0, v - lambda w)`.
        positive: f64,
        /// Items per bucket of `|v - lambda w|`.
        buckets: BTreeMap<u16, u64>,
    },
    /// To [`Question::Core`].
    Core {
        /// The core items.
        core: Gathered,
        /// The items fixed in.
        fixed: Bucket,
    },
}

impl Answer {
    /// Both answers as one; `None` when they answer different questions.
    pub fn merge(self, other: Answer) -> Option<Answer> {
        Some(match (self, other) {
            (
                Answer::Ratios {
                    rows,
                    mut free,
                    mut candidates,
                    mut buckets,
                },
                Answer::Ratios {
                    rows: rows2,
                    free: free2,
                    candidates: candidates2,
                    buckets: buckets2,
                },
            ) => {
                free.merge(&free2);
                candidates.merge(&candidates2);
                for (key, bucket) in buckets2 {
                    buckets.entry(key).or_default().merge(&bucket);
                }
                Answer::Ratios {
                    rows: rows + rows2,
                    free,
                    candidates,
                    buckets,
                }
            }
            (Answer::Gather(mut items), Answer::Gather(other)) => {
                items.merge(other);
                Answer::Gather(items)
            }
            (
                Answer::Reduced {
                    positive,
                    mut buckets,
                },
                Answer::Reduced {
                    positive: positive2,
                    buckets: buckets2,
                },
            ) => {
                for (key, count) in buckets2 {
                    *buckets.entry(key).or_default() += count;
                }
                Answer::Reduced {
                    positive: positive + positive2,
                    buckets,
                }
            }
            (
                Answer::Core {
                    mut core,
                    mut fixed,
                },
                Answer::Core {
                    core: core2,
                    fixed: fixed2,
                },
            ) => {
                core.merge(core2);
                fixed.merge(&fixed2);
                Answer::Core { core, fixed }
            }
            _ => return None,
        })
    }
}

/// `message` as bytes.
pub fn encode<T: Encode>(message: &T) -> Vec<u8> {
    bincode::encode_to_vec(message, bincode::config::standard())
        .expect("encoding into a Vec cannot fail")
}

/// A message from bytes (an error names what was expected).
pub fn decode<T: Decode<()>>(bytes: &[u8], what: &str) -> Result<T> {
    let config = bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>();
    match bincode::decode_from_slice(bytes, config) {
        Ok((message, read)) if read == bytes.len() => Ok(message),
        _ => Err(Error::invalid(what, "not a message of this crv version")),
    }
}

/// Whether an item is a candidate: a finite positive value at a cost in `1..=capacity`.
fn candidate(value: f32, cost: u64, capacity: u64) -> bool {
    value.is_finite() && value > 0.0 && cost >= 1 && cost <= capacity
}

/// Whether an item is chosen whatever the others: a finite positive value at zero cost.
fn free(value: f32, cost: u64) -> bool {
    value.is_finite() && value > 0.0 && cost == 0
}

fn ratio_bits(value: f32, cost: u64) -> u64 {
    (f64::from(value) / cost as f64).to_bits()
}

fn reduced(value: f32, cost: u64, lambda: f64) -> f64 {
    f64::from(value) - lambda * cost as f64
}

/// The top 16 bits of a non-negative f64: the bucket of a reduced value's magnitude.
fn magnitude_key(magnitude: f64) -> u16 {
    (magnitude.to_bits() >> (64 - LEVEL_BITS)) as u16
}

/// The least magnitude above every bucket up to `key`.
fn magnitude_edge(key: u16) -> f64 {
    f64::from_bits((u64::from(key) + 1) << (64 - LEVEL_BITS))
}

/// One part's answer to `question` over its items (`ids`, `values`, costs in resource units).
///
/// # Panics
///
/// When the slices differ in length.
pub fn answer(
    question: &Question,
    capacity: u64,
    ids: &[u64],
    values: &[f32],
    costs: &[u64],
) -> Answer {
    assert!(
        ids.len() == values.len() && values.len() == costs.len(),
        "one value and cost per id"
    );
    let items = ids
        .iter()
        .zip(values)
        .zip(costs)
        .map(|((&id, &v), &w)| (id, v, w));
    let candidates = items.clone().filter(|&(_, v, w)| candidate(v, w, capacity));
    match *question {
        Question::Ratios { within } => {
            let (mut free_bucket, mut all, mut buckets) =
                (Bucket::default(), Bucket::default(), BTreeMap::new());
            for (_, v, w) in items.clone().filter(|&(_, v, w)| free(v, w)) {
                free_bucket.add(v, w);
            }
            let (prefix, shift) = within.unwrap_or((0, 64));
            let shift = shift - LEVEL_BITS;
            for (_, v, w) in candidates {
                let bits = ratio_bits(v, w);
                if (bits >> shift) >> LEVEL_BITS != prefix && within.is_some() {
                    continue;
                }
                all.add(v, w);
                let key = ((bits >> shift) & 0xffff) as u16;
                buckets.entry(key).or_insert_with(Bucket::default).add(v, w);
            }
            Answer::Ratios {
                rows: ids.len() as u64,
                free: free_bucket,
                candidates: all,
                buckets,
            }
        }
        Question::Gather { prefix, shift } => {
            let mut gathered = Gathered::default();
            for (id, v, w) in candidates.filter(|&(_, v, w)| ratio_bits(v, w) >> shift == prefix) {
                gathered.push(id, v, w);
            }
            Answer::Gather(gathered)
        }
        Question::Reduced { lambda } => {
            let (mut positive, mut buckets) = (0.0, BTreeMap::new());
            for (_, v, w) in candidates {
                let r = reduced(v, w, lambda);
                positive += r.max(0.0);
                *buckets.entry(magnitude_key(r.abs())).or_insert(0u64) += 1;
            }
            Answer::Reduced { positive, buckets }
        }
        Question::Core { lambda, key } => {
            let (mut core, mut fixed) = (Gathered::default(), Bucket::default());
            for (id, v, w) in candidates {
                let r = reduced(v, w, lambda);
                if magnitude_key(r.abs()) <= key {
                    core.push(id, v, w);
                } else if r > 0.0 {
                    fixed.add(v, w);
                }
            }
            Answer::Core { core, fixed }
        }
    }
}

/// Which items the selection holds, for each part to apply to its own: the free items, the
/// candidates fixed in (`|v - lambda w|` above bucket `key` and positive), and `core` by id.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Chosen {
    /// Every candidate (they all fit) and every free item.
    All,
    /// The free items, those fixed in, and the chosen core ids (ascending).
    Rule {
        /// The break ratio.
        lambda: f64,
        /// Highest bucket of the core.
        key: u16,
        /// The core items chosen, ids ascending.
        core: Vec<u64>,
    },
}

impl Chosen {
    /// Whether the item `(id, value, cost)` is chosen.
    pub fn holds(&self, capacity: u64, id: u64, value: f32, cost: u64) -> bool {
        if free(value, cost) {
            return true;
        }
        if !candidate(value, cost, capacity) {
            return false;
        }
        match self {
            Chosen::All => true,
            Chosen::Rule { lambda, key, core } => {
                let r = reduced(value, cost, *lambda);
                if magnitude_key(r.abs()) <= *key {
                    core.binary_search(&id).is_ok()
                } else {
                    r > 0.0
                }
            }
        }
    }
}

/// The selection with its certificate.
#[derive(Debug, Clone)]
pub struct PartsSelection {
    /// Which items are chosen.
    pub chosen: Chosen,
    /// Rows seen.
    pub rows: u64,
    /// Items chosen.
    pub selected: u64,
    /// Their total value.
    pub objective: f64,
    /// Their total cost in resource units.
    pub cost: u128,
    /// A certified upper bound on the optimum.
    pub upper_bound: f64,
    /// `(upper_bound - objective) / upper_bound`.
    pub gap: f64,
    /// Whether the gap is within [`OPTIMALITY_TOLERANCE`].
    pub optimal: bool,
    /// The break ratio (`None` when everything fits).
    pub break_ratio: Option<f64>,
    /// Items shipped to the driver for the last core search.
    pub core_items: u64,
    /// States of the last core search.
    pub states: u64,
}

/// What the driver does next.
#[derive(Debug, Clone)]
pub enum Step {
    /// Ask the parts this.
    Ask(Question),
    /// The selection is made.
    Done(Box<PartsSelection>),
}

#[derive(Debug, Clone)]
enum Phase {
    Start,
    Ratios { prefix: u64, shift: u32 },
    Gather,
    Reduced,
    Core { round: u32, key: u16 },
}

/// The driver of the distributed knapsack: `capacity` in resource units.
#[derive(Debug, Clone)]
pub struct PartsKnapsack {
    capacity: u64,
    limits: SolveLimits,
    /// `None`: 1% of the rows.
    core_limit: Option<u64>,
    phase: Phase,
    rows: u64,
    free: Bucket,
    /// Cost and value of the candidates ranked before the current ratio range.
    before: Bucket,
    lambda: f64,
    /// The greedy prefix's value (a lower bound on the candidates' optimum).
    greedy: f64,
    upper: f64,
    reduced: BTreeMap<u16, u64>,
}

impl PartsKnapsack {
    /// A driver for `capacity` resource units; the core may grow to `core_limit` items
    /// (`None`: 1% of the rows; never below [`CORE_TARGET`]).
    pub fn new(capacity: u64, limits: SolveLimits, core_limit: Option<u64>) -> Self {
        PartsKnapsack {
            capacity,
            limits,
            core_limit,
            phase: Phase::Start,
            rows: 0,
            free: Bucket::default(),
            before: Bucket::default(),
            lambda: 0.0,
            greedy: 0.0,
            upper: 0.0,
            reduced: BTreeMap::new(),
        }
    }

    /// The first question.
    pub fn start(&mut self) -> Question {
        self.phase = Phase::Ratios {
            prefix: 0,
            shift: 64,
        };
        Question::Ratios { within: None }
    }

    /// Reads the parts' merged answer to the last question; asks the next or gives the result.
    pub fn step(&mut self, answer: Answer) -> Result<Step> {
        let unexpected = || Error::invalid("answer", "does not answer the question asked");
        match (self.phase.clone(), answer) {
            (
                Phase::Ratios { prefix, shift },
                Answer::Ratios {
                    rows,
                    free,
                    candidates,
                    buckets,
                },
            ) => {
                if shift == 64 {
                    self.rows = rows;
                    self.free = free;
                    self.core_limit = Some(self.core_limit.unwrap_or(rows / 100).max(CORE_TARGET));
                    if candidates.cost <= u128::from(self.capacity) {
                        return Ok(self.done(
                            Chosen::All,
                            candidates,
                            candidates.value,
                            0,
                            0,
                            None,
                        ));
                    }
                }
                let shift = shift - LEVEL_BITS;
                let capacity = u128::from(self.capacity);
                for (&key, bucket) in buckets.iter().rev() {
                    if self.before.cost + bucket.cost > capacity {
                        let prefix = prefix << LEVEL_BITS | u64::from(key);
                        if bucket.count <= GATHER_LIMIT || shift == 0 {
                            self.phase = Phase::Gather;
                            return Ok(Step::Ask(Question::Gather { prefix, shift }));
                        }
                        self.phase = Phase::Ratios { prefix, shift };
                        return Ok(Step::Ask(Question::Ratios {
                            within: Some((prefix, shift)),
                        }));
                    }
                    self.before.merge(bucket);
                }
                Err(Error::invalid(
                    "answer",
                    "the ratio histogram does not reach the capacity",
                ))
            }
            (Phase::Gather, Answer::Gather(items)) => {
                let mut order: Vec<usize> = (0..items.ids.len()).collect();
                let ratio = |i: usize| f64::from(items.values[i]) / items.costs[i] as f64;
                order.sort_unstable_by(|&x, &y| {
                    ratio(y)
                        .total_cmp(&ratio(x))
                        .then(items.ids[x].cmp(&items.ids[y]))
                });
                let (mut cost, mut value) = (self.before.cost, self.before.value);
                let mut lambda = None;
                for i in order {
                    if cost + u128::from(items.costs[i]) > u128::from(self.capacity) {
                        lambda = Some(ratio(i));
                        break;
                    }
                    cost += u128::from(items.costs[i]);
                    value += f64::from(items.values[i]);
                }
                self.lambda = lambda
                    .ok_or_else(|| Error::invalid("answer", "the break bucket fits whole"))?;
                self.greedy = value;
                self.phase = Phase::Reduced;
                Ok(Step::Ask(Question::Reduced {
                    lambda: self.lambda,
                }))
            }
            (Phase::Reduced, Answer::Reduced { positive, buckets }) => {
                self.upper = self.lambda * self.capacity as f64 + positive;
                self.reduced = buckets;
                let target = self.key_holding(CORE_TARGET);
                let key = target
                    .min(self.key_for(self.greedy))
                    .max(self.rounding_key());
                self.phase = Phase::Core { round: 1, key };
                Ok(Step::Ask(Question::Core {
                    lambda: self.lambda,
                    key,
                }))
            }
            (Phase::Core { round, key }, Answer::Core { core, fixed }) => {
                let left = u128::from(self.capacity)
                    .checked_sub(fixed.cost)
                    .ok_or_else(|| {
                        Error::invalid("answer", "the items fixed in exceed the capacity")
                    })? as u64;
                let mut order: Vec<usize> = (0..core.ids.len()).collect();
                order.sort_unstable_by_key(|&i| core.ids[i]);
                let values: Vec<f32> = order.iter().map(|&i| core.values[i]).collect();
                let costs: Vec<u64> = order.iter().map(|&i| core.costs[i]).collect();
                let solved = knapsack(&values, &costs, left, None, &self.limits);
                let objective = fixed.value + solved.objective;
                let upper_bound =
                    (fixed.value + solved.upper_bound).max(self.upper - magnitude_edge(key));
                let proven = upper_bound - objective
                    <= OPTIMALITY_TOLERANCE * upper_bound.abs().max(f64::MIN_POSITIVE);
                let needed = self.key_for(objective).max(self.rounding_key());
                if !proven
                    && round == 1
                    && needed > key
                    && Some(self.count_up_to(needed)) <= self.core_limit
                {
                    self.phase = Phase::Core {
                        round: 2,
                        key: needed,
                    };
                    return Ok(Step::Ask(Question::Core {
                        lambda: self.lambda,
                        key: needed,
                    }));
                }
                let chosen_core: Vec<u64> = solved
                    .rows
                    .iter()
                    .map(|&row| core.ids[order[row]])
                    .collect();
                let mut cost = fixed.cost;
                for &row in &solved.rows {
                    cost += u128::from(costs[row]);
                }
                let selected = Bucket {
                    count: fixed.count + solved.rows.len() as u64,
                    cost,
                    value: objective,
                };
                let chosen = Chosen::Rule {
                    lambda: self.lambda,
                    key,
                    core: chosen_core,
                };
                Ok(self.done(
                    chosen,
                    selected,
                    upper_bound,
                    core.ids.len() as u64,
                    solved.stats.states,
                    Some(self.lambda),
                ))
            }
            _ => Err(unexpected()),
        }
    }

    /// The bucket of `U - lower`: an item whose reduced value's magnitude lies above it is
    /// fixed at its LP value in every solution worth more than `lower`.
    fn key_for(&self, lower: f64) -> u16 {
        magnitude_key((self.upper - lower).max(0.0))
    }

    /// The bucket of the reduced values' rounding ([`ROUNDING`]): the core holds at least it.
    fn rounding_key(&self) -> u16 {
        magnitude_key(ROUNDING * self.upper.abs())
    }

    /// The largest bucket key whose items up to it number at most `items` (at least the first).
    fn key_holding(&self, items: u64) -> u16 {
        let mut total = 0;
        let mut last = self.reduced.keys().next().copied().unwrap_or(0);
        for (&key, &count) in &self.reduced {
            total += count;
            if total > items {
                break;
            }
            last = key;
        }
        last
    }

    fn count_up_to(&self, key: u16) -> u64 {
        self.reduced.range(..=key).map(|(_, &count)| count).sum()
    }

    fn done(
        &self,
        chosen: Chosen,
        selected: Bucket,
        candidates_bound: f64,
        core_items: u64,
        states: u64,
        break_ratio: Option<f64>,
    ) -> Step {
        let objective = self.free.value + selected.value;
        let upper_bound = self.free.value + candidates_bound;
        let gap = (upper_bound - objective) / upper_bound.abs().max(f64::MIN_POSITIVE);
        Step::Done(Box::new(PartsSelection {
            chosen,
            rows: self.rows,
            selected: self.free.count + selected.count,
            objective,
            cost: selected.cost,
            upper_bound,
            gap,
            optimal: gap.abs() <= OPTIMALITY_TOLERANCE,
            break_ratio,
            core_items,
            states,
        }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Runs the driver over `parts`, merging their answers in the given order.
    fn solve_in_parts(parts: &[Vec<(u64, f32, u64)>], capacity: u64) -> PartsSelection {
        let mut driver = PartsKnapsack::new(capacity, SolveLimits::default(), None);
        let mut question = driver.start();
        loop {
            let merged = parts
                .iter()
                .map(|part| {
                    let ids: Vec<u64> = part.iter().map(|i| i.0).collect();
                    let values: Vec<f32> = part.iter().map(|i| i.1).collect();
                    let costs: Vec<u64> = part.iter().map(|i| i.2).collect();
                    let bytes = encode(&answer(&question, capacity, &ids, &values, &costs));
                    decode::<Answer>(&bytes, "answer").unwrap()
                })
                .reduce(|a, b| a.merge(b).unwrap())
                .unwrap();
            match driver.step(merged).unwrap() {
                Step::Ask(next) => question = next,
                Step::Done(selection) => return *selection,
            }
        }
    }

    fn items() -> impl Strategy<Value = Vec<(u64, f32, u64)>> {
        prop::collection::vec((-20.0f32..100.0, 0u64..40), 1..120).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (v, w))| ((i as u64) * 7919 % 100_003, v, w))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parts_reach_the_single_machine_optimum(
            items in items(),
            capacity in 0u64..600,
            cuts in prop::collection::vec(0usize..120, 0..4),
        ) {
            let ids: Vec<u64> = items.iter().map(|i| i.0).collect();
            let values: Vec<f32> = items.iter().map(|i| i.1).collect();
            let costs: Vec<u64> = items.iter().map(|i| i.2).collect();
            let whole = knapsack(&values, &costs, capacity, None, &SolveLimits::default());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(items.len())).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([items.len()]) {
                parts.push(items[start..cut].to_vec());
                start = cut;
            }
            let split = solve_in_parts(&parts, capacity);
            let one = solve_in_parts(std::slice::from_ref(&items), capacity);
            prop_assert!(split.optimal);
            prop_assert!((split.objective - whole.objective).abs() <= 1e-9 * whole.objective.abs().max(1.0),
                "parts {} whole {}", split.objective, whole.objective);
            // The chosen set is the same however the items are split, and it fits.
            let chosen: Vec<usize> = (0..items.len())
                .filter(|&i| split.chosen.holds(capacity, ids[i], values[i], costs[i]))
                .collect();
            let again: Vec<usize> = (0..items.len())
                .filter(|&i| one.chosen.holds(capacity, ids[i], values[i], costs[i]))
                .collect();
            prop_assert_eq!(&chosen, &again);
            let cost: u64 = chosen.iter().map(|&i| costs[i]).sum();
            prop_assert!(cost <= capacity);
            let value: f64 = chosen.iter().map(|&i| f64::from(values[i])).sum();
            prop_assert!((value - split.objective).abs() <= 1e-9 * value.abs().max(1.0));
            prop_assert_eq!(split.selected as usize, chosen.len());
        }
    }
}
