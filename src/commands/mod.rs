//! One module per group of subcommands; each prints its human summary and, with `--json`, one
//! JSON object on the last line of stdout.

pub mod score;
pub mod select;
pub mod serve;
pub mod store;

use crv::error::Error;

/// A failed write to stdout (a closed pipe, a full disk) as crv's error.
pub fn stdout_error(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Milliseconds of a duration, for JSON summaries.
pub fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
