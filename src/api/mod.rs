//! The HTTP server (DESIGN.md, "HTTP API"): hyper 1.x over tokio with an accept loop of its own.
//! Every customer is scored once, before serving; requests read that [`AppState`], and heavy
//! ones (selections, with their re-scoring) run on the heavy rayon pool behind the [`admission`]
//! queue, never on the reactor threads. Limits come from [`ServerConfig`]; every request is
//! counted in [`metrics`].

pub mod admission;
pub mod binary;
pub mod body;
pub mod fuzz;
mod handlers;
mod json;
pub mod metrics;
pub mod request;
mod routes;
pub mod wire;

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rayon::prelude::*;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::kernel::{self, Scored, TierScheme};
use crate::model::{CustomerId, ScoreParams};
use crate::store::Store;
use admission::{Admission, AdmissionLimits};
use binary::CustomerScore;
use metrics::Metrics;
use wire::{
    ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, DEFAULT_HEADER_TIMEOUT, DEFAULT_HEAVY_NICE,
    DEFAULT_MAX_BODY_BYTES, DRAIN_TIMEOUT, MAX_NICE_STEPS,
};

/// The server's limits, from `crv serve`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Heavy requests running and waiting (`--max-running`, `--max-waiting`).
    pub admission: AdmissionLimits,
    /// Nice steps the heavy pool runs below the server's priority, 0..=19 (`--heavy-nice`).
    pub heavy_nice: u8,
    /// Largest request body in bytes, >= 1; a longer one gets 413 (`--max-body-bytes`).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request head, > 0; it is disconnected after
    /// (`--header-timeout-ms`). Also how long an idle keep-alive connection is kept.
    pub header_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            admission: AdmissionLimits::default(),
            heavy_nice: DEFAULT_HEAVY_NICE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

impl ServerConfig {
    /// Rejects limits under which the server could not work, naming the flag: no heavy request
    /// ever running, no body accepted, or every connection dropped at once.
    pub fn validate(&self) -> Result<()> {
        if self.admission.max_running == 0 {
            return Err(Error::invalid(
                "max-running",
                format!(
                    "0 (with {} waiting): no selection could ever run; give at least 1",
                    self.admission.max_waiting
                ),
            ));
        }
        for (flag, value) in [
            ("max-running", self.admission.max_running),
            ("max-waiting", self.admission.max_waiting),
        ] {
            if value > crate::limits::MAX_HEAVY_REQUESTS {
                return Err(Error::invalid(
                    flag,
                    format!("{value}: at most {}", crate::limits::MAX_HEAVY_REQUESTS),
                ));
            }
        }
        if self.heavy_nice > MAX_NICE_STEPS {
            return Err(Error::invalid(
                "heavy-nice",
                format!(
                    "{}: nice steps go from 0 (the server's priority) to {MAX_NICE_STEPS}",
                    self.heavy_nice
                ),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::invalid(
                "max-body-bytes",
                "0: no request body would fit; give at least 1",
            ));
        }
        if self.header_timeout.is_zero() {
            return Err(Error::invalid(
                "header-timeout-ms",
                "0: every connection would be dropped before its request; give at least 1",
            ));
        }
        Ok(())
    }
}

/// Every customer's CRV, tier, rank and percentile as one record per row (in parallel).
fn row_records(scored: &Scored) -> Vec<CustomerScore> {
    let tiers = &scored.tiers;
    (
        &scored.crv[..],
        &tiers.tier[..],
        &tiers.rank[..],
        &tiers.percentile[..],
    )
        .into_par_iter()
        .map(|(&crv, &tier, &rank, &percentile)| CustomerScore {
            crv,
            tier,
            rank,
            percentile,
        })
        .collect()
}

/// What every request reads: the store, its scores and tiers, the limits, the admission queue
/// and the metrics.
#[derive(Debug)]
pub struct AppState {
    store: Store,
    params: ScoreParams,
    scheme: TierScheme,
    scored: Arc<Scored>,
    /// `scored` row by row, one 16-byte record per customer: a lookup reads one cache line
    /// instead of one from each of four columns.
    served: Vec<CustomerScore>,
    open_time: Duration,
    config: ServerConfig,
    admission: Admission,
    metrics: Metrics,
}

impl AppState {
    /// Opens the store at `path`, scores every customer with `params` and tiers them by
    /// `scheme` (on the rayon pool, blocking the caller); the server then runs within `config`.
    /// Fails on an invalid `config`, parameters or store.
    pub fn open(
        path: &Path,
        params: ScoreParams,
        scheme: TierScheme,
        config: ServerConfig,
    ) -> Result<AppState> {
        config.validate()?;
        let started = Instant::now();
        let store = Store::open(path)?;
        let open_time = started.elapsed();
        let scored = kernel::score_store(&store, &params, &scheme)?;
        let served = row_records(&scored);
        Ok(AppState {
            store,
            params,
            scheme,
            scored: Arc::new(scored),
            served,
            open_time,
            config,
            admission: Admission::new(config.admission, config.heavy_nice)
                .map_err(|e| Error::io("<heavy request pool>", e))?,
            metrics: Metrics::default(),
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

    /// The tier scheme of the served scores, and of any per-request re-scoring.
    pub fn scheme(&self) -> &TierScheme {
        &self.scheme
    }

    /// Every customer's CRV and tier, and how long scoring took.
    pub fn scored(&self) -> &Scored {
        &self.scored
    }

    /// The served scores, shared with a response that outlives the request (a CSV stream).
    pub fn shared_scored(&self) -> Arc<Scored> {
        Arc::clone(&self.scored)
    }

    /// How long opening the store took.
    pub fn open_time(&self) -> Duration {
        self.open_time
    }

    /// The server's limits.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The queue heavy requests go through.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The counters behind `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The served score of customer `id`, `None` when it is not in the store.
    pub fn score(&self, id: CustomerId) -> Option<CustomerScore> {
        self.store.row_of(id).map(|row| self.served[row])
    }

    /// The served scores of `ids` in order, `None` for an id not in the store: one batched
    /// index probe ([`Store::rows_of`]), then one record per found id.
    pub fn scores(&self, ids: &[u64]) -> Vec<Option<CustomerScore>> {
        let mut rows = Vec::new();
        self.store.rows_of(ids, &mut rows);
        rows.into_iter()
            .map(|row| row.map(|row| self.served[row]))
            .collect()
    }
}

/// Serves HTTP/1.1 (keep-alive) and HTTP/2 on `listener` until `shutdown` completes; then stops
/// accepting and lets in-flight connections finish within [`DRAIN_TIMEOUT`]. Accept errors are
/// logged and retried after a growing pause; the function returns only after shutdown. A
/// client that has not sent a whole request head within the configured header timeout is
/// disconnected.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let header_timeout = state.config().header_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let builder = Arc::new(builder);
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
                let builder = Arc::clone(&builder);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // hyper's header timer starts once the first bytes tell HTTP/1 from HTTP/2:
                    // a client that sends nothing at all is dropped here instead. (`peek`, not
                    // `readable`, which may report a fresh socket readable before any byte.)
                    let mut first_byte = [0u8; 1];
                    let peeked = stream.peek(&mut first_byte);
                    if tokio::time::timeout(header_timeout, peeked).await.is_err() {
                        tracing::debug!(%peer, "no request within the header timeout");
                        return;
                    }
                    let service =
                        service_fn(move |request| routes::route(Arc::clone(&state), request));
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
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
