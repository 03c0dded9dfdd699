//! The command line's subcommands and flags (DESIGN.md, "Command line"). Declared from
//! `main.rs`, so the library never sees argv.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use crv::api::admission::AdmissionLimits;
use crv::api::wire::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_HEAVY_NICE, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RUNNING, DEFAULT_MAX_WAITING,
};
use crv::api::{ServerConfig, default_max_connections};
use crv::kernel::TierScheme;
use crv::{Horizon, ScoreParams};

/// crv: customer relationship value — score, tier and select customers.
#[derive(Debug, Parser)]
#[command(name = "crv", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write realistic synthetic customers as CSV.
    Gen(GenArgs),
    /// Turn a customer CSV into a store file (progress on stderr).
    Import(ImportArgs),
    /// Show a store's rows, columns, sizes and checksums.
    Info(InfoArgs),
    /// Score every customer (CRV) and sort them into value tiers.
    Score(ScoreCommand),
    /// Choose the customers a campaign should serve under a budget, exactly.
    Select(SelectCommand),
    /// Run what-if scenarios (scoring and campaign) in one batch, with the budget frontier.
    Simulate(SimulateCommand),
    /// Score a store once and serve its scores, tiers and selections over HTTP.
    Serve(ServeCommand),
}

/// `crv gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of customers to generate (at most 1,000,000,000).
    #[arg(long)]
    pub customers: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// `crv import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The customer CSV (header row; `customer_id` required).
    pub csv: PathBuf,
    /// The store file to write (replaced atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `crv info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The store file.
    pub store: PathBuf,
    /// Also check every checksum and every value's domain.
    #[arg(long)]
    pub verify: bool,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Scoring parameters shared by every command that scores.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Discount rate per period (0.10 = 10%).
    #[arg(long, default_value_t = 0.10)]
    pub discount: f64,
    /// Periods valued: a whole number >= 1, or `inf`.
    #[arg(long, default_value = "5")]
    pub horizon: Horizon,
    /// ABC cut points as shares of positive value, e.g. `0.8,0.95`.
    #[arg(long, value_parser = parse_cuts, conflicts_with = "quantiles")]
    pub tier_cuts: Option<(f64, f64)>,
    /// Tiers by count instead: top share and next share of positive customers, e.g. `0.2,0.5`.
    #[arg(long, value_parser = parse_cuts)]
    pub quantiles: Option<(f64, f64)>,
}

impl ScoreArgs {
    /// The scoring parameters.
    pub fn params(&self) -> ScoreParams {
        ScoreParams {
            discount: self.discount,
            horizon: self.horizon,
        }
    }

    /// The tier scheme: cumulative value (default 0.80/0.95) unless `--quantiles` is given.
    pub fn scheme(&self) -> TierScheme {
        match (self.tier_cuts, self.quantiles) {
            (_, Some((a, b))) => TierScheme::Quantile { a, b },
            (Some((a, b)), None) => TierScheme::CumulativeValue { a, b },
            (None, None) => TierScheme::default(),
        }
    }
}

/// Two comma-separated cut points.
fn parse_cuts(text: &str) -> Result<(f64, f64), String> {
    let cuts: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not two comma-separated numbers"))?;
    match cuts.as_slice() {
        [a, b] => Ok((*a, *b)),
        _ => Err(format!("`{text}`: give exactly two cuts, e.g. 0.8,0.95")),
    }
}

/// `crv score`.
#[derive(Debug, Args)]
pub struct ScoreCommand {
    /// The store file.
    pub store: PathBuf,
    /// Scoring and tier parameters.
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
    /// Write one row per customer: customer_id,crv,tier,rank,percentile.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `crv select`.
#[derive(Debug, Args)]
pub struct SelectCommand {
    /// The store file.
    pub store: PathBuf,
    /// Total resource available (TR), in the cost column's units.
    #[arg(long)]
    pub budget: f64,
    /// The numeric column with each customer's resource use (CR).
    #[arg(long, default_value = "cost")]
    pub cost: String,
    /// Integer resource units per cost unit (100: cents); the optimum is exact at this grain.
    #[arg(long, default_value_t = 100.0)]
    pub resource_scale: f64,
    /// Who may be targeted, e.g. `segment in (gold, silver) and tier = A and margin > 100`.
    #[arg(long = "where", default_value = "")]
    pub filter: String,
    /// Stop the search after this many seconds with the best set and a certified gap (0 to
    /// 86400; anything else is an error).
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Scoring and tier parameters.
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
    /// Write the chosen customers: customer_id,crv,cost,tier.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `crv simulate`.
#[derive(Debug, Args)]
pub struct SimulateCommand {
    /// The store file.
    pub store: PathBuf,
    /// The scenarios: a JSON object with `scenarios` (a list) and/or `sweep` (field -> values).
    #[arg(long)]
    pub scenarios: PathBuf,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
    /// Write one row per scenario as CSV (without it the rows go to stdout).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Write the frontier (budget,objective,spend,roi,optimal,gap) as CSV.
    #[arg(long)]
    pub frontier: Option<PathBuf>,
    /// Draw the frontier as an SVG chart with the knee marked.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The scenario whose frontier is traced (default: the first).
    #[arg(long)]
    pub frontier_scenario: Option<String>,
    /// Budgets on the frontier's grid, from 0 to the total eligible cost (2 to 1000).
    #[arg(long, default_value_t = crv::simulate::frontier::DEFAULT_POINTS)]
    pub frontier_points: usize,
    /// Stop each selection's search after this many seconds with a certified gap (0 to 86400;
    /// anything else is an error).
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// `crv serve`.
#[derive(Debug, Args)]
pub struct ServeCommand {
    /// The store file (memory-mapped, scored once at start).
    #[arg(required_unless_present = "demo", conflicts_with = "demo")]
    pub store: Option<PathBuf>,
    /// Serve a generated demo store of one million customers: made once in `--data-dir`,
    /// reused afterwards.
    #[arg(long)]
    pub demo: bool,
    /// Where `--demo` keeps its store.
    #[arg(long, default_value = "crv-demo-data")]
    pub data_dir: PathBuf,
    /// Address to listen on, `host:port` (a name such as `localhost:8080` is resolved; the
    /// first address that binds is used); loopback by default.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen_addr)]
    pub addr: String,
    /// Scoring and tier parameters.
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
    /// Heavy requests (selections) computing at once, >= 1.
    #[arg(long, default_value_t = DEFAULT_MAX_RUNNING)]
    pub max_running: usize,
    /// Heavy requests waiting for a turn beyond those running; more get 503.
    #[arg(long, default_value_t = DEFAULT_MAX_WAITING)]
    pub max_waiting: usize,
    /// How many nice steps (0-19) below the server's own CPU priority selections and
    /// simulations run, so lookups get the core first while one computes (Linux).
    #[arg(long, default_value_t = DEFAULT_HEAVY_NICE)]
    pub heavy_nice: u8,
    /// Largest request body in bytes, >= 1; a longer one gets 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Milliseconds a client may take to send a request head (and an idle keep-alive
    /// connection is kept), >= 1; it is disconnected after.
    #[arg(long, default_value_t = DEFAULT_HEADER_TIMEOUT.as_millis() as u64)]
    pub header_timeout_ms: u64,
    /// Connections open at once, >= 1; one more is answered 503 and closed at once (default:
    /// the descriptor limit `ulimit -n` less 64).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Milliseconds shutdown waits for in-flight requests before exiting anyway.
    #[arg(long, default_value_t = DEFAULT_DRAIN_TIMEOUT.as_millis() as u64)]
    pub drain_timeout_ms: u64,
    /// Read the store into memory instead of mapping it: uses its size in RAM, and
    /// truncating or rewriting the file can no longer crash the server.
    #[arg(long)]
    pub copy_to_memory: bool,
    /// Require `Authorization: Bearer <token>` on heavy endpoints (`/v1/select`,
    /// `/v1/simulate`), the token read from this environment variable.
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,
    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How `crv serve` writes its log lines (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T03:00:00Z  INFO target: message key=value ...`.
    Text,
    /// `{"timestamp", "level", "target", "message", fields...}`, one object per line.
    Json,
}

/// A listen address: an IP socket address, or `host:port` with a name resolved at bind time.
fn parse_listen_addr(text: &str) -> Result<String, String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(text.to_string());
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "`{text}` is not `host:port` (e.g. 127.0.0.1:8080, localhost:8080, [::1]:8080)"
        )),
    }
}

impl ServeCommand {
    /// The server's limits from the flags (validated by [`ServerConfig::validate`]).
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            admission: AdmissionLimits {
                max_running: self.max_running,
                max_waiting: self.max_waiting,
            },
            heavy_nice: self.heavy_nice,
            max_body_bytes: self.max_body_bytes,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            max_connections: self.max_connections.unwrap_or_else(default_max_connections),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms),
            copy_to_memory: self.copy_to_memory,
        }
    }
}
