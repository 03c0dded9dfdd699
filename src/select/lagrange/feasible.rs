//! Meeting minimum counts exactly: a depth-first search for customers that fill every offer's
//! minimum within the limits, used when the repair's moves cannot meet the minimums, and to
//! prove (and so name) the smallest set of limits and offers that conflict.
//!
//! With uses `>= 0`, minimums can be met at all iff they can be met by giving exactly `min_o`
//! customers each offer o and nobody anything else: that *core* is what the search looks for.
//! Candidates (customers eligible for some offer with a minimum) are ordered by their smallest
//! share of the limits (`sum_k a_iok / b_k` over their offers), then by id, so the first
//! descent is the greedy "cheapest customers first", and the order does not depend on the rows'.
//! At each candidate the search tries each offer still short of its minimum that fits, then
//! skipping the candidate. A branch is cut when the candidates left cannot cover the counts
//! still needed (in total or per offer), or when, for some resource, its use so far plus the
//! least that the still-needed customers of each offer can use exceeds the limit.
//!
//! The search is exact when every candidate is in it and it ends within its node budget:
//! [`Found::Impossible`] is then a proof. On large inputs only the cheapest candidates of each
//! offer enter, and running out of them or of the budget answers [`Found::Unknown`].

use super::Problem;

/// Relative slack on the resource cut, so that a bound rounded in another order than the sum
/// it is compared with never cuts a feasible branch.
const CUT_SLACK: f64 = 1e-12;

/// Which limits and minimum counts a search must meet (the others are ignored).
#[derive(Debug, Clone)]
pub struct Scope {
    /// Resources whose limits hold.
    pub resources: Vec<usize>,
    /// Offers whose minimums must be met (each with a positive minimum).
    pub offers: Vec<usize>,
}

impl Scope {
    /// Every limit and every positive minimum.
    pub fn all(problem: &Problem<'_>) -> Scope {
        Scope {
            resources: (0..problem.limits.len()).collect(),
            offers: offers_with_minimum(problem),
        }
    }
}

/// The offers with a positive minimum count.
pub fn offers_with_minimum(problem: &Problem<'_>) -> Vec<usize> {
    (0..problem.offers.len())
        .filter(|&o| problem.offers[o].min > 0)
        .collect()
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// Customers (rows) and the offer each gets: every minimum in scope met, every limit in
    /// scope kept.
    Core(Vec<(usize, usize)>),
    /// Proven: no choice of customers meets the minimums in scope within the limits in scope.
    Impossible,
    /// Neither: the budget ran out, or not every candidate was searched.
    Unknown,
}

/// How much a search may do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most nodes visited (what is left of it after a search).
    pub nodes: u64,
    /// Most candidates searched per offer beyond its minimum (all of them when the offer has
    /// fewer eligible customers than its minimum plus this).
    pub spare_candidates: usize,
}

/// The search's flat tables: candidate `c`, scoped offer `j`, scoped resource `r`.
struct Search {
    offers: usize,
    resources: usize,
    eligible: Vec<bool>,
    uses: Vec<f64>,
    limits: Vec<f64>,
    need: Vec<u64>,
    used: Vec<f64>,
    /// `[c * offers + j]`: candidates from c on eligible for j.
    eligible_after: Vec<u64>,
    /// Per offer and resource, the prefix sums of the candidates' sorted uses (`min_j + 1`
    /// entries): the least that `t` more of the offer's customers can use.
    least: Vec<Vec<f64>>,
}

impl Search {
    fn eligible(&self, c: usize, j: usize) -> bool {
        self.eligible[c * self.offers + j]
    }

    fn use_of(&self, c: usize, j: usize, r: usize) -> f64 {
        self.uses[(c * self.offers + j) * self.resources + r]
    }

    fn fits(&self, c: usize, j: usize) -> bool {
        self.need[j] > 0
            && self.eligible(c, j)
            && (0..self.resources).all(|r| self.used[r] + self.use_of(c, j, r) <= self.limits[r])
    }

    fn apply(&mut self, c: usize, j: usize, sign: f64) {
        for r in 0..self.resources {
            self.used[r] += sign * self.use_of(c, j, r);
        }
        if sign > 0.0 {
            self.need[j] -= 1;
        } else {
            self.need[j] += 1;
        }
    }

    /// Whether no completion from candidate `c` on can meet the minimums.
    fn cut(&self, c: usize, candidates: usize) -> bool {
        let needed: u64 = self.need.iter().sum();
        if needed > (candidates - c) as u64 {
            return true;
        }
        let after = |j: usize| {
            if c == candidates {
                0
            } else {
                self.eligible_after[c * self.offers + j]
            }
        };
        if (0..self.offers).any(|j| self.need[j] > after(j)) {
            return true;
        }
        (0..self.resources).any(|r| {
            let least: f64 = (0..self.offers)
                .map(|j| self.least[j * self.resources + r][self.need[j] as usize])
                .sum();
            let limit = self.limits[r];
            self.used[r] + least > limit + CUT_SLACK * (limit.abs() + least.abs() + 1.0)
        })
    }

    /// The first branch at candidate `c` from branch `from` on: offer `j < offers`, or
    /// `offers` for skipping the candidate.
    fn next_branch(&self, c: usize, from: usize) -> Option<usize> {
        (from..=self.offers).find(|&b| b == self.offers || self.fits(c, b))
    }
}

/// Looks for a core meeting the minimums in `scope` within its limits.
pub fn search(problem: &Problem<'_>, scope: &Scope, budget: &mut Budget) -> Found {
    let offers = scope.offers.len();
    if offers == 0 || scope.offers.iter().all(|&o| problem.offers[o].min == 0) {
        return Found::Core(vec![]);
    }
    let resources = scope.resources.len();
    let limits: Vec<f64> = scope.resources.iter().map(|&k| problem.limits[k]).collect();
    let share = |i: usize, o: usize| -> f64 {
        scope
            .resources
            .iter()
            .zip(&limits)
            .map(|(&k, &limit)| {
                let a = problem.offers[o].uses[k].get(i);
                if a <= 0.0 { 0.0 } else { a / limit.max(1e-300) }
            })
            .sum()
    };
    // Per offer, its cheapest eligible customers; exhaustive when every eligible one enters.
    let mut exhaustive = true;
    let mut rows: Vec<(f64, u64, usize)> = Vec::new();
    let mut per_offer: Vec<(f64, u64, usize)> = Vec::new();
    for &o in &scope.offers {
        let offer = &problem.offers[o];
        per_offer.clear();
        per_offer.extend(
            (0..problem.ids.len())
                .filter(|&i| offer.is_eligible(i))
                .map(|i| (share(i, o), problem.ids[i], i)),
        );
        let keep = (offer.min as usize).saturating_add(budget.spare_candidates);
        if per_offer.len() > keep {
            exhaustive = false;
            per_offer.select_nth_unstable_by(keep - 1, order);
            per_offer.truncate(keep);
        }
        rows.extend_from_slice(&per_offer);
    }
    // One entry per customer, at their smallest share.
    rows.sort_unstable_by(|a, b| a.2.cmp(&b.2).then(order(a, b)));
    rows.dedup_by_key(|row| row.2);
    rows.sort_unstable_by(order);
    let candidates = rows.len();
    let mut eligible = vec![false; candidates * offers];
    let mut uses = vec![0.0; candidates * offers * resources];
    for (c, &(_, _, i)) in rows.iter().enumerate() {
        for (j, &o) in scope.offers.iter().enumerate() {
            eligible[c * offers + j] = problem.offers[o].is_eligible(i);
            for (r, &k) in scope.resources.iter().enumerate() {
                uses[(c * offers + j) * resources + r] = problem.offers[o].uses[k].get(i);
            }
        }
    }
    let mut eligible_after = vec![0u64; candidates * offers];
    for c in (0..candidates).rev() {
        for j in 0..offers {
            let later = if c + 1 < candidates {
                eligible_after[(c + 1) * offers + j]
            } else {
                0
            };
            eligible_after[c * offers + j] = later + u64::from(eligible[c * offers + j]);
        }
    }
    let need: Vec<u64> = scope
        .offers
        .iter()
        .map(|&o| problem.offers[o].min)
        .collect();
    let mut least = Vec::with_capacity(offers * resources);
    for (j, &min) in need.iter().enumerate() {
        for r in 0..resources {
            let mut sorted: Vec<f64> = (0..candidates)
                .filter(|&c| eligible[c * offers + j])
                .map(|c| uses[(c * offers + j) * resources + r])
                .collect();
            sorted.sort_unstable_by(f64::total_cmp);
            let mut prefix = vec![0.0; min as usize + 1];
            for t in 1..prefix.len() {
                // Fewer eligible candidates than the minimum: the count cut answers first.
                prefix[t] = prefix[t - 1] + sorted.get(t - 1).copied().unwrap_or(0.0);
            }
            least.push(prefix);
        }
    }
    let mut state = Search {
        offers,
        resources,
        eligible,
        uses,
        limits,
        need,
        used: vec![0.0; resources],
        eligible_after,
        least,
    };
    let mut branches: Vec<usize> = Vec::new();
    loop {
        let c = branches.len();
        if state.need.iter().all(|&n| n == 0) {
            let core = branches
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b < offers)
                .map(|(c, &b)| (rows[c].2, scope.offers[b]))
                .collect();
            return Found::Core(core);
        }
        if budget.nodes == 0 {
            return Found::Unknown;
        }
        budget.nodes -= 1;
        let descend = if state.cut(c, candidates) {
            None
        } else {
            state.next_branch(c, 0)
        };
        if let Some(b) = descend {
            if b < offers {
                state.apply(c, b, 1.0);
            }
            branches.push(b);
            continue;
        }
        // Backtrack to the deepest candidate with another branch.
        loop {
            let Some(b) = branches.pop() else {
                return if exhaustive {
                    Found::Impossible
                } else {
                    Found::Unknown
                };
            };
            let c = branches.len();
            if b < offers {
                state.apply(c, b, -1.0);
            }
            if let Some(next) = state.next_branch(c, b + 1) {
                if next < offers {
                    state.apply(c, next, 1.0);
                }
                branches.push(next);
                break;
            }
        }
    }
}

/// Smaller share first, then smaller id.
fn order(a: &(f64, u64, usize), b: &(f64, u64, usize)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}
