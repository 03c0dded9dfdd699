//! One module per group of subcommands; each prints its human summary and, with `--json`, one
//! JSON object on the last line of stdout.

pub mod score;
pub mod select;
pub mod serve;
pub mod simulate;
pub mod store;

use std::time::Duration;

use crv::Store;
use crv::error::{Error, Result};
use crv::limits::MAX_TIME_LIMIT_SECS;
use crv::select::SolveLimits;

/// Opens the store at `path`; with `verify` (the `--verify` flag), runs [`Store::verify`]
/// before the store is used.
pub fn open_store(path: &std::path::Path, verify: bool) -> Result<Store> {
    let store = Store::open(path)?;
    if verify {
        store.verify()?;
    }
    Ok(store)
}

/// A failed write to stdout (a closed pipe, a full disk) as crv's error.
pub fn stdout_error(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Milliseconds of a duration to the microsecond, for JSON summaries and logs: `460.454`,
/// not `460.45388399999996`.
pub fn millis(duration: std::time::Duration) -> f64 {
    duration.as_micros() as f64 / 1e3
}

/// The solver limits of a `--time-limit` flag in seconds (0 to [`MAX_TIME_LIMIT_SECS`]).
pub fn solve_limits(time_limit: f64) -> Result<SolveLimits> {
    // Written so that NaN fails too.
    if !(0.0..=MAX_TIME_LIMIT_SECS).contains(&time_limit) {
        return Err(Error::invalid(
            "time-limit",
            format!(
                "{time_limit} is not a number of seconds from 0 to {MAX_TIME_LIMIT_SECS} (one day)"
            ),
        ));
    }
    Ok(SolveLimits {
        time_limit: Some(Duration::from_secs_f64(time_limit)),
        ..SolveLimits::default()
    })
}
