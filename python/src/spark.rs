//! The pieces `crv.spark` (crv/spark.py) runs on Spark's executors and driver: each turns one
//! Arrow batch of a partition into a message (bytes), or merges messages, by calling the core
//! crate (`kernel::tier` for tier cuts over parts, `select::parts` for the distributed exact
//! knapsack, `campaign::parts` for a part's items). Messages are the core crate's bincode
//! encodings; Python only ships them.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow_pyarrow::{PyArrowType, ToPyArrow};
use arrow_schema::{DataType, Field, Schema};
use crv::campaign::parts::part_items;
use crv::campaign::report;
use crv::kernel::tier::{Histogram, boundary};
use crv::kernel::{TierCuts, TierScheme};
use crv::select::parts::{Answer, Chosen, PartsKnapsack, Question, Step, answer, decode, encode};
use crv::select::{SolveLimits, scale_capacity};
use crv::store::columnar::store_from_batches;
use crv::{ScoreParams, Table};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{params, raise, scheme};

/// One partition's batch as a store ("partition" in errors).
fn part_store(batch: PyArrowType<RecordBatch>) -> crv::Result<Arc<crv::Store>> {
    let batch = batch.0;
    let store = store_from_batches(&batch.schema(), &[batch], "<partition>")?;
    if store.text_ids().is_some() {
        return Err(crv::Error::invalid(
            "customer_id",
            "crv.spark needs whole-number customer ids (text ids are numbered per partition, \
             so partitions cannot be merged); score or select text ids with crv.score/crv.select",
        ));
    }
    Ok(Arc::new(store))
}

/// The CRV and ids of a partition's batch.
fn part_scores(
    py: Python<'_>,
    batch: PyArrowType<RecordBatch>,
    params: ScoreParams,
) -> PyResult<(Vec<f32>, Vec<u64>)> {
    py.detach(|| -> crv::Result<_> {
        let store = part_store(batch)?;
        let ids = store.ids().to_vec();
        let table = Table::score(store, params, TierScheme::default())?;
        Ok((table.crv().to_vec(), ids))
    })
    .map_err(raise)
}

fn histogram_of(bytes: &[u8]) -> PyResult<Histogram> {
    let histogram: Histogram = decode(bytes, "tier histogram").map_err(raise)?;
    if !histogram.is_well_formed() {
        return Err(raise(crv::Error::invalid(
            "tier histogram",
            "is not well formed",
        )));
    }
    Ok(histogram)
}

/// A partition's tier histogram.
#[pyfunction]
fn tier_histogram<'py>(
    py: Python<'py>,
    batch: PyArrowType<RecordBatch>,
    discount: f64,
    horizon: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let params = params(discount, horizon).map_err(raise)?;
    let (crv, _) = part_scores(py, batch, params)?;
    Ok(PyBytes::new(py, &encode(&Histogram::of(&crv))))
}

/// The partitions' histograms merged, and the buckets of the tier cuts.
#[pyfunction]
fn merge_histograms<'py>(
    py: Python<'py>,
    parts: Vec<Vec<u8>>,
    tier_cuts: (f64, f64),
) -> PyResult<(Bound<'py, PyBytes>, Vec<usize>)> {
    let scheme = scheme(tier_cuts).map_err(raise)?;
    let mut merged = Histogram::of(&[]);
    for part in &parts {
        merged = merged.merge(&histogram_of(part)?);
    }
    let buckets = merged.cut_buckets(&scheme);
    Ok((PyBytes::new(py, &encode(&merged)), buckets))
}

/// A partition's customers in the cut buckets.
#[pyfunction]
fn tier_boundary<'py>(
    py: Python<'py>,
    batch: PyArrowType<RecordBatch>,
    discount: f64,
    horizon: &str,
    buckets: Vec<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let params = params(discount, horizon).map_err(raise)?;
    let (crv, ids) = part_scores(py, batch, params)?;
    Ok(PyBytes::new(py, &encode(&boundary(&crv, &ids, &buckets))))
}

/// The ends of tiers A and B from the merged histogram and every partition's boundary.
#[pyfunction]
fn tier_ends<'py>(
    py: Python<'py>,
    histogram: Vec<u8>,
    tier_cuts: (f64, f64),
    boundaries: Vec<Vec<u8>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let scheme = scheme(tier_cuts).map_err(raise)?;
    let histogram = histogram_of(&histogram)?;
    let (mut crv, mut ids) = (Vec::new(), Vec::new());
    for part in &boundaries {
        let (part_crv, part_ids): (Vec<f32>, Vec<u64>) =
            decode(part, "tier boundary").map_err(raise)?;
        if part_crv.len() != part_ids.len() {
            return Err(raise(crv::Error::invalid(
                "tier boundary",
                "is not well formed",
            )));
        }
        crv.extend(part_crv);
        ids.extend(part_ids);
    }
    let cuts = TierCuts::from_parts(&histogram, &scheme, &crv, &ids);
    Ok(PyBytes::new(py, &encode(&cuts.ends())))
}

/// A partition's `customer_id` (int64), `crv` and `tier` under the global cuts.
#[pyfunction]
fn part_tiers(
    py: Python<'_>,
    batch: PyArrowType<RecordBatch>,
    discount: f64,
    horizon: &str,
    ends: Vec<u8>,
) -> PyResult<Py<PyAny>> {
    let params = params(discount, horizon).map_err(raise)?;
    let ends: [u128; 2] = decode(&ends, "tier ends").map_err(raise)?;
    let (crv, ids) = part_scores(py, batch, params)?;
    let tiers = StringArray::from_iter_values(
        crv.iter()
            .zip(&ids)
            .map(|(&value, &id)| TierCuts::tier_by_ends(ends, value, id).as_str()),
    );
    let ids: Vec<i64> = ids
        .iter()
        .map(|&id| i64::try_from(id))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            raise(crv::Error::invalid(
                "customer_id",
                "above 2^63 - 1, which Spark's long cannot hold",
            ))
        })?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("crv", DataType::Float32, false),
        Field::new("tier", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(Float32Array::from(crv)),
        Arc::new(tiers),
    ];
    let batch =
        RecordBatch::try_new(schema, columns).expect("three columns of one length, as declared");
    Ok(batch.to_pyarrow(py)?.unbind())
}

/// A partition's answer to a question of the distributed knapsack.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn knapsack_answer<'py>(
    py: Python<'py>,
    batch: PyArrowType<RecordBatch>,
    discount: f64,
    horizon: &str,
    value: &str,
    cost: &str,
    resource_scale: f64,
    capacity: u64,
    question: Vec<u8>,
) -> PyResult<Bound<'py, PyBytes>> {
    let params = params(discount, horizon).map_err(raise)?;
    let question: Question = decode(&question, "question").map_err(raise)?;
    let bytes = py
        .detach(|| -> crv::Result<_> {
            let items = part_items(part_store(batch)?, params, value, cost, resource_scale)?;
            Ok(encode(&answer(
                &question,
                capacity,
                &items.ids,
                &items.values,
                &items.costs,
            )))
        })
        .map_err(raise)?;
    Ok(PyBytes::new(py, &bytes))
}

/// A partition's chosen customers (`customer_id`, int64).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn knapsack_chosen(
    py: Python<'_>,
    batch: PyArrowType<RecordBatch>,
    discount: f64,
    horizon: &str,
    value: &str,
    cost: &str,
    resource_scale: f64,
    capacity: u64,
    chosen: Vec<u8>,
) -> PyResult<Py<PyAny>> {
    let params = params(discount, horizon).map_err(raise)?;
    let chosen: Chosen = decode(&chosen, "chosen").map_err(raise)?;
    let ids = py
        .detach(|| -> crv::Result<Vec<i64>> {
            let items = part_items(part_store(batch)?, params, value, cost, resource_scale)?;
            Ok((0..items.ids.len())
                .filter(|&i| chosen.holds(capacity, items.ids[i], items.values[i], items.costs[i]))
                .map(|i| items.ids[i] as i64)
                .collect())
        })
        .map_err(raise)?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "customer_id",
        DataType::Int64,
        false,
    )]));
    let column: ArrayRef = Arc::new(Int64Array::from(ids));
    let batch = RecordBatch::try_new(schema, vec![column]).expect("one column, as declared");
    Ok(batch.to_pyarrow(py)?.unbind())
}

/// The driver of the distributed knapsack (`crv::select::parts::PartsKnapsack`).
#[pyclass(module = "crv")]
struct KnapsackDriver {
    driver: PartsKnapsack,
    budget: f64,
    resource_scale: f64,
    #[pyo3(get)]
    capacity: u64,
}

#[pymethods]
impl KnapsackDriver {
    #[new]
    fn new(
        budget: f64,
        resource_scale: f64,
        time_limit: f64,
        core_limit: Option<u64>,
    ) -> PyResult<Self> {
        let capacity = scale_capacity(budget, resource_scale).map_err(raise)?;
        let limits = SolveLimits::within_seconds(time_limit).map_err(raise)?;
        Ok(KnapsackDriver {
            driver: PartsKnapsack::new(capacity, limits, core_limit),
            budget,
            resource_scale,
            capacity,
        })
    }

    /// The first question.
    fn start<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &encode(&self.driver.start()))
    }

    /// The partitions' answers to the last question: `(next question, None, None)`, or
    /// `(None, summary JSON, chosen)` when done.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        answers: Vec<Vec<u8>>,
    ) -> PyResult<(
        Option<Bound<'py, PyBytes>>,
        Option<String>,
        Option<Bound<'py, PyBytes>>,
    )> {
        let mut merged: Option<Answer> = None;
        for part in &answers {
            let part: Answer = decode(part, "answer").map_err(raise)?;
            merged = Some(match merged {
                None => part,
                Some(merged) => merged.merge(part).ok_or_else(|| {
                    raise(crv::Error::invalid(
                        "answer",
                        "partitions answered different questions",
                    ))
                })?,
            });
        }
        let merged =
            merged.ok_or_else(|| raise(crv::Error::invalid("answer", "no partition answered")))?;
        let driver = &mut self.driver;
        match py.detach(|| driver.step(merged)).map_err(raise)? {
            Step::Ask(question) => Ok((Some(PyBytes::new(py, &encode(&question))), None, None)),
            Step::Done(selection) => {
                let summary = report::parts_summary(&selection, self.budget, self.resource_scale);
                Ok((
                    None,
                    Some(summary.to_string()),
                    Some(PyBytes::new(py, &encode(&selection.chosen))),
                ))
            }
        }
    }
}

/// Adds the functions and the driver class to the native module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<KnapsackDriver>()?;
    module.add_function(wrap_pyfunction!(tier_histogram, module)?)?;
    module.add_function(wrap_pyfunction!(merge_histograms, module)?)?;
    module.add_function(wrap_pyfunction!(tier_boundary, module)?)?;
    module.add_function(wrap_pyfunction!(tier_ends, module)?)?;
    module.add_function(wrap_pyfunction!(part_tiers, module)?)?;
    module.add_function(wrap_pyfunction!(knapsack_answer, module)?)?;
    module.add_function(wrap_pyfunction!(knapsack_chosen, module)?)?;
    Ok(())
}
