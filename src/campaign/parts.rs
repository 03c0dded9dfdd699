//! One part of a campaign's customers (a Spark partition) as the items of the distributed
//! knapsack ([`crate::select::parts`]): ids, values (the CRV, or another numeric column) and
//! costs in resource units, each computed exactly as `crv select` computes it for the same
//! customer, so the parts together pose the single machine's problem.

use std::sync::Arc;

use super::targets;
use crate::error::Result;
use crate::kernel::TierScheme;
use crate::model::ScoreParams;
use crate::select;
use crate::store::Store;
use crate::table::Table;

/// The value column that means "the customer's CRV".
pub const CRV_VALUE: &str = "crv";

/// One part's items: row `i` is customer `ids[i]` with `values[i]` at `costs[i]` units.
#[derive(Debug, Clone, PartialEq)]
pub struct PartItems {
    /// Customer ids.
    pub ids: Vec<u64>,
    /// Values: the CRV under `params`, or the `value` column.
    pub values: Vec<f32>,
    /// Costs: the cost column scaled to resource units ([`select::scale_costs`]).
    pub costs: Vec<u64>,
}

/// The items of `store`'s customers: values from `value` ([`CRV_VALUE`]: the CRV under
/// `params`), costs from the `cost_column` at `resource_scale` units per cost unit.
pub fn part_items(
    store: Arc<Store>,
    params: ScoreParams,
    value: &str,
    cost_column: &str,
    resource_scale: f64,
) -> Result<PartItems> {
    let costs = select::scale_costs(targets::cost_column(&store, cost_column)?, resource_scale)?
        .into_wide();
    let ids = store.ids().to_vec();
    let values = if value == CRV_VALUE {
        Table::score(store, params, TierScheme::default())?
            .crv()
            .to_vec()
    } else {
        store.numeric(value)?.to_vec()
    };
    Ok(PartItems { ids, values, costs })
}
