//! `crv rfm` (a purchase log to one RFM row per customer) and `crv gen --purchases`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crv::atomic_file::{check_output, is_stdout, write_atomically};
use crv::error::{Error, Result};
use crv::limits::{MAX_GEN_CUSTOMERS, MAX_GEN_PURCHASES};
use crv::rfm::{ColumnNames, Options, summarize};
use serde_json::json;

use super::{count, stdout_error, summary_writer};
use crate::cli::{GenArgs, RfmCommand};

/// Runs `crv rfm`: summarises the log, writes the rows atomically, prints the summary.
pub fn rfm(args: &RfmCommand) -> Result<()> {
    let started = Instant::now();
    check_output(&args.output, &[&args.log], args.force)?;
    let options = Options {
        columns: ColumnNames {
            customer: args.customer_col.clone(),
            date: args.date_col.clone(),
            amount: args.amount_col.clone(),
        },
        period: args.period,
        time_unit: args.time_unit,
        observation_end: args.observation_end,
        calibration_end: args.calibration_end,
        drop_after_end: args.drop_after_end,
        memory_budget: args.memory_mb.saturating_mul(1 << 20),
        temp_dir: args.temp_dir.clone(),
    };
    let name = args.log.display().to_string();
    let summary = if is_stdout(&args.log) {
        summarize(std::io::stdin(), "<stdin>", None, &options)?
    } else {
        let file = std::fs::File::open(&args.log).map_err(|e| Error::io(&args.log, e))?;
        let size = file.metadata().map_err(|e| Error::io(&args.log, e))?.len();
        summarize(file, &name, Some(size), &options)?
    };
    write_atomically(&args.output, |out| {
        summary
            .write_csv(out)
            .map_err(|e| Error::io(&args.output, e))
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    if summary.dropped > 0 {
        eprintln!(
            "dropped {} after the observation end",
            count(summary.dropped, "purchase")
        );
    }
    if summary.excluded > 0 {
        eprintln!(
            "left out {} whose first purchase is after the calibration end",
            count(summary.excluded, "customer")
        );
    }
    let mut out = summary_writer(Some(&args.output));
    writeln!(
        out,
        "summarised {} from {} ({:.1} MB) into {} in {elapsed:.2} s ({:.0} MB/s){}",
        count(summary.lines, "line"),
        name,
        summary.bytes as f64 / 1e6,
        count(summary.rows.len() as u64, "customer"),
        summary.bytes as f64 / 1e6 / elapsed.max(1e-9),
        if summary.spilled {
            ", partitions spilled to temporary files"
        } else {
            ""
        }
    )
    .map_err(stdout_error)?;
    if args.json {
        let line = json!({
            "customers": summary.rows.len(),
            "lines": summary.lines,
            "dropped": summary.dropped,
            "excluded": summary.excluded,
            "bytes": summary.bytes,
            "spilled": summary.spilled,
            "seconds": elapsed,
        });
        writeln!(out, "{line}").map_err(stdout_error)?;
    }
    Ok(())
}

/// Runs `crv gen --purchases N --customers C`: a synthetic purchase log.
pub fn gen_purchases(args: &GenArgs) -> Result<()> {
    let purchases = args.purchases.expect("dispatched only with --purchases");
    if purchases > MAX_GEN_PURCHASES {
        return Err(Error::invalid(
            "purchases",
            format!("{purchases}: at most {MAX_GEN_PURCHASES}"),
        ));
    }
    if args.customers == 0 || args.customers > MAX_GEN_CUSTOMERS {
        return Err(Error::invalid(
            "customers",
            format!(
                "{}: a purchase log needs 1 to {MAX_GEN_CUSTOMERS} customers",
                args.customers
            ),
        ));
    }
    let started = Instant::now();
    check_output(&args.output, &[], args.force)?;
    let bytes = write_atomically(&args.output, |out| {
        crv::synthetic::purchases::write_purchases_csv(out, purchases, args.customers, args.seed)
            .map_err(|e| Error::io(&args.output, e))
    })?;
    eprintln!(
        "wrote {} among {} ({:.1} MB) to {} in {:.2?}",
        count(purchases, "purchase"),
        count(args.customers, "customer"),
        bytes as f64 / 1e6,
        Path::new(&args.output).display(),
        started.elapsed()
    );
    Ok(())
}
