//! The probabilistic CRV of docs/model.md ("Relationship value from purchase histories"): what
//! a customer is worth from their purchase history under a fitted purchase model (BG/NBD or
//! Pareto/NBD) and a spend rule,
//!
//! ```text
//! CRV_i = margin_rate * spend_i * sum_{t=1..H} (E_i[N(t)] - E_i[N(t-1)]) / (1 + d)^t
//!         + referral_i + competence_i - development_i - acquisition_i
//! ```
//!
//! where `E_i[N(t)]` is the customer's expected purchases in the `t` periods after the end of
//! observation. [`crv_reference`] is the plain f64 specification, one customer at a time;
//! [`score_histories`] computes the same values at scale from three facts of the models:
//! - the value depends on the history only through (frequency, recency, age), and customers
//!   share few distinct triples (a million synthetic customers have ~3e5), so the model is
//!   evaluated once per distinct triple;
//! - `E[N(t) | history] = P(alive | history) * E[N(t) | alive, frequency, age]`: the discounted
//!   purchase curve, the expensive part (a 2F1 per period for BG/NBD), is computed once per
//!   distinct (frequency, age) pair, fewer still (~5e4 per million);
//! - what is left per customer is a gather and a multiply-add, in `wide` lanes.
//!
//! Every step is a pure function of its inputs, so the values do not depend on the number of
//! threads or the order of the rows.

use rayon::prelude::*;
use wide::f64x4;

use crate::btyd::columns::HistoryColumns;
use crate::btyd::distinct::{BitsMap, DistinctHistories};
use crate::btyd::{History, PurchaseModel};
use crate::error::{Error, Result};
use crate::kernel::crv::{CHUNK_ROWS, ScoreTotals};
use crate::store::{Store, schema};

/// Most periods a purchase-model horizon may have: the curve costs one model evaluation per
/// period and distinct (frequency, age) pair.
pub const MAX_HORIZON_PERIODS: u32 = 10_000;

/// The columns the probabilistic CRV reads, one entry per customer; a missing optional column
/// counts as zero, a missing `monetary_value` as a spend of 1 per purchase.
#[derive(Debug, Clone, Copy)]
pub struct HistoryInputs<'a> {
    /// Frequency, recency and age.
    pub histories: HistoryColumns<'a>,
    /// Mean spend of the repeat purchases.
    pub monetary_value: Option<&'a [f32]>,
    /// One-off value of the customer's recommendations, present value.
    pub referral_value: Option<&'a [f32]>,
    /// One-off value of what the firm learns from the customer, present value.
    pub competence_value: Option<&'a [f32]>,
    /// One-off spend to grow the relationship, present value.
    pub development_cost: Option<&'a [f32]>,
    /// One-off cost to win a prospect, present value.
    pub acquisition_cost: Option<&'a [f32]>,
}

impl<'a> HistoryInputs<'a> {
    /// The history columns of `store`, read in place and checked
    /// ([`HistoryColumns::from_store`]), with the optional spend and one-off columns.
    pub fn from_store(store: &'a Store) -> Result<HistoryInputs<'a>> {
        Ok(HistoryInputs {
            histories: HistoryColumns::from_store(store)?,
            monetary_value: store.optional_numeric(schema::MONETARY_VALUE)?,
            referral_value: store.optional_numeric(schema::REFERRAL_VALUE)?,
            competence_value: store.optional_numeric(schema::COMPETENCE_VALUE)?,
            development_cost: store.optional_numeric(schema::DEVELOPMENT_COST)?,
            acquisition_cost: store.optional_numeric(schema::ACQUISITION_COST)?,
        })
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.histories.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }

    /// Row `row`'s history.
    pub fn history(&self, row: usize) -> History {
        self.histories.history(row)
    }

    /// Row `row`'s one-off terms: referral + competence - development - acquisition.
    pub(crate) fn one_offs(&self, row: usize) -> f64 {
        let column = |column: Option<&[f32]>| column.map_or(0.0, |c| f64::from(c[row]));
        column(self.referral_value) + column(self.competence_value)
            - column(self.development_cost)
            - column(self.acquisition_cost)
    }

    /// Row `row`'s observed mean spend per purchase, 1 without a `monetary_value` column.
    fn observed_spend(&self, row: usize) -> f64 {
        self.monetary_value.map_or(1.0, |m| f64::from(m[row]))
    }
}

/// What one expected purchase is worth: a spend model (Gamma-Gamma) from the customer's
/// frequency and observed mean spend, or the observed mean spend itself.
pub trait SpendRule: Sync {
    /// Expected spend per future purchase of a customer with `frequency` repeat purchases of
    /// mean `monetary_value`.
    fn expected_spend(&self, frequency: f64, monetary_value: f64) -> f64;
}

/// The spend rule without a spend model: a purchase is worth the customer's observed mean
/// spend (`monetary_value`; 1 where the store has none, so the CRV counts discounted
/// purchases).
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservedSpend;

impl SpendRule for ObservedSpend {
    fn expected_spend(&self, _frequency: f64, monetary_value: f64) -> f64 {
        monetary_value
    }
}

/// The valuation's parameters shared by every customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryParams {
    /// Discount rate per period (the model's time unit), >= 0.
    pub discount: f64,
    /// Periods valued, 1..=[`MAX_HORIZON_PERIODS`].
    pub horizon_periods: u32,
    /// Margin per unit of spend (`--margin-rate`), finite.
    pub margin_rate: f64,
}

impl HistoryParams {
    /// Checks the domains: a finite discount >= 0, a horizon of 1..=[`MAX_HORIZON_PERIODS`]
    /// periods, a finite margin rate.
    pub fn validate(&self) -> Result<()> {
        if !self.discount.is_finite() || self.discount < 0.0 {
            return Err(Error::invalid(
                "discount",
                format!("{} must be a finite rate >= 0", self.discount),
            ));
        }
        if !(1..=MAX_HORIZON_PERIODS).contains(&self.horizon_periods) {
            return Err(Error::invalid(
                "horizon",
                format!(
                    "a purchase model values 1 to {MAX_HORIZON_PERIODS} periods (not `inf`), \
                     got {}",
                    self.horizon_periods
                ),
            ));
        }
        if !self.margin_rate.is_finite() {
            return Err(Error::invalid(
                "margin-rate",
                format!("{} must be finite", self.margin_rate),
            ));
        }
        Ok(())
    }
}

/// Every customer's value from their purchase history, and the columns it is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryValues {
    /// The probabilistic CRV.
    pub crv: Vec<f32>,
    /// P(alive) at the end of observation.
    pub p_alive: Vec<f32>,
    /// Expected purchases over the horizon (undiscounted).
    pub expected_purchases: Vec<f32>,
    /// Expected spend per purchase.
    pub expected_spend: Vec<f32>,
    /// Totals of `crv`, summed in row order.
    pub totals: ScoreTotals,
    /// Distinct (frequency, recency, age) histories the model was evaluated on.
    pub distinct_histories: usize,
    /// Distinct (frequency, age) pairs the purchase curve was computed for.
    pub distinct_curves: usize,
}

impl HistoryValues {
    fn with_rows(rows: usize) -> HistoryValues {
        HistoryValues {
            crv: vec![0.0; rows],
            p_alive: vec![0.0; rows],
            expected_purchases: vec![0.0; rows],
            expected_spend: vec![0.0; rows],
            ..HistoryValues::default()
        }
    }
}

/// A purchase curve over the horizon for a customer still active at the end of observation:
/// discounted and plain expected purchases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Curve {
    discounted: f64,
    plain: f64,
}

fn curve<M: PurchaseModel>(model: &M, frequency: f64, age: f64, params: &HistoryParams) -> Curve {
    let growth = 1.0 / (1.0 + params.discount);
    let (mut discounted, mut factor, mut before) = (0.0, 1.0, 0.0);
    for t in 1..=params.horizon_periods {
        let after = model.expected_purchases_if_alive(frequency, age, f64::from(t));
        factor *= growth;
        discounted += (after - before) * factor;
        before = after;
    }
    Curve {
        discounted,
        plain: before,
    }
}

/// The specification: every customer's value in plain f64, one customer at a time, straight
/// from the model's `expected_purchases` (no sharing between customers), rounded to f32.
///
/// # Panics
///
/// If `params` are not validated.
pub fn crv_reference<M: PurchaseModel, S: SpendRule>(
    model: &M,
    spend: &S,
    inputs: &HistoryInputs<'_>,
    params: &HistoryParams,
) -> HistoryValues {
    params.validate().expect("validated parameters");
    let mut values = HistoryValues::with_rows(inputs.len());
    let growth = 1.0 / (1.0 + params.discount);
    for row in 0..inputs.len() {
        let history = inputs.history(row);
        let (mut discounted, mut factor, mut before) = (0.0, 1.0, 0.0);
        for t in 1..=params.horizon_periods {
            let after = model.expected_purchases(history, f64::from(t));
            factor *= growth;
            discounted += (after - before) * factor;
            before = after;
        }
        let expected_spend = spend.expected_spend(history.frequency, inputs.observed_spend(row));
        let crv = params.margin_rate * expected_spend * discounted + inputs.one_offs(row);
        values.crv[row] = crv as f32;
        values.p_alive[row] = model.p_alive(history) as f32;
        values.expected_purchases[row] = before as f32;
        values.expected_spend[row] = expected_spend as f32;
        values.totals.add(f64::from(values.crv[row]));
    }
    values
}

/// Every customer's value at scale (see the module doc): the same values as [`crv_reference`]
/// up to the rounding of sums taken in another order, and bit-identical for any number of
/// threads.
///
/// # Panics
///
/// If `params` are not validated, or the columns' lengths differ.
pub fn score_histories<M: PurchaseModel, S: SpendRule>(
    model: &M,
    spend: &S,
    inputs: &HistoryInputs<'_>,
    params: &HistoryParams,
) -> HistoryValues {
    params.validate().expect("validated parameters");
    let rows = inputs.len();
    let columns = &inputs.histories;
    assert!(
        columns.recency.len() == rows && columns.age.len() == rows,
        "history columns of one length"
    );
    let HistoryCurves {
        distinct,
        history_curve,
        curve_keys,
    } = HistoryCurves::of(inputs);
    let curves: Vec<Curve> = curve_keys
        .par_iter()
        .map(|&(frequency, age)| curve(model, frequency, age, params))
        .collect();
    // Per distinct history: P(alive), and its discounted and plain expected purchases.
    let per_history: Vec<[f64; 3]> = distinct
        .histories
        .par_iter()
        .zip(&history_curve)
        .map(|(&history, &curve_index)| {
            let p_alive = model.p_alive(history);
            let curve = curves[curve_index as usize];
            [p_alive, p_alive * curve.discounted, p_alive * curve.plain]
        })
        .collect();
    let mut values = HistoryValues::with_rows(rows);
    values.distinct_histories = distinct.histories.len();
    values.distinct_curves = curves.len();
    let totals: Vec<ScoreTotals> = values
        .crv
        .par_chunks_mut(CHUNK_ROWS)
        .zip(values.p_alive.par_chunks_mut(CHUNK_ROWS))
        .zip(values.expected_purchases.par_chunks_mut(CHUNK_ROWS))
        .zip(values.expected_spend.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .map(
            |(chunk, (((crv, p_alive), expected_purchases), expected_spend))| {
                let start = chunk * CHUNK_ROWS;
                let rows = start..start + crv.len();
                let index = &distinct.row_history[rows.clone()];
                for (k, &h) in index.iter().enumerate() {
                    let [p, _, plain] = per_history[h as usize];
                    let row = start + k;
                    p_alive[k] = p as f32;
                    expected_purchases[k] = plain as f32;
                    expected_spend[k] = spend.expected_spend(
                        f64::from(inputs.histories.frequency[row]),
                        inputs.observed_spend(row),
                    ) as f32;
                }
                combine_lanes(
                    inputs,
                    params,
                    &per_history,
                    index,
                    start,
                    expected_spend,
                    crv,
                )
            },
        )
        .collect();
    values.totals = totals
        .into_iter()
        .fold(ScoreTotals::default(), ScoreTotals::merge);
    values
}

/// `crv = margin_rate * spend * discounted_purchases + one_offs` for one chunk of rows, four
/// customers per `f64x4` lane; returns the chunk's totals (of the f32 values, in row order).
fn combine_lanes(
    inputs: &HistoryInputs<'_>,
    params: &HistoryParams,
    per_history: &[[f64; 3]],
    index: &[u32],
    start: usize,
    expected_spend: &[f32],
    crv: &mut [f32],
) -> ScoreTotals {
    let rate = f64x4::splat(params.margin_rate);
    let mut totals = ScoreTotals::default();
    let mut row_chunks = crv.chunks_mut(4).zip(index.chunks(4)).enumerate();
    for (quad, (out, index)) in &mut row_chunks {
        let base = start + quad * 4;
        let lanes = out.len();
        let mut spend = [0.0; 4];
        let mut purchases = [0.0; 4];
        let mut one_offs = [0.0; 4];
        for k in 0..lanes {
            spend[k] = f64::from(expected_spend[quad * 4 + k]);
            purchases[k] = per_history[index[k] as usize][1];
            one_offs[k] = inputs.one_offs(base + k);
        }
        let value =
            (rate * f64x4::from(spend)).mul_add(f64x4::from(purchases), f64x4::from(one_offs));
        let value = value.to_array();
        for k in 0..lanes {
            out[k] = value[k] as f32;
            totals.add(f64::from(out[k]));
        }
    }
    totals
}

/// The customers' distinct histories ([`DistinctHistories`]), and the distinct (frequency, age)
/// pairs among those.
struct HistoryCurves {
    /// The distinct histories and each row's.
    distinct: DistinctHistories,
    /// For each distinct history, its (frequency, age) pair's index in `curve_keys`.
    history_curve: Vec<u32>,
    /// The distinct (frequency, age) pairs, in order of first appearance among the histories.
    curve_keys: Vec<(f64, f64)>,
}

impl HistoryCurves {
    fn of(inputs: &HistoryInputs<'_>) -> HistoryCurves {
        let distinct = DistinctHistories::of(inputs.len(), |row| inputs.history(row));
        let mut curves: BitsMap<(u64, u64), u32> = BitsMap::default();
        let mut curve_keys = Vec::new();
        let history_curve = distinct
            .histories
            .iter()
            .map(|history| {
                let key = (history.frequency.to_bits(), history.age.to_bits());
                *curves.entry(key).or_insert_with(|| {
                    curve_keys.push((history.frequency, history.age));
                    u32::try_from(curve_keys.len() - 1).expect("fewer than 2^32 pairs")
                })
            })
            .collect();
        HistoryCurves {
            distinct,
            history_curve,
            curve_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture model with closed forms (not one of the fitted models): purchases at rate
    /// (1 + x) / (1 + T) while alive, dropout at rate 0.1, P(alive) falling with the time since
    /// the last purchase.
    #[derive(Debug, Clone, Copy)]
    struct FixtureModel;

    impl PurchaseModel for FixtureModel {
        const NAME: &'static str = "fixture";
        const PARAM_NAMES: [&'static str; 4] = ["a", "b", "c", "d"];
        fn from_params(_: [f64; 4]) -> Self {
            FixtureModel
        }
        fn params(&self) -> [f64; 4] {
            [1.0; 4]
        }
        fn log_likelihood(&self, _: History) -> (f64, [f64; 4]) {
            (0.0, [0.0; 4])
        }
        fn p_alive(&self, history: History) -> f64 {
            1.0 / (1.0 + 0.05 * (history.age - history.recency))
        }
        fn expected_purchases_if_alive(&self, frequency: f64, age: f64, t: f64) -> f64 {
            (1.0 + frequency) / (1.0 + age) / 0.1 * (1.0 - (-0.1 * t).exp())
        }
    }

    struct Columns {
        frequency: Vec<f32>,
        recency: Vec<f32>,
        age: Vec<f32>,
        monetary_value: Vec<f32>,
        acquisition_cost: Vec<f32>,
    }

    impl Columns {
        /// `rows` customers with few distinct histories, as real data has.
        fn new(rows: usize) -> Columns {
            let mut columns = Columns {
                frequency: vec![],
                recency: vec![],
                age: vec![],
                monetary_value: vec![],
                acquisition_cost: vec![],
            };
            for row in 0..rows {
                let age = (row * 7919 % 53) as f32;
                let frequency = (row * 104_729 % 11) as f32;
                let recency = if frequency == 0.0 {
                    0.0
                } else {
                    (row % 5) as f32 * age / 4.0
                };
                columns.frequency.push(frequency);
                columns.recency.push(recency);
                columns.age.push(age);
                columns.monetary_value.push(if frequency == 0.0 {
                    0.0
                } else {
                    20.0 + (row % 13) as f32
                });
                columns.acquisition_cost.push((row % 3) as f32);
            }
            columns
        }

        fn inputs(&self) -> HistoryInputs<'_> {
            HistoryInputs {
                histories: HistoryColumns {
                    frequency: &self.frequency,
                    recency: &self.recency,
                    age: &self.age,
                },
                monetary_value: Some(&self.monetary_value),
                referral_value: None,
                competence_value: None,
                development_cost: None,
                acquisition_cost: Some(&self.acquisition_cost),
            }
        }
    }

    const PARAMS: HistoryParams = HistoryParams {
        discount: 0.01,
        horizon_periods: 52,
        margin_rate: 0.3,
    };

    #[test]
    fn scale_path_equals_the_per_customer_specification() {
        let columns = Columns::new(50_000);
        let inputs = columns.inputs();
        let reference = crv_reference(&FixtureModel, &ObservedSpend, &inputs, &PARAMS);
        let fast = score_histories(&FixtureModel, &ObservedSpend, &inputs, &PARAMS);
        assert!(
            fast.distinct_histories < 3_000,
            "{}",
            fast.distinct_histories
        );
        assert!(fast.distinct_curves <= 53 * 11);
        for row in 0..inputs.len() {
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
            assert!(close(fast.crv[row], reference.crv[row]), "row {row}");
            assert_eq!(fast.p_alive[row], reference.p_alive[row], "row {row}");
            assert!(close(
                fast.expected_purchases[row],
                reference.expected_purchases[row]
            ));
            assert_eq!(fast.expected_spend[row], reference.expected_spend[row]);
        }
        assert_eq!(fast.totals.customers, 50_000);
        let relative = (fast.totals.crv_sum() - reference.totals.crv_sum()).abs()
            / reference.totals.crv_sum().abs();
        assert!(relative < 1e-6, "{relative}");
    }

    #[test]
    fn values_do_not_depend_on_the_thread_count() {
        let columns = Columns::new(3 * CHUNK_ROWS + 17);
        let inputs = columns.inputs();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| score_histories(&FixtureModel, &ObservedSpend, &inputs, &PARAMS))
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn a_customer_without_spend_column_counts_discounted_purchases() {
        let columns = Columns::new(10);
        let inputs = HistoryInputs {
            monetary_value: None,
            acquisition_cost: None,
            ..columns.inputs()
        };
        let params = HistoryParams {
            discount: 0.0,
            margin_rate: 1.0,
            ..PARAMS
        };
        let values = score_histories(&FixtureModel, &ObservedSpend, &inputs, &params);
        for row in 0..10 {
            // Undiscounted, the value is the expected purchases themselves.
            let relative = (values.crv[row] - values.expected_purchases[row]).abs()
                / values.crv[row].max(1e-6);
            assert!(relative < 1e-6, "row {row}");
            assert_eq!(values.expected_spend[row], 1.0);
        }
    }

    #[test]
    fn params_outside_their_domain_are_refused() {
        for params in [
            HistoryParams {
                horizon_periods: 0,
                ..PARAMS
            },
            HistoryParams {
                horizon_periods: MAX_HORIZON_PERIODS + 1,
                ..PARAMS
            },
            HistoryParams {
                discount: -0.1,
                ..PARAMS
            },
            HistoryParams {
                margin_rate: f64::NAN,
                ..PARAMS
            },
        ] {
            assert!(params.validate().is_err(), "{params:?}");
        }
        assert!(PARAMS.validate().is_ok());
    }
}
