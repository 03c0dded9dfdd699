//! crv scores customers by their relationship value and picks whom a campaign should serve.
//!
//! The pipeline runs one way: a CSV export is imported ([`store::import`]) into one immutable
//! store file; [`store::Store`] memory-maps it and hands out validated columns; [`kernel`]
//! computes every customer's CRV and value tier with SIMD lanes over rayon chunks; [`filter`]
//! turns a `--where` expression into an eligibility mask; [`select`] solves the budget knapsack
//! exactly, with a certificate of optimality; [`campaign`] strings those together for a planner;
//! [`simulate`] runs batches of what-if scenarios (a fused multi-scenario kernel pass, then one
//! exact selection per scenario) and traces the value-versus-budget frontier;
//! [`api`] serves the scores and selections over HTTP, and [`report`] shapes the JSON summaries
//! that the command line and the server share.

#![deny(unsafe_code)]

pub mod api;
pub mod atomic_file;
pub mod campaign;
pub mod cancel;
pub mod error;
pub mod filter;
pub mod kernel;
pub mod limits;
pub mod model;
pub mod report;
pub mod select;
pub mod simulate;
pub mod store;
pub mod synthetic;

pub use error::{Error, Result};
pub use model::{CustomerId, Horizon, ScoreParams, Tier};
pub use store::Store;
