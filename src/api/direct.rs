//! The direct lane: the plain HTTP/1.1 requests of a connection (`GET` and `POST`, a body of
//! `Content-Length` bytes or none, here with its head) read and answered here, straight from
//! the socket, and everything else handed to hyper with the bytes already read.
//!
//! Why: a single event or lookup is a few microseconds of crv's own work, and hyper's
//! machinery around it (its dispatcher's state machine, a boxed timer per request head, the
//! body's frame stream, the response's encoding) cost as much again: a request of the events
//! scenario took ~24,000 instructions, of which bare hyper's ~9,700 (`loadtest/
//! instructions.sh`). This lane does what those requests need with one buffer per connection,
//! one timer per connection and one write per answer; the request is parsed by `httparse`
//! (the parser hyper itself uses), the router reads the head's path and fields where they lie
//! in the buffer ([`super::request_head`]), the body is a `Bytes` slice of it (no copy), and
//! the answer comes from the same router (`routes::answer`), with the same status, headers,
//! body, metrics and access line as through hyper.
//!
//! What goes to hyper, at the first request that needs it, with every byte not yet answered
//! (the rest of the connection is then hyper's): HTTP/1.0 and HTTP/2, any method but `GET`
//! and `POST`, a target that is not a path (`/` first) of the bytes a URI's path and query
//! take unescaped (absolute-form, `*`, a fragment, a byte a URI must escape: hyper's `Uri`
//! reads those), `Transfer-Encoding` (chunked bodies), `Expect`, `Upgrade`, a `Connection`
//! other than `keep-alive` or `close`, a `Content-Length` that is not one plain number or is
//! over the body limit (hyper answers 413), a head longer than [`MAX_HEAD_BYTES`] or of more
//! than [`MAX_HEADERS`] headers (hyper answers 431 past its own limits), a body that is not
//! all in the socket once the head is (hyper may answer before it arrives: a 401, a 413), and
//! anything `httparse` refuses (hyper answers 400).
//!
//! As under hyper: a client that does not send a whole request head within the header
//! timeout of the lane's starting to wait for it (idle keep-alive included) is disconnected;
//! a client that closes the connection while its request is answered cancels the answer
//! (hyper does not support half-closed connections either); shutdown closes a connection
//! waiting for its next request and lets one being answered finish.

use std::io::{self, Write as _};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

use super::AppState;
use super::body::Body;
use super::request_head::{Field, FieldPlaces, Headers, RequestHead, is_named};
use super::routes::{self, Answer, RequestId};
use super::wire::RequestBody;

/// Longest request head the lane reads; a longer one goes to hyper.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most headers a request the lane answers has; one with more goes to hyper.
pub const MAX_HEADERS: usize = 64;

/// Room the connection's buffer keeps for the next read.
const READ_BYTES: usize = 8 * 1024;

/// Answers of at most this many bytes are copied after their head and written in one call;
/// a longer body is written from its own buffer.
const COPIED_BODY_BYTES: usize = 16 * 1024;

/// How a connection's direct lane ended.
#[derive(Debug)]
pub enum Ending {
    /// The connection is closed (by either side, an error, a timeout or shutdown).
    Closed,
    /// A request the lane does not answer: hyper serves the connection from `read` (the
    /// bytes read and not answered) on.
    Handover {
        /// The connection.
        stream: TcpStream,
        /// The bytes read from it and not answered, the next request's first.
        read: BytesMut,
    },
}

/// What [`read_head`] found at the start of a connection's unanswered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadRead {
    /// A request head the lane answers.
    Direct(Head),
    /// Not a whole head yet: read more.
    Partial,
    /// A request for hyper (see the module's documentation).
    ForHyper,
}

/// A request head the lane answers, as positions in the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, its blank line included; the body follows.
    pub len: usize,
    /// Bytes of the body (`Content-Length`, 0 without one).
    pub body_len: usize,
    /// `POST` (else `GET`).
    pub post: bool,
    /// The request target's path: the target (origin-form, `/` first) up to its query.
    pub path: Range<usize>,
    /// Each header's name and value.
    pub fields: Vec<(Range<usize>, Range<usize>)>,
    /// Where the fields the router reads are among them.
    pub places: FieldPlaces,
    /// Whether the client asked to close the connection after the answer.
    pub close: bool,
}

/// Reads the request head at the start of `bytes` (the connection's unanswered bytes): which
/// of [`HeadRead`] it is, for a server whose bodies are at most `max_body_bytes`.
pub fn read_head(bytes: &[u8], max_body_bytes: usize) -> HeadRead {
    if bytes.is_empty() {
        // A connection's next request, not yet read: not even the headers' array is made.
        return HeadRead::Partial;
    }
    // Left uninitialised: httparse writes the fields it reads (a request has a few; setting
    // all 64 first is 2 KiB of stores a request).
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD_BYTES => {
            return HeadRead::Partial;
        }
        Ok(httparse::Status::Partial) | Err(_) => return HeadRead::ForHyper,
    };
    let post = match request.method {
        Some("GET") => false,
        Some("POST") => true,
        _ => return HeadRead::ForHyper,
    };
    let (Some(1), Some(target)) = (request.version, request.path) else {
        return HeadRead::ForHyper;
    };
    let Some(path_len) = path_len(target.as_bytes()) else {
        return HeadRead::ForHyper;
    };
    let at = |piece: &[u8]| {
        let start = piece.as_ptr() as usize - bytes.as_ptr() as usize;
        start..start + piece.len()
    };
    let mut head = Head {
        len,
        body_len: 0,
        post,
        path: at(&target.as_bytes()[..path_len]),
        fields: Vec::with_capacity(request.headers.len()),
        places: FieldPlaces::default(),
        close: false,
    };
    let mut lengths = 0;
    for (index, field) in request.headers.iter().enumerate() {
        let name = field.name.as_bytes();
        if let Some(read) = Field::named(name) {
            head.places.note(read, index);
        } else if is_named(name, "content-length") {
            lengths += 1;
            match plain_number(field.value) {
                Some(body_len) if lengths == 1 && body_len <= max_body_bytes => {
                    head.body_len = body_len;
                }
                _ => return HeadRead::ForHyper,
            }
        } else if is_named(name, "connection") {
            if field.value.eq_ignore_ascii_case(b"close") {
                head.close = true;
            } else if !field.value.eq_ignore_ascii_case(b"keep-alive") {
                return HeadRead::ForHyper;
            }
        } else if ["transfer-encoding", "expect", "upgrade"]
            .iter()
            .any(|refused| is_named(name, refused))
        {
            return HeadRead::ForHyper;
        }
        head.fields.push((at(name), at(field.value)));
    }
    HeadRead::Direct(head)
}

/// `digits` as a number when they are 1 to 19 ASCII digits and nothing else.
fn plain_number(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    usize::try_from(value).ok()
}

/// The length of the path of request target `target` when the lane answers it: an
/// origin-form target (`/` first) of the bytes RFC 3986 allows in a path and a query
/// (unreserved, sub-delimiters, `:`, `@`, `/`, `?`, `%`), the path ending at the first
/// `?`. Any other target (absolute-form, `*`, a `#`, bytes a URI must escape) goes to hyper,
/// whose `Uri` reads it.
fn path_len(target: &[u8]) -> Option<usize> {
    if target.first() != Some(&b'/') {
        return None;
    }
    // One pass, each byte's class read from a table (a check of every byte, then a search
    // for the `?`, took ~385 instructions on a 34-byte target, this ~310: callgrind).
    let mut path = target.len();
    for (at, &byte) in target.iter().enumerate() {
        match TARGET_BYTES[usize::from(byte)] {
            TargetByte::Refused => return None,
            TargetByte::Query => path = path.min(at),
            TargetByte::Path => {}
        }
    }
    Some(path)
}

/// What a byte is to [`path_len`].
#[derive(Clone, Copy)]
enum TargetByte {
    /// Not in an origin-form target the lane answers.
    Refused,
    /// The `?` that ends the path (the first one).
    Query,
    /// Allowed in a path and a query.
    Path,
}

/// The class of each byte in a target, for [`path_len`].
const TARGET_BYTES: [TargetByte; 256] = {
    let mut classes = [TargetByte::Refused; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b == b'?' {
            classes[byte] = TargetByte::Query;
        } else if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            )
        {
            classes[byte] = TargetByte::Path;
        }
        byte += 1;
    }
    classes
};

/// Serves `stream` from `client` until it closes or sends a request for hyper (see the
/// module's documentation). `stopping` turns true when the server shuts down.
pub async fn serve(
    mut stream: TcpStream,
    state: &Arc<AppState>,
    client: &Arc<str>,
    stopping: &mut watch::Receiver<bool>,
) -> Ending {
    let header_timeout = state.config().header_timeout;
    let max_body_bytes = state.config().max_body_bytes;
    let mut read = BytesMut::with_capacity(READ_BYTES);
    let mut answer_bytes = Vec::with_capacity(512);
    let deadline = tokio::time::sleep(header_timeout);
    tokio::pin!(deadline);
    let stop = stopping.changed();
    tokio::pin!(stop);
    let mut waiting_since_answer = true;
    loop {
        let head = match read_head(&read, max_body_bytes) {
            HeadRead::Direct(head) => head,
            HeadRead::ForHyper => return Ending::Handover { stream, read },
            HeadRead::Partial => {
                if state.is_draining() {
                    return Ending::Closed;
                }
                // The header timeout runs from the end of the last answer (or the start).
                if std::mem::take(&mut waiting_since_answer) {
                    deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + header_timeout);
                }
                if !fill(&mut stream, &mut read, deadline.as_mut(), stop.as_mut()).await {
                    return Ending::Closed;
                }
                continue;
            }
        };
        // The body must be here already: what the socket holds is taken without waiting. A
        // body still on its way goes to hyper, which may answer before it (a 401, a 413).
        let whole = head.len + head.body_len;
        if read.len() < whole && !take_available(&stream, &mut read, whole) {
            return Ending::Handover { stream, read };
        }
        let started = Instant::now();
        let head_bytes = read.split_to(head.len);
        // `str::from_utf8` here cost ~140 instructions a single event (callgrind), to check
        // again what `path_len` checked.
        #[allow(unsafe_code)]
        // SAFETY: `read_head` took the path only if every byte of it is ASCII (`path_len`),
        // so it is UTF-8.
        let path = unsafe { std::str::from_utf8_unchecked(&head_bytes[head.path.clone()]) };
        let method = if head.post { Method::POST } else { Method::GET };
        let request = RequestHead {
            method: &method,
            path,
            version: Version::HTTP_11,
            headers: Headers::Raw {
                bytes: &head_bytes,
                fields: &head.fields,
                places: &head.places,
            },
        };
        let body = read.split_to(head.body_len).freeze();
        let body = RequestBody::whole(body);
        let answering = routes::answer(state, client, request, body, started);
        // A client that closes its side before the answer has left: the answer is dropped
        // (a selection or simulation is cancelled), as hyper does.
        let answer = tokio::select! {
            biased;
            answer = answering => answer,
            () = client_leaves(&stream, &mut read, max_body_bytes) => return Ending::Closed,
        };
        let close = head.close || asks_to_close(&answer.response);
        if !write_answer(&mut stream, &mut answer_bytes, answer, head.close).await || close {
            return Ending::Closed;
        }
        waiting_since_answer = true;
    }
}

/// Reads into `read` what `stream` holds now, without waiting, until `read` holds `whole`
/// bytes: whether it does.
fn take_available(stream: &TcpStream, read: &mut BytesMut, whole: usize) -> bool {
    read.reserve(whole - read.len());
    while read.len() < whole {
        match stream.try_read_buf(read) {
            Ok(read) if read > 0 => {}
            _ => return false,
        }
    }
    true
}

/// Completes when the client closes the connection (or it fails); bytes it sends meanwhile
/// (its next requests, up to a head and a body's worth) are kept in `read`.
async fn client_leaves(stream: &TcpStream, read: &mut BytesMut, max_body_bytes: usize) {
    loop {
        if std::future::poll_fn(|cx| stream.poll_read_ready(cx))
            .await
            .is_err()
        {
            return;
        }
        if read.len() >= MAX_HEAD_BYTES + max_body_bytes {
            // Enough kept: the rest waits in the socket until this answer is written.
            return std::future::pending().await;
        }
        read.reserve(READ_BYTES);
        match stream.try_read_buf(read) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Reads what `stream` has into `read`; false when the connection ended, `deadline` passed
/// or `stop` completed.
async fn fill(
    stream: &mut TcpStream,
    read: &mut BytesMut,
    deadline: Pin<&mut Sleep>,
    stop: Pin<&mut impl Future<Output = Result<(), watch::error::RecvError>>>,
) -> bool {
    if read.capacity() - read.len() < READ_BYTES / 2 {
        read.reserve(READ_BYTES);
    }
    tokio::select! {
        biased;
        got = stream.read_buf(read) => matches!(got, Ok(n) if n > 0),
        () = deadline => {
            tracing::debug!("no whole request within the header timeout: connection closed");
            false
        }
        _ = stop => false,
    }
}

/// Whether `response` says the connection closes after it.
fn asks_to_close(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Writes `answer` on `stream` as HTTP/1.1, as hyper does: the status line, its headers and
/// request id, `content-length` for a whole body (chunked transfer for a streamed one),
/// `date`, and `connection: close` when `close` and the response lacks it; `buffer` is the
/// connection's, reused. False when the connection failed.
async fn write_answer(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    answer: Answer<'_>,
    close: bool,
) -> bool {
    let (parts, body) = answer.response.into_parts();
    buffer.clear();
    write_head(
        buffer,
        parts.status,
        &parts.headers,
        answer.request_id,
        close,
    );
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    match body.into_whole() {
        Ok(_) if bodiless => {
            buffer.extend_from_slice(b"\r\n");
            stream.write_all(buffer).await.is_ok()
        }
        Ok(bytes) => {
            buffer.extend_from_slice(b"content-length: ");
            buffer.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
            buffer.extend_from_slice(b"\r\n\r\n");
            if bytes.len() <= COPIED_BODY_BYTES {
                buffer.extend_from_slice(&bytes);
                stream.write_all(buffer).await.is_ok()
            } else {
                stream.write_all(buffer).await.is_ok() && stream.write_all(&bytes).await.is_ok()
            }
        }
        Err(mut chunks) => {
            buffer.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            if stream.write_all(buffer).await.is_err() {
                return false;
            }
            while let Some(chunk) = chunks.next_chunk() {
                buffer.clear();
                write!(buffer, "{:x}\r\n", chunk.len()).expect("writing to a Vec cannot fail");
                buffer.extend_from_slice(&chunk);
                buffer.extend_from_slice(b"\r\n");
                if stream.write_all(buffer).await.is_err() {
                    return false;
                }
            }
            stream.write_all(b"0\r\n\r\n").await.is_ok()
        }
    }
}

/// The status line, `headers`, `x-request-id`, `date` and (when `close` and `headers` lack
/// one) `connection: close` into `buffer`, each line ended; the blank line and the body's
/// length are the caller's.
fn write_head(
    buffer: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    request_id: RequestId<'_>,
    close: bool,
) {
    buffer.extend_from_slice(b"HTTP/1.1 ");
    buffer.extend_from_slice(status.as_str().as_bytes());
    buffer.put_u8(b' ');
    buffer.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    buffer.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        buffer.extend_from_slice(name.as_str().as_bytes());
        buffer.extend_from_slice(b": ");
        buffer.extend_from_slice(value.as_bytes());
        buffer.extend_from_slice(b"\r\n");
    }
    buffer.extend_from_slice(b"x-request-id: ");
    buffer.extend_from_slice(request_id.text(&mut itoa::Buffer::new()).as_bytes());
    buffer.extend_from_slice(b"\r\n");
    if close && !headers.contains_key(header::CONNECTION) {
        buffer.extend_from_slice(b"connection: close\r\n");
    }
    buffer.extend_from_slice(b"date: ");
    HTTP_DATE.with_borrow_mut(|date| buffer.extend_from_slice(date.now()));
    buffer.extend_from_slice(b"\r\n");
}

/// The `Date` of answers (`Sat, 05 Dec 2026 23:59:00 GMT`), formatted once a second.
struct HttpDate {
    second: u64,
    text: [u8; 29],
}

impl HttpDate {
    /// The date of this second.
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(now);
            if text.len() == self.text.len() {
                self.text.copy_from_slice(text.as_bytes());
            }
        }
        &self.text
    }
}

thread_local! {
    /// This reactor's date of answers.
    static HTTP_DATE: std::cell::RefCell<HttpDate> = const {
        std::cell::RefCell::new(HttpDate { second: u64::MAX, text: *b"Thu, 01 Jan 1970 00:00:00 GMT" })
    };
}

/// A connection handed to hyper: `unread` (the bytes the direct lane read and did not answer)
/// is read first, then the stream; writes go to the stream.
#[derive(Debug)]
pub struct Rewound<S> {
    unread: Bytes,
    inner: S,
}

impl<S> Rewound<S> {
    /// `inner`, after `unread`.
    pub fn new(unread: Bytes, inner: S) -> Self {
        Rewound { unread, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unread.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let len = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(len));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use hyper::Uri;
    use hyper::header::HeaderValue;

    use super::*;

    fn head_of(bytes: &[u8]) -> Head {
        match read_head(bytes, 1000) {
            HeadRead::Direct(head) => head,
            other => panic!("{other:?} for {}", bytes.escape_ascii()),
        }
    }

    #[test]
    fn plain_requests_are_read_with_their_body_length() {
        let bytes = b"POST /v1/events HTTP/1.1\r\nHost: crv\r\nContent-Length: 12\r\n\
                      Connection: keep-alive\r\n\r\n{\"events\":[]}";
        let head = head_of(bytes);
        assert_eq!(head.len, bytes.len() - 13);
        assert_eq!(head.body_len, 12);
        assert!(head.post && !head.close);
        assert_eq!(&bytes[head.path.clone()], b"/v1/events");
        let fields: Vec<(&[u8], &[u8])> = head
            .fields
            .iter()
            .map(|(name, value)| (&bytes[name.clone()], &bytes[value.clone()]))
            .collect();
        assert_eq!(
            fields,
            [
                (&b"Host"[..], &b"crv"[..]),
                (b"Content-Length", b"12"),
                (b"Connection", b"keep-alive")
            ]
        );
        let head = head_of(b"GET /v1/customers/7 HTTP/1.1\r\nconnection: Close\r\n\r\n");
        assert!(!head.post && head.close && head.body_len == 0);
    }

    #[test]
    fn targets_are_read_to_their_path() {
        for (target, path) in [
            ("/", "/"),
            ("/v1/customers/7", "/v1/customers/7"),
            (
                "/v1/customers/ann%40example.com?x=1&y=%20",
                "/v1/customers/ann%40example.com",
            ),
            ("/v1/tiers?", "/v1/tiers"),
            ("/a-b.c_d~e!$&'()*+,;=:@/?q?r", "/a-b.c_d~e!$&'()*+,;=:@/"),
        ] {
            let bytes = format!("GET {target} HTTP/1.1\r\n\r\n");
            let head = head_of(bytes.as_bytes());
            assert_eq!(&bytes[head.path.clone()], path);
            let uri: Uri = target.parse().unwrap();
            assert_eq!(uri.path(), path, "hyper's reading of {target}");
        }
    }

    proptest::proptest! {
        /// The one pass finds what its definition says: every byte one RFC 3986 allows in
        /// a path or a query, and the path up to the first `?`.
        #[test]
        fn a_target_is_taken_to_its_first_query_mark_when_every_byte_is_allowed(
            target in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"/?%azAZ09-._~!$&'()*+,;=:@".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..40,
            )
        ) {
            let allowed = |b: u8| {
                b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
            };
            let expected = (target.first() == Some(&b'/') && target.iter().all(|&b| allowed(b)))
                .then(|| target.iter().position(|&b| b == b'?').unwrap_or(target.len()));
            proptest::prop_assert_eq!(path_len(&target), expected);
        }
    }

    #[test]
    fn the_fields_the_router_reads_are_found_in_any_case() {
        let bytes = b"POST / HTTP/1.1\r\nContent-TYPE: a\r\nX-Request-Id: 7\r\n\
                      content-type: b\r\nContent-Length: 0\r\nACCEPT: c\r\n\r\n";
        let head = head_of(bytes);
        let headers = Headers::Raw {
            bytes,
            fields: &head.fields,
            places: &head.places,
        };
        let all: Vec<&[u8]> = headers.all(Field::ContentType).collect();
        assert_eq!(all, [&b"a"[..], b"b"]);
        assert_eq!(headers.get(Field::ContentType), Some(&b"a"[..]));
        assert_eq!(headers.get(Field::RequestId), Some(&b"7"[..]));
        assert_eq!(headers.get(Field::Accept), Some(&b"c"[..]));
        assert_eq!(headers.get(Field::Authorization), None);
        for name in [
            "x-request-ix",
            "content-typf",
            "authorizatio",
            "accepts",
            "Host",
        ] {
            assert_eq!(Field::named(name.as_bytes()), None, "{name}");
        }
        for field in Field::ALL {
            let upper = field.name().to_ascii_uppercase();
            assert_eq!(Field::named(upper.as_bytes()), Some(field));
        }
    }

    #[test]
    fn heads_not_yet_whole_are_partial_until_too_long() {
        assert_eq!(read_head(b"", 1000), HeadRead::Partial);
        assert_eq!(
            read_head(b"GET /healthz HTTP/1.1\r\nHo", 1000),
            HeadRead::Partial
        );
        let mut long = b"GET /healthz HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(read_head(&long, 1000), HeadRead::ForHyper);
    }

    #[test]
    fn what_hyper_answers_is_left_to_it() {
        for bytes in [
            &b"GET /healthz HTTP/1.0\r\n\r\n"[..],
            b"HEAD /healthz HTTP/1.1\r\n\r\n",
            b"PUT /v1/events HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: keep-alive, TE\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nContent-Length: +2\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nContent-Length: 1001\r\n\r\n",
            b"POST /v1/events HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"GET http://crv/v1/tiers HTTP/1.1\r\n\r\n",
            b"GET /v1/tiers#top HTTP/1.1\r\n\r\n",
            b"GET /a<b> HTTP/1.1\r\n\r\n",
            b"GET /a\"b HTTP/1.1\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            assert_eq!(
                read_head(bytes, 1000),
                HeadRead::ForHyper,
                "{}",
                bytes.escape_ascii()
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for at in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{at}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(read_head(&many, 1000), HeadRead::ForHyper);
    }

    #[test]
    fn content_lengths_are_plain_numbers() {
        assert_eq!(plain_number(b"0"), Some(0));
        assert_eq!(plain_number(b"0012"), Some(12));
        assert_eq!(
            plain_number(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for refused in [
            &b""[..],
            b" 1",
            b"1 ",
            b"-1",
            b"1e3",
            b"12345678901234567890",
        ] {
            assert_eq!(plain_number(refused), None, "{}", refused.escape_ascii());
        }
    }

    #[test]
    fn answers_are_written_as_hyper_writes_them() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut buffer = Vec::new();
        write_head(
            &mut buffer,
            StatusCode::NOT_FOUND,
            &headers,
            RequestId::Made(7),
            true,
        );
        let text = String::from_utf8(buffer).unwrap();
        let date = text.split("date: ").nth(1).unwrap();
        assert!(httpdate::parse_http_date(date.trim_end()).is_ok(), "{text}");
        assert!(
            text.starts_with(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nx-request-id: 7\r\n\
                 connection: close\r\ndate: "
            ),
            "{text}"
        );
    }
}
