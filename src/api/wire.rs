//! What crosses the wire: the server's limits (every one a named constant here), request bodies
//! read within the configured byte limit, content types, and the one place an error becomes
//! `{"error": {"code", "message"}}` with its status.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::body::Body;

/// The media type of JSON bodies.
pub const JSON: &str = "application/json";

/// Largest request body accepted by default (`--max-body-bytes`); a longer one gets 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// How long a client may take to send a request head by default (`--header-timeout-ms`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of CSV formatted per chunk of a streamed target list.
pub const CSV_CHUNK_BYTES: usize = 64 << 10;
/// Target ids returned by `POST /v1/select` when the request names no `max_ids`.
pub const DEFAULT_MAX_IDS: usize = 100_000;
/// Solver time limit when a select request names no `time_limit_ms`.
pub const DEFAULT_TIME_LIMIT_MS: u64 = 10_000;
/// The caps on what a request asks for, shared with the command line.
pub use crate::limits::{MAX_LOOKUP_IDS, MAX_SIMULATE_SCENARIOS, MAX_TIME_LIMIT_MS};
/// Heavy requests (select) computing at once, by default.
pub const DEFAULT_MAX_RUNNING: usize = 2;
/// Heavy requests waiting for a turn, by default; beyond them a request gets 503.
pub const DEFAULT_MAX_WAITING: usize = 16;
/// Nice steps the heavy pool's threads run below the server's own priority, by default: a
/// lookup arriving while a selection computes on its core gets the core at once.
pub const DEFAULT_HEAVY_NICE: u8 = 10;
/// Most nice steps: from the default priority 0 to the lowest, 19.
pub const MAX_NICE_STEPS: u8 = 19;
/// Seconds a 503 asks the caller to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;
/// How long shutdown waits for in-flight connections before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause after a failed accept (e.g. out of file descriptors); doubles up to the max.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A request that cannot be answered, as the caller will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status: 4xx for the caller's mistakes, 5xx for the server's own.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `malformed_json`.
    pub code: &'static str,
    /// What is wrong, for a person; names the field or value at fault.
    pub message: String,
    /// For a 405: the method the endpoint takes (the `Allow` header).
    pub allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// A 400 with `code` and `message`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// A 405 for an endpoint that takes only `allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this endpoint takes {allow}"),
            )
        }
    }

    /// A 500 whose message tells the caller nothing of the cause; log the cause before.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to answer; the cause is in its log",
        )
    }

    /// A 413: the body is longer than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// A 415: the body's content type is not one of `accepted` (written for the message, e.g.
    /// "`application/json`").
    pub fn unsupported_media_type(accepted: &str) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("unsupported body: send `Content-Type:` {accepted}"),
        )
    }

    /// A 503: the admission queue is full.
    pub fn overloaded() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("too many requests in progress; retry in {RETRY_AFTER_SECS} s"),
        )
    }
}

impl From<crate::Error> for ApiError {
    /// The caller's mistakes (a parameter, a column, a filter) are 400; anything else means
    /// the served store or the server failed, so it is logged here and answered with a 500.
    fn from(error: crate::Error) -> Self {
        match error {
            crate::Error::InvalidParameter { .. } => {
                ApiError::bad_request("invalid_parameter", error.to_string())
            }
            crate::Error::Column { .. } => {
                ApiError::bad_request("invalid_column", error.to_string())
            }
            crate::Error::Scenario { .. } | crate::Error::Scenarios { .. } => {
                ApiError::bad_request("invalid_scenario", error.to_string())
            }
            // Past the request's `time_limit_ms`: 504, the limit the caller set was too short
            // for the work. (A cancelled job's answer has no reader; it is named all the same.)
            crate::Error::Stopped { cause, .. } => match cause {
                crate::cancel::StopCause::TimeLimit(_) => ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "time_limit_exceeded",
                    format!(
                        "{error}; raise `time_limit_ms` (at most {MAX_TIME_LIMIT_MS}) or ask for less"
                    ),
                ),
                crate::cancel::StopCause::Cancelled => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cancelled",
                    error.to_string(),
                ),
            },
            other => {
                tracing::error!(error = %other, "request failed inside the library");
                ApiError::internal()
            }
        }
    }
}

/// `bytes` as a response with `status` and `content_type`.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Body::full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `value` as a JSON response with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    response(status, JSON, value.to_string())
}

/// The one rendering of an error: `{"error": {"code", "message"}}`, with `Retry-After` on a
/// 503 and `Allow` on a 405.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let body = json!({"error": {"code": error.code, "message": error.message}});
    let mut response = json_response(error.status, &body);
    let headers = response.headers_mut();
    if error.status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if let Some(allow) = error.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// Whether `headers`' `name` (`Content-Type`, `Accept`) lists `media` (case-insensitive,
/// parameters such as `; charset=utf-8` ignored).
pub fn names_media_type(headers: &HeaderMap, name: header::HeaderName, media: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.split(';').next())
        .any(|item| item.trim().eq_ignore_ascii_case(media))
}

/// Reads a request body of at most `max_bytes`: 413 past it, by `Content-Length` before
/// reading or while reading.
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    max_bytes: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Err(ApiError::too_large(max_bytes));
    }
    match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(ApiError::too_large(max_bytes)),
        Err(error) => Err(ApiError::bad_request(
            "unreadable_body",
            format!("the request body could not be read: {error}"),
        )),
    }
}
