//! `bare-hyper`: the baseline the load test measures crv against — the least a hyper 1.x
//! HTTP/1.1 server on tokio can do, answering every request with the same small JSON body (the
//! shape and size of a crv customer answer). It serves loopback only, until killed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The one answer, as long as a typical `GET /v1/customers/{id}` body from crv.
const BODY: &[u8] =
    br#"{"customer_id":123456789012,"crv":1234.5678,"tier":"A","rank":12345,"percentile":98.7654}"#;
/// Pause after a failed accept (e.g. out of file descriptors), so the loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A minimal hyper server answering every request with a fixed JSON body.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1:8081", value_parser = crv_loadtest::loopback::parse_loopback)]
    addr: SocketAddr,
    /// Tokio worker threads: 1 (the default) is one current-thread runtime, as a `crv serve`
    /// pinned to one core runs; more, tokio's work-stealing runtime.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut builder = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(threads));
            builder
        }
    };
    let served = builder
        .enable_all()
        .build()
        .and_then(|runtime| runtime.block_on(serve(args.addr)));
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bare-hyper: {}: {error}", args.addr);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Accepts connections on `addr` forever; each is served on a task of its own.
async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("bare-hyper listening on {}", listener.local_addr()?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                eprintln!("bare-hyper: accept failed: {error}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Both sides of the crv comparison disable Nagle's algorithm.
        if let Err(error) = stream.set_nodelay(true) {
            eprintln!("bare-hyper: set_nodelay failed: {error}");
        }
        tokio::spawn(async move {
            let _closed = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(
    _request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
