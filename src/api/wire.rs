//! What crosses the wire: the server's limits (every one a named constant here), request bodies
//! read within [`MAX_BODY_BYTES`] and decoded field by field so errors name the field, and the
//! one place an error becomes `{"error": {"code", "message"}}` with its status.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Largest request body accepted; a longer one gets 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most ids in one `POST /v1/customers/lookup`.
pub const MAX_LOOKUP_IDS: usize = 10_000;
/// Target ids returned by `POST /v1/select` when the request names no `max_ids`.
pub const DEFAULT_MAX_IDS: usize = 100_000;
/// Solver time limit when a select request names no `time_limit_ms`.
pub const DEFAULT_TIME_LIMIT_MS: u64 = 10_000;
/// Longest solver time limit a select request may ask for.
pub const MAX_TIME_LIMIT_MS: u64 = 60_000;
/// Most scenarios (sweep members included) in one `POST /v1/simulate`.
pub const MAX_SIMULATE_SCENARIOS: usize = 256;
/// Heavy requests (select) computing at once, by default.
pub const DEFAULT_MAX_RUNNING: usize = 2;
/// Heavy requests waiting for a turn, by default; beyond them a request gets 503.
pub const DEFAULT_MAX_WAITING: usize = 16;
/// Seconds a 503 asks the caller to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;
/// How long shutdown waits for in-flight connections before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// First pause after a failed accept (e.g. out of file descriptors); doubles up to the max.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The response body type of every endpoint.
pub type Body = Full<Bytes>;

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
            other => {
                tracing::error!(error = %other, "request failed inside the library");
                ApiError::internal()
            }
        }
    }
}

/// `value` as a JSON response with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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

/// Reads a POST's JSON body: 415 unless the content type is `application/json`, 413 past
/// [`MAX_BODY_BYTES`] (by `Content-Length` before reading, or while reading).
pub async fn read_json_body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON: send `Content-Type: application/json`",
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::bad_request(
            "unreadable_body",
            format!("the request body could not be read: {error}"),
        )),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

/// A JSON object taken apart field by field, so that every decoding error names its field and
/// fields nobody asked for are rejected rather than ignored.
#[derive(Debug)]
pub struct JsonObject {
    fields: Map<String, Value>,
}

impl JsonObject {
    /// Parses `bytes` as one JSON object; the error carries serde_json's line and column.
    pub fn parse(bytes: &[u8]) -> Result<JsonObject, ApiError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(JsonObject { fields }),
            Ok(_) => Err(ApiError::bad_request(
                "malformed_json",
                "the body must be a JSON object",
            )),
            Err(error) => Err(ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {error}"),
            )),
        }
    }

    /// The field `name`, which must be present and not null.
    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        self.optional(name)?.ok_or_else(|| {
            ApiError::bad_request("malformed_json", format!("field `{name}` is required"))
        })
    }

    /// The field `name`, `None` when absent or null.
    pub fn optional<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|error| {
                ApiError::bad_request("malformed_json", format!("field `{name}`: {error}"))
            }),
        }
    }

    /// Rejects any field not taken by [`JsonObject::required`] or [`JsonObject::optional`].
    pub fn finish(self) -> Result<(), ApiError> {
        match self.fields.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::bad_request(
                "unknown_field",
                format!("field `{name}` is not part of this request"),
            )),
        }
    }
}
