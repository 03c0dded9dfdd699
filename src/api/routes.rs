//! The router: one `match` on (method, path segments) names every endpoint, answers 405 for a
//! known path with the wrong method and 404 for anything else; each request logs one line.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::AppState;
use super::handlers;
use super::wire::{ApiError, Body, error_response};

/// Answers one request; every failure is already a JSON error response.
pub async fn route(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let result = match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => Ok(handlers::health()),
        (&Method::GET, ["v1", "tiers"]) => Ok(handlers::tiers(&state)),
        (&Method::POST, ["v1", "customers", "lookup"]) => handlers::lookup(&state, request).await,
        (&Method::POST, ["v1", "select"]) => handlers::select(&state, request).await,
        (&Method::POST, ["v1", "simulate"]) => handlers::simulate(&state, request).await,
        (_, ["v1", "customers", "lookup"] | ["v1", "select"] | ["v1", "simulate"]) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (&Method::GET, ["v1", "customers", id]) => handlers::customer(&state, id),
        (_, ["healthz"] | ["v1", "tiers"] | ["v1", "customers", _]) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        _ => Err(ApiError::not_found(format!("no endpoint at {path}"))),
    };
    let response = result.unwrap_or_else(|error| error_response(&error));
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}
