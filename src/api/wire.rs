//! What crosses the wire: the server's limits (every one a named constant here), request bodies
//! read within the configured byte limit, content types, and the one place an error becomes
//! `{"error": {"code", "message"}}` with its status.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::Body;
use super::request_head::{Field, Headers};

/// The media type of JSON bodies.
pub const JSON: &str = "application/json";

/// [`JSON`] as the `Content-Type` of an answer (made once, at compile time: `from_static`
/// at run time checks every byte of it again, ~180 instructions an answer, callgrind).
pub const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(JSON);

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
/// How long shutdown waits for in-flight connections before giving up on them, by default
/// (`--drain-timeout-ms`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors the default connection cap leaves free below `ulimit -n`: the store, stdio and
/// the log, the runtime's own (epoll, wakers), the listener, and the one a refusal takes
/// briefly.
pub const CONNECTION_RESERVE: u64 = 64;
/// The default connection cap when the descriptor limit is unlimited or unknown.
pub const DEFAULT_MAX_CONNECTIONS_UNLIMITED: usize = 1 << 20;
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

    /// A 401: a heavy endpoint without the server's bearer token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <token>` with the server's token",
        )
    }

    /// A 503 for a connection beyond the connection cap.
    pub fn at_capacity() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            format!("too many open connections; retry in {RETRY_AFTER_SECS} s"),
        )
    }

    /// The JSON error of hyper's own answer with `status` to a request it could not parse,
    /// `None` for a status hyper never answers with on its own.
    fn of_unparsable_request(status: StatusCode) -> Option<Self> {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => (
                "malformed_request",
                "the request line or a header is not valid HTTP/1.1",
            ),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "headers_too_large",
                "the request head has too many headers or is too long",
            ),
            _ => return None,
        };
        Some(ApiError::new(status, code, message))
    }

    /// A 403: writes are disabled (no token configured and no `--insecure-writes`).
    pub fn writes_disabled() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "writes_disabled",
            "this server takes no writes: start it with a token (`CRV_TOKEN` or --token-env \
             NAME) and --wal DIR, or --insecure-writes on a loopback address",
        )
    }

    /// A 503: the event log cannot be written now (a full disk, an I/O error); nothing of the
    /// request was applied.
    pub fn log_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", message)
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
            crate::Error::Campaign { .. } => {
                ApiError::bad_request("invalid_campaign", error.to_string())
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

/// `bytes` as a response with `status` and `content_type` (a constant, such as
/// [`JSON_CONTENT_TYPE`]).
pub fn response(
    status: StatusCode,
    content_type: HeaderValue,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Body::full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// `value` as a JSON response with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    response(status, JSON_CONTENT_TYPE, value.to_string())
}

/// The body of every error: `{"error": {"code", "message"}}`.
fn error_body(error: &ApiError) -> String {
    json!({"error": {"code": error.code, "message": error.message}}).to_string()
}

/// The one rendering of an error: `{"error": {"code", "message"}}`, with `Retry-After` on a
/// 503, `Allow` on a 405 and `WWW-Authenticate` on a 401.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = response(error.status, JSON_CONTENT_TYPE, error_body(error));
    let headers = response.headers_mut();
    if error.status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if error.status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(allow) = error.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// `error` as the raw bytes of a whole HTTP/1.1 response that closes the connection, for the
/// answers written outside hyper's request handling (a refused connection, a request hyper
/// could not parse).
pub fn raw_error_response(error: &ApiError) -> Vec<u8> {
    let body = error_body(error);
    let retry = if error.status == StatusCode::SERVICE_UNAVAILABLE {
        format!("retry-after: {RETRY_AFTER_SECS}\r\n")
    } else {
        String::new()
    };
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {JSON}\r\ncontent-length: {}\r\n{retry}\
         connection: close\r\n\r\n{body}",
        error.status.as_str(),
        error.status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}

/// Whether the bearer token a request `offered` is the server's `token`: every byte is
/// compared whatever the first difference, so the time taken does not tell how much of a
/// guess was right (only whether its length was).
pub fn same_token(offered: &[u8], token: &[u8]) -> bool {
    if offered.len() != token.len() {
        return false;
    }
    let difference = offered.iter().zip(token).fold(0u8, |difference, (a, b)| {
        std::hint::black_box(difference | (a ^ b))
    });
    difference == 0
}

/// The replacement for `head` when it is hyper's own answer to a request it could not parse:
/// a response head with a status hyper uses for parse errors (400, 414, 431) and an empty
/// body. The server's own error answers always carry a JSON body, so they never match.
fn unparsable_request_answer(head: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    let error = ApiError::of_unparsable_request(status)?;
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    let empty = text.ends_with("\r\n\r\n")
        && text.contains("\r\ncontent-length: 0\r\n")
        && !text.contains("\r\ncontent-type:");
    empty.then(|| (status, raw_error_response(&error)))
}

/// A connection's byte stream, passed through unchanged except for one thing: when hyper
/// answers a request it could not parse (a malformed request line or header: 400; a target
/// too long: 414; too many or too long headers: 431) with its bare, bodiless response, the
/// client gets the same status with the JSON error body every other error has, and the
/// connection closes.
#[derive(Debug)]
pub struct ParseErrorsAsJson<S> {
    inner: S,
    peer: SocketAddr,
    /// Bytes of a replacement answer not yet written.
    pending: Option<Bytes>,
}

impl<S: AsyncWrite + Unpin> ParseErrorsAsJson<S> {
    /// `inner`, the connection from `peer` (named in the log line of a parse error).
    pub fn new(inner: S, peer: SocketAddr) -> Self {
        ParseErrorsAsJson {
            inner,
            peer,
            pending: None,
        }
    }

    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(pending) = &mut self.pending {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = pending.split_to(written);
            if pending.is_empty() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Whether `head` was replaced: then it counts as written, and the replacement goes out
    /// now or on the next write, flush or shutdown.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> bool {
        let Some((status, answer)) = unparsable_request_answer(head) else {
            return false;
        };
        tracing::info!(
            client = %self.peer,
            status = status.as_u16(),
            "request not parsable as HTTP/1.1: answered and closed"
        );
        self.pending = Some(Bytes::from(answer));
        // Pending is fine here: the waker is registered and the bytes stay queued.
        let _ = self.poll_pending(cx);
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrorsAsJson<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrorsAsJson<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.replace(cx, buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // A bodiless answer is its head alone, in the first slice.
        if let Some(head) = bufs.first()
            && bufs[1..].iter().all(|buf| buf.is_empty())
            && this.replace(cx, head)
        {
            return Poll::Ready(Ok(head.len()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Whether `headers`' `field` (`Content-Type`, `Accept`) lists `media` (case-insensitive,
/// parameters such as `; charset=utf-8` ignored). A value that is not visible ASCII lists
/// nothing (as `HeaderValue::to_str` refuses it).
pub fn names_media_type(headers: Headers<'_>, field: Field, media: &str) -> bool {
    let mut each = headers.all(field);
    if let (Some(only), None) = (each.next(), each.next())
        && only.eq_ignore_ascii_case(media.as_bytes())
    {
        // The common case, one value that is the type alone: no splitting.
        return true;
    }
    headers
        .all(field)
        .filter_map(visible_ascii)
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.split(';').next())
        .any(|item| item.trim().eq_ignore_ascii_case(media))
}

/// `value` as text when it is visible ASCII (tabs included), as `HeaderValue::to_str` takes it.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&byte| byte == b'\t' || (b' '..=b'~').contains(&byte))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// A request's body, and whether a handler read it to its end.
#[derive(Debug)]
pub struct RequestBody {
    source: BodySource,
    read: bool,
}

/// Where a request's body comes from.
#[derive(Debug)]
enum BodySource {
    /// hyper's stream of the body's frames.
    Incoming(Incoming),
    /// The whole body, read with its head by the direct lane ([`super::direct`]).
    Whole(Bytes),
}

impl RequestBody {
    /// `incoming`, not read yet.
    pub fn new(incoming: Incoming) -> RequestBody {
        RequestBody {
            source: BodySource::Incoming(incoming),
            read: false,
        }
    }

    /// A body already read whole, `bytes`.
    pub fn whole(bytes: Bytes) -> RequestBody {
        RequestBody {
            source: BodySource::Whole(bytes),
            read: false,
        }
    }

    /// Whether the connection can serve another request after the answer: the request had
    /// no body, or its body was read to the end. An answer given before its body arrived (a
    /// 401, 404, 405, 413 or 415) leaves the rest of the body on the connection: hyper then
    /// closes it, and whether it says so in the answer depends on when the body's bytes
    /// arrive; the router says `Connection: close` itself, so that a client always knows.
    pub fn leaves_connection_reusable(&self) -> bool {
        match &self.source {
            BodySource::Incoming(incoming) => {
                self.read || hyper::body::Body::is_end_stream(incoming)
            }
            BodySource::Whole(_) => true,
        }
    }
}

/// Reads a request body of at most `max_bytes`: 413 past it, by `Content-Length` before
/// reading or while reading. The body's frames are taken as they come: one frame (a body that
/// came with its head, the usual case) is answered as it is, without a copy; more are joined.
pub async fn read_body(body: &mut RequestBody, max_bytes: usize) -> Result<Bytes, ApiError> {
    let incoming = match &mut body.source {
        BodySource::Whole(bytes) if bytes.len() > max_bytes => {
            return Err(ApiError::too_large(max_bytes));
        }
        BodySource::Whole(bytes) => {
            body.read = true;
            return Ok(std::mem::take(bytes));
        }
        BodySource::Incoming(incoming) => incoming,
    };
    // hyper's size hint is the declared `Content-Length`, exactly.
    if hyper::body::Body::size_hint(incoming).lower() > max_bytes as u64 {
        return Err(ApiError::too_large(max_bytes));
    }
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::bad_request(
                "unreadable_body",
                format!("the request body could not be read: {error}"),
            )
        })?;
        // Trailers carry nothing a request body is read for.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let read = joined.as_ref().map_or(first.len(), BytesMut::len);
        if read + data.len() > max_bytes {
            return Err(ApiError::too_large(max_bytes));
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = BytesMut::with_capacity(first.len() + data.len());
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    body.read = true;
    Ok(joined.map_or(first, BytesMut::freeze))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_bodiless_parse_error_answers_are_replaced() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                          date: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n";
        let (status, answer) = unparsable_request_answer(hyper_431).expect("replaced");
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        assert!(answer.ends_with("\"code\":\"headers_too_large\",\"message\":\"the request head has too many headers or is too long\"}}"), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        // The server's own 400 (a JSON body), a 200, and a 404 hyper never sends: untouched.
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"{\"crv\": 1}",
        ] {
            assert!(unparsable_request_answer(head).is_none(), "{}", head.escape_ascii());
        }
    }

    #[test]
    fn media_types_are_found_whole_or_among_parameters_and_lists() {
        // Through hyper's map and through the direct lane's fields, the same answer.
        let named = |values: &[&str]| {
            let mut map = hyper::HeaderMap::new();
            let mut head = b"GET / HTTP/1.1\r\n".to_vec();
            for value in values {
                map.append(
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                );
                head.extend_from_slice(format!("Content-Type: {value}\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            let super::super::direct::HeadRead::Direct(read) =
                super::super::direct::read_head(&head, 0)
            else {
                panic!("the lane reads {}", head.escape_ascii())
            };
            let raw = Headers::Raw {
                bytes: &head,
                fields: &read.fields,
                places: &read.places,
            };
            let parsed = names_media_type(Headers::Parsed(&map), Field::ContentType, JSON);
            assert_eq!(names_media_type(raw, Field::ContentType, JSON), parsed);
            parsed
        };
        assert!(named(&["application/json"]));
        assert!(named(&["Application/JSON"]));
        assert!(named(&["application/json; charset=utf-8"]));
        assert!(named(&["text/plain, application/json"]));
        assert!(named(&["text/plain", " application/json ;q=1"]));
        assert!(!named(&[]));
        assert!(!named(&["application/jsonx"]));
        assert!(!named(&["text/plain", "application/json-seq"]));
        assert!(!named(&["application/json\u{e9}"]));
    }

    #[test]
    fn tokens_match_only_when_every_byte_does() {
        assert!(same_token(b"s3cret", b"s3cret"));
        assert!(!same_token(b"s3creT", b"s3cret"));
        assert!(!same_token(b"s3cre", b"s3cret"));
        assert!(!same_token(b"", b"s3cret"));
    }
}
