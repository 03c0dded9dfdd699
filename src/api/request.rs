//! The request bodies, decoded by pure functions on bytes (so the `api_request` fuzz target
//! and the handlers run the same code): a lookup as JSON or bincode, a selection and a
//! simulation as JSON. JSON
//! objects are read field by field with serde's visitor, without a `serde_json::Value` tree,
//! so every error names its field and fields nobody asked for are rejected.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value;

use super::binary::{self, LookupRequest};
use super::wire::{
    ApiError, DEFAULT_MAX_IDS, DEFAULT_TIME_LIMIT_MS, MAX_LOOKUP_IDS, MAX_SIMULATE_SCENARIOS,
    MAX_TIME_LIMIT_MS,
};
use crate::campaign::definition::CampaignDefinition;
use crate::campaign::simulate::{
    FrontierSpec, LimitGrid, ResourceFrontierSpec, ScenarioSet, SimulateOptions, frontier,
};
use crate::campaign::{
    CampaignSpec, DEFAULT_COST_COLUMN, DEFAULT_RESOURCE_SCALE, SelectionRequest,
};
use crate::cancel::Cancel;
use crate::model::{Horizon, ScoreParams};
use crate::select::SolveLimits;

/// A JSON batch lookup: the customer ids as written, answered in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLookup {
    /// Whole numbers, or text ids as strings.
    pub ids: Vec<LookupKey>,
}

/// One id of a JSON lookup: a JSON number (a whole-number id) or a string (a text id, or a
/// whole number written as text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged, expecting = "a customer id (a whole number or a string)")]
pub enum LookupKey {
    /// A whole number from 0 to 2^64 - 1.
    Number(u64),
    /// A string.
    Text(String),
}

impl LookupKey {
    /// The id as a path would write it.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            LookupKey::Number(id) => id.to_string().into(),
            LookupKey::Text(id) => id.into(),
        }
    }
}

/// Decodes `{"ids": [...]}` and checks the number of ids (at most [`MAX_LOOKUP_IDS`]).
pub fn lookup_from_json(bytes: &[u8]) -> Result<JsonLookup, ApiError> {
    let request = decode_object(bytes, LookupVisitor)?;
    check_count(request.ids.len())?;
    Ok(request)
}

/// Decodes a bincode [`LookupRequest`] of at most `max_bytes` ([`binary::decode_request`]) and
/// checks the number of ids; a malformed body is a 400 `malformed_bincode` with the decoder's
/// message.
pub fn lookup_from_bincode(bytes: &[u8], max_bytes: usize) -> Result<LookupRequest, ApiError> {
    let request = binary::decode_request(bytes, max_bytes)
        .map_err(|error| ApiError::bad_request("malformed_bincode", error.to_string()))?;
    check_lookup_ids(request)
}

fn check_lookup_ids(request: LookupRequest) -> Result<LookupRequest, ApiError> {
    check_count(request.ids.len())?;
    Ok(request)
}

fn check_count(ids: usize) -> Result<(), ApiError> {
    if ids > MAX_LOOKUP_IDS {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("field `ids`: {ids} ids, at most {MAX_LOOKUP_IDS} per request"),
        ));
    }
    Ok(())
}

/// `POST /v1/select`'s body: a campaign, and optionally scoring parameters of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectRequest {
    /// Total resource available, in the cost column's units (`budget`, required).
    pub budget: f64,
    /// The numeric column of each customer's resource use (`cost`, default
    /// [`DEFAULT_COST_COLUMN`]).
    pub cost: String,
    /// Integer resource units per cost unit (`resource_scale`, default
    /// [`DEFAULT_RESOURCE_SCALE`]).
    pub resource_scale: f64,
    /// Who may be targeted, a `--where` expression (`where`, default: everyone).
    pub filter: String,
    /// The request's time limit in milliseconds, 1 to [`MAX_TIME_LIMIT_MS`] (`time_limit_ms`,
    /// default [`DEFAULT_TIME_LIMIT_MS`]): the solver stops at it with its best selection and
    /// a certified gap; a filter evaluation still going then ends the request with 504.
    pub time_limit_ms: u64,
    /// Most target ids in the JSON answer (`max_ids`, default [`DEFAULT_MAX_IDS`]).
    pub max_ids: usize,
    /// Discount rate to score with instead of the served one (`discount`).
    pub discount: Option<f64>,
    /// Horizon to score with instead of the served one (`horizon`: periods or `"inf"`).
    pub horizon: Option<Horizon>,
}

impl SelectRequest {
    /// Decodes the JSON body; the horizon is parsed here, the time limit by
    /// [`SelectRequest::selection`], every other domain when the selection is bound to the
    /// served table ([`SelectionRequest::bind`]).
    pub fn from_json(bytes: &[u8]) -> Result<SelectRequest, ApiError> {
        let fields = decode_object(bytes, SelectVisitor)?;
        let horizon = match fields.horizon {
            None => None,
            Some(Value::String(text)) => Some(text.parse()?),
            Some(Value::Number(number)) => Some(number.to_string().parse()?),
            Some(other) => {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    format!("field `horizon`: {other} is not a number of periods or \"inf\""),
                ));
            }
        };
        Ok(SelectRequest {
            budget: required(fields.budget, "budget")?,
            cost: fields
                .cost
                .unwrap_or_else(|| DEFAULT_COST_COLUMN.to_string()),
            resource_scale: fields.resource_scale.unwrap_or(DEFAULT_RESOURCE_SCALE),
            filter: fields.filter.unwrap_or_default(),
            time_limit_ms: fields.time_limit_ms.unwrap_or(DEFAULT_TIME_LIMIT_MS),
            max_ids: fields.max_ids.unwrap_or(DEFAULT_MAX_IDS),
            discount: fields.discount,
            horizon,
        })
    }

    /// The selection to bind to the served table: the campaign, whose work stops when
    /// `cancel` says so (the handler gives it the request's deadline), and `served` with this
    /// request's discount and horizon. Checks the time limit; the rest is checked by
    /// [`SelectionRequest::bind`], as for `crv select`.
    pub fn selection(
        &self,
        served: &ScoreParams,
        cancel: Cancel,
    ) -> Result<SelectionRequest, ApiError> {
        check_time_limit(self.time_limit_ms)?;
        Ok(SelectionRequest {
            campaign: CampaignSpec {
                budget: self.budget,
                cost_column: self.cost.clone(),
                resource_scale: self.resource_scale,
                filter: self.filter.clone(),
                limits: SolveLimits {
                    time_limit: Some(Duration::from_millis(self.time_limit_ms)),
                    cancel,
                    ..SolveLimits::default()
                },
            },
            params: ScoreParams {
                discount: self.discount.unwrap_or(served.discount),
                horizon: self.horizon.unwrap_or(served.horizon),
            },
        })
    }
}

/// Checks a `time_limit_ms`: 1 to [`MAX_TIME_LIMIT_MS`].
fn check_time_limit(time_limit_ms: u64) -> Result<(), ApiError> {
    if !(1..=MAX_TIME_LIMIT_MS).contains(&time_limit_ms) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "field `time_limit_ms`: {time_limit_ms} is not from 1 to {MAX_TIME_LIMIT_MS} \
                 milliseconds"
            ),
        ));
    }
    Ok(())
}

/// `POST /v1/simulate`'s body: `crv simulate`'s scenarios document (`scenarios` and/or
/// `sweep`), plus `frontier` (`{"scenario", "points"}`, both optional) and `time_limit_ms`,
/// the time limit of the whole request.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    /// The scenarios, at most [`MAX_SIMULATE_SCENARIOS`]; errors name `request body`.
    pub scenarios: ScenarioSet,
    /// The frontier to trace, if asked for.
    pub frontier: Option<FrontierSpec>,
    /// The request's time limit in milliseconds, 1 to [`MAX_TIME_LIMIT_MS`]: a selection
    /// running then stops with its best answer and a certified gap; scenarios and frontier
    /// points not yet computed end the request with 504.
    pub time_limit_ms: u64,
}

/// `POST /v1/simulate`'s body: scenarios ([`SimulateRequest`]), or, when it has `campaign`, a
/// campaign traced along one of its resources ([`CampaignFrontierRequest`]).
#[derive(Debug, Clone)]
pub enum SimulateBody {
    /// What-if scenarios, and perhaps one's frontier.
    Scenarios(SimulateRequest),
    /// A campaign's frontier along one resource.
    Campaign(CampaignFrontierRequest),
}

impl SimulateBody {
    /// Decodes and checks the body; a scenario error is 400 `invalid_scenario` naming the
    /// scenario and the field, a campaign error 400 `invalid_campaign` naming its field.
    pub fn from_json(bytes: &[u8]) -> Result<SimulateBody, ApiError> {
        let fields: serde_json::Map<String, Value> =
            serde_json::from_slice(bytes).map_err(json_error)?;
        if fields.contains_key("campaign") {
            CampaignFrontierRequest::from_fields(fields).map(SimulateBody::Campaign)
        } else {
            SimulateRequest::from_fields(fields).map(SimulateBody::Scenarios)
        }
    }
}

/// A field's serde error as a 400 naming the field.
fn field_error(name: &str, error: serde_json::Error) -> ApiError {
    ApiError::bad_request("malformed_json", format!("field `{name}`: {error}"))
}

/// The request's `time_limit_ms` (default [`DEFAULT_TIME_LIMIT_MS`]), taken out of `fields`
/// and checked.
fn take_time_limit(fields: &mut serde_json::Map<String, Value>) -> Result<u64, ApiError> {
    let time_limit_ms = match fields.remove("time_limit_ms") {
        None | Some(Value::Null) => DEFAULT_TIME_LIMIT_MS,
        Some(value) => {
            serde_json::from_value(value).map_err(|e| field_error("time_limit_ms", e))?
        }
    };
    check_time_limit(time_limit_ms)?;
    Ok(time_limit_ms)
}

/// A 400 `unknown_field` for the first field of `fields` not in `known`.
fn refuse_unknown(fields: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        Some(name) => Err(ApiError::bad_request(
            "unknown_field",
            format!("field `{name}` is not part of this request"),
        )),
        None => Ok(()),
    }
}

/// `POST /v1/simulate` with `campaign`: a campaign definition (as `POST
/// /v1/campaigns/optimise` takes it) solved at each limit of one resource, `frontier`
/// (`{"resource", "points" or "limits", "spend"}`), and `time_limit_ms`, the time limit of the
/// whole request.
#[derive(Debug, Clone)]
pub struct CampaignFrontierRequest {
    /// The campaign; errors name `request body, campaign` and the field.
    pub definition: CampaignDefinition,
    /// The resource, its limits and the spend resource.
    pub frontier: ResourceFrontierSpec,
    /// The request's time limit in milliseconds, 1 to [`MAX_TIME_LIMIT_MS`]; each solve also
    /// stops at the definition's own `time_limit_ms`.
    pub time_limit_ms: u64,
}

/// `frontier` of a [`CampaignFrontierRequest`] as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResourceFrontier {
    resource: String,
    points: Option<usize>,
    limits: Option<Vec<f64>>,
    spend: Option<String>,
}

impl CampaignFrontierRequest {
    fn from_fields(
        mut fields: serde_json::Map<String, Value>,
    ) -> Result<CampaignFrontierRequest, ApiError> {
        let time_limit_ms = take_time_limit(&mut fields)?;
        refuse_unknown(&fields, &["campaign", "frontier"])?;
        let campaign = fields.remove("campaign").unwrap_or_default();
        let definition = CampaignDefinition::parse(
            &serde_json::to_vec(&campaign).expect("a JSON value always encodes"),
            "request body, campaign",
        )?;
        let raw: RawResourceFrontier = match fields.remove("frontier") {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    "field `frontier` is required with `campaign`: {\"resource\", \"points\" or \"limits\"[, \"spend\"]}",
                ));
            }
            Some(value) => serde_json::from_value(value).map_err(|e| field_error("frontier", e))?,
        };
        let grid = match (raw.points, raw.limits) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    "field `frontier`: give `points` or `limits`, not both",
                ));
            }
            (_, Some(limits)) => LimitGrid::Limits(limits),
            (points, None) => LimitGrid::Points(points.unwrap_or(frontier::DEFAULT_POINTS)),
        };
        Ok(CampaignFrontierRequest {
            definition,
            frontier: ResourceFrontierSpec {
                resource: raw.resource,
                grid,
                spend: raw.spend,
            },
            time_limit_ms,
        })
    }
}

impl SimulateRequest {
    /// Decodes and checks the body's fields.
    fn from_fields(
        mut fields: serde_json::Map<String, Value>,
    ) -> Result<SimulateRequest, ApiError> {
        let field = field_error;
        let frontier = match fields.remove("frontier") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_json::from_value::<FrontierSpec>(value).map_err(|e| field("frontier", e))?,
            ),
        };
        if let Some(frontier) = &frontier {
            frontier::check_points(frontier.points, "frontier.points")?;
        }
        let time_limit_ms = take_time_limit(&mut fields)?;
        refuse_unknown(&fields, &["scenarios", "sweep"])?;
        let scenarios = ScenarioSet::from_json_within(
            &Value::Object(fields),
            "request body",
            MAX_SIMULATE_SCENARIOS,
        )?;
        Ok(SimulateRequest {
            scenarios,
            frontier,
            time_limit_ms,
        })
    }

    /// What the simulation computes besides the rows, and its solver limits; its work stops
    /// when `cancel` says so (the handler gives it the request's deadline).
    pub fn options(&self, cancel: Cancel) -> SimulateOptions {
        SimulateOptions {
            frontier: self.frontier.clone(),
            limits: SolveLimits {
                time_limit: Some(Duration::from_millis(self.time_limit_ms)),
                cancel,
                ..SolveLimits::default()
            },
        }
    }
}

/// Runs `visitor` over `bytes`, which must hold one JSON object and nothing after it.
fn decode_object<'de, V: Visitor<'de>>(bytes: &'de [u8], visitor: V) -> Result<V::Value, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    de::Deserializer::deserialize_map(&mut deserializer, visitor)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(json_error)
}

/// serde_json's error as a 400: syntax errors say where the JSON breaks, `unknown_field` names
/// the field nobody asked for, anything else names the field at fault.
fn json_error(error: serde_json::Error) -> ApiError {
    if error.is_syntax() || error.is_eof() {
        return ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {error}"),
        );
    }
    let message = error.to_string();
    // serde's wording for `de::Error::unknown_field`, raised by the field enums below.
    let code = if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "malformed_json"
    };
    ApiError::bad_request(code, message)
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::bad_request("malformed_json", format!("field `{name}` is required"))
    })
}

/// Reads the value of field `name` into `slot` (`null` leaves it empty), naming the field in
/// any error; a field given twice is an error.
fn take<'de, A, T>(map: &mut A, name: &'static str, slot: &mut Option<T>) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = map
        .next_value::<Option<T>>()
        .map_err(|error| de::Error::custom(format_args!("field `{name}`: {error}")))?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum LookupField {
    Ids,
}

struct LookupVisitor;

impl<'de> Visitor<'de> for LookupVisitor {
    type Value = JsonLookup;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object {\"ids\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonLookup, A::Error> {
        let mut ids = None;
        while let Some(field) = map.next_key()? {
            match field {
                LookupField::Ids => take(&mut map, "ids", &mut ids)?,
            }
        }
        let ids = ids.ok_or_else(|| de::Error::custom("field `ids` is required"))?;
        Ok(JsonLookup { ids })
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum SelectField {
    Budget,
    Cost,
    ResourceScale,
    Where,
    TimeLimitMs,
    MaxIds,
    Discount,
    Horizon,
}

/// The select body's fields as given; `horizon` stays a JSON value (a number or `"inf"`).
#[derive(Default)]
struct SelectFields {
    budget: Option<f64>,
    cost: Option<String>,
    resource_scale: Option<f64>,
    filter: Option<String>,
    time_limit_ms: Option<u64>,
    max_ids: Option<usize>,
    discount: Option<f64>,
    horizon: Option<Value>,
}

struct SelectVisitor;

impl<'de> Visitor<'de> for SelectVisitor {
    type Value = SelectFields;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object with a `budget`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SelectFields, A::Error> {
        let mut fields = SelectFields::default();
        while let Some(field) = map.next_key()? {
            match field {
                SelectField::Budget => take(&mut map, "budget", &mut fields.budget)?,
                SelectField::Cost => take(&mut map, "cost", &mut fields.cost)?,
                SelectField::ResourceScale => {
                    take(&mut map, "resource_scale", &mut fields.resource_scale)?
                }
                SelectField::Where => take(&mut map, "where", &mut fields.filter)?,
                SelectField::TimeLimitMs => {
                    take(&mut map, "time_limit_ms", &mut fields.time_limit_ms)?
                }
                SelectField::MaxIds => take(&mut map, "max_ids", &mut fields.max_ids)?,
                SelectField::Discount => take(&mut map, "discount", &mut fields.discount)?,
                SelectField::Horizon => take(&mut map, "horizon", &mut fields.horizon)?,
            }
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T: fmt::Debug>(result: Result<T, ApiError>) -> (&'static str, String) {
        let error = result.unwrap_err();
        (error.code, error.message)
    }

    #[test]
    fn lookup_json_errors_name_the_field() {
        for (body, code, fragment) in [
            (&b"{\"ids\": [1, 2"[..], "malformed_json", "line 1 column"),
            (b"[1, 2]", "malformed_json", "JSON object"),
            (
                b"{\"ids\": [true]}",
                "malformed_json",
                "field `ids`: a customer id (a whole number or a string)",
            ),
            (b"{}", "malformed_json", "field `ids` is required"),
            (b"{\"ids\": [], \"id\": 1}", "unknown_field", "field `id`"),
            (
                b"{\"ids\": [], \"ids\": [1]}",
                "malformed_json",
                "duplicate field `ids`",
            ),
            (b"{\"ids\": []} x", "malformed_json", "trailing characters"),
        ] {
            let (got_code, message) = error_of(lookup_from_json(body));
            assert_eq!(got_code, code, "{message}");
            assert!(
                message.contains(fragment),
                "`{fragment}` not in `{message}`"
            );
        }
        assert_eq!(
            lookup_from_json(b"{\"ids\": [1, 18446744073709551615, \"C-7\", \"8\"]}").unwrap(),
            JsonLookup {
                ids: vec![
                    LookupKey::Number(1),
                    LookupKey::Number(u64::MAX),
                    LookupKey::Text("C-7".to_string()),
                    LookupKey::Text("8".to_string()),
                ]
            }
        );
        // A negative number is neither a whole-number id nor a string.
        assert!(lookup_from_json(b"{\"ids\": [-1]}").is_err());
    }

    #[test]
    fn select_json_defaults_and_horizon_forms() {
        let request = SelectRequest::from_json(b"{\"budget\": 10}").unwrap();
        assert_eq!(request.cost, "cost");
        assert_eq!(request.resource_scale, 100.0);
        assert_eq!(request.max_ids, DEFAULT_MAX_IDS);
        assert_eq!(request.horizon, None);
        for (horizon, expected) in [
            ("5", Horizon::Periods(5)),
            ("\"7\"", Horizon::Periods(7)),
            ("\"inf\"", Horizon::Infinite),
        ] {
            let body = format!("{{\"budget\": 1, \"horizon\": {horizon}}}");
            let request = SelectRequest::from_json(body.as_bytes()).unwrap();
            assert_eq!(request.horizon, Some(expected));
        }
    }

    #[test]
    fn select_json_rejects_bad_scoring_parameters_naming_the_field() {
        let served = ScoreParams::default();
        for (body, fragment) in [
            (&b"{\"budget\": 1, \"horizon\": 0}"[..], "horizon"),
            (b"{\"budget\": 1, \"horizon\": \"abc\"}", "horizon"),
            (b"{\"budget\": 1, \"horizon\": true}", "horizon"),
        ] {
            let (_, message) = error_of(SelectRequest::from_json(body));
            assert!(message.contains(fragment), "{message}");
        }
        let negative = SelectRequest::from_json(b"{\"budget\": 1, \"discount\": -0.5}").unwrap();
        let selection = negative.selection(&served, Cancel::default()).unwrap();
        let (code, message) = error_of(selection.params.validate().map_err(ApiError::from));
        assert_eq!(code, "invalid_parameter");
        assert!(message.contains("discount"), "{message}");
        let (_, message) = error_of(SelectRequest::from_json(
            b"{\"budget\": 1, \"discount\": \"abc\"}",
        ));
        assert!(message.contains("field `discount`"), "{message}");
    }
}
