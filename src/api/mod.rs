//! The HTTP server (README.md, "The server"): an accept loop of its own over tokio; plain
//! HTTP/1.1 requests answered by the [`direct`] lane, everything else by hyper 1.x.
//! The [`AppState`] holds the current version of the customer [`Table`], scored and tiered
//! before it is served; a newer version is published atomically ([`AppState::publish`]) and
//! every request holds the version it started on for its whole run. Heavy requests
//! (selections, with their re-scoring, simulations and campaign plans) run on the heavy rayon pool behind the
//! [`admission`] queue, never on the reactor threads. Limits come from [`ServerConfig`]; every
//! request is counted in [`metrics`].

pub mod admission;
pub mod binary;
pub mod body;
mod campaigns;
pub mod dashboard;
pub mod direct;
mod events;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handlers;
mod json;
pub mod log_sink;
pub mod logging;
pub mod metrics;
pub mod os;
pub mod reactors;
pub mod request;
pub mod request_head;
mod routes;
pub mod wire;

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rayon::prelude::*;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};
use crate::kernel::TierScheme;
use crate::live::{Live, LiveScore};
use crate::model::{CustomerId, ExternalId, ScoreParams};
use crate::store::Store;
use crate::svg::DEFAULT_CURRENCY;
use crate::table::{Table, Valuation};
use admission::{Admission, AdmissionLimits};
use binary::{CustomerOutlook, CustomerScore, ServedCustomer};
use metrics::Metrics;
use request::LookupKey;
use request_head::{Field, Headers};
use wire::{
    ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, ApiError, CONNECTION_RESERVE, DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_HEAVY_NICE, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS_UNLIMITED, MAX_NICE_STEPS, ParseErrorsAsJson,
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
    /// Connections open at once, >= 1; one more is accepted and closed at once with a 503
    /// (`--max-connections`). Default: [`default_max_connections`].
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before giving up on them
    /// (`--drain-timeout-ms`).
    pub drain_timeout: Duration,
    /// Read the store into memory instead of mapping it, so that truncating or rewriting the
    /// file cannot fault the server (`--copy-to-memory`).
    pub copy_to_memory: bool,
    /// Reactors serving connections, 1..=[`reactors::MAX_IO_THREADS`] (`--io-threads`).
    /// Default: [`reactors::default_io_threads`].
    pub io_threads: usize,
}

/// The default connection cap: the descriptor limit (`ulimit -n`) less
/// [`CONNECTION_RESERVE`] descriptors for the store, the log, the runtime and the refusals
/// themselves, at least 1; [`DEFAULT_MAX_CONNECTIONS_UNLIMITED`] without a limit.
pub fn default_max_connections() -> usize {
    os::descriptor_limit().map_or(DEFAULT_MAX_CONNECTIONS_UNLIMITED, |limit| {
        usize::try_from(limit.saturating_sub(CONNECTION_RESERVE))
            .unwrap_or(usize::MAX)
            .max(1)
    })
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            admission: AdmissionLimits::default(),
            heavy_nice: DEFAULT_HEAVY_NICE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: default_max_connections(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            copy_to_memory: false,
            io_threads: reactors::default_io_threads(),
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
        if self.max_connections == 0 {
            return Err(Error::invalid(
                "max-connections",
                "0: every connection would be refused; give at least 1",
            ));
        }
        if !(1..=reactors::MAX_IO_THREADS).contains(&self.io_threads) {
            return Err(Error::invalid(
                "io-threads",
                format!(
                    "{}: give 1 to {} reactor threads",
                    self.io_threads,
                    reactors::MAX_IO_THREADS
                ),
            ));
        }
        Ok(())
    }
}

/// One published version: the table and, for lookups, every customer's CRV, tier, rank and
/// percentile as one 16-byte record per row (a lookup reads one cache line instead of one from
/// each of four columns).
#[derive(Debug)]
pub struct Served {
    table: Arc<Table>,
    records: Vec<CustomerScore>,
    /// P(alive) and expected purchases per row, for a table valued by a purchase model.
    outlooks: Option<Vec<CustomerOutlook>>,
    /// The dashboard's summary of this version, encoded ([`dashboard::summary::encode`]):
    /// about a second of work at 10^7 customers, done once, on first use or on the heavy pool
    /// once the version is served ([`AppState::summarize_in_background`]), so that neither a
    /// start-up nor a publication waits for it.
    summary: OnceLock<bytes::Bytes>,
}

impl Served {
    /// `table` ready to serve: its full tiers (ranks and percentiles) computed, on the rayon
    /// pool, and laid out row by row.
    fn new(table: Arc<Table>) -> Served {
        let tiers = table.tiers();
        let records = (
            table.crv(),
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
            .collect();
        let outlooks = table.outlook().map(|outlook| {
            (&outlook.p_alive[..], &outlook.expected_purchases[..])
                .into_par_iter()
                .map(|(&p_alive, &expected_purchases)| CustomerOutlook {
                    p_alive,
                    expected_purchases,
                })
                .collect()
        });
        Served {
            table,
            records,
            outlooks,
            summary: OnceLock::new(),
        }
    }

    /// The dashboard's summary of this version, encoded: computed by the first caller (the
    /// others wait for it).
    fn summary(&self) -> bytes::Bytes {
        self.summary
            .get_or_init(|| dashboard::summary::encode(&self.table, self.table.tiers()).into())
            .clone()
    }

    /// What is served of the customer in `row`.
    fn customer(&self, row: usize) -> ServedCustomer {
        ServedCustomer {
            score: self.records[row],
            outlook: self.outlooks.as_ref().map(|outlooks| outlooks[row]),
        }
    }

    /// What is served of customer `id`, `None` when it is not in the table.
    fn score(&self, id: CustomerId) -> Option<ServedCustomer> {
        self.table.store().row_of(id).map(|row| self.customer(row))
    }
}

/// A thread's cached handle on a server's current version.
type ServedHandle = Cache<Arc<ArcSwap<Served>>, Arc<Served>>;

thread_local! {
    /// This thread's handle on the last server's current version it read: revalidated with
    /// one atomic load per lookup ([`Cache::load`]), so a lookup pays nothing else for the
    /// versioning. It keeps that version alive until this thread's next lookup.
    static SERVED: RefCell<Option<ServedHandle>> = const { RefCell::new(None) };
}

/// What every request reads: the current table with its lookup records, the limits, the
/// admission queue and the metrics.
#[derive(Debug)]
pub struct AppState {
    /// The current version; replaced whole by [`AppState::publish`].
    current: Arc<ArcSwap<Served>>,
    open_time: Duration,
    config: ServerConfig,
    admission: Admission,
    metrics: Metrics,
    /// The bearer token heavy endpoints require, if any (`--token-env`).
    token: Option<BearerToken>,
    /// The live events state (`--wal`), if the server takes events.
    live: Option<Arc<Live>>,
    /// Whether write endpoints run without a token (`--insecure-writes`, loopback only).
    insecure_writes: bool,
    /// The served file, open while the server runs to hold a shared advisory lock (`flock`)
    /// on it; `None` for a store copied into memory.
    _lock: Option<File>,
    /// Connections open now (counted against `config.max_connections`).
    connections: AtomicUsize,
    /// Set once shutdown has begun: `/readyz` then answers 503.
    draining: AtomicBool,
    /// The number of the next request without an `X-Request-Id` of its own.
    next_request_id: AtomicU64,
    /// The currency of CRV and costs, as the dashboard labels them (`--currency`).
    currency: String,
    /// The campaign plans kept for `GET /v1/campaigns/{id}`.
    plans: campaigns::Plans,
    /// The dashboard's picture of the purchase model (`--model`), encoded once
    /// ([`dashboard::model::encode`]).
    model_summary: Option<bytes::Bytes>,
    /// Where each request's access line goes.
    access_log: logging::AccessLog,
}

impl AppState {
    /// Opens the store at `path` (mapped, under a shared advisory lock, or with
    /// `config.copy_to_memory` read into memory), scores every customer with `params` and tiers
    /// them by `scheme` (on the rayon pool, blocking the caller): version 1 of the served
    /// table; the server then runs within `config`. Fails on an invalid `config`, parameters or
    /// store, or when another process holds an exclusive lock on the file (it declares it is
    /// rewriting it in place).
    pub fn open(
        path: &Path,
        params: ScoreParams,
        scheme: TierScheme,
        config: ServerConfig,
    ) -> Result<AppState> {
        AppState::open_valued(path, params, scheme, Valuation::Retention, config)
    }

    /// [`AppState::open`] with the customers valued by `valuation` (a purchase model's
    /// lookups also answer `p_alive` and `expected_purchases`, and the dashboard's picture of
    /// the model is computed here, once: [`dashboard::model::encode`]).
    pub fn open_valued(
        path: &Path,
        params: ScoreParams,
        scheme: TierScheme,
        valuation: Valuation,
        config: ServerConfig,
    ) -> Result<AppState> {
        config.validate()?;
        let started = Instant::now();
        let (store, lock) = if config.copy_to_memory {
            (Store::open_in_memory(path)?, None)
        } else {
            let lock = lock_shared(path)?;
            (Store::open(path)?, Some(lock))
        };
        let open_time = started.elapsed();
        let model_summary = match &valuation {
            Valuation::Purchases(model) => Some(
                serde_json::to_vec(&dashboard::model::encode(model, &store)?)
                    .expect("a JSON value always encodes")
                    .into(),
            ),
            Valuation::Retention => None,
        };
        let table = Table::valued(Arc::new(store), params, scheme, valuation)?;
        Ok(AppState {
            current: Arc::new(ArcSwap::from_pointee(Served::new(Arc::new(table)))),
            open_time,
            config,
            admission: Admission::new(config.admission, config.heavy_nice)
                .map_err(|e| Error::io("<heavy request pool>", e))?,
            metrics: Metrics::default(),
            token: None,
            live: None,
            insecure_writes: false,
            _lock: lock,
            connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            next_request_id: AtomicU64::new(1),
            currency: DEFAULT_CURRENCY.to_string(),
            plans: campaigns::Plans::default(),
            model_summary,
            access_log: logging::AccessLog::Tracing,
        })
    }

    /// The state, with heavy endpoints requiring `Authorization: Bearer <token>`; `None` leaves
    /// them open. Fails on an empty token (every caller would pass it).
    pub fn with_token(self, token: Option<String>) -> Result<AppState> {
        if token.as_deref() == Some("") {
            return Err(Error::invalid(
                "token-env",
                "the variable is empty: give a non-empty token",
            ));
        }
        Ok(AppState {
            token: token.map(|token| BearerToken(token.into_bytes().into_boxed_slice())),
            ..self
        })
    }

    /// The state taking events through `live` (replayed over this state's table); write
    /// endpoints answer 403 without it.
    pub fn with_live(self, live: Arc<Live>) -> AppState {
        AppState {
            live: Some(live),
            ..self
        }
    }

    /// The state writing its access log through `access_log`.
    pub fn with_access_log(self, access_log: logging::AccessLog) -> AppState {
        AppState { access_log, ..self }
    }

    /// Where each request's access line goes.
    pub(crate) fn access_log(&self) -> &logging::AccessLog {
        &self.access_log
    }

    /// The state with write endpoints open without a token (`--insecure-writes`; the caller
    /// checks that the server listens on loopback only).
    pub fn with_insecure_writes(self, insecure_writes: bool) -> AppState {
        AppState {
            insecure_writes,
            ..self
        }
    }

    /// The campaign plans kept.
    pub(crate) fn plans(&self) -> &campaigns::Plans {
        &self.plans
    }

    /// The live events state, if the server takes events.
    pub fn live(&self) -> Option<&Arc<Live>> {
        self.live.as_ref()
    }

    /// Lets a write or admin request through with the right bearer token (401 without it or
    /// with a wrong one); without a configured token only under `--insecure-writes`, else 403.
    pub fn authorize_write(&self, headers: Headers<'_>) -> std::result::Result<(), ApiError> {
        match (&self.token, self.insecure_writes) {
            (Some(_), _) => self.authorize(headers),
            (None, true) => Ok(()),
            (None, false) => Err(ApiError::writes_disabled()),
        }
    }

    /// The state with CRV and costs labelled in `currency` (an ISO 4217 code such as `EUR`,
    /// or a symbol); fails on an empty or overlong one.
    pub fn with_currency(self, currency: &str) -> Result<AppState> {
        crate::svg::check_currency(currency)?;
        Ok(AppState {
            currency: currency.to_string(),
            ..self
        })
    }

    /// The currency of CRV and costs (`--currency`).
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The current version's encoded dashboard summary ([`dashboard::summary::encode`]); a
    /// version whose summary is not computed yet has it computed (or waits for the background
    /// job computing it) on a blocking thread, never on the reactor.
    pub async fn summary(&self) -> std::result::Result<bytes::Bytes, ApiError> {
        let served = self.current.load_full();
        if let Some(summary) = served.summary.get() {
            return Ok(summary.clone());
        }
        tokio::task::spawn_blocking(move || served.summary())
            .await
            .map_err(|error| {
                tracing::error!(%error, "computing the dashboard summary failed");
                ApiError::internal()
            })
    }

    /// Computes the current version's dashboard summary on the heavy pool, at its lower CPU
    /// priority, so that the dashboard finds it ready: called when the server starts serving
    /// (not before: a start-up's replay of the event log has the cores) and at each
    /// publication.
    pub fn summarize_in_background(&self) {
        let served = self.current.load_full();
        self.admission.spawn_background(move || {
            served.summary();
        });
    }

    /// The purchase model's dashboard picture, encoded, when the customers are valued by one.
    pub fn model_summary(&self) -> Option<&bytes::Bytes> {
        self.model_summary.as_ref()
    }

    /// Whether heavy endpoints require a bearer token.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Lets a heavy request through when the server requires no token or `headers` carry
    /// `Authorization: Bearer <token>` with the right token (compared in constant time);
    /// otherwise a 401.
    pub fn authorize(&self, headers: Headers<'_>) -> std::result::Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let offered = headers
            .get(Field::Authorization)
            .and_then(|value| {
                let scheme = value.get(..7)?;
                scheme
                    .eq_ignore_ascii_case(b"bearer ")
                    .then(|| value[7..].trim_ascii())
            })
            .unwrap_or_default();
        if wire::same_token(offered, &token.0) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
    }

    /// Why the server would not take more work now: `draining` once shutdown has begun,
    /// `at_capacity` while every connection slot is taken; `None` when ready (`GET /readyz`).
    pub fn unready_reason(&self) -> Option<&'static str> {
        if self.is_draining() {
            Some("draining")
        } else if self.open_connections() >= self.config.max_connections {
            Some("at_capacity")
        } else {
            None
        }
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The id of a request without one of its own: a number unique in this process.
    pub fn new_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes one of `config.max_connections` slots, `None` when all are taken; the slot is
    /// given back when the returned guard drops.
    fn open_connection(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let open = self.connections.fetch_add(1, Ordering::Relaxed);
        if open >= self.config.max_connections {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(ConnectionSlot(Arc::clone(self)))
    }

    /// The current version of the served table, held by the caller for as long as it needs
    /// it: a version published meanwhile does not change what the caller sees.
    pub fn table(&self) -> Arc<Table> {
        Arc::clone(&self.current.load().table)
    }

    /// Publishes `table` as the served version: its full tiers and lookup records are
    /// computed first (on the rayon pool, blocking the caller), then it replaces the current
    /// version in one atomic store. Requests already running keep the version they hold;
    /// later ones see this one. Fails unless `table.version()` is the current version plus
    /// one (versions only move forward, one at a time); returns the version published.
    pub fn publish(&self, table: Table) -> Result<u64> {
        let version = table.version();
        let current = self.current.load_full();
        let stale = |current: u64| {
            Error::invalid(
                "version",
                format!(
                    "cannot publish version {version} over version {current}: the next one is {}",
                    current + 1
                ),
            )
        };
        if version != current.table.version() + 1 {
            return Err(stale(current.table.version()));
        }
        let served = Arc::new(Served::new(Arc::new(table)));
        let table = Arc::clone(&served.table);
        let previous = self.current.compare_and_swap(&current, served);
        if !Arc::ptr_eq(&previous, &current) {
            return Err(stale(previous.table.version()));
        }
        if let Some(live) = &self.live {
            live.rank_against(table);
        }
        self.summarize_in_background();
        Ok(version)
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

    /// `read` of the current version through this thread's cached handle: one atomic load
    /// when the version has not changed since this thread's last lookup.
    fn with_served<R>(&self, read: impl FnOnce(&Served) -> R) -> R {
        SERVED.with(|slot| {
            let mut slot = slot.borrow_mut();
            let ours = slot
                .as_ref()
                .is_some_and(|cache| std::ptr::eq(cache.arc_swap(), &*self.current));
            if !ours {
                *slot = Some(Cache::new(Arc::clone(&self.current)));
            }
            let cache = slot.as_mut().expect("set just above");
            read(cache.load())
        })
    }

    /// What is served of customer `id` (score, and outlook under a purchase model), `None`
    /// when it is not in the table.
    pub fn score(&self, id: CustomerId) -> Option<ServedCustomer> {
        if let Some(score) = self.live.as_ref().and_then(|live| live.score(id.0)) {
            return Some(live_customer(score));
        }
        self.with_served(|served| served.score(id))
    }

    /// The served scores of `ids` in order, `None` for an id not in the table, all from one
    /// version: one batched index probe ([`Store::rows_of`]), then one record per found id.
    pub fn scores(&self, ids: &[u64]) -> Vec<Option<ServedCustomer>> {
        self.with_served(|served| self.scores_in(served, ids))
    }

    fn scores_in(&self, served: &Served, ids: &[u64]) -> Vec<Option<ServedCustomer>> {
        let mut rows = Vec::new();
        served.table.store().rows_of(ids, &mut rows);
        rows.into_iter()
            .zip(ids)
            .map(
                |(row, &id)| match self.live.as_ref().and_then(|live| live.score(id)) {
                    Some(score) => Some(live_customer(score)),
                    None => row.map(|row| served.customer(row)),
                },
            )
            .collect()
    }

    /// [`AppState::scores`] of a JSON lookup's ids: whole numbers take the numeric path
    /// unchanged; strings are text ids (or whole numbers written as text), found by
    /// [`Store::internal_id`].
    pub fn scores_of_keys(&self, keys: &[LookupKey]) -> Vec<Option<ServedCustomer>> {
        self.with_served(|served| {
            let store = served.table.store();
            let text_ids = store.text_ids().is_some();
            let internal: Vec<Option<u64>> = keys
                .iter()
                .map(|key| match key {
                    LookupKey::Number(id) if !text_ids => Some(*id),
                    key => store.internal_id(&key.text()).map(|id| id.0),
                })
                .collect();
            let ids: Vec<u64> = internal.iter().map(|id| id.unwrap_or_default()).collect();
            self.scores_in(served, &ids)
                .into_iter()
                .zip(internal)
                .map(|(score, id)| id.and(score))
                .collect()
        })
    }

    /// The customer a path names (`/v1/customers/{id}`): in a store of whole-number ids a
    /// whole number (400 otherwise), in a store of text ids one of them (404 otherwise).
    pub fn path_id<'a>(&self, id: &'a str) -> Result<PathId<'a>, ApiError> {
        self.with_served(|served| match served.table.store().text_ids() {
            None => {
                let number = id.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_id",
                        format!("`{id}` is not a customer id (a whole number from 0 to 2^64 - 1)"),
                    )
                })?;
                Ok(PathId {
                    internal: CustomerId(number),
                    external: ExternalId::Number(number),
                })
            }
            Some(text) => match text.sorted_position(id) {
                Some(position) => Ok(PathId {
                    internal: CustomerId(position.into()),
                    external: ExternalId::Text(id),
                }),
                None => Err(ApiError::not_found(format!(
                    "customer {id} is not in the store"
                ))),
            },
        })
    }
}

/// A customer named by a request: the store's id for it and the id as the request wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId<'a> {
    /// The store's id ([`Store::ids`]).
    pub internal: CustomerId,
    /// The id as written, for answers.
    pub external: ExternalId<'a>,
}

/// What is served of a customer whose row events changed or created.
fn live_customer(score: LiveScore) -> ServedCustomer {
    ServedCustomer {
        score: CustomerScore {
            crv: score.crv,
            tier: score.tier,
            rank: score.rank,
            percentile: score.percentile,
        },
        outlook: score
            .outlook
            .map(|(p_alive, expected_purchases)| CustomerOutlook {
                p_alive,
                expected_purchases,
            }),
    }
}

/// Opens `path` and takes a shared advisory lock (`flock(LOCK_SH)`) on it, held while the
/// returned file is open: a tool that must rewrite a store in place can take an exclusive lock
/// to learn that it is served. Fails when another process holds an exclusive lock.
fn lock_shared(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process holds an exclusive lock on the store (rewriting it in place?); \
                 serve it once that is done, or serve a copy",
            ),
        )),
        Err(std::fs::TryLockError::Error(error)) => Err(Error::io(path, error)),
    }
}

/// The server's bearer token; its `Debug` form hides it, so that no log line shows it.
struct BearerToken(Box<[u8]>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// One of the server's connection slots, given back on drop.
struct ConnectionSlot(Arc<AppState>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Turns away a connection over the cap at once: a 503 if the socket takes it without
/// waiting, then close, so the listen queue never fills and no descriptor is held.
fn refuse_connection(state: &AppState, stream: TcpStream, peer: SocketAddr) {
    let refused = state.metrics().record_refused_connection();
    if refused.is_power_of_two() {
        tracing::warn!(
            %peer,
            max_connections = state.config().max_connections,
            refused,
            "connection cap reached: refusing connections (--max-connections)"
        );
    }
    // Whatever the client already sent is read first, so that closing does not reset the
    // connection before it reads the answer.
    let mut request = [0u8; 4096];
    let _ = stream.try_read(&mut request);
    let _ = stream.try_write(&wire::raw_error_response(&ApiError::at_capacity()));
}

/// Serves HTTP/1.1 (keep-alive) and HTTP/2 on `listener` until `shutdown` completes; then stops
/// accepting and lets in-flight connections finish within the configured drain timeout. Accept
/// errors are logged and retried after a growing pause; the function returns only after
/// shutdown. A client that has not sent a whole request head within the configured header
/// timeout is disconnected; a connection beyond the configured cap is answered 503 and closed
/// at once. Each connection starts on the [`direct`] lane and goes to hyper at the first
/// request the lane does not take; hyper's own answers to unparsable requests (400, 414, 431)
/// get a JSON error body. Connections are spread over the configured number of [`reactors`],
/// the caller's runtime the first of them; the others are stopped before the function returns.
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
    let mut reactors = reactors::Reactors::start(state.config().io_threads)?;
    state.summarize_in_background();
    let graceful = GracefulShutdown::new();
    // Tells the direct lane's connections waiting for a request to close.
    let stop_signal = tokio::sync::watch::Sender::new(false);
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
                let Some(slot) = state.open_connection() else {
                    refuse_connection(&state, stream, peer);
                    continue;
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, %peer, "set_nodelay failed");
                }
                let state = Arc::clone(&state);
                let builder = Arc::clone(&builder);
                let watcher = graceful.watcher();
                let mut stopping = stop_signal.subscribe();
                reactors.spawn(stream, move |stream| async move {
                    let _slot = slot;
                    let client = logging::client_text(peer);
                    // The watcher, held while the direct lane serves, keeps the drain waiting
                    // for this connection.
                    let (stream, unread) =
                        match direct::serve(stream, &state, &client, &mut stopping).await {
                            direct::Ending::Closed => return,
                            direct::Ending::Handover { stream, read } => (stream, read.freeze()),
                        };
                    let service = service_fn(move |request| {
                        routes::route(Arc::clone(&state), Arc::clone(&client), request)
                    });
                    let stream = direct::Rewound::new(unread, stream);
                    let stream = TokioIo::new(ParseErrorsAsJson::new(stream, peer));
                    let connection = builder.serve_connection(stream, service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.draining.store(true, Ordering::Relaxed);
    stop_signal.send_replace(true);
    let drain_timeout = state.config().drain_timeout;
    tracing::info!(
        open_connections = state.open_connections(),
        drain_timeout_ms = drain_timeout.as_millis() as u64,
        "shutting down: draining connections"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(drain_timeout) => {
            tracing::warn!(
                timeout = ?drain_timeout,
                open_connections = state.open_connections(),
                "connections still open after the drain timeout (--drain-timeout-ms)"
            );
        }
    }
    reactors.stop().await;
    Ok(())
}
