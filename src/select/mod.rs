//! Campaign selection: the 0-1 knapsack `max sum v_i x_i  s.t.  sum w_i x_i <= W`, solved
//! exactly at ten million customers, with a certificate (an upper bound) for the answer.
//!
//! # Algorithm
//!
//! The solver is in the family of Pisinger's expanding-core algorithms (expknap, minknap,
//! combo):
//!
//! 1. **Preprocess** (one pass): rows that are ineligible, or whose value is not finite and
//!    positive, never enter; zero-cost positive rows always enter; rows costing more than the
//!    capacity are out. The rest are *candidates*, kept as 4-byte row indices (an item's value
//!    and cost are read from the columns when needed). Costs and capacity are
//!    divided by the candidates' greatest common divisor (`divisor.rs`; exact, and it removes
//!    capacity no combination can use, e.g. whole currency units in cents). On large inputs a
//!    stride sample of 32768 rows first places a band of ratios around the expected break, and
//!    the pass orders the candidate rows above, inside and below it (branch-free: rows above
//!    fill one buffer from the front, rows below from the back).
//! 2. **Break item** (`bound::split_at_capacity`): weighted Floyd-Rivest selection on the
//!    ratio `v / w` finds, in expected linear time and without sorting, the item where the
//!    greedy prefix stops fitting (starting inside the band when it provably holds the break,
//!    else over all candidates). Its ratio `lambda` gives the Dantzig bound, computed in its
//!    Lagrangian form `U = lambda W + sum_i max(0, v_i - lambda w_i)` (compensated sum), which
//!    is an upper bound for any `lambda` whatever the order of the items.
//! 3. **Lower bound**: the greedy (break solution, then every later item that still fits), then
//!    the best single exchange over a sample (`bound::best_swap`).
//! 4. **Reduction** (one pass): an item is fixed at its break-solution value when forcing it the
//!    other way bounds the problem by `U - |v_i - lambda w_i| <= z`. What is left is the *core*.
//!    A cardinality bound (Lagrangian with a second multiplier on "at most k core items fit",
//!    the surrogate bound of combo) is computed for the core and kept when it beats `U`; it is
//!    what proves strongly correlated instances (`v = w + c`) optimal.
//! 5. **Core search** (`exact::solve_core`): a minknap-style dynamic programme over
//!    undominated (weight, value) states, starting from the break solution and adding core
//!    items in order of increasing ratio distance from the break, alternately on each side.
//!    Each state is bounded by the Dembo-Hammer bound `v + lambda' (W - w)` with `lambda'` the
//!    ratio of the next unprocessed item on the right (or on the left when the state is over
//!    capacity), and by the cardinality bound; states at or below the incumbent are dropped.
//!    The core is sorted lazily: each expansion selects the next chunk (doubling) of nearest
//!    items in linear time and sorts only that chunk. The search ends when no state is left,
//!    when the incumbent reaches a root bound, or at a limit.
//!
//! Reconstruction: each state carries a node of a persistent decision log (`exact::Arena`):
//! a new state costs one node (row toggled, parent). Unreachable nodes are garbage-collected,
//! so the log stays proportional to the live states.
//!
//! # Guarantee
//!
//! `optimal == true` only when the certified `upper_bound` equals `objective` within 1e-9 relative.
//! The bound is reported as computed, never raised to the objective: when the search finishes it is
//! the largest of the incumbent's value and every bound it pruned a state or fixed an item on, each
//! of which it compared with the incumbent. Values are real numbers summed in f64: the optimum is
//! exact up to f64 summation (the DP compares f64 sums, so two solutions whose values differ by
//! less than their rounding may be ranked either way). Bounds use ratios rounded to f64; an item's
//! true ratio may exceed the rounded one by one ulp, which moves a bound by less than 1e-15
//! relative. When every value that can still be chosen or left out is a whole number and the values
//! sum below 2^53, sums are exact and a bound `u` certifies `c + floor(u - c)`, `c` the zero-cost
//! rows' value that every solution takes, whole or not (with 1e-11 relative slack for the bound's
//! own rounding). When a limit stops the search, `upper_bound` is the largest bound of any open
//! state (never above the root bound), still a valid bound, and `gap` says how far from proven the
//! answer is.
//!
//! Hard case: strongly correlated data whose values are not whole numbers (`v = w + 999.9`
//! rounded to f32) leaves the cardinality bound a hair above every solution, so the search
//! cannot prune and ends at a limit with a certified gap of order 1e-8 (see
//! `benches/README.md`).
//!
//! # Cost
//!
//! Time: O(n) for the passes (preprocess, selection, bound, reduction, output) plus the core
//! search, which is exponential in the worst case but on the classic and marketing-like
//! instances touches thousands of items (see `benches/README.md`). Memory: 4 bytes per row
//! (the candidate rows), a bitmap of the rows, the core items (16 bytes each), the state lists
//! (24 bytes per state, two lists; the search stops once a stage holds more than
//! [`SolveLimits::max_states`], and one stage at most doubles the list) plus 8 bytes per live
//! decision-log node.
//! The solver is single-threaded and deterministic: the same input gives the same rows,
//! whatever the thread count. Among optimal sets of equal value it returns the one its search
//! meets first (no further tie-break).

mod bound;
mod cost;
mod divisor;
mod exact;
pub mod lagrange;
pub mod parts;
mod preprocess;

use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use bound::{Item, Sum};
use exact::{Arena, CardBound, NIL, Pruner, Search, State};
use preprocess::{Candidates, preprocess};

pub use cost::{
    CostUnits, DEFAULT_RESOURCE_SCALE, as_written, scale_capacity, scale_costs, written_sum,
};

/// An integer cost in resource units as the solver reads it: `u32` where every cost fits
/// ([`CostUnits::Narrow`]), else `u64`.
pub trait CostUnit: Copy + Send + Sync + Into<u64> {}

impl CostUnit for u32 {}

impl CostUnit for u64 {}

/// Relative gap at or below which a selection counts as optimal.
pub const OPTIMALITY_TOLERANCE: f64 = 1e-9;

/// Limits on one solve.
#[derive(Debug, Clone)]
pub struct SolveLimits {
    /// Wall time after which the search returns its best solution with a certified gap.
    /// `None`: no limit. Default: 60 s.
    pub time_limit: Option<Duration>,
    /// Most states the core search keeps in one stage (24 bytes each, two lists); above it the
    /// search stops as for the time limit. Default: 2^22 (about 200 MiB).
    pub max_states: usize,
    /// The job's stop token: once it says stop (cancelled, or its deadline passed), the search
    /// stops as for the time limit. Default: never.
    pub cancel: Cancel,
}

impl Default for SolveLimits {
    fn default() -> Self {
        SolveLimits {
            time_limit: Some(Duration::from_secs(60)),
            max_states: 1 << 22,
            cancel: Cancel::default(),
        }
    }
}

impl SolveLimits {
    /// The default limits with a time limit of `seconds` (0 to
    /// [`crate::limits::MAX_TIME_LIMIT_SECS`]): `--time-limit` and the Python `time_limit=`.
    pub fn within_seconds(seconds: f64) -> crate::error::Result<SolveLimits> {
        use crate::error::Error;
        use crate::limits::MAX_TIME_LIMIT_SECS;
        // Written so that NaN fails too.
        if !(0.0..=MAX_TIME_LIMIT_SECS).contains(&seconds) {
            return Err(Error::invalid(
                "time-limit",
                format!(
                    "{seconds} is not a number of seconds from 0 to {MAX_TIME_LIMIT_SECS} (one day)"
                ),
            ));
        }
        let time_limit = Duration::try_from_secs_f64(seconds).map_err(|_| {
            Error::invalid(
                "time-limit",
                format!("{seconds} seconds is more than the largest duration"),
            )
        })?;
        Ok(SolveLimits {
            time_limit: Some(time_limit),
            ..SolveLimits::default()
        })
    }
}

/// Why a search stopped before proving optimality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// [`SolveLimits::time_limit`] passed, or [`SolveLimits::cancel`] said stop.
    TimeLimit,
    /// [`SolveLimits::max_states`] (or the decision-log size) was exceeded.
    StateLimit,
}

/// Wall time spent in each phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseTimes {
    /// Filtering rows into candidates.
    pub preprocess: Duration,
    /// Break item, Dantzig bound and greedy solution.
    pub split: Duration,
    /// Exchange heuristic, reduction to the core and the cardinality bound.
    pub reduce: Duration,
    /// The core search.
    pub search: Duration,
    /// Building the sorted row list and the objective.
    pub output: Duration,
}

/// What the solver saw and did.
#[derive(Debug, Clone, Default)]
pub struct SolveStats {
    /// Rows that pass the eligibility filter.
    pub eligible_rows: usize,
    /// Eligible rows with a positive value and a cost in `1..=capacity`.
    pub candidate_rows: usize,
    /// Eligible rows with a positive value and cost 0: always selected.
    pub zero_cost_rows: usize,
    /// Greatest common divisor of the candidates' costs, by which costs and capacity were
    /// divided (1 when none).
    pub cost_divisor: u64,
    /// Candidates left free by the root reduction.
    pub core_items: usize,
    /// Core items the search processed.
    pub core_processed: usize,
    /// States generated by the search over all stages.
    pub states: u64,
    /// Largest state list the search held.
    pub max_states: usize,
    /// Whether the cardinality bound was in use.
    pub cardinality_bound: bool,
    /// The break item's ratio, value per unit of the input costs (not of the common divisor):
    /// the multiplier of the root Lagrangian bound. `None` when every candidate fits (no break
    /// item). Callers reuse it for bounds of related problems: `lambda W + sum max(0, v -
    /// lambda w)` bounds any knapsack over the same values for any `lambda >= 0`.
    pub break_ratio: Option<f64>,
    /// Why the search stopped early, if it did.
    pub stopped_by: Option<StopReason>,
    /// Time per phase.
    pub times: PhaseTimes,
}

/// A chosen set of rows with the proof of its quality.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Chosen row indices, ascending.
    pub rows: Vec<usize>,
    /// Sum of the chosen rows' values (f64, in row order).
    pub objective: f64,
    /// A certified upper bound on the optimum, as the solver computed it (never raised to
    /// `objective`): the root bound, the largest bound of any open state when a limit stopped
    /// the search, or, when the search finished, the largest of the incumbent's value and every
    /// bound it pruned or fixed on. At least `objective` up to f64 summation order.
    pub upper_bound: f64,
    /// `(upper_bound - objective) / max(|upper_bound|, f64::MIN_POSITIVE)`; negative only by
    /// summation order (a larger negative gap would be a bug, and is not called optimal).
    pub gap: f64,
    /// `|gap| <= OPTIMALITY_TOLERANCE`: the selection is optimal.
    pub optimal: bool,
    /// What the solver saw and did.
    pub stats: SolveStats,
}

/// Solves the knapsack exactly: the best set of rows whose `costs` fit `capacity`.
///
/// `values[i]` is row i's value (CRV), `costs[i]` its integer resource use (see
/// [`scale_costs`]); `eligible` restricts the rows that may be chosen. Rows with a value that
/// is not finite and positive are never chosen. See the module doc for the algorithm, the
/// guarantee and the cost.
///
/// # Panics
///
/// When the slices' lengths differ, or there are more than `u32::MAX` rows.
pub fn knapsack<C: CostUnit>(
    values: &[f32],
    costs: &[C],
    capacity: u64,
    eligible: Option<&[bool]>,
    limits: &SolveLimits,
) -> Selection {
    solve(values, costs, capacity, eligible, limits, Mode::Exact)
}

/// The greedy solution (break solution, then every later item that fits) with the Dantzig
/// bound as its certificate: steps 1-3 of the exact solver, without the exchange heuristic.
/// The baseline the exact solver is measured against.
///
/// # Panics
///
/// As [`knapsack`].
pub fn knapsack_greedy<C: CostUnit>(
    values: &[f32],
    costs: &[C],
    capacity: u64,
    eligible: Option<&[bool]>,
) -> Selection {
    let limits = SolveLimits {
        time_limit: None,
        ..SolveLimits::default()
    };
    solve(values, costs, capacity, eligible, &limits, Mode::Greedy)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exact,
    Greedy,
}

/// One bit per row: the chosen set.
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(rows: usize) -> Self {
        Bitmap(vec![0; rows.div_ceil(64)])
    }

    #[inline]
    fn toggle(&mut self, row: u32) {
        self.0[row as usize / 64] ^= 1 << (row % 64);
    }

    /// The set rows, ascending, and the f64 sum of their values.
    fn rows_and_sum(&self, values: &[f32]) -> (Vec<usize>, f64) {
        let count: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        let mut rows = Vec::with_capacity(count as usize);
        let mut sum = Sum::default();
        for (w, &word) in self.0.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let row = w * 64 + bits.trailing_zeros() as usize;
                rows.push(row);
                sum.add(f64::from(values[row]));
                bits &= bits - 1;
            }
        }
        (rows, sum.value())
    }
}

fn solve<C: CostUnit>(
    values: &[f32],
    costs: &[C],
    capacity: u64,
    eligible: Option<&[bool]>,
    limits: &SolveLimits,
    mode: Mode,
) -> Selection {
    assert_eq!(
        values.len(),
        costs.len(),
        "values and costs differ in length"
    );
    if let Some(e) = eligible {
        assert_eq!(
            e.len(),
            values.len(),
            "eligible and values differ in length"
        );
    }
    assert!(
        u32::try_from(values.len()).is_ok(),
        "at most u32::MAX rows are supported"
    );
    let started = Instant::now();
    let deadline = limits.time_limit.map(|limit| started + limit);
    let past_deadline =
        || deadline.is_some_and(|d| Instant::now() >= d) || limits.cancel.is_stopped();
    let mut stats = SolveStats::default();
    let mut clock = Clock::new(started);

    let Candidates {
        mut rows,
        columns,
        capacity,
        hint,
        mut chosen,
        zero_cost_value,
        total_weight,
        min_weight,
        integral,
    } = preprocess(values, costs, capacity, eligible, &mut stats);
    stats.times.preprocess = clock.lap();
    if total_weight <= u128::from(capacity) {
        // Every candidate fits: the bound is their whole value, summed on its own.
        let mut everything = Sum::default();
        everything.add(zero_cost_value);
        for &row in &rows {
            everything.add(f64::from(values[row as usize]));
            chosen.toggle(row);
        }
        return finish(values, &chosen, everything.value(), stats, clock);
    }

    // Break item, Dantzig bound and greedy solution.
    let item = |row: &u32| columns.item(*row);
    let split = bound::split_at_capacity(
        &mut rows,
        capacity,
        |r| item(r).ratio(),
        |r| item(r).w,
        hint,
    )
    .expect("the candidates' total cost exceeds the capacity");
    let b = split.index;
    let break_item = item(&rows[b]);
    let lambda = break_item.ratio();
    stats.break_ratio = Some(lambda / stats.cost_divisor as f64);
    let base_weight =
        u64::try_from(split.weight_before).expect("the break prefix fits a u64 capacity");
    let mut base_value = Sum::default();
    base_value.add(zero_cost_value);
    // The Lagrangian terms of the break solution's items are summed on the same pass.
    let mut lagrangian = bound::Lagrangian::new(lambda);
    for &row in &rows[..b] {
        let item = item(&row);
        base_value.add(f64::from(item.p));
        lagrangian.add(&item);
        chosen.toggle(row);
    }
    let base_value = base_value.value();
    let (filled, fill_weight) =
        bound::greedy_fill(&mut rows, b, capacity - base_weight, min_weight, |r| {
            item(r).w
        });
    let mut arena = Arena::default();
    let mut incumbent = (base_value, NIL);
    for &row in &rows[b..b + filled] {
        incumbent.0 += f64::from(values[row as usize]);
        incumbent.1 = arena.push(row, incumbent.1);
    }
    for &row in &rows[b..] {
        lagrangian.add(&item(&row));
    }
    let root_bound = zero_cost_value + lagrangian.bound(capacity);
    let pruner = Pruner {
        integral,
        offset: zero_cost_value,
    };
    stats.times.split = clock.lap();
    let apply = |chosen: &mut Bitmap, arena: &Arena, node| {
        for row in arena.rows(node) {
            chosen.toggle(row);
        }
    };
    if mode == Mode::Greedy || pruner.pruned(root_bound, incumbent.0) || past_deadline() {
        if mode == Mode::Exact && !pruner.pruned(root_bound, incumbent.0) {
            stats.stopped_by = Some(StopReason::TimeLimit);
        }
        apply(&mut chosen, &arena, incumbent.1);
        let bound = pruner.certify(root_bound, incumbent.0);
        return finish(values, &chosen, bound, stats, clock);
    }

    // Exchange heuristic, then reduction to the core.
    let room = capacity - base_weight - fill_weight;
    let nth = |i: usize| item(&rows[i]);
    if let Some(swap) = bound::best_swap(nth, 0..b, b + filled..rows.len(), room) {
        incumbent.0 += swap.gain;
        if let Some(out) = swap.out {
            incumbent.1 = arena.push(rows[out], incumbent.1);
        }
        incumbent.1 = arena.push(rows[swap.take], incumbent.1);
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let mut fathomed = f64::NEG_INFINITY;
    for (i, row) in rows.iter().enumerate() {
        let item = item(row);
        let d = item.reduced(lambda);
        let in_break = i < b;
        let flip_bound = root_bound - if in_break { d.max(0.0) } else { (-d).max(0.0) };
        if pruner.pruned(flip_bound, incumbent.0) {
            fathomed = fathomed.max(flip_bound);
        } else {
            if in_break { &mut left } else { &mut right }.push(item);
        }
    }
    drop(rows);
    stats.core_items = left.len() + right.len();
    let start = State {
        w: base_weight,
        p: base_value,
        k: u32::try_from(left.len()).expect("rows fit u32"),
        node: NIL,
    };
    let card = cardinality_bound(&left, &right, &start, capacity, &break_item, root_bound);
    stats.cardinality_bound = card.is_some();
    stats.times.reduce = clock.lap();

    let search = Search {
        capacity,
        lambda,
        root_bound,
        pruner,
        deadline,
        cancel: limits.cancel.clone(),
        max_states: limits.max_states,
        fathomed,
    };
    let outcome = exact::solve_core(left, right, start, incumbent, &search, card, &mut arena);
    stats.core_processed = outcome.processed;
    stats.states = outcome.states;
    stats.max_states = outcome.max_states;
    stats.stopped_by = outcome.stopped_by;
    stats.times.search = clock.lap();
    apply(&mut chosen, &arena, outcome.node);
    finish(values, &chosen, outcome.bound, stats, clock)
}

/// Candidate slopes sampled for the cardinality bound's multipliers.
const SLOPE_SAMPLE: usize = 1024;

/// The cardinality bound for the core, when it beats the Dantzig bound at the root.
///
/// `k_max` = how many of the lightest core items fit the room left by the fixed items.
/// The multipliers lie on lines through the break item, `v = lambda w + mu`, whose slope is
/// the slope to another core item (sampled; exactly 1 on strongly correlated data). Five
/// sample quantiles are evaluated exactly over the core. Cost: O(core) time and memory.
fn cardinality_bound(
    left: &[Item],
    right: &[Item],
    start: &State,
    capacity: u64,
    break_item: &Item,
    root_bound: f64,
) -> Option<CardBound> {
    let core = || left.iter().chain(right);
    let core_len = left.len() + right.len();
    if core_len < 2 {
        return None;
    }
    let fixed_weight = start.w - left.iter().map(|i| i.w).sum::<u64>();
    let mut weights: Vec<u64> = core().map(|i| i.w).collect();
    let k_max = match bound::split_at_capacity(
        &mut weights,
        capacity - fixed_weight,
        |&w| -(w as f64),
        |&w| w,
        None,
    ) {
        Some(split) => split.index,
        None => weights.len(),
    };
    let k_max = u32::try_from(k_max).expect("rows fit u32");
    drop(weights);

    let (pb, wb) = (f64::from(break_item.p), break_item.w as f64);
    let step = (core_len / SLOPE_SAMPLE).max(1);
    let mut slopes: Vec<f64> = core()
        .step_by(step)
        .filter(|i| i.w != break_item.w)
        .map(|i| (f64::from(i.p) - pb) / (i.w as f64 - wb))
        .filter(|&s| s >= 0.0 && pb - s * wb >= 0.0)
        .collect();
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_unstable_by(f64::total_cmp);
    slopes.dedup();
    let mut best: Option<CardBound> = None;
    for q in [0.5, 0.3, 0.7, 0.1, 0.9] {
        let lambda = slopes[((slopes.len() - 1) as f64 * q) as usize];
        let mut card = CardBound {
            lambda,
            mu: pb - lambda * wb,
            k_max,
            root: 0.0,
            rest: 0.0,
        };
        let mut rest = Sum::default();
        for item in left {
            rest.add((-card.term(item)).max(0.0));
        }
        for item in right {
            rest.add(card.term(item).max(0.0));
        }
        card.rest = rest.value();
        card.root = start.p
            + card.lambda * (capacity as f64 - start.w as f64)
            + card.mu * (f64::from(k_max) - f64::from(start.k))
            + card.rest;
        if best.is_none_or(|b| card.root < b.root) {
            best = Some(card);
        }
    }
    best.filter(|c| c.root < root_bound)
}

/// Phase timer.
struct Clock {
    last: Instant,
}

impl Clock {
    fn new(started: Instant) -> Self {
        Clock { last: started }
    }

    /// Time since the previous lap.
    fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let lap = now - self.last;
        self.last = now;
        lap
    }
}

/// Builds the selection from the chosen bitmap and the certified bound as computed: never
/// raised to the objective, so a bound below it (a bug) shows as a negative gap and the
/// selection is not called optimal.
fn finish(
    values: &[f32],
    chosen: &Bitmap,
    upper_bound: f64,
    mut stats: SolveStats,
    mut clock: Clock,
) -> Selection {
    let (rows, objective) = chosen.rows_and_sum(values);
    let gap = (upper_bound - objective) / upper_bound.abs().max(f64::MIN_POSITIVE);
    debug_assert!(
        gap >= -OPTIMALITY_TOLERANCE,
        "bound {upper_bound} below the objective {objective}"
    );
    stats.times.output = clock.lap();
    Selection {
        rows,
        objective,
        upper_bound,
        gap,
        optimal: gap.abs() <= OPTIMALITY_TOLERANCE,
        stats,
    }
}
