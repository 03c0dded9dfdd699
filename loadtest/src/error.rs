//! The load test's one error type: what stops a run before or instead of a report. Errors seen
//! in answers during a run are not errors here; they are counted by kind in the report.

use std::net::SocketAddr;

/// Why the load test cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--addr` names a machine other than this one.
    #[error(transparent)]
    NotLoopback(#[from] crate::loopback::NotLoopback),
    /// The store whose ids the lookups use could not be opened or read (crv's error names
    /// the file).
    #[error("cannot read the store: {0}")]
    Store(#[source] crv::Error),
    /// A flag's value is out of its range, or flags contradict each other.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached before the run started.
    #[error("cannot connect to {addr} (is the server running?): {reason}")]
    Connect {
        /// The target address.
        addr: SocketAddr,
        /// The socket or handshake error.
        reason: String,
    },
    /// A socket or runtime operation failed outside any request.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The load test's result type.
pub type Result<T> = std::result::Result<T, Error>;
