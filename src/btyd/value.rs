//! A fitted model (`model.json`) as a way of valuing customers: the purchase model, the spend
//! model or the observed mean spend, and the margin per unit of spend (`--margin-rate`). What
//! a [`crate::Table`] scored `--model` holds; the values come from
//! [`crate::kernel::history::score_histories`].

use std::path::Path;

use super::PurchaseModel;
use super::bgnbd::BgNbd;
use super::gamma_gamma::GammaGamma;
use super::model_file::{ModelFile, PurchaseKind};
use super::pnbd::ParetoNbd;
use crate::error::{Error, Result};
use crate::kernel::history::{
    HistoryInputs, HistoryParams, HistoryValues, ObservedSpend, SpendRule, score_histories,
};
use crate::model::{Horizon, ScoreParams};
use crate::store::Store;

/// The default margin per unit of spend: spend counts as value.
pub const DEFAULT_MARGIN_RATE: f64 = 1.0;

/// A fitted purchase model, one of the kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Purchases {
    /// BG/NBD.
    BgNbd(BgNbd),
    /// Pareto/NBD.
    ParetoNbd(ParetoNbd),
}

/// How a customer's value is computed from their purchase history.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueModel {
    /// The purchase model.
    pub purchases: Purchases,
    /// The spend model; `None`: a purchase is worth the customer's `monetary_value` (1 where
    /// the store has none).
    pub spend: Option<GammaGamma>,
    /// Margin per unit of spend, finite.
    pub margin_rate: f64,
    /// The unit of `recency`, `age` and the horizon (`day`, `week`, `month`), when the model
    /// file names it.
    pub time_unit: Option<String>,
}

impl SpendRule for GammaGamma {
    fn expected_spend(&self, frequency: f64, monetary_value: f64) -> f64 {
        GammaGamma::expected_spend(self, frequency, monetary_value)
    }
}

impl ValueModel {
    /// The models of a model file (checked when it was read), with `margin_rate`.
    pub fn new(file: &ModelFile, margin_rate: f64) -> Result<ValueModel> {
        if !margin_rate.is_finite() {
            return Err(Error::invalid(
                "margin-rate",
                format!("{margin_rate} must be finite"),
            ));
        }
        let purchases = match file.model {
            PurchaseKind::BgNbd => Purchases::BgNbd(BgNbd::from_params(file.params)),
            PurchaseKind::ParetoNbd => Purchases::ParetoNbd(ParetoNbd::from_params(file.params)),
        };
        Ok(ValueModel {
            purchases,
            spend: file.spend.as_ref().map(|spend| spend.model),
            margin_rate,
            time_unit: file.time_unit.clone(),
        })
    }

    /// Reads the model file at `path` ([`ModelFile::read`]) and takes `margin_rate`.
    pub fn read(path: &Path, margin_rate: f64) -> Result<ValueModel> {
        ValueModel::new(&ModelFile::read(path)?, margin_rate)
    }

    /// The purchase model's name (`bgnbd`, `pnbd`).
    pub fn purchase_model_name(&self) -> &'static str {
        match self.purchases {
            Purchases::BgNbd(_) => BgNbd::NAME,
            Purchases::ParetoNbd(_) => ParetoNbd::NAME,
        }
    }

    /// The spend rule's name: `gamma-gamma`, or `monetary_value` (the observed mean spend).
    pub fn spend_name(&self) -> &'static str {
        match self.spend {
            Some(_) => GammaGamma::NAME,
            None => "monetary_value",
        }
    }

    /// The valuation's parameters for `params` (a finite horizon, in the model's time unit).
    pub fn history_params(&self, params: &ScoreParams) -> Result<HistoryParams> {
        params.validate()?;
        let horizon_periods = match params.horizon {
            Horizon::Periods(periods) => periods,
            Horizon::Infinite => {
                return Err(Error::invalid(
                    "horizon",
                    "`inf` with a purchase model: give a whole number of periods (the model's \
                     time unit), e.g. 52 weeks",
                ));
            }
        };
        let history_params = HistoryParams {
            discount: params.discount,
            horizon_periods,
            margin_rate: self.margin_rate,
        };
        history_params.validate()?;
        Ok(history_params)
    }

    /// Every customer of `store` valued under `params`: the probabilistic CRV with P(alive),
    /// expected purchases and expected spend. Checks the parameters and the history columns.
    pub fn score(&self, store: &Store, params: &ScoreParams) -> Result<HistoryValues> {
        self.score_inputs(&HistoryInputs::from_store(store)?, params)
    }

    /// [`ValueModel::score`] of history columns given as slices (one live customer's row).
    pub fn score_inputs(
        &self,
        inputs: &HistoryInputs<'_>,
        params: &ScoreParams,
    ) -> Result<HistoryValues> {
        let history_params = self.history_params(params)?;
        let inputs = *inputs;
        Ok(match (&self.purchases, &self.spend) {
            (Purchases::BgNbd(model), Some(spend)) => {
                score_histories(model, spend, &inputs, &history_params)
            }
            (Purchases::BgNbd(model), None) => {
                score_histories(model, &ObservedSpend, &inputs, &history_params)
            }
            (Purchases::ParetoNbd(model), Some(spend)) => {
                score_histories(model, spend, &inputs, &history_params)
            }
            (Purchases::ParetoNbd(model), None) => {
                score_histories(model, &ObservedSpend, &inputs, &history_params)
            }
        })
    }
}
