//! One keep-alive HTTP/1.1 client connection (hyper's `client::conn::http1` over a tokio
//! `TcpStream`): requests go one at a time, each answer read whole before the next is sent.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connected client; dropping it closes the connection.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `addr` (no Nagle delay, as the server sets too) and completes the handshake;
    /// the connection's I/O runs on a task of its own until either side closes it.
    pub async fn open(addr: SocketAddr) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| error.to_string())?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        // Its errors reach the caller through `send` on the same connection.
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends `request` and reads the whole answer; the error is the failure's kind.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String> {
        self.sender.ready().await.map_err(transport_failure)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(transport_failure)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(transport_failure)?
            .to_bytes();
        Ok((status, body))
    }
}

/// A short, countable kind for a hyper error (the report groups errors by it).
fn transport_failure(error: hyper::Error) -> String {
    let kind = if error.is_incomplete_message() {
        "connection closed mid-response"
    } else if error.is_closed() || error.is_canceled() {
        "connection closed"
    } else if error.is_parse() || error.is_parse_status() {
        "unparsable response"
    } else if error.is_timeout() {
        "timeout"
    } else {
        "transport error"
    };
    format!("transport: {kind}")
}
