//! The decision stage: what turns a planner's request into a decision over a [`Table`].
//!
//! - [`spec`]: the campaign ([`CampaignSpec`], the defaults), a selection request bound to a
//!   table once ([`SelectionRequest::bind`]: scoring parameters, budget in resource units, cost
//!   column, filter bound to the columns), and the selection it makes ([`BoundSelection::select`]);
//! - [`filter`]: `--where` expressions, parsed, bound and evaluated to an eligibility mask;
//! - [`targets`]: the exact knapsack with the campaign's accounts in the cost column's units;
//! - [`definition`], [`expression`], [`contacts`], [`optimise`]: a campaign of several
//!   resources and offers (`campaign.json`), its value and use expressions, the contact rules
//!   over a contact history, and the plan ([`crate::select::lagrange`]) with its explanations;
//! - [`stored`]: a plan kept with the table version it was solved on (the server's plans);
//! - [`realised`]: the campaign report, a plan's predicted value per offer against the
//!   contacts and responses recorded for its campaign;
//! - [`simulate`]: batches of what-if scenarios and the value-versus-budget frontier;
//! - [`report`]: the JSON summaries and target rows the command line and the server share.
//!
//! The solvers themselves are [`crate::select`], a leaf that knows nothing of tables.
//!
//! [`Table`]: crate::table::Table

pub mod contacts;
pub mod definition;
pub mod expression;
pub mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod optimise;
pub mod parts;
pub mod realised;
pub mod report;
pub mod simulate;
pub mod spec;
pub mod stored;
pub mod targets;

pub use spec::{
    BoundSelection, CampaignSpec, DEFAULT_COST_COLUMN, DEFAULT_RESOURCE_SCALE, SelectionRequest,
};
pub use targets::{RealCosts, Targets, cost_column, real_bound};
