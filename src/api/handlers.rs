//! One function per endpoint, each in the order decode -> validate -> compute -> encode. Reads
//! of the precomputed scores answer inline, the lookups without building a JSON tree; a
//! selection (with its re-scoring, if it asks for other parameters) and a simulation run on the
//! heavy rayon pool through the admission queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::binary::{self, LookupEntry, LookupResponse};
use super::body::{Body, TargetsCsv};
use super::campaigns::RuleContacts;
use super::json::{self as lookup_json, ENTRY_BYTES};
use super::metrics;
use super::request::{self, CampaignFrontierRequest, SelectRequest, SimulateBody};
use super::request_head::{Field, Headers};
use super::wire::{
    ApiError, JSON, JSON_CONTENT_TYPE, RequestBody, json_response, names_media_type, read_body,
    response,
};
use crate::campaign::{BoundSelection, Targets, report, simulate};
use crate::cancel::Cancel;
use crate::model::{ExternalId, ScoreParams};
use crate::rfm::date::now_micros;
use crate::table::Table;

/// The media type of a streamed target list.
const CSV: &str = "text/csv";

/// `GET /healthz`: the server is up and has its scores.
pub fn health() -> Response<Body> {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /metrics`: every counter in the Prometheus text format.
pub fn metrics(state: &AppState) -> Response<Body> {
    response(
        StatusCode::OK,
        metrics::CONTENT_TYPE,
        metrics::render(state),
    )
}

/// `GET /v1/tiers`: the scoring summary with the cut points and, per tier, count, share of
/// customers, total CRV and share of value (the shape of `crv score --json`).
pub fn tiers(state: &AppState) -> Response<Body> {
    json_response(StatusCode::OK, &report::score_summary(&state.table()))
}

/// `GET /v1/customers/{id}`: one customer's CRV, tier, rank and percentile; in a store of
/// whole-number ids 400 for an id that is not one, 404 for one not in the store.
pub fn customer(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let id = state.path_id(id)?;
    let score = state.score(id.internal).ok_or_else(|| {
        ApiError::not_found(format!("customer {} is not in the store", id.external))
    })?;
    let mut out = Vec::with_capacity(ENTRY_BYTES);
    lookup_json::write_customer(&mut out, id.external, &score);
    Ok(response(StatusCode::OK, JSON_CONTENT_TYPE, out))
}

/// `POST /v1/customers/lookup`: `{"ids": [...]}` as JSON, or a bincode
/// [`binary::LookupRequest`] with `Content-Type: application/x-bincode`, at most
/// [`super::wire::MAX_LOOKUP_IDS`] ids. One entry per id in request order, in the request's
/// encoding; an unknown id is `{"customer_id", "found": false}` (JSON) or has no score
/// (bincode). Any other content type is 415.
pub async fn lookup(
    state: &AppState,
    headers: Headers<'_>,
    body: &mut RequestBody,
) -> Result<Response<Body>, ApiError> {
    let max_bytes = state.config().max_body_bytes;
    let is_bincode = names_media_type(headers, Field::ContentType, binary::MEDIA_TYPE);
    if !is_bincode && !names_media_type(headers, Field::ContentType, JSON) {
        return Err(ApiError::unsupported_media_type(
            "`application/json` or `application/x-bincode`",
        ));
    }
    let bytes = read_body(body, max_bytes).await?;
    // One batched index probe per request: at the 10,000-id limit well under a millisecond,
    // light enough for the reactor thread.
    if is_bincode {
        if state.table().store().text_ids().is_some() {
            // The bincode request carries whole numbers: in a store of text ids they would
            // name customers by their internal positions.
            return Err(ApiError::bad_request(
                "invalid_id",
                "this store's customer ids are text: look them up with JSON (`{\"ids\": [...]}`)",
            ));
        }
        let request = request::lookup_from_bincode(&bytes, max_bytes)?;
        let customers = request
            .ids
            .iter()
            .zip(state.scores(&request.ids))
            .map(|(&customer_id, served)| LookupEntry {
                customer_id,
                score: served.map(|served| served.score),
            })
            .collect();
        let answer = binary::encode(&LookupResponse { customers });
        Ok(response(StatusCode::OK, binary::CONTENT_TYPE, answer))
    } else {
        let request = request::lookup_from_json(&bytes)?;
        let mut out = Vec::with_capacity(ENTRY_BYTES * (request.ids.len() + 1));
        let entries = request
            .ids
            .iter()
            .map(|key| match key {
                request::LookupKey::Number(id) => ExternalId::Number(*id),
                request::LookupKey::Text(id) => ExternalId::Text(id),
            })
            .zip(state.scores_of_keys(&request.ids));
        lookup_json::write_lookup(&mut out, entries);
        Ok(response(StatusCode::OK, JSON_CONTENT_TYPE, out))
    }
}

/// `POST /v1/select`: the campaign's targets under a budget, with the certificate, on the
/// version of the table current when the request came (held to the end, CSV stream included).
/// The request is bound to that table before it is queued ([`crate::campaign::SelectionRequest::bind`],
/// as `crv select` does). With a `discount` or `horizon` other than the served ones, the table
/// is re-scored for this request alone. The answer says which parameters it used; as JSON it
/// carries up to `max_ids` target ids in store order, and with `Accept: text/csv` it is every
/// target as CSV, streamed, with the summary in `Crv-*` response headers.
pub async fn select(
    state: &Arc<AppState>,
    headers: Headers<'_>,
    body: &mut RequestBody,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    if !names_media_type(headers, Field::ContentType, JSON) {
        return Err(ApiError::unsupported_media_type("`application/json`"));
    }
    let request = SelectRequest::from_json(&read_body(body, state.config().max_body_bytes).await?)?;
    let cancel = request_cancel(started, request.time_limit_ms);
    // Dropped with this future: when the client goes away, the selection stops.
    let _cancel_on_drop = cancel.cancel_on_drop();
    let table = state.table();
    let selection = request
        .selection(table.params(), cancel.clone())?
        .bind(&table)?;
    let as_csv = names_media_type(headers, Field::Accept, CSV);
    let rescored = selection.rescores(&table);
    let params = *selection.params();

    let job_state = Arc::clone(state);
    let (table, targets) = state
        .admission()
        .run(&cancel, move || {
            select_on_pool(&job_state, &table, &selection, as_csv)
        })
        .await??;
    if as_csv {
        return Ok(csv_response(table, targets, &params, rescored));
    }

    let rows = &targets.selection.rows;
    let target_ids: Vec<ExternalId<'_>> = rows
        .iter()
        .take(request.max_ids)
        .map(|&row| table.customer_id(row))
        .collect();
    let mut summary = report::selection_summary(&targets);
    summary["ids_truncated"] = Value::Bool(rows.len() > target_ids.len());
    summary["ids"] = json!(target_ids);
    summary["discount"] = json!(params.discount);
    summary["horizon"] = crate::campaign::report::horizon_json(params.horizon);
    summary["rescored"] = Value::Bool(rescored);
    summary["time_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    Ok(json_response(StatusCode::OK, &summary))
}

/// `POST /v1/simulate`: the rows `crv simulate` writes for the scenarios document of the body
/// (see [`request::SimulateRequest`]), computed by the same library call on the heavy pool behind the
/// admission queue; `{"results": [rows], "frontier"}` (the frontier when asked for). A body
/// with `campaign` is a campaign traced along one resource ([`CampaignFrontierRequest`]):
/// `{"frontier": {"resource", "spend", "limit", "points", "knee"}}`, as `crv simulate
/// --campaign` traces it.
pub async fn simulate(
    state: &Arc<AppState>,
    headers: Headers<'_>,
    body: &mut RequestBody,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    if !names_media_type(headers, Field::ContentType, JSON) {
        return Err(ApiError::unsupported_media_type("`application/json`"));
    }
    let request =
        match SimulateBody::from_json(&read_body(body, state.config().max_body_bytes).await?)? {
            SimulateBody::Scenarios(request) => request,
            SimulateBody::Campaign(request) => {
                return campaign_frontier(state, request, started).await;
            }
        };
    let cancel = request_cancel(started, request.time_limit_ms);
    // Dropped with this future: when the client goes away, the simulation stops.
    let _cancel_on_drop = cancel.cancel_on_drop();
    let options = request.options(cancel.clone());
    let job_state = Arc::clone(state);
    let table = state.table();
    let simulation = state
        .admission()
        .run(&cancel, move || {
            let started = Instant::now();
            let simulation = simulate::simulate(&table, &request.scenarios, &options);
            job_state.metrics().record_simulation(started.elapsed());
            simulation
        })
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

/// `POST /v1/simulate` with `campaign`: the definition bound to the current table version
/// (contact rules over the event log's contacts, as `POST /v1/campaigns/optimise` reads them)
/// and traced along the resource on the heavy pool, within the request's `time_limit_ms`.
async fn campaign_frontier(
    state: &Arc<AppState>,
    request: CampaignFrontierRequest,
    started: Instant,
) -> Result<Response<Body>, ApiError> {
    let contacts = RuleContacts::of(state, &request.definition)?;
    let cancel = request_cancel(started, request.time_limit_ms);
    // Dropped with this future: when the client goes away, the solves stop.
    let _cancel_on_drop = cancel.cancel_on_drop();
    let job_state = Arc::clone(state);
    let job_cancel = cancel.clone();
    let table = state.table();
    let frontier = state
        .admission()
        .run(&cancel, move || -> crate::Result<_> {
            let started = Instant::now();
            let bound =
                request
                    .definition
                    .bind(&table, &contacts.history(), now_micros(), &job_cancel)?;
            let frontier =
                simulate::trace_resource(&bound, &request.frontier, "frontier.", &job_cancel);
            job_state.metrics().record_simulation(started.elapsed());
            frontier
        })
        .await??;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "frontier": frontier,
            "time_ms": started.elapsed().as_secs_f64() * 1e3,
        }),
    ))
}

/// The stop token of a heavy request that started at `started` with `time_limit_ms`: the
/// limit bounds the whole request, from its first byte to its answer.
fn request_cancel(started: Instant, time_limit_ms: u64) -> Cancel {
    Cancel::with_time_limit(started, Duration::from_millis(time_limit_ms))
}

/// On the heavy pool: `selection` run on `table` (re-scored first when it asks for other
/// parameters), with the tier column made ready when the targets go out as CSV (so the
/// stream only formats).
fn select_on_pool(
    state: &AppState,
    table: &Arc<Table>,
    selection: &BoundSelection,
    as_csv: bool,
) -> crate::Result<(Arc<Table>, Targets)> {
    let started = Instant::now();
    let table = if selection.rescores(table) {
        let rescored = Arc::new(table.rescored(*selection.params())?);
        state.metrics().record_rescoring(started.elapsed());
        rescored
    } else {
        Arc::clone(table)
    };
    let started = Instant::now();
    let targets = selection.select(&table)?;
    state.metrics().record_selection(started.elapsed());
    if as_csv {
        table.tier_column();
    }
    Ok((table, targets))
}

/// Every target as streamed CSV, the summary in `Crv-*` headers.
fn csv_response(
    table: Arc<Table>,
    targets: Targets,
    params: &ScoreParams,
    rescored: bool,
) -> Response<Body> {
    let selection = &targets.selection;
    let summary = [
        ("crv-selected", selection.rows.len().to_string()),
        ("crv-total-crv", selection.objective.to_string()),
        ("crv-total-cost", targets.total_cost.to_string()),
        ("crv-upper-bound", selection.upper_bound.to_string()),
        ("crv-gap", selection.gap.to_string()),
        ("crv-optimal", selection.optimal.to_string()),
        ("crv-discount", params.discount.to_string()),
        ("crv-horizon", params.horizon.to_string()),
        ("crv-rescored", rescored.to_string()),
    ];
    let mut answer = Response::new(Body::Csv(Box::new(TargetsCsv::new(table, targets))));
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CSV));
    for (name, value) in summary {
        let value = HeaderValue::try_from(value)
            .expect("printed numbers and booleans are visible ASCII, valid in a header");
        headers.insert(HeaderName::from_static(name), value);
    }
    answer
}
