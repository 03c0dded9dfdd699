//! Fitting what a model file holds: the purchase model (BG/NBD or Pareto/NBD) and, when asked,
//! the Gamma-Gamma spend model, to a store's purchase histories by maximum likelihood. `crv fit`
//! and the Python package's `crv.fit` both call [`fit_model_file`], so they write the same
//! model for the same customers.

use std::time::{Duration, Instant};

use super::History;
use super::bgnbd::BgNbd;
use super::fit::{Estimate, Progress, PurchaseData, fit_purchase_model, read_spends};
use super::gamma_gamma::{GammaGamma, SpendData, fit_gamma_gamma};
use super::model_file::{FitDetails, FitRecord, ModelFile, PurchaseKind, SpendSection};
use super::pnbd::ParetoNbd;
use crate::error::Result;
use crate::store::Store;

/// What to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    /// The purchase model.
    pub kind: PurchaseKind,
    /// Also fit Gamma-Gamma to the repeat buyers' `monetary_value`.
    pub spend: bool,
    /// The unit of the store's recency and age (`day`, `week`, `month`), recorded in the file.
    pub time_unit: Option<String>,
}

/// The fitted model file and how long each fit took.
#[derive(Debug, Clone)]
pub struct FittedModels {
    /// The model file's contents, each section with its fit record.
    pub file: ModelFile,
    /// The purchase model's fit (compressing the histories included).
    pub purchase_time: Duration,
    /// The spend model's fit, when asked.
    pub spend_time: Option<Duration>,
}

/// A fit's progress report: the model's name, evaluations so far and the log-likelihood.
pub type NamedProgress<'a> = &'a (dyn Fn(&'static str, u64, f64) + Sync);

/// Fits `request`'s models to `histories` (the store's rows, [`super::fit::read_histories`])
/// and, for the spend model, the store's `monetary_value`, which is checked before any fit
/// runs. Errors name the column, row and customer of bad data, or say why the data cannot
/// identify a model.
pub fn fit_model_file(
    store: &Store,
    histories: &[History],
    request: &FitRequest,
    progress: Option<NamedProgress<'_>>,
) -> Result<FittedModels> {
    let started = Instant::now();
    let spends = match request.spend {
        true => Some(read_spends(store, histories)?),
        false => None,
    };
    let data = PurchaseData::compress(histories);
    let purchase_progress = |evaluations: u64, ll: f64| {
        if let Some(report) = progress {
            report(request.kind.name(), evaluations, ll);
        }
    };
    let estimate = fit_kind(request.kind, &data, Some(&purchase_progress))?;
    let purchase_time = started.elapsed();
    let spend = match spends {
        Some(spends) => {
            let spend_started = Instant::now();
            let spend_data = SpendData::compress(&spends);
            let spend_progress = |evaluations: u64, ll: f64| {
                if let Some(report) = progress {
                    report(GammaGamma::NAME, evaluations, ll);
                }
            };
            let (model, estimate) = fit_gamma_gamma(&spend_data, Some(&spend_progress))?;
            let section = SpendSection {
                model,
                details: details(&estimate, spend_data.repeat_buyers, spend_data.spends.len()),
            };
            Some((section, spend_started.elapsed()))
        }
        None => None,
    };
    let file = ModelFile {
        model: request.kind,
        params: estimate.params,
        details: details(&estimate, data.customers, data.histories.len()),
        time_unit: request.time_unit.clone(),
        spend: spend.as_ref().map(|(section, _)| section.clone()),
    };
    Ok(FittedModels {
        file,
        purchase_time,
        spend_time: spend.map(|(_, time)| time),
    })
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
