//! Batch ROI simulation: the same customers under many what-if scenarios, one result row per
//! scenario, and the value-versus-budget frontier of one of them. [`simulate`] is the one call
//! behind `crv simulate` and `POST /v1/simulate`, so both produce the same rows. In place of a
//! scenario's single budget, a campaign definition of several resources and offers can be
//! traced along one of its resources ([`resource_frontier`]: `crv simulate --campaign`, the
//! `campaign` of `POST /v1/simulate`).
//!
//! The pipeline: every scenario is scored in one fused pass over the columns
//! ([`kernel::score_scenarios`]: `scored`, `total_crv`, `potential_value`, no per-scenario
//! arrays); then, one scenario at a time (memory: one scenario's arrays, about 30 bytes per
//! customer), its CRV and incremental values ([`kernel::score_scenario`]), its tiers, its
//! eligibility and the exact knapsack ([`targets::solve`]).
//!
//! Decisions:
//! - **Budget**: no `budget` means unlimited: every eligible customer with a positive objective
//!   is contacted (the knapsack runs with the total cost as its capacity, so the row still
//!   carries a certificate).
//! - **Cost**: contacting customer i costs `cost_i * cost_multiplier` (`cost_i` as written:
//!   the shortest decimal of the stored f32), rounded up to `resource_scale` units per cost unit
//!   (the budget rounded down; [`crate::select::scale_costs`]), so the selection never spends
//!   more than the budget; `spend` (the targets' real multiplied cost: their written costs'
//!   exact sum times the multiplier, [`RealCosts::total`]),
//!   `roi` and the budget are in that multiplied cost. With multiplier 1 the units are exactly
//!   those of `crv select`.
//! - **Response**: `response_rate` is a number or the name of a numeric column whose values
//!   must all lie in [0, 1] (checked before any scoring; the error names the row).
//! - **Objective**: `incremental` maximises `sum delta_i`, `crv` the plain `sum CRV_i` (CRV
//!   without uplift, after `margin_multiplier` and `retention_shift`). For a scenario with
//!   neither adjustment nor uplift the values are the kernel's f32 CRV bit for bit, so the
//!   selection is exactly `crv select`'s.
//! - **Filter**: `where` is a `--where` expression ([`crate::campaign::filter`]) whose `crv` and `tier`
//!   are the scenario's own CRV without uplift and its tiers.
//! - **Tiers**: `targets_A..N` count the targets by the scenario's own tiers (ABC on its CRV
//!   without uplift, the default cuts 0.80/0.95).
//! - **Row values**: `incremental_value` is `sum delta_i` over the targets (0 without uplift),
//!   `targets_crv` their `sum CRV_i`, both in f64; `roi = (incremental_value - spend) / spend`,
//!   left empty (JSON `null`) when nothing is spent; `potential_value` is the sum of the
//!   positive objective over all customers (ignoring budget and filter); `time_ms` is the
//!   scenario's own values, tiers and selection (the shared fused pass is reported once).

pub mod frontier;
mod modelled;
pub mod plot;
pub mod resource_frontier;
pub mod scenario;

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::CampaignSpec;
use super::filter::Filter;
use super::targets::{self, RealCosts, Targets};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::kernel::{
    self, CrvInputs, Response, ScenarioParams, ScenarioTotals, TierScheme, Uplift,
};
use crate::model::Tier;
use crate::select::{self, CostUnits, SolveLimits};
use crate::store::Store;
use crate::table::{Table, Valuation};
use modelled::ModelledScenarios;

pub use frontier::{Frontier, FrontierPoint, FrontierSpec};
pub use resource_frontier::{LimitGrid, ResourceFrontier, ResourceFrontierSpec, trace_resource};
pub use scenario::{Objective, ResponseRate, Scenario, ScenarioSet};
use scenario::{field_error, parameter_message};

/// One row of results: the scenario's parameters, then its outcome (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(non_snake_case)] // `targets_A` etc.: the tiers' own names, as in the results header.
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// Discount rate per period.
    pub discount: f64,
    /// Periods valued (`inf` for the perpetuity).
    pub horizon: String,
    /// Factor on every margin.
    pub margin_multiplier: f64,
    /// Added to every retention.
    pub retention_shift: f64,
    /// The cost column.
    pub cost: String,
    /// Factor on every cost.
    pub cost_multiplier: f64,
    /// Resource units per cost unit.
    pub resource_scale: f64,
    /// The budget; empty (`null`) when unlimited.
    pub budget: Option<f64>,
    /// The response probability, or its column.
    pub response_rate: ResponseRate,
    /// Added to a responder's retention.
    pub retention_uplift: f64,
    /// Relative margin increase of a responder.
    pub margin_uplift: f64,
    /// What the selection maximised.
    pub objective: Objective,
    /// The eligibility filter (empty: everyone).
    #[serde(rename = "where")]
    pub filter: String,
    /// Customers scored.
    pub scored: u64,
    /// Sum of every customer's CRV without uplift.
    pub total_crv: f64,
    /// Sum of the positive objective over all customers: the unconstrained campaign's value.
    pub potential_value: f64,
    /// Customers who pass the filter.
    pub eligible: u64,
    /// Customers selected.
    pub contacted: u64,
    /// Their total (multiplied) cost, in cost units.
    pub spend: f64,
    /// Their summed expected incremental value.
    pub incremental_value: f64,
    /// `(incremental_value - spend) / spend`; `None` when nothing is spent.
    pub roi: Option<f64>,
    /// Their summed CRV without uplift.
    pub targets_crv: f64,
    /// Targets in tier A.
    pub targets_A: u64,
    /// Targets in tier B.
    pub targets_B: u64,
    /// Targets in tier C.
    pub targets_C: u64,
    /// Targets in tier N.
    pub targets_N: u64,
    /// Whether the selection is proven optimal.
    pub optimal: bool,
    /// Its certified relative gap.
    pub gap: f64,
    /// Milliseconds for the scenario's values, tiers and selection.
    pub time_ms: f64,
}

/// What to compute besides the rows.
#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    /// The frontier to trace, if any.
    pub frontier: Option<FrontierSpec>,
    /// Limits on every knapsack solve.
    pub limits: SolveLimits,
}

/// The answer to a scenario set.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// One row per scenario, in the set's order.
    pub results: Vec<ScenarioResult>,
    /// The frontier, when asked for.
    pub frontier: Option<Frontier>,
    /// Time of the fused scoring pass over every scenario.
    pub scoring_time: Duration,
}

/// How the scenarios' values are computed: the retention kernel (its inputs and the fused
/// pass's totals per scenario), or a purchase model.
enum Valued<'a> {
    Retention(CrvInputs<'a>, Vec<ScenarioTotals>),
    Purchases(ModelledScenarios<'a>),
}

/// Runs every scenario of `set` over `table`'s customers (their own columns; each scenario
/// scores them anew): the one library call behind the command line and the API. Checks every
/// scenario against the columns (cost, response rates, filter) before scoring.
pub fn simulate(table: &Table, set: &ScenarioSet, options: &SimulateOptions) -> Result<Simulation> {
    let store = table.store();
    let inputs = match table.valuation() {
        Valuation::Retention => Some(CrvInputs::from_store(store)?),
        Valuation::Purchases(_) => None,
    };
    // (scenario index, points) of the frontier asked for.
    let frontier_asked = options
        .frontier
        .as_ref()
        .map(|spec| frontier::frontier_scenario(set, spec).map(|index| (index, spec.points)))
        .transpose()?;
    let params = set
        .scenarios
        .iter()
        .map(|scenario| kernel_params(store, scenario, &set.file))
        .collect::<Result<Vec<_>>>()?;
    let cancel = &options.limits.cancel;
    cancel.check("scoring")?;
    let started = Instant::now();
    let mut valued = match (inputs, table.valuation()) {
        (Some(inputs), _) => {
            let totals = kernel::score_scenarios(&inputs, &params);
            Valued::Retention(inputs, totals)
        }
        (None, Valuation::Purchases(model)) => {
            Valued::Purchases(ModelledScenarios::new(model, store, set)?)
        }
        (None, Valuation::Retention) => unreachable!("retention tables have their inputs"),
    };
    let scoring_time = started.elapsed();
    let mut results = Vec::with_capacity(set.scenarios.len());
    let mut frontier = None;
    for (index, (scenario, params)) in set.scenarios.iter().zip(&params).enumerate() {
        cancel.check(&format!("scenario `{}`", scenario.name))?;
        let started = Instant::now();
        let (values, totals) = match &mut valued {
            Valued::Retention(inputs, totals) => (
                prepare(table, inputs, scenario, params, &set.file, cancel)?,
                totals[index],
            ),
            Valued::Purchases(modelled) => {
                let with_delta =
                    params.uplift.is_some() || scenario.objective == Objective::Incremental;
                let modelled = modelled.values(scenario, params, with_delta, &set.file)?;
                let totals = modelled.totals;
                let values = finish(
                    table,
                    scenario,
                    (modelled.crv, modelled.delta, totals),
                    &set.file,
                    cancel,
                )?;
                (values, totals)
            }
        };
        let targets = solve_scenario(store, &values, scenario, &options.limits, &set.file)?;
        results.push(result_row(
            scenario,
            &totals,
            &values,
            &targets,
            started.elapsed(),
        ));
        if let Some((frontier_index, points)) = frontier_asked
            && frontier_index == index
        {
            // The frontier's scenario is traced over the values its row was selected from.
            frontier = Some(frontier::trace_scenario(
                scenario,
                &values,
                real_costs(store, scenario, &set.file)?,
                points,
                &options.limits,
            )?);
        }
    }
    Ok(Simulation {
        results,
        frontier,
        scoring_time,
    })
}

/// The kernel's view of `scenario`, its response column read from `store` and checked to hold
/// probabilities in [0, 1].
pub fn kernel_params<'a>(
    store: &'a Store,
    scenario: &Scenario,
    file: &str,
) -> Result<ScenarioParams<'a>> {
    let error = |field: &str, message: String| field_error(file, &scenario.name, field, message);
    let response = match &scenario.response_rate {
        ResponseRate::Constant(p) => Response::Constant(*p),
        ResponseRate::Column(name) => {
            let column = store
                .numeric(name)
                .map_err(|e| error("response_rate", e.to_string()))?;
            if let Some(row) = column.iter().position(|p| !(0.0..=1.0).contains(p)) {
                return Err(error(
                    "response_rate",
                    format!(
                        "column `{name}` row {row}: {} is not a probability in [0, 1]",
                        column[row]
                    ),
                ));
            }
            Response::Column(column)
        }
    };
    store
        .numeric(&scenario.cost)
        .map_err(|e| error("cost", format!("{e}: the cost must be a numeric column")))?;
    Filter::parse(&scenario.filter)
        .and_then(|filter| filter.check(store))
        .map_err(|e| error("where", parameter_message(e)))?;
    Ok(ScenarioParams {
        score: scenario.score,
        margin_multiplier: scenario.margin_multiplier,
        retention_shift: scenario.retention_shift,
        uplift: scenario.has_uplift().then_some(Uplift {
            retention: scenario.retention_uplift,
            margin: scenario.margin_uplift,
            response,
        }),
    })
}

/// One scenario's per-customer values, ready for selection.
#[derive(Debug)]
pub struct ScenarioValues {
    /// The customers with the scenario's CRV without uplift (tiers on it when asked for).
    pub table: Table,
    /// Expected incremental value per row, when the scenario has an uplift or maximises it.
    pub delta: Option<Vec<f32>>,
    /// Contact cost per row in resource units (multiplied cost).
    pub units: CostUnits,
    /// Who passes the filter; `None`: everyone.
    pub eligible: Option<Vec<bool>>,
    /// Totals of `crv` and the positive `delta`.
    pub totals: ScenarioTotals,
}

impl ScenarioValues {
    /// The values the knapsack maximises for `objective`.
    ///
    /// # Panics
    ///
    /// For `incremental` when `delta` was not computed ([`prepare`] always computes it then).
    pub fn objective(&self, objective: Objective) -> &[f32] {
        match objective {
            Objective::Incremental => self
                .delta
                .as_deref()
                .expect("prepare computes delta for an incremental objective"),
            Objective::Crv => self.table.crv(),
        }
    }
}

/// Scores one scenario of `table`'s customers (valued from margins and retention) into
/// arrays, scales its costs and evaluates its filter (its tiers only when the filter looks at
/// them; stopping with [`Error::Stopped`] once `cancel` says so).
pub fn prepare(
    table: &Table,
    inputs: &CrvInputs<'_>,
    scenario: &Scenario,
    params: &ScenarioParams<'_>,
    file: &str,
    cancel: &Cancel,
) -> Result<ScenarioValues> {
    let store = table.store();
    let rows = inputs.len();
    let mut crv = vec![0.0f32; rows];
    let mut delta = (params.uplift.is_some() || scenario.objective == Objective::Incremental)
        .then(|| vec![0.0f32; rows]);
    let totals = kernel::score_scenario(inputs, params, &mut crv, delta.as_deref_mut());
    check_finite(
        store,
        inputs,
        scenario,
        &crv,
        delta.as_deref(),
        &totals,
        file,
    )?;
    finish(table, scenario, (crv, delta, totals), file, cancel)
}

/// The rest of a scenario's preparation once its values are computed (by the retention
/// kernel or a purchase model): the table of its CRV, its cost units and its eligibility.
fn finish(
    table: &Table,
    scenario: &Scenario,
    (crv, delta, totals): (Vec<f32>, Option<Vec<f32>>, ScenarioTotals),
    file: &str,
    cancel: &Cancel,
) -> Result<ScenarioValues> {
    let error =
        |field: &str, e: Error| field_error(file, &scenario.name, field, parameter_message(e));
    let store = table.store();
    let table = table.with_values(scenario.score, TierScheme::default(), crv, totals.crv);
    let units = targets::cost_units(
        store,
        &scenario.cost,
        scenario.resource_scale * scenario.cost_multiplier,
    )
    .map_err(|e| error("cost", e))?;
    let filter = Filter::parse(&scenario.filter).map_err(|e| error("where", e))?;
    let eligible = targets::eligibility(&table, &filter, cancel).map_err(|e| {
        if matches!(e, Error::Stopped { .. }) {
            e
        } else {
            error("where", e)
        }
    })?;
    Ok(ScenarioValues {
        table,
        delta,
        units,
        eligible,
        totals,
    })
}

/// An error when a scenario's CRV or expected incremental value is infinite or NaN for some
/// customer: names the scenario, the field most likely at fault (an adjustment that is not
/// neutral, else the discount and horizon), the first such customer and its margin and
/// retention. Such a value cannot be totalled, tiered or selected.
fn check_finite(
    store: &Store,
    inputs: &CrvInputs<'_>,
    scenario: &Scenario,
    crv: &[f32],
    delta: Option<&[f32]>,
    totals: &ScenarioTotals,
    file: &str,
) -> Result<()> {
    let (what, values, count, field) = if totals.crv.non_finite > 0 {
        let field = if scenario.margin_multiplier != 1.0 {
            "margin_multiplier"
        } else if scenario.retention_shift != 0.0 {
            "retention_shift"
        } else {
            "horizon"
        };
        ("CRV", crv, totals.crv.non_finite, field)
    } else if totals.non_finite_delta > 0 {
        let field = if scenario.margin_uplift != 0.0 {
            "margin_uplift"
        } else {
            "retention_uplift"
        };
        let delta = delta.expect("a delta count comes from computed deltas");
        (
            "expected incremental value",
            delta,
            totals.non_finite_delta,
            field,
        )
    } else {
        return Ok(());
    };
    let row = kernel::first_non_finite(values).expect("the count says some value is not finite");
    Err(field_error(
        file,
        &scenario.name,
        field,
        format!(
            "customer {} (margin {}, retention {}): {what} {} under margin_multiplier {}, \
             retention_shift {}, discount {}, horizon {} ({count} customer(s) in all); every \
             value must be finite",
            store.customer_id(row),
            inputs.margin[row],
            inputs.retention[row],
            values[row],
            scenario.margin_multiplier,
            scenario.retention_shift,
            scenario.score.discount,
            scenario.score.horizon,
        ),
    ))
}

/// The exact knapsack of `scenario`'s objective within its budget (unlimited: the total cost),
/// its accounts in the real (multiplied) costs of `store`'s cost column.
pub fn solve_scenario(
    store: &Store,
    values: &ScenarioValues,
    scenario: &Scenario,
    limits: &SolveLimits,
    file: &str,
) -> Result<Targets> {
    let capacity = match scenario.budget {
        Some(budget) => select::scale_capacity(budget, scenario.resource_scale)
            .map_err(|e| field_error(file, &scenario.name, "budget", parameter_message(e)))?,
        None => values.units.total(),
    };
    let spec = CampaignSpec {
        // Unlimited: the rounded total, which every real total is below.
        budget: scenario
            .budget
            .unwrap_or(capacity as f64 / scenario.resource_scale),
        cost_column: scenario.cost.clone(),
        resource_scale: scenario.resource_scale,
        filter: scenario.filter.clone(),
        limits: limits.clone(),
    };
    let real = real_costs(store, scenario, file)?;
    Ok(targets::solve(
        values.objective(scenario.objective),
        &values.units,
        capacity,
        values.eligible.as_deref(),
        &spec,
        real,
        Duration::ZERO,
    ))
}

/// The real (multiplied) cost of each of `store`'s customers under `scenario`.
fn real_costs<'s>(store: &'s Store, scenario: &Scenario, file: &str) -> Result<RealCosts<'s>> {
    Ok(RealCosts {
        column: targets::cost_column(store, &scenario.cost)
            .map_err(|e| field_error(file, &scenario.name, "cost", parameter_message(e)))?,
        multiplier: scenario.cost_multiplier,
    })
}

/// The results row of one scenario.
fn result_row(
    scenario: &Scenario,
    totals: &ScenarioTotals,
    values: &ScenarioValues,
    targets: &Targets,
    time: Duration,
) -> ScenarioResult {
    let selection = &targets.selection;
    let sum = |column: &[f32]| {
        selection
            .rows
            .iter()
            .map(|&row| f64::from(column[row]))
            .sum::<f64>()
    };
    let incremental_value = values.delta.as_deref().map_or(0.0, sum);
    let mut by_tier = [0u64; 4];
    let tiers = values.table.tier_column();
    for &row in &selection.rows {
        by_tier[tiers.get(row) as usize] += 1;
    }
    let spend = targets.total_cost;
    let potential = match scenario.objective {
        Objective::Crv => totals.crv.positive_crv,
        Objective::Incremental => totals.positive_delta,
    };
    ScenarioResult {
        name: scenario.name.clone(),
        discount: scenario.score.discount,
        horizon: scenario.score.horizon.to_string(),
        margin_multiplier: scenario.margin_multiplier,
        retention_shift: scenario.retention_shift,
        cost: scenario.cost.clone(),
        cost_multiplier: scenario.cost_multiplier,
        resource_scale: scenario.resource_scale,
        budget: scenario.budget,
        response_rate: scenario.response_rate.clone(),
        retention_uplift: scenario.retention_uplift,
        margin_uplift: scenario.margin_uplift,
        objective: scenario.objective,
        filter: scenario.filter.clone(),
        scored: totals.crv.customers,
        total_crv: totals.crv.crv_sum(),
        potential_value: potential,
        eligible: selection.stats.eligible_rows as u64,
        contacted: selection.rows.len() as u64,
        spend,
        incremental_value,
        roi: (spend > 0.0).then(|| (incremental_value - spend) / spend),
        targets_crv: sum(values.table.crv()),
        targets_A: by_tier[Tier::A as usize],
        targets_B: by_tier[Tier::B as usize],
        targets_C: by_tier[Tier::C as usize],
        targets_N: by_tier[Tier::N as usize],
        optimal: selection.optimal,
        gap: selection.gap,
        time_ms: time.as_secs_f64() * 1e3,
    }
}

/// Writes `rows` as CSV with a header (empty fields for `None`).
pub fn write_results(out: impl Write, rows: &[ScenarioResult]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()
}
