//! The dashboard (README.md, "The dashboard"): the page at `GET /`, one HTML file with its
//! script and styles inline, compiled into the binary (no CDN, no build step); the data it
//! draws at `GET /v1/summary`, encoded once per served version ([`summary`](mod@summary));
//! and the API's description at `GET /openapi.json`, a file of the repository compiled in as
//! well.
//!
//! The page asks `/v1/summary` first: its `server.endpoints` lists every route of the router
//! ([`crate::api::metrics::Route::ALL`]), and a panel whose endpoint is not there stays hidden,
//! so panels for endpoints added later appear by themselves once the page knows how to draw
//! them (the `PANELS` table of the page's script).

pub mod model;
pub mod summary;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::AppState;
use super::body::Body;
use super::metrics::Route;
use super::wire::{ApiError, JSON_CONTENT_TYPE, response};

/// The page, script and styles inline.
const PAGE: &str = include_str!("page.html");
/// The OpenAPI 3.1 description of every endpoint.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How long a browser may keep the page and the description without asking again: they
/// change only with the binary.
const STATIC_CACHE: &str = "public, max-age=300";

/// `GET /`: the dashboard page.
pub fn page() -> Response<Body> {
    cached(response(
        StatusCode::OK,
        HeaderValue::from_static("text/html; charset=utf-8"),
        PAGE.as_bytes(),
    ))
}

/// `GET /openapi.json`: the API's description.
pub fn openapi() -> Response<Body> {
    cached(response(
        StatusCode::OK,
        JSON_CONTENT_TYPE,
        OPENAPI.as_bytes(),
    ))
}

/// `GET /v1/summary`: `{"server": {"currency", "token_required", "endpoints", "live",
/// "plans"}, "model": ..., ...}`: what the server holds (`live`: it takes events; `plans`:
/// campaign plans kept), the purchase model's picture computed when the server opened
/// ([`model::encode`], `null` without `--model`), and the served version's summary
/// ([`summary::encode`], computed once per version: in the background, or on a blocking thread
/// by the first request that comes before that job is done). The reactor never scans the table.
pub async fn summary(state: &AppState) -> Result<Response<Body>, ApiError> {
    let endpoints: Vec<String> = Route::ALL
        .iter()
        .filter(|route| **route != Route::Unmatched)
        .map(|route| {
            let method = route.method().split(',').next().unwrap_or_default();
            format!("{method} {}", route.template())
        })
        .collect();
    let server = serde_json::json!({
        "currency": state.currency(),
        "token_required": state.requires_token(),
        "endpoints": endpoints,
        "live": state.live().is_some(),
        "plans": state.plans().count(),
    });
    let table_part = state.summary().await?;
    let model = state.model_summary();
    let model_len = model.map_or(4, |model| model.len());
    let mut out = Vec::with_capacity(table_part.len() + model_len + 512);
    out.extend_from_slice(b"{\"server\":");
    out.extend_from_slice(server.to_string().as_bytes());
    out.extend_from_slice(b",\"model\":");
    out.extend_from_slice(model.map_or(&b"null"[..], |model| &model[..]));
    out.push(b',');
    // The encoded summary is a JSON object: its members follow the server's.
    out.extend_from_slice(&table_part[1..]);
    Ok(response(StatusCode::OK, JSON_CONTENT_TYPE, out))
}

fn cached(mut answer: Response<Body>) -> Response<Body> {
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(STATIC_CACHE),
    );
    answer
}
