//! The dashboard's picture of a fitted purchase model (`crv serve --model`): the P(alive)
//! matrix over frequency and recency, and, when the served store carries the holdout columns
//! (`crv rfm --calibration-end`), predicted against actual purchases in the holdout period by
//! calibration frequency: the two charts `crv fit --holdout` writes
//! ([`crate::btyd::diagnostics`]), computed once when the server opens (the model and the
//! calibration data do not change while it runs) and kept encoded.
//!
//! Cost: [`MATRIX_CELLS`]² evaluations of P(alive), and with holdout columns one expected
//! purchase count per customer (as `crv fit --holdout`), once.

use serde_json::{Value, json};

use crate::btyd::PurchaseModel;
use crate::btyd::columns::HistoryColumns;
use crate::btyd::diagnostics::{holdout_buckets, holdout_columns, holdouts, p_alive_matrix};
use crate::btyd::value::{Purchases, ValueModel};
use crate::error::Result;
use crate::store::Store;

/// Most cells along each axis of the dashboard's P(alive) matrix (a few KB of JSON).
pub const MATRIX_CELLS: usize = 24;

/// `{"purchase_model", "spend_model", "time_unit", "p_alive_matrix": {"age", "frequencies", "recencies",
/// "p_alive": [[..]]}, "holdout": [{"frequency", "label", "customers", "actual",
/// "predicted"}] or null}` of `model` over the customers of `store`.
pub fn encode(model: &ValueModel, store: &Store) -> Result<Value> {
    let (matrix, holdout) = match model.purchases {
        Purchases::BgNbd(purchases) => diagnostics(&purchases, store)?,
        Purchases::ParetoNbd(purchases) => diagnostics(&purchases, store)?,
    };
    Ok(json!({
        "purchase_model": model.purchase_model_name(),
        "spend_model": model.spend_name(),
        "time_unit": model.time_unit,
        "p_alive_matrix": matrix,
        "holdout": holdout,
    }))
}

/// The matrix over the store's largest age and frequency, and the holdout buckets if the store
/// has the holdout columns.
fn diagnostics<M: PurchaseModel>(model: &M, store: &Store) -> Result<(Value, Value)> {
    let columns = HistoryColumns::from_store(store)?;
    let largest = |values: &[f32]| values.iter().copied().fold(0.0f32, f32::max);
    let matrix = p_alive_matrix(
        model,
        f64::from(largest(columns.age)),
        f64::from(largest(columns.frequency)),
        MATRIX_CELLS,
    );
    let matrix = json!({
        "age": matrix.age,
        "frequencies": matrix.frequencies,
        "recencies": matrix.recencies,
        "p_alive": matrix
            .p_alive
            .iter()
            .map(|row| row.iter().map(|&p| (p * 1e3).round() / 1e3).collect())
            .collect::<Vec<Vec<f64>>>(),
    });
    let holdout = match holdout_columns(store)? {
        Some(holdout) => {
            let customers = holdouts(&columns.to_histories(), holdout);
            let buckets: Vec<Value> = holdout_buckets(model, &customers)
                .iter()
                .map(|bucket| {
                    json!({
                        "frequency": bucket.frequency,
                        "label": bucket.label(),
                        "customers": bucket.customers,
                        "actual": bucket.actual,
                        "predicted": bucket.predicted,
                    })
                })
                .collect();
            Value::from(buckets)
        }
        None => Value::Null,
    };
    Ok((matrix, holdout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btyd::bgnbd::BgNbd;
    use crate::btyd::value::DEFAULT_MARGIN_RATE;

    /// A store of CSV `text` in a temporary directory.
    fn store(text: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("c.csv");
        let path = dir.path().join("c.crv");
        std::fs::write(&csv, text).unwrap();
        crate::store::import::import(&csv, &path, &mut |_| {}).unwrap();
        let store = Store::open(&path).unwrap();
        (dir, store)
    }

    fn model() -> ValueModel {
        ValueModel {
            purchases: Purchases::BgNbd(BgNbd::from_params([0.24, 4.41, 0.79, 2.43])),
            spend: None,
            margin_rate: DEFAULT_MARGIN_RATE,
            time_unit: Some("week".into()),
        }
    }

    #[test]
    fn the_matrix_spans_the_store_and_the_holdout_means_are_the_customers() {
        let (_dir, with_holdout) = store(
            "customer_id,frequency,recency,age,frequency_holdout,duration_holdout\n\
             1,0,0,30,1,10\n2,2,20,30,0,10\n3,2,5,30,2,10\n4,40,29,30,3,10\n",
        );
        let summary = encode(&model(), &with_holdout).unwrap();
        let matrix = &summary["p_alive_matrix"];
        assert_eq!(matrix["age"], 30.0);
        let frequencies = matrix["frequencies"].as_array().unwrap();
        assert_eq!(frequencies.len(), MATRIX_CELLS);
        assert_eq!(frequencies.last().unwrap(), 40.0);
        let recencies = matrix["recencies"].as_array().unwrap();
        assert_eq!(recencies.len(), MATRIX_CELLS);
        // Rows are recencies, columns frequencies: a frequent buyer whose last purchase is at
        // the end (BG/NBD: 1 / (1 + a / (b + x - 1)) = 0.98) is alive, one gone quiet since
        // the first purchase is not.
        let p = |row: usize, column: usize| matrix["p_alive"][row][column].as_f64().unwrap();
        let last = MATRIX_CELLS - 1;
        assert!((p(last, last) - 1.0 / (1.0 + 0.79 / (2.43 + 39.0))).abs() < 1e-3);
        assert!(p(0, last) < 1e-3, "{}", p(0, last));
        let holdout = summary["holdout"].as_array().unwrap();
        // Frequencies 0, 2 (two customers, actual (0 + 2) / 2) and 7+ (the customer of 40).
        assert_eq!(holdout.len(), 3);
        assert_eq!(holdout[1]["frequency"], 2);
        assert_eq!(holdout[1]["customers"], 2);
        assert_eq!(holdout[1]["actual"], 1.0);
        assert_eq!(holdout[2]["label"], "7+");
        assert!(
            holdout
                .iter()
                .all(|b| b["predicted"].as_f64().unwrap() > 0.0)
        );

        let (_dir, without) = store("customer_id,frequency,recency,age\n1,1,3,9\n");
        let summary = encode(&model(), &without).unwrap();
        assert!(summary["holdout"].is_null());
        assert_eq!(summary["purchase_model"], "bgnbd");
        assert_eq!(summary["spend_model"], "monetary_value");
        assert_eq!(summary["time_unit"], "week");
    }
}
