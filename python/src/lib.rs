//! `crv._native`: the Python face of the `crv` crate. It adds no logic: every function turns its
//! arguments into the core crate's types, calls the same library functions the command line
//! calls (`Table::valued`, `SelectionRequest::bind(..).select(..)`, `fit_model_file`,
//! `CampaignDefinition::bind(..).solve(..)`, `report::*`), and hands the answer back. The Python package `crv` (crv/__init__.py) wraps these with defaults and docs.
//!
//! Arrow crosses the boundary through the Arrow C data interface with `arrow-pyarrow`, the
//! arrow-rs project's own bridge, released with arrow-rs (so on the same arrow version as the
//! core crate's Parquet reader: one copy of the array types, no conversion). Input is read
//! through the PyCapsule stream protocol (`__arrow_c_stream__`): any producer works (a pyarrow
//! table or record batch, polars, pandas through pyarrow, DuckDB), with no copy of the columns.
//! Results go back as pyarrow tables.
//!
//! Every computation runs with the GIL released; the rayon pool takes its size from
//! `OMP_NUM_THREADS` when set (Spark sets it per task to the task's cores), else from rayon's
//! own rules (`RAYON_NUM_THREADS`, then the machine's cores). Errors are `crv.CrvError`
//! (a `ValueError`) carrying the command line's message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow};
use arrow_schema::{Field, Schema};
use crv::arrow_scores::score_batches;
use crv::atomic_file::check_output;
use crv::btyd::columns::AGE_ALIAS;
use crv::btyd::fit::read_histories;
use crv::btyd::model_file::PurchaseKind;
use crv::btyd::model_fit::{FitRequest, fit_model_file};
use crv::btyd::value::{DEFAULT_MARGIN_RATE, ValueModel};
use crv::campaign::contacts::ContactHistory;
use crv::campaign::definition::CampaignDefinition;
use crv::campaign::{CampaignSpec, SelectionRequest, report};
use crv::cancel::Cancel;
use crv::kernel::TierScheme;
use crv::rfm::Period;
use crv::rfm::date::now_micros;
use crv::score_file::{id_array, scores_batch};
use crv::select::SolveLimits;
use crv::store::columnar::store_from_batches;
use crv::store::schema;
use crv::table::Valuation;
use crv::{Horizon, ScoreParams, Table};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod spark;

/// The command line's allocator, mimalloc ([`crv::allocator`]), for the bindings' own (Rust)
/// allocations: scoring 1e7 rows allocates and frees hundreds of MB per call, which mimalloc
/// hands from one call to the next instead of mapping fresh (zeroed) pages each time as the
/// system allocator does. Only Rust code allocates and frees through it: Arrow buffers handed
/// to Python are released through their own callback, which frees them here.
#[global_allocator]
static GLOBAL: crv::allocator::Mimalloc = crv::allocator::Mimalloc;

pyo3::create_exception!(
    _native,
    CrvError,
    PyValueError,
    "An error of crv: bad input, a bad parameter, a corrupt store. The message is the one the crv command line prints."
);

/// A crv error as the Python exception.
fn raise(error: crv::Error) -> PyErr {
    CrvError::new_err(error.to_string())
}

/// Customers: an open store file, or an Arrow table read into memory.
enum Customers {
    Store(Arc<crv::Store>),
    Arrow(arrow_pyarrow::Table),
}

impl Customers {
    fn extract(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(store) = object.cast::<Store>() {
            return Ok(Customers::Store(store.borrow().store.clone()));
        }
        Ok(Customers::Arrow(arrow_pyarrow::Table::from_pyarrow_bound(
            object,
        )?))
    }

    /// The store file's path, for a store opened from one.
    fn path(&self) -> Option<PathBuf> {
        match self {
            Customers::Store(store) => store.path().map(Path::to_path_buf),
            Customers::Arrow(_) => None,
        }
    }

    /// The store, reading Arrow input (the GIL held only while the stream is read): the
    /// columns `columns` keeps.
    fn store(self, py: Python<'_>, columns: Columns) -> PyResult<Arc<crv::Store>> {
        match self {
            Customers::Store(store) => Ok(store),
            Customers::Arrow(input) => {
                let store = py
                    .detach(|| {
                        let (schema, batches) = projected(input, columns)?;
                        store_from_batches(&schema, &batches, "<table>")
                    })
                    .map_err(raise)?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// The columns of `input` that `columns` keeps (the projection costs nothing: the other
/// columns are not read), with their schema.
fn projected(
    input: arrow_pyarrow::Table,
    columns: Columns,
) -> crv::Result<(Schema, Vec<RecordBatch>)> {
    let (batches, schema) = input.into_inner();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| columns.keeps(schema.field(i).name()))
        .collect();
    let projection_error =
        |e: arrow_schema::ArrowError| crv::Error::invalid("<table>", e.to_string());
    let schema = schema.project(&keep).map_err(projection_error)?;
    let batches = batches
        .iter()
        .map(|batch| batch.project(&keep))
        .collect::<Result<Vec<_>, _>>()
        .map_err(projection_error)?;
    Ok((schema, batches))
}

/// Which columns of an Arrow input a call reads.
#[derive(Clone, Copy)]
enum Columns {
    /// Every column: filters and campaign expressions may name any attribute.
    All,
    /// `customer_id` and the columns of crv's model (the CRV formula's, the purchase
    /// histories', the holdout's): all that scoring and fitting read.
    Modelled,
}

impl Columns {
    fn keeps(self, name: &str) -> bool {
        match self {
            Columns::All => true,
            Columns::Modelled => {
                name == schema::CUSTOMER_ID
                    || schema::known(name).is_some()
                    || [
                        AGE_ALIAS,
                        schema::FREQUENCY_HOLDOUT,
                        schema::MONETARY_VALUE_HOLDOUT,
                        schema::DURATION_HOLDOUT,
                    ]
                    .contains(&name)
            }
        }
    }
}

/// Scoring parameters as the command line's `--discount` and `--horizon` give them.
fn params(discount: f64, horizon: &str) -> crv::Result<ScoreParams> {
    let params = ScoreParams {
        discount,
        horizon: horizon.parse::<Horizon>()?,
    };
    params.validate()?;
    Ok(params)
}

/// A tier scheme from `tier_cuts=(a, b)`, checked as `--tier-cuts` is.
fn scheme(tier_cuts: (f64, f64)) -> crv::Result<TierScheme> {
    let scheme = TierScheme::CumulativeValue {
        a: tier_cuts.0,
        b: tier_cuts.1,
    };
    scheme.validate()?;
    Ok(scheme)
}

/// One pyarrow table of `batch`.
fn to_pyarrow(py: Python<'_>, batch: RecordBatch) -> PyResult<Py<PyAny>> {
    let schema = batch.schema();
    Ok(arrow_pyarrow::Table::try_new(vec![batch], schema)
        .map_err(|e| PyValueError::new_err(e.to_string()))?
        .into_pyarrow(py)?
        .unbind())
}

/// How customers are valued, as the command line's `--model` and `--margin-rate` give it:
/// margins and retention without a model file, else the purchase model it holds.
fn valuation(model: Option<PathBuf>, margin_rate: Option<f64>) -> crv::Result<Valuation> {
    match model {
        Some(path) => Ok(Valuation::Purchases(Arc::new(ValueModel::read(
            &path,
            margin_rate.unwrap_or(DEFAULT_MARGIN_RATE),
        )?))),
        None => Ok(Valuation::Retention),
    }
}

/// See `crv.score` (crv/__init__.py).
#[pyfunction]
#[pyo3(signature = (customers, discount, horizon, tier_cuts, model, margin_rate))]
fn score(
    py: Python<'_>,
    customers: &Bound<'_, PyAny>,
    discount: f64,
    horizon: &str,
    tier_cuts: (f64, f64),
    model: Option<PathBuf>,
    margin_rate: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let params = params(discount, horizon).map_err(raise)?;
    let scheme = scheme(tier_cuts).map_err(raise)?;
    let valuation = valuation(model, margin_rate).map_err(raise)?;
    let batch = match (Customers::extract(customers)?, &valuation) {
        // A table valued by retention is scored from its own buffers (`crv::arrow_scores`).
        (Customers::Arrow(input), Valuation::Retention) => py.detach(|| {
            let (batches, schema) = input.into_inner();
            score_batches(&schema, &batches, params, scheme)
        }),
        (customers, _) => {
            let store = customers.store(py, Columns::Modelled)?;
            py.detach(|| {
                Table::valued(store, params, scheme, valuation)
                    .and_then(|table| scores_batch(&table))
            })
        }
    }
    .map_err(raise)?;
    to_pyarrow(py, batch)
}

/// See `crv.fit` (crv/__init__.py): the model file's JSON, written to `output` too if given.
#[pyfunction]
#[pyo3(signature = (customers, model, spend, time_unit, output))]
fn fit(
    py: Python<'_>,
    customers: &Bound<'_, PyAny>,
    model: &str,
    spend: bool,
    time_unit: Option<String>,
    output: Option<PathBuf>,
) -> PyResult<String> {
    let kind = PurchaseKind::from_name(model).ok_or_else(|| {
        raise(crv::Error::invalid(
            "model",
            format!("`{model}` is not bgnbd or pnbd"),
        ))
    })?;
    if let Some(unit) = &time_unit {
        unit.parse::<Period>()
            .map_err(|message| raise(crv::Error::invalid("time_unit", message)))?;
    }
    let customers = Customers::extract(customers)?;
    let store_path = customers.path();
    let store = customers.store(py, Columns::Modelled)?;
    let request = FitRequest {
        kind,
        spend,
        time_unit,
    };
    py.detach(|| -> crv::Result<String> {
        if let Some(path) = &output {
            check_output(
                path,
                &store_path.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
                false,
            )?;
        }
        let histories = read_histories(&store)?;
        let fitted = fit_model_file(&store, &histories, &request, None)?;
        if let Some(path) = &output {
            fitted.file.write(path)?;
        }
        Ok(fitted.file.to_json())
    })
    .map_err(raise)
}

/// See `crv.optimise` (crv/__init__.py): the JSON summary of `crv optimise --json` and the
/// assignment as a table.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (customers, campaign, contacts, discount, horizon, tier_cuts, model, margin_rate))]
fn optimise(
    py: Python<'_>,
    customers: &Bound<'_, PyAny>,
    campaign: &str,
    contacts: Option<PathBuf>,
    discount: f64,
    horizon: &str,
    tier_cuts: (f64, f64),
    model: Option<PathBuf>,
    margin_rate: Option<f64>,
) -> PyResult<(String, Py<PyAny>)> {
    let params = params(discount, horizon).map_err(raise)?;
    let scheme = scheme(tier_cuts).map_err(raise)?;
    let valuation = valuation(model, margin_rate).map_err(raise)?;
    let definition = CampaignDefinition::parse(campaign.as_bytes(), "<campaign>").map_err(raise)?;
    let store = Customers::extract(customers)?.store(py, Columns::All)?;
    let (summary, assignment) = py
        .detach(|| -> crv::Result<_> {
            let table = Table::valued(store, params, scheme, valuation)?;
            let history = match &contacts {
                Some(path) => ContactHistory::read(path, table.store())?,
                None => ContactHistory::default(),
            };
            let prepare = Instant::now();
            let cancel = Cancel::default();
            let bound = definition.bind(&table, &history, now_micros(), &cancel)?;
            let plan = bound.solve(prepare.elapsed(), cancel);
            let summary = plan.summary();
            match plan.plan() {
                Some(solved) => Ok((summary.to_string(), plan.assignment_batch(solved))),
                None => Err(crv::Error::invalid(
                    "campaign",
                    format!("infeasible: {}", summary["infeasible"]),
                )),
            }
        })
        .map_err(raise)?;
    Ok((summary, to_pyarrow(py, assignment)?))
}

/// See `crv.select` (crv/__init__.py): the JSON summary of `crv select --json` and a table of
/// the chosen customer ids.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (customers, budget, cost, r#where, discount, horizon, resource_scale, time_limit, model, margin_rate))]
fn select(
    py: Python<'_>,
    customers: &Bound<'_, PyAny>,
    budget: f64,
    cost: String,
    r#where: String,
    discount: f64,
    horizon: &str,
    resource_scale: f64,
    time_limit: f64,
    model: Option<PathBuf>,
    margin_rate: Option<f64>,
) -> PyResult<(String, Py<PyAny>)> {
    let params = params(discount, horizon).map_err(raise)?;
    let valuation = valuation(model, margin_rate).map_err(raise)?;
    let request = SelectionRequest {
        campaign: CampaignSpec {
            budget,
            cost_column: cost,
            resource_scale,
            filter: r#where,
            limits: SolveLimits::within_seconds(time_limit).map_err(raise)?,
        },
        params,
    };
    let store = Customers::extract(customers)?.store(py, Columns::All)?;
    let (summary, chosen) = py
        .detach(|| -> crv::Result<_> {
            let table = Table::valued(store, params, TierScheme::default(), valuation)?;
            let targets = request.bind(&table)?.select(&table)?;
            let chosen = id_array(&table, targets.selection.rows.iter().copied());
            Ok((report::selection_summary(&targets).to_string(), chosen))
        })
        .map_err(raise)?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "customer_id",
        chosen.data_type().clone(),
        false,
    )]));
    let batch = RecordBatch::try_new(schema, vec![chosen]).expect("one id column, as declared");
    Ok((summary, to_pyarrow(py, batch)?))
}

/// A store file opened with a memory map (see `crv.Store`).
#[pyclass(frozen, module = "crv")]
struct Store {
    store: Arc<crv::Store>,
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (path, verify = false))]
    fn open(py: Python<'_>, path: std::path::PathBuf, verify: bool) -> PyResult<Self> {
        let store = py
            .detach(|| -> crv::Result<_> {
                let store = crv::Store::open(&path)?;
                if verify {
                    store.verify()?;
                }
                Ok(store)
            })
            .map_err(raise)?;
        Ok(Store {
            store: Arc::new(store),
        })
    }

    /// Number of customers.
    #[getter]
    fn rows(&self) -> usize {
        self.store.rows()
    }

    /// The column names, `customer_id` first.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.store
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.store.rows()
    }

    fn __repr__(&self) -> String {
        match self.store.path() {
            Some(path) => format!(
                "crv.Store({:?}, rows={})",
                path.display().to_string(),
                self.store.rows()
            ),
            None => format!("crv.Store(rows={})", self.store.rows()),
        }
    }
}

/// Sizes rayon's global pool from `OMP_NUM_THREADS` when it holds a positive whole number.
fn size_pool_from_environment() {
    let threads = std::env::var("OMP_NUM_THREADS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&threads| threads > 0);
    if let Some(threads) = threads {
        // Fails only when the pool already exists (another extension built it): keep that one.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
}

/// The native module behind the `crv` package.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    size_pool_from_environment();
    module.add("CrvError", module.py().get_type::<CrvError>())?;
    module.add_class::<Store>()?;
    module.add_function(wrap_pyfunction!(score, module)?)?;
    module.add_function(wrap_pyfunction!(select, module)?)?;
    module.add_function(wrap_pyfunction!(fit, module)?)?;
    module.add_function(wrap_pyfunction!(optimise, module)?)?;
    spark::register(module)?;
    Ok(())
}
