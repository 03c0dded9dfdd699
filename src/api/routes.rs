//! The router: one `match` on (method, path pieces) names every endpoint, answers 405 for a
//! known path with the wrong method and 404 for anything else. The pieces are `&str` slices of
//! the request's own path in a fixed array: routing allocates nothing. Each request is counted
//! in the metrics under its route template and logs one line.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::AppState;
use super::body::Body;
use super::handlers;
use super::metrics::Route;
use super::wire::{ApiError, error_response};

/// Pieces in the longest endpoint path; a path of more pieces matches nothing.
const MAX_PIECES: usize = 3;

/// Answers one request; every failure is already a JSON error response.
pub async fn route(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let mut pieces = [""; MAX_PIECES + 1];
    let (route, result) = match (&parts.method, split_path(path, &mut pieces)) {
        (&Method::GET, ["healthz"]) => (Route::Health, Ok(handlers::health())),
        (&Method::GET, ["metrics"]) => (Route::Metrics, Ok(handlers::metrics(&state))),
        (&Method::GET, ["v1", "tiers"]) => (Route::Tiers, Ok(handlers::tiers(&state))),
        (&Method::POST, ["v1", "customers", "lookup"]) => (
            Route::Lookup,
            handlers::lookup(&state, &parts.headers, body).await,
        ),
        (&Method::POST, ["v1", "select"]) => (
            Route::Select,
            handlers::select(&state, &parts.headers, body).await,
        ),
        (&Method::POST, ["v1", "simulate"]) => (
            Route::Simulate,
            handlers::simulate(&state, &parts.headers, body).await,
        ),
        // Before `{id}`: `lookup` is not an id.
        (_, ["v1", "customers", "lookup"]) => wrong_method(Route::Lookup),
        (&Method::GET, ["v1", "customers", id]) => {
            (Route::Customer, handlers::customer(&state, id))
        }
        (_, ["healthz"]) => wrong_method(Route::Health),
        (_, ["metrics"]) => wrong_method(Route::Metrics),
        (_, ["v1", "tiers"]) => wrong_method(Route::Tiers),
        (_, ["v1", "select"]) => wrong_method(Route::Select),
        (_, ["v1", "simulate"]) => wrong_method(Route::Simulate),
        (_, ["v1", "customers", _]) => wrong_method(Route::Customer),
        _ => (
            Route::Unmatched,
            Err(ApiError::not_found(format!("no endpoint at {path}"))),
        ),
    };
    let response = result.unwrap_or_else(|error| error_response(&error));
    let elapsed = started.elapsed();
    state
        .metrics()
        .record_request(route, response.status(), elapsed);
    tracing::debug!(
        method = %parts.method,
        path,
        status = response.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    Ok(response)
}

/// The 405 of `route`, naming the method it takes.
fn wrong_method(route: Route) -> (Route, Result<Response<Body>, ApiError>) {
    (route, Err(ApiError::method_not_allowed(route.method())))
}

/// The `/`-separated pieces of `path` after its leading `/`, in `pieces`; a path of more than
/// [`MAX_PIECES`] gives `MAX_PIECES + 1` pieces, which no endpoint matches.
fn split_path<'a, 'p>(path: &'p str, pieces: &'a mut [&'p str; MAX_PIECES + 1]) -> &'a [&'p str] {
    let mut count = 0;
    for piece in path.strip_prefix('/').unwrap_or(path).split('/') {
        pieces[count] = piece;
        count += 1;
        if count == pieces.len() {
            break;
        }
    }
    &pieces[..count]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_keeps_empty_pieces_and_caps_long_paths() {
        let mut pieces = [""; MAX_PIECES + 1];
        assert_eq!(split_path("/healthz", &mut pieces), ["healthz"]);
        assert_eq!(split_path("/healthz/", &mut pieces), ["healthz", ""]);
        assert_eq!(split_path("/", &mut pieces), [""]);
        assert_eq!(
            split_path("/v1/customers/7", &mut pieces),
            ["v1", "customers", "7"]
        );
        assert_eq!(
            split_path("/v1/customers/1/orders/9", &mut pieces),
            ["v1", "customers", "1", "orders"]
        );
    }
}
