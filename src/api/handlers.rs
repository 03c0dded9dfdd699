//! One function per endpoint, each in the order decode -> validate -> compute -> encode. Reads
//! of the precomputed scores answer inline; selections and simulations run on the rayon pool
//! through the admission queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::wire::{
    ApiError, Body, DEFAULT_MAX_IDS, DEFAULT_TIME_LIMIT_MS, JsonObject, MAX_LOOKUP_IDS,
    MAX_SIMULATE_SCENARIOS, MAX_TIME_LIMIT_MS, json_response, read_json_body,
};
use crate::campaign::{self, CampaignSpec};
use crate::filter::Filter;
use crate::model::{CustomerId, Horizon};
use crate::report;
use crate::select::{self, SolveLimits};
use crate::simulate::{self, FrontierSpec, ScenarioSet, SimulateOptions};

/// `GET /healthz`: the server is up and has its scores.
pub fn health() -> Response<Body> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /v1/tiers`: the scoring summary with the cut points and, per tier, count, share of
/// customers, total CRV and share of value (the shape of `crv score --json`).
pub fn tiers(state: &AppState) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &report::score_summary(state.scored(), state.params()),
    )
}

/// `GET /v1/customers/{id}`: one customer's CRV, tier, rank and percentile; 400 for an id that
/// is not a whole number, 404 for one not in the store.
pub fn customer(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let id = id.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("`{id}` is not a customer id (a whole number from 0 to 2^64 - 1)"),
        )
    })?;
    let row = state
        .store()
        .row_of(CustomerId(id))
        .ok_or_else(|| ApiError::not_found(format!("customer {id} is not in the store")))?;
    Ok(json_response(
        StatusCode::OK,
        &customer_json(state, id, row),
    ))
}

/// `POST /v1/customers/lookup` with `{"ids": [...]}` (at most [`MAX_LOOKUP_IDS`]): one entry per
/// id in request order, `{"customer_id", "found": false}` for an unknown one.
pub async fn lookup(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let mut body = JsonObject::parse(&read_json_body(request).await?)?;
    let ids: Vec<u64> = body.required("ids")?;
    body.finish()?;
    if ids.len() > MAX_LOOKUP_IDS {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "field `ids`: {} ids, at most {MAX_LOOKUP_IDS} per request",
                ids.len()
            ),
        ));
    }
    // An index probe per id: at the limit this is well under a millisecond, light enough for
    // the reactor thread.
    let customers: Vec<Value> = ids
        .iter()
        .map(|&id| match state.store().row_of(CustomerId(id)) {
            Some(row) => {
                let mut entry = customer_json(state, id, row);
                entry["found"] = Value::Bool(true);
                entry
            }
            None => json!({"customer_id": id, "found": false}),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"customers": customers}),
    ))
}

/// `POST /v1/select`: the campaign's targets under a budget, with the certificate and up to
/// `max_ids` target ids in store order. Scoring parameters other than the served ones are
/// rejected (re-scoring per request is not offered yet).
pub async fn select(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let mut body = JsonObject::parse(&read_json_body(request).await?)?;
    let budget: f64 = body.required("budget")?;
    let cost_column = body.optional("cost")?.unwrap_or_else(|| "cost".to_string());
    let resource_scale = body.optional("resource_scale")?.unwrap_or(100.0);
    let filter: String = body.optional("where")?.unwrap_or_default();
    let time_limit_ms = body
        .optional("time_limit_ms")?
        .unwrap_or(DEFAULT_TIME_LIMIT_MS);
    let max_ids = body.optional("max_ids")?.unwrap_or(DEFAULT_MAX_IDS);
    let discount: Option<f64> = body.optional("discount")?;
    let horizon: Option<Value> = body.optional("horizon")?;
    body.finish()?;

    check_served_params(state, discount, horizon)?;
    check_time_limit(time_limit_ms)?;
    select::scale_capacity(budget, resource_scale)?;
    Filter::parse(&filter)?;
    state.store().numeric(&cost_column).map_err(|error| {
        ApiError::bad_request("invalid_parameter", format!("field `cost`: {error}"))
    })?;
    let spec = CampaignSpec {
        budget,
        cost_column,
        resource_scale,
        filter,
        limits: SolveLimits {
            time_limit: Some(Duration::from_millis(time_limit_ms)),
            ..SolveLimits::default()
        },
    };

    let job_state = Arc::clone(state);
    let targets = state
        .admission()
        .run(move || campaign::select_targets(job_state.store(), job_state.scored(), &spec))
        .await??;

    let ids = state.store().ids();
    let rows = &targets.selection.rows;
    let target_ids: Vec<u64> = rows.iter().take(max_ids).map(|&row| ids[row]).collect();
    let mut summary = report::selection_summary(&targets);
    summary["ids_truncated"] = Value::Bool(rows.len() > target_ids.len());
    summary["ids"] = json!(target_ids);
    summary["time_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    Ok(json_response(StatusCode::OK, &summary))
}

/// `POST /v1/simulate`: the scenarios document of `crv simulate` (`scenarios` and/or `sweep`,
/// at most [`MAX_SIMULATE_SCENARIOS`]), plus `frontier` (`{"scenario", "points"}`, both
/// optional) and `time_limit_ms` per selection. Answers `{"results": [rows], "frontier"}` with
/// the rows `crv simulate` writes, computed by the same library call on the rayon pool.
pub async fn simulate(
    state: &Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let mut body = JsonObject::parse(&read_json_body(request).await?)?;
    let mut document = serde_json::Map::new();
    for key in ["scenarios", "sweep"] {
        if let Some(value) = body.optional::<Value>(key)? {
            document.insert(key.to_owned(), value);
        }
    }
    let frontier: Option<FrontierSpec> = body.optional("frontier")?;
    let time_limit_ms = body
        .optional("time_limit_ms")?
        .unwrap_or(DEFAULT_TIME_LIMIT_MS);
    body.finish()?;

    check_time_limit(time_limit_ms)?;
    let set = ScenarioSet::from_json(&Value::Object(document), "request body")?;
    if set.scenarios.len() > MAX_SIMULATE_SCENARIOS {
        return Err(ApiError::bad_request(
            "invalid_scenario",
            format!(
                "{} scenarios, at most {MAX_SIMULATE_SCENARIOS} per request",
                set.scenarios.len()
            ),
        ));
    }
    let options = SimulateOptions {
        frontier,
        limits: SolveLimits {
            time_limit: Some(Duration::from_millis(time_limit_ms)),
            ..SolveLimits::default()
        },
    };

    let job_state = Arc::clone(state);
    let simulation = state
        .admission()
        .run(move || simulate::simulate(job_state.store(), &set, &options))
        .await??;
    let mut answer = json!({
        "results": simulation.results,
        "scoring_ms": simulation.scoring_time.as_secs_f64() * 1e3,
        "time_ms": started.elapsed().as_secs_f64() * 1e3,
    });
    if let Some(frontier) = simulation.frontier {
        answer["frontier"] = json!(frontier);
    }
    Ok(json_response(StatusCode::OK, &answer))
}

/// 400 when a request asks for a solver time limit above [`MAX_TIME_LIMIT_MS`].
fn check_time_limit(time_limit_ms: u64) -> Result<(), ApiError> {
    if time_limit_ms > MAX_TIME_LIMIT_MS {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("field `time_limit_ms`: {time_limit_ms} exceeds {MAX_TIME_LIMIT_MS}"),
        ));
    }
    Ok(())
}

/// 400 unless `discount` and `horizon`, when given, are the ones the server scored with.
fn check_served_params(
    state: &AppState,
    discount: Option<f64>,
    horizon: Option<Value>,
) -> Result<(), ApiError> {
    let served = state.params();
    let rescoring = |field: &str, asked: &dyn std::fmt::Display, served: &dyn std::fmt::Display| {
        ApiError::bad_request(
            "invalid_parameter",
            format!(
                "field `{field}`: the server scores with {served}; {asked} would need \
                 re-scoring, which is not offered yet (omit the field)"
            ),
        )
    };
    if let Some(discount) = discount
        && discount != served.discount
    {
        return Err(rescoring("discount", &discount, &served.discount));
    }
    if let Some(horizon) = horizon {
        let text = match horizon {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            other => {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    format!("field `horizon`: {other} is not a number of periods or \"inf\""),
                ));
            }
        };
        let horizon: Horizon = text.parse()?;
        if horizon != served.horizon {
            return Err(rescoring("horizon", &horizon, &served.horizon));
        }
    }
    Ok(())
}

/// `{"customer_id", "crv", "tier", "rank", "percentile"}` of the customer at `row`.
fn customer_json(state: &AppState, id: u64, row: usize) -> Value {
    let scored = state.scored();
    json!({
        "customer_id": id,
        "crv": report::f32_json(scored.crv[row]),
        "tier": scored.tiers.tier[row].as_str(),
        "rank": scored.tiers.rank[row],
        "percentile": report::f32_json(scored.tiers.percentile[row]),
    })
}
