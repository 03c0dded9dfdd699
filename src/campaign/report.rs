//! Output shared by the command line and the HTTP API, so a script and a service read the same
//! field names for the same numbers: the JSON summaries of `--json`, and the target list's CSV
//! rows of `crv select -o` and `POST /v1/select` with `Accept: text/csv`.

use serde_json::{Value, json};
use std::io;

use super::Targets;
use crate::error::Result;
use crate::kernel::TierScheme;
use crate::model::{CsvField, Horizon, Tier};
use crate::select::parts::PartsSelection;
use crate::store::Store;
use crate::table::{Table, TierColumn};

/// `value` as a JSON number with the f32's own shortest decimal (`49.83921`, not the f64
/// widening `49.839210510253906`); reading it back as f32 gives `value` exactly. Non-finite
/// values become `null`, as serde_json does.
pub fn f32_json(value: f32) -> Value {
    serde_json::Number::from_f64(f32_shortest_as_f64(value)).map_or(Value::Null, Value::Number)
}

/// The f64 nearest to `value`'s shortest decimal (zmij's digits, the ones serde_json writes for
/// an f32): [`crate::select::as_written`].
pub fn f32_shortest_as_f64(value: f32) -> f64 {
    crate::select::as_written(value)
}

/// The scoring summary of `table`: totals, parameters, the tier scheme with its cut points,
/// and per tier its count, share of customers, total CRV, share of value and lowest CRV
/// (computing the table's cut points if not yet).
pub fn score_summary(table: &Table) -> Value {
    let summary = table.tier_summary();
    let params = table.params();
    let (scheme, cuts) = match summary.scheme {
        TierScheme::CumulativeValue { a, b } => ("cumulative_value", [a, b]),
        TierScheme::Quantile { a, b } => ("quantile", [a, b]),
    };
    let tiers: serde_json::Map<String, Value> = Tier::ALL
        .iter()
        .map(|&tier| {
            let stats = summary.get(tier);
            (
                tier.as_str().to_string(),
                json!({
                    "count": stats.count,
                    "customer_share": stats.customer_share,
                    "crv_sum": stats.crv_sum,
                    "value_share": stats.value_share,
                    "lowest_crv": stats.lowest_crv.map(f32_json),
                }),
            )
        })
        .collect();
    let totals = table.totals();
    json!({
        "customers": totals.customers,
        "total_crv": totals.crv_sum(),
        "positive_crv": totals.positive_crv,
        "negative_crv": totals.non_positive_crv,
        "discount": params.discount,
        "horizon": horizon_json(params.horizon),
        "scheme": scheme,
        "cuts": cuts,
        "tiers": tiers,
    })
}

/// The selection summary: what was eligible and chosen, its value and real cost (at most the
/// budget, in the cost column's own units), the certificate (upper bound, gap, optimal) and
/// the price of rounding costs to resource units (`real_upper_bound`, `rounding_loss`).
/// Callers add their own timings.
pub fn selection_summary(targets: &Targets) -> Value {
    let selection = &targets.selection;
    let stats = &selection.stats;
    json!({
        "eligible": stats.eligible_rows,
        "selected": selection.rows.len(),
        "total_crv": selection.objective,
        "total_cost": targets.total_cost,
        "budget": targets.budget,
        "budget_left": targets.budget_left,
        "upper_bound": selection.upper_bound,
        "gap": selection.gap,
        "optimal": selection.optimal,
        "real_upper_bound": targets.real_upper_bound,
        "rounding_loss": targets.rounding_loss,
        "core_items": stats.core_items,
        "states": stats.states,
    })
}

/// The summary of a selection made over parts ([`crate::select::parts`]), with the fields of
/// [`selection_summary`] that apply: costs back in the cost column's units (`resource_scale`
/// units each), `budget` as asked.
pub fn parts_summary(selection: &PartsSelection, budget: f64, resource_scale: f64) -> Value {
    let total_cost = selection.cost as f64 / resource_scale;
    json!({
        "customers": selection.rows,
        "eligible": selection.rows,
        "selected": selection.selected,
        "total_crv": selection.objective,
        "total_cost": total_cost,
        "budget": budget,
        "budget_left": budget - total_cost,
        "upper_bound": selection.upper_bound,
        "gap": selection.gap,
        "optimal": selection.optimal,
        "break_ratio": selection.break_ratio.map(|ratio| ratio * resource_scale),
        "core_items": selection.core_items,
        "states": selection.states,
    })
}

/// The header line of a target list.
pub const TARGETS_CSV_HEADER: &str = "customer_id,crv,cost,tier\n";

/// The columns of a target list, for writing its rows.
#[derive(Debug, Clone, Copy)]
pub struct TargetColumns<'a> {
    store: &'a Store,
    crv: &'a [f32],
    costs: &'a [f32],
    tiers: TierColumn<'a>,
}

impl<'a> TargetColumns<'a> {
    /// The ids, CRV, `cost_column` and tiers of `table` (computing its cut points if not
    /// yet); fails when `cost_column` is not a numeric column.
    pub fn new(table: &'a Table, cost_column: &str) -> Result<Self> {
        Ok(TargetColumns {
            store: table.store(),
            crv: table.crv(),
            costs: table.store().numeric(cost_column)?,
            tiers: table.tier_column(),
        })
    }

    /// Writes the line `customer_id,crv,cost,tier` of `row`; numbers in Rust's shortest
    /// round-tripping decimal.
    ///
    /// # Panics
    /// If `row` is not a row of the store.
    pub fn write_row(&self, out: &mut impl io::Write, row: usize) -> io::Result<()> {
        writeln!(
            out,
            "{},{},{},{}",
            CsvField(self.store.customer_id(row)),
            self.crv[row],
            self.costs[row],
            self.tiers.get(row)
        )
    }
}

/// A horizon in JSON as every summary writes it: a number of periods, or the string `"inf"`
/// (the same values a request or a scenario may give).
pub fn horizon_json(horizon: Horizon) -> Value {
    match horizon {
        Horizon::Periods(periods) => Value::from(periods),
        Horizon::Infinite => Value::from("inf"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_json_writes_the_shortest_decimal_that_reads_back_exactly() {
        for value in [49.83921f32, 0.1, -3.4e38, 1e-45, 0.0, 29.545] {
            let json = f32_json(value).to_string();
            assert_eq!(json.parse::<f32>().unwrap(), value, "{json}");
        }
        assert_eq!(f32_json(49.83921).to_string(), "49.83921");
        assert_eq!(f32_json(f32::NAN), Value::Null);
    }
}
