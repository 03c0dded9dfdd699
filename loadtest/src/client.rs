//! One keep-alive HTTP/1.1 client connection over a tokio `TcpStream`: requests go one at a
//! time, each answer read whole before the next is sent.
//!
//! Written on the socket directly rather than through hyper's client: a load generator on one
//! core must cost less per request than the server it measures, or the figures are its own.
//! hyper's client runs each connection as a task of its own that hands every answer to the
//! requesting task through a channel (two tasks woken per request, a `Request` and a `Response`
//! with their header maps); here the request is one `write` of bytes written into a reused
//! buffer, and the answer is parsed in place (`httparse`, hyper's own parser) from a reused
//! read buffer. Answers with `Content-Length` and chunked answers are read; anything else (an
//! answer without either, whose end is the connection's) is read to the close.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Headers an answer may carry (crv sends about eight).
const MAX_HEADERS: usize = 64;
/// Bytes read at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Largest answer head; a longer one is refused as unparsable.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A connected client; dropping it closes the connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// The request being written (reused).
    out: Vec<u8>,
    /// Bytes read and not yet consumed (reused).
    input: BytesMut,
    /// The server said `Connection: close`, or the connection failed: later sends fail.
    closed: bool,
}

/// How an answer's body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Connection {
    /// Connects to `addr` (no Nagle delay, as the server sets too).
    pub async fn open(addr: SocketAddr) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| error.to_string())?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        Ok(Connection {
            stream,
            out: Vec::with_capacity(1024),
            input: BytesMut::with_capacity(READ_CHUNK),
            closed: false,
        })
    }

    /// Sends `request` and reads the whole answer; the error is the failure's kind.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String> {
        if self.closed {
            return Err(failure("connection closed"));
        }
        let (parts, body) = request.into_parts();
        let body = body_bytes(body);
        write_request(&parts, &body, &mut self.out);
        if self.stream.write_all(&self.out).await.is_err() {
            self.closed = true;
            return Err(failure("connection closed"));
        }
        let answer = self.read_answer().await;
        if answer.is_err() {
            self.closed = true;
        }
        answer
    }

    /// Reads one answer: its head, then its body as the head frames it.
    async fn read_answer(&mut self) -> Result<(StatusCode, Bytes), String> {
        let (status, framing, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.input) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = response
                        .code
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .ok_or_else(|| failure("unparsable response"))?;
                    let (framing, close) = framing_of(response.headers)?;
                    let _ = self.input.split_to(head_len);
                    // 1xx answers carry no body; crv sends none, but a proxy might: skip them.
                    if !status.is_informational() {
                        break (status, framing, close);
                    }
                }
                Ok(httparse::Status::Partial) if self.input.len() < MAX_HEAD_BYTES => {
                    self.fill(false).await?;
                }
                _ => return Err(failure("unparsable response")),
            }
        };
        let body = match framing {
            Framing::Length(length) => {
                while self.input.len() < length {
                    self.fill(true).await?;
                }
                self.input.split_to(length).freeze()
            }
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => {
                while self.fill_or_end().await? {}
                self.closed = true;
                self.input.split().freeze()
            }
        };
        if close {
            self.closed = true;
        }
        Ok((status, body))
    }

    /// Reads a chunked body (chunk extensions and trailers are skipped).
    async fn read_chunked(&mut self) -> Result<Bytes, String> {
        let mut body = BytesMut::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| failure("unparsable response"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body.freeze());
            }
            while self.input.len() < size + 2 {
                self.fill(true).await?;
            }
            body.extend_from_slice(&self.input[..size]);
            if &self.input[size..size + 2] != b"\r\n" {
                return Err(failure("unparsable response"));
            }
            let _ = self.input.split_to(size + 2);
        }
    }

    /// The next CRLF-ended line of the input, without its CRLF.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.input.windows(2).position(|pair| pair == b"\r\n") {
                let line = self.input.split_to(end + 2);
                return std::str::from_utf8(&line[..end])
                    .map(str::to_owned)
                    .map_err(|_| failure("unparsable response"));
            }
            if self.input.len() >= MAX_HEAD_BYTES {
                return Err(failure("unparsable response"));
            }
            self.fill(true).await?;
        }
    }

    /// Reads more input; the connection's end is an error (`mid_answer`: after the head).
    async fn fill(&mut self, mid_answer: bool) -> Result<(), String> {
        if self.fill_or_end().await? {
            Ok(())
        } else if mid_answer || !self.input.is_empty() {
            Err(failure("connection closed mid-response"))
        } else {
            Err(failure("connection closed"))
        }
    }

    /// Reads more input: `false` at the connection's end.
    async fn fill_or_end(&mut self) -> Result<bool, String> {
        self.input.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.input).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err(failure("transport error")),
        }
    }
}

/// The body of a request built with `Full` (one frame, or none).
fn body_bytes(body: Full<Bytes>) -> Bytes {
    use http_body_util::BodyExt;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // `Full` is ready at once: one poll yields its bytes, never `Pending`.
    let mut collect = std::pin::pin!(body.collect());
    match collect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(collected)) => collected.to_bytes(),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => unreachable!("a `Full` body is ready at once"),
    }
}

/// Writes `parts` and `body` as an HTTP/1.1 request into `out` (cleared first), with the
/// body's `Content-Length` when it has one or the method usually carries one.
fn write_request(parts: &hyper::http::request::Parts, body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let has_length = parts.headers.contains_key(hyper::header::CONTENT_LENGTH);
    let carries_body = !body.is_empty()
        || matches!(
            parts.method,
            hyper::Method::POST | hyper::Method::PUT | hyper::Method::PATCH
        );
    if carries_body && !has_length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// How the answer's body is framed, and whether the server closes the connection after it.
fn framing_of(headers: &[httparse::Header<'_>]) -> Result<(Framing, bool), String> {
    let mut framing = Framing::UntilClose;
    let mut close = false;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|value| value.trim().parse().ok())
                .ok_or_else(|| failure("unparsable response"))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(length);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if header
                .value
                .split(|&byte| byte == b',')
                .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            {
                framing = Framing::Chunked;
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= header
                .value
                .split(|&byte| byte == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    Ok((framing, close))
}

/// An error of kind `kind`, as the report counts them.
fn failure(kind: &str) -> String {
    format!("transport: {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers every request it reads with the next of `answers` (raw bytes,
    /// each written in pieces of `piece` bytes), then closes; returns its address and the
    /// requests it read.
    async fn scripted(
        answers: Vec<&'static [u8]>,
        piece: usize,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut requests = Vec::new();
            for answer in answers {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // A request ends with its head's empty line plus its content-length.
                loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed early");
                    request.extend_from_slice(&buf[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = std::str::from_utf8(&request[..end]).unwrap().to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length: "))
                            .map_or(0, |value| value.trim().parse::<usize>().unwrap());
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                requests.push(request);
                for part in answer.chunks(piece) {
                    socket.write_all(part).await.unwrap();
                    socket.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            requests
        });
        (addr, server)
    }

    fn post(body: &'static str) -> Request<Full<Bytes>> {
        Request::builder()
            .method("POST")
            .uri("/v1/events?x=1")
            .header("host", "here")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    fn get() -> Request<Full<Bytes>> {
        Request::builder()
            .uri("/v1/customers/7")
            .header("host", "here")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn reads_length_and_chunked_answers_in_any_pieces_on_one_connection() {
        for piece in [1, 3, 1000] {
            let (addr, server) = scripted(
                vec![
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
                    b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
                ],
                piece,
            )
            .await;
            let mut connection = Connection::open(addr).await.unwrap();
            let first = connection.send(post(r#"{"events":[]}"#)).await.unwrap();
            assert_eq!(first, (StatusCode::OK, Bytes::from_static(b"hello")));
            let second = connection.send(get()).await.unwrap();
            assert_eq!(
                second,
                (StatusCode::CREATED, Bytes::from_static(b"abc0123456789"))
            );
            let third = connection.send(get()).await.unwrap();
            assert_eq!(third, (StatusCode::NOT_FOUND, Bytes::new()));
            let requests = server.await.unwrap();
            assert_eq!(
                String::from_utf8(requests[0].clone()).unwrap(),
                "POST /v1/events?x=1 HTTP/1.1\r\nhost: here\r\ncontent-type: application/json\r\n\
                 content-length: 13\r\n\r\n{\"events\":[]}"
            );
            assert_eq!(
                String::from_utf8(requests[1].clone()).unwrap(),
                "GET /v1/customers/7 HTTP/1.1\r\nhost: here\r\n\r\n"
            );
        }
    }

    #[tokio::test]
    async fn a_close_mid_answer_an_unparsable_answer_and_connection_close_are_errors() {
        let (addr, _server) = scripted(
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
            100,
        )
        .await;
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(
            connection.send(get()).await,
            Err("transport: connection closed mid-response".to_string())
        );
        assert_eq!(
            connection.send(get()).await,
            Err("transport: connection closed".to_string())
        );

        let (addr, _server) = scripted(vec![b"SMTP ready\r\n\r\n"], 100).await;
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(
            connection.send(get()).await,
            Err("transport: unparsable response".to_string())
        );

        let (addr, _server) = scripted(
            vec![b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"],
            100,
        )
        .await;
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(
            connection.send(get()).await,
            Ok((StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}")))
        );
        assert_eq!(
            connection.send(get()).await,
            Err("transport: connection closed".to_string())
        );
    }

    #[tokio::test]
    async fn informational_heads_before_the_answer_are_skipped() {
        let (addr, _server) = scripted(
            vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
            5,
        )
        .await;
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(
            connection.send(get()).await,
            Ok((StatusCode::OK, Bytes::from_static(b"ok")))
        );
    }

    #[tokio::test]
    async fn an_answer_without_length_ends_with_the_connection() {
        let (addr, _server) = scripted(vec![b"HTTP/1.1 200 OK\r\n\r\nall of it"], 4).await;
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(
            connection.send(get()).await,
            Ok((StatusCode::OK, Bytes::from_static(b"all of it")))
        );
    }
}
