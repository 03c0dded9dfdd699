//! The live endpoints (README.md, "Live events"): `POST /v1/customers/{id}/events`, `POST
//! /v1/events`, `GET /v1/customers/{id}/profile`, `POST /v1/admin/retier` and the dashboard's
//! `GET /v1/events/activity`. Events are
//! decoded and checked on the reactor thread (linear in the body), then handed to the log
//! writer; the answer comes once they are durable per the fsync policy and applied.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::json;

use super::AppState;
use super::body::Body;
use super::request_head::{Field, Headers};
use super::wire::{
    ApiError, JSON, JSON_CONTENT_TYPE, RequestBody, json_response, names_media_type, read_body,
    response,
};
use crate::live::event::{self, EventError};
use crate::live::writer::WriteError;
use crate::live::{Live, compact};
use crate::model::Tier;
use crate::rfm::date::now_micros;

impl From<EventError> for ApiError {
    fn from(error: EventError) -> Self {
        ApiError::bad_request("invalid_event", error.message)
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        ApiError::log_unavailable(error.to_string())
    }
}

/// The live state, or the 403 of a server that takes no events.
fn live(state: &AppState) -> Result<&Arc<Live>, ApiError> {
    state.live().ok_or_else(ApiError::writes_disabled)
}

/// `GET /v1/events/activity`: `{"events_total", "last_sequence", "now_micros",
/// "per_second": [..], "tier_changes": [{"sequence", "customer_id", "from", "to", "crv",
/// "at_micros"}]}`: events applied in each of the last whole seconds (oldest first) and the
/// latest changes of tier (newest first; `from` is null for a customer an event created), read
/// from counters the live path keeps ([`crate::live::activity`]); 404 on a server without
/// `--wal`.
pub fn activity(state: &AppState) -> Result<Response<Body>, ApiError> {
    let live = state.live().ok_or_else(|| {
        ApiError::not_found("the server takes no events: no activity (start it with --wal DIR)")
    })?;
    let now = now_micros();
    let table = state.table();
    let changes: Vec<serde_json::Value> = live
        .activity()
        .tier_changes()
        .iter()
        .map(|change| {
            let customer_id = match table.store().row_of(crate::CustomerId(change.customer_id)) {
                Some(row) => json!(table.customer_id(row)),
                None => json!(change.customer_id),
            };
            json!({
                "sequence": change.sequence,
                "customer_id": customer_id,
                "from": change.from.map(Tier::as_str),
                "to": change.to.as_str(),
                "crv": change.crv,
                "at_micros": change.at_micros,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "events_total": live.stats().events(),
            "last_sequence": live.last_sequence(),
            "now_micros": now,
            "per_second": live.activity().per_second(now.max(0) as u64 / 1_000_000),
            "tier_changes": changes,
        }),
    ))
}

/// `POST /v1/customers/{id}/events` (`customer` given) and `POST /v1/events` (each event names
/// its customer): the events checked, logged, applied; the answer carries the last event's
/// `sequence` and, for one customer, their new `crv` and `tier`.
pub async fn events(
    state: &AppState,
    headers: Headers<'_>,
    body: &mut RequestBody,
    customer: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    state.authorize_write(headers)?;
    let live = live(state)?;
    let customer = customer.map(|id| state.path_id(id)).transpose()?;
    if customer.is_none() && state.table().store().text_ids().is_some() {
        // The events' `customer_id` fields are whole numbers: in a store of text ids they
        // would name rows by their internal ids.
        return Err(ApiError::bad_request(
            "invalid_event",
            "this store's customer ids are text: post each customer's events to \
             /v1/customers/{id}/events",
        ));
    }
    if !names_media_type(headers, Field::ContentType, JSON) {
        return Err(ApiError::unsupported_media_type("`application/json`"));
    }
    let bytes = read_body(body, state.config().max_body_bytes).await?;
    let events = event::decode(&bytes, customer.map(|id| id.internal.0), now_micros)?;
    live.check(&events)?;
    let count = events.len();
    let sequence = live.submit(events).await?;
    let customer = customer.map(|id| {
        let score = state
            .score(id.internal)
            .expect("a customer with an applied event is known");
        (id.external, score.score.crv, score.score.tier)
    });
    let mut answer = Vec::with_capacity(96);
    super::json::write_events_answer(&mut answer, count, sequence, customer);
    Ok(response(StatusCode::OK, JSON_CONTENT_TYPE, answer))
}

/// `GET /v1/customers/{id}/profile`: the customer as a call-centre screen needs it: `crv`,
/// `tier`, `rank`, `percentile`, every column's current value, the event count and most
/// recent events, and the contact history (newest first).
pub fn profile(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let id = state.path_id(id)?;
    let not_found = || ApiError::not_found(format!("customer {} is not in the store", id.external));
    let score = state.score(id.internal).ok_or_else(not_found)?;
    let mut answer = match state.live() {
        Some(live) => live.profile(id.internal.0).ok_or_else(not_found)?,
        None => json!({"events": {"count": 0, "recent": []}, "contacts": [],
                       "columns": stored_columns(&state.table(), id.internal.0)}),
    };
    answer["customer_id"] = json!(id.external);
    answer["crv"] = crate::campaign::report::f32_json(score.score.crv);
    answer["tier"] = json!(score.score.tier.as_str());
    answer["rank"] = json!(score.score.rank);
    answer["percentile"] = crate::campaign::report::f32_json(score.score.percentile);
    if let Some(outlook) = score.outlook {
        answer["p_alive"] = crate::campaign::report::f32_json(outlook.p_alive);
        answer["expected_purchases"] =
            crate::campaign::report::f32_json(outlook.expected_purchases);
    }
    Ok(json_response(StatusCode::OK, &answer))
}

/// `POST /v1/admin/retier`: the store as events left it published as the next table version:
/// its CRVs, tier cut points and ranks recomputed (on a blocking thread), and selections and
/// simulations from then on see the events.
pub async fn retier(
    state: &Arc<AppState>,
    headers: Headers<'_>,
) -> Result<Response<Body>, ApiError> {
    state.authorize_write(headers)?;
    let live = Arc::clone(live(state)?);
    let job_state = Arc::clone(state);
    let version = tokio::task::spawn_blocking(move || -> crate::Result<u64> {
        let store = compact::snapshot(&live)?;
        let table = job_state.table().successor(Arc::new(store))?;
        job_state.publish(table)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let table = state.table();
    Ok(json_response(
        StatusCode::OK,
        &json!({"version": version, "customers": table.rows(),
                "summary": crate::campaign::report::score_summary(&table)}),
    ))
}

/// Every column of customer `id`'s row in `table`'s store, by name.
fn stored_columns(table: &crate::Table, id: u64) -> serde_json::Value {
    let store = table.store();
    let mut columns = serde_json::Map::new();
    if let Some(row) = store.row_of(crate::CustomerId(id)) {
        for meta in store.columns().iter().skip(1) {
            let value = match store.column(&meta.name) {
                Some(crate::store::Column::F32(values)) => {
                    crate::campaign::report::f32_json(values[row])
                }
                Some(crate::store::Column::Text(text)) => json!(text.value(row)),
                _ => continue,
            };
            columns.insert(meta.name.clone(), value);
        }
    }
    serde_json::Value::Object(columns)
}
