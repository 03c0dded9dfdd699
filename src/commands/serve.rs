//! `crv serve`: opens and scores the store once, logs how long that took, then serves HTTP
//! until SIGINT or SIGTERM and drains in-flight requests before exiting 0.

use std::sync::Arc;
use std::time::Instant;

use crv::api::log_sink::LogSink;
use crv::api::logging::{self, AccessLog, JsonLines};
use crv::api::{self, AppState};
use crv::error::{Error, Result};
use crv::synthetic::demo::{DEMO_CUSTOMERS, demo_store};
use tracing_subscriber::EnvFilter;

use super::millis;
use crate::cli::{FsyncArg, LogFormat, ServeCommand};
use crv::live::{FsyncPolicy, Live, LiveOptions};

/// Customer ids named at start-up, for a first `curl`.
const EXAMPLE_IDS: usize = 3;

/// Runs `crv serve`; the log level comes from `RUST_LOG` (default `info`), the format from
/// `--log-format`.
///
/// Log lines (one per request at info: the access log, formatted by
/// [`crv::api::logging::AccessLog`] in the same format) are formatted on the thread that logs
/// them and written to stderr in batches by a thread of their own ([`LogSink`]: every 20 ms),
/// so a request never waits for a `write` to stderr nor wakes the writer. Lines are never
/// dropped: when 16 MiB wait, loggers wait too. The guard flushes what is left when `serve`
/// returns.
pub fn serve(args: &ServeCommand) -> Result<()> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (writer, _flush_on_return) = LogSink::spawn("crv-log", std::io::stderr())
        .map_err(|e| Error::io("<log writer thread>", e))?;
    let log = tracing_subscriber::fmt().with_writer(writer.clone());
    let format = match args.log_format {
        LogFormat::Text => {
            log.with_env_filter(filter()).init();
            logging::LogFormat::Text
        }
        LogFormat::Json => {
            log.event_format(JsonLines).with_env_filter(filter()).init();
            logging::LogFormat::Json
        }
    };
    let params = args.score.params();
    let scheme = args.score.scheme();
    let config = args.config();
    params.validate()?;
    scheme.validate()?;
    config.validate()?;
    let token = match &args.token_env {
        Some(name) => Some(std::env::var(name).map_err(|error| {
            Error::invalid(
                "token-env",
                format!("environment variable `{name}`: {error}"),
            )
        })?),
        None => std::env::var(DEFAULT_TOKEN_ENV)
            .ok()
            .filter(|token| !token.is_empty()),
    };
    super::warn_about_discount(params.discount);

    let path = match &args.store {
        Some(path) => path.clone(),
        None => {
            let started = Instant::now();
            let path = demo_store(&args.data_dir, DEMO_CUSTOMERS)?;
            tracing::info!(
                store = %path.display(),
                customers = DEMO_CUSTOMERS,
                ready_ms = millis(started.elapsed()),
                "demo store ready (generated on first use, reused afterwards)"
            );
            path
        }
    };
    let started = Instant::now();
    if args.verify {
        super::open_store(&path, true)?;
        tracing::info!(store = %path.display(), verify_ms = millis(started.elapsed()), "verified the store");
    }
    let started = Instant::now();
    let valuation = super::valuation(&args.score.valuation)?;
    let mut state = AppState::open_valued(&path, params, scheme, valuation, config)?
        .with_token(token)?
        .with_currency(&args.currency)?
        .with_insecure_writes(args.insecure_writes)
        .with_access_log(AccessLog::direct(format, writer));
    if !args.huge_pages {
        // The scored table keeps the huge pages it got (every event and lookup reads it: the
        // batches ran ~8% slower with it on 4 KiB pages); the replayed overlay and what is
        // touched while serving get 4 KiB pages (see `--huge-pages` for why).
        if let Err(error) = api::os::no_huge_pages_from_now() {
            tracing::warn!(%error, "transparent huge pages stay on (prctl PR_SET_THP_DISABLE failed)");
        }
    }
    if let Some(wal) = &args.wal {
        let live = open_live(args, &path, wal, &state)?;
        state = state.with_live(live);
    }
    if !config.copy_to_memory {
        // A page of a truncated mapped file faults with SIGBUS: say which file before dying.
        api::os::report_store_faults(&path).map_err(|e| Error::io("<SIGBUS handler>", e))?;
    }
    let table = state.table();
    tracing::info!(
        store = %path.display(),
        customers = table.rows(),
        discount = params.discount,
        horizon = %params.horizon,
        max_running = config.admission.max_running,
        max_waiting = config.admission.max_waiting,
        heavy_nice = config.heavy_nice,
        max_body_bytes = config.max_body_bytes,
        header_timeout_ms = config.header_timeout.as_millis() as u64,
        max_connections = config.max_connections,
        drain_timeout_ms = config.drain_timeout.as_millis() as u64,
        copy_to_memory = config.copy_to_memory,
        io_threads = config.io_threads,
        token_required = state.requires_token(),
        open_ms = millis(state.open_time()),
        score_ms = millis(table.score_time()),
        tiers_ms = millis(table.tier_time()),
        total_ms = millis(started.elapsed()),
        "scored the store"
    );
    let examples: Vec<String> = (0..table.rows().min(EXAMPLE_IDS))
        .map(|row| table.customer_id(row).to_string())
        .collect();
    drop(table);

    let listen_error = |e| Error::io(format!("<listen on {}>", args.addr), e);
    // The first reactor ([`api::reactors`]): the accept loop and its share of connections.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr.as_str())
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        tracing::info!(%addr, "listening");
        if args.insecure_writes && !addr.ip().is_loopback() {
            return Err(Error::invalid(
                "insecure-writes",
                format!(
                    "the server listens on {addr}, beyond loopback: give a token (`CRV_TOKEN` \
                     or --token-env NAME) instead"
                ),
            ));
        }
        if !addr.ip().is_loopback() && !state.requires_token() {
            tracing::warn!(
                %addr,
                "listening beyond loopback without a token: anyone who reaches this address \
                 can run selections and simulations; give --token-env NAME"
            );
        }
        if let Some(first) = examples.first() {
            tracing::info!(
                ids = ?examples,
                "customer ids in this store, e.g. curl http://{addr}/v1/customers/{first}"
            );
        }
        let state = Arc::new(state);
        if let Some(live) = state.live() {
            // A compaction's store becomes the next version (a weak handle: the state owns
            // the live state).
            let state = Arc::downgrade(&state);
            live.on_compaction(Box::new(move |store| match state.upgrade() {
                Some(state) => state.publish(state.table().successor(store)?).map(drop),
                None => Ok(()),
            }));
        }
        let served = api::serve(listener, Arc::clone(&state), shutdown_signal()).await;
        if let Some(live) = state.live() {
            live.close();
            tracing::info!(last_sequence = live.last_sequence(), "event log closed");
        }
        // The process ends next: the served state (an overlay of millions of changed
        // customers takes seconds to free one allocation at a time) is left to the operating
        // system, which takes the memory back at once. Everything durable is closed above.
        std::mem::forget(Arc::clone(&state));
        served.map_err(listen_error)
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// The environment variable the token is read from without --token-env.
const DEFAULT_TOKEN_ENV: &str = "CRV_TOKEN";

/// Opens the event log `wal` of the store at `path` and replays it over the served table,
/// logging what the replay found (a torn tail it truncated, a salvaged middle).
fn open_live(
    args: &ServeCommand,
    path: &std::path::Path,
    wal: &std::path::Path,
    state: &AppState,
) -> Result<Arc<Live>> {
    let started = Instant::now();
    let options = LiveOptions {
        wal: wal.to_path_buf(),
        store_path: path.to_path_buf(),
        fsync: match args.fsync {
            FsyncArg::Always => FsyncPolicy::Always,
            FsyncArg::Everysec => FsyncPolicy::EverySec,
            FsyncArg::No => FsyncPolicy::No,
        },
        salvage: args.salvage,
        compact_bytes: args.compact_bytes,
    };
    let (live, replay) = Live::serve(state.table(), options)?;
    for warning in &replay.warnings {
        tracing::warn!("event log: {warning}");
    }
    tracing::info!(
        wal = %wal.display(),
        fsync = ?args.fsync,
        checkpoint = replay.checkpoint,
        replayed = replay.replayed,
        skipped = replay.skipped,
        last_sequence = live.last_sequence(),
        replay_ms = millis(started.elapsed()),
        writes = if state.requires_token() { "token" } else if args.insecure_writes { "insecure" } else { "disabled (no token)" },
        "replayed the event log"
    );
    Ok(live)
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM. If a handler cannot be installed, that
/// signal is logged and ignored rather than stopping the server at once.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
