//! The command line's subcommands and flags (README.md, "Command line"; the model behind them
//! in docs/model.md). Declared from `main.rs`, so the library never sees argv.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use crv::api::admission::AdmissionLimits;
use crv::api::reactors::default_io_threads;
use crv::api::wire::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_HEAVY_NICE, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RUNNING, DEFAULT_MAX_WAITING,
};
use crv::api::{ServerConfig, default_max_connections};
use crv::kernel::TierScheme;
use crv::{Horizon, ScoreParams};

/// crv: customer relationship value — score, tier and select customers.
#[derive(Debug, Parser)]
#[command(
    name = "crv",
    version,
    about,
    propagate_version = true,
    after_help = "The model (the CRV formula, tiers, selection, the input columns) is described in \
                  docs/model.md; the store file in docs/format.md; every command in README.md.\n\
                  Start with: crv gen --customers 100000 -o customers.csv && \
                  crv import customers.csv -o customers.crv && crv score customers.crv"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write realistic synthetic customers as CSV.
    #[command(after_help = "Example: crv gen --customers 1e6 --seed 7 -o customers.csv")]
    Gen(GenArgs),
    /// Turn a customer CSV into a store file (progress on stderr).
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Show a store's rows, columns, sizes and checksums.
    #[command(after_help = "Example: crv info customers.crv --verify")]
    Info(InfoArgs),
    /// Score every customer (CRV) and sort them into value tiers.
    #[command(after_help = SCORE_HELP)]
    Score(ScoreCommand),
    /// Choose the customers a campaign should serve under a budget, exactly.
    #[command(after_help = SELECT_HELP)]
    Select(SelectCommand),
    /// Run what-if scenarios (scoring and campaign) in one batch, with the budget frontier.
    #[command(after_help = SIMULATE_HELP)]
    Simulate(SimulateCommand),
    /// Score a store once and serve its scores, tiers and selections over HTTP.
    Serve(ServeCommand),
    /// Fit a purchase model (BG/NBD, Pareto/NBD) and a spend model (Gamma-Gamma) to the
    /// customers' purchase histories by maximum likelihood; write model.json.
    #[command(after_help = FIT_HELP)]
    Fit(FitCommand),
    /// Turn a purchase log into one RFM row per customer (frequency, recency, age,
    /// monetary_value), the input of the purchase models.
    #[command(after_help = RFM_HELP)]
    Rfm(RfmCommand),
    /// Fold a served store's event log (`crv serve --wal DIR`) into a new store file and
    /// restart the log after it; the server must be stopped.
    #[command(after_help = "Example: crv compact customers.crv --wal events/")]
    Compact(CompactCommand),
    /// Plan a campaign with several resources and offers: the certified best offer per
    /// customer, shadow prices, explanations.
    #[command(
        after_help = "Example: crv optimise customers.crv --campaign campaign.json --contacts contacts.csv -o assignment.csv --explain 42"
    )]
    Optimise(OptimiseCommand),
}

/// `crv compact`.
#[derive(Debug, Args)]
pub struct CompactCommand {
    /// The store the log was written against (replaced by the compacted store).
    pub store: PathBuf,
    /// The log directory.
    #[arg(long, value_name = "DIR")]
    pub wal: PathBuf,
    /// Compact even when a record in the middle of the log is corrupt, keeping the events
    /// before it.
    #[arg(long)]
    pub salvage: bool,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// When `crv serve --wal` makes logged events durable (Redis' `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// Before answering: a 200 means the event is on disk (one fsync per group of events).
    Always,
    /// About once a second.
    Everysec,
    /// Never: the operating system writes when it likes.
    No,
}

/// `crv fit --help`.
const FIT_HELP: &str = "\
Reads the store's frequency, recency, age (or T) and, with --spend, monetary_value columns.
The models and model.json are described in docs/model.md and README.md.

Example: crv fit customers.crv --model bgnbd --spend gamma-gamma -o model.json";

/// The purchase models `crv fit --model` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PurchaseModelArg {
    /// BG/NBD (Fader, Hardie & Lee 2005): r, alpha, a, b.
    Bgnbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987): r, alpha, s, beta.
    Pnbd,
}

/// The spend models `crv fit --spend` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpendModelArg {
    /// Gamma-Gamma (Colombo & Jiang 1999), on the repeat buyers: p, q, gamma.
    GammaGamma,
}

/// `crv fit`.
#[derive(Debug, Args)]
pub struct FitCommand {
    /// The store file.
    pub store: PathBuf,
    /// The purchase model.
    #[arg(long, value_enum)]
    pub model: PurchaseModelArg,
    /// Also fit a spend model on the repeat buyers' monetary_value.
    #[arg(long, value_enum)]
    pub spend: Option<SpendModelArg>,
    /// Where to write the fitted model (JSON; `-`: stdout, and the summary goes to stderr).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace the output even when it is the store or another crv store file.
    #[arg(long)]
    pub force: bool,
    /// Check the fit on a holdout period (the store's `frequency_holdout` and
    /// `duration_holdout` columns, as `crv rfm --calibration-end` writes them): print actual
    /// against predicted holdout purchases by calibration frequency, and write that chart and
    /// the P(alive) matrix beside the model file (OUTPUT.holdout.svg, OUTPUT.p_alive.svg).
    #[arg(long)]
    pub holdout: bool,
    /// The unit of the store's recency and age (as `crv rfm --time-unit` wrote them: day, week
    /// or month), recorded in the model file so that its horizon and charts name it.
    #[arg(long)]
    pub time_unit: Option<crv::rfm::Period>,
}

/// `crv rfm --help`.
const RFM_HELP: &str = "\
Input: a CSV purchase log with a header row, one purchase a line: a customer id (a whole
number), a date or timestamp (1997-01-01, 19970101, 1997-01-01T10:20:30, with Z or +hh:mm;
converted to UTC) and an amount (finite, >= 0), in any order of lines. Output rows are sorted
by customer id. The definitions are in docs/model.md.

Example (CDNOW: days merged, time in weeks):
  crv rfm transactions.csv -o rfm.csv --period day --time-unit week --observation-end 1998-06-30";

/// `crv import --help`: the columns an input may have.
const IMPORT_HELP: &str = "\
Input: a CSV file (a header row is required), a Parquet or Arrow IPC file, a directory of
Parquet part files (names starting with _ or . left out), or a glob of them, read in sorted
order. Parquet row groups are decoded in parallel; nulls follow the empty-cell rules below.

Columns (any order):
  customer_id        required, unique: whole numbers (0 to 18446744073709551615) or, when any
                     id is not one, text ids kept as written (at most 256 bytes)
  margin, retention  the CRV formula's inputs: margin any finite number, retention in [0, 1];
                     required in every row when the column is present (a missing column is 0)
  retention_cost, development_cost, acquisition_cost, cost, frequency, recency, age,
  monetary_value     finite and >= 0; an empty cell is 0
  referral_value, competence_value
                     any finite number; an empty cell is 0
  anything else      an attribute: numeric when every value is a number, else text
The meaning of each column is in docs/model.md.

Example: crv import customers.csv -o customers.crv";

/// The `--where` grammar, shown by `crv select --help` (a literal, for `concat!`).
macro_rules! where_grammar {
    () => {
        "--where grammar:
  condition  := column op value | column [not] in (value, ...)
  op         := = | != | < | <= | > | >=     (text columns and tier: =, != and in only)
  expression := condition | not expression | expression and expression
              | expression or expression | ( expression )
  `not` binds tightest, then `and`, then `or`. Columns: any store column, plus crv (the
  score) and tier (A, B, C, N). Quote values with spaces: segment = 'key account'.
  Keywords are case-insensitive; at most 16 levels of parentheses and `not`. Errors give
  the character position."
    };
}

/// `crv score --help`.
const SCORE_HELP: &str = "\
The CRV formula and the tiers are described in docs/model.md.

Example: crv score customers.crv --discount 0.08 --horizon 10 -o scores.csv";

/// `crv select --help`.
const SELECT_HELP: &str = concat!(
    "Example: crv select customers.crv --budget 100000 ",
    "--where \"tier in (A, B) and not (segment = basic or margin < 0)\" -o targets.csv\n\n",
    where_grammar!()
);

/// `crv simulate --help`.
const SIMULATE_HELP: &str = "\
The scenarios file and its fields are described in README.md; a scenario's `where` uses the
--where grammar of `crv select --help`.

Example: crv simulate customers.crv --scenarios examples/scenarios.json -o results.csv \
--frontier frontier.csv --plot frontier.svg";

/// A count of customers: a whole number, also in scientific notation (`1e6`).
fn parse_count(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(count) = text.replace('_', "").parse::<u64>() {
        return Ok(count);
    }
    match text.parse::<f64>() {
        Ok(value) if value >= 0.0 && value.fract() == 0.0 && value <= MAX_COUNT as f64 => {
            Ok(value as u64)
        }
        Ok(value) if value.is_finite() && value > MAX_COUNT as f64 => {
            Err(format!("`{text}` is more than {MAX_COUNT}"))
        }
        _ => Err(format!(
            "`{text}` is not a whole number >= 0 (e.g. 1000000 or 1e6)"
        )),
    }
}

/// The largest count `parse_count` takes from scientific notation: every whole number up to it
/// is exact in an f64.
const MAX_COUNT: u64 = 1 << 53;

/// A horizon: a whole number of periods from 1 to `u32::MAX` (also `1e3`), or `inf`.
fn parse_horizon(text: &str) -> Result<Horizon, String> {
    if let Ok(horizon) = text.parse::<Horizon>() {
        return Ok(horizon);
    }
    let periods = text.trim().parse::<f64>().ok();
    match periods {
        Some(t) if t >= 1.0 && t.fract() == 0.0 && t <= f64::from(u32::MAX) => {
            Ok(Horizon::Periods(t as u32))
        }
        Some(t) if t.is_finite() && t > f64::from(u32::MAX) => Err(format!(
            "`{}` periods is more than the largest horizon, {} periods; for no end use `inf`",
            text.trim(),
            u32::MAX
        )),
        _ => Err(format!(
            "`{}` is not a whole number of periods from 1 to {}, or `inf`",
            text.trim(),
            u32::MAX
        )),
    }
}

/// `crv gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of customers to generate (`1000000` or `1e6`; at most 1,000,000,000).
    #[arg(long, value_parser = parse_count)]
    pub customers: u64,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write a purchase log (customer_id,date,amount; dates from 1997-01-01 over three years)
    /// of this many lines among `--customers` customers instead (`1e8`), for `crv rfm`.
    #[arg(long, value_parser = parse_count)]
    pub purchases: Option<u64>,
    /// Output file: CSV (`-` for standard output), or Parquet when it ends in `.parquet` or
    /// `.pq` (the same customers: `customer_id` Int64, numbers Float64, text as strings).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Parquet output: customers per row group (the last one may hold fewer).
    #[arg(long, default_value_t = 1 << 20, value_parser = parse_row_group_rows)]
    pub row_group_rows: usize,
    /// Replace the output even when it is a crv store file.
    #[arg(long)]
    pub force: bool,
}

/// `--row-group-rows`: 1 to [`crv::limits::MAX_ROW_GROUP_ROWS`].
fn parse_row_group_rows(text: &str) -> Result<usize, String> {
    let rows = parse_count(text)?;
    if rows == 0 || rows > crv::limits::MAX_ROW_GROUP_ROWS {
        return Err(format!(
            "{text}: between 1 and {}",
            crv::limits::MAX_ROW_GROUP_ROWS
        ));
    }
    Ok(rows as usize)
}

/// `crv import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The customers: a CSV (header row; `customer_id` required), a Parquet or Arrow IPC file,
    /// a directory of Parquet part files, or a glob of them (quoted: 'unload/part-*.parquet').
    pub input: PathBuf,
    /// Parquet and Arrow input: store only these columns (comma-separated, `customer_id`
    /// among them); the others are not even decoded.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
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
    /// Periods valued: a whole number from 1 to 4294967295, or `inf`.
    #[arg(long, default_value = "5", value_parser = parse_horizon)]
    pub horizon: Horizon,
    /// ABC cut points as shares of positive value, e.g. `0.8,0.95`.
    #[arg(long, value_parser = parse_cuts, conflicts_with = "quantiles")]
    pub tier_cuts: Option<(f64, f64)>,
    /// Tiers by count instead: top share and next share of positive customers, e.g. `0.2,0.5`.
    #[arg(long, value_parser = parse_cuts)]
    pub quantiles: Option<(f64, f64)>,
    /// How customers are valued: from margins and retention, or by a purchase model.
    #[command(flatten)]
    pub valuation: ModelArgs,
}

/// The purchase model that values customers, for every command that values them.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Value customers from their purchase histories with this fitted model (`crv fit`'s
    /// model.json): the store needs `frequency`, `recency` and `age`; the horizon is in the
    /// model's time unit and must be finite.
    #[arg(long, value_name = "MODEL_JSON")]
    pub model: Option<PathBuf>,
    /// With `--model`: margin per unit of spend [default: 1, spend counts as value].
    #[arg(long, requires = "model")]
    pub margin_rate: Option<f64>,
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
    /// Write one row per customer: customer_id,crv,tier,rank,percentile (`-`: stdout, and the
    /// summary goes to stderr).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace the output even when it is the store or another crv store file.
    #[arg(long)]
    pub force: bool,
}

/// `crv select`.
#[derive(Debug, Args)]
pub struct SelectCommand {
    /// The store, scored.
    #[command(flatten)]
    pub input: ScoredStoreArgs,
    /// Total resource available (TR), in the cost column's units.
    #[arg(long)]
    pub budget: f64,
    /// The numeric column with each customer's resource use (CR).
    #[arg(long, default_value = crv::campaign::DEFAULT_COST_COLUMN)]
    pub cost: String,
    /// Integer resource units per cost unit (100: cents); the optimum is exact at this grain.
    #[arg(long, default_value_t = crv::campaign::DEFAULT_RESOURCE_SCALE)]
    pub resource_scale: f64,
    /// Who may be targeted, e.g. `tier in (A, B) and not (segment = basic or margin < 0)`;
    /// the grammar is below.
    #[arg(long = "where", default_value = "")]
    pub filter: String,
    /// Stop the search after this many seconds with the best set and a certified gap (0 to
    /// 86400; anything else is an error).
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// The targets file and the summary.
    #[command(flatten)]
    pub report: PlanOutputArgs,
}

/// The store a planning command (`crv select`, `crv optimise`) reads, and how it is scored.
#[derive(Debug, Args)]
pub struct ScoredStoreArgs {
    /// The store file.
    pub store: PathBuf,
    /// Scoring and tier parameters (the `crv` that values and filters read).
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
}

/// What a planning command (`crv select`, `crv optimise`) writes.
#[derive(Debug, Args)]
pub struct PlanOutputArgs {
    /// Write the plan's customers as CSV (`-`: stdout, and the summary goes to stderr): for
    /// `select` customer_id,crv,cost,tier; for `optimise` customer_id,offer,value, one column
    /// per resource, reason.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace the output even when it is an input or another crv store file.
    #[arg(long)]
    pub force: bool,
}

/// `crv simulate`.
#[derive(Debug, Args)]
pub struct SimulateCommand {
    /// The store file.
    pub store: PathBuf,
    /// The scenarios: a JSON object with `scenarios` (a list) and/or `sweep` (field -> values).
    #[arg(long, required_unless_present = "campaign")]
    pub scenarios: Option<PathBuf>,
    /// In place of the scenarios, a campaign definition (as `crv optimise --campaign`) traced
    /// along one of its resources (`--frontier-resource`): the plan at each of its limits.
    #[arg(
        long,
        conflicts_with_all = ["scenarios", "output", "frontier_scenario"],
        requires = "frontier_resource"
    )]
    pub campaign: Option<PathBuf>,
    /// With --campaign: the resource whose limit varies, every other limit as defined.
    #[arg(long, requires = "campaign")]
    pub frontier_resource: Option<String>,
    /// With --campaign: the limits to solve at (comma-separated; default: --frontier-points
    /// limits from 0 to where the resource no longer binds).
    #[arg(
        long,
        value_delimiter = ',',
        requires = "campaign",
        conflicts_with = "frontier_points"
    )]
    pub frontier_limits: Option<Vec<f64>>,
    /// With --campaign: the resource whose use is the spend of the ROI (default: the
    /// --frontier-resource).
    #[arg(long, requires = "campaign")]
    pub frontier_spend: Option<String>,
    /// With --campaign: past contacts for its contact rules
    /// (customer_id,time,channel,campaign,offer).
    #[arg(long, requires = "campaign")]
    pub contacts: Option<PathBuf>,
    /// Before use, verify the whole store: every checksum, every value's domain, every id
    /// found at its own row through the index (a full read of the file).
    #[arg(long)]
    pub verify: bool,
    /// Write one row per scenario as CSV (without it the rows go to stdout).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Write the frontier (budget,objective,spend,roi,optimal,gap) as CSV; with --campaign
    /// limit,feasible,objective,upper_bound,gap,optimal,shadow_price,used,spend,roi (without
    /// it those rows go to stdout).
    #[arg(long)]
    pub frontier: Option<PathBuf>,
    /// Draw the frontier as an SVG chart with the knee marked.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The scenario whose frontier is traced (default: the first).
    #[arg(long)]
    pub frontier_scenario: Option<String>,
    /// Budgets on the frontier's grid, from 0 to the total eligible cost (2 to 1000); with
    /// --campaign, limits from 0 to where the resource no longer binds.
    #[arg(long, default_value_t = crv::campaign::simulate::frontier::DEFAULT_POINTS)]
    pub frontier_points: usize,
    /// The currency the chart labels money in (`--plot`).
    #[arg(long, default_value = crv::svg::DEFAULT_CURRENCY, value_parser = parse_currency)]
    pub currency: String,
    /// Stop each selection's search after this many seconds with a certified gap (0 to 86400;
    /// anything else is an error). With --campaign, each solve has the definition's
    /// `time_limit_ms`.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// How customers are valued: each scenario's discount, horizon and margin changes apply to
    /// the purchase model's value when `--model` is given.
    #[command(flatten)]
    pub valuation: ModelArgs,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace an output even when it is an input or a crv store file.
    #[arg(long)]
    pub force: bool,
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
    /// Reactor threads serving connections, 1-1024, each a single-threaded runtime that
    /// keeps the connections it is handed (default: the CPUs this process may run on).
    #[arg(long)]
    pub io_threads: Option<usize>,
    /// Keep transparent huge pages. By default the server turns them off for its process
    /// once the store is scored, before it replays the event log (`PR_SET_THP_DISABLE`; the
    /// scored table keeps the huge pages it got): the first touch of a fresh 2 MiB page
    /// stalls the thread that touches it for the whole page's zeroing (about 5 ms on a
    /// virtual machine whose host backs memory lazily), and every request waiting on that
    /// thread with it; and what the replay's gigabyte of fresh huge pages costs varies with
    /// the host (touching 1.5 GiB: 0.2-4.2 s on one machine within minutes) where 4 KiB pages
    /// cost about the same each time (0.8-1.2 s).
    #[arg(long)]
    pub huge_pages: bool,
    /// Require `Authorization: Bearer <token>` on heavy and write endpoints, the token read
    /// from this environment variable (default: `CRV_TOKEN`, when set).
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,
    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Take events (`POST /v1/customers/{id}/events`, `POST /v1/events`) into this write-ahead
    /// log directory, replayed over the store at start. Write endpoints need the token
    /// (`CRV_TOKEN`, or the variable --token-env names).
    #[arg(long, value_name = "DIR")]
    pub wal: Option<PathBuf>,
    /// When logged events are made durable.
    #[arg(long, value_enum, default_value_t = FsyncArg::Always)]
    pub fsync: FsyncArg,
    /// Start even when a record in the middle of the log is corrupt, keeping the events
    /// before it (the rest is dropped).
    #[arg(long)]
    pub salvage: bool,
    /// Compact the log into a new store file whenever it grows past this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub compact_bytes: Option<u64>,
    /// Take writes without a token: only on a loopback address, for trying things out.
    #[arg(long)]
    pub insecure_writes: bool,
    /// The currency the dashboard (`GET /`) labels CRV and costs in.
    #[arg(long, default_value = crv::svg::DEFAULT_CURRENCY, value_parser = parse_currency)]
    pub currency: String,
}

/// A `--currency` label ([`crv::svg::check_currency`]).
fn parse_currency(text: &str) -> Result<String, String> {
    crv::svg::check_currency(text)
        .map(|()| text.to_string())
        .map_err(|error| error.to_string())
}

/// `crv rfm`.
#[derive(Debug, Args)]
pub struct RfmCommand {
    /// The purchase log (CSV with a header; `-` for standard input).
    pub log: PathBuf,
    /// The RFM CSV to write (replaced atomically; `-`: stdout, and the summary goes to stderr).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// The customer id column.
    #[arg(long, default_value = "customer_id")]
    pub customer_col: String,
    /// The date or timestamp column.
    #[arg(long, default_value = "date")]
    pub date_col: String,
    /// The purchase amount column.
    #[arg(long, default_value = "amount")]
    pub amount_col: String,
    /// The period purchases merge in: day, week (Monday to Sunday) or month.
    #[arg(long, default_value = "day")]
    pub period: crv::rfm::Period,
    /// The unit of recency, age and duration_holdout: day, week or month (default: the period).
    #[arg(long)]
    pub time_unit: Option<crv::rfm::Period>,
    /// The end of observation, a date or timestamp (default: the latest purchase's date); a
    /// purchase after it is an error unless --drop-after-end.
    #[arg(long)]
    pub observation_end: Option<crv::rfm::Moment>,
    /// The end of the calibration period: the summary covers purchases up to it, and the
    /// holdout columns count those after it.
    #[arg(long)]
    pub calibration_end: Option<crv::rfm::Moment>,
    /// Drop purchases after the observation end (counted on stderr) instead of failing.
    #[arg(long)]
    pub drop_after_end: bool,
    /// Purchase records (24 bytes each) held in memory before partitions spill to temporary
    /// files, in MiB.
    #[arg(long, default_value_t = crv::rfm::DEFAULT_MEMORY_MB)]
    pub memory_mb: usize,
    /// Where spilled partitions go (default: the system's temporary directory).
    #[arg(long)]
    pub temp_dir: Option<PathBuf>,
    /// Print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace the output even when it is a crv store file.
    #[arg(long)]
    pub force: bool,
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
            io_threads: self.io_threads.unwrap_or_else(default_io_threads),
        }
    }
}

/// `crv optimise`.
#[derive(Debug, Args)]
pub struct OptimiseCommand {
    /// The store, scored.
    #[command(flatten)]
    pub input: ScoredStoreArgs,
    /// The campaign definition (JSON): resources, offers, contact rules.
    #[arg(long)]
    pub campaign: PathBuf,
    /// Past contacts for the contact rules: customer_id,time,channel,campaign,offer.
    #[arg(long)]
    pub contacts: Option<PathBuf>,
    /// Explain one customer's place in the plan (JSON).
    #[arg(long, value_name = "ID")]
    pub explain: Option<String>,
    /// The assignment file and the summary.
    #[command(flatten)]
    pub report: PlanOutputArgs,
}
