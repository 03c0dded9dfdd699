//! A campaign's target selection over a scored store: the eligibility filter, the cost column
//! scaled to integer resource units, and the exact knapsack. The pipeline behind `crv select`,
//! the server's `/v1/select`, and (piece by piece) the simulations of `crate::simulate`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::filter::{Filter, Scores};
use crate::kernel::Scored;
use crate::select::{self, Selection, SolveLimits};
use crate::store::Store;

/// What a planner asks for.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    /// Total resource available (TR), in the cost column's units (currency by default); >= 0.
    pub budget: f64,
    /// The numeric column holding each customer's resource use (CR).
    pub cost_column: String,
    /// Integer resource units per cost unit (100: costs in cents). Costs and budget are
    /// rounded to these units, and the optimum is exact on the rounded problem.
    pub resource_scale: f64,
    /// A `--where` expression restricting who may be targeted (empty: everyone).
    pub filter: String,
    /// Limits on the solver.
    pub limits: SolveLimits,
}

impl Default for CampaignSpec {
    fn default() -> Self {
        CampaignSpec {
            budget: 0.0,
            cost_column: "cost".to_string(),
            resource_scale: 100.0,
            filter: String::new(),
            limits: SolveLimits::default(),
        }
    }
}

/// The chosen customers with the proof of their quality and the campaign's accounts.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The solver's answer: rows, objective (total CRV), bound, gap, optimal, stats.
    pub selection: Selection,
    /// The name of the cost column used.
    pub cost_column: String,
    /// Sum of the chosen customers' costs, in cost units (exact: summed in resource units).
    pub total_cost: f64,
    /// The budget after rounding to resource units.
    pub budget: f64,
    /// `budget - total_cost`.
    pub budget_left: f64,
    /// Time to evaluate the filter and scale the costs.
    pub prepare_time: Duration,
}

/// Selects the targets of `spec` among `store`'s customers scored as `scored`.
pub fn select_targets(store: &Store, scored: &Scored, spec: &CampaignSpec) -> Result<Targets> {
    let started = Instant::now();
    let capacity = select::scale_capacity(spec.budget, spec.resource_scale)?;
    let units = cost_units(store, &spec.cost_column, spec.resource_scale)?;
    let scores = Scores {
        crv: &scored.crv,
        tier: &scored.tiers.tier,
    };
    let eligible = eligibility(store, &spec.filter, scores)?;
    let prepare_time = started.elapsed();
    Ok(solve(
        &scored.crv,
        &units,
        capacity,
        eligible.as_deref(),
        spec,
        prepare_time,
    ))
}

/// The cost column `name` in integer resource units: `round(cost * units_per_cost)`
/// ([`select::scale_costs`]).
pub fn cost_units(store: &Store, name: &str, units_per_cost: f64) -> Result<Vec<u64>> {
    let costs = store.numeric(name).map_err(|e| match e {
        Error::Column { name, message } => Error::invalid(
            "cost",
            format!("column `{name}` {message}: the cost must be a numeric column"),
        ),
        other => other,
    })?;
    select::scale_costs(costs, units_per_cost)
}

/// The eligibility mask of the `--where` expression `filter` over `store` and `scores`;
/// `None` when the filter is empty (everyone is eligible).
pub fn eligibility(store: &Store, filter: &str, scores: Scores<'_>) -> Result<Option<Vec<bool>>> {
    let filter = Filter::parse(filter)?;
    if filter.is_empty() {
        Ok(None)
    } else {
        filter.eligible(store, scores).map(Some)
    }
}

/// The exact knapsack of `values` over the cost `units` within `capacity` units, with the
/// campaign's accounts in cost units (`spec.resource_scale` units each). `spec` supplies the
/// solver limits, the resource scale and the cost column's name; its budget and filter are
/// already in `capacity` and `eligible`.
pub fn solve(
    values: &[f32],
    units: &[u64],
    capacity: u64,
    eligible: Option<&[bool]>,
    spec: &CampaignSpec,
    prepare_time: Duration,
) -> Targets {
    let selection = select::knapsack(values, units, capacity, eligible, &spec.limits);
    let used: u128 = selection
        .rows
        .iter()
        .map(|&row| u128::from(units[row]))
        .sum();
    let scale = spec.resource_scale;
    Targets {
        total_cost: used as f64 / scale,
        budget: capacity as f64 / scale,
        budget_left: u128::from(capacity)
            .checked_sub(used)
            .expect("a selection fits its capacity") as f64
            / scale,
        cost_column: spec.cost_column.clone(),
        selection,
        prepare_time,
    }
}
