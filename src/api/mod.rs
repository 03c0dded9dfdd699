//! The HTTP server (DESIGN.md, "HTTP API"): hyper 1.x over tokio with an accept loop of its own.
//! Every customer is scored once, before serving; requests read that [`AppState`], and heavy
//! ones run on the rayon pool behind the [`admission`] queue, never on the reactor threads.

pub mod admission;
pub mod binary;
mod handlers;
mod routes;
pub mod wire;

use std::future::Future;
use std::io;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::error::Result;
use crate::kernel::{self, Scored, TierScheme};
use crate::model::ScoreParams;
use crate::store::Store;
use admission::{Admission, AdmissionLimits};
use wire::{ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, DRAIN_TIMEOUT};

/// What every request reads: the store, its scores and tiers, and the admission queue.
#[derive(Debug)]
pub struct AppState {
    store: Store,
    params: ScoreParams,
    scored: Scored,
    admission: Admission,
}

impl AppState {
    /// Scores every customer of `store` with `params` and tiers them by `scheme` (on the rayon
    /// pool, blocking the caller); heavy requests are then admitted within `limits`.
    pub fn new(
        store: Store,
        params: ScoreParams,
        scheme: TierScheme,
        limits: AdmissionLimits,
    ) -> Result<AppState> {
        let scored = kernel::score_store(&store, &params, &scheme)?;
        Ok(AppState {
            store,
            params,
            scored,
            admission: Admission::new(limits),
        })
    }

    /// The served store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The parameters every customer was scored with.
    pub fn params(&self) -> &ScoreParams {
        &self.params
    }

    /// Every customer's CRV and tier, and how long scoring took.
    pub fn scored(&self) -> &Scored {
        &self.scored
    }

    /// The queue heavy requests go through.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }
}

/// Serves HTTP/1.1 (keep-alive) and HTTP/2 on `listener` until `shutdown` completes; then stops
/// accepting and lets in-flight connections finish within [`DRAIN_TIMEOUT`]. Accept errors are
/// logged and retried after a growing pause; the function returns only after shutdown.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, pause = ?backoff, "accept failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                        continue;
                    }
                };
                backoff = ACCEPT_BACKOFF_MIN;
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, %peer, "set_nodelay failed");
                }
                let state = Arc::clone(&state);
                let service = service_fn(move |request| routes::route(Arc::clone(&state), request));
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "connections still open after the drain timeout");
        }
    }
    Ok(())
}
