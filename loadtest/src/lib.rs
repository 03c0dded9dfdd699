//! crv's load test: a closed-loop HTTP/1.1 load generator for `crv serve` and a bare-hyper
//! baseline to measure it against. Load only ever goes to a loopback address, and every run
//! stops by itself after a bounded duration or request count.
//!
//! [`workload`] reads the served store's ids and picks them ([`zipf`] for skewed popularity),
//! [`scenario`] turns picks into requests and checks each answer, [`run`] drives the
//! connections and [`report`] turns the latency histograms into the printed figures.

pub mod client;
pub mod error;
pub mod loopback;
pub mod report;
pub mod run;
pub mod scenario;
pub mod workload;
pub mod zipf;

pub use error::{Error, Result};
