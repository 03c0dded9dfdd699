//! The frontier of one scenario: the optimal objective at each budget of a grid (default 50
//! points from 0 to the total cost of the eligible customers), so a planner sees where the
//! next dollar stops paying. Every point is the exact solver's certified answer.
//!
//! Shared work: the scenario is scored, tiered and filtered once, and its candidates (eligible
//! customers with a finite positive objective, the only ones the solver can take) are compacted
//! once into two dense arrays, so each of the grid's solves skips the filter, the ineligible
//! rows and the worthless ones; the grid's solves then run side by side on the rayon pool
//! ([`kernel::solve_each`]), each single-threaded and deterministic. The last point's budget is
//! the total eligible cost, where the optimum is every candidate: the unconstrained optimum.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::ScenarioValues;
use super::scenario::{Objective, Scenario, ScenarioSet};
use crate::campaign::RealCosts;
use crate::error::{Error, Result};
use crate::kernel;
use crate::limits::MAX_FRONTIER_POINTS;
use crate::select::{self, CostUnits, SolveLimits};

/// Budgets on the default grid.
pub const DEFAULT_POINTS: usize = 50;

/// Which frontier to trace; as JSON (the API's `frontier` field) both fields are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontierSpec {
    /// The scenario by name; `None`: the first.
    pub scenario: Option<String>,
    /// Budgets on the grid, 2 to [`MAX_FRONTIER_POINTS`]: `k / (points - 1)` of the total
    /// eligible cost.
    pub points: usize,
}

impl Default for FrontierSpec {
    fn default() -> Self {
        FrontierSpec {
            scenario: None,
            points: DEFAULT_POINTS,
        }
    }
}

/// The optimum at one budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrontierPoint {
    /// The budget, in (multiplied) cost units, after rounding to resource units.
    pub budget: f64,
    /// The objective of the selection (optimal, or within `gap` of it).
    pub objective: f64,
    /// What the selection really costs (its written costs summed exactly, times the
    /// multiplier: [`RealCosts::total`]), in cost units; at most `budget`.
    pub spend: f64,
    /// `(objective - spend) / spend`, the return on the objective; `None` when nothing is spent.
    pub roi: Option<f64>,
    /// Whether the point is proven optimal.
    pub optimal: bool,
    /// Its certified relative gap.
    pub gap: f64,
}

/// A scenario's frontier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frontier {
    /// The scenario traced.
    pub scenario: String,
    /// What its selections maximise.
    pub objective: Objective,
    /// One point per budget, budgets ascending.
    pub points: Vec<FrontierPoint>,
    /// The knee: the point farthest above the chord from the first point to the last (in
    /// coordinates scaled to that chord), where extra budget starts to buy less; `None` when
    /// the frontier is flat.
    pub knee: Option<usize>,
}

/// The index in `set` of the scenario whose frontier `spec` asks for: the one it names, or the
/// first. Checked before any scenario is scored, so a bad name or point count costs nothing.
pub(crate) fn frontier_scenario(set: &ScenarioSet, spec: &FrontierSpec) -> Result<usize> {
    check_points(spec.points, "frontier-points")?;
    match &spec.scenario {
        None => Ok(0),
        Some(name) => set
            .scenarios
            .iter()
            .position(|scenario| &scenario.name == name)
            .ok_or_else(|| {
                Error::invalid(
                    "frontier-scenario",
                    format!("{}: no scenario is named `{name}`", set.file),
                )
            }),
    }
}

/// Checks a frontier's number of budgets, 2 to [`MAX_FRONTIER_POINTS`]; `name` is the flag or
/// field that gave it.
pub fn check_points(points: usize, name: &str) -> Result<()> {
    if !(2..=MAX_FRONTIER_POINTS).contains(&points) {
        return Err(Error::invalid(
            name,
            format!("{points} points; a frontier has from 2 to {MAX_FRONTIER_POINTS} points"),
        ));
    }
    Ok(())
}

/// Traces the frontier of `scenario` at `points` budgets over its prepared `values`, its spend
/// in the `real` costs.
pub(crate) fn trace_scenario(
    scenario: &Scenario,
    values: &ScenarioValues,
    real: RealCosts<'_>,
    points: usize,
    limits: &SolveLimits,
) -> Result<Frontier> {
    let points = trace(
        values.objective(scenario.objective),
        &values.units,
        values.eligible.as_deref(),
        real,
        points,
        scenario.resource_scale,
        limits,
    )?;
    Ok(Frontier {
        scenario: scenario.name.clone(),
        objective: scenario.objective,
        knee: knee(&points),
        points,
    })
}

/// The optimum of `values` over the cost `units` at `points` budgets from 0 to the total cost
/// of the eligible rows (`resource_scale` units per cost unit), budgets ascending; each point's
/// spend is its selection's `real` cost (at most its budget: units round costs up). Each point
/// first asks `limits.cancel` whether to go on: [`Error::Stopped`] once it says stop.
///
/// # Panics
///
/// If `points < 2`, or the slices' lengths differ.
pub fn trace(
    values: &[f32],
    units: &CostUnits,
    eligible: Option<&[bool]>,
    real: RealCosts<'_>,
    points: usize,
    resource_scale: f64,
    limits: &SolveLimits,
) -> Result<Vec<FrontierPoint>> {
    assert!(points >= 2, "a frontier needs at least 2 points");
    assert_eq!(values.len(), units.len(), "one cost per value");
    let (mut candidate_values, mut candidate_units) = (Vec::new(), Vec::new());
    let mut candidate_rows = Vec::new();
    let mut total: u128 = 0;
    for (row, &value) in values.iter().enumerate() {
        if eligible.is_none_or(|eligible| eligible[row]) {
            let cost = units.get(row);
            total += u128::from(cost);
            if value.is_finite() && value > 0.0 {
                candidate_values.push(value);
                candidate_units.push(cost);
                candidate_rows.push(row);
            }
        }
    }
    let last = (points - 1) as u128;
    let capacities: Vec<u64> = (0..points as u128)
        .map(|k| u64::try_from(total * k / last).expect("the costs' total fits a u64"))
        .collect();
    kernel::solve_each(&capacities, |&capacity| {
        limits.cancel.check("the frontier")?;
        let selection =
            select::knapsack(&candidate_values, &candidate_units, capacity, None, limits);
        let spend = real.total(selection.rows.iter().map(|&row| candidate_rows[row]));
        Ok(FrontierPoint {
            budget: capacity as f64 / resource_scale,
            objective: selection.objective,
            spend,
            roi: (spend > 0.0).then(|| (selection.objective - spend) / spend),
            optimal: selection.optimal,
            gap: selection.gap,
        })
    })
    .into_iter()
    .collect()
}

/// The knee of `points` (see [`Frontier::knee`]).
pub fn knee(points: &[FrontierPoint]) -> Option<usize> {
    let curve: Vec<(f64, f64)> = points.iter().map(|p| (p.budget, p.objective)).collect();
    knee_of(&curve)
}

/// The knee of a curve of `(x, value)` points, x ascending: the point farthest above the chord
/// from the first point to the last, in coordinates scaled to that chord; `None` when the
/// curve is flat or nothing lies above the chord.
pub fn knee_of(curve: &[(f64, f64)]) -> Option<usize> {
    let (first, last) = (curve.first()?, curve.last()?);
    let width = last.0 - first.0;
    let height = last.1 - first.1;
    if !(width > 0.0 && height > 0.0) {
        return None;
    }
    curve
        .iter()
        .map(|&(x, value)| (value - first.1) / height - (x - first.0) / width)
        .enumerate()
        .filter(|&(_, lift)| lift > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(index, _)| index)
}

/// Writes the frontier as CSV: `budget,objective,spend,roi,optimal,gap` (empty `roi` when
/// nothing is spent).
pub fn write_frontier(out: impl Write, frontier: &Frontier) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for point in &frontier.points {
        writer.serialize(point)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(budget: f64, objective: f64) -> FrontierPoint {
        FrontierPoint {
            budget,
            objective,
            spend: budget,
            roi: None,
            optimal: true,
            gap: 0.0,
        }
    }

    #[test]
    fn the_knee_is_where_the_curve_bends_most() {
        let points: Vec<FrontierPoint> =
            [(0.0, 0.0), (1.0, 8.0), (2.0, 9.0), (3.0, 9.5), (4.0, 10.0)]
                .map(|(b, v)| point(b, v))
                .to_vec();
        assert_eq!(knee(&points), Some(1));
        assert_eq!(knee(&[point(0.0, 1.0), point(5.0, 1.0)]), None);
    }

    #[test]
    fn a_small_frontier_matches_brute_force() {
        let values = [5.0f32, 4.0, 3.0, -1.0, 2.5];
        let units = CostUnits::Wide(vec![4, 3, 2, 1, 2]);
        let eligible = [true, true, true, true, false];
        let costs = [4.0f32, 3.0, 2.0, 1.0, 2.0];
        let real = RealCosts {
            column: &costs,
            multiplier: 1.0,
        };
        let points = trace(
            &values,
            &units,
            Some(&eligible),
            real,
            6,
            1.0,
            &SolveLimits::default(),
        )
        .unwrap();
        // Eligible total cost 10: budgets 0, 2, 4, 6, 8, 10.
        let budgets: Vec<f64> = points.iter().map(|p| p.budget).collect();
        assert_eq!(budgets, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let objectives: Vec<f64> = points.iter().map(|p| p.objective).collect();
        assert_eq!(objectives, [0.0, 3.0, 5.0, 8.0, 9.0, 12.0]);
        assert!(points.iter().all(|p| p.optimal));
    }
}
