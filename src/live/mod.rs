//! Live customers (README.md, "Live events"): purchases, contacts, responses and column changes
//! applied while the server serves, durably, with nothing acknowledged lost on a crash.
//!
//! Method. The store stays immutable; a concurrent overlay (`overlay`: found by the
//! customer's store row, or by id for a customer the store lacks) holds what events changed:
//! per customer, boxed so that a slot stays 8 bytes, its [`History`] (event count, the recent
//! events kept encoded, contacts only when there are any) and, once a column changed (or for a
//! customer the store does not have), the row: the numeric columns events set (the others
//! stay the store's), the purchases since (counted and summed; the purchase history columns
//! are worked out from them when read), its text columns only once a `set` changed one, and
//! its CRV, recomputed at once (margins and retention, or the purchase model) when an event
//! changed an input of it (a purchase changes none under margins and retention: the served
//! table's value stands). A replay of millions of customers is bound by the memory it
//! touches, so a changed customer costs about 160 bytes and reads from the store only the
//! columns its value needs.
//! A lookup reads the overlay first (the store's id index, then one slot), then the served
//! table; its tier comes from the served version's cut points and its rank from that
//! version's CRVs (a search of a cached sample of them, then of one stride).
//! Every accepted event is first appended to the write-ahead log ([`log`]) by the writer
//! ([`writer`]), which groups whatever arrived meanwhile into one write and (with `--fsync
//! always`) one fsync, then applies them in log order and answers. A group is applied 64
//! events at a time, each chunk's customers read ahead first (`read_ahead`: store rows, then
//! overlay states under one read lock per stripe, then numeric columns where the chunk will
//! use them), so that different customers' cache misses overlap instead of waiting one after
//! another.
//! At start the log is replayed over the store from the checkpoint of the store's identity
//! ([`checkpoint`]): segments are mapped, windows of records checksummed and decoded in
//! parallel, their customers' store rows found in parallel, then the events applied in
//! parallel, each thread owning whole stripes of the overlay and so each customer's events in
//! log order, read ahead as in the writer's groups; a changed row is valued at once under
//! margins and retention, or in one pass at the end under a purchase model.
//! Compaction ([`compact`]) folds store and overlay into a new store file and starts a new log
//! segment; `POST /v1/admin/retier` publishes store and overlay as a new table version, whose
//! cut points then apply. Selections and simulations see one published version for their
//! whole run: events reach them at the next retier or restart.
//!
//! Guarantee: an event acknowledged under `--fsync always` is on disk; after any crash the
//! state is store + the log's events after the store's checkpoint, each applied once.
//! Cost: an event is O(columns) to apply plus its share of one write (and fsync); one that
//! changes a row also places the new CRV against the served cut points, to record a change of
//! tier for the dashboard ([`activity`]); a lookup of an untouched customer pays one store
//! id probe and one overlay slot.

pub mod activity;
pub mod checkpoint;
pub mod compact;
pub mod customer;
pub mod event;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod log;
mod overlay;
mod read_ahead;
pub mod recent_events;
pub mod stats;
pub mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use serde_json::{Map, Value, json};

use crate::btyd::columns::HistoryColumns;
use crate::campaign::contacts::ContactHistory;
use crate::error::{Error, Result};
use crate::kernel::CrvInputs;
use crate::kernel::history::HistoryInputs;
use crate::model::{ScoreParams, Tier};
use crate::store::format::ColumnKind;
use crate::store::schema::{self, Domain};
use crate::store::{Column, Store};
use crate::table::{Table, Valuation};
use customer::{ColumnRef, History, RfmColumns, Row};
use event::{CustomerEvent, Event, EventError, SetValue};
use overlay::{Overlay, Place};
use read_ahead::ChunkReads;

/// How often appended events are made durable (`--fsync`), as Redis' `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before the answer: a 200 means the event is on disk (one fsync per group of events).
    Always,
    /// About once a second: a crash of the machine may lose the last second; `kill -9` loses
    /// nothing.
    EverySec,
    /// Never asked: the operating system writes when it likes.
    No,
}

/// Where and how the log is kept (`crv serve --wal DIR --fsync ... --salvage
/// --compact-bytes N`).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The log directory.
    pub wal: PathBuf,
    /// The store file the log belongs to (compaction replaces it).
    pub store_path: PathBuf,
    /// When appended events are made durable.
    pub fsync: FsyncPolicy,
    /// Start even when a record in the middle of the log is corrupt, keeping the events
    /// before it.
    pub salvage: bool,
    /// Compact automatically once the log holds this many bytes.
    pub compact_bytes: Option<u64>,
}

/// What a replay at start found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The checkpoint the store matched (its last sequence), 0 for none.
    pub checkpoint: u64,
    /// Events applied from the log.
    pub replayed: u64,
    /// Events of the log skipped because the store already holds them.
    pub skipped: u64,
    /// Warnings: a dropped tail, a salvaged middle, a damaged checkpoint.
    pub warnings: Vec<String>,
}

/// A customer's value as events left it, with where it stands in the served version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveScore {
    /// CRV.
    pub crv: f32,
    /// Tier against the served version's cut points.
    pub tier: Tier,
    /// 1 + the customers of the served version with a higher CRV.
    pub rank: u32,
    /// `100 * (customers - rank + 1) / customers`.
    pub percentile: f32,
    /// P(alive) and expected purchases, under a purchase model.
    pub outlook: Option<(f32, f32)>,
}

/// The row's CRV (and outlook) when it was last changed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Value1 {
    crv: f32,
    outlook: Option<(f32, f32)>,
}

/// The value of a row changed during a replay, until [`Live::revalue`] computes it.
const STALE: Value1 = Value1 {
    crv: f32::NAN,
    outlook: None,
};

/// Events whose customers are read ahead together ([`read_ahead`]): enough to keep the
/// processor's outstanding misses busy, few enough to stay in the first-level cache (and one
/// bit each in a `u64`).
const WARM_CHUNK: usize = 64;

/// One customer in the overlay.
#[derive(Debug, Clone, Default)]
struct CustomerState {
    history: History,
    /// The row, once an event changed it or for a customer the store lacks (`None`: the
    /// store's row as it is), with its value once an event changed an input of it (`None`:
    /// the served table's value stands, as under margins and retention after a purchase).
    row: Option<(Row, Option<Value1>)>,
}

/// The served version's ranking: its cut points and its CRVs in descending order.
#[derive(Debug)]
struct Ranking {
    table: Arc<Table>,
    descending: Descending,
}

impl Ranking {
    fn new(table: Arc<Table>) -> Ranking {
        let (tiers, crv) = (table.tiers(), table.crv());
        // Random writes over the whole column: in parallel (on one thread a tenth of a
        // second at 10^7 customers, with the other core idle).
        let descending = crate::kernel::partition::permute(
            crv.len(),
            crate::kernel::crv::CHUNK_ROWS,
            |row| tiers.rank[row] as usize - 1,
            |row| crv[row].to_bits(),
        )
        .into_iter()
        .map(f32::from_bits)
        .collect();
        Ranking {
            table,
            descending: Descending::new(descending),
        }
    }

    fn score(&self, id: u64, value: Value1) -> LiveScore {
        let rank = 1 + self.descending.above(value.crv) as u32;
        let customers = self.descending.values.len().max(rank as usize);
        LiveScore {
            crv: value.crv,
            tier: self.table.tier_cuts().tier(value.crv, id),
            rank,
            percentile: crate::kernel::tier::percentile(rank, customers),
            outlook: value.outlook,
        }
    }
}

/// Values in descending order with every [`RANK_STRIDE`]-th of them apart, small enough to stay
/// in cache: counting the values above one is a search of that sample, then of one stride,
/// instead of ~20 cache misses over the whole list.
#[derive(Debug)]
struct Descending {
    values: Vec<f32>,
    sample: Vec<f32>,
}

/// Values per entry of [`Descending`]'s sample.
const RANK_STRIDE: usize = 64;

impl Descending {
    fn new(values: Vec<f32>) -> Descending {
        let sample = values.iter().step_by(RANK_STRIDE).copied().collect();
        Descending { values, sample }
    }

    /// How many values are above `x`.
    fn above(&self, x: f32) -> usize {
        // The sample's entries above `x` start strides whose values, but for the last
        // stride's, are all above it. That stride is counted whole, not searched: its four
        // cache lines are then loaded at once, where a binary search waits on two or three
        // misses one after another.
        let strides = self.sample.partition_point(|&other| other > x);
        let start = strides.saturating_sub(1) * RANK_STRIDE;
        let end = (strides * RANK_STRIDE).min(self.values.len());
        start
            + self.values[start..end]
                .iter()
                .filter(|&&other| other > x)
                .count()
    }
}

/// The store's columns by kind, and where the CRV and purchase-history columns are.
#[derive(Debug, Clone)]
struct Schema {
    numbers: Vec<String>,
    texts: Vec<String>,
    /// Each numeric column's index among the store's columns, then each text column's.
    stored: Vec<usize>,
    rfm: RfmColumns,
    inputs: InputColumns,
}

/// Where the value's inputs are among the numeric columns.
#[derive(Debug, Clone, Copy, Default)]
struct InputColumns {
    margin: Option<usize>,
    retention: Option<usize>,
    retention_cost: Option<usize>,
    referral_value: Option<usize>,
    competence_value: Option<usize>,
    development_cost: Option<usize>,
    acquisition_cost: Option<usize>,
}

impl Schema {
    fn of(store: &Store) -> Schema {
        let mut numbers = Vec::new();
        let mut texts = Vec::new();
        let (mut stored_numbers, mut stored_texts) = (Vec::new(), Vec::new());
        for (index, meta) in store.columns().iter().enumerate().skip(1) {
            match meta.kind {
                ColumnKind::F32 => {
                    numbers.push(meta.name.clone());
                    stored_numbers.push(index);
                }
                ColumnKind::Text => {
                    texts.push(meta.name.clone());
                    stored_texts.push(index);
                }
                ColumnKind::U64 => {}
            }
        }
        let find = |name: &str| numbers.iter().position(|n| n == name);
        let rfm = RfmColumns {
            frequency: find(schema::FREQUENCY),
            recency: find(schema::RECENCY),
            age: find(schema::AGE).or_else(|| find("T")),
            monetary_value: find(schema::MONETARY_VALUE),
        };
        let inputs = InputColumns {
            margin: find(schema::MARGIN),
            retention: find(schema::RETENTION),
            retention_cost: find(schema::RETENTION_COST),
            referral_value: find(schema::REFERRAL_VALUE),
            competence_value: find(schema::COMPETENCE_VALUE),
            development_cost: find(schema::DEVELOPMENT_COST),
            acquisition_cost: find(schema::ACQUISITION_COST),
        };
        stored_numbers.extend(stored_texts);
        Schema {
            numbers,
            texts,
            stored: stored_numbers,
            rfm,
            inputs,
        }
    }

    fn column(&self, name: &str) -> Option<ColumnRef> {
        self.numbers
            .iter()
            .position(|n| n == name)
            .map(ColumnRef::Number)
            .or_else(|| {
                self.texts
                    .iter()
                    .position(|n| n == name)
                    .map(ColumnRef::Text)
            })
    }
}

/// How a row's value is computed: the served valuation and parameters, and which numeric
/// columns it reads.
#[derive(Debug, Clone)]
struct Valuer {
    params: ScoreParams,
    valuation: Valuation,
    /// The numeric columns the value reads, ascending.
    inputs: Vec<usize>,
    /// Whether a purchase changes an input (under a purchase model; not under margins and
    /// retention).
    purchases_change_value: bool,
}

impl Valuer {
    fn new(params: ScoreParams, valuation: Valuation, schema: &Schema) -> Valuer {
        let columns = &schema.inputs;
        let one_off = [
            columns.referral_value,
            columns.competence_value,
            columns.development_cost,
            columns.acquisition_cost,
        ];
        let mut inputs: Vec<usize> = match valuation {
            Valuation::Retention => [columns.margin, columns.retention, columns.retention_cost]
                .into_iter()
                .chain(one_off)
                .flatten()
                .collect(),
            Valuation::Purchases(_) => {
                let rfm = &schema.rfm;
                [rfm.frequency, rfm.recency, rfm.age, rfm.monetary_value]
                    .into_iter()
                    .chain(one_off)
                    .flatten()
                    .collect()
            }
        };
        inputs.sort_unstable();
        inputs.dedup();
        let purchases_change_value = schema
            .rfm
            .changed_by_purchase()
            .any(|column| inputs.binary_search(&column).is_ok());
        Valuer {
            params,
            valuation,
            inputs,
            purchases_change_value,
        }
    }

    /// Whether the value reads numeric column `column`.
    fn reads(&self, column: usize) -> bool {
        self.inputs.binary_search(&column).is_ok()
    }

    /// Whether a replay values a changed row at once, while it is in cache, rather than every
    /// changed row in one pass at the end: under the retention valuation a value is a few
    /// multiplications, cheaper than finding the row again; a purchase model's special
    /// functions are worth computing once per row, not once per event.
    fn values_at_once(&self) -> bool {
        matches!(self.valuation, Valuation::Retention)
    }

    /// The CRV (and outlook) of a row whose numeric column `i` is `number(i)`: the served
    /// kernel over one row, no allocation under the retention valuation.
    fn value(&self, schema: &Schema, number: impl Fn(usize) -> f32) -> Value1 {
        let one = |index: Option<usize>| index.map(|i| [number(i)]);
        let columns = &schema.inputs;
        let (referral, competence, development, acquisition) = (
            one(columns.referral_value),
            one(columns.competence_value),
            one(columns.development_cost),
            one(columns.acquisition_cost),
        );
        match &self.valuation {
            Valuation::Retention => {
                let margin = one(columns.margin).unwrap_or([0.0]);
                let retention = one(columns.retention).unwrap_or([0.0]);
                let retention_cost = one(columns.retention_cost);
                let inputs = CrvInputs {
                    retention_cost: optional(&retention_cost),
                    referral_value: optional(&referral),
                    competence_value: optional(&competence),
                    development_cost: optional(&development),
                    acquisition_cost: optional(&acquisition),
                    ..CrvInputs::new(&margin, &retention)
                };
                // The served kernel (SIMD lanes, one padded vector), not the scalar
                // reference: a changed row's value is then the one a retier or compaction
                // computes for it, bit for bit (the reference differs by an ulp at times,
                // enough to rank a customer below their own value in the next version).
                let mut crv = [0.0f32];
                crate::kernel::score_lanes(&inputs, &self.params, &mut crv);
                Value1 {
                    crv: crv[0],
                    outlook: None,
                }
            }
            Valuation::Purchases(model) => {
                let at = |index: Option<usize>| [index.map_or(0.0, &number)];
                let (frequency, recency, age) = (
                    at(schema.rfm.frequency),
                    at(schema.rfm.recency),
                    at(schema.rfm.age),
                );
                let monetary = one(schema.rfm.monetary_value);
                let inputs = HistoryInputs {
                    histories: HistoryColumns {
                        frequency: &frequency,
                        recency: &recency,
                        age: &age,
                    },
                    monetary_value: optional(&monetary),
                    referral_value: optional(&referral),
                    competence_value: optional(&competence),
                    development_cost: optional(&development),
                    acquisition_cost: optional(&acquisition),
                };
                let values = model
                    .score_inputs(&inputs, &self.params)
                    .expect("the served table was valued with these parameters");
                Value1 {
                    crv: values.crv[0],
                    outlook: Some((values.p_alive[0], values.expected_purchases[0])),
                }
            }
        }
    }
}

/// What the server does with the store a compaction wrote (publishes it as the next table
/// version, so that its cut points apply).
pub type CompactionHook = dyn Fn(Arc<Store>) -> Result<()> + Send + Sync;

/// The live state of a served store: overlay, log, writer.
pub struct Live {
    base: Arc<Store>,
    schema: Schema,
    valuer: Valuer,
    /// The changed customers' states.
    overlay: Overlay,
    ranking: ArcSwapOption<Ranking>,
    options: LiveOptions,
    last_sequence: AtomicU64,
    stats: stats::LiveStats,
    /// Events per second and the latest changes of tier, for the dashboard.
    activity: activity::Activity,
    writer: writer::WriterHandle,
    /// Called with the new store after each compaction inside the server.
    on_compaction: std::sync::OnceLock<Box<CompactionHook>>,
    /// The log directory's lock, held while this state lives.
    _lock: File,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("wal", &self.options.wal)
            .field("customers_changed", &self.overlay.len())
            .field("last_sequence", &self.last_sequence())
            .finish()
    }
}

impl Live {
    /// The live state of the served `table`: locks and replays the log of `options.wal` over
    /// its store (from the checkpoint of that store, if any; a torn or corrupt tail is cut and
    /// reported; a corrupt record in the middle fails unless `options.salvage`), then starts
    /// the writer.
    pub fn serve(table: Arc<Table>, options: LiveOptions) -> Result<(Arc<Live>, ReplayReport)> {
        let store = table.shared_store();
        let (params, valuation) = (*table.params(), table.valuation().clone());
        Live::open(store, params, valuation, Some(table), options, true)
    }

    /// The live state of `store` for `crv compact`: the log replayed, no writer; values under
    /// the default parameters (they are not kept).
    pub fn for_compaction(
        store: Arc<Store>,
        options: LiveOptions,
    ) -> Result<(Arc<Live>, ReplayReport)> {
        Live::open(
            store,
            ScoreParams::default(),
            Valuation::Retention,
            None,
            options,
            false,
        )
    }

    fn open(
        base: Arc<Store>,
        params: ScoreParams,
        valuation: Valuation,
        ranking: Option<Arc<Table>>,
        options: LiveOptions,
        serve: bool,
    ) -> Result<(Arc<Live>, ReplayReport)> {
        let dir = options.wal.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = lock_dir(&dir)?;
        let mut report = ReplayReport::default();
        let mut warn = |message: String| report.warnings.push(message);
        let checkpoint = checkpoint::for_store(&dir, base.identity(), &mut warn)?;
        let schema = Schema::of(&base);
        let rows = base.rows();
        let live = Live {
            valuer: Valuer::new(params, valuation, &schema),
            schema,
            base,
            overlay: Overlay::new(rows),
            ranking: ArcSwapOption::from(ranking.map(|table| Arc::new(Ranking::new(table)))),
            options,
            last_sequence: AtomicU64::new(0),
            stats: stats::LiveStats::default(),
            activity: activity::Activity::default(),
            writer: writer::WriterHandle::default(),
            on_compaction: std::sync::OnceLock::new(),
            _lock: lock,
        };
        let appender = live.replay(checkpoint, &mut report)?;
        let live = Arc::new(live);
        if serve {
            writer::start(&live, appender)?;
        }
        Ok((live, report))
    }

    /// Replays the log after `checkpoint` into the overlay; returns the appender positioned
    /// after the last valid record.
    fn replay(
        &self,
        checkpoint: Option<checkpoint::Checkpoint>,
        report: &mut ReplayReport,
    ) -> Result<log::Appender> {
        let dir = &self.options.wal;
        let segments = log::segments(dir).map_err(|e| Error::io(dir, e))?;
        // A log at least as large as the slots (a fifth as many events as store rows) touches
        // nearly every page of them.
        let log_bytes: u64 = segments
            .iter()
            .filter_map(|segment| std::fs::metadata(&segment.path).ok())
            .map(|metadata| metadata.len())
            .sum();
        if log_bytes >= self.overlay.slot_bytes() as u64 {
            self.overlay.back_slots();
        }
        let after = match checkpoint {
            Some(checkpoint) => {
                for (id, history) in checkpoint.customers {
                    let state = Box::new(CustomerState { history, row: None });
                    self.overlay.insert(self.place_of(id), state);
                }
                checkpoint.last_sequence
            }
            None if segments.first().is_none_or(|s| s.first <= 1) => 0,
            None => {
                return Err(Error::io(
                    dir,
                    std::io::Error::other(format!(
                        "no checkpoint in the log directory is for the store {}, and the log \
                         starts at event {}: the events before it are only in a store this is \
                         not; serve the store the log was compacted into",
                        self.options.store_path.display(),
                        segments[0].first
                    )),
                ));
            }
        };
        report.checkpoint = after;
        self.last_sequence.store(after, Ordering::Relaxed);
        let mut appender_at = None;
        let count = segments.len();
        for (index, segment) in segments.iter().enumerate() {
            // Mapped, not read: a long log is not copied into fresh memory first.
            let bytes = File::open(&segment.path)
                .and_then(|file| crate::store::mmap::map(&file))
                .map_err(|e| Error::io(&segment.path, e))?;
            let mut records = 0;
            let read = log::read_segment_in_windows(&bytes, log::WINDOW_RECORDS, |window| {
                records += window.len();
                self.replay_window(&segment.path, window, report)
            })?;
            self.stats.add_log_bytes(read.valid_bytes);
            let last = index + 1 == count;
            if let Some(damage) = read.damage {
                let what = format!(
                    "{}: {} bytes at offset {} are not a valid record ({})",
                    segment.path.display(),
                    damage.bytes,
                    damage.offset,
                    damage.why
                );
                if last && !damage.in_middle {
                    report.warnings.push(format!(
                        "{what}: a torn or corrupt tail, truncated; the {records} events before it are kept"
                    ));
                } else if self.options.salvage {
                    report.warnings.push(format!(
                        "{what}: corrupt in the middle of the log; --salvage: truncated here, \
                         keeping the events up to {}",
                        self.last_sequence()
                    ));
                    for later in &segments[index + 1..] {
                        std::fs::remove_file(&later.path).map_err(|e| Error::io(&later.path, e))?;
                    }
                } else {
                    return Err(Error::io(
                        &segment.path,
                        std::io::Error::other(format!(
                            "{what}: the log is corrupt in the middle (valid records follow); \
                             refusing to start. --salvage keeps the events up to {} and drops \
                             the rest",
                            self.last_sequence()
                        )),
                    ));
                }
                appender_at = Some((segment.path.clone(), read.valid_bytes));
                break;
            }
            appender_at = Some((segment.path.clone(), read.valid_bytes));
        }
        if !self.valuer.values_at_once() {
            self.revalue();
        }
        let (path, len) =
            appender_at.unwrap_or_else(|| (log::segment_path(dir, self.last_sequence() + 1), 0));
        log::Appender::open(&path, len).map_err(|e| Error::io(&path, e))
    }

    /// The sequence of the last event applied.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence.load(Ordering::Acquire)
    }

    /// The counters of `GET /metrics`.
    pub fn stats(&self) -> &stats::LiveStats {
        &self.stats
    }

    /// Events per second and the latest changes of tier (`GET /v1/events/activity`).
    pub fn activity(&self) -> &activity::Activity {
        &self.activity
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &LiveOptions {
        &self.options
    }

    /// Checks `events` against the store's columns before they are logged: a `set` must name a
    /// column of the store other than `customer_id`, with a number in the column's domain or a
    /// text for a text column, and must leave the customer's CRV finite.
    pub fn check(&self, events: &[CustomerEvent]) -> std::result::Result<(), EventError> {
        for (index, event) in events.iter().enumerate() {
            let Event::Set { column, value } = &event.event else {
                continue;
            };
            let at = |why: String| EventError {
                message: format!("events[{index}].{why}"),
            };
            match (self.schema.column(column), value) {
                (None, _) => {
                    return Err(at(format!(
                        "column: {} is not a column of the store (numeric: {}; text: {})",
                        crate::error::quote(column),
                        self.schema.numbers.join(", "),
                        self.schema.texts.join(", ")
                    )));
                }
                (Some(ColumnRef::Number(_)), SetValue::Number(v)) => {
                    if let Some(why) = Domain::of(column).violation(*v as f32) {
                        return Err(at(format!("value: {} {why}", crate::error::number(*v))));
                    }
                }
                (Some(ColumnRef::Number(_)), SetValue::Text(_)) => {
                    return Err(at(format!(
                        "value: `{column}` is a numeric column: give a number"
                    )));
                }
                (Some(ColumnRef::Text(_)), SetValue::Number(_)) => {
                    return Err(at(format!(
                        "value: `{column}` is a text column: give a text"
                    )));
                }
                (Some(ColumnRef::Text(_)), SetValue::Text(_)) => {}
            }
            let id = event.customer_id;
            let mut row = self.current_row(id);
            let stored = row.stored();
            row.apply(
                &event.event,
                self.schema.column(column),
                &self.schema.rfm,
                |column| self.stored_number(stored, column),
                || self.stored_texts(id),
            );
            let value = self.value_of(&row);
            if !value.crv.is_finite() {
                return Err(at(format!(
                    "value: would make customer {}'s CRV {} under the served parameters",
                    event.customer_id, value.crv
                )));
            }
        }
        Ok(())
    }

    /// Applies one window of logged records (consecutive sequences) at start: those the store
    /// already holds are skipped; the others are applied in parallel, each customer's events
    /// by one thread in log order, their values left for [`Live::revalue`].
    fn replay_window(
        &self,
        path: &Path,
        records: &[log::Record],
        report: &mut ReplayReport,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let expected = self.last_sequence() + 1;
        if first.sequence > expected {
            return Err(Error::io(
                path,
                std::io::Error::other(format!(
                    "the log jumps from event {} to {}: events are missing",
                    expected - 1,
                    first.sequence
                )),
            ));
        }
        let skip = (expected - first.sequence).min(records.len() as u64);
        report.skipped += skip;
        let fresh = &records[skip as usize..];
        let rows = self.stored_rows(fresh);
        rayon::broadcast(|thread| {
            // Each thread owns whole stripes of the overlay (no lock is shared) and so applies
            // its customers' events in log order, a chunk of its own events at a time. A
            // thread keeps its stripes from window to window, so the states it allocated are
            // grown and freed by it again (an allocator's free from another thread is slower).
            let (part, parts) = (thread.index(), thread.num_threads());
            let place = |at: usize| Place::of(fresh[at].event.customer_id, rows[at]);
            let mine: Vec<usize> = (0..fresh.len())
                .filter(|&at| self.overlay.part(place(at), parts) == part)
                .collect();
            let values_now = self.valuer.values_at_once();
            let mut reads = ChunkReads::default();
            for chunk in mine.chunks(WARM_CHUNK) {
                reads.set_rows(chunk.iter().map(|&at| rows[at]));
                let event = |position: usize| &fresh[chunk[position]].event.event;
                self.read_ahead(event, values_now, &mut reads);
                for (position, &at) in chunk.iter().enumerate() {
                    let record = &fresh[at];
                    self.overlay.update(place(at), |state| {
                        let stale =
                            self.change(state, record.sequence, &record.event, &reads, position);
                        if stale && let Some((row, value)) = &mut state.row {
                            *value = Some(if values_now {
                                self.value_of(row)
                            } else {
                                STALE
                            });
                        }
                    });
                }
            }
        });
        report.replayed += fresh.len() as u64;
        self.stats.count_events(fresh.len() as u64);
        self.last_sequence
            .store(last.sequence.max(expected - 1), Ordering::Release);
        Ok(())
    }

    /// The store row of each of `records`' customers (`None`: not in the store), found in
    /// parallel, each thread's probes interleaved ([`Store::rows_of`]).
    fn stored_rows(&self, records: &[log::Record]) -> Vec<Option<usize>> {
        use rayon::prelude::*;
        /// Records whose rows one task finds.
        const TASK_RECORDS: usize = 4096;
        let mut rows = vec![None; records.len()];
        rows.par_chunks_mut(TASK_RECORDS)
            .zip(records.par_chunks(TASK_RECORDS))
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(ids, found), (rows, records)| {
                    ids.clear();
                    ids.extend(records.iter().map(|record| record.event.customer_id));
                    self.base.rows_of(ids, found);
                    rows.copy_from_slice(found);
                },
            );
        rows
    }

    /// Computes the value of every row whose value events changed (after a replay under a
    /// purchase model, in parallel).
    fn revalue(&self) {
        self.overlay.par_for_each_mut(|state| {
            if let Some((row, Some(value))) = &mut state.row {
                *value = self.value_of(row);
            }
        });
    }

    /// The value of `row`.
    fn value_of(&self, row: &Row) -> Value1 {
        self.valuer
            .value(&self.schema, |column| self.number(row, column))
    }

    /// Applies logged events `first`, `first + 1`, ... (`events`, in log order) to the
    /// overlay, each changed customer's value recomputed, a chunk at a time, each chunk's
    /// customers read ahead first ([`read_ahead`]) so that their cache misses overlap.
    fn apply_group(&self, first: u64, events: &[&CustomerEvent]) {
        let Some(count) = std::num::NonZeroU64::new(events.len() as u64) else {
            return;
        };
        let now = crate::rfm::date::now_micros();
        let ranking = self.ranking.load();
        let (mut ids, mut reads) = (Vec::with_capacity(WARM_CHUNK), ChunkReads::default());
        for (chunk, events) in events.chunks(WARM_CHUNK).enumerate() {
            ids.clear();
            ids.extend(events.iter().map(|event| event.customer_id));
            reads.locate(&self.base, &ids);
            let event = |at: usize| &events[at].event;
            self.read_ahead(event, true, &mut reads);
            for (at, event) in events.iter().enumerate() {
                let (sequence, id) = (first + (chunk * WARM_CHUNK + at) as u64, event.customer_id);
                let place = Place::of(id, reads.stored_row(self, at, id));
                let (before, after) = self.overlay.update(place, |state| {
                    let before = state
                        .row
                        .as_ref()
                        .and_then(|(_, value)| value.map(|v| v.crv));
                    let mut after = None;
                    if self.change(state, sequence, event, &reads, at)
                        && let Some((row, value)) = &mut state.row
                    {
                        let new = self.value_of(row);
                        *value = Some(new);
                        after = Some(new.crv);
                    }
                    (before, after)
                });
                if let (Some(after), Some(ranking)) = (after, ranking.as_ref()) {
                    let stored = || reads.stored_row(self, at, id);
                    self.note_tier_change(ranking, sequence, id, stored, before, after, now);
                }
            }
        }
        self.last_sequence
            .store(first + count.get() - 1, Ordering::Release);
        self.stats.count_events(count.get());
        self.activity
            .count_events(now.max(0) as u64 / 1_000_000, count.get());
    }

    /// Records customer `id`'s change of tier, if event `sequence` moved them to another
    /// tier of the served version `ranking`: from the CRV `before` (the overlay's; `None`: the
    /// served table's, or none for a new customer) to `after`. `stored` gives the customer's
    /// row in the live state's base store.
    #[allow(clippy::too_many_arguments)]
    fn note_tier_change(
        &self,
        ranking: &Ranking,
        sequence: u64,
        id: u64,
        stored: impl FnOnce() -> Option<usize>,
        before: Option<f32>,
        after: f32,
        now: i64,
    ) {
        let table = &ranking.table;
        let before = before.or_else(|| {
            // The base store's row is the served table's while no retier published another.
            let row = if std::ptr::eq(table.store(), &*self.base) {
                stored()
            } else {
                table.store().row_of(crate::CustomerId(id))
            };
            Some(table.crv()[row?])
        });
        let cuts = table.tier_cuts();
        let from = before
            .filter(|crv| !crv.is_nan())
            .map(|crv| cuts.tier(crv, id));
        let to = cuts.tier(after, id);
        if from != Some(to) {
            self.activity.record_tier_change(activity::TierChange {
                sequence,
                customer_id: id,
                from,
                to,
                crv: after,
                at_micros: now,
            });
        }
    }

    /// Whether `event` changes its customer's row (a `set` of a column of the schema, or a
    /// purchase where the schema has RFM columns).
    fn changes_row(&self, event: &Event) -> bool {
        match event {
            Event::Set { column, .. } => self.schema.column(column).is_some(),
            Event::Purchase { .. } => self.schema.rfm != RfmColumns::default(),
            _ => false,
        }
    }

    /// The numeric columns of the store that applying `event` to a customer without a
    /// changed row reads, each given to `read`: when the value is computed at once
    /// (`values_now`) and the event changes an input of it, the value's inputs (applying an
    /// event to such a row reads no column: [`Row::apply`]).
    fn columns_read(&self, event: &Event, values_now: bool, read: impl FnMut(usize)) {
        let column = match event {
            Event::Set { column, .. } => self.schema.column(column),
            _ => None,
        };
        if values_now && self.changes_value(event, column) {
            self.valuer.inputs.iter().copied().for_each(read);
        }
    }

    /// Whether `event` (a `set` of `column`, resolved) changes an input of its customer's
    /// value.
    fn changes_value(&self, event: &Event, column: Option<ColumnRef>) -> bool {
        match (event, column) {
            (Event::Purchase { .. }, _) => self.valuer.purchases_change_value,
            (Event::Set { .. }, Some(ColumnRef::Number(column))) => self.valuer.reads(column),
            _ => false,
        }
    }

    /// Records `event` (number `sequence`) in its customer's `state` and changes their row
    /// (a new one on the first change, holding nothing of the store yet); `true` when the
    /// value is stale: the event changed an input of it, or created the customer. `reads`
    /// holds what was read ahead for the event's chunk, the event at position `at`.
    fn change(
        &self,
        state: &mut CustomerState,
        sequence: u64,
        event: &CustomerEvent,
        reads: &ChunkReads,
        at: usize,
    ) -> bool {
        let (id, event) = (event.customer_id, &event.event);
        state.history.record(sequence, event);
        let column = match event {
            Event::Set { column, .. } => self.schema.column(column),
            _ => None,
        };
        let changes_row = self.changes_row(event);
        let mut stale = false;
        if state.row.is_none() {
            let stored = reads.stored_row(self, at, id);
            if changes_row || stored.is_none() {
                state.row = Some((Row::new(stored), None));
                stale = stored.is_none();
            }
        }
        if changes_row && let Some((row, _)) = &mut state.row {
            let stored = row.stored();
            let base = |column| self.stored_number(stored, column);
            row.apply(event, column, &self.schema.rfm, base, || {
                self.stored_texts(id)
            });
            stale |= self.changes_value(event, column);
        }
        stale
    }

    /// The customer's row as events left it, or the store's, or a new customer's (zeros and
    /// empty texts).
    fn current_row(&self, id: u64) -> Row {
        let stored = self.base.row_of(crate::CustomerId(id));
        self.overlay
            .read(Place::of(id, stored), |state| {
                state.row.as_ref().map(|(row, _)| row.clone())
            })
            .flatten()
            .unwrap_or_else(|| Row::new(stored))
    }

    /// Where customer `id`'s state is (or would be) in the overlay.
    fn place_of(&self, id: u64) -> Place {
        Place::of(id, self.base.row_of(crate::CustomerId(id)))
    }

    /// Numeric column `column` of `row`: held, or the store's.
    fn number(&self, row: &Row, column: usize) -> f32 {
        row.number(column, &self.schema.rfm, |column| {
            self.stored_number(row.stored(), column)
        })
    }

    /// Numeric column `column` of the store's row `stored` (0 for a customer the store lacks).
    fn stored_number(&self, stored: Option<usize>, column: usize) -> f32 {
        let Some(row) = stored else {
            return 0.0;
        };
        match self.base.column_at(self.schema.stored[column]) {
            Column::F32(values) => values[row],
            _ => unreachable!("the schema's numeric columns are numeric"),
        }
    }

    /// The text columns of customer `id` in the store (empty texts for a customer it lacks).
    fn stored_texts(&self, id: u64) -> Box<[String]> {
        let row = self.base.row_of(crate::CustomerId(id));
        self.schema.stored[self.schema.numbers.len()..]
            .iter()
            .map(|&index| match (row, self.base.column_at(index)) {
                (Some(row), Column::Text(text)) => text.value(row).unwrap_or_default().to_string(),
                _ => String::new(),
            })
            .collect()
    }

    /// The text columns of customer `id` whose row is `row`.
    fn texts_of(&self, id: u64, row: &Row) -> Box<[String]> {
        row.texts()
            .map(Box::from)
            .unwrap_or_else(|| self.stored_texts(id))
    }

    /// Customer `id`'s value when events changed it (or created the customer), `None` when the
    /// served table's own answer stands.
    pub fn score(&self, id: u64) -> Option<LiveScore> {
        let value = self
            .overlay
            .read(self.place_of(id), |state| state.row.as_ref()?.1)??;
        Some(self.ranking.load().as_ref()?.score(id, value))
    }

    /// Whether customer `id` exists: in the store or created by an event.
    pub fn knows(&self, id: u64) -> bool {
        match self.place_of(id) {
            Place::Stored(_) => true,
            created => self.overlay.read(created, |_| ()).is_some(),
        }
    }

    /// Makes `table` (a newly published version) the one whose cut points and ranks live
    /// customers are placed against.
    pub fn rank_against(&self, table: Arc<Table>) {
        self.ranking.store(Some(Arc::new(Ranking::new(table))));
    }

    /// Customer `id`'s contact history (contacts and responses, oldest first), empty for a
    /// customer without one: what contact rules are evaluated against.
    pub fn contacts(&self, id: u64) -> Vec<customer::ContactRecord> {
        self.overlay
            .read(self.place_of(id), |state| {
                state.history.contacts.iter().collect()
            })
            .unwrap_or_default()
    }

    /// Every customer's contacts and responses (of `campaign` only, when given) as the
    /// campaign stage reads them: the contact rules of `POST /v1/campaigns/optimise` and the
    /// campaign report. Each customer keeps their last [`crate::limits::MAX_CONTACT_HISTORY`]
    /// entries. O(store customers + customers with events + their entries); events applied
    /// meanwhile may or may not be in it, each whole.
    pub fn contact_history(&self, campaign: Option<&str>) -> ContactHistory {
        let mut history = ContactHistory::default();
        self.overlay.for_each(self.base.ids(), |id, state| {
            for record in state.history.contacts.iter() {
                if campaign.is_some_and(|campaign| campaign != record.campaign) {
                    continue;
                }
                match &record.touch {
                    customer::Touch::Contact { channel } => history.add_contact(
                        id,
                        record.time,
                        channel,
                        &record.campaign,
                        &record.offer,
                    ),
                    customer::Touch::Response { value } => history.add_response(
                        id,
                        record.time,
                        &record.campaign,
                        &record.offer,
                        *value,
                    ),
                }
            }
        });
        history
    }

    /// Customer `id`'s history (event count, recent events, contacts), `None` without events.
    pub fn history(&self, id: u64) -> Option<History> {
        self.overlay
            .read(self.place_of(id), |state| state.history.clone())
    }

    /// `columns`, `events` and `contacts` of customer `id`'s profile; `None` for an unknown
    /// customer.
    pub fn profile(&self, id: u64) -> Option<Value> {
        if !self.knows(id) {
            return None;
        }
        let row = self.current_row(id);
        let mut columns = Map::new();
        for (column, name) in self.schema.numbers.iter().enumerate() {
            let value = self.number(&row, column);
            columns.insert(name.clone(), crate::campaign::report::f32_json(value));
        }
        for (name, value) in self.schema.texts.iter().zip(self.texts_of(id, &row)) {
            columns.insert(name.clone(), Value::String(value));
        }
        let history = self.history(id).unwrap_or_default();
        let recent: Vec<Value> = history
            .recent
            .iter()
            .rev()
            .map(|logged| {
                let mut event = event_json(&logged.event);
                event["sequence"] = json!(logged.sequence);
                event
            })
            .collect();
        let contacts: Vec<Value> = history
            .contacts
            .iter()
            .rev()
            .map(|contact| {
                let mut entry = json!({
                    "sequence": contact.sequence,
                    "time": time_json(contact.time),
                    "campaign": contact.campaign,
                    "offer": contact.offer,
                });
                match &contact.touch {
                    customer::Touch::Contact { channel } => {
                        entry["type"] = json!("contact");
                        entry["channel"] = json!(channel);
                    }
                    customer::Touch::Response { value } => {
                        entry["type"] = json!("response");
                        entry["value"] = json!(value);
                    }
                }
                entry
            })
            .collect();
        Some(json!({
            "columns": columns,
            "events": {"count": history.events, "recent": recent},
            "contacts": contacts,
        }))
    }

    /// Appends `events` to the log and applies them; resolves once they are durable per the
    /// fsync policy and applied. Call [`Live::check`] first.
    pub async fn submit(
        self: &Arc<Self>,
        events: Vec<CustomerEvent>,
    ) -> std::result::Result<u64, writer::WriteError> {
        writer::submit(self, events).await
    }

    /// Sets what happens with the new store after each compaction inside the server (once;
    /// later calls are ignored).
    pub fn on_compaction(&self, hook: Box<CompactionHook>) {
        let _ = self.on_compaction.set(hook);
    }

    /// Stops the writer after the events already submitted, with a last fsync.
    pub fn close(&self) {
        self.writer.close();
    }

    /// Every customer's history, by id (what a checkpoint keeps).
    fn histories(&self) -> Vec<(u64, History)> {
        let mut all = Vec::new();
        self.overlay.for_each(self.base.ids(), |id, state| {
            all.push((id, state.history.clone()));
        });
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Every changed or created row, by id.
    fn changed_rows(&self) -> Vec<(u64, Row)> {
        let mut rows = Vec::new();
        self.overlay.for_each(self.base.ids(), |id, state| {
            if let Some((row, _)) = &state.row {
                rows.push((id, row.clone()));
            }
        });
        rows.sort_unstable_by_key(|(id, _)| *id);
        rows
    }
}

/// An event as the profile shows it: the JSON it came in as.
fn event_json(event: &Event) -> Value {
    match event {
        Event::Purchase { amount, time } => {
            json!({"type": "purchase", "amount": amount, "time": time_json(*time)})
        }
        Event::Contact {
            channel,
            campaign,
            offer,
            time,
        } => json!({"type": "contact", "channel": channel, "campaign": campaign, "offer": offer,
                    "time": time_json(*time)}),
        Event::Response {
            campaign,
            offer,
            value,
            time,
        } => json!({"type": "response", "campaign": campaign, "offer": offer, "value": value,
                    "time": time_json(*time)}),
        Event::Set { column, value } => {
            json!({"type": "set", "column": column, "value": match value {
                SetValue::Number(v) => json!(v),
                SetValue::Text(t) => json!(t),
            }})
        }
    }
}

/// Microseconds since 1970 as an ISO 8601 UTC timestamp.
fn time_json(micros: i64) -> Value {
    use crate::rfm::date::civil_from_days;
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let (days, within) = (
        micros.div_euclid(MICROS_PER_DAY),
        micros.rem_euclid(MICROS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    let seconds = within / 1_000_000;
    let fraction = within % 1_000_000;
    let clock = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    Value::String(if fraction == 0 {
        format!("{year:04}-{month:02}-{day:02}T{clock}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{clock}.{fraction:06}Z")
    })
}

/// A one-value column, if the store has it.
fn optional(column: &Option<[f32; 1]>) -> Option<&[f32]> {
    column.as_ref().map(|value| &value[..])
}

/// Takes the exclusive lock of the log directory `dir` (its `LOCK` file): one process at a
/// time appends to or compacts a log. A holder that has just let go may still hold it for a
/// moment (a child process another thread is starting keeps a copy of every descriptor until
/// its `exec`), so a held lock is tried again for [`LOCK_WAIT`] before it is an error.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "another process (a server or a compaction) holds this log directory",
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(Error::io(&path, error)),
        }
    }
}

/// How long a held log directory lock is tried again ([`lock_dir`]).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_customer_stays_small() {
        // A replay of millions of customers is bound by the memory it touches (module doc):
        // the overlay's slot is a pointer, the state one allocation of at most 96 bytes (a
        // mimalloc size class), with a purchase's entry among the recent events and the
        // purchases' count and sum inside it.
        assert_eq!(std::mem::size_of::<Box<CustomerState>>(), 8);
        let state = std::mem::size_of::<CustomerState>();
        assert!(state <= 96, "{state} bytes");
    }

    #[test]
    fn counting_values_above_agrees_with_a_plain_search() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [0, 1, 2, 63, 64, 65, 128, 1000, 4097] {
            // Few distinct values, so that runs of ties cross stride boundaries.
            let mut values: Vec<f32> = (0..len).map(|_| (next() % 50) as f32).collect();
            values.sort_by(|a, b| b.total_cmp(a));
            let descending = Descending::new(values.clone());
            for x in (-2..53)
                .map(|x| x as f32)
                .chain([0.5, 49.5, f32::NAN, f32::INFINITY])
            {
                let plain = values.partition_point(|&other| other > x);
                assert_eq!(descending.above(x), plain, "len {len}, x {x}");
            }
        }
    }
}
