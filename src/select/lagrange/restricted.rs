//! Exact prices from the LP over the near-tied customers.
//!
//! The dual's prices are optimal only to the precision of its stopping rule, and near the
//! optimum the Lagrangian is flat: many customers whose choice is nearly tied take, at those
//! prices, choices that together overfill (or underfill) the limits. At the LP optimum's prices
//! the best choices fit, but for at most one customer per binding constraint, who is tied.
//!
//! So the customers of smallest margin at the dual's prices (the [`NEAR_TIED`] of them, then
//! by id) are kept free, everyone else is fixed at their best choice there, and the LP over the
//! free customers within what the fixed ones leave of each limit and maximum is solved
//! exactly, through its dual: minimise `lambda.b' + mu.max' + sum_i u_i` subject to
//! `u_i >= v_io - lambda.a_io - mu_o` for every free customer and offer (`microlp`). Its
//! prices are the whole LP's optimal prices whenever every customer whose choice differs
//! there was free; the caller checks them with an exact pass (any prices give a valid bound),
//! so a wrong guess costs a pass, never the guarantee.
//!
//! Campaigns with minimum counts are not handled here (the caller runs this only without
//! them). Cost: the margins of the customers the pricer re-prices (all on small campaigns),
//! a selection, their tally, and an LP with one variable per free customer and one row per
//! free customer and offer of positive value.

use microlp::{ComparisonOp, OptimizationDirection, Problem as Lp};
use rayon::prelude::*;

use super::Problem;
use super::boxed::Pricer;
use super::pricing::{Prices, Tally, Totals};

/// Customers free in the restricted LP.
pub const NEAR_TIED: usize = 512;

/// Rows per rayon task of the fixed customers' tally.
const CHUNK_ROWS: usize = 1 << 14;

/// The optimal prices of the LP over the customers nearest a tie at `prices` (module doc),
/// every other customer at their best choice there. `None` when the fixed customers alone
/// break a limit or a maximum, or the LP solver fails.
pub fn prices(problem: &Problem<'_>, pricer: &Pricer, prices: &Prices) -> Option<Prices> {
    let all: Vec<usize>;
    let (rows, settled) = match pricer.ambiguous() {
        Some((rows, settled)) => (rows, settled.clone()),
        None => {
            all = (0..problem.ids.len()).collect();
            (all.as_slice(), Tally::new(problem))
        }
    };
    // (margin, row, best choice) of every customer the pricer does not settle.
    let mut ranked: Vec<(f64, usize, u8)> = rows
        .par_iter()
        .map(|&i| {
            let (choice, margin) = prices.ranked(problem, i);
            (margin, i, choice)
        })
        .collect();
    let order = |a: &(f64, usize, u8), b: &(f64, usize, u8)| {
        a.0.total_cmp(&b.0)
            .then(problem.ids[a.1].cmp(&problem.ids[b.1]))
    };
    let free = NEAR_TIED.min(ranked.len());
    if free < ranked.len() {
        ranked.select_nth_unstable_by(free - 1, order);
    }
    let (near, rest) = ranked.split_at_mut(free);
    // The LP's rows in a fixed order (its optimal prices need not be unique).
    near.sort_unstable_by_key(|&(_, i, _)| problem.ids[i]);
    let fixed = rest
        .par_chunks(CHUNK_ROWS)
        .map(|chunk| {
            let mut tally = Tally::new(problem);
            for &(_, i, choice) in chunk {
                if let Some(o) = choice.checked_sub(1) {
                    tally.add(problem, i, usize::from(o));
                }
            }
            tally
        })
        .reduce(|| Tally::new(problem), Tally::merge)
        .merge(settled);
    let fixed = Totals::of(problem, fixed);
    let left: Vec<f64> = problem
        .limits
        .iter()
        .zip(&fixed.used)
        .map(|(l, u)| l - u)
        .collect();
    let left_counts: Vec<Option<f64>> = problem
        .offers
        .iter()
        .zip(&fixed.counts)
        .map(|(offer, &c)| offer.max.map(|m| m as f64 - c as f64))
        .collect();
    if left
        .iter()
        .chain(left_counts.iter().flatten())
        .any(|&l| l < 0.0)
    {
        return None;
    }
    let mut lp = Lp::new(OptimizationDirection::Minimize);
    let lambda: Vec<_> = left
        .iter()
        .map(|&l| lp.add_var(l, (0.0, f64::INFINITY)))
        .collect();
    let mu: Vec<_> = left_counts
        .iter()
        .map(|l| l.map(|l| lp.add_var(l, (0.0, f64::INFINITY))))
        .collect();
    for &(_, i, _) in near.iter() {
        let u = lp.add_var(1.0, (0.0, f64::INFINITY));
        for (o, offer) in problem.offers.iter().enumerate() {
            let value = offer.value.get(i);
            let uses: Vec<f64> = offer.uses.iter().map(|u| u.get(i)).collect();
            // With every price and u at least 0, the row holds by itself unless the offer
            // is worth something or pays back in some resource.
            if !offer.is_eligible(i) || (value <= 0.0 && uses.iter().all(|&a| a >= 0.0)) {
                continue;
            }
            // u + a.lambda + mu_o >= v
            let mut row = vec![(u, 1.0)];
            row.extend(
                lambda
                    .iter()
                    .zip(&uses)
                    .filter(|(_, a)| **a != 0.0)
                    .map(|(&var, &a)| (var, a)),
            );
            if let Some(var) = mu[o] {
                row.push((var, 1.0));
            }
            lp.add_constraint(row.as_slice(), ComparisonOp::Ge, value);
        }
    }
    let outcome = lp.solve().ok()?;
    let solution = outcome.solution().filter(|_| outcome.is_optimal())?;
    Some(Prices {
        resource: lambda
            .iter()
            .map(|&v| solution.var_value(v).max(0.0))
            .collect(),
        offer: mu
            .iter()
            .map(|v| v.map_or(0.0, |v| solution.var_value(v).max(0.0)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;
    use crate::select::lagrange::dual::{Layout, minimise};
    use crate::select::lagrange::testing::Campaign;
    use crate::select::lagrange::{Options, repair};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With every customer free (at most NEAR_TIED of them), the prices are the LP's
        /// optimal ones: the Lagrangian there is no higher than at the dual's best prices or
        /// at any other, and no lower than a feasible plan's value.
        #[test]
        fn prices_minimise_the_lagrangian(
            seed in any::<u64>(),
            n in 1usize..200,
            shape in (1usize..5, 1usize..4),
            with_max in any::<bool>(),
        ) {
            let campaign = Campaign::random(seed, n, shape, with_max, false);
            let problem = campaign.problem();
            let layout = Layout::of(&problem);
            let full = Pricer::full();
            let dual = minimise(&problem, &Options::default(), Instant::now());
            let exact = prices(&problem, &full, &dual.prices).expect("no customer is fixed");
            let bound = layout.bound(&problem, &full, &exact);
            let tolerance = 1e-9 * (1.0 + bound.abs());
            prop_assert!(bound <= dual.bound + tolerance, "{bound} > {}", dual.bound);
            for scale in [0.5, 0.9, 1.1, 2.0] {
                let other = Prices {
                    resource: exact.resource.iter().map(|p| p * scale + 0.01).collect(),
                    offer: exact.offer.iter().map(|p| p * scale).collect(),
                };
                prop_assert!(bound <= layout.bound(&problem, &full, &other) + tolerance);
            }
            let plan = repair::plan(&problem, &exact, None).expect("no minimum");
            let value = crate::select::lagrange::pricing::totals(&problem, &plan).value;
            prop_assert!(value <= bound + tolerance);
        }
    }
}
