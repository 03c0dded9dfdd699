//! The single-budget case: one resource, one offer, no minimum or maximum count. That is the
//! 0-1 knapsack, and it goes to the exact solver ([`crate::select::knapsack`], what `crv select`
//! runs), which proves its optimum, instead of the Lagrangian dual and repair.
//!
//! The knapsack works in whole resource units at [`RESOURCE_SCALE`] units per unit of the
//! resource (cents of a currency, as `crv select` by default). It is taken only when every
//! eligible customer's use is a whole number of those units (within the f32's own
//! representation error of the decimal written, as [`crate::select::scale_costs`] reads it):
//! then the scaled knapsack is the campaign itself, and its certificate is the campaign's.
//! Otherwise the general method runs. Customers enter the knapsack in ascending id order (the
//! rows as they are when the ids already ascend), so ties between equal plans break the same
//! way whatever the order of the rows.

use std::time::Instant;

use rayon::prelude::*;

use super::pricing::totals;
use super::{Coefficients, Options, Plan, Problem};
use crate::select::{self, CostUnits, SolveLimits};

/// Whole resource units per unit of the resource in the knapsack (cents), as `crv select`'s
/// default.
const RESOURCE_SCALE: f64 = select::DEFAULT_RESOURCE_SCALE;

/// 2^-23: relative distance from a whole number of units within which a use counts as whole
/// (the f32's representation error with room to spare, as in `select::cost`).
const WHOLE_UNITS: f64 = 1.0 / 8_388_608.0;

/// The plan by the exact knapsack, when the campaign is a single budget with whole-unit uses.
pub fn solve(problem: &Problem<'_>, options: &Options) -> Option<Plan> {
    let [limit] = problem.limits[..] else {
        return None;
    };
    let [offer] = &problem.offers[..] else {
        return None;
    };
    if offer.min > 0 || offer.max.is_some() {
        return None;
    }
    let started = Instant::now();
    let n = problem.ids.len();
    let ascending = problem.ids.par_windows(2).all(|w| w[0] < w[1]);
    // Row of the knapsack's item j (the identity when the ids ascend).
    let order: Option<Vec<u32>> = (!ascending).then(|| {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.par_sort_unstable_by_key(|&i| problem.ids[i as usize]);
        order
    });
    let row = |j: usize| order.as_ref().map_or(j, |order| order[j] as usize);
    let column = |coefficients: &Coefficients<'_>| -> Vec<f32> {
        (0..n)
            .into_par_iter()
            .map(|j| coefficients.get(row(j)) as f32)
            .collect()
    };
    let values = column(&offer.value);
    let uses = column(&offer.uses[0]);
    let eligible: Option<Vec<bool>> = offer
        .eligible
        .map(|mask| (0..n).into_par_iter().map(|j| mask[row(j)]).collect());
    let units = select::scale_costs(&uses, RESOURCE_SCALE).ok()?;
    let capacity = select::scale_capacity(limit, RESOURCE_SCALE).ok()?;
    let whole = |j: usize, u: u64| {
        let scaled = f64::from(uses[j]) * RESOURCE_SCALE;
        (scaled - u as f64).abs() <= scaled * WHOLE_UNITS
    };
    let all_whole = match &units {
        CostUnits::Narrow(units) => (0..n)
            .into_par_iter()
            .all(|j| whole(j, u64::from(units[j]))),
        CostUnits::Wide(units) => (0..n).into_par_iter().all(|j| whole(j, units[j])),
    };
    if !all_whole {
        return None;
    }
    let limits = SolveLimits {
        time_limit: options
            .time_limit
            .map(|limit| limit.saturating_sub(started.elapsed())),
        cancel: options.cancel.clone(),
        ..SolveLimits::default()
    };
    let selection = match &units {
        CostUnits::Narrow(units) => {
            select::knapsack(&values, units, capacity, eligible.as_deref(), &limits)
        }
        CostUnits::Wide(units) => {
            select::knapsack(&values, units, capacity, eligible.as_deref(), &limits)
        }
    };
    let mut choice = vec![0u8; n];
    for &j in &selection.rows {
        choice[row(j)] = 1;
    }
    let solve_time = started.elapsed();
    let started = Instant::now();
    let plan_totals = totals(problem, &choice);
    let objective = plan_totals.value;
    let upper_bound = selection.upper_bound;
    let gap = (upper_bound - objective) / upper_bound.abs().max(f64::MIN_POSITIVE);
    Some(Plan {
        choice,
        objective,
        upper_bound,
        gap,
        optimal: gap.abs() <= select::OPTIMALITY_TOLERANCE,
        // The break item's value per unit, per unit of the resource: the LP relaxation's price.
        resource_prices: vec![
            selection
                .stats
                .break_ratio
                .map_or(0.0, |ratio| ratio * RESOURCE_SCALE),
        ],
        offer_prices: vec![0.0],
        used: plan_totals.used,
        counts: plan_totals.counts,
        offer_values: plan_totals.offer_values,
        passes: 0,
        stopped: selection.stats.stopped_by.is_some(),
        times: (solve_time, started.elapsed()),
    })
}
