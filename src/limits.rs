//! Every cap on a size or a duration that a user controls, in one place, shared by the command
//! line and the HTTP API (README.md, "Limits", lists them). A value over its cap is an error
//! that names the flag or field and the cap, before any work starts; none is clamped silently.
//! The caps keep every request's memory and time bounded; the time limits and the
//! [`crate::cancel::Cancel`] token stop what is left.

/// Longest `--time-limit` of `crv select` and `crv simulate`, in seconds (one day). A longer,
/// negative or non-finite limit is an error.
pub const MAX_TIME_LIMIT_SECS: f64 = 86_400.0;

/// Longest `time_limit_ms` an HTTP request may ask for (one minute); 0 is refused too. It
/// bounds the whole request: the wait for a turn, filter evaluation, every scenario and
/// frontier point, and each selection.
pub const MAX_TIME_LIMIT_MS: u64 = 60_000;

/// Most budgets on a frontier grid (`--frontier-points`, `frontier.points`): each is one exact
/// selection over the scenario's candidates.
pub const MAX_FRONTIER_POINTS: usize = 1_000;

/// Most scenarios in one scenarios file of `crv simulate`, sweep members included.
pub const MAX_SCENARIOS: usize = 10_000;

/// Most scenarios in one `POST /v1/simulate`, sweep members included.
pub const MAX_SIMULATE_SCENARIOS: usize = 256;

/// Most ids in one `POST /v1/customers/lookup`.
pub const MAX_LOOKUP_IDS: usize = 10_000;

/// Longest `--where` / `where` expression, in bytes.
pub const MAX_FILTER_BYTES: usize = 64 << 10;

/// Most values in one `in (...)` list of a `--where` expression. Repeated values count once
/// when the filter is evaluated.
pub const MAX_FILTER_VALUES: usize = 10_000;

/// Most heavy requests `crv serve` lets run (`--max-running`) and, apart, wait
/// (`--max-waiting`).
pub const MAX_HEAVY_REQUESTS: usize = 65_536;

/// Most customers `crv gen` writes (about 100 GB of CSV).
pub const MAX_GEN_CUSTOMERS: u64 = 1_000_000_000;

/// Most customers in one row group of `crv gen -o x.parquet` (held in memory while written).
pub const MAX_ROW_GROUP_ROWS: u64 = 1 << 24;

/// Largest `model.json` `crv score --model` and `crv serve --model` read (1 MiB; one is a few
/// hundred bytes).
pub const MAX_MODEL_FILE_BYTES: u64 = 1 << 20;

/// The most purchase lines `crv gen --purchases` writes (about 230 GB).
pub const MAX_GEN_PURCHASES: u64 = 10_000_000_000;

/// Events in one request to `POST /v1/customers/{id}/events` or `POST /v1/events`.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;

/// Bytes of one text in an event (channel, campaign, offer, a text column's value).
pub const MAX_EVENT_TEXT_BYTES: usize = 256;

/// Largest magnitude of a number in an event: keeps every CRV an event can produce finite.
pub const MAX_EVENT_VALUE: f64 = 1e15;

/// Most recent events a customer's profile keeps and shows.
pub const RECENT_EVENTS: usize = 20;

/// Longest record of a contacts CSV, in bytes: an id, a time and three names of at most
/// [`MAX_EVENT_TEXT_BYTES`] each fit many times over; a longer record (a file with no line
/// break, an unclosed quote) is an error naming it, not memory without bound.
pub const MAX_CONTACT_RECORD_BYTES: usize = 16 << 10;

/// Most recent contacts and responses kept per customer.
pub const MAX_CONTACT_HISTORY: usize = 1_000;
/// Largest campaign definition (`crv optimise --campaign`, `POST /v1/campaigns/optimise`), in
/// bytes (1 MiB).
pub const MAX_CAMPAIGN_BYTES: usize = 1 << 20;

/// Most campaign plans `crv serve` keeps for `GET /v1/campaigns/{id}` (the oldest is dropped
/// when a new one is made). A plan holds its offers' evaluated values and eligibility, a few
/// bytes per customer and offer, and the table version it was solved on.
pub const MAX_STORED_PLANS: usize = 16;

/// Most resources one campaign may limit.
pub const MAX_CAMPAIGN_RESOURCES: usize = 64;

/// Most contact rules in one campaign.
pub const MAX_CONTACT_RULES: usize = 64;

/// Longest text customer id, in bytes (an 18-character Salesforce id is 18): a longer one is
/// an import error naming its row.
pub const MAX_CUSTOMER_ID_BYTES: usize = 256;

/// Longest record (line) of a customer CSV that `crv import` reads, in bytes: a file without
/// line breaks, or with an unclosed quote, is an error naming the record instead of an
/// unbounded buffer.
pub const MAX_STORE_RECORD_BYTES: usize = 1 << 20;

/// Most input files one `crv import` reads (a directory of part files, or a glob).
pub const MAX_IMPORT_FILES: usize = 100_000;
