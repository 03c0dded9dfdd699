//! One module per group of subcommands; each prints its human summary and, with `--json`, one
//! JSON object on the last line of stdout.

pub mod compact;
pub mod fit;
pub mod optimise;

pub mod rfm;
pub mod score;
pub mod select;
pub mod serve;
pub mod simulate;
pub mod store;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crv::atomic_file::check_output;
use crv::btyd::value::{DEFAULT_MARGIN_RATE, ValueModel};
use crv::error::{Error, Result};
use crv::table::Valuation;
use crv::{Store, Table};

/// The table a planning command works on: the scoring parameters validated (a warning for a
/// discount that looks like a percentage), the output checked against the store and `inputs`
/// (nothing is replaced by mistake), then the store opened and scored. Also the time the store
/// took to open.
pub fn planning_table(
    input: &crate::cli::ScoredStoreArgs,
    report: &crate::cli::PlanOutputArgs,
    inputs: &[&Path],
) -> Result<(Table, Duration)> {
    let params = input.score.params();
    let scheme = input.score.scheme();
    params.validate()?;
    scheme.validate()?;
    warn_about_discount(params.discount);
    if let Some(path) = &report.output {
        let mut read = vec![input.store.as_path()];
        read.extend_from_slice(inputs);
        check_output(path, &read, report.force)?;
    }
    let started = Instant::now();
    let store = open_store(&input.store, input.verify)?;
    let open_time = started.elapsed();
    let table = Table::valued(
        Arc::new(store),
        params,
        scheme,
        valuation(&input.score.valuation)?,
    )?;
    Ok((table, open_time))
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

/// The valuation the scoring flags ask for: a fitted model's (`--model`, read and checked
/// now), or margins and retention.
pub fn valuation(args: &crate::cli::ModelArgs) -> Result<Valuation> {
    match &args.model {
        Some(path) => {
            let margin_rate = args.margin_rate.unwrap_or(DEFAULT_MARGIN_RATE);
            Ok(Valuation::Purchases(Arc::new(ValueModel::read(
                path,
                margin_rate,
            )?)))
        }
        None => Ok(Valuation::Retention),
    }
}

/// One line saying how a table was valued, for the summaries: the model, its spend rule and
/// margin rate; `None` for margins and retention.
pub fn valuation_line(valuation: &Valuation) -> Option<String> {
    match valuation {
        Valuation::Retention => None,
        Valuation::Purchases(model) => Some(format!(
            "valued from purchase histories: {} purchases, spend from {}, margin rate {}",
            model.purchase_model_name(),
            model.spend_name(),
            model.margin_rate
        )),
    }
}

/// Opens the store at `path`, with advice for the usual mistakes: a directory, or a CSV given
/// where a store is expected (which the store's own check would only call "bad magic"). With
/// `verify` (the `--verify` flag), runs [`Store::verify`] before the store is used.
pub fn open_store(path: &Path, verify: bool) -> Result<Store> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::other("is a directory, not a store file"),
        ));
    }
    let store = Store::open(path).map_err(|error| match error {
        Error::CorruptStore(_) if looks_like_csv(path) => {
            let store = match path.with_extension("crv") {
                store if store != path => store,
                _ => path.with_file_name("store.crv"),
            };
            Error::CsvFile {
                file: path.display().to_string(),
                message: format!(
                    "this is a CSV file, not a crv store; import it first: crv import {} -o {}",
                    path.display(),
                    store.display()
                ),
            }
        }
        other => other,
    })?;
    if verify {
        store.verify()?;
    }
    Ok(store)
}

/// Whether the file's first bytes are printable UTF-8 text with a comma in the first line
/// (a CSV export's header), read from a short prefix only.
fn looks_like_csv(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(read) = std::fs::File::open(path).and_then(|mut file| file.read(&mut head)) else {
        return false;
    };
    let head = &head[..read];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    // A multi-byte character cut at the end of the prefix is still text.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).expect("valid up to there")
        }
        Err(_) => return false,
    };
    let header = text.lines().next().unwrap_or_default();
    header.contains(',') && text.chars().all(|c| !c.is_control() || c.is_whitespace())
}

/// `count noun`, with the noun in the plural unless the count is one: "1 customer".
pub fn count(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A money-like amount for a human summary: two decimals up to 10^15, scientific beyond,
/// so a budget of 1e300 is `1.000e300`, not 301 digits.
pub fn amount(value: f64) -> String {
    if value.abs() < 1e15 {
        format!("{value:.2}")
    } else {
        format!("{value:.3e}")
    }
}

/// A warning on stderr when a discount rate looks like a percentage: `--discount 100` is
/// 10,000% per period, not 100%.
pub fn warn_about_discount(discount: f64) {
    if discount > 1.0 {
        eprintln!(
            "warning: --discount {discount} is {}% per period; rates are fractions \
             (0.10 means 10%)",
            thousands(discount * 100.0)
        );
    }
}

/// A number with thousands separators and at most two decimals: `10,000`, `12,345.5`.
fn thousands(value: f64) -> String {
    if value.abs() >= 1e15 {
        return format!("{value:.3e}");
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits: Vec<char> = whole.chars().collect();
    let mut grouped = String::new();
    for (i, digit) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) && digit.is_ascii_digit() {
            grouped.push(',');
        }
        grouped.push(*digit);
    }
    if fraction.is_empty() {
        grouped
    } else {
        format!("{grouped}.{fraction}")
    }
}

/// Where a command's human summary goes: stdout, unless its output file is stdout (`-o -`),
/// then stderr so the data stays clean.
pub fn summary_writer(output: Option<&Path>) -> Box<dyn Write> {
    if output.is_some_and(crv::atomic_file::is_stdout) {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_say_one_customer_and_keep_huge_amounts_short() {
        assert_eq!(count(1u64, "customer"), "1 customer");
        assert_eq!(count(0u64, "customer"), "0 customers");
        assert_eq!(amount(1234.5), "1234.50");
        assert_eq!(amount(1e300), "1.000e300");
        assert_eq!(thousands(10_000.0), "10,000");
        assert_eq!(thousands(1234567.25), "1,234,567.25");
        assert_eq!(thousands(150.0), "150");
    }
}
