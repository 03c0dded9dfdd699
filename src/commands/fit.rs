//! `crv fit`: a purchase model (and a spend model) fitted to a store's purchase histories by
//! maximum likelihood, written to model.json.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crv::Store;
use crv::atomic_file::check_output;
use crv::atomic_file::write_atomically;
use crv::btyd::bgnbd::BgNbd;
use crv::btyd::diagnostics::{
    Holdout, HoldoutBucket, MAX_MATRIX_CELLS, PAliveMatrix, holdout_buckets, holdout_columns,
    holdout_svg, holdouts, p_alive_matrix, p_alive_svg,
};
use crv::btyd::fit::read_histories;
use crv::btyd::gamma_gamma::GammaGamma;
use crv::btyd::model_file::{FitDetails, PurchaseKind};
use crv::btyd::model_fit::{FitRequest, fit_model_file};
use crv::btyd::pnbd::ParetoNbd;
use crv::btyd::{History, PurchaseModel};
use crv::error::{Error, Result};
use crv::store::schema::{DURATION_HOLDOUT, FREQUENCY_HOLDOUT};

use super::{count, open_store, stdout_error, summary_writer};
use crate::cli::{FitCommand, PurchaseModelArg, SpendModelArg};

/// A fit reports its progress on stderr once it has run this long, then as often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs `crv fit`.
pub fn fit(args: &FitCommand) -> Result<()> {
    let started = Instant::now();
    check_output(&args.output, &[&args.store], args.force)?;
    let store = open_store(&args.store, false)?;
    let histories = read_histories(&store)?;
    let kind = match args.model {
        PurchaseModelArg::Bgnbd => PurchaseKind::BgNbd,
        PurchaseModelArg::Pnbd => PurchaseKind::ParetoNbd,
    };
    let holdouts = if args.holdout {
        Some(read_holdouts(&store, &histories)?)
    } else {
        None
    };
    let last_report = Mutex::new(started);
    let report = |what: &'static str, evaluations: u64, ll: f64| {
        let mut last = last_report.lock().expect("no report panics");
        if last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            eprintln!(
                "fit {what}: {evaluations} evaluations, log-likelihood {ll:.6}, {:.1?}",
                started.elapsed()
            );
        }
    };
    let request = FitRequest {
        kind,
        spend: matches!(args.spend, Some(SpendModelArg::GammaGamma)),
        time_unit: args.time_unit.map(|unit| unit.to_string()),
    };
    let fitted = fit_model_file(&store, &histories, &request, Some(&report))?;
    drop(histories);
    let model = fitted.file;
    let params = model.params;
    model.write(&args.output)?;
    let elapsed = started.elapsed();

    let mut out = summary_writer(Some(&args.output));
    let mut line = |text: String| writeln!(out, "{text}").map_err(stdout_error);
    print_fit(
        &mut line,
        kind.name(),
        "customer",
        fitted.purchase_time,
        &kind.param_names(),
        &model.params,
        &model.details,
    )?;
    if let (Some(section), Some(spend_time)) = (&model.spend, fitted.spend_time) {
        print_fit(
            &mut line,
            GammaGamma::NAME,
            "repeat buyer",
            spend_time,
            &GammaGamma::PARAM_NAMES,
            &section.model.params(),
            &section.details,
        )?;
    }
    line(format!("wrote {} in {elapsed:.2?}", args.output.display()))?;
    if let Some(holdouts) = &holdouts {
        let charts = match kind {
            PurchaseKind::BgNbd => HoldoutCharts::new(&BgNbd::from_params(params), holdouts),
            PurchaseKind::ParetoNbd => {
                HoldoutCharts::new(&ParetoNbd::from_params(params), holdouts)
            }
        };
        for text in charts.write(&args.output, kind.name())? {
            line(text)?;
        }
    }
    if args.json {
        let mut summary: serde_json::Value =
            serde_json::from_str(&model.to_json()).expect("the model file is JSON");
        summary["output"] = serde_json::json!(args.output.display().to_string());
        summary["time_ms"] = serde_json::json!(super::millis(elapsed));
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    Ok(())
}

/// One fit's summary: the customers and distinct histories, how the optimiser ended, and the
/// parameter table with the log-likelihood.
fn print_fit<const K: usize>(
    line: &mut impl FnMut(String) -> Result<()>,
    name: &str,
    unit: &str,
    time: Duration,
    names: &[&str; K],
    params: &[f64; K],
    details: &FitDetails<K>,
) -> Result<()> {
    let fit = details
        .fit
        .as_ref()
        .expect("a fitted section has its record");
    line(format!(
        "fitted {name} to {} ({} distinct histories) in {time:.2?}: {}, {} iterations",
        count(fit.customers, unit),
        fit.distinct_histories,
        fit.status,
        fit.iterations
    ))?;
    line(format!(
        "  {:<16} {:>14} {:>14}",
        "parameter", "estimate", "std. error"
    ))?;
    for (k, name) in names.iter().enumerate() {
        let se = details
            .standard_errors
            .map_or("-".to_string(), |se| format!("{:.6}", se[k]));
        line(format!("  {name:<16} {:>14.6} {se:>14}", params[k]))?;
    }
    line(format!(
        "  {:<16} {:>14.4}",
        "log-likelihood",
        details.log_likelihood.unwrap_or(f64::NAN)
    ))
}

/// Every customer's calibration history with their holdout purchases and duration (the
/// store's `frequency_holdout` and `duration_holdout` columns, required).
fn read_holdouts(store: &Store, histories: &[History]) -> Result<Vec<Holdout>> {
    let columns = holdout_columns(store)?.ok_or_else(|| Error::Column {
        name: format!("{FREQUENCY_HOLDOUT}, {DURATION_HOLDOUT}"),
        message: "are required by --holdout and are not both in the store (crv rfm \
                  --calibration-end writes them)"
            .to_string(),
    })?;
    Ok(holdouts(histories, columns))
}

/// The holdout table and the two diagnostic charts of a fitted model.
struct HoldoutCharts {
    buckets: Vec<HoldoutBucket>,
    matrix: PAliveMatrix,
}

impl HoldoutCharts {
    fn new<M: PurchaseModel>(model: &M, holdouts: &[Holdout]) -> HoldoutCharts {
        let largest = |value: fn(&Holdout) -> f64| holdouts.iter().map(value).fold(0.0, f64::max);
        HoldoutCharts {
            buckets: holdout_buckets(model, holdouts),
            matrix: p_alive_matrix(
                model,
                largest(|h| h.history.age),
                largest(|h| h.history.frequency),
                MAX_MATRIX_CELLS,
            ),
        }
    }

    /// Writes the charts beside `model_path` and returns the table's lines.
    fn write(&self, model_path: &Path, model_name: &str) -> Result<Vec<String>> {
        let holdout_path = model_path.with_extension("holdout.svg");
        let p_alive_path = model_path.with_extension("p_alive.svg");
        for (path, svg) in [
            (&holdout_path, holdout_svg(&self.buckets, model_name)),
            (&p_alive_path, p_alive_svg(&self.matrix, model_name)),
        ] {
            write_atomically(path, |out| {
                out.write_all(svg.as_bytes())
                    .map_err(|e| Error::io(path, e))
            })?;
        }
        let mut lines = vec![format!(
            "{:<10} {:>10} {:>12} {:>12}",
            "frequency", "customers", "actual", "predicted"
        )];
        for bucket in &self.buckets {
            lines.push(format!(
                "{:<10} {:>10} {:>12.4} {:>12.4}",
                bucket.label(),
                bucket.customers,
                bucket.actual,
                bucket.predicted
            ));
        }
        lines.push(format!(
            "holdout purchases by calibration frequency (means per customer); charts: {}, {}",
            holdout_path.display(),
            p_alive_path.display()
        ));
        Ok(lines)
    }
}
