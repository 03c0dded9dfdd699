//! What a planner asks for, and that request bound to a table once: `crv select` and
//! `POST /v1/select` both build a [`SelectionRequest`] and call [`SelectionRequest::bind`], so
//! a request is validated once, by one function, with the same errors from either.

use std::time::Instant;

use super::filter::Filter;
use super::targets::{self, RealCosts, Targets};
use crate::error::Result;
use crate::model::ScoreParams;
use crate::select::{self, SolveLimits};
use crate::table::Table;

/// The cost column a campaign reads when none is named.
pub const DEFAULT_COST_COLUMN: &str = crate::store::schema::COST;

pub use crate::select::DEFAULT_RESOURCE_SCALE;

/// A campaign: the budget and the cost column it is spent on, who may be targeted, and the
/// solver's limits.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    /// Total resource available (TR), in the cost column's units (currency by default); >= 0.
    pub budget: f64,
    /// The numeric column holding each customer's resource use (CR).
    pub cost_column: String,
    /// Integer resource units per cost unit (100: costs in cents). Costs are rounded up and
    /// the budget down to these units, each read as the decimal written
    /// ([`select::scale_costs`]), so the chosen customers' written costs never sum above the
    /// budget; the optimum is exact on the rounded problem, and [`Targets::rounding_loss`]
    /// bounds what the rounding gave up.
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
            cost_column: DEFAULT_COST_COLUMN.to_string(),
            resource_scale: DEFAULT_RESOURCE_SCALE,
            filter: String::new(),
            limits: SolveLimits::default(),
        }
    }
}

/// A selection as asked for: the campaign, and the scoring parameters its values use.
#[derive(Debug, Clone)]
pub struct SelectionRequest {
    /// The campaign.
    pub campaign: CampaignSpec,
    /// Discount and horizon of the CRV the selection maximises (a table scored otherwise is
    /// re-scored for this request: [`BoundSelection::rescores`]).
    pub params: ScoreParams,
}

impl SelectionRequest {
    /// Checks the request against `table`'s customers, in this order: the scoring parameters,
    /// the budget in resource units, the cost column (a numeric column of the store), the
    /// filter's syntax, then its names and values. Touches no row: the checks take
    /// microseconds, so the server runs them before a request is queued.
    pub fn bind(self, table: &Table) -> Result<BoundSelection> {
        let SelectionRequest { campaign, params } = self;
        params.validate()?;
        let capacity = select::scale_capacity(campaign.budget, campaign.resource_scale)?;
        targets::cost_column(table.store(), &campaign.cost_column)?;
        let filter = Filter::parse(&campaign.filter)?;
        filter.check(table.store())?;
        Ok(BoundSelection {
            campaign,
            params,
            capacity,
            filter,
        })
    }
}

/// A [`SelectionRequest`] checked against a table's customers ([`SelectionRequest::bind`]):
/// the budget in resource units and the parsed filter, ready to select on that table, or on
/// the same customers re-scored with the request's parameters ([`Table::rescored`]) when
/// [`BoundSelection::rescores`] says the table's differ.
#[derive(Debug, Clone)]
pub struct BoundSelection {
    campaign: CampaignSpec,
    params: ScoreParams,
    capacity: u64,
    filter: Filter,
}

impl BoundSelection {
    /// The campaign as asked.
    pub fn campaign(&self) -> &CampaignSpec {
        &self.campaign
    }

    /// The scoring parameters of the values selected on.
    pub fn params(&self) -> &ScoreParams {
        &self.params
    }

    /// Whether `table` is scored with other parameters than the request's (select on
    /// `table.rescored(*self.params())` then).
    pub fn rescores(&self, table: &Table) -> bool {
        *table.params() != self.params
    }

    /// The targets among `table`'s customers on its own CRV: the filter's mask (tiers only
    /// when the filter looks at them), the costs in resource units, the exact knapsack.
    pub fn select(&self, table: &Table) -> Result<Targets> {
        let started = Instant::now();
        let costs = targets::cost_column(table.store(), &self.campaign.cost_column)?;
        let units = select::scale_costs(costs, self.campaign.resource_scale)?;
        let eligible = targets::eligibility(table, &self.filter, &self.campaign.limits.cancel)?;
        let prepare_time = started.elapsed();
        let real = RealCosts {
            column: costs,
            multiplier: 1.0,
        };
        Ok(targets::solve(
            table.crv(),
            &units,
            self.capacity,
            eligible.as_deref(),
            &self.campaign,
            real,
            prepare_time,
        ))
    }
}
