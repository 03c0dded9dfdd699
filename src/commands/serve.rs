//! `crv serve`: opens and scores the store once, logs how long that took, then serves HTTP
//! until SIGINT or SIGTERM and drains in-flight requests before exiting 0.

use std::sync::Arc;
use std::time::Instant;

use crv::api::{self, AppState};
use crv::error::{Error, Result};
use crv::synthetic::demo::{DEMO_CUSTOMERS, demo_store};
use tracing_subscriber::EnvFilter;

use super::millis;
use crate::cli::ServeCommand;

/// Runs `crv serve`; the log level comes from `RUST_LOG` (default `info`).
pub fn serve(args: &ServeCommand) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let params = args.score.params();
    let scheme = args.score.scheme();
    let config = args.config();
    params.validate()?;
    scheme.validate()?;
    config.validate()?;
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
    let state = AppState::open(&path, params, scheme, config)?;
    let scored = state.scored();
    tracing::info!(
        store = %path.display(),
        customers = scored.totals.customers,
        discount = params.discount,
        horizon = %params.horizon,
        max_running = config.admission.max_running,
        max_waiting = config.admission.max_waiting,
        heavy_nice = config.heavy_nice,
        max_body_bytes = config.max_body_bytes,
        header_timeout_ms = config.header_timeout.as_millis() as u64,
        open_ms = millis(state.open_time()),
        score_ms = millis(scored.score_time),
        tiers_ms = millis(scored.tier_time),
        total_ms = millis(started.elapsed()),
        "scored the store"
    );

    let listen_error = |e| Error::io(format!("<listen on {}>", args.addr), e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        tracing::info!(%addr, "listening");
        api::serve(listener, Arc::new(state), shutdown_signal())
            .await
            .map_err(listen_error)
    })?;
    tracing::info!("stopped");
    Ok(())
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
