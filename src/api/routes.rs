//! The router: one `match` on (method, path pieces) names every endpoint, answers 405 for a
//! known path with the wrong method and 404 for anything else; `HEAD` is answered wherever
//! `GET` is (hyper sends the head alone). The pieces are `&str` slices of the request's own path
//! in a fixed array: routing allocates nothing unless the path has `%`-escapes (a text id such
//! as `ann%40example.com`), which are decoded piece by piece after splitting, so that an escaped
//! `/` stays inside its id. Heavy endpoints check the bearer token first.
//! Each request is counted in the metrics under its route template and logs one access line
//! ([`super::logging`]: target `crv::access`, level info) with its request id, echoed in
//! `X-Request-Id`. An answer given before the request's body was read to its end (a 401,
//! 404, 405, 413 or 415 to a request with a body) says `Connection: close`: hyper closes such
//! a connection, and the client is told so whatever the timing of the body's bytes.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::AppState;
use super::body::Body;
use super::logging::AccessLine;
use super::metrics::Route;
use super::request_head::{Field, Headers, REQUEST_ID, RequestHead};
use super::wire::{ApiError, RequestBody, error_response, json_response};
use super::{campaigns, dashboard, events, handlers};

/// Pieces in the longest endpoint path; a path of more pieces matches nothing.
const MAX_PIECES: usize = 5;

/// Longest request id taken from a client; a longer or non-printable one is replaced.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Answers one request hyper read from `client` (its address as text,
/// [`super::logging::client_text`]); every failure is already a JSON error response.
pub async fn route(
    state: Arc<AppState>,
    client: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let head = RequestHead::of_parts(&parts);
    let Answer {
        mut response,
        request_id,
    } = answer(&state, &client, head, RequestBody::new(body), started).await;
    response
        .headers_mut()
        .insert(REQUEST_ID, request_id.header_value());
    Ok(response)
}

/// A request's answer, and the id it carries in `X-Request-Id` (written by the lane that
/// sends the answer: the direct lane writes it as text, without a `HeaderValue` made and
/// inserted into the answer's map for every request).
pub struct Answer<'h> {
    /// The answer, but for `X-Request-Id`.
    pub response: Response<Body>,
    /// Its request id.
    pub request_id: RequestId<'h>,
}

/// The id of a request: its own `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID_BYTES`]
/// visible ASCII characters, otherwise a number unique in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestId<'h> {
    /// The request's own.
    Sent(&'h str),
    /// Made by the server.
    Made(u64),
}

impl<'h> RequestId<'h> {
    /// The id of the request with `headers`; `state` makes one when the request's own is
    /// missing or unfit.
    fn of(state: &AppState, headers: Headers<'h>) -> RequestId<'h> {
        headers
            .get(Field::RequestId)
            .filter(|id| {
                (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
                    && id.iter().all(u8::is_ascii_graphic)
            })
            .and_then(|id| std::str::from_utf8(id).ok())
            .map_or_else(|| RequestId::Made(state.new_request_id()), RequestId::Sent)
    }

    /// The id as text; `number` holds a made one's digits.
    pub fn text<'a>(&'a self, number: &'a mut itoa::Buffer) -> &'a str {
        match *self {
            RequestId::Sent(id) => id,
            RequestId::Made(id) => number.format(id),
        }
    }

    /// The id as the value of `X-Request-Id`.
    pub fn header_value(&self) -> HeaderValue {
        match *self {
            RequestId::Sent(id) => {
                HeaderValue::from_str(id).expect("visible ASCII is a field value")
            }
            RequestId::Made(id) => HeaderValue::from(id),
        }
    }
}

/// Answers the request of `head` and `body` from `client`, read since `started`
/// (by hyper, or by the direct lane: [`super::direct`]); every failure is already a JSON
/// error response.
///
/// The heavy endpoints' futures (selection, simulation, campaign plans, the summary, a
/// re-tiering) are boxed: this future is as large as the largest future it awaits inline,
/// and it is built and moved into the connection's future for every request. Inline they
/// made it 4,728 bytes (release build): `memcpy` was 850 instructions a single event,
/// callgrind; boxed, it is 728 bytes (460), and only the rare heavy request pays an
/// allocation.
pub async fn answer<'h>(
    state: &Arc<AppState>,
    client: &str,
    head: RequestHead<'h>,
    mut body: RequestBody,
    started: Instant,
) -> Answer<'h> {
    let path = head.path;
    let headers = head.headers;
    let request_id = RequestId::of(state, headers);
    let mut raw_pieces = [""; MAX_PIECES + 1];
    let raw = split_path(path, &mut raw_pieces);
    let unescaped = unescape(path, raw);
    let mut unescaped_pieces = [""; MAX_PIECES + 1];
    let pieces = match &unescaped {
        None => raw,
        Some(owned) => {
            for (piece, decoded) in unescaped_pieces.iter_mut().zip(owned) {
                *piece = decoded;
            }
            &unescaped_pieces[..owned.len()]
        }
    };
    // HEAD is GET without the body: hyper drops the body of an answer to HEAD.
    let method = match *head.method {
        Method::HEAD => &Method::GET,
        ref method => method,
    };
    let (route, result) = match (method, pieces) {
        (&Method::GET, ["healthz"]) => (Route::Health, Ok(handlers::health())),
        (&Method::GET, ["readyz"]) => (Route::Ready, Ok(ready(state))),
        (&Method::GET, ["metrics"]) => (Route::Metrics, Ok(handlers::metrics(state))),
        (&Method::GET, ["v1", "tiers"]) => (Route::Tiers, Ok(handlers::tiers(state))),
        (&Method::GET, [""]) => (Route::Dashboard, Ok(dashboard::page())),
        (&Method::GET, ["openapi.json"]) => (Route::OpenApi, Ok(dashboard::openapi())),
        (&Method::GET, ["v1", "summary"]) => {
            (Route::Summary, Box::pin(dashboard::summary(state)).await)
        }
        (&Method::POST, ["v1", "customers", "lookup"]) => (
            Route::Lookup,
            handlers::lookup(state, headers, &mut body).await,
        ),
        (&Method::POST, ["v1", "select"]) => (
            Route::Select,
            Box::pin(authorized(
                state,
                headers,
                handlers::select(state, headers, &mut body),
            ))
            .await,
        ),
        (&Method::POST, ["v1", "simulate"]) => (
            Route::Simulate,
            Box::pin(authorized(
                state,
                headers,
                handlers::simulate(state, headers, &mut body),
            ))
            .await,
        ),
        (&Method::POST, ["v1", "customers", id, "events"]) => (
            Route::CustomerEvents,
            events::events(state, headers, &mut body, Some(id)).await,
        ),
        (&Method::POST, ["v1", "events"]) => (
            Route::Events,
            events::events(state, headers, &mut body, None).await,
        ),
        (&Method::GET, ["v1", "customers", id, "profile"]) => (
            Route::Profile,
            authorized(state, headers, async { events::profile(state, id) }).await,
        ),
        (&Method::POST, ["v1", "campaigns", "optimise"]) => (
            Route::CampaignOptimise,
            Box::pin(authorized(
                state,
                headers,
                campaigns::optimise(state, headers, &mut body),
            ))
            .await,
        ),
        // Before `{id}`: `optimise` is not a plan id.
        (_, ["v1", "campaigns", "optimise"]) => wrong_method(Route::CampaignOptimise),
        (&Method::GET, ["v1", "campaigns", id, "customers", customer]) => (
            Route::CampaignCustomer,
            authorized(state, headers, async {
                campaigns::customer(state, id, customer)
            })
            .await,
        ),
        (&Method::GET, ["v1", "campaigns", id, "report"]) => (
            Route::CampaignReport,
            Box::pin(authorized(state, headers, campaigns::report(state, id))).await,
        ),
        (&Method::GET, ["v1", "campaigns", id]) => (
            Route::Campaign,
            authorized(state, headers, async { campaigns::summary(state, id) }).await,
        ),
        (&Method::GET, ["v1", "campaigns"]) => (
            Route::Campaigns,
            authorized(state, headers, async { campaigns::plans(state) }).await,
        ),
        (&Method::GET, ["v1", "events", "activity"]) => {
            (Route::EventsActivity, events::activity(state))
        }
        (&Method::POST, ["v1", "admin", "retier"]) => (
            Route::Retier,
            Box::pin(events::retier(state, headers)).await,
        ),
        (_, ["v1", "customers", _, "events"]) => wrong_method(Route::CustomerEvents),
        (_, ["v1", "events"]) => wrong_method(Route::Events),
        (_, ["v1", "customers", _, "profile"]) => wrong_method(Route::Profile),
        (_, ["v1", "admin", "retier"]) => wrong_method(Route::Retier),
        (_, ["v1", "campaigns", _, "customers", _]) => wrong_method(Route::CampaignCustomer),
        (_, ["v1", "campaigns", _, "report"]) => wrong_method(Route::CampaignReport),
        (_, ["v1", "campaigns", _]) => wrong_method(Route::Campaign),
        (_, ["v1", "campaigns"]) => wrong_method(Route::Campaigns),
        (_, ["v1", "events", "activity"]) => wrong_method(Route::EventsActivity),
        // Before `{id}`: `lookup` is not an id.
        (_, ["v1", "customers", "lookup"]) => wrong_method(Route::Lookup),
        (&Method::GET, ["v1", "customers", id]) => (Route::Customer, handlers::customer(state, id)),
        (_, ["healthz"]) => wrong_method(Route::Health),
        (_, ["readyz"]) => wrong_method(Route::Ready),
        (_, ["metrics"]) => wrong_method(Route::Metrics),
        (_, ["v1", "tiers"]) => wrong_method(Route::Tiers),
        (_, [""]) => wrong_method(Route::Dashboard),
        (_, ["openapi.json"]) => wrong_method(Route::OpenApi),
        (_, ["v1", "summary"]) => wrong_method(Route::Summary),
        (_, ["v1", "select"]) => wrong_method(Route::Select),
        (_, ["v1", "simulate"]) => wrong_method(Route::Simulate),
        (_, ["v1", "customers", _]) => wrong_method(Route::Customer),
        _ => (
            Route::Unmatched,
            Err(ApiError::not_found(format!("no endpoint at {path}"))),
        ),
    };
    let mut response = result.unwrap_or_else(|error| error_response(&error));
    let elapsed = started.elapsed();
    state
        .metrics()
        .record_request(route, response.status(), elapsed);
    state.access_log().record(&AccessLine {
        method: head.method,
        route: route.template(),
        path,
        status: response.status().as_u16(),
        micros: elapsed.as_micros() as u64,
        client,
        request_id: request_id.text(&mut itoa::Buffer::new()),
    });
    if head.version <= Version::HTTP_11 && !body.leaves_connection_reusable() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Answer {
        response,
        request_id,
    }
}

/// `GET /readyz`: 200 `{"status": "ready"}` while the server takes new work; 503
/// `{"status": "draining"}` once shutdown has begun, `{"status": "at_capacity"}` while every
/// connection slot is taken. `/healthz` (liveness) answers 200 regardless.
fn ready(state: &AppState) -> Response<Body> {
    match state.unready_reason() {
        None => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Some(reason) => json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": reason})),
    }
}

/// `answer` when the request carries the server's bearer token (or none is required), a 401
/// without running it otherwise. Every heavy endpoint goes through here.
async fn authorized(
    state: &AppState,
    headers: Headers<'_>,
    answer: impl Future<Output = Result<Response<Body>, ApiError>>,
) -> Result<Response<Body>, ApiError> {
    state.authorize(headers)?;
    answer.await
}

/// The 405 of `route`, naming the method it takes.
fn wrong_method(route: Route) -> (Route, Result<Response<Body>, ApiError>) {
    (route, Err(ApiError::method_not_allowed(route.method())))
}

/// The `/`-separated pieces of `path` after its leading `/`, in `pieces`; a path of more than
/// [`MAX_PIECES`] gives `MAX_PIECES + 1` pieces, which no endpoint matches.
fn split_path<'a, 'p>(path: &'p str, pieces: &'a mut [&'p str; MAX_PIECES + 1]) -> &'a [&'p str] {
    // A byte at a time: `str::split` with a `char` pattern costs a `memchr` call per piece,
    // several times this loop on a path of a few short pieces. `/` is ASCII, so every cut
    // is at a character boundary.
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (mut count, mut start) = (0, 0);
    for (at, byte) in rest.bytes().enumerate() {
        if byte == b'/' {
            pieces[count] = &rest[start..at];
            count += 1;
            start = at + 1;
            if count == pieces.len() {
                return &pieces[..count];
            }
        }
    }
    pieces[count] = &rest[start..];
    &pieces[..=count]
}

/// `raw` (the pieces of `path`) with each piece's `%`-escapes decoded (bytes that are not
/// UTF-8 become U+FFFD, which no id or endpoint matches); `None`, and no copy, when the path
/// has no escape.
fn unescape<'p>(path: &str, raw: &[&'p str]) -> Option<Vec<Cow<'p, str>>> {
    path.as_bytes().contains(&b'%').then(|| {
        raw.iter()
            .map(|piece| percent_decode_str(piece).decode_utf8_lossy())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The future of a request stays small: a heavy endpoint's future awaited inline would
    /// make every request's future as large as it (4,728 bytes before they were boxed).
    #[test]
    fn a_request_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let (csv, store) = (dir.path().join("c.csv"), dir.path().join("c.crv"));
        crate::synthetic::write_customers_csv(std::fs::File::create(&csv).unwrap(), 10, 1).unwrap();
        crate::store::import(&csv, &store, &mut |_| {}).unwrap();
        let state = Arc::new(
            AppState::open(
                &store,
                crate::ScoreParams::default(),
                crate::kernel::TierScheme::default(),
                super::super::ServerConfig::default(),
            )
            .unwrap(),
        );
        let parts = Request::new(()).into_parts().0;
        let body = RequestBody::whole(bytes::Bytes::new());
        let head = RequestHead::of_parts(&parts);
        let future = answer(&state, "127.0.0.1:1", head, body, Instant::now());
        let size = std::mem::size_of_val(&future);
        assert!(size <= 1024, "a request's future takes {size} bytes");
    }

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
            split_path("/v1/customers/1/orders/9/x/y", &mut pieces),
            ["v1", "customers", "1", "orders", "9", "x"]
        );
    }

    proptest::proptest! {
        #[test]
        fn split_path_cuts_as_str_split_does(path in "/?[a-z/%é]{0,24}") {
            let mut pieces = [""; MAX_PIECES + 1];
            let expected: Vec<&str> = path
                .strip_prefix('/')
                .unwrap_or(&path)
                .split('/')
                .take(MAX_PIECES + 1)
                .collect();
            proptest::prop_assert_eq!(split_path(&path, &mut pieces), &expected[..]);
        }
    }

    #[test]
    fn escapes_are_decoded_within_their_piece() {
        let mut pieces = [""; MAX_PIECES + 1];
        let path = "/v1/customers/C-7";
        assert_eq!(unescape(path, split_path(path, &mut pieces)), None);
        let path = "/v1/customers/ann%40example.com%2Fx";
        let decoded = unescape(path, split_path(path, &mut pieces));
        assert_eq!(decoded.unwrap(), ["v1", "customers", "ann@example.com/x"]);
        let path = "/v1/customers/%FF%zz";
        let decoded = unescape(path, split_path(path, &mut pieces)).unwrap();
        assert_eq!(decoded[2], "\u{FFFD}%zz");
    }
}
