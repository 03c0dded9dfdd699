//! What-if scenarios over customers valued by a purchase model (`--model`): each scenario's
//! CRV is the model's value under the scenario's discount and horizon, with the margin rate
//! scaled by its `margin_multiplier`, and a responder's `margin_uplift` raises that margin rate
//! again. The CRV is linear in the margin rate (docs/model.md, "Relationship value from purchase
//! histories"), so with `R_i` the recurring part (`CRV_i` less the one-off values and costs):
//!
//! ```text
//! CRV'_i  = margin_multiplier * R_i + one_offs_i          (the model at margin_rate * multiplier)
//! delta_i = p_i * margin_uplift * margin_multiplier * R_i  (p_i: the response rate)
//! ```
//!
//! `CRV'` is exactly what `crv score --model` gives at that margin rate; `R_i` is taken from it
//! in f64 (exact when the store has no one-off columns). A purchase model has no retention to
//! shift or uplift: `retention_shift` and `retention_uplift` other than 0 are errors naming the
//! field. One model evaluation serves every scenario with the same discount and horizon.

use std::sync::Arc;

use super::scenario::{field_error, parameter_message};
use super::{Scenario, ScenarioSet};
use crate::btyd::value::ValueModel;
use crate::error::Result;
use crate::kernel::history::{HistoryInputs, HistoryValues};
use crate::kernel::{self, Response, ScenarioParams, ScenarioTotals, ScoreTotals};
use crate::model::ScoreParams;
use crate::store::Store;

/// One scenario's values under a purchase model.
pub(super) struct ModelledValues {
    /// CRV without uplift.
    pub crv: Vec<f32>,
    /// Expected incremental value, when asked for.
    pub delta: Option<Vec<f32>>,
    /// Their totals.
    pub totals: ScenarioTotals,
}

/// The purchase model's values at one discount and horizon, kept for the next scenario that
/// asks for the same ones (a sweep over budgets or margins scores the model once).
pub(super) struct ModelledScenarios<'a> {
    model: &'a ValueModel,
    store: &'a Store,
    inputs: HistoryInputs<'a>,
    last: Option<(ScoreParams, Arc<HistoryValues>)>,
}

impl<'a> ModelledScenarios<'a> {
    /// The scenarios of `set` over `store` valued by `model`: fails, naming the scenario and
    /// field, when one asks for a retention change or a horizon the model cannot value.
    pub fn new(
        model: &'a ValueModel,
        store: &'a Store,
        set: &ScenarioSet,
    ) -> Result<ModelledScenarios<'a>> {
        for scenario in &set.scenarios {
            let error = |field: &str, message: String| {
                field_error(&set.file, &scenario.name, field, message)
            };
            for (field, value) in [
                ("retention_shift", scenario.retention_shift),
                ("retention_uplift", scenario.retention_uplift),
            ] {
                if value != 0.0 {
                    return Err(error(
                        field,
                        format!(
                            "{value}: the customers are valued by a purchase model (`--model`), \
                             which has no retention to change; use margin_multiplier or \
                             margin_uplift"
                        ),
                    ));
                }
            }
            model
                .history_params(&scenario.score)
                .map_err(|e| error("horizon", parameter_message(e)))?;
        }
        Ok(ModelledScenarios {
            model,
            store,
            inputs: HistoryInputs::from_store(store)?,
            last: None,
        })
    }

    /// `scenario`'s CRV (and expected incremental value when `with_delta`), with `params`'
    /// response rates; an error names the field when a value is not finite.
    pub fn values(
        &mut self,
        scenario: &Scenario,
        params: &ScenarioParams<'_>,
        with_delta: bool,
        file: &str,
    ) -> Result<ModelledValues> {
        let base = self.base(&scenario.score)?;
        let multiplier = scenario.margin_multiplier;
        let uplift = scenario.margin_uplift;
        let rows = base.crv.len();
        let mut crv = vec![0.0f32; rows];
        let mut delta = with_delta.then(|| vec![0.0f32; rows]);
        let mut totals = ScenarioTotals::default();
        let mut crv_totals = ScoreTotals::default();
        let response = params.uplift.as_ref().map(|uplift| &uplift.response);
        for row in 0..rows {
            let one_offs = self.inputs.one_offs(row);
            let recurring = f64::from(base.crv[row]) - one_offs;
            let value = (multiplier * recurring + one_offs) as f32;
            crv[row] = value;
            crv_totals.add(f64::from(value));
            if let Some(delta) = delta.as_mut() {
                let p = match response {
                    Some(Response::Constant(p)) => *p,
                    Some(Response::Column(column)) => f64::from(column[row]),
                    None => 0.0,
                };
                let gain = (p * uplift * multiplier * recurring) as f32;
                delta[row] = gain;
                if gain.is_finite() {
                    totals.positive_delta += f64::from(gain.max(0.0));
                } else {
                    totals.non_finite_delta += 1;
                }
            }
        }
        totals.crv = crv_totals;
        let (field, values, count) = if crv_totals.non_finite > 0 {
            ("margin_multiplier", &crv, crv_totals.non_finite)
        } else if totals.non_finite_delta > 0 {
            let delta = delta
                .as_ref()
                .expect("a delta count comes from computed deltas");
            ("margin_uplift", delta, totals.non_finite_delta)
        } else {
            return Ok(ModelledValues { crv, delta, totals });
        };
        let row =
            kernel::first_non_finite(values).expect("the count says some value is not finite");
        Err(field_error(
            file,
            &scenario.name,
            field,
            format!(
                "customer {}: {} under margin_multiplier {multiplier}, margin_uplift {uplift} \
                 ({count} customer(s) in all); every value must be finite",
                self.store.customer_id(row),
                values[row]
            ),
        ))
    }

    /// The model's values at `score`'s discount and horizon (the margin rate as given).
    fn base(&mut self, score: &ScoreParams) -> Result<Arc<HistoryValues>> {
        if let Some((params, values)) = &self.last
            && params == score
        {
            return Ok(Arc::clone(values));
        }
        let values = Arc::new(self.model.score(self.store, score)?);
        self.last = Some((*score, Arc::clone(&values)));
        Ok(values)
    }
}
