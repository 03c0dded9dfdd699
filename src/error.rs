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
    #[error("{file}: line {line}, column {}: {message}", quote(.column))]
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

    /// A Parquet or Arrow IPC input that cannot be imported: names the file and, as far as
    /// they are known, the row group (a record batch of an IPC file), the row and the column.
    #[error("{file}: {}{message}", columnar_place(*.row_group, *.row, .column.as_deref()))]
    Columnar {
        /// The input file.
        file: String,
        /// 0-based row group (Parquet) or record batch (IPC) index.
        row_group: Option<usize>,
        /// 1-based row within the file.
        row: Option<u64>,
        /// The column's name.
        column: Option<String>,
        /// What is wrong, quoting the offending value.
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

    /// A model file (`model.json`) that cannot be used: names the file and the field (empty
    /// when the file as a whole is at fault, e.g. not JSON).
    #[error("{file}: {}{message}", field_prefix(.field))]
    ModelFile {
        /// The model file.
        file: String,
        /// The field, as a JSON path (`params.alpha`, `spend.params.q`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },

    /// A campaign definition (`campaign.json`, or an optimise request's body) that cannot be
    /// used: names the source and the field as a JSON path (`offers[1].uses.calls`; empty when
    /// the definition as a whole is at fault).
    #[error("{file}: {}{message}", field_prefix(.field))]
    Campaign {
        /// The definition's file, or `request body`.
        file: String,
        /// The field, as a JSON path.
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

/// "row group 2, row 70001, column `margin`: " before a columnar input's message, as far as
/// known.
fn columnar_place(row_group: Option<usize>, row: Option<u64>, column: Option<&str>) -> String {
    let mut place = Vec::new();
    if let Some(row_group) = row_group {
        place.push(format!("row group {row_group}"));
    }
    if let Some(row) = row {
        place.push(format!("row {row}"));
    }
    if let Some(column) = column {
        place.push(format!("column {}", quote(column)));
    }
    if place.is_empty() {
        String::new()
    } else {
        format!("{}: ", place.join(", "))
    }
}

/// "field `params.r`: " before a model file's message, nothing when the whole file is at fault.
fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
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

/// The most characters of a user's text (a CSV cell, a filter value, a column name) that a
/// message echoes; the rest is summarised by its length.
pub const QUOTE_CHARS: usize = 60;

/// A user's text as every message echoes it: in backticks, control characters escaped (so a
/// cell cannot drive the terminal), and cut after [`QUOTE_CHARS`] characters with the total
/// length, so a 10 MB cell gives a one-line message: `` `12345678…(10000000 bytes)` ``.
pub fn quote(text: &str) -> String {
    quote_prefix(text, false, text.len())
}

/// A user's number as a message echoes it: plain decimals up to 10^15 in magnitude, the
/// exponent form beyond (and for tiny fractions), so that `1e300` shows as `1e300` and not as
/// its 301 digits.
pub fn number<T>(value: T) -> String
where
    T: Copy + Into<f64> + std::fmt::Display + std::fmt::LowerExp,
{
    let magnitude = value.into().abs();
    if magnitude > 1e15 || (magnitude != 0.0 && magnitude < 1e-6) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// [`quote`] for raw bytes (a CSV field that may not be UTF-8): invalid bytes show as U+FFFD.
pub fn quote_bytes(bytes: &[u8]) -> String {
    // Enough bytes for QUOTE_CHARS characters of any width; the rest is only counted.
    let prefix = &bytes[..bytes.len().min(4 * QUOTE_CHARS)];
    quote_prefix(
        &String::from_utf8_lossy(prefix),
        prefix.len() < bytes.len(),
        bytes.len(),
    )
}

/// Quotes `text`, the whole text or (`truncated`) a prefix of one `total_bytes` long.
fn quote_prefix(text: &str, truncated: bool, total_bytes: usize) -> String {
    let mut quoted = String::with_capacity(text.len().min(4 * QUOTE_CHARS) + 24);
    quoted.push('`');
    let mut chars = text.chars();
    for c in chars.by_ref().take(QUOTE_CHARS) {
        if c.is_control() {
            quoted.extend(c.escape_debug());
        } else {
            quoted.push(c);
        }
    }
    if truncated || chars.next().is_some() {
        quoted.push_str(&format!("…({total_bytes} bytes)"));
    }
    quoted.push('`');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_control_characters_and_truncates_long_text() {
        assert_eq!(quote("gold"), "`gold`");
        assert_eq!(quote("a\x1b[31mred\n"), "`a\\u{1b}[31mred\\n`");
        let long = "9".repeat(10_000_000);
        let quoted = quote(&long);
        assert!(quoted.len() < 100, "{quoted}");
        assert!(quoted.ends_with("…(10000000 bytes)`"), "{quoted}");
        assert_eq!(
            quote(&"x".repeat(QUOTE_CHARS)),
            format!("`{}`", "x".repeat(QUOTE_CHARS))
        );
    }

    #[test]
    fn numbers_past_the_plain_range_show_in_exponent_form() {
        assert_eq!(number(42.5), "42.5");
        assert_eq!(number(-1e15), "-1000000000000000");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(-1e-300), "-1e-300");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(number(f32::MAX), "3.4028235e38");
        assert_eq!(number(0.1f32), "0.1");
    }

    #[test]
    fn quote_bytes_counts_every_byte_of_a_long_field() {
        let long = vec![b'7'; 5_000];
        let quoted = quote_bytes(&long);
        assert!(quoted.ends_with("…(5000 bytes)`"), "{quoted}");
        assert_eq!(quote_bytes(b"\xff\x1b"), "`\u{fffd}\\u{1b}`");
    }
}
