//! Improving the plan on its fractional core, exactly when the core is small.
//!
//! At prices `y`, every plan's value is at most `L(y) - sum_i loss_i`, where `loss_i` is what
//! customer i's choice gives up against their best choice at `y` (reduced value of the best
//! minus reduced value of the choice; "no offer" has reduced value 0). So a plan better than
//! the incumbent has `sum_i loss_i < L(y) - incumbent`: every customer whose alternatives all
//! lose at least that much keeps their best choice in every better plan (reduced-cost fixing).
//! The rest, the *core*, are the customers whose choice changes near the optimal prices.
//!
//! The core is searched depth first, customers by their smallest loss (then id), each one's
//! choices by loss (then position, "no offer" first). A branch ends when its losses leave
//! no room for a better plan, and is cut when the choices so far plus the best choices of the
//! customers forced by the room left (those whose smallest loss exceeds it) break a limit or
//! an offer's maximum, or when freeing what the best choices of the customers still open
//! overfill costs more than the room: per limit, a fractional knapsack of the open customers'
//! cheapest loss per unit freed (a bound no plan in the branch beats). Every plan found raises
//! the incumbent and shrinks the room. The search runs in passes over a growing share of the
//! room (1/256 of it, then four times as much each pass, then all of it): the plans of
//! smallest loss, which are the likely better ones, are found first, so the last pass searches
//! a smaller room. When the last pass ends within its budget over the whole core, no plan is
//! better than the incumbent by more than [`IMPROVEMENT`] (relative): the plan is optimal
//! for the integer problem, and `objective * (1 + IMPROVEMENT)` is a certified bound.
//!
//! When the core is larger than a round may search, the round searches its customers of
//! smallest loss (the others keep their best choice): a plan found there is a better plan,
//! not a proof; it shrinks the room, and so the core, for the next round.
//!
//! Minimum counts are not searched (the caller keeps the repaired plan when an offer has
//! one). Cost per round: one pass over the customers for the core, its sort, and at most
//! `Options::core_nodes` nodes (2^22 on part of the core) of `O(limits + offers)` each, plus
//! the deficit bound's walk over the open customers for each overfilled limit.

use std::time::Instant;

use rayon::prelude::*;

use super::pricing::{Prices, Tally, Totals, ranked, tally_choices, totals};
use super::{Options, Problem};

/// Most customers searched in the first round. When the core is larger, a round searches the
/// customers of smallest loss (improving the plan without proving it optimal); each plan found
/// shrinks the room and so the core, and a round that finds none quadruples this cap.
const FIRST_CORE: usize = 1 << 12;

/// Most customers searched in one round.
const MAX_CORE: usize = 1 << 16;

/// Most nodes of a round over part of the core (a round over the whole core, which can prove
/// the plan optimal, may take `Options::core_nodes`).
const PARTIAL_ROUND_NODES: u64 = 1 << 22;

/// Most rounds.
const MAX_ROUNDS: usize = 8;

/// Nodes between two looks at the clock and the cancel token.
const CHECK_EVERY: u64 = 1 << 12;

/// The first pass of a round searches plans losing less than this share of the room; each
/// next pass four times as much, up to the whole room.
const FIRST_ROOM_SHARE: f64 = 1.0 / 256.0;

/// Excess over a row's capacity, relative to it, that the deficit bound treats as rounding.
const DEFICIT_SLACK: f64 = 1e-12;

/// A plan counts as better only when it beats the incumbent by this much, relative to the
/// incumbent: the slack of the certificate a finished search gives.
pub const IMPROVEMENT: f64 = 1e-10;

/// What the search answers.
pub struct Improved {
    /// The plan (the incumbent when nothing better was found).
    pub choice: Vec<u8>,
    /// The search covered every plan that could beat the answer: it is optimal.
    pub proven: bool,
}

/// One customer of the core: their row, smallest loss, and choices in the order tried.
struct Member {
    row: usize,
    margin: f64,
    /// `(loss, choice)`: choice 0 is no offer, `o + 1` offer o; the best (loss 0) first.
    choices: Vec<(f64, u8)>,
}

/// Customer `i`'s choices at `prices`, by loss then choice: `(loss, choice)`, best first.
fn choices(problem: &Problem<'_>, prices: &Prices, i: usize) -> Vec<(f64, u8)> {
    let mut reduced: Vec<(f64, u8)> = vec![(0.0, 0)];
    for (o, offer) in problem.offers.iter().enumerate() {
        if offer.is_eligible(i) {
            reduced.push((prices.reduced(problem, i, o), o as u8 + 1));
        }
    }
    // Largest reduced value first; on ties the earlier choice (none, then offer order), as
    // `Prices::best` breaks them.
    reduced.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let top = reduced[0].0;
    reduced.into_iter().map(|(r, c)| (top - r, c)).collect()
}

/// Improves `incumbent` (feasible, worth `objective`) on the core at `prices`, where the
/// Lagrangian is `bound`. See the module doc.
pub fn improve(
    problem: &Problem<'_>,
    prices: &Prices,
    bound: f64,
    mut incumbent: Vec<u8>,
    mut objective: f64,
    options: &Options,
    started: Instant,
) -> Improved {
    if bound - objective <= options.target_gap * bound.abs() {
        // The certified gap meets the target already.
        return Improved {
            choice: incumbent,
            proven: bound - objective <= IMPROVEMENT * objective.abs(),
        };
    }
    // Every customer's best choice and smallest loss (margin), and what the best choices
    // add up to.
    let ranked = ranked(problem, prices);
    let (best, margins) = (&ranked.best, &ranked.margin);
    let best_tally = tally_choices(problem, best);
    let mut cap = FIRST_CORE;
    for _ in 0..MAX_ROUNDS {
        let slack = IMPROVEMENT * objective.abs();
        let room = bound - objective - slack;
        if room <= 0.0 {
            return Improved {
                choice: incumbent,
                proven: true,
            };
        }
        if bound - objective <= options.target_gap * bound.abs() {
            // The certified gap meets the target: no proof of optimality needed.
            break;
        }
        let (core, whole) = core(problem, prices, margins, room, cap);
        // Everyone else keeps their best choice: what is left of each limit and maximum.
        let (fixed, fixed_totals) = outside(problem, &core, best, &best_tally);
        let mut search = Search::new(problem, &core, &fixed_totals);
        let mut threshold = objective + slack;
        let mut budget = if whole {
            options.core_nodes
        } else {
            options.core_nodes.min(PARTIAL_ROUND_NODES)
        };
        // Deviations of small loss first: passes over a growing share of the room find the
        // plans of least loss early, and each plan found shrinks the room of the next pass.
        let mut limit = (bound - threshold) * FIRST_ROOM_SHARE;
        loop {
            let full = limit >= bound - threshold;
            let limit_now = if full { f64::INFINITY } else { limit };
            let ended = search.run(
                &mut threshold,
                (bound, limit_now),
                &mut budget,
                options,
                started,
            );
            let target_met = bound - threshold <= options.target_gap * bound.abs();
            if !ended || full || target_met {
                break;
            }
            limit *= 4.0;
        }
        let stopped = options.cancel.is_stopped()
            || options.time_limit.is_some_and(|l| started.elapsed() >= l);
        let mut improved = false;
        let found = search.found.take();
        let found_any = found.is_some();
        if let Some(path) = found {
            let mut choice = fixed;
            for (member, &c) in core.iter().zip(&path) {
                choice[member.row] = c;
            }
            // The search summed in f64; the exact totals decide.
            let exact = totals(problem, &choice);
            if fits(problem, &exact) && exact.value > objective {
                (incumbent, objective) = (choice, exact.value);
                improved = true;
            }
        }
        if whole && search.finished {
            // Nothing is better than the incumbent the search started from, or than the last
            // plan it found (its best), unless the exact totals turned that one down.
            return Improved {
                choice: incumbent,
                proven: !found_any || improved,
            };
        }
        if stopped || (!improved && (whole || cap >= MAX_CORE)) {
            break;
        }
        if !improved {
            cap = (cap * 4).min(MAX_CORE);
        }
    }
    Improved {
        choice: incumbent,
        proven: false,
    }
}

/// Every customer outside `core` at their `choice` (tallied in `tally`), the core's members
/// at none, and what those add up to (the tally less the members' choices, exact).
fn outside(
    problem: &Problem<'_>,
    core: &[Member],
    choice: &[u8],
    tally: &Tally,
) -> (Vec<u8>, Totals) {
    let mut fixed = choice.to_vec();
    let mut tally = tally.clone();
    for member in core {
        if let Some(o) = fixed[member.row].checked_sub(1) {
            tally.remove(problem, member.row, usize::from(o));
        }
        fixed[member.row] = 0;
    }
    (fixed, Totals::of(problem, tally))
}

/// Whether `totals` keep every limit and maximum.
fn fits(problem: &Problem<'_>, totals: &Totals) -> bool {
    totals.used.iter().zip(&problem.limits).all(|(u, l)| u <= l)
        && problem
            .offers
            .iter()
            .zip(&totals.counts)
            .all(|(offer, &count)| offer.max.is_none_or(|max| count <= max))
}

/// The core: customers with a loss below `room`, at most `cap` of them (the smallest losses,
/// then ids), in search order; and whether that is all of them.
fn core(
    problem: &Problem<'_>,
    prices: &Prices,
    margins: &[f64],
    room: f64,
    cap: usize,
) -> (Vec<Member>, bool) {
    let mut rows: Vec<usize> = (0..margins.len())
        .into_par_iter()
        .filter(|&i| margins[i] < room)
        .collect();
    let order = |a: &usize, b: &usize| {
        margins[*a]
            .total_cmp(&margins[*b])
            .then(problem.ids[*a].cmp(&problem.ids[*b]))
    };
    let whole = rows.len() <= cap;
    if !whole {
        rows.select_nth_unstable_by(cap - 1, order);
        rows.truncate(cap);
    }
    rows.par_sort_unstable_by(order);
    let members = rows
        .into_par_iter()
        .map(|i| Member {
            row: i,
            margin: margins[i],
            choices: choices(problem, prices, i),
        })
        .collect();
    (members, whole)
}

/// The search's flat tables over the core's members, in search order, and its state.
struct Search<'c> {
    core: &'c [Member],
    /// What the customers outside the core are worth.
    fixed_value: f64,
    /// Rows: the resources, then the offers' counts (`f64::INFINITY` capacity when no max).
    rows: usize,
    capacity: Vec<f64>,
    /// Per member and choice: value, then each row's use, flattened per member.
    value: Vec<Vec<f64>>,
    uses: Vec<Vec<f64>>,
    /// Uses and values of members `d..` at their best choices (`(m + 1) * rows`, `m + 1`).
    suffix_uses: Vec<f64>,
    suffix_value: Vec<f64>,
    /// Per row: the members that can free some of it, each as `(loss per unit freed, most
    /// freed, member)`, cheapest first (see [`Search::deficit_cost`]).
    freeing: Vec<Vec<(f64, f64, usize)>>,
    /// The best path found (a choice per member), if any beat the incumbent.
    found: Option<Vec<u8>>,
    finished: bool,
}

impl<'c> Search<'c> {
    fn new(problem: &Problem<'_>, core: &'c [Member], fixed: &super::pricing::Totals) -> Self {
        let resources = problem.limits.len();
        let rows = resources + problem.offers.len();
        let mut capacity: Vec<f64> = problem
            .limits
            .iter()
            .zip(&fixed.used)
            .map(|(l, u)| l - u)
            .collect();
        capacity.extend(
            problem
                .offers
                .iter()
                .zip(&fixed.counts)
                .map(|(o, &c)| o.max.map_or(f64::INFINITY, |m| m as f64 - c as f64)),
        );
        let value_of = |i: usize, c: u8| {
            c.checked_sub(1)
                .map_or(0.0, |o| problem.offers[usize::from(o)].value.get(i))
        };
        let uses_of = |i: usize, c: u8, out: &mut Vec<f64>| {
            let start = out.len();
            out.resize(start + rows, 0.0);
            if let Some(o) = c.checked_sub(1).map(usize::from) {
                for k in 0..resources {
                    out[start + k] = problem.offers[o].uses[k].get(i);
                }
                out[start + resources + o] = 1.0;
            }
        };
        let mut value: Vec<Vec<f64>> = Vec::with_capacity(core.len());
        let mut uses = Vec::with_capacity(core.len());
        for member in core {
            value.push(
                member
                    .choices
                    .iter()
                    .map(|&(_, c)| value_of(member.row, c))
                    .collect(),
            );
            let mut u = Vec::with_capacity(member.choices.len() * rows);
            for &(_, c) in &member.choices {
                uses_of(member.row, c, &mut u);
            }
            uses.push(u);
        }
        let m = core.len();
        let mut suffix_uses = vec![0.0; (m + 1) * rows];
        let mut suffix_value = vec![0.0; m + 1];
        for d in (0..m).rev() {
            for r in 0..rows {
                suffix_uses[d * rows + r] = suffix_uses[(d + 1) * rows + r] + uses[d][r];
            }
            suffix_value[d] = suffix_value[d + 1] + value[d][0];
        }
        let freeing = (0..rows)
            .map(|r| {
                let mut members: Vec<(f64, f64, usize)> = core
                    .iter()
                    .enumerate()
                    .filter_map(|(e, member)| {
                        let at = |j: usize| uses[e][j * rows + r];
                        let (mut ratio, mut most) = (f64::INFINITY, 0.0f64);
                        for (j, &(loss, _)) in member.choices.iter().enumerate().skip(1) {
                            let freed = at(0) - at(j);
                            if freed > 0.0 {
                                ratio = ratio.min(loss / freed);
                                most = most.max(freed);
                            }
                        }
                        (most > 0.0).then_some((ratio, most, e))
                    })
                    .collect();
                members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
                members
            })
            .collect();
        Search {
            core,
            fixed_value: fixed.value,
            rows,
            capacity,
            value,
            uses,
            suffix_uses,
            suffix_value,
            freeing,
            found: None,
            finished: false,
        }
    }

    /// Whether `used` plus the best choices of members `from..` fit every row.
    fn fits_with_tail(&self, used: &[f64], from: usize) -> bool {
        let tail = &self.suffix_uses[from * self.rows..(from + 1) * self.rows];
        used.iter()
            .zip(tail)
            .zip(&self.capacity)
            .all(|((u, t), c)| u + t <= *c)
    }

    /// A lower bound on the loss members `d..forced` must add for every row to fit, given
    /// `used` by the members before `d` and the best choices of the members from `d` on
    /// (members from `forced` on cannot change within the room): per row over its capacity,
    /// the cheapest fractional freeing of the excess (each member at its best loss per unit
    /// freed, up to the most it can free), the largest over the rows; infinite when a row
    /// cannot be freed enough. Stops counting at `room`.
    fn deficit_cost(&self, used: &[f64], d: usize, forced: usize, room: f64) -> f64 {
        let tail = &self.suffix_uses[d * self.rows..(d + 1) * self.rows];
        let mut worst = 0.0f64;
        for r in 0..self.rows {
            let capacity = self.capacity[r];
            let mut excess = used[r] + tail[r] - capacity;
            // Sums of f32 inputs in f64: an excess within rounding is no excess (the leaves
            // check the exact fit).
            if excess <= DEFICIT_SLACK * (capacity.abs() + 1.0) {
                continue;
            }
            let mut cost = 0.0;
            for &(ratio, most, e) in &self.freeing[r] {
                if e < d || e >= forced {
                    continue;
                }
                let freed = most.min(excess);
                cost += ratio * freed;
                excess -= freed;
                if excess <= 0.0 || cost >= room {
                    break;
                }
            }
            if excess > DEFICIT_SLACK * (capacity.abs() + 1.0) {
                return f64::INFINITY;
            }
            worst = worst.max(cost);
            if worst >= room {
                break;
            }
        }
        worst
    }

    /// Depth-first search for a plan worth more than `threshold` (the incumbent plus the
    /// slack; raised to each plan found) at the Lagrangian `bound`, among the plans whose
    /// losses add up to less than `limit` (infinite: every plan that can beat the threshold).
    /// Counts its nodes against `budget`; answers whether it ended over its whole space (not
    /// stopped by the budget or the clock).
    fn run(
        &mut self,
        threshold: &mut f64,
        (bound, limit): (f64, f64),
        budget: &mut u64,
        options: &Options,
        started: Instant,
    ) -> bool {
        self.finished = false;
        let m = self.core.len();
        let rows = self.rows;
        // Per depth: the index of the choice taken; running uses, loss and value.
        let mut path: Vec<usize> = Vec::with_capacity(m);
        let mut used = vec![0.0; rows];
        let mut loss = 0.0;
        let mut value = self.fixed_value;
        let mut nodes = 0u64;
        let nodes_at_start = *budget;
        // `next`: the choice index to try at depth `path.len()` (`None`: enter the node).
        let mut next: Option<usize> = None;
        loop {
            let d = path.len();
            let room = (bound - *threshold).min(limit) - loss;
            if next.is_none() {
                nodes += 1;
                if nodes.is_multiple_of(CHECK_EVERY)
                    && (nodes >= nodes_at_start
                        || options.cancel.is_stopped()
                        || options.time_limit.is_some_and(|l| started.elapsed() >= l))
                {
                    *budget = budget.saturating_sub(nodes);
                    return false;
                }
                if d == m || self.core[d].margin >= room {
                    // Leaf: everyone from d on takes their best choice.
                    if self.fits_with_tail(&used, d) {
                        let total = value + self.suffix_value[d];
                        if total > *threshold {
                            *threshold = total;
                            let mut found: Vec<u8> = path
                                .iter()
                                .enumerate()
                                .map(|(e, &j)| self.core[e].choices[j].1)
                                .collect();
                            found.extend(self.core[d..].iter().map(|member| member.choices[0].1));
                            self.found = Some(found);
                        }
                    }
                    next = self.backtrack(&mut path, &mut used, &mut loss, &mut value);
                    if next.is_none() {
                        return self.end(budget, nodes);
                    }
                    continue;
                }
                // Members forced by the room left must fit with what is chosen so far.
                let forced = d + 1 + self.core[d + 1..].partition_point(|x| x.margin < room);
                if !self.fits_with_tail(&used, forced)
                    || self.deficit_cost(&used, d, forced, room) >= room
                {
                    next = self.backtrack(&mut path, &mut used, &mut loss, &mut value);
                    if next.is_none() {
                        return self.end(budget, nodes);
                    }
                    continue;
                }
                next = Some(0);
            }
            let j = next.expect("a choice to try");
            let member = &self.core[d];
            if j < member.choices.len() && member.choices[j].0 < room {
                let fits = (0..rows).all(|r| {
                    let u = self.uses[d][j * rows + r];
                    u == 0.0 || used[r] + u <= self.capacity[r]
                });
                if fits {
                    for (r, u) in used.iter_mut().enumerate() {
                        *u += self.uses[d][j * rows + r];
                    }
                    loss += member.choices[j].0;
                    value += self.value[d][j];
                    path.push(j);
                    next = None;
                } else {
                    next = Some(j + 1);
                }
            } else {
                next = self.backtrack(&mut path, &mut used, &mut loss, &mut value);
                if next.is_none() {
                    return self.end(budget, nodes);
                }
            }
        }
    }

    /// The search covered its whole space in `nodes` nodes: counts them against `budget`.
    fn end(&mut self, budget: &mut u64, nodes: u64) -> bool {
        self.finished = true;
        *budget = budget.saturating_sub(nodes);
        true
    }

    /// Undoes the last choice; the next choice to try at that depth, `None` at the root.
    fn backtrack(
        &self,
        path: &mut Vec<usize>,
        used: &mut [f64],
        loss: &mut f64,
        value: &mut f64,
    ) -> Option<usize> {
        let j = path.pop()?;
        let d = path.len();
        for (r, u) in used.iter_mut().enumerate() {
            *u -= self.uses[d][j * self.rows + r];
        }
        *loss -= self.core[d].choices[j].0;
        *value -= self.value[d][j];
        Some(j + 1)
    }
}
