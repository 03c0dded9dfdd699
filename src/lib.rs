//! crv scores customers by their relationship value and picks whom a campaign should serve.
//!
//! The pipeline runs one way: a CSV export is imported ([`store::import`](mod@store::import)) into
//! one immutable store file; [`store::Store`] memory-maps it and hands out validated columns; a
//! [`Table`] is one version of those customers with their derived columns (CRV from the SIMD +
//! rayon [`kernel`], tiers computed when first needed); [`campaign`] turns a planner's request into
//! a decision over a table: the request bound once (budget, cost column, `--where` filter), the
//! exact knapsack of [`select`] with its certificate, batches of what-if scenarios and the
//! value-versus-budget frontier, and the reports the command line and the server share; [`api`]
//! serves a table over HTTP and publishes new versions atomically.

#![deny(unsafe_code)]

pub mod allocator;
pub mod api;
pub mod arrow_scores;
pub mod atomic_file;
pub mod btyd;
pub mod campaign;
pub mod cancel;
pub mod capped_records;
pub mod error;
pub mod kernel;
pub mod limits;
pub mod live;
pub mod model;
pub mod rfm;
pub mod score_file;
pub mod select;
pub mod store;
pub mod svg;
pub mod synthetic;
pub mod table;

pub use error::{Error, Result};
pub use model::{CustomerId, ExternalId, Horizon, ScoreParams, Tier};
pub use store::Store;
pub use table::Table;
