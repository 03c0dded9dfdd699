//! The scenario type, its defaults (docs/model.md's), and the scenarios JSON: a list of scenario
//! objects and/or a sweep expanded to its cartesian product. Every error names the file, the
//! scenario (by name, `#k` for the k-th unnamed one, or `sweep`) and the field.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::campaign::filter::Filter;
use crate::campaign::{DEFAULT_COST_COLUMN, DEFAULT_RESOURCE_SCALE};
use crate::error::{Error, Result};
use crate::model::{Horizon, ScoreParams};

/// Every field a scenario may set, in results order.
pub const FIELDS: [&str; 14] = [
    "name",
    "discount",
    "horizon",
    "margin_multiplier",
    "retention_shift",
    "cost",
    "cost_multiplier",
    "resource_scale",
    "budget",
    "response_rate",
    "retention_uplift",
    "margin_uplift",
    "objective",
    "where",
];

pub use crate::limits::MAX_SCENARIOS;

/// What a scenario's selection maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The plain relationship value: docs/model.md's `P = sum CRV` of the targets.
    Crv,
    /// The expected incremental value `delta` of contacting the targets.
    Incremental,
}

/// The probability that a contacted customer responds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResponseRate {
    /// The same probability in [0, 1] for everyone.
    Constant(f64),
    /// A numeric column of the store with one probability in [0, 1] per customer.
    Column(String),
}

/// One what-if: scoring parameters and a campaign. Built by [`ScenarioSet::parse`], which
/// fills the defaults and checks every domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Unique within its set; generated for sweep members (`field=value ...`).
    pub name: String,
    /// Scoring: discount rate and horizon (default 0.10 and 5 periods).
    pub score: ScoreParams,
    /// Factor on every customer's margin, finite and >= 0 (default 1).
    pub margin_multiplier: f64,
    /// Added to every customer's retention, clamped to [0, 1]; in [-1, 1] (default 0).
    pub retention_shift: f64,
    /// The numeric column with each customer's contact cost (default `cost`).
    pub cost: String,
    /// Factor on every contact cost, finite and > 0 (default 1); spend is in multiplied cost.
    pub cost_multiplier: f64,
    /// Integer resource units per cost unit (default 100: cents).
    pub resource_scale: f64,
    /// Total spend allowed, in cost units, finite and >= 0; `None` (the default): unlimited.
    pub budget: Option<f64>,
    /// Response probability of a contacted customer (default 1).
    pub response_rate: ResponseRate,
    /// Added to a responder's retention, capped at 1; in [0, 1] (default 0).
    pub retention_uplift: f64,
    /// Relative margin increase of a responder, finite and > -1 (default 0).
    pub margin_uplift: f64,
    /// What the selection maximises (default: `incremental` when an uplift is given, else `crv`).
    pub objective: Objective,
    /// A `--where` expression restricting who may be contacted (default: everyone).
    pub filter: String,
}

impl Scenario {
    /// Whether the scenario gives responders any uplift.
    pub fn has_uplift(&self) -> bool {
        self.retention_uplift != 0.0 || self.margin_uplift != 0.0
    }
}

/// The scenarios of one file or request, in results order: `scenarios` first, then the
/// sweep's members.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSet {
    /// Where the scenarios came from (a path, or `request body`), for error messages.
    pub file: String,
    /// At least one, at most [`MAX_SCENARIOS`], names unique.
    pub scenarios: Vec<Scenario>,
}

impl ScenarioSet {
    /// Parses a scenarios document (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<ScenarioSet> {
        let value: Value = serde_json::from_str(text).map_err(|e| Error::Scenarios {
            file: file.to_owned(),
            message: format!("not valid JSON: {e}"),
        })?;
        ScenarioSet::from_json(&value, file)
    }

    /// The scenarios of a JSON object with `scenarios` (a list of scenario objects) and/or
    /// `sweep` (field -> list of values: the cartesian product, fields in alphabetical order,
    /// the last varying fastest); at most [`MAX_SCENARIOS`].
    pub fn from_json(value: &Value, file: &str) -> Result<ScenarioSet> {
        ScenarioSet::from_json_within(value, file, MAX_SCENARIOS)
    }

    /// [`ScenarioSet::from_json`] with at most `max_scenarios` scenarios, sweep members
    /// included: a sweep is counted before it is expanded, and the error names this cap.
    pub fn from_json_within(
        value: &Value,
        file: &str,
        max_scenarios: usize,
    ) -> Result<ScenarioSet> {
        let whole = |message: String| Error::Scenarios {
            file: file.to_owned(),
            message,
        };
        let object = value
            .as_object()
            .ok_or_else(|| whole(format!("expected a JSON object, found {}", kind(value))))?;
        if let Some(key) = object
            .keys()
            .find(|k| !["scenarios", "sweep"].contains(&k.as_str()))
        {
            return Err(whole(format!(
                "unknown key `{key}` (expected `scenarios` and/or `sweep`)"
            )));
        }
        let mut scenarios = Vec::new();
        if let Some(list) = object.get("scenarios") {
            let list = list.as_array().ok_or_else(|| {
                whole(format!("`scenarios` must be a list, found {}", kind(list)))
            })?;
            for (index, item) in list.iter().enumerate() {
                let label = label_of(item, index);
                let fields = item.as_object().ok_or_else(|| {
                    field_error(
                        file,
                        &label,
                        "-",
                        format!("expected an object, found {}", kind(item)),
                    )
                })?;
                check_count(scenarios.len() + 1, max_scenarios, file)?;
                scenarios.push(parse_scenario(fields, label, file)?);
            }
        }
        if let Some(sweep) = object.get("sweep") {
            scenarios.extend(expand_sweep(sweep, scenarios.len(), max_scenarios, file)?);
        }
        if scenarios.is_empty() {
            return Err(whole(
                "no scenarios: give `scenarios` and/or `sweep`".to_owned(),
            ));
        }
        let mut names: Vec<(&str, usize)> = scenarios
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(field_error(
                file,
                pair[0].0,
                "name",
                format!(
                    "scenarios {} and {} have the same name; names must be unique",
                    pair[0].1 + 1,
                    pair[1].1 + 1
                ),
            ));
        }
        Ok(ScenarioSet {
            file: file.to_owned(),
            scenarios,
        })
    }
}

/// A [`Error::Scenario`].
pub(crate) fn field_error(file: &str, scenario: &str, field: &str, message: String) -> Error {
    Error::Scenario {
        file: file.to_owned(),
        scenario: scenario.to_owned(),
        field: field.to_owned(),
        message,
    }
}

fn check_count(count: usize, max_scenarios: usize, file: &str) -> Result<()> {
    if count > max_scenarios {
        return Err(Error::Scenarios {
            file: file.to_owned(),
            message: format!("{count} scenarios, at most {max_scenarios}"),
        });
    }
    Ok(())
}

/// The name of a scenario object, or `#k` (1-based) when it has no string name.
fn label_of(item: &Value, index: usize) -> String {
    match item.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!("#{}", index + 1),
    }
}

/// The JSON kind of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The sweep's members: one scenario per combination, named `field=value ...`.
fn expand_sweep(
    sweep: &Value,
    before: usize,
    max_scenarios: usize,
    file: &str,
) -> Result<Vec<Scenario>> {
    let axes = sweep.as_object().ok_or_else(|| Error::Scenarios {
        file: file.to_owned(),
        message: format!(
            "`sweep` must be an object of field -> list, found {}",
            kind(sweep)
        ),
    })?;
    let mut lists = Vec::with_capacity(axes.len());
    let mut count = 1usize;
    for (field, values) in axes {
        if field == "name" || !FIELDS.contains(&field.as_str()) {
            return Err(field_error(file, "sweep", field, unknown_field(field)));
        }
        let values = match values.as_array() {
            Some(values) if !values.is_empty() => values,
            _ => {
                return Err(field_error(
                    file,
                    "sweep",
                    field,
                    format!(
                        "expected a non-empty list of values, found {}",
                        kind(values)
                    ),
                ));
            }
        };
        count = count.saturating_mul(values.len());
        lists.push((field, values));
    }
    check_count(before.saturating_add(count), max_scenarios, file)?;
    (0..count)
        .map(|member| {
            let mut fields = Map::new();
            let mut name = Vec::with_capacity(lists.len());
            let mut rest = member;
            for (field, values) in lists.iter().rev() {
                let value = &values[rest % values.len()];
                rest /= values.len();
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                name.push(format!("{field}={text}"));
                fields.insert((*field).clone(), value.clone());
            }
            name.reverse();
            parse_scenario(&fields, name.join(" "), file)
        })
        .collect()
}

fn unknown_field(field: &str) -> String {
    format!("unknown field `{field}` (known: {})", FIELDS.join(", "))
}

/// Reads one scenario object's fields over the defaults and checks their domains.
fn parse_scenario(fields: &Map<String, Value>, name: String, file: &str) -> Result<Scenario> {
    let error = |field: &str, message: String| field_error(file, &name, field, message);
    let number = |field: &str, value: &Value| {
        value
            .as_f64()
            .ok_or_else(|| error(field, format!("expected a number, found {}", kind(value))))
    };
    let text = |field: &str, value: &Value| {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| error(field, format!("expected a string, found {}", kind(value))))
    };
    let mut scenario = Scenario {
        name: name.clone(),
        score: ScoreParams::default(),
        margin_multiplier: 1.0,
        retention_shift: 0.0,
        cost: DEFAULT_COST_COLUMN.to_owned(),
        cost_multiplier: 1.0,
        resource_scale: DEFAULT_RESOURCE_SCALE,
        budget: None,
        response_rate: ResponseRate::Constant(1.0),
        retention_uplift: 0.0,
        margin_uplift: 0.0,
        objective: Objective::Crv,
        filter: String::new(),
    };
    let mut objective = None;
    for (field, value) in fields {
        match field.as_str() {
            "name" => {
                let given = text(field, value)?;
                if given.is_empty() {
                    return Err(error(field, "must not be empty".to_owned()));
                }
            }
            "discount" => scenario.score.discount = number(field, value)?,
            "horizon" => {
                let written = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    other => {
                        return Err(error(
                            field,
                            format!(
                                "expected a whole number of periods or \"inf\", found {}",
                                kind(other)
                            ),
                        ));
                    }
                };
                scenario.score.horizon = written
                    .parse::<Horizon>()
                    .map_err(|e| error(field, parameter_message(e)))?;
            }
            "margin_multiplier" => scenario.margin_multiplier = number(field, value)?,
            "retention_shift" => scenario.retention_shift = number(field, value)?,
            "cost" => scenario.cost = text(field, value)?,
            "cost_multiplier" => scenario.cost_multiplier = number(field, value)?,
            "resource_scale" => scenario.resource_scale = number(field, value)?,
            "budget" => {
                scenario.budget = match value {
                    Value::Null => None,
                    value => Some(number(field, value)?),
                }
            }
            "response_rate" => {
                scenario.response_rate = match value {
                    Value::String(column) => ResponseRate::Column(column.clone()),
                    value => ResponseRate::Constant(number(field, value)?),
                }
            }
            "retention_uplift" => scenario.retention_uplift = number(field, value)?,
            "margin_uplift" => scenario.margin_uplift = number(field, value)?,
            "objective" => {
                objective = Some(match text(field, value)?.as_str() {
                    "crv" => Objective::Crv,
                    "incremental" => Objective::Incremental,
                    other => {
                        return Err(error(
                            field,
                            format!("`{other}` is not an objective (`incremental` or `crv`)"),
                        ));
                    }
                })
            }
            "where" => scenario.filter = text(field, value)?,
            other => return Err(error(other, unknown_field(other))),
        }
    }
    scenario.objective = objective.unwrap_or(if scenario.has_uplift() {
        Objective::Incremental
    } else {
        Objective::Crv
    });
    check_domains(&scenario).map_err(|(field, message)| error(field, message))?;
    Ok(scenario)
}

/// The message of a parameter error, without its `invalid <name>:` prefix.
pub(crate) fn parameter_message(error: Error) -> String {
    match error {
        Error::InvalidParameter { message, .. } => message,
        other => other.to_string(),
    }
}

/// The first field outside its domain, with what is allowed.
fn check_domains(scenario: &Scenario) -> std::result::Result<(), (&'static str, String)> {
    let within = |field: &'static str, value: f64, ok: bool, allowed: &str| {
        if ok {
            Ok(())
        } else {
            Err((
                field,
                format!("{} is not {allowed}", crate::error::number(value)),
            ))
        }
    };
    let discount = scenario.score.discount;
    within(
        "discount",
        discount,
        discount.is_finite() && discount >= 0.0,
        "a finite rate >= 0",
    )?;
    let m = scenario.margin_multiplier;
    within(
        "margin_multiplier",
        m,
        m.is_finite() && m >= 0.0,
        "a finite factor >= 0",
    )?;
    let shift = scenario.retention_shift;
    within(
        "retention_shift",
        shift,
        (-1.0..=1.0).contains(&shift),
        "in [-1, 1]",
    )?;
    let c = scenario.cost_multiplier;
    within(
        "cost_multiplier",
        c,
        c.is_finite() && c > 0.0,
        "a finite factor > 0",
    )?;
    let scale = scenario.resource_scale;
    within(
        "resource_scale",
        scale,
        scale.is_finite() && scale > 0.0,
        "a finite scale > 0",
    )?;
    if let Some(budget) = scenario.budget {
        within(
            "budget",
            budget,
            budget.is_finite() && budget >= 0.0,
            "a finite budget >= 0",
        )?;
    }
    if let ResponseRate::Constant(p) = scenario.response_rate {
        within(
            "response_rate",
            p,
            (0.0..=1.0).contains(&p),
            "a probability in [0, 1]",
        )?;
    }
    let r = scenario.retention_uplift;
    within("retention_uplift", r, (0.0..=1.0).contains(&r), "in [0, 1]")?;
    let mu = scenario.margin_uplift;
    within(
        "margin_uplift",
        mu,
        mu.is_finite() && mu > -1.0,
        "a finite relative change > -1",
    )?;
    Filter::parse(&scenario.filter).map_err(|e| ("where", parameter_message(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScenarioSet> {
        ScenarioSet::parse(text, "s.json")
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_scenario_takes_the_design_defaults() {
        let set = parse(r#"{"scenarios": [{}]}"#).unwrap();
        let scenario = &set.scenarios[0];
        assert_eq!(scenario.name, "#1");
        assert_eq!(scenario.score, ScoreParams::default());
        assert_eq!(scenario.resource_scale, 100.0);
        assert_eq!(scenario.budget, None);
        assert_eq!(scenario.objective, Objective::Crv);
        assert_eq!(scenario.response_rate, ResponseRate::Constant(1.0));
    }

    #[test]
    fn an_uplift_makes_incremental_the_default_objective() {
        let set =
            parse(r#"{"scenarios": [{"retention_uplift": 0.05, "response_rate": "p"}]}"#).unwrap();
        assert_eq!(set.scenarios[0].objective, Objective::Incremental);
        assert_eq!(
            set.scenarios[0].response_rate,
            ResponseRate::Column("p".to_owned())
        );
    }

    #[test]
    fn errors_name_the_file_the_scenario_and_the_field() {
        let m = message(r#"{"scenarios": [{"name": "a"}, {"discount": -1}]}"#);
        assert!(m.contains("s.json: scenario `#2`, field `discount`"), "{m}");
        let m = message(r#"{"scenarios": [{"name": "hi", "horizon": 0}]}"#);
        assert!(
            m.contains("scenario `hi`, field `horizon`") && m.contains("at least 1"),
            "{m}"
        );
        let m = message(r#"{"scenarios": [{"discont": 0.1}]}"#);
        assert!(
            m.contains("field `discont`: unknown field `discont`"),
            "{m}"
        );
        let m = message(r#"{"scenarios": [{"objective": "profit"}]}"#);
        assert!(m.contains("`profit` is not an objective"), "{m}");
        let m = message(r#"{"scenarios": [{"response_rate": 1.5}]}"#);
        assert!(m.contains("field `response_rate`"), "{m}");
        let m = message(r#"{"scenarios": [{"where": "margin >"}]}"#);
        assert!(m.contains("field `where`"), "{m}");
        let m = message(r#"{"scenarios": [{"budget": "lots"}]}"#);
        assert!(
            m.contains("field `budget`: expected a number, found a string"),
            "{m}"
        );
        let m = message(r#"{"sweep": {"discount": [0.1, -0.5]}}"#);
        assert!(
            m.contains("scenario `discount=-0.5`, field `discount`"),
            "{m}"
        );
        let m = message(r#"{"sweep": {"discount": []}}"#);
        assert!(m.contains("scenario `sweep`, field `discount`"), "{m}");
    }

    #[test]
    fn whole_file_errors_name_the_file() {
        assert!(message("{").starts_with("s.json: not valid JSON"));
        assert!(message("{}").contains("no scenarios"));
        assert!(message(r#"{"scenario": []}"#).contains("unknown key `scenario`"));
        let m = message(r#"{"scenarios": [{"name": "x"}, {"name": "x"}]}"#);
        assert!(
            m.contains("scenario `x`, field `name`") && m.contains("1 and 2"),
            "{m}"
        );
    }

    #[test]
    fn a_sweep_expands_to_the_product_after_the_list() {
        let set = parse(
            r#"{"scenarios": [{"name": "base"}],
                "sweep": {"discount": [0.08, 0.12], "budget": [100, 200, 300], "objective": ["crv"]}}"#,
        )
        .unwrap();
        let names: Vec<&str> = set.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 7);
        assert_eq!(names[0], "base");
        assert_eq!(names[1], "budget=100 discount=0.08 objective=crv");
        assert_eq!(names[2], "budget=100 discount=0.12 objective=crv");
        assert_eq!(names[6], "budget=300 discount=0.12 objective=crv");
        assert_eq!(set.scenarios[6].budget, Some(300.0));
        assert_eq!(set.scenarios[6].score.discount, 0.12);
    }

    #[test]
    fn a_sweep_beyond_the_limit_is_refused() {
        let values: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        let list = values.join(",");
        let text = format!(r#"{{"sweep": {{"budget": [{list}], "discount": [{list}]}}}}"#);
        assert!(message(&text).contains("at most 10000"));
    }
}
