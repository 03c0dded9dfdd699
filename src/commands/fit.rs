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
use crv::btyd::fit::{
    Estimate, Progress, PurchaseData, fit_purchase_model, read_histories, read_spends,
};
use crv::btyd::gamma_gamma::{GammaGamma, SpendData, fit_gamma_gamma};
use crv::btyd::model_file::{FitDetails, FitRecord, ModelFile, PurchaseKind, SpendSection};
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
    let spends = match args.spend {
        Some(SpendModelArg::GammaGamma) => Some(read_spends(&store, &histories)?),
        None => None,
    };
    let kind = match args.model {
        PurchaseModelArg::Bgnbd => PurchaseKind::BgNbd,
        PurchaseModelArg::Pnbd => PurchaseKind::ParetoNbd,
    };
    let holdouts = if args.holdout {
        Some(read_holdouts(&store, &histories)?)
    } else {
        None
    };
    let data = PurchaseData::compress(&histories);
    drop(histories);
    let last_report = Mutex::new(started);
    let report = |what: &'static str| {
        let last_report = &last_report;
        move |evaluations: u64, ll: f64| {
            let mut last = last_report.lock().expect("no report panics");
            if last.elapsed() >= PROGRESS_EVERY {
                *last = Instant::now();
                eprintln!(
                    "fit {what}: {evaluations} evaluations, log-likelihood {ll:.6}, {:.1?}",
                    started.elapsed()
                );
            }
        }
    };
    let purchase_progress = report(kind.name());
    let estimate = fit_kind(kind, &data, Some(&purchase_progress))?;
    let params = estimate.params;
    let purchase_time = started.elapsed();
    let spend = match &spends {
        Some(spends) => {
            let spend_started = Instant::now();
            let spend_data = SpendData::compress(spends);
            let spend_progress = report(GammaGamma::NAME);
            let (model, estimate) = fit_gamma_gamma(&spend_data, Some(&spend_progress))?;
            let section = SpendSection {
                model,
                details: details(&estimate, spend_data.repeat_buyers, spend_data.spends.len()),
            };
            Some((section, estimate, spend_started.elapsed()))
        }
        None => None,
    };
    let model = ModelFile {
        model: kind,
        params,
        details: details(&estimate, data.customers, data.histories.len()),
        time_unit: args.time_unit.map(|unit| unit.to_string()),
        spend: spend.as_ref().map(|(section, _, _)| section.clone()),
    };
    model.write(&args.output)?;
    let elapsed = started.elapsed();

    let mut out = summary_writer(Some(&args.output));
    let mut line = |text: String| writeln!(out, "{text}").map_err(stdout_error);
    line(format!(
        "fitted {} to {} ({} distinct histories) in {purchase_time:.2?}: {}, {} iterations",
        kind.name(),
        count(data.customers, "customer"),
        data.histories.len(),
        estimate.status,
        estimate.iterations
    ))?;
    print_estimates(&mut line, &kind.param_names(), &estimate)?;
    if let Some((section, estimate, spend_time)) = &spend {
        let fit = section
            .details
            .fit
            .as_ref()
            .expect("a fitted section has its record");
        line(format!(
            "fitted {} to {} ({} distinct) in {spend_time:.2?}: {}, {} iterations",
            GammaGamma::NAME,
            count(fit.customers, "repeat buyer"),
            fit.distinct_histories,
            estimate.status,
            estimate.iterations
        ))?;
        print_estimates(&mut line, &GammaGamma::PARAM_NAMES, estimate)?;
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

/// Fits the purchase model `kind`.
fn fit_kind(
    kind: PurchaseKind,
    data: &PurchaseData,
    progress: Option<Progress<'_>>,
) -> Result<Estimate<4>> {
    match kind {
        PurchaseKind::BgNbd => Ok(fit_purchase_model::<BgNbd>(data, progress)?.1),
        PurchaseKind::ParetoNbd => Ok(fit_purchase_model::<ParetoNbd>(data, progress)?.1),
    }
}

/// A fit's standard errors, log-likelihood and record for model.json.
fn details<const K: usize>(
    estimate: &Estimate<K>,
    customers: u64,
    distinct: usize,
) -> FitDetails<K> {
    FitDetails {
        standard_errors: estimate.standard_errors,
        log_likelihood: Some(estimate.log_likelihood),
        fit: Some(FitRecord {
            customers,
            distinct_histories: distinct as u64,
            iterations: estimate.iterations,
            converged: true,
            status: estimate.status.clone(),
        }),
    }
}

/// The parameter table and the log-likelihood of one fit.
fn print_estimates<const K: usize>(
    line: &mut impl FnMut(String) -> Result<()>,
    names: &[&str; K],
    estimate: &Estimate<K>,
) -> Result<()> {
    line(format!(
        "  {:<16} {:>14} {:>14}",
        "parameter", "estimate", "std. error"
    ))?;
    for (k, name) in names.iter().enumerate() {
        let se = estimate
            .standard_errors
            .map_or("-".to_string(), |se| format!("{:.6}", se[k]));
        line(format!(
            "  {name:<16} {:>14.6} {se:>14}",
            estimate.params[k]
        ))?;
    }
    line(format!(
        "  {:<16} {:>14.4}",
        "log-likelihood", estimate.log_likelihood
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
