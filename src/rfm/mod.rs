//! `crv rfm`: a purchase log (customer id, date or timestamp, amount) to one RFM row per
//! customer, as the purchase models read it (docs/model.md, "RFM from a purchase log").
//!
//! The definitions follow the `lifetimes` package's `summary_data_from_transaction_data` and
//! `calibration_and_holdout_data`: dates are floored to the [`Period`]; a customer's purchases
//! in one period merge (amounts summed); `frequency` is the number of distinct periods less
//! one, `recency` the time from the first period to the last, `age` the time from the first
//! period to the end of observation (both in the time unit), `monetary_value` the mean merged
//! amount of the repeat periods (the first excluded; 0 without repeats). With a calibration
//! end the summary covers the purchases up to it (age measured to it) and the holdout columns
//! count the purchase periods after it, up to the observation end.
//!
//! # Streaming, unsorted input and memory
//!
//! Merging by period needs each customer's distinct periods, and in an unsorted log a customer's
//! purchases may come in any order, so no bounded per-customer state decides whether a purchase
//! opens a new period. The log is therefore partitioned by customer: each purchase becomes a
//! 24-byte [`Record`] (id, amount, period, calibration or holdout) appended to one of `P`
//! partitions chosen by a hash of the id, `P` a power of two from 16 to 4096 sized from the
//! log's length (about one per 4 MiB of log, so that a partition's records group in cache).
//! Partitions stay in memory while the records held total at most the budget (`--memory-mb`,
//! default 1024 MiB); past it whole partitions spill, the last held first and only as many as
//! bring the records held back within it, to anonymous temporary files (deleted by the OS even
//! if crv is killed), written through per-partition buffers from then on: a log of twice the
//! budget writes and reads back about half its records, not all. Then each partition is loaded,
//! grouped by customer (a counting sort on the customer's index in the partition), each
//! customer's records sorted by (holdout, period, amount), and summarised, in parallel. Memory
//! is thus bounded by the budget, the read blocks (2 x 16 MiB) and one partition per thread
//! (about 52 bytes per purchase of 1/P of the log, loaded, grouped and indexed: it grows with
//! the log only through a customer whose purchases alone outweigh a partition), plus the
//! output rows (about 56 bytes per customer), never by the whole log.
//!
//! Reading overlaps parsing: while the blocks' lines are parsed in parallel (split at line
//! breaks, one piece per thread and more; the common field shapes on a fast path, `fast`),
//! the next block is read; the pieces' records then move to their partitions in parallel.
//! Output rows are sorted by customer id (ascending), so the same log in any line order gives
//! the same bytes.

pub mod date;
pub mod fast;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod log;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

pub use date::{Moment, Period};
pub use log::ColumnNames;

use crate::error::{Error, Result};
use crate::store::schema::{DURATION_HOLDOUT, FREQUENCY_HOLDOUT, MONETARY_VALUE_HOLDOUT};
use log::{FieldError, Layout};

/// Bytes read per block (the longest line allowed).
const BLOCK_BYTES: usize = 16 << 20;
/// Log bytes per partition aimed at when the log's size is known.
const LOG_BYTES_PER_PARTITION: u64 = 4 << 20;
/// Partitions when the log's size is unknown (standard input).
const DEFAULT_PARTITIONS: usize = 256;
/// The fewest and most partitions.
const MIN_PARTITIONS: usize = 16;
const MAX_PARTITIONS: usize = 4096;
/// The largest write buffer of one spilled partition.
const SPILL_BUFFER_BYTES: usize = 256 << 10;
/// The default `--memory-mb`: purchase records held in memory before partitions spill.
pub const DEFAULT_MEMORY_MB: usize = 1024;

/// How to summarise a log (the flags of `crv rfm`).
#[derive(Debug, Clone)]
pub struct Options {
    /// The names of the customer, date and amount columns.
    pub columns: ColumnNames,
    /// The period purchases merge in (`--period`).
    pub period: Period,
    /// The unit of `recency`, `age` and `duration_holdout` (`--time-unit`; default the period).
    pub time_unit: Option<Period>,
    /// The end of observation (`--observation-end`; default the latest purchase's date). A date
    /// alone covers its whole day.
    pub observation_end: Option<Moment>,
    /// The end of the calibration period (`--calibration-end`): adds the holdout columns.
    pub calibration_end: Option<Moment>,
    /// Drop purchases after the observation end (counted) instead of refusing the log.
    pub drop_after_end: bool,
    /// Bytes of purchase records held in memory before the partitions spill to files.
    pub memory_budget: usize,
    /// Where spilled partitions go (default: the system's temporary directory).
    pub temp_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            columns: ColumnNames::default(),
            period: Period::Day,
            time_unit: None,
            observation_end: None,
            calibration_end: None,
            drop_after_end: false,
            memory_budget: DEFAULT_MEMORY_MB << 20,
            temp_dir: None,
        }
    }
}

/// One customer's summary row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfmRow {
    /// The customer's id.
    pub customer_id: u64,
    /// Distinct purchase periods less one (in the calibration period, with one).
    pub frequency: u64,
    /// Time from the first purchase period to the last.
    pub recency: f64,
    /// Time from the first purchase period to the end (of observation, or of calibration).
    pub age: f64,
    /// Mean merged amount of the repeat periods; 0 without repeats.
    pub monetary_value: f64,
    /// Distinct purchase periods after the calibration end (0 without a calibration end).
    pub frequency_holdout: u64,
    /// Mean merged amount of those periods (0 without any).
    pub monetary_value_holdout: f64,
}

/// What `crv rfm` computed and read.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// One row per customer, by ascending id.
    pub rows: Vec<RfmRow>,
    /// With a calibration end: the holdout's length in time units (`duration_holdout`).
    pub duration_holdout: Option<f64>,
    /// Lines after the header (blank lines included).
    pub lines: u64,
    /// Purchases dropped because they were after the observation end (`--drop-after-end`).
    pub dropped: u64,
    /// Customers left out because their first purchase is after the calibration end.
    pub excluded: u64,
    /// Bytes of log read.
    pub bytes: u64,
    /// Whether the partitions spilled to temporary files.
    pub spilled: bool,
    /// The observation end's day (days since 1970-01-01).
    pub observation_end_day: i64,
}

/// One purchase as partitioned: 24 bytes, written to and read from spill files as they are.
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Record {
    /// The customer's id.
    pub customer: u64,
    /// The amount.
    pub amount: f64,
    /// The period's index ([`Period::of_day`]).
    pub period: i32,
    /// 1 when after the calibration end, else 0.
    pub holdout: u32,
}

/// What the parsing of a line needs to know.
struct Context<'a> {
    layout: &'a Layout,
    period: Period,
    /// Inclusive ends, in microseconds.
    observation_end: Option<i64>,
    calibration_end: Option<i64>,
    drop_after_end: bool,
    partition_bits: u32,
}

impl Context<'_> {
    fn partition(&self, customer: u64) -> usize {
        (customer.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.partition_bits)) as usize
    }
}

/// A bad line: where it starts in its block, the read column at fault (0 customer, 1 date,
/// 2 amount) and why.
struct LineError {
    offset: usize,
    field: FieldError,
}

/// One piece of a block, parsed.
struct Piece {
    partitions: Vec<Vec<Record>>,
    lines: u64,
    dropped: u64,
    latest: i64,
}

impl Piece {
    fn new(partitions: usize) -> Self {
        Piece {
            partitions: vec![Vec::new(); partitions],
            lines: 0,
            dropped: 0,
            latest: i64::MIN,
        }
    }
}

/// Parses the lines of `bytes` (at offset `base` in its block) into `piece`, whose partitions
/// are empty (their capacity is kept from block to block).
fn parse_piece(
    bytes: &[u8],
    base: usize,
    context: &Context,
    piece: &mut Piece,
) -> Result<(), LineError> {
    piece.lines = 0;
    piece.dropped = 0;
    piece.latest = i64::MIN;
    let mut last = fast::LastDate::default();
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let line = &bytes[start..end];
        piece.lines += 1;
        if !line.trim_ascii().is_empty() {
            let purchase = context
                .layout
                .parse_after(line, &mut last)
                .map_err(|field| LineError {
                    offset: base + start,
                    field,
                })?;
            let micros = purchase.moment.micros;
            if context.observation_end.is_some_and(|end| micros > end) {
                if !context.drop_after_end {
                    return Err(LineError {
                        offset: base + start,
                        field: FieldError {
                            column: 1,
                            message: "after the observation end (--drop-after-end drops such \
                                      purchases)"
                                .to_string(),
                        },
                    });
                }
                piece.dropped += 1;
            } else {
                piece.latest = piece.latest.max(micros);
                let record = Record {
                    customer: purchase.customer,
                    amount: purchase.amount,
                    period: context.period.of_day(purchase.moment.day()) as i32,
                    holdout: u32::from(context.calibration_end.is_some_and(|end| micros > end)),
                };
                piece.partitions[context.partition(record.customer)].push(record);
            }
        }
        start = end + 1;
    }
    Ok(())
}

/// Splits `bytes` (whole lines) into about `count` pieces at line breaks; each piece is given
/// with its offset.
fn split_lines(bytes: &[u8], count: usize) -> Vec<(usize, &[u8])> {
    let target = bytes.len().div_ceil(count.max(1)).max(1 << 16);
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + target).min(bytes.len());
        if end < bytes.len() {
            end = memchr::memchr(b'\n', &bytes[end..]).map_or(bytes.len(), |i| end + i + 1);
        }
        pieces.push((start, &bytes[start..end]));
        start = end;
    }
    pieces
}

/// The partitions, each in memory or spilled.
struct Partitions {
    held: Vec<Vec<Record>>,
    held_bytes: usize,
    budget: usize,
    /// Each spilled partition's file and the records written to it.
    spill: Vec<Option<(File, u64)>>,
    temp_dir: Option<PathBuf>,
}

impl Partitions {
    /// Moves the pieces' records into the partitions (the pieces keep their capacity), one
    /// thread per run of partitions; a spilled partition is written once it holds a buffer's
    /// worth. Past the budget, whole partitions spill, the last held first, until the records
    /// held fit it again: a log twice the budget spills about half its records, not all.
    fn add(&mut self, pieces: &mut [Piece]) -> Result<()> {
        let buffer_bytes = self.buffer_bytes();
        self.held
            .par_iter_mut()
            .zip(self.spill.par_iter_mut())
            .enumerate()
            .try_for_each(|(i, (held, file))| {
                for piece in pieces.iter() {
                    held.extend_from_slice(&piece.partitions[i]);
                }
                if let Some(file) = file
                    && held.len() * size_of::<Record>() >= buffer_bytes
                {
                    write_records(file, held)?;
                }
                Ok::<_, Error>(())
            })?;
        pieces.par_iter_mut().for_each(|piece| {
            piece.partitions.iter_mut().for_each(Vec::clear);
        });
        self.held_bytes =
            self.held.iter().map(|held| held.len()).sum::<usize>() * size_of::<Record>();
        while self.held_bytes > self.budget {
            let Some(i) = self.spill.iter().rposition(Option::is_none) else {
                break;
            };
            let dir = self.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
            let mut file = (
                tempfile::tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?,
                0,
            );
            self.held_bytes -= self.held[i].len() * size_of::<Record>();
            write_records(&mut file, &mut self.held[i])?;
            // From now on the partition holds a write buffer's worth at most.
            self.held[i] = Vec::with_capacity(buffer_bytes / size_of::<Record>());
            self.spill[i] = Some(file);
        }
        Ok(())
    }

    fn buffer_bytes(&self) -> usize {
        (self.budget / self.held.len()).clamp(1 << 12, SPILL_BUFFER_BYTES)
    }

    /// Writes every held record of the spilled partitions to their files.
    fn flush(&mut self) -> Result<()> {
        for (file, records) in self.spill.iter_mut().zip(&mut self.held) {
            if let Some(file) = file {
                write_records(file, records)?;
            }
        }
        Ok(())
    }

    /// Whether any partition spilled.
    fn spilled(&self) -> bool {
        self.spill.iter().any(Option::is_some)
    }

    /// Partition `i`'s records: those held (in memory), or read back from its file into
    /// `buffer` (reused from partition to partition).
    fn load<'a>(
        &self,
        i: usize,
        held: &'a mut [Record],
        buffer: &'a mut Vec<Record>,
    ) -> Result<&'a mut [Record]> {
        let Some((file, count)) = &self.spill[i] else {
            return Ok(held);
        };
        buffer.clear();
        buffer.resize(*count as usize, Record::zeroed());
        file.read_exact_at(bytemuck::cast_slice_mut(buffer), 0)
            .map_err(|e| Error::io("<spilled partition>", e))?;
        Ok(buffer)
    }
}

fn write_records(file: &mut (File, u64), records: &mut Vec<Record>) -> Result<()> {
    file.0
        .write_all(bytemuck::cast_slice(records))
        .map_err(|e| Error::io("<spilled partition>", e))?;
    file.1 += records.len() as u64;
    records.clear();
    Ok(())
}

/// Reads into `buffer` until it holds `want` bytes or the input ends; returns whether it ended.
fn fill(input: &mut impl Read, buffer: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let start = buffer.len();
    buffer.resize(want.max(start), 0);
    let mut filled = start;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => {
                buffer.truncate(filled);
                return Ok(true);
            }
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buffer.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(false)
}

/// Summarises the log read from `input` (named `file` in messages; `size_hint` its length when
/// known, which sets the number of partitions).
pub fn summarize(
    mut input: impl Read + Send,
    file: &str,
    size_hint: Option<u64>,
    options: &Options,
) -> Result<Summary> {
    let io_error = |e| Error::io(file, e);
    let csv_error = |line: u64, layout: &Layout, field: FieldError| Error::Csv {
        file: file.to_string(),
        line,
        column: layout.name(field.column).to_string(),
        message: field.message,
    };
    if let (Some(calibration), Some(observation)) =
        (options.calibration_end, options.observation_end)
        && calibration.inclusive_end() >= observation.inclusive_end()
    {
        return Err(Error::invalid(
            "calibration-end",
            "must be before the observation end",
        ));
    }

    // The header.
    let mut block = Vec::new();
    let mut eof = false;
    let header_end = loop {
        if let Some(i) = block.iter().position(|&b| b == b'\n') {
            break i;
        }
        if eof {
            break block.len();
        }
        if block.len() >= BLOCK_BYTES {
            return Err(Error::CsvFile {
                file: file.to_string(),
                message: format!("the header is longer than {BLOCK_BYTES} bytes"),
            });
        }
        let want = block.len() + (64 << 10);
        eof = fill(&mut input, &mut block, want).map_err(io_error)?;
    };
    if block[..header_end].trim_ascii().is_empty() {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: "empty log: no header row".to_string(),
        });
    }
    let names = [
        &options.columns.customer,
        &options.columns.date,
        &options.columns.amount,
    ];
    let layout = Layout::from_header(&block[..header_end], &options.columns).map_err(|field| {
        Error::Csv {
            file: file.to_string(),
            line: 1,
            column: names[field.column].to_string(),
            message: field.message,
        }
    })?;
    let mut bytes = header_end.min(block.len()) as u64 + u64::from(header_end < block.len());
    block.drain(..(header_end + 1).min(block.len()));

    let partition_count = size_hint.map_or(DEFAULT_PARTITIONS, |size| {
        ((size / LOG_BYTES_PER_PARTITION) as usize)
            .next_power_of_two()
            .clamp(MIN_PARTITIONS, MAX_PARTITIONS)
    });
    // Room for the records each partition may hold before a spill, set aside at once (only
    // the pages written are ever touched): growing by reallocation copies the records and
    // faults in fresh pages, each zeroed by the kernel. A line takes at least 13 bytes.
    let reserve = size_hint.map_or(0, |size| {
        let records = usize::try_from(size / 13).unwrap_or(usize::MAX);
        (records
            .saturating_mul(size_of::<Record>())
            .min(options.memory_budget)
            / size_of::<Record>())
        .saturating_mul(5)
            / 4
    });
    let context = Context {
        layout: &layout,
        period: options.period,
        observation_end: options.observation_end.map(Moment::inclusive_end),
        calibration_end: options.calibration_end.map(Moment::inclusive_end),
        drop_after_end: options.drop_after_end,
        partition_bits: partition_count.trailing_zeros(),
    };
    let mut partitions = Partitions {
        held: (0..partition_count)
            .map(|_| {
                // Refused room is no error: the partition then grows as it fills.
                let mut records = Vec::new();
                let _ = records.try_reserve_exact(reserve / partition_count);
                records
            })
            .collect(),
        held_bytes: 0,
        budget: options.memory_budget,
        spill: (0..partition_count).map(|_| None).collect(),
        temp_dir: options.temp_dir.clone(),
    };
    let threads = rayon::current_num_threads();
    let mut lines = 0u64;
    let mut dropped = 0u64;
    // The next block's bytes, and the parsed pieces: both reused from block to block.
    let mut next = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut latest = i64::MIN;
    if !eof {
        eof = fill(&mut input, &mut block, BLOCK_BYTES).map_err(io_error)?;
    }
    loop {
        let cut = if eof {
            block.len()
        } else {
            match memchr::memrchr(b'\n', &block) {
                Some(i) => i + 1,
                None => {
                    return Err(Error::Csv {
                        file: file.to_string(),
                        line: lines + 2,
                        column: layout.name(0).to_string(),
                        message: format!("line longer than {BLOCK_BYTES} bytes"),
                    });
                }
            }
        };
        next.clear();
        next.extend_from_slice(&block[cut..]);
        let split = split_lines(&block[..cut], threads * 4);
        if pieces.len() < split.len() {
            pieces.resize_with(split.len(), || Piece::new(partition_count));
        }
        let pieces = &mut pieces[..split.len()];
        let (read, parsed) = rayon::join(
            || {
                if eof {
                    Ok(true)
                } else {
                    fill(&mut input, &mut next, BLOCK_BYTES)
                }
            },
            || {
                split
                    .into_par_iter()
                    .zip(pieces.par_iter_mut())
                    .map(|((offset, bytes), piece)| parse_piece(bytes, offset, &context, piece))
                    .collect::<Vec<_>>()
            },
        );
        for piece in parsed {
            match piece {
                Ok(()) => {}
                Err(error) => {
                    let before = memchr::memchr_iter(b'\n', &block[..error.offset]).count();
                    return Err(csv_error(
                        1 + lines + before as u64 + 1,
                        &layout,
                        error.field,
                    ));
                }
            }
        }
        for piece in pieces.iter() {
            lines += piece.lines;
            dropped += piece.dropped;
            latest = latest.max(piece.latest);
        }
        partitions.add(pieces)?;
        bytes += cut as u64;
        eof = read.map_err(io_error)?;
        if eof && next.is_empty() {
            break;
        }
        std::mem::swap(&mut block, &mut next);
    }
    partitions.flush()?;
    if latest == i64::MIN {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: if dropped > 0 {
                "every purchase is after the observation end".to_string()
            } else {
                "empty log: no purchases after the header".to_string()
            },
        });
    }

    let observation_end_day = options
        .observation_end
        .map_or_else(|| latest.div_euclid(date::MICROS_PER_DAY), Moment::day);
    if let Some(calibration) = options.calibration_end
        && options.observation_end.is_none()
        && calibration.inclusive_end() >= latest
    {
        return Err(Error::invalid(
            "calibration-end",
            "must be before the latest purchase (the observation end): no holdout purchases",
        ));
    }
    let period = options.period;
    let unit = options.time_unit.unwrap_or(period);
    let end_period = period.of_day(
        options
            .calibration_end
            .map_or(observation_end_day, Moment::day),
    );
    let mut held = std::mem::take(&mut partitions.held);
    // One run of partitions per thread, each with one read buffer reused from partition to
    // partition (fresh memory costs a page fault per page).
    let per_thread = held.len().div_ceil(threads);
    let summarised = held
        .par_chunks_mut(per_thread)
        .enumerate()
        .map(|(run, held)| {
            let mut buffer = Vec::new();
            let mut grouping = Grouping::default();
            let mut rows = Vec::new();
            let mut excluded = 0;
            for (k, held) in held.iter_mut().enumerate() {
                let records = partitions.load(run * per_thread + k, held, &mut buffer)?;
                let records = grouping.by_customer(records);
                excluded += summarise_partition(records, period, unit, end_period, &mut rows);
                *held = Vec::new();
            }
            Ok((rows, excluded))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows = Vec::with_capacity(summarised.iter().map(|(rows, _)| rows.len()).sum());
    let mut excluded = 0;
    for (run_rows, run_excluded) in summarised {
        rows.extend_from_slice(&run_rows);
        excluded += run_excluded;
    }
    rows.par_sort_unstable_by_key(|row| row.customer_id);
    let duration_holdout = options.calibration_end.map(|calibration| {
        period.elapsed(
            unit,
            period.of_day(calibration.day()),
            period.of_day(observation_end_day),
        )
    });
    Ok(Summary {
        rows,
        duration_holdout,
        lines,
        dropped,
        excluded,
        bytes,
        spilled: partitions.spilled(),
        observation_end_day,
    })
}

/// Groups a partition's records by customer (a counting sort on each customer's index in
/// the partition, in order of first appearance), its buffers reused from partition to
/// partition: linear in the records, where a comparison sort of the whole partition is not.
#[derive(Default)]
struct Grouping {
    /// Customer id to its index in the partition.
    index: FxHashMap<u64, u32>,
    /// Each record's customer index.
    customer_of: Vec<u32>,
    /// Records per customer, then where each customer's next record goes.
    starts: Vec<usize>,
    grouped: Vec<Record>,
}

impl Grouping {
    /// The records with each customer's together (customers in no particular order).
    fn by_customer(&mut self, records: &[Record]) -> &mut [Record] {
        self.index.clear();
        self.customer_of.clear();
        self.starts.clear();
        for record in records {
            let next = self.starts.len() as u32;
            let customer = *self.index.entry(record.customer).or_insert(next);
            if customer == next {
                self.starts.push(0);
            }
            self.starts[customer as usize] += 1;
            self.customer_of.push(customer);
        }
        let mut start = 0;
        for slot in &mut self.starts {
            let count = *slot;
            *slot = start;
            start += count;
        }
        self.grouped.clear();
        self.grouped.resize(records.len(), Record::zeroed());
        for (record, &customer) in records.iter().zip(&self.customer_of) {
            let slot = &mut self.starts[customer as usize];
            self.grouped[*slot] = *record;
            *slot += 1;
        }
        &mut self.grouped
    }
}

/// Appends the rows of one partition's customers to `rows` (sorting each customer's records);
/// returns how many customers had only holdout purchases. `records` hold each customer's
/// together.
fn summarise_partition(
    records: &mut [Record],
    period: Period,
    unit: Period,
    end_period: i64,
    rows: &mut Vec<RfmRow>,
) -> u64 {
    // Each customer's sorted by (holdout, period, amount): that fixes the order amounts are
    // summed in, so any order of the same lines gives the same bits (amounts are >= 0: their
    // bits sort as their values).
    let key = |r: &Record| {
        u128::from(r.holdout) << 96
            | u128::from(r.period as u32 ^ 0x8000_0000) << 64
            | u128::from(r.amount.to_bits())
    };
    let mut excluded = 0;
    for customer in records.chunk_by_mut(|a, b| a.customer == b.customer) {
        customer.sort_unstable_by_key(key);
        let split = customer.partition_point(|r| r.holdout == 0);
        let (calibration, holdout) = customer.split_at(split);
        let Some(first) = calibration.first() else {
            excluded += 1;
            continue;
        };
        let last = calibration.last().expect("not empty").period;
        let first_len = calibration.partition_point(|r| r.period == first.period);
        let (repeats, repeat_total) = merged(&calibration[first_len..]);
        let (frequency_holdout, total_holdout) = merged(holdout);
        rows.push(RfmRow {
            customer_id: first.customer,
            frequency: repeats,
            recency: period.elapsed(unit, i64::from(first.period), i64::from(last)),
            age: period.elapsed(unit, i64::from(first.period), end_period),
            monetary_value: if repeats > 0 {
                repeat_total / repeats as f64
            } else {
                0.0
            },
            frequency_holdout,
            monetary_value_holdout: if frequency_holdout > 0 {
                total_holdout / frequency_holdout as f64
            } else {
                0.0
            },
        });
    }
    excluded
}

/// Distinct periods of records sorted by period, and their total amount.
fn merged(records: &[Record]) -> (u64, f64) {
    let periods = records.chunk_by(|a, b| a.period == b.period).count() as u64;
    (periods, records.iter().map(|r| r.amount).sum())
}

impl Summary {
    /// Writes the rows as CSV: `customer_id,frequency,recency,age,monetary_value`, plus
    /// `frequency_holdout,monetary_value_holdout,duration_holdout` with a calibration end.
    pub fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(b"customer_id,frequency,recency,age,monetary_value")?;
        if self.duration_holdout.is_some() {
            write!(
                out,
                ",{FREQUENCY_HOLDOUT},{MONETARY_VALUE_HOLDOUT},{DURATION_HOLDOUT}"
            )?;
        }
        out.write_all(b"\n")?;
        let mut line = Vec::with_capacity(160);
        let mut id = itoa::Buffer::new();
        let mut whole = itoa::Buffer::new();
        let mut float = zmij::Buffer::new();
        let mut number = |line: &mut Vec<u8>, value: f64| {
            line.push(b',');
            // Whole numbers without a fraction (`38`, not `38.0`); others shortest round-trip.
            if value.fract() == 0.0 && value.abs() < 1e15 {
                line.extend_from_slice(whole.format(value as i64).as_bytes());
            } else {
                line.extend_from_slice(float.format(value).as_bytes());
            }
        };
        for row in &self.rows {
            line.clear();
            line.extend_from_slice(id.format(row.customer_id).as_bytes());
            number(&mut line, row.frequency as f64);
            number(&mut line, row.recency);
            number(&mut line, row.age);
            number(&mut line, row.monetary_value);
            if let Some(duration) = self.duration_holdout {
                number(&mut line, row.frequency_holdout as f64);
                number(&mut line, row.monetary_value_holdout);
                number(&mut line, duration);
            }
            line.push(b'\n');
            out.write_all(&line)?;
        }
        Ok(())
    }
}
