//! The targets of a campaign and their accounts: the exact knapsack over the values, the costs
//! in integer resource units and the eligibility mask, with the chosen customers' real cost and
//! a bound of the unrounded problem. Shared by a selection ([`super::BoundSelection`]) and
//! every scenario of a simulation ([`super::simulate`]).

use std::time::Duration;

use super::CampaignSpec;
use super::filter::Filter;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::select::{self, CostUnits, Selection};
use crate::store::Store;
use crate::table::Table;

/// The chosen customers with the proof of their quality and the campaign's accounts.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The solver's answer: rows, objective (total CRV), bound, gap, optimal, stats.
    pub selection: Selection,
    /// The name of the cost column used.
    pub cost_column: String,
    /// Sum of the chosen customers' real costs, in cost units: each cost as written (the
    /// shortest decimal that reads back as the stored f32), summed exactly and rounded once to
    /// f64 ([`RealCosts::total`]), times the cost multiplier of a simulation; at most `budget`.
    pub total_cost: f64,
    /// The budget, in cost units, as asked.
    pub budget: f64,
    /// `budget - total_cost`.
    pub budget_left: f64,
    /// An upper bound on the best total CRV under the real (written) costs and the budget (the
    /// LP relaxation of the unrounded problem, in its Lagrangian form, over the stored f32
    /// costs with the budget widened by `2^-23` to cover the written ones): what no selection,
    /// rounded or not, can beat.
    pub real_upper_bound: f64,
    /// `real_upper_bound - objective`: at most this much value was given up by rounding costs
    /// up and the budget down (and by the solver's own gap, when it stopped early).
    pub rounding_loss: f64,
    /// Time to evaluate the filter and scale the costs.
    pub prepare_time: Duration,
}

/// Each customer's real cost, in cost units: the cost column times a multiplier (1 for
/// `crv select`, a scenario's `cost_multiplier` for a simulation).
#[derive(Debug, Clone, Copy)]
pub struct RealCosts<'a> {
    /// The cost column.
    pub column: &'a [f32],
    /// Factor on every cost.
    pub multiplier: f64,
}

impl RealCosts<'_> {
    /// Row `row`'s real cost: its cost as written (the shortest decimal that reads back as the
    /// stored f32, [`select::as_written`]) times the multiplier. Formats the f32: for the
    /// chosen rows, not for whole columns.
    #[inline]
    pub fn cost(&self, row: usize) -> f64 {
        select::as_written(self.column[row]) * self.multiplier
    }

    /// The total real cost of `rows`: their written costs summed exactly
    /// ([`select::written_sum`]), times the multiplier.
    pub fn total(&self, rows: impl Iterator<Item = usize> + Clone) -> f64 {
        select::written_sum(rows.map(|row| self.column[row])) * self.multiplier
    }

    /// Row `row`'s stored cost times the multiplier: within a relative `2^-24` of
    /// [`RealCosts::cost`].
    #[inline]
    fn stored(&self, row: usize) -> f64 {
        f64::from(self.column[row]) * self.multiplier
    }
}

/// `2^-23`: a written cost exceeds its stored f32 by at most `2^-24` of it, and a written
/// budget its f64 by far less, so every selection within the budget in written costs lies
/// within `budget (1 + 2^-23)` in stored costs.
const WRITTEN_SLACK: f64 = 1.0 / 8_388_608.0;

/// The numeric column `name` holding each customer's cost; a precise error when it is not one.
pub fn cost_column<'s>(store: &'s Store, name: &str) -> Result<&'s [f32]> {
    store.numeric(name).map_err(|e| match e {
        Error::Column { name, message } => Error::invalid(
            "cost",
            format!("column `{name}` {message}: `cost` must name a numeric column"),
        ),
        other => other,
    })
}

/// The cost column `name` in integer resource units, each rounded up
/// ([`select::scale_costs`]).
pub fn cost_units(store: &Store, name: &str, units_per_cost: f64) -> Result<CostUnits> {
    select::scale_costs(cost_column(store, name)?, units_per_cost)
}

/// The eligibility mask of `filter` over `table` ([`Filter::eligible_in`]); `None` when the
/// filter is empty (everyone is eligible). Stops with [`Error::Stopped`] once `cancel` says so.
pub fn eligibility(table: &Table, filter: &Filter, cancel: &Cancel) -> Result<Option<Vec<bool>>> {
    if filter.is_empty() {
        Ok(None)
    } else {
        filter.eligible_in(table, cancel).map(Some)
    }
}

/// The exact knapsack of `values` over the cost `units` within `capacity` units, with the
/// campaign's accounts in cost units: the chosen customers' `real` costs and the bound of the
/// unrounded problem within `spec.budget`. `spec` supplies the solver limits and the cost
/// column's name; its budget and filter are already in `capacity` and `eligible`.
pub fn solve(
    values: &[f32],
    units: &CostUnits,
    capacity: u64,
    eligible: Option<&[bool]>,
    spec: &CampaignSpec,
    real: RealCosts<'_>,
    prepare_time: Duration,
) -> Targets {
    let selection = match units {
        CostUnits::Narrow(units) => {
            select::knapsack(values, units, capacity, eligible, &spec.limits)
        }
        CostUnits::Wide(units) => select::knapsack(values, units, capacity, eligible, &spec.limits),
    };
    let total_cost = real.total(selection.rows.iter().copied());
    // The bound over the stored costs, with the budget widened to cover every selection that
    // fits it in written costs: a valid bound for those, a hair loose. Its multiplier is the
    // solver's own break ratio, per cost unit.
    let lambda = selection
        .stats
        .break_ratio
        .map_or(0.0, |per_unit| per_unit * spec.resource_scale);
    let real_upper_bound = real_bound(
        values,
        eligible,
        real,
        spec.budget * (1.0 + WRITTEN_SLACK),
        lambda,
    );
    Targets {
        total_cost,
        budget: spec.budget,
        budget_left: spec.budget - total_cost,
        real_upper_bound,
        rounding_loss: real_upper_bound - selection.objective,
        cost_column: spec.cost_column.clone(),
        selection,
        prepare_time,
    }
}

/// A Lagrangian bound of the knapsack over the `real` costs as stored (f32 times the
/// multiplier) within `budget`, unrounded: `free + lambda budget + sum max(0, v - lambda c)`
/// over the eligible rows of positive value, where `free` is the value of those costing
/// nothing and rows costing more than the budget are left out (no selection holds them). It
/// bounds every selection whose real cost fits the budget, for any `lambda >= 0`; at the break
/// ratio of the greedy fill it is the LP bound, and the break ratio of the rounded problem
/// (what [`solve`] passes) is within a rounding of that. One sequential pass, no allocation.
pub fn real_bound(
    values: &[f32],
    eligible: Option<&[bool]>,
    real: RealCosts<'_>,
    budget: f64,
    lambda: f64,
) -> f64 {
    debug_assert!(
        lambda >= 0.0,
        "a Lagrangian multiplier of a <= constraint is >= 0"
    );
    let mut bound = lambda * budget;
    for (row, &value) in values.iter().enumerate() {
        if !(value.is_finite() && value > 0.0 && eligible.is_none_or(|e| e[row])) {
            continue;
        }
        let cost = real.stored(row);
        if cost <= budget {
            bound += (f64::from(value) - lambda * cost).max(0.0);
        }
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best total value under real costs by enumerating every subset.
    fn brute_force(values: &[f32], costs: &[f32], budget: f64) -> f64 {
        let mut best = 0.0f64;
        for mask in 0u32..(1 << values.len()) {
            let chosen = (0..values.len()).filter(|&i| mask >> i & 1 == 1);
            let (cost, value) = chosen.fold((0.0, 0.0), |(c, v), i| {
                (c + f64::from(costs[i]), v + f64::from(values[i]))
            });
            if cost <= budget {
                best = best.max(value);
            }
        }
        best
    }

    #[test]
    fn the_real_bound_is_above_every_real_selection_for_any_multiplier_and_the_lp_at_the_break() {
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for _ in 0..300 {
            let n = 1 + (next() * 12.0) as usize;
            let values: Vec<f32> = (0..n).map(|_| (next() * 50.0 - 5.0) as f32).collect();
            let costs: Vec<f32> = (0..n)
                .map(|_| {
                    if next() < 0.1 {
                        0.0
                    } else {
                        (next() * 7.0) as f32
                    }
                })
                .collect();
            let budget = next() * 20.0;
            let real = RealCosts {
                column: &costs,
                multiplier: 1.0,
            };
            let best = brute_force(&values, &costs, budget);
            for lambda in [0.0, next() * 3.0, next() * 30.0, 1e6] {
                let bound = real_bound(&values, None, real, budget, lambda);
                assert!(
                    bound >= best - 1e-9,
                    "lambda {lambda}: bound {bound} < optimum {best}"
                );
            }
        }
        // The LP optimum of a fractional instance: 10/1 whole, then half of 12/2, at the break
        // ratio 6.
        let real = RealCosts {
            column: &[1.0, 2.0, 4.0],
            multiplier: 1.0,
        };
        let bound = real_bound(&[10.0, 12.0, 4.0], None, real, 2.0, 6.0);
        assert!((bound - 16.0).abs() < 1e-12, "{bound}");
        // The multiplier scales every cost.
        let real = RealCosts {
            column: &[1.0, 2.0, 4.0],
            multiplier: 0.5,
        };
        let bound = real_bound(&[10.0, 12.0, 4.0], None, real, 1.0, 12.0);
        assert!((bound - 16.0).abs() < 1e-12, "{bound}");
    }
}
