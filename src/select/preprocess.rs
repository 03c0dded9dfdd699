//! Step 1 of the solver (module doc of `select`): the pass that filters the rows into
//! candidates, ordered above, inside and below a band of ratios around the expected break.
//!
//! The rows are cut into chunks of [`CHUNK_ROWS`] (a fixed size, so the result does not depend
//! on the thread count) and the pass runs twice over them on the rayon pool: the first counts
//! each chunk's candidates in each group and gathers its totals, the second writes each
//! chunk's rows into its own disjoint slices of the final layout. The layout is the one a
//! single sequential pass would produce (each group in ascending row order), and the buffer's
//! fresh pages are first touched by both cores (at 1e8 rows it is 400 MB).

use rayon::prelude::*;

use super::bound::{self, Item, Sum};
use super::divisor::CommonDivisor;
use super::{Bitmap, CostUnit, SolveStats};

/// Rows per chunk of the pass: a multiple of 64 (each chunk owns whole words of the chosen
/// bitmap), large enough that a chunk's bookkeeping is nothing beside its rows.
const CHUNK_ROWS: usize = 1 << 18;

/// Rows sampled to place the band of ratios where the break item is expected.
const BAND_SAMPLE_ROWS: usize = 1 << 15;

/// The candidates of one problem and the rows that enter for free.
pub(super) struct Candidates<'a, C> {
    /// Candidate rows: those above the band, inside it, then below it.
    pub rows: Vec<u32>,
    /// Their values and costs (in units of the costs' common divisor).
    pub columns: Columns<'a, C>,
    /// The capacity in units of the costs' common divisor.
    pub capacity: u64,
    /// A range of `rows` that holds the break item if the sample was right, and the weight
    /// before it.
    pub hint: Option<(std::ops::Range<usize>, u128)>,
    /// The rows that enter for free (positive value, zero cost).
    pub chosen: Bitmap,
    /// Their summed value.
    pub zero_cost_value: f64,
    /// Total cost of the candidates, in units of the common divisor.
    pub total_weight: u128,
    /// The lightest candidate's cost, in units of the common divisor.
    pub min_weight: u64,
    /// Whether every candidate's value is a whole number and their sums are exact in f64.
    pub integral: bool,
}

/// The input columns seen through the common divisor: a candidate's [`Item`] is built from its
/// row on demand, so the passes keep 4 bytes per candidate instead of a 16-byte copy.
#[derive(Clone, Copy)]
pub(super) struct Columns<'a, C> {
    values: &'a [f32],
    costs: &'a [C],
    divisor: CommonDivisor,
}

impl<C: CostUnit> Columns<'_, C> {
    /// The candidate at `row`, its cost divided by the common divisor (exact).
    #[inline]
    pub fn item(&self, row: u32) -> Item {
        let i = row as usize;
        Item {
            w: self.divisor.divide(self.costs[i].into()),
            p: self.values[i],
            row,
        }
    }
}

/// The problem's rows as the pass reads them.
#[derive(Clone, Copy)]
struct Rows<'a, C> {
    values: &'a [f32],
    costs: &'a [C],
    capacity: u64,
    eligible: Option<&'a [bool]>,
    /// Ratios above `upper` are above the band, below `lower` below it.
    upper: f64,
    lower: f64,
}

/// Where a row goes.
struct Class {
    eligible: bool,
    /// Positive value and zero cost: enters for free.
    free: bool,
    candidate: bool,
    above: bool,
    below: bool,
}

impl<C: CostUnit> Rows<'_, C> {
    #[inline(always)]
    fn classify(&self, row: usize) -> Class {
        let (v, w) = (self.values[row], self.costs[row].into());
        let eligible = self.eligible.is_none_or(|e| e[row]);
        let valid = eligible && v.is_finite() && v > 0.0;
        let candidate = valid & (w != 0) & (w <= self.capacity);
        // `p > r w` rather than `p / w > r`: no division on the hot path; the two agree
        // up to an ulp, which moves bounds by less than the documented rounding.
        let (pv, wv) = (f64::from(v), w as f64);
        let above = candidate & (pv > self.upper * wv);
        let below = candidate & !above & (pv < self.lower * wv);
        Class {
            eligible,
            free: valid && w == 0,
            candidate,
            above,
            below,
        }
    }
}

/// One chunk's counts and totals, from the first pass.
#[derive(Clone)]
struct ChunkTotals {
    above: usize,
    inside: usize,
    below: usize,
    eligible_rows: usize,
    zero_cost_rows: usize,
    zero_cost_value: Sum,
    above_weight: u128,
    total_weight: u128,
    min_weight: u64,
    max_value: f32,
    integral: bool,
    divisor: CommonDivisor,
}

impl ChunkTotals {
    fn candidates(&self) -> usize {
        self.above + self.inside + self.below
    }

    /// The totals of `self`'s rows followed by `next`'s.
    fn merge(mut self, next: &ChunkTotals) -> ChunkTotals {
        self.above += next.above;
        self.inside += next.inside;
        self.below += next.below;
        self.eligible_rows += next.eligible_rows;
        self.zero_cost_rows += next.zero_cost_rows;
        self.zero_cost_value.add(next.zero_cost_value.value());
        self.above_weight += next.above_weight;
        self.total_weight += next.total_weight;
        self.min_weight = self.min_weight.min(next.min_weight);
        self.max_value = self.max_value.max(next.max_value);
        self.integral &= next.integral;
        self.divisor.merge(&next.divisor);
        self
    }
}

/// First pass over one chunk: counts and totals; marks the rows that enter for free in
/// `chosen`, the chunk's words of the bitmap.
fn count_chunk<C: CostUnit>(
    rows: &Rows<'_, C>,
    range: std::ops::Range<usize>,
    chosen: &mut [u64],
) -> ChunkTotals {
    let first = range.start;
    let mut totals = ChunkTotals {
        above: 0,
        inside: 0,
        below: 0,
        eligible_rows: 0,
        zero_cost_rows: 0,
        zero_cost_value: Sum::default(),
        above_weight: 0,
        total_weight: 0,
        min_weight: u64::MAX,
        max_value: 0.0,
        integral: true,
        divisor: CommonDivisor::new(),
    };
    for row in range {
        let class = rows.classify(row);
        let (v, w) = (rows.values[row], rows.costs[row].into());
        totals.eligible_rows += usize::from(class.eligible);
        if class.free {
            totals.zero_cost_rows += 1;
            totals.zero_cost_value.add(f64::from(v));
            let local = row - first;
            chosen[local / 64] ^= 1 << (local % 64);
        }
        let candidate = class.candidate;
        totals.above += usize::from(class.above);
        totals.below += usize::from(class.below);
        totals.inside += usize::from(candidate & !class.above & !class.below);
        totals.above_weight += u128::from(if class.above { w } else { 0 });
        totals.total_weight += u128::from(if candidate { w } else { 0 });
        totals.min_weight = totals.min_weight.min(if candidate { w } else { u64::MAX });
        if candidate {
            totals.divisor.add(w);
        }
        totals.max_value = totals.max_value.max(if candidate { v } else { 0.0 });
        totals.integral &= !candidate || v == v.trunc();
    }
    totals
}

/// A chunk's slices of one group in the final layout, written in row order.
struct GroupWriter<'a> {
    slots: &'a mut [u32],
    next: usize,
}

impl GroupWriter<'_> {
    /// Writes `row` when `member`, without branching on it (above/below is a coin flip on
    /// uncorrelated data): the store goes to the next free slot, clamped to the last one, and
    /// writes back what is there when the row is not a member.
    #[inline]
    fn push_if(&mut self, row: u32, member: bool) {
        if let Some(last) = self.slots.len().checked_sub(1) {
            let slot = self.next.min(last);
            self.slots[slot] = if member { row } else { self.slots[slot] };
            self.next += usize::from(member);
        }
    }
}

/// Second pass over one chunk: its candidates into its slices of the three groups.
fn place_chunk<C: CostUnit>(
    rows: &Rows<'_, C>,
    range: std::ops::Range<usize>,
    [above, inside, below]: [&mut [u32]; 3],
) {
    let mut above = GroupWriter {
        slots: above,
        next: 0,
    };
    let mut below = GroupWriter {
        slots: below,
        next: 0,
    };
    let mut inside_next = 0;
    for row in range {
        let class = rows.classify(row);
        let row = row as u32; // the caller checked rows <= u32::MAX
        above.push_if(row, class.above);
        below.push_if(row, class.below);
        if class.candidate & !class.above & !class.below {
            inside[inside_next] = row;
            inside_next += 1;
        }
    }
    debug_assert_eq!(above.next, above.slots.len());
    debug_assert_eq!(below.next, below.slots.len());
    debug_assert_eq!(inside_next, inside.len());
}

/// Filters the rows into candidates (see the module doc) in two parallel passes over fixed
/// chunks.
///
/// On large inputs a stride sample of the rows first estimates the break ratio; the candidate
/// rows are then ordered in three groups (ratios above a band around it, inside, below), so
/// that the selection of the break item starts from the thin band instead of partitioning
/// everything.
pub(super) fn preprocess<'a, C: CostUnit>(
    values: &'a [f32],
    costs: &'a [C],
    capacity: u64,
    eligible: Option<&'a [bool]>,
    stats: &mut SolveStats,
) -> Candidates<'a, C> {
    preprocess_in_chunks(values, costs, capacity, eligible, stats, CHUNK_ROWS)
}

fn preprocess_in_chunks<'a, C: CostUnit>(
    values: &'a [f32],
    costs: &'a [C],
    capacity: u64,
    eligible: Option<&'a [bool]>,
    stats: &mut SolveStats,
    chunk_rows: usize,
) -> Candidates<'a, C> {
    debug_assert_eq!(chunk_rows % 64, 0, "chunks own whole bitmap words");
    let band = sample_band(values, costs, capacity, eligible);
    // Without a band every candidate is "above" it.
    let (upper, lower) = band.unwrap_or((f64::NEG_INFINITY, f64::NEG_INFINITY));
    let rows = Rows {
        values,
        costs,
        capacity,
        eligible,
        upper,
        lower,
    };
    let n = values.len();
    let chunk_range = |chunk: usize| chunk * chunk_rows..((chunk + 1) * chunk_rows).min(n);
    let mut chosen = Bitmap::new(n);
    let chunks: Vec<ChunkTotals> = chosen
        .0
        .par_chunks_mut(chunk_rows / 64)
        .enumerate()
        .map(|(chunk, words)| count_chunk(&rows, chunk_range(chunk), words))
        .collect();
    let empty = count_chunk(&rows, 0..0, &mut []);
    let totals = chunks.iter().fold(empty, ChunkTotals::merge);

    // Layout: above, inside, below; each chunk's share of each group in chunk order.
    let candidate_rows = totals.candidates();
    let mut buffer = vec![0u32; candidate_rows];
    let (mut above, rest) = buffer.split_at_mut(totals.above);
    let (mut inside, mut below) = rest.split_at_mut(totals.inside);
    let mut slices = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let (a, rest) = std::mem::take(&mut above).split_at_mut(chunk.above);
        let (i, rest_inside) = std::mem::take(&mut inside).split_at_mut(chunk.inside);
        let (b, rest_below) = std::mem::take(&mut below).split_at_mut(chunk.below);
        (above, inside, below) = (rest, rest_inside, rest_below);
        slices.push([a, i, b]);
    }
    slices
        .into_par_iter()
        .enumerate()
        .for_each(|(chunk, groups)| place_chunk(&rows, chunk_range(chunk), groups));

    stats.eligible_rows = totals.eligible_rows;
    stats.candidate_rows = candidate_rows;
    stats.zero_cost_rows = totals.zero_cost_rows;
    let divisor = totals.divisor;
    stats.cost_divisor = divisor.value().max(1);
    let g = stats.cost_divisor;
    let above_end = totals.above;
    // Exact: every weight above the band is a multiple of g.
    let hint = band.map(|_| {
        (
            above_end..above_end + totals.inside,
            totals.above_weight / u128::from(g),
        )
    });
    Candidates {
        rows: buffer,
        columns: Columns {
            values,
            costs,
            divisor,
        },
        capacity: capacity / g,
        hint,
        chosen,
        zero_cost_value: totals.zero_cost_value.value(),
        total_weight: totals.total_weight / u128::from(g),
        min_weight: totals.min_weight / g,
        // Every sum of values is at most count * max, exact in f64 below 2^53.
        integral: totals.integral
            && f64::from(totals.max_value) * (candidate_rows as f64) < 2f64.powi(53),
    }
}

/// Upper and lower ratio of a band that holds the break item with high probability: 4 sample
/// standard deviations either side of the sample's estimate. `None` on small inputs.
fn sample_band<C: CostUnit>(
    values: &[f32],
    costs: &[C],
    capacity: u64,
    eligible: Option<&[bool]>,
) -> Option<(f64, f64)> {
    let rows = values.len();
    if rows < 4 * BAND_SAMPLE_ROWS {
        return None;
    }
    let step = rows / BAND_SAMPLE_ROWS;
    let mut sample: Vec<(f64, u64)> = (0..rows)
        .step_by(step)
        .filter(|&row| eligible.is_none_or(|e| e[row]))
        .map(|row| (values[row], costs[row].into()))
        .filter(|&(v, w)| v.is_finite() && v > 0.0 && w > 0 && w <= capacity)
        .map(|(v, w)| (f64::from(v) / w as f64, w))
        .collect();
    if sample.len() < 64 {
        return None;
    }
    let scale = step as f64;
    let spread = 4 * (sample.len() as f64).sqrt() as usize;
    Some(bound::band_around_break(
        &mut sample,
        scale,
        u128::from(capacity),
        spread,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values, costs and eligibility with every kind of row: free, over capacity, ineligible,
    /// non-positive, non-finite, and costs sharing a divisor of 5.
    fn instance(n: usize, seed: u64) -> (Vec<f32>, Vec<u64>, Vec<bool>) {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let (mut values, mut costs, mut eligible) = (vec![], vec![], vec![]);
        for _ in 0..n {
            let kind = next() % 100;
            values.push(match kind {
                0 => -3.0,
                1 => f32::NAN,
                _ => (next() % 10_000) as f32 / 7.0,
            });
            costs.push(match kind {
                2 | 3 => 0,
                4 => 1_000_000_000,
                _ => 5 * (1 + next() % 400),
            });
            eligible.push(kind != 5);
        }
        (values, costs, eligible)
    }

    fn run<'a>(
        values: &'a [f32],
        costs: &'a [u64],
        eligible: &'a [bool],
        capacity: u64,
        chunk_rows: usize,
    ) -> (Candidates<'a, u64>, SolveStats) {
        let mut stats = SolveStats::default();
        let candidates = preprocess_in_chunks(
            values,
            costs,
            capacity,
            Some(eligible),
            &mut stats,
            chunk_rows,
        );
        (candidates, stats)
    }

    #[test]
    fn chunks_give_the_layout_of_one_sequential_pass() {
        // 5 * 32768 rows: enough for the band; chunks of 4096 rows and a partial last one.
        for (n, seed) in [(5 * BAND_SAMPLE_ROWS + 123, 1), (10_000, 2), (0, 3)] {
            let (values, costs, eligible) = instance(n, seed);
            let capacity = 200_000;
            let (one, one_stats) = run(&values, &costs, &eligible, capacity, 1 << 30);
            let (many, many_stats) = run(&values, &costs, &eligible, capacity, 4096);
            assert_eq!(one.rows, many.rows, "n = {n}");
            assert_eq!(one.hint, many.hint);
            assert_eq!(one.chosen.0, many.chosen.0);
            assert_eq!(
                (one.capacity, one.total_weight, one.min_weight, one.integral),
                (
                    many.capacity,
                    many.total_weight,
                    many.min_weight,
                    many.integral
                )
            );
            assert!(
                (one.zero_cost_value - many.zero_cost_value).abs()
                    <= 1e-9 * one.zero_cost_value.abs()
            );
            assert_eq!(
                (
                    one_stats.eligible_rows,
                    one_stats.candidate_rows,
                    one_stats.zero_cost_rows,
                    one_stats.cost_divisor
                ),
                (
                    many_stats.eligible_rows,
                    many_stats.candidate_rows,
                    many_stats.zero_cost_rows,
                    many_stats.cost_divisor
                )
            );
            if n > 4 * BAND_SAMPLE_ROWS {
                assert!(one.hint.is_some(), "a band on large inputs");
            }
        }
    }

    #[test]
    fn candidates_are_the_rows_a_plain_filter_keeps_in_band_order() {
        let (values, costs, eligible) = instance(5 * BAND_SAMPLE_ROWS, 9);
        let capacity = 300_000;
        let (candidates, stats) = run(&values, &costs, &eligible, capacity, 4096);
        let keep = |row: usize| {
            eligible[row]
                && values[row].is_finite()
                && values[row] > 0.0
                && costs[row] != 0
                && costs[row] <= capacity
        };
        let expected: Vec<u32> = (0..values.len())
            .filter(|&r| keep(r))
            .map(|r| r as u32)
            .collect();
        let mut sorted = candidates.rows.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(stats.cost_divisor, 5);
        assert_eq!(candidates.capacity, capacity / 5);
        // Each group is ascending, and ratios fall by group: above > inside range > below.
        let (range, _) = candidates.hint.clone().expect("a band");
        let ratio = |row: u32| f64::from(values[row as usize]) / costs[row as usize] as f64;
        let groups = [
            &candidates.rows[..range.start],
            &candidates.rows[range.clone()],
            &candidates.rows[range.end..],
        ];
        for group in groups {
            assert!(group.windows(2).all(|w| w[0] < w[1]));
        }
        let min_above = groups[0]
            .iter()
            .map(|&r| ratio(r))
            .fold(f64::INFINITY, f64::min);
        let max_inside = groups[1].iter().map(|&r| ratio(r)).fold(0.0, f64::max);
        let min_inside = groups[1]
            .iter()
            .map(|&r| ratio(r))
            .fold(f64::INFINITY, f64::min);
        let max_below = groups[2].iter().map(|&r| ratio(r)).fold(0.0, f64::max);
        assert!(min_above >= max_inside && min_inside >= max_below);
        // The free rows are exactly the eligible zero-cost rows of positive value.
        for row in 0..values.len() {
            let free =
                eligible[row] && values[row].is_finite() && values[row] > 0.0 && costs[row] == 0;
            assert_eq!(
                candidates.chosen.0[row / 64] >> (row % 64) & 1 == 1,
                free,
                "row {row}"
            );
        }
    }
}
