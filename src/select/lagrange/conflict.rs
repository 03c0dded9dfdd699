//! Minimum counts that no plan can meet, named by the smallest set of offers and limits that
//! conflict. Three proofs, tried on sets of growing size: Hall's condition (the offers of a set
//! need more customers than are eligible for any of them; with one offer per customer this is
//! exact for the counts alone), a resource bound (the cheapest customers that meet each offer's
//! minimum already use more of a resource than its limit), and, when the whole campaign is
//! proven infeasible by the exact search (`feasible.rs`), that search on every set of offers
//! and limits in turn, so the set named is a smallest one.

use rayon::prelude::*;

use super::feasible::{Budget, Found, Scope, search};
use super::{Coefficients, Problem};

/// Most offers with a minimum whose every subset is checked (2^12 sets); beyond it, single
/// offers and pairs only.
const MAX_SUBSET_OFFERS: usize = 12;

/// Most offers with a minimum plus resources for which every set of them is searched exactly.
const MAX_EXACT_ITEMS: usize = 12;

/// Search nodes shared by all the sets of one exact conflict search.
const EXACT_NODES: u64 = 1 << 22;

/// Limits and offers that cannot all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The resources involved (indices into [`Problem::limits`]).
    pub resources: Vec<usize>,
    /// The offers involved (indices into [`Problem::offers`]).
    pub offers: Vec<usize>,
    /// Why, in numbers: what the minimums need against what there is.
    pub reason: String,
    /// Whether the conflict is proven (`false`: the repair found no plan meeting the
    /// minimums, and no proof was found either).
    pub proven: bool,
}

/// An offer whose minimum is above its maximum.
pub fn inverted_counts(problem: &Problem<'_>) -> Option<Conflict> {
    problem.offers.iter().enumerate().find_map(|(o, offer)| {
        let max = offer.max.filter(|&max| max < offer.min)?;
        Some(Conflict {
            resources: vec![],
            offers: vec![o],
            reason: format!("its minimum {} is above its maximum {max}", offer.min),
            proven: true,
        })
    })
}

/// The smallest proven conflict, if any. `infeasible`: the exact search proved the whole
/// campaign infeasible, so every set of offers and limits is worth searching.
pub fn find(problem: &Problem<'_>, infeasible: bool) -> Option<Conflict> {
    let with_min: Vec<usize> = (0..problem.offers.len())
        .filter(|&o| problem.offers[o].min > 0)
        .collect();
    if with_min.is_empty() {
        return None;
    }
    let m = with_min.len();
    let sets: Vec<u32> = if m <= MAX_SUBSET_OFFERS {
        (1..1u32 << m).collect()
    } else {
        let singles = (0..m).map(|a| 1u32 << a);
        let pairs = (0..m).flat_map(|a| (a + 1..m).map(move |b| (1u32 << a) | (1 << b)));
        singles.chain(pairs).collect()
    };
    let mask_bits = |i: usize| {
        with_min
            .iter()
            .enumerate()
            .filter(|&(_, &o)| problem.offers[o].is_eligible(i))
            .fold(0u64, |mask, (bit, _)| mask | 1 << bit.min(63))
    };
    // Customers per eligibility pattern over the offers with a minimum (only the first 64).
    let mut patterns = std::collections::HashMap::<u64, u64>::new();
    for i in 0..problem.ids.len() {
        *patterns.entry(mask_bits(i)).or_default() += 1;
    }
    // The cheapest use of each resource meeting each offer's minimum alone.
    let cheapest: Vec<Vec<f64>> = with_min
        .iter()
        .map(|&o| {
            (0..problem.limits.len())
                .map(|k| cheapest_use(problem, o, k))
                .collect()
        })
        .collect();
    let members = |set: u32| (0..m).filter(move |b| set >> b & 1 == 1);
    let offers_of = |set: u32| members(set).map(|b| with_min[b]).collect::<Vec<_>>();
    let resources = problem.limits.len();
    let exact = infeasible && m + resources <= MAX_EXACT_ITEMS;
    let mut budget = Budget {
        nodes: EXACT_NODES,
        spare_candidates: usize::MAX,
    };
    for size in 1..=if exact { m + resources } else { m + 1 } {
        for &set in sets.iter().filter(|s| s.count_ones() as usize == size) {
            let needed: u64 = members(set).map(|b| problem.offers[with_min[b]].min).sum();
            let available: u64 = patterns
                .iter()
                .filter(|&(&mask, _)| mask & u64::from(set) != 0)
                .map(|(_, &count)| count)
                .sum();
            if needed > available {
                return Some(Conflict {
                    resources: vec![],
                    offers: offers_of(set),
                    reason: format!(
                        "their minimums need {needed} customers, and {available} are eligible for any of them"
                    ),
                    proven: true,
                });
            }
        }
        for &set in sets.iter().filter(|s| s.count_ones() as usize + 1 == size) {
            for (k, &limit) in problem.limits.iter().enumerate() {
                let needed: f64 = members(set).map(|b| cheapest[b][k]).sum();
                if needed > limit {
                    return Some(Conflict {
                        resources: vec![k],
                        offers: offers_of(set),
                        reason: format!(
                            "meeting their minimums with the cheapest eligible customers uses {needed} of a limit of {limit}"
                        ),
                        proven: true,
                    });
                }
            }
        }
        if exact && let Some(conflict) = searched(problem, &with_min, size, &mut budget) {
            return Some(conflict);
        }
    }
    None
}

/// A set of `size` offers (from `with_min`, at least one) and resources that the exact search
/// proves cannot hold, fewer resources first.
fn searched(
    problem: &Problem<'_>,
    with_min: &[usize],
    size: usize,
    budget: &mut Budget,
) -> Option<Conflict> {
    let resources = problem.limits.len();
    let subsets = |items: usize, chosen: usize| {
        (0..1u32 << items)
            .filter(move |s| s.count_ones() as usize == chosen)
            .map(move |s| (0..items).filter(move |b| s >> b & 1 == 1))
    };
    for resource_count in 0..size.min(resources + 1) {
        let offer_count = size - resource_count;
        if offer_count > with_min.len() {
            continue;
        }
        for limits in subsets(resources, resource_count) {
            let limits: Vec<usize> = limits.collect();
            for offers in subsets(with_min.len(), offer_count) {
                let scope = Scope {
                    resources: limits.clone(),
                    offers: offers.map(|b| with_min[b]).collect(),
                };
                if search(problem, &scope, budget) == Found::Impossible {
                    let needed: u64 = scope.offers.iter().map(|&o| problem.offers[o].min).sum();
                    return Some(Conflict {
                        reason: format!(
                            "no choice of {needed} eligible customers meets their minimums within these limits (every choice searched)"
                        ),
                        resources: scope.resources,
                        offers: scope.offers,
                        proven: true,
                    });
                }
            }
        }
    }
    None
}

/// The least of resource k that `min_o` eligible customers of offer o use.
fn cheapest_use(problem: &Problem<'_>, o: usize, k: usize) -> f64 {
    let offer = &problem.offers[o];
    let min = offer.min as usize;
    match offer.uses[k] {
        Coefficients::Constant(c) => c * min as f64,
        Coefficients::PerCustomer(uses) => {
            let mut eligible: Vec<f32> = (0..uses.len())
                .into_par_iter()
                .filter(|&i| offer.is_eligible(i))
                .map(|i| uses[i])
                .collect();
            if eligible.len() < min || min == 0 {
                return 0.0;
            }
            eligible.select_nth_unstable_by(min - 1, f32::total_cmp);
            let mut smallest = eligible[..min].to_vec();
            smallest.sort_unstable_by(f32::total_cmp);
            smallest.iter().map(|&a| f64::from(a)).sum()
        }
    }
}

/// The answer when the repair could not meet the minimums and no proof was found: every offer
/// with a minimum and every resource.
pub fn unmet(problem: &Problem<'_>) -> Conflict {
    Conflict {
        resources: (0..problem.limits.len()).collect(),
        offers: (0..problem.offers.len())
            .filter(|&o| problem.offers[o].min > 0)
            .collect(),
        reason: "no plan meeting every minimum was found, and no smaller conflict is proven"
            .to_string(),
        proven: false,
    }
}
