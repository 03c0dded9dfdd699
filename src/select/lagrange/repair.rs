//! A feasible plan from prices: round, repair, fill. Every customer takes their best offer at
//! the prices; customers leave over-full offers and resources, least reduced value (per unit
//! freed) first; offers below their minimum take the customers whose reduced value for them is
//! largest (unassigned ones, then ones switched from offers above their own minimum); then
//! every customer left out gets, best reduced value first, their best offer if it still fits.
//! Orders are by key, then customer id, so the plan does not depend on the row order.

use std::cmp::Ordering;

use rayon::prelude::*;

use super::Problem;
use super::pricing::{Prices, Tally, Totals, tally_choices};

/// Most customers a forced insertion tries for one offer's minimum (each try copies the plan).
const MAX_FORCED_ATTEMPTS: usize = 64;

/// A customer considered for a move, with the key that orders the moves.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: f64,
    id: u64,
    row: u32,
    offer: u8,
}

/// Priority: larger key first, then smaller id.
fn priority(a: &Candidate, b: &Candidate) -> Ordering {
    b.key.total_cmp(&a.key).then(a.id.cmp(&b.id))
}

/// Visits `candidates` in `order` (priority, or its reverse), sorting only as far as the
/// visit goes: batches of growing size are picked by selection, then sorted. Stops when
/// `visit` returns false.
fn visit_in_order(
    candidates: &mut [Candidate],
    reverse: bool,
    mut visit: impl FnMut(&Candidate) -> bool,
) {
    let order = |a: &Candidate, b: &Candidate| {
        if reverse {
            priority(b, a)
        } else {
            priority(a, b)
        }
    };
    let mut rest = candidates;
    let mut batch = 1024;
    while !rest.is_empty() {
        let take = batch.min(rest.len());
        if take < rest.len() {
            rest.select_nth_unstable_by(take - 1, order);
        }
        rest[..take].sort_unstable_by(order);
        for candidate in &rest[..take] {
            if !visit(candidate) {
                return;
            }
        }
        rest = &mut rest[take..];
        batch *= 2;
    }
}

/// The state of a plan under repair: choices, uses and counts (uses tracked in f64 as moves
/// are made, and exactly in `tally`, which the caller re-checks them against).
struct Draft<'p, 'a> {
    problem: &'p Problem<'a>,
    prices: &'p Prices,
    choice: Vec<u8>,
    used: Vec<f64>,
    counts: Vec<u64>,
    tally: Tally,
}

impl<'p, 'a> Draft<'p, 'a> {
    /// The draft of `choice`.
    fn new(problem: &'p Problem<'a>, prices: &'p Prices, choice: Vec<u8>) -> Self {
        let tally = tally_choices(problem, &choice);
        let start = Totals::of(problem, tally.clone());
        Draft {
            problem,
            prices,
            choice,
            used: start.used,
            counts: start.counts,
            tally,
        }
    }

    /// The draft's exact totals.
    fn totals(&self) -> Totals {
        Totals::of(self.problem, self.tally.clone())
    }

    fn offer_of(&self, i: usize) -> Option<usize> {
        self.choice[i].checked_sub(1).map(usize::from)
    }

    fn candidate(&self, i: usize, o: usize, key: f64) -> Candidate {
        Candidate {
            key,
            id: self.problem.ids[i],
            row: i as u32,
            offer: o as u8,
        }
    }

    /// Whether customer i can take offer o, after giving up their current offer.
    fn fits(&self, i: usize, o: usize) -> bool {
        let offer = &self.problem.offers[o];
        let current = self.offer_of(i);
        if current != Some(o) && offer.max.is_some_and(|max| self.counts[o] >= max) {
            return false;
        }
        self.problem.limits.iter().enumerate().all(|(k, &limit)| {
            let freed = current.map_or(0.0, |c| self.problem.offers[c].uses[k].get(i));
            self.used[k] - freed + offer.uses[k].get(i) <= limit
        })
    }

    /// Gives customer i offer o (or none).
    fn assign(&mut self, i: usize, o: Option<usize>) {
        if let Some(current) = self.offer_of(i) {
            self.tally.remove(self.problem, i, current);
            self.counts[current] -= 1;
            for (k, used) in self.used.iter_mut().enumerate() {
                *used -= self.problem.offers[current].uses[k].get(i);
            }
        }
        if let Some(o) = o {
            self.tally.add(self.problem, i, o);
            self.counts[o] += 1;
            for (k, used) in self.used.iter_mut().enumerate() {
                *used += self.problem.offers[o].uses[k].get(i);
            }
        }
        self.choice[i] = o.map_or(0, |o| o as u8 + 1);
    }

    /// Customers holding an offer, each with `key(i, o)`.
    fn holders(&self, key: impl Fn(usize, usize) -> Option<f64> + Sync) -> Vec<Candidate> {
        (0..self.choice.len())
            .into_par_iter()
            .filter_map(|i| {
                let o = self.offer_of(i)?;
                Some(self.candidate(i, o, key(i, o)?))
            })
            .collect()
    }

    /// Customers without an offer, each with their best `key(i, o)` over the offers o they
    /// are eligible for (`None` keys skipped).
    fn outsiders(&self, key: impl Fn(usize, usize) -> Option<f64> + Sync) -> Vec<Candidate> {
        (0..self.choice.len())
            .into_par_iter()
            .filter(|&i| self.choice[i] == 0)
            .filter_map(|i| {
                let mut best: Option<(usize, f64)> = None;
                for (o, offer) in self.problem.offers.iter().enumerate() {
                    if offer.is_eligible(i)
                        && let Some(k) = key(i, o)
                        && best.is_none_or(|(_, b)| k > b)
                    {
                        best = Some((o, k));
                    }
                }
                best.map(|(o, k)| self.candidate(i, o, k))
            })
            .collect()
    }

    /// Drops customers from offers over their maximum, least reduced value first.
    fn enforce_maximums(&mut self) {
        for o in 0..self.problem.offers.len() {
            let Some(max) = self.problem.offers[o].max else {
                continue;
            };
            if self.counts[o] <= max {
                continue;
            }
            let prices = self.prices;
            let problem = self.problem;
            let mut holders =
                self.holders(|i, held| (held == o).then(|| prices.reduced(problem, i, o)));
            visit_in_order(&mut holders, true, |c| {
                self.assign(c.row as usize, None);
                self.counts[o] > max
            });
        }
    }

    /// Frees resource k until it fits its limit: holders move to their best alternative that
    /// uses no more of any resource (another offer, or none), least reduced value lost per
    /// unit of k freed first. Holders of `protect`, and (with `respect_min`) of offers at their
    /// minimum, stay. Whether k fits afterwards.
    fn enforce_limit(&mut self, k: usize, protect: Option<usize>, respect_min: bool) -> bool {
        let limit = self.problem.limits[k];
        let prices = self.prices;
        let problem = self.problem;
        let counts = &self.counts;
        let mut holders = self.holders(|i, p| {
            if Some(p) == protect || (respect_min && counts[p] <= problem.offers[p].min) {
                return None;
            }
            let uses = |o: usize, k: usize| problem.offers[o].uses[k].get(i);
            let freed = uses(p, k);
            if freed <= 0.0 {
                return None;
            }
            let kept = prices.reduced(problem, i, p);
            // Dropping the offer: lose its reduced value (never counted as a gain).
            let mut best = kept.max(0.0) / freed;
            for (q, (offer, &count)) in problem.offers.iter().zip(counts.iter()).enumerate() {
                let dominated = (0..problem.limits.len()).all(|r| uses(q, r) <= uses(p, r));
                if q != p
                    && offer.is_eligible(i)
                    && uses(q, k) < freed
                    && dominated
                    && offer.max.is_none_or(|max| count < max)
                {
                    let loss =
                        (kept - prices.reduced(problem, i, q)).max(0.0) / (freed - uses(q, k));
                    best = best.min(loss);
                }
            }
            Some(best)
        });
        visit_in_order(&mut holders, true, |c| {
            let (i, p) = (c.row as usize, usize::from(c.offer));
            if self.offer_of(i) != Some(p) {
                return self.used[k] > limit;
            }
            let alternative = (0..self.problem.offers.len())
                .filter(|&q| {
                    q != p
                        && self.problem.offers[q].is_eligible(i)
                        && (0..self.problem.limits.len()).all(|r| {
                            self.problem.offers[q].uses[r].get(i)
                                <= self.problem.offers[p].uses[r].get(i)
                        })
                        && self.problem.offers[q].uses[k].get(i)
                            < self.problem.offers[p].uses[k].get(i)
                        && self.problem.offers[q]
                            .max
                            .is_none_or(|max| self.counts[q] < max)
                        && self.problem.offers[q].value.get(i) > 0.0
                })
                .max_by(|&a, &b| {
                    prices
                        .reduced(self.problem, i, a)
                        .total_cmp(&prices.reduced(self.problem, i, b))
                        .then(b.cmp(&a))
                });
            self.assign(i, alternative);
            self.used[k] > limit
        });
        self.used[k] <= limit
    }

    /// Brings offer o up to its minimum: outsiders first, then customers switched from offers
    /// above their own minimum. False when it cannot.
    fn meet_minimum(&mut self, o: usize) -> bool {
        let min = self.problem.offers[o].min;
        if self.counts[o] >= min {
            return true;
        }
        let prices = self.prices;
        let problem = self.problem;
        let mut outsiders =
            self.outsiders(|i, offer| (offer == o).then(|| prices.reduced(problem, i, o)));
        visit_in_order(&mut outsiders, false, |c| {
            if self.fits(c.row as usize, o) {
                self.assign(c.row as usize, Some(o));
            }
            self.counts[o] < min
        });
        if self.counts[o] >= min {
            return true;
        }
        let counts = self.counts.clone();
        let mut switchers = self.holders(|i, held| {
            (held != o
                && counts[held] > problem.offers[held].min
                && problem.offers[o].is_eligible(i))
            .then(|| prices.reduced(problem, i, o) - prices.reduced(problem, i, held))
        });
        visit_in_order(&mut switchers, false, |c| {
            let (i, from) = (c.row as usize, usize::from(c.offer));
            if self.counts[from] > problem.offers[from].min && self.fits(i, o) {
                self.assign(i, Some(o));
            }
            self.counts[o] < min
        });
        if self.counts[o] >= min {
            return true;
        }
        // Forced insertion: give o to the outsider of largest reduced value for it and free
        // what it needs from others (moves to cheaper offers, or drops), keeping o's holders
        // and offers at their minimum; undone when it cannot fit.
        let mut outsiders =
            self.outsiders(|i, offer| (offer == o).then(|| prices.reduced(problem, i, o)));
        let mut attempts = 0;
        visit_in_order(&mut outsiders, false, |c| {
            let i = c.row as usize;
            attempts += 1;
            if self.choice[i] != 0
                || problem.offers[o]
                    .max
                    .is_some_and(|max| self.counts[o] >= max)
            {
                return attempts < MAX_FORCED_ATTEMPTS;
            }
            let saved = (
                self.choice.clone(),
                self.used.clone(),
                self.counts.clone(),
                self.tally.clone(),
            );
            self.assign(i, Some(o));
            let fits = (0..problem.limits.len())
                .all(|k| self.used[k] <= problem.limits[k] || self.enforce_limit(k, Some(o), true));
            if !fits {
                (self.choice, self.used, self.counts, self.tally) = saved;
            }
            self.counts[o] < min && attempts < MAX_FORCED_ATTEMPTS
        });
        self.counts[o] >= min
    }

    /// Moves customers to the offer of largest value that fits (none kept when no offer has a
    /// positive value), largest gain first, never taking an offer below its minimum.
    fn exchange(&mut self) {
        let problem = self.problem;
        let mut movers: Vec<Candidate> = (0..self.choice.len())
            .into_par_iter()
            .filter_map(|i| {
                let current = self
                    .offer_of(i)
                    .map_or(0.0, |c| problem.offers[c].value.get(i));
                let (o, value) = (0..problem.offers.len())
                    .filter(|&o| problem.offers[o].is_eligible(i))
                    .map(|o| (o, problem.offers[o].value.get(i)))
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
                (value > current && Some(o) != self.offer_of(i))
                    .then(|| self.candidate(i, o, value - current))
            })
            .collect();
        visit_in_order(&mut movers, false, |c| {
            let (i, o) = (c.row as usize, usize::from(c.offer));
            let leaves_minimum = self
                .offer_of(i)
                .is_some_and(|from| self.counts[from] <= problem.offers[from].min);
            if !leaves_minimum && self.fits(i, o) {
                self.assign(i, Some(o));
            }
            true
        });
    }

    /// Offers every customer left out their best offer of positive value, best reduced value
    /// first, when it fits.
    fn fill(&mut self) {
        let prices = self.prices;
        let problem = self.problem;
        let mut outsiders = self.outsiders(|i, o| {
            (problem.offers[o].value.get(i) > 0.0).then(|| prices.reduced(problem, i, o))
        });
        visit_in_order(&mut outsiders, false, |c| {
            let (i, o) = (c.row as usize, usize::from(c.offer));
            if self.fits(i, o) {
                self.assign(i, Some(o));
            }
            true
        });
    }
}

/// A feasible plan near `prices`: the rounding and its repair, or, when those cannot meet the
/// minimum counts, `core` (customers and offers meeting every minimum within the limits)
/// filled and improved by exchanges. `None` when neither gives a plan.
pub fn plan(
    problem: &Problem<'_>,
    prices: &Prices,
    core: Option<&[(usize, usize)]>,
) -> Option<Vec<u8>> {
    rounded(problem, prices).or_else(|| core.map(|core| extended(problem, prices, core)))
}

/// The core's customers keep their offers; everyone else is offered, best reduced value
/// first, what still fits; then exchanges that raise the value are made.
fn extended(problem: &Problem<'_>, prices: &Prices, core: &[(usize, usize)]) -> Vec<u8> {
    let mut choice = vec![0u8; problem.ids.len()];
    for &(i, o) in core {
        choice[i] = o as u8 + 1;
    }
    let mut draft = Draft::new(problem, prices, choice);
    draft.fill();
    draft.exchange();
    draft.choice
}

/// Rounding at the prices, then repair; `None` when some minimum count could not be met.
fn rounded(problem: &Problem<'_>, prices: &Prices) -> Option<Vec<u8>> {
    let choice: Vec<u8> = (0..problem.ids.len())
        .into_par_iter()
        .map(|i| prices.best(problem, i).map_or(0, |(o, _)| o as u8 + 1))
        .collect();
    let mut draft = Draft::new(problem, prices, choice);
    draft.enforce_maximums();
    loop {
        // Exact uses, so that drift in the running sums never lets a limit be exceeded.
        draft.used = draft.totals().used;
        let over = (0..problem.limits.len())
            .filter(|&k| draft.used[k] > problem.limits[k])
            .max_by(|&a, &b| {
                let excess =
                    |k: usize| (draft.used[k] - problem.limits[k]) / problem.limits[k].max(1e-300);
                excess(a).total_cmp(&excess(b))
            });
        match over {
            Some(k) => {
                if !draft.enforce_limit(k, None, true) && !draft.enforce_limit(k, None, false) {
                    return None;
                }
            }
            None => break,
        }
    }
    for o in 0..problem.offers.len() {
        if !draft.meet_minimum(o) {
            return None;
        }
    }
    draft.fill();
    // The moves above checked every limit on running sums; a last exact check drops whatever
    // their rounding let through (none in practice).
    loop {
        draft.used = draft.totals().used;
        match (0..problem.limits.len()).find(|&k| draft.used[k] > problem.limits[k]) {
            Some(k) => {
                if !draft.enforce_limit(k, None, true) && !draft.enforce_limit(k, None, false) {
                    return None;
                }
            }
            None => break,
        }
    }
    let counts = draft.totals().counts;
    problem
        .offers
        .iter()
        .zip(&counts)
        .all(|(offer, &count)| count >= offer.min)
        .then_some(draft.choice)
}
