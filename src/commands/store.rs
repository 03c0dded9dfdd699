//! Store commands: `crv gen`, `crv import`, `crv info`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crv::atomic_file::check_output;
use crv::error::{Error, Result};
use crv::limits::MAX_GEN_CUSTOMERS;
use crv::store::{self, Column};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{count, open_store, stdout_error};
use crate::cli::{GenArgs, ImportArgs, InfoArgs};
use crv::score_file::ScoreFormat;

/// A progress bar on stderr when it is a terminal (hidden otherwise, so logs stay clean).
pub fn progress_bar(total: u64, template: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template).expect("the template is a valid indicatif template"),
    );
    bar
}

/// A writer that counts the lines passing through it into a progress bar.
struct LineProgress<'a, W: Write> {
    inner: W,
    lines: u64,
    shown: u64,
    bar: &'a ProgressBar,
}

impl<W: Write> Write for LineProgress<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.lines += buf[..written].iter().filter(|&&b| b == b'\n').count() as u64;
        if self.lines - self.shown >= 1 << 16 {
            self.shown = self.lines;
            self.bar.set_position(self.lines);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `crv gen`, with a progress bar (customers written) on a terminal.
pub fn gen_customers(args: &GenArgs) -> Result<()> {
    if args.customers > MAX_GEN_CUSTOMERS {
        return Err(Error::invalid(
            "customers",
            format!("{}: at most {MAX_GEN_CUSTOMERS}", args.customers),
        ));
    }
    let format = ScoreFormat::of(&args.output);
    if format == ScoreFormat::ArrowIpc {
        return Err(Error::invalid(
            "output",
            format!(
                "{}: crv gen writes CSV or Parquet (.parquet), not Arrow IPC",
                args.output.display()
            ),
        ));
    }
    let started = Instant::now();
    check_output(&args.output, &[], args.force)?;
    let bar = progress_bar(
        args.customers,
        "{bar:40} {pos}/{len} customers {per_sec} {eta}",
    );
    let bytes = crv::atomic_file::write_atomically(&args.output, |out| {
        match format {
            ScoreFormat::Parquet => crv::synthetic::write_customers_parquet(
                &mut *out,
                args.customers,
                args.seed,
                args.row_group_rows,
            ),
            ScoreFormat::Csv | ScoreFormat::ArrowIpc => {
                let mut counted = LineProgress {
                    inner: &mut *out,
                    lines: 0,
                    shown: 0,
                    bar: &bar,
                };
                crv::synthetic::write_customers_csv(&mut counted, args.customers, args.seed)
            }
        }
        .map_err(|e| Error::io(&args.output, e))
    });
    bar.finish_and_clear();
    let bytes = bytes?;
    eprintln!(
        "wrote {} ({:.1} MB) to {} in {:.2?}",
        count(args.customers, "customer"),
        bytes as f64 / 1e6,
        args.output.display(),
        started.elapsed()
    );
    Ok(())
}

/// Runs `crv import`, with a progress bar (bytes read) on a terminal.
pub fn import(args: &ImportArgs) -> Result<()> {
    let started = Instant::now();
    let total = store::import::input_files(&args.input)?
        .iter()
        .map(|(path, _)| std::fs::metadata(path).map_or(0, |meta| meta.len()))
        .sum();
    let bar = progress_bar(
        total,
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
    );
    let options = store::ImportOptions {
        columns: args.columns.clone(),
    };
    let summary = store::import_with(&args.input, &args.output, &options, &mut |bytes| {
        bar.set_position(bytes)
    });
    bar.finish_and_clear();
    let summary = summary?;
    let elapsed = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "imported {}{}, {}: {}{} -> {} ({:.1} MB -> {:.1} MB) in {:.2?} ({:.0} MB/s)",
        count(summary.rows, "customer"),
        if summary.text_ids { " (text ids)" } else { "" },
        count(summary.columns as u64, "column"),
        args.input.display(),
        if summary.files > 1 {
            format!(" ({})", count(summary.files as u64, "file"))
        } else {
            String::new()
        },
        args.output.display(),
        summary.input_bytes as f64 / 1e6,
        summary.store_bytes as f64 / 1e6,
        elapsed,
        summary.input_bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
    )
    .map_err(stdout_error)?;
    if args.json {
        let line = json!({
            "rows": summary.rows,
            "columns": summary.columns,
            "input_bytes": summary.input_bytes,
            "files": summary.files,
            "text_ids": summary.text_ids,
            "store_bytes": summary.store_bytes,
            "time_ms": elapsed.as_secs_f64() * 1e3,
        });
        writeln!(stdout, "{line}").map_err(stdout_error)?;
    }
    Ok(())
}

/// Runs `crv info`.
pub fn info(args: &InfoArgs) -> Result<()> {
    let started = Instant::now();
    let store = open_store(&args.store, false)?;
    let opened = started.elapsed();
    let mut stdout = std::io::stdout().lock();
    let mut out = |line: String| writeln!(stdout, "{line}").map_err(stdout_error);
    out(format!("store     {}", args.store.display()))?;
    out(format!("format    version {}", store.format_version()))?;
    out(format!("rows      {}", store.rows()))?;
    out(format!(
        "size      {} bytes ({:.1} MB), opened in {opened:.2?}",
        store.file_bytes(),
        store.file_bytes() as f64 / 1e6
    ))?;
    out(format!(
        "{:<24} {:<5} {:>14} {:>10} {:<16}",
        "column", "type", "bytes", "distinct", "checksum"
    ))?;
    let mut columns = Vec::new();
    for meta in store.columns() {
        let distinct = match store.column(&meta.name) {
            Some(Column::Text(text)) => Some(text.dictionary.len()),
            _ => None,
        };
        // Text customer ids: stored as their positions among the sorted ids.
        let kind = match store.text_ids() {
            Some(_) if std::ptr::eq(meta, &store.columns()[0]) => "text",
            _ => meta.kind.as_str(),
        };
        out(format!(
            "{:<24} {:<5} {:>14} {:>10} {:016x}",
            meta.name,
            kind,
            meta.data.len,
            distinct.map_or_else(|| "-".to_string(), |n| n.to_string()),
            meta.data.checksum
        ))?;
        columns.push(json!({
            "name": meta.name,
            "type": kind,
            "bytes": meta.data.len,
            "distinct": distinct,
            "checksum": format!("{:016x}", meta.data.checksum),
        }));
    }
    let index = store.id_index_section();
    out(format!(
        "{:<24} {:<5} {:>14} {:>10} {:016x}",
        "(id index)", "u32", index.len, "-", index.checksum
    ))?;
    let verified = if args.verify {
        let started = Instant::now();
        let report = store.verify()?;
        out(format!(
            "verified  {} sections, {:.1} MB checksummed, value domains ok, ids unique ({:.2?})",
            report.sections,
            report.bytes_checked as f64 / 1e6,
            started.elapsed()
        ))?;
        Some(true)
    } else {
        None
    };
    if args.json {
        out(json!({
            "path": args.store.display().to_string(),
            "format_version": store.format_version(),
            "rows": store.rows(),
            "file_bytes": store.file_bytes(),
            "columns": columns,
            "id_index_bytes": index.len,
            "verified": verified,
            "open_ms": opened.as_secs_f64() * 1e3,
        })
        .to_string())?;
    }
    Ok(())
}
