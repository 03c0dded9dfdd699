//! `model.json`: a fitted purchase model (and spend model), as `crv fit` writes it and
//! `crv score --model` reads it (README.md, "model.json").
//!
//! ```json
//! {
//!   "model": "bgnbd",
//!   "params": { "r": 0.2426, "alpha": 4.414, "a": 0.7929, "b": 2.426 },
//!   "spend": { "model": "gamma-gamma", "params": { "p": 6.249, "q": 3.745, "gamma": 15.45 } }
//! }
//! ```
//!
//! is the minimal form (`spend` optional), so parameters fitted elsewhere (lifetimes,
//! pymc-marketing, CLVTools) can be written by hand. `crv fit` adds `standard_errors`,
//! `log_likelihood` and `fit` (customers, iterations, status) to each model. Reading checks
//! every field: known names only, every parameter finite and > 0, Gamma-Gamma's q > 1 (its
//! mean spend is infinite otherwise); an error names the file and the field.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::PurchaseModel;
use super::bgnbd::BgNbd;
use super::gamma_gamma::GammaGamma;
use super::pnbd::ParetoNbd;
use crate::error::{Error, Result};
use crate::limits::MAX_MODEL_FILE_BYTES;

/// The purchase models a model file may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseKind {
    /// BG/NBD: `"bgnbd"`, parameters r, alpha, a, b.
    BgNbd,
    /// Pareto/NBD: `"pnbd"`, parameters r, alpha, s, beta.
    ParetoNbd,
}

impl PurchaseKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [PurchaseKind; 2] = [PurchaseKind::BgNbd, PurchaseKind::ParetoNbd];

    /// The name in `model.json` and in `crv fit --model`.
    pub fn name(self) -> &'static str {
        match self {
            PurchaseKind::BgNbd => BgNbd::NAME,
            PurchaseKind::ParetoNbd => ParetoNbd::NAME,
        }
    }

    /// The parameters' names, in the order of [`ModelFile::params`].
    pub fn param_names(self) -> [&'static str; 4] {
        match self {
            PurchaseKind::BgNbd => BgNbd::PARAM_NAMES,
            PurchaseKind::ParetoNbd => ParetoNbd::PARAM_NAMES,
        }
    }

    /// The kind called `name`, if any.
    pub fn from_name(name: &str) -> Option<PurchaseKind> {
        PurchaseKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// How a fit went, as `crv fit` records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitRecord {
    /// Customers fitted on (repeat buyers for a spend model).
    pub customers: u64,
    /// Their distinct histories (the terms of the likelihood's sum).
    pub distinct_histories: u64,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Whether the optimiser converged (a file `crv fit` writes always says true: it refuses
    /// to write a fit that did not).
    pub converged: bool,
    /// How the optimiser ended, in words.
    pub status: String,
}

/// A fitted model's numbers beside its parameters, all optional on reading.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitDetails<const K: usize> {
    /// Standard errors of the parameters, in their order.
    pub standard_errors: Option<[f64; K]>,
    /// The log-likelihood at the parameters.
    pub log_likelihood: Option<f64>,
    /// How the fit went.
    pub fit: Option<FitRecord>,
}

/// The spend model of a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendSection {
    /// Gamma-Gamma with its parameters.
    pub model: GammaGamma,
    /// Its standard errors, log-likelihood and fit.
    pub details: FitDetails<3>,
}

/// The contents of a `model.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// The purchase model.
    pub model: PurchaseKind,
    /// Its parameters, in the order of [`PurchaseKind::param_names`]; each finite and > 0.
    pub params: [f64; 4],
    /// Its standard errors, log-likelihood and fit.
    pub details: FitDetails<4>,
    /// The unit of `recency`, `age` and the horizon (`day`, `week`, `month`), when known.
    pub time_unit: Option<String>,
    /// The spend model, if any.
    pub spend: Option<SpendSection>,
}

/// The time units a model file may name.
pub const TIME_UNITS: [&str; 3] = ["day", "week", "month"];

/// Parameters (or standard errors) written as one JSON object, in their order.
struct Named<'a, const K: usize>(&'a [&'static str; K], &'a [f64; K]);

impl<const K: usize> Serialize for Named<'_, K> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(K))?;
        for (name, value) in self.0.iter().zip(self.1) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// One model's section as written: its fields in reading order.
#[derive(Serialize)]
struct Section<'a, const K: usize> {
    model: &'static str,
    params: Named<'a, K>,
    #[serde(skip_serializing_if = "Option::is_none")]
    standard_errors: Option<Named<'a, K>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_likelihood: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fit: Option<&'a FitRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend: Option<Box<Section<'a, 3>>>,
}

impl<'a, const K: usize> Section<'a, K> {
    fn new(
        model: &'static str,
        names: &'a [&'static str; K],
        params: &'a [f64; K],
        details: &'a FitDetails<K>,
    ) -> Self {
        Section {
            model,
            params: Named(names, params),
            standard_errors: details.standard_errors.as_ref().map(|se| Named(names, se)),
            log_likelihood: details.log_likelihood,
            fit: details.fit.as_ref(),
            time_unit: None,
            spend: None,
        }
    }
}

impl ModelFile {
    /// The model file as pretty-printed JSON (with a final newline).
    pub fn to_json(&self) -> String {
        let names = self.model.param_names();
        let spend_params = self.spend.as_ref().map(|spend| spend.model.params());
        let mut section = Section::new(self.model.name(), &names, &self.params, &self.details);
        section.time_unit = self.time_unit.as_deref();
        section.spend = self
            .spend
            .as_ref()
            .zip(spend_params.as_ref())
            .map(|(spend, params)| {
                Box::new(Section::new(
                    GammaGamma::NAME,
                    &GammaGamma::PARAM_NAMES,
                    params,
                    &spend.details,
                ))
            });
        let mut json = serde_json::to_string_pretty(&section).expect("a model serialises");
        json.push('\n');
        json
    }

    /// Writes the model file atomically (temporary file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = self.to_json();
        crate::atomic_file::write_atomically(path, |out| {
            out.write_all(json.as_bytes())
                .map_err(|e| Error::io(path, e))
        })
    }

    /// Reads and checks the model file at `path` (at most [`MAX_MODEL_FILE_BYTES`]).
    pub fn read(path: &Path) -> Result<ModelFile> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_MODEL_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > MAX_MODEL_FILE_BYTES {
            return Err(Error::ModelFile {
                file: path.display().to_string(),
                field: String::new(),
                message: format!(
                    "larger than {MAX_MODEL_FILE_BYTES} bytes; a model file is a few hundred"
                ),
            });
        }
        ModelFile::parse(&bytes, &path.display().to_string())
    }

    /// Parses and checks a model file's bytes; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<ModelFile> {
        let fail = |field: &str, message: String| Error::ModelFile {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| fail("", format!("not JSON: {e}")))?;
        let reader = Reader { fail: &fail };
        let root = reader.object(&root, "")?;
        reader.known_keys(
            root,
            "",
            &[
                "model",
                "params",
                "standard_errors",
                "log_likelihood",
                "fit",
                "time_unit",
                "spend",
            ],
        )?;
        let name = reader.string(root, "", "model")?;
        let model = PurchaseKind::from_name(name).ok_or_else(|| {
            fail(
                "model",
                format!(
                    "unknown model {}; known: {}",
                    crate::error::quote(name),
                    PurchaseKind::ALL.map(PurchaseKind::name).join(", ")
                ),
            )
        })?;
        let names = model.param_names();
        let params = reader.params(root, "", "params", &names, name)?;
        let details = reader.details(root, "", &names, name)?;
        let time_unit = match root.get("time_unit") {
            None => None,
            Some(_) => {
                let unit = reader.string(root, "", "time_unit")?;
                if !TIME_UNITS.contains(&unit) {
                    return Err(fail(
                        "time_unit",
                        format!(
                            "{} is not a time unit; use one of {}",
                            crate::error::quote(unit),
                            TIME_UNITS.join(", ")
                        ),
                    ));
                }
                Some(unit.to_string())
            }
        };
        let spend = match root.get("spend") {
            None => None,
            Some(spend) => Some(reader.spend(spend)?),
        };
        Ok(ModelFile {
            model,
            params,
            details,
            time_unit,
            spend,
        })
    }
}

/// The checks of [`ModelFile::parse`], each error naming its field through `fail`.
struct Reader<'a> {
    fail: &'a dyn Fn(&str, String) -> Error,
}

/// `prefix.key`, or `key` at the top.
fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Reader<'_> {
    fn object<'v>(&self, value: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
        value
            .as_object()
            .ok_or_else(|| (self.fail)(field, format!("is {}, not an object", kind(value))))
    }

    fn known_keys(&self, object: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<()> {
        match object.keys().find(|key| !known.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) => Err((self.fail)(
                &path(prefix, key),
                format!("unknown field; known here: {}", known.join(", ")),
            )),
        }
    }

    fn required<'v>(
        &self,
        object: &'v Map<String, Value>,
        prefix: &str,
        key: &str,
    ) -> Result<&'v Value> {
        object
            .get(key)
            .ok_or_else(|| (self.fail)(&path(prefix, key), "missing".to_string()))
    }

    fn string<'v>(
        &self,
        object: &'v Map<String, Value>,
        prefix: &str,
        key: &str,
    ) -> Result<&'v str> {
        let value = self.required(object, prefix, key)?;
        value.as_str().ok_or_else(|| {
            (self.fail)(
                &path(prefix, key),
                format!("is {}, not a string", kind(value)),
            )
        })
    }

    fn number(&self, value: &Value, field: &str) -> Result<f64> {
        value
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| (self.fail)(field, format!("is {}, not a finite number", kind(value))))
    }

    fn whole(&self, object: &Map<String, Value>, prefix: &str, key: &str) -> Result<u64> {
        let value = self.required(object, prefix, key)?;
        value.as_u64().ok_or_else(|| {
            (self.fail)(
                &path(prefix, key),
                format!("is {}, not a whole number >= 0", kind(value)),
            )
        })
    }

    /// An object holding exactly `names`, each a finite number > 0 (`positive`) or >= 0.
    fn named<const K: usize>(
        &self,
        object: &Map<String, Value>,
        prefix: &str,
        key: &str,
        names: &[&'static str; K],
        model: &str,
        positive: bool,
    ) -> Result<[f64; K]> {
        let field = path(prefix, key);
        let values = self.object(self.required(object, prefix, key)?, &field)?;
        if let Some(unknown) = values.keys().find(|k| !names.contains(&k.as_str())) {
            return Err((self.fail)(
                &path(&field, unknown),
                format!(
                    "not a parameter of {model}; its parameters are {}",
                    names.join(", ")
                ),
            ));
        }
        let mut out = [0.0; K];
        for (slot, name) in out.iter_mut().zip(names) {
            let here = path(&field, name);
            let value = self.number(self.required(values, &field, name)?, &here)?;
            if positive && value <= 0.0 || value < 0.0 {
                let bound = if positive { "> 0" } else { ">= 0" };
                return Err((self.fail)(
                    &here,
                    format!("{} is not {bound}", crate::error::number(value)),
                ));
            }
            *slot = value;
        }
        Ok(out)
    }

    fn params<const K: usize>(
        &self,
        object: &Map<String, Value>,
        prefix: &str,
        key: &str,
        names: &[&'static str; K],
        model: &str,
    ) -> Result<[f64; K]> {
        self.named(object, prefix, key, names, model, true)
    }

    fn details<const K: usize>(
        &self,
        object: &Map<String, Value>,
        prefix: &str,
        names: &[&'static str; K],
        model: &str,
    ) -> Result<FitDetails<K>> {
        let standard_errors = match object.get("standard_errors") {
            None => None,
            Some(_) => Some(self.named(object, prefix, "standard_errors", names, model, false)?),
        };
        let log_likelihood = match object.get("log_likelihood") {
            None => None,
            Some(value) => Some(self.number(value, &path(prefix, "log_likelihood"))?),
        };
        let fit = match object.get("fit") {
            None => None,
            Some(fit) => {
                let field = path(prefix, "fit");
                let fit = self.object(fit, &field)?;
                self.known_keys(
                    fit,
                    &field,
                    &[
                        "customers",
                        "distinct_histories",
                        "iterations",
                        "converged",
                        "status",
                    ],
                )?;
                let customers = self.whole(fit, &field, "customers")?;
                let distinct_histories = self.whole(fit, &field, "distinct_histories")?;
                let iterations = self.whole(fit, &field, "iterations")?;
                let converged = self.required(fit, &field, "converged")?;
                Some(FitRecord {
                    customers,
                    distinct_histories,
                    iterations,
                    converged: converged.as_bool().ok_or_else(|| {
                        (self.fail)(
                            &path(&field, "converged"),
                            format!("is {}, not true or false", kind(converged)),
                        )
                    })?,
                    status: self.string(fit, &field, "status")?.to_string(),
                })
            }
        };
        Ok(FitDetails {
            standard_errors,
            log_likelihood,
            fit,
        })
    }

    fn spend(&self, spend: &Value) -> Result<SpendSection> {
        let spend = self.object(spend, "spend")?;
        self.known_keys(
            spend,
            "spend",
            &[
                "model",
                "params",
                "standard_errors",
                "log_likelihood",
                "fit",
            ],
        )?;
        let name = self.string(spend, "spend", "model")?;
        if name != GammaGamma::NAME {
            return Err((self.fail)(
                "spend.model",
                format!(
                    "unknown spend model {}; known: {}",
                    crate::error::quote(name),
                    GammaGamma::NAME
                ),
            ));
        }
        let names = GammaGamma::PARAM_NAMES;
        let model = GammaGamma::from_params(self.params(spend, "spend", "params", &names, name)?);
        if model.q <= 1.0 {
            return Err((self.fail)(
                "spend.params.q",
                format!(
                    "{} is not > 1: the expected spend of a customer without repeat purchases \
                     would be infinite",
                    model.q
                ),
            ));
        }
        let details = self.details(spend, "spend", &names, name)?;
        Ok(SpendSection { model, details })
    }
}

/// What a JSON value is, for messages: `a string`, `null`...
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {}", crate::error::quote(s)),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// The body of the `model_file` fuzz target, compiled only with the `fuzzing` feature (enabled
/// by `fuzz/Cargo.toml` and, through a dev-dependency, by `cargo test`).
#[cfg(feature = "fuzzing")]
pub mod fuzz {
    use super::ModelFile;
    use crate::store::fuzz::Outcome;

    /// Arbitrary bytes as a model file: parse; what parses must write back to JSON that parses
    /// to the same model, every parameter finite and > 0.
    ///
    /// # Panics
    /// When a parsed model breaks a property: a parameter not finite and > 0, or a round trip
    /// through [`ModelFile::to_json`] that changes it.
    pub fn model_file(bytes: &[u8]) -> Outcome {
        let Ok(model) = ModelFile::parse(bytes, "<fuzz>") else {
            return Outcome::Refused;
        };
        let spend = model.spend.as_ref().map(|s| s.model.params());
        for value in model.params.iter().chain(spend.iter().flatten()) {
            assert!(value.is_finite() && *value > 0.0, "parameter {value}");
        }
        let again = ModelFile::parse(model.to_json().as_bytes(), "<round trip>")
            .expect("a written model file parses");
        assert_eq!(again, model, "round trip");
        Outcome::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
  "model": "bgnbd",
  "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
  "standard_errors": {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705},
  "log_likelihood": -9582.4,
  "fit": {"customers": 2357, "distinct_histories": 1300, "iterations": 22,
          "converged": true, "status": "converged"},
  "time_unit": "week",
  "spend": {"model": "gamma-gamma", "params": {"p": 6.25, "q": 3.74, "gamma": 15.44}}
}"#;

    fn error(json: &str) -> String {
        ModelFile::parse(json.as_bytes(), "model.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_minimal_form_reads() {
        let model = ModelFile::parse(
            br#"{"model": "pnbd", "params": {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}}"#,
            "m.json",
        )
        .unwrap();
        assert_eq!(model.model, PurchaseKind::ParetoNbd);
        assert_eq!(model.params, [0.55, 10.6, 0.61, 11.7]);
        assert_eq!(model.spend, None);
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let model = ModelFile::parse(FULL.as_bytes(), "m.json").unwrap();
        assert_eq!(model.details.fit.as_ref().unwrap().iterations, 22);
        assert_eq!(model.spend.as_ref().unwrap().model.gamma, 15.44);
        let json = model.to_json();
        assert!(
            json.starts_with("{\n  \"model\": \"bgnbd\",\n  \"params\": {\n    \"r\""),
            "{json}"
        );
        assert_eq!(ModelFile::parse(json.as_bytes(), "again").unwrap(), model);
    }

    #[test]
    fn bad_files_name_the_file_and_the_field() {
        let cases = [
            ("{", "model.json: not JSON"),
            ("[1]", "model.json: is an array, not an object"),
            (r#"{"params": {}}"#, "field `model`: missing"),
            (r#"{"model": "bgnbd"}"#, "field `params`: missing"),
            (
                r#"{"model": "nbd", "params": {}}"#,
                "field `model`: unknown model `nbd`; known: bgnbd, pnbd",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1}}"#,
                "field `params.b`: missing",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1, "s": 1}}"#,
                "field `params.s`: not a parameter of bgnbd",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": -2, "a": 1, "b": 1}}"#,
                "field `params.alpha`: -2 is not > 0",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": "1", "alpha": 1, "a": 1, "b": 1}}"#,
                "field `params.r`: is the string `1`, not a finite number",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1e999, "alpha": 1, "a": 1, "b": 1}}"#,
                "model.json: not JSON",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1}, "x": 1}"#,
                "field `x`: unknown field",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1},
                    "spend": {"model": "gamma-gamma", "params": {"p": 1, "q": 0.5, "gamma": 1}}}"#,
                "field `spend.params.q`: 0.5 is not > 1",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1},
                    "spend": {"model": "lognormal", "params": {}}}"#,
                "field `spend.model`: unknown spend model `lognormal`",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1},
                    "time_unit": "year"}"#,
                "field `time_unit`: `year` is not a time unit",
            ),
            (
                r#"{"model": "bgnbd", "params": {"r": 1, "alpha": 1, "a": 1, "b": 1},
                    "fit": {"customers": -1}}"#,
                "field `fit.customers`: is -1, not a whole number",
            ),
        ];
        for (json, expected) in cases {
            let message = error(json);
            assert!(message.contains(expected), "{json}: {message}");
            assert!(message.starts_with("model.json: "), "{message}");
        }
    }

    #[test]
    fn write_is_atomic_and_read_caps_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let model = ModelFile::parse(FULL.as_bytes(), "m.json").unwrap();
        model.write(&path).unwrap();
        assert_eq!(ModelFile::read(&path).unwrap(), model);
        std::fs::write(&path, vec![b' '; MAX_MODEL_FILE_BYTES as usize + 1]).unwrap();
        let message = ModelFile::read(&path).unwrap_err().to_string();
        assert!(message.contains("larger than"), "{message}");
    }
}
