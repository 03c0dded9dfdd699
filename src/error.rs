//! The crate's one error type: each variant carries what a reader needs to act on it.

use std::path::PathBuf;

/// Everything that can go wrong in crv, with the file, line, column or field that caused it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A CSV input that cannot be imported: names the file, line and column.
    #[error("{file}: line {line}, column `{column}`: {message}")]
    Csv {
        /// The CSV file (or `<input>` for in-memory input).
        file: String,
        /// 1-based line number in the file (the header is line 1).
        line: u64,
        /// The column's name from the header (or its position when the header is at fault).
        column: String,
        /// What is wrong, quoting the offending text.
        message: String,
    },

    /// A CSV input that is wrong as a whole (empty, no header, missing required column).
    #[error("{file}: {message}")]
    CsvFile {
        /// The CSV file.
        file: String,
        /// What is wrong.
        message: String,
    },

    /// A store file that fails validation: the bytes cannot be trusted.
    #[error("corrupt store: {0}")]
    CorruptStore(String),

    /// A column that a command needs is not in the store, or has the wrong type.
    #[error("column `{name}`: {message}")]
    Column {
        /// The column's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },

    /// A parameter outside its domain (negative discount, zero horizon, non-increasing cuts...).
    #[error("invalid {name}: {message}")]
    InvalidParameter {
        /// The parameter's name as the user wrote it (flag or JSON field).
        name: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// A scenarios file or request that cannot be read as a whole (not JSON, no scenarios).
    #[error("{file}: {message}")]
    Scenarios {
        /// The scenarios file, or `request body` for the API.
        file: String,
        /// What is wrong.
        message: String,
    },

    /// One scenario that cannot be run: names the file, the scenario and the field.
    #[error("{file}: scenario `{scenario}`, field `{field}`: {message}")]
    Scenario {
        /// The scenarios file, or `request body` for the API.
        file: String,
        /// The scenario's name, or `#k` (1-based) for an unnamed one in `scenarios`, or `sweep`.
        scenario: String,
        /// The field as written in the JSON.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// Work stopped before its end: its client went away or its time limit passed.
    #[error("stopped during {during}: {cause}")]
    Stopped {
        /// Why it stopped.
        cause: crate::cancel::StopCause,
        /// What was being computed, e.g. `filter evaluation`.
        during: String,
    },
}

/// `Result` with crv's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A parameter error for `name`.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            message: message.into(),
        }
    }
}
