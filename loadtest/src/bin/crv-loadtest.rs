//! `crv-loadtest`: closed- or open-loop load against a `crv serve` on loopback. Parses the flags, reads
//! the served store's ids, runs the scenario on a tokio runtime of `--threads` workers and
//! prints the report (and, with `--json`, one JSON object on the last line). Exits 1 when any
//! answer was wrong, 2 when the run could not start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use crv::api::wire::MAX_LOOKUP_IDS;
use crv::limits::MAX_EVENTS_PER_REQUEST;
use crv_loadtest::run::{self, Plan, SelectionPlan, StreamPlan};
use crv_loadtest::scenario::Scenario;
use crv_loadtest::workload::{Popularity, Workload};
use crv_loadtest::{Error, Result};

/// Share of the store's total `cost` a mixed run's selections spend by default: a campaign of a
/// tenth of what contacting everyone would cost, an exact knapsack over all 10^6 customers.
const DEFAULT_BUDGET_SHARE: f64 = 0.10;
/// The highest `--rate`: far beyond what one core answers, low enough that a connection's
/// period stays a meaningful duration.
const MAX_RATE: f64 = 1e8;
/// Target ids a selection answers: enough to check, small enough that the figure is the solve.
const SELECTION_MAX_IDS: usize = 100;

/// Closed- or open-loop HTTP/1.1 load against `crv serve` on this machine (loopback only).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server; loopback only (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = crv_loadtest::loopback::parse_loopback)]
    addr: SocketAddr,
    /// The store file the server serves: lookups ask for its ids.
    #[arg(long)]
    store: PathBuf,
    /// What to send.
    #[arg(long, value_enum, default_value = "uniform")]
    scenario: Scenario,
    /// Keep-alive connections, each sending its next request as soon as an answer arrives
    /// (or, with `--rate`, when it is due).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Open loop: requests a second over all `--connections` (not counting a stream's or a
    /// selection's), each connection sending on a fixed schedule; latency counts from the
    /// time a request was due, so a server that falls behind is charged for the wait
    /// [default: the closed loop].
    #[arg(long)]
    rate: Option<f64>,
    /// Tokio worker threads (1: pin the generator to one core with `taskset -c 1`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measurement, excluded from the figures.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many measured requests, if that comes before `--duration`.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Share of ids asked for that are deliberately absent (404, or `found: false`).
    #[arg(long, default_value_t = 0.0)]
    miss_rate: f64,
    /// Zipf exponent of the `zipf` scenario.
    #[arg(long, default_value_t = 1.0)]
    zipf_s: f64,
    /// Ids per request of the batch scenarios.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Budget of the mixed scenario's selections, in the `cost` column's units [default: a
    /// tenth of the store's total cost].
    #[arg(long)]
    select_budget: Option<f64>,
    /// Seconds from one selection's start to the next in the mixed scenario.
    #[arg(long, default_value_t = 1.0)]
    select_interval: f64,
    /// Check the body of every N-th answer per connection (0: status only, e.g. against
    /// bare-hyper, whose fixed body names no requested id).
    #[arg(long, default_value_t = 16)]
    check_every: u64,
    /// Events a second of the events-mixed scenario's stream (batches of `--batch`).
    #[arg(long, default_value_t = 100_000.0)]
    event_rate: f64,
    /// Connections the events-mixed scenario's stream is spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    stream_connections: u32,
    /// The environment variable holding the server's bearer token, sent with event requests.
    #[arg(long, default_value = "CRV_TOKEN")]
    token_env: String,
    /// Seed of the id choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match load(&args) {
        Ok(errors) if errors > 0 => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crv-loadtest: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load test and prints its report; returns how many answers were wrong.
fn load(args: &Args) -> Result<u64> {
    let duration = seconds("--duration", args.duration, false)?;
    let warmup = seconds("--warmup", args.warmup, true)?;
    let (limit, what) = if args.scenario.writes() {
        (MAX_EVENTS_PER_REQUEST, "events")
    } else {
        (MAX_LOOKUP_IDS, "ids")
    };
    if !(1..=limit).contains(&args.batch) {
        return Err(Error::Usage(format!(
            "--batch {} is not between 1 and the server's limit of {limit} {what}",
            args.batch
        )));
    }
    let popularity = match args.scenario {
        Scenario::Zipf => Popularity::Zipf {
            exponent: args.zipf_s,
        },
        _ => Popularity::Uniform,
    };
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE)
    {
        return Err(Error::Usage(format!(
            "--rate {rate} is not a number of requests a second > 0 and <= {MAX_RATE}"
        )));
    }
    let workload = Workload::from_store(&args.store, popularity, args.miss_rate, args.seed)?;
    let selections = match args.scenario {
        Scenario::Mixed => Some(SelectionPlan {
            budget: match args.select_budget {
                Some(budget) if budget.is_finite() && budget >= 0.0 => budget,
                Some(budget) => {
                    return Err(Error::Usage(format!(
                        "--select-budget {budget} must be a finite amount >= 0"
                    )));
                }
                None => DEFAULT_BUDGET_SHARE * total_cost(&args.store)?,
            },
            interval: seconds("--select-interval", args.select_interval, false)?,
            max_ids: SELECTION_MAX_IDS,
        }),
        _ => None,
    };
    let stream = match args.scenario {
        Scenario::EventsMixed if args.event_rate.is_finite() && args.event_rate > 0.0 => {
            Some(StreamPlan {
                rate: args.event_rate,
                batch: args.batch,
                connections: args.stream_connections as usize,
            })
        }
        Scenario::EventsMixed => {
            return Err(Error::Usage(format!(
                "--event-rate {} must be a finite number of events a second > 0",
                args.event_rate
            )));
        }
        _ => None,
    };
    let token = match std::env::var(&args.token_env) {
        Ok(token) => Some(token),
        Err(_) if args.scenario.writes() => {
            return Err(Error::Usage(format!(
                "{} is not set: event scenarios send the server's bearer token from it",
                args.token_env
            )));
        }
        Err(_) => None,
    };
    if let Some(selections) = &selections {
        eprintln!(
            "mixed: a selection with budget {:.0} every {:?}",
            selections.budget, selections.interval
        );
    }
    let plan = Plan {
        target: args.addr,
        scenario: args.scenario,
        connections: args.connections as usize,
        rate: args.rate,
        batch: args.batch,
        duration,
        warmup,
        max_requests: args.max_requests,
        check_every: args.check_every,
        seed: args.seed,
        selections,
        token,
        stream,
    };
    eprintln!(
        "{}: {} customers in {}, {} connections on {} thread(s) to {}, {:?} warm-up + {:?}",
        args.scenario.name(),
        workload.customers(),
        args.store.display(),
        args.connections,
        args.threads,
        args.addr,
        warmup,
        duration
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "starting the tokio runtime".into(),
            source,
        })?;
    let report = runtime.block_on(run::run(plan, Arc::new(workload)))?;
    print!("{report}");
    if args.json {
        println!("{}", report.to_json());
    }
    Ok(report.errors())
}

/// `value` seconds as a duration; `zero_ok` for a warm-up that may be skipped.
fn seconds(flag: &str, value: f64, zero_ok: bool) -> Result<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if zero_ok || !duration.is_zero() => Ok(duration),
        _ => Err(Error::Usage(format!(
            "{flag} {value} is not a number of seconds{}",
            if zero_ok { " >= 0" } else { " > 0" }
        ))),
    }
}

/// The sum of the store's `cost` column (the default campaign resource).
fn total_cost(path: &std::path::Path) -> Result<f64> {
    let store = crv::Store::open(path).map_err(Error::Store)?;
    let costs = store.numeric("cost").map_err(Error::Store)?;
    Ok(costs.iter().map(|&cost| f64::from(cost)).sum())
}
