//! Campaign optimisation with several resources and several offers: each customer gets at most
//! one offer, every resource's use stays within its limit, and each offer's count within its
//! minimum and maximum:
//!
//! ```text
//! maximise  sum_io v_io x_io   s.t.  sum_io a_iok x_io <= b_k (every resource k),
//!           sum_o x_io <= 1 (every customer i),  min_o <= sum_i x_io <= max_o,  x_io in {0, 1}
//! ```
//!
//! A leaf like the knapsack ([`super::knapsack`]): coefficient slices in, a plan out; it knows
//! nothing of tables, expressions or contact rules (the campaign stage folds those into the
//! offers' values, uses and eligibility). It lives beside the knapsack because the single-budget
//! case is that knapsack, and both answer with a certificate.
//!
//! # Method
//!
//! The single-budget case (one resource, one offer, no minimum or maximum count, uses in whole
//! cents) is the knapsack, and goes to its exact solver (`single.rs`); everything else:
//!
//! 1. **Minimums and conflicts first** (`feasible.rs`, `conflict.rs`): a depth-first search
//!    looks for customers that meet every minimum count within the limits (the *core*; with
//!    uses `>= 0`, minimums can be met at all iff such a core exists). It is exact on small
//!    campaigns (every eligible customer searched, within a node budget) and searches the
//!    cheapest customers of each offer on large ones. When no core is found, proofs of
//!    conflict are tried on sets of offers and limits of growing size: Hall's condition (the
//!    offers need more customers than are eligible for any of them), the cheapest way to meet
//!    the minimums against each limit, and, when the search proved the whole campaign
//!    infeasible, the exact search on each set in turn. The smallest conflicting set is named.
//! 2. **The LP relaxation through its dual** (`dual.rs`): with prices `lambda_k >= 0` on the
//!    resources and `mu_o` on the offers' counts, the problem separates by customer: each
//!    takes the offer of largest reduced value `v_io - sum_k lambda_k a_iok - mu_o`, or none
//!    when no reduced value is positive (`pricing.rs`, one pass over the customers). The
//!    Lagrangian `L(lambda, mu) = lambda.b + mu.(max | -min) + sum_i max(0, best reduced value)`
//!    bounds the optimum for any prices, and its minimum equals the LP relaxation's value
//!    (each customer's own constraint set is integral). It is minimised by a box-step cutting
//!    plane method: each pass gives `L` and a subgradient (the limits minus the uses), the cuts
//!    form a small dense LP over the few prices (`microlp`), solved in a trust box around the
//!    best prices so far. It stops when that LP predicts less than a hundredth of the target
//!    gap: `L` is then the LP optimum to that precision. From a million customers on, the
//!    descent first runs on a sample of one customer in 32 (chosen by id, limits scaled), and
//!    the descent over every customer starts from the sample's prices (`sample.rs`) with
//!    *box-restricted pricing* (`boxed.rs`): in a box of about 1% around the sample's prices,
//!    one classification pass tallies once every customer whose best choice is the same at
//!    every price of the box (a few percent of the customers remain), and each pass inside the
//!    box re-prices only the others; the tally, so `L` and its subgradient, is the very one a
//!    pass over every customer gives. The descent stays in the box; when it converges on the
//!    box's edge the box widens fourfold around the best prices (one more classification).
//! 3. **A primal plan by rounding and repair** (`repair.rs`): every customer takes their best
//!    offer at the best prices; customers are dropped from over-full offers and resources in
//!    order of least reduced value per unit freed, minimum counts are filled with the
//!    customers whose reduced value for the offer is largest, then every customer left out is
//!    offered, best reduced value first, whatever still fits. When those moves cannot meet the
//!    minimums, the plan starts from the core instead: the rest is filled the same way, then
//!    customers are exchanged to the offer of largest value that still fits, largest gain
//!    first, never taking an offer below its minimum.
//! 4. **The LP's exact prices** (`restricted.rs`; campaigns without minimum counts): the
//!    dual's prices are optimal only to its precision, and at them the best choices of many
//!    near-tied customers overfill or underfill the limits. The 512 customers of smallest
//!    margin (best reduced value less the second) are kept free, everyone else is fixed at
//!    their best choice, and the LP over the free ones within what the others leave is solved
//!    exactly through its dual (`microlp`). One exact pass at those prices gives `L` there;
//!    when that is no higher than the dual's bound, they replace the dual's prices: at the LP
//!    optimum's prices every customer's best choice fits but for the tied ones.
//! 5. **The fractional core, searched exactly** (`core_search.rs`; campaigns without minimum
//!    counts): at the best prices every plan is worth at most `L` minus what each customer's
//!    choice loses against their best choice there, so a plan better than the repaired one
//!    keeps every customer whose alternatives all lose more than `L - objective` at their
//!    best choice (reduced-cost fixing). The others, the customers whose choice changes near
//!    the optimal prices, are searched depth first, smallest loss first, cut by the losses,
//!    by the limits and by the least loss that freeing the overfilled limits costs, in passes
//!    over a growing share of the room (plans of small loss first); when the search ends, no
//!    better plan exists. It stops as soon as the certified gap meets the target (`target_gap`
//!    0: when the plan is proven optimal, or at the time limit).
//!
//! # Guarantee
//!
//! The plan is feasible (every limit, count and eligibility holds) or the answer is a named
//! conflict. On campaigns where the search for the minimums is exact (each offer with a
//! minimum has at most 256 more eligible customers than its minimum, and the search ends
//! within its budget), a plan is found whenever one exists, and a conflict is proven and
//! smallest; beyond that a conflict may be reported unproven (`proven: false`). `upper_bound` is
//! `L` at the best prices found (the dual's, or the restricted LP's when lower; the plan
//! reports the dual's as shadow prices), always from an exact
//! pass (a boxed pass gives the same tally bit for bit): a valid bound on the optimum of the
//! integer problem (and of its LP relaxation) whatever the prices, so
//! `gap = (upper_bound - objective) / |upper_bound|` is certified. When the core search ends within its budget (at most 65,536 customers in the
//! core and `core_nodes`: by default 2^22 nodes, 2^27 for a solve with `target_gap` 0), the plan is optimal for the integer problem: `upper_bound` is then
//! `objective * (1 + 1e-10)` (no plan is better by more than that), and `optimal` holds. With many customers and few
//! coupling constraints the LP optimum has at most as many fractional customers as binding
//! constraints, so the gap is of the order of a few customers' values over the total. All sums
//! over customers are exact (per-exponent integer accumulators of the f32 inputs), so the plan
//! does not depend on the order of the rows; ties between customers break on the customer id,
//! ties between offers on the offer's position.
//!
//! # Cost
//!
//! Each pricing pass reads every customer's coefficients once: `O(n * offers * resources)`,
//! split over rayon in fixed chunks with exact (order-free) merges. The dual takes tens of
//! passes for a few resources; from a million customers on, those run over the sample, then
//! over every customer come one pass at the sample's prices, one classification pass (about
//! twice a pricing pass), and boxed passes over the ambiguous few percent (a classification
//! more each time the box widens). Each master LP has `resources + offers with limits + 1`
//! variables and one row per pass. The restricted LP reads the ambiguous customers' margins
//! and solves an LP of 512 customers. The repair sorts only the customers it drops or adds
//! (in batches found by selection) and keeps its totals exactly as it moves them. The core
//! search, when the target is not met yet, reads every customer once more (their margins),
//! tallies their best choices once, and sorts the core; its nodes cost
//! `O(resources + offers)` each, and their number grows with the room `L - objective` times
//! the number of customers whose losses fall inside it. Memory: one byte per customer for the
//! plan, nine for the core search's margins and best choices, eight per ambiguous customer,
//! plus the batch being sorted and the core.

mod boxed;
mod conflict;
mod core_search;
mod dual;
mod feasible;
mod pricing;
mod repair;
mod restricted;
mod sample;
mod single;
#[cfg(test)]
mod testing;

use std::time::{Duration, Instant};

use crate::cancel::Cancel;

pub use conflict::Conflict;

/// A per-customer coefficient: the same number for every customer, or one per customer.
#[derive(Debug, Clone, Copy)]
pub enum Coefficients<'a> {
    /// Every customer's value.
    Constant(f64),
    /// Customer i's value at index i.
    PerCustomer(&'a [f32]),
}

impl Coefficients<'_> {
    /// Customer `i`'s value.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Coefficients::Constant(value) => *value,
            Coefficients::PerCustomer(values) => f64::from(values[i]),
        }
    }
}

/// One offer of the campaign.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    /// What giving the offer to a customer is worth (v_io).
    pub value: Coefficients<'a>,
    /// Its use of each resource (a_iok, >= 0), one entry per [`Problem::limits`] entry.
    pub uses: Vec<Coefficients<'a>>,
    /// The customers who may get it (`None`: everyone).
    pub eligible: Option<&'a [bool]>,
    /// At least this many customers get it.
    pub min: u64,
    /// At most this many (`None`: no maximum).
    pub max: Option<u64>,
}

impl Offer<'_> {
    /// Whether customer `i` may get the offer.
    #[inline]
    pub fn is_eligible(&self, i: usize) -> bool {
        self.eligible.is_none_or(|e| e[i])
    }
}

/// The campaign as the solver sees it.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    /// Every customer's id, row by row: the tie-break key.
    pub ids: &'a [u64],
    /// Each resource's limit (b_k >= 0).
    pub limits: Vec<f64>,
    /// The offers (at most [`MAX_OFFERS`]).
    pub offers: Vec<Offer<'a>>,
}

/// Nodes of the search for customers meeting every minimum count (`feasible.rs`).
const CORE_NODES: u64 = 1 << 20;

/// Customers per offer, beyond its minimum, that the search for the minimums considers (the
/// cheapest; all of them on campaigns this small, where the search is exact).
const CORE_SPARE_CANDIDATES: usize = 256;

/// Core-search nodes per whole-core round for a solve asked to prove its plan optimal: about
/// 5-10 s of search on one core (a 1e5-customer, 5-offer, 3-resource campaign is proven in
/// under 5e7 nodes). The default budget, 2^22, keeps a solve with a gap target within a
/// fraction of a second of search.
pub const PROOF_CORE_NODES: u64 = 1 << 27;

/// Most offers one campaign may hold (an offer is stored as one byte per customer).
pub const MAX_OFFERS: usize = 255;

/// Limits and targets of one solve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The search stops once the certified gap is at most this.
    pub target_gap: f64,
    /// Most pricing passes.
    pub max_passes: usize,
    /// Wall time after which the best plan so far is returned with its certified gap.
    pub time_limit: Option<Duration>,
    /// The job's stop token, asked before each pass.
    pub cancel: Cancel,
    /// Most nodes of a round of the core search over the whole core (a round over part of it
    /// takes at most 2^22; 0: no core search, the repaired plan). A solve asked to prove its
    /// plan optimal (`target_gap` 0) may give it [`PROOF_CORE_NODES`].
    pub core_nodes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target_gap: 1e-9,
            max_passes: 400,
            time_limit: Some(Duration::from_secs(60)),
            cancel: Cancel::default(),
            core_nodes: 1 << 22,
        }
    }
}

/// The answer: each customer's offer, its value, and the certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per customer: 0 for no offer, `o + 1` for offer `o`.
    pub choice: Vec<u8>,
    /// The plan's value, `sum v_io x_io` (exact sum of the inputs, rounded once).
    pub objective: f64,
    /// A certified upper bound on the optimum: the Lagrangian at [`Plan::resource_prices`] and
    /// [`Plan::offer_prices`], or lower: the Lagrangian at the restricted LP's prices, or the
    /// plan's own value when the core search proved it optimal.
    pub upper_bound: f64,
    /// `(upper_bound - objective) / max(|upper_bound|, f64::MIN_POSITIVE)`.
    pub gap: f64,
    /// The gap is at most [`super::OPTIMALITY_TOLERANCE`].
    pub optimal: bool,
    /// Shadow price of each resource: the value of one more unit (lambda_k).
    pub resource_prices: Vec<f64>,
    /// Price of each offer's count: positive when its maximum binds (one more allowed is worth
    /// that much), negative when its minimum binds (one fewer required is worth that much).
    pub offer_prices: Vec<f64>,
    /// Each resource's use by the plan.
    pub used: Vec<f64>,
    /// Customers per offer.
    pub counts: Vec<u64>,
    /// Value per offer.
    pub offer_values: Vec<f64>,
    /// Pricing passes run.
    pub passes: usize,
    /// The solve stopped at its time limit or was cancelled before reaching its target gap.
    pub stopped: bool,
    /// Time spent in the dual and in the repair.
    pub times: (Duration, Duration),
}

impl Plan {
    /// Customer `i`'s offer, if any.
    pub fn offer_of(&self, i: usize) -> Option<usize> {
        self.choice[i].checked_sub(1).map(usize::from)
    }
}

/// What a solve answers: a plan, or the limits and offers that cannot hold together.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A feasible plan with its certificate.
    Plan(Plan),
    /// No plan meets every minimum count within the limits.
    Infeasible(Conflict),
}

/// Solves the campaign. See the module doc for the method, its guarantee and its cost.
///
/// # Panics
///
/// When a coefficient slice or eligibility mask is not `ids.len()` long, an offer's `uses`
/// has not one entry per limit, or there are more than [`MAX_OFFERS`] offers.
pub fn solve(problem: &Problem<'_>, options: &Options) -> Outcome {
    check_shapes(problem);
    if let Some(plan) = single::solve(problem, options) {
        return Outcome::Plan(plan);
    }
    if let Some(conflict) = conflict::inverted_counts(problem) {
        return Outcome::Infeasible(conflict);
    }
    let mut budget = feasible::Budget {
        nodes: CORE_NODES,
        spare_candidates: CORE_SPARE_CANDIDATES,
    };
    let core = match feasible::search(problem, &feasible::Scope::all(problem), &mut budget) {
        feasible::Found::Core(core) => Some(core),
        found => {
            let infeasible = found == feasible::Found::Impossible;
            if let Some(conflict) = conflict::find(problem, infeasible) {
                return Outcome::Infeasible(conflict);
            }
            None
        }
    };
    let started = Instant::now();
    let dual = dual::minimise(problem, options, started);
    let dual_time = started.elapsed();
    let repair_started = Instant::now();
    let Some(mut choice) = repair::plan(problem, &dual.prices, core.as_deref()) else {
        return Outcome::Infeasible(conflict::unmet(problem));
    };
    let mut totals = pricing::totals(problem, &choice);
    let mut upper_bound = dual.bound;
    if options.core_nodes > 0 && problem.offers.iter().all(|offer| offer.min == 0) {
        // The LP's exact prices, when an exact pass there confirms them (a bound no higher):
        // at those every customer's best choice fits the limits but for the tied ones, which
        // is what the core search's fixing needs. (The plan still reports the dual's prices:
        // where the LP's optimal prices are not unique, the restricted LP may pick another
        // vertex, e.g. a positive price on a limit that is just met.)
        let pricer = if dual.pricer.covers(&dual.point) {
            &dual.pricer
        } else {
            &boxed::Pricer::full()
        };
        let mut search = (dual.prices.clone(), dual.bound);
        if let Some(exact) = restricted::prices(problem, pricer, &dual.prices) {
            let bound = dual::Layout::of(problem).bound(problem, &dual.pricer, &exact);
            if bound <= upper_bound {
                (search, upper_bound) = ((exact, bound), bound);
            }
        }
        let improved = core_search::improve(
            problem,
            &search.0,
            search.1,
            choice,
            totals.value,
            options,
            started,
        );
        choice = improved.choice;
        totals = pricing::totals(problem, &choice);
        if improved.proven {
            let proven = totals.value + core_search::IMPROVEMENT * totals.value.abs();
            upper_bound = upper_bound.min(proven);
        }
    }
    let objective = totals.value;
    let gap = (upper_bound - objective) / upper_bound.abs().max(f64::MIN_POSITIVE);
    Outcome::Plan(Plan {
        choice,
        objective,
        upper_bound,
        gap,
        optimal: gap.abs() <= super::OPTIMALITY_TOLERANCE,
        resource_prices: dual.prices.resource,
        offer_prices: dual.prices.offer,
        used: totals.used,
        counts: totals.counts,
        offer_values: totals.offer_values,
        passes: dual.passes,
        stopped: dual.stopped,
        times: (dual_time, repair_started.elapsed()),
    })
}

fn check_shapes(problem: &Problem<'_>) {
    let n = problem.ids.len();
    assert!(problem.offers.len() <= MAX_OFFERS, "too many offers");
    let check = |c: &Coefficients<'_>| {
        if let Coefficients::PerCustomer(values) = c {
            assert_eq!(values.len(), n, "coefficients and ids differ in length");
        }
    };
    for offer in &problem.offers {
        check(&offer.value);
        assert_eq!(offer.uses.len(), problem.limits.len(), "one use per limit");
        offer.uses.iter().for_each(check);
        if let Some(e) = offer.eligible {
            assert_eq!(e.len(), n, "eligibility and ids differ in length");
        }
    }
}
