//! The log writer. Requests hand it their checked events; it numbers them, appends whatever
//! arrived meanwhile as one group in one write, makes them durable per the fsync policy,
//! applies them to the overlay in log order and answers each request. A failed write is cut
//! back out of the file and answered 503; a failed fsync stops all later writes (the kernel may
//! have dropped the pages) until a restart re-reads the log.
//!
//! Two ways to run it, by policy:
//! - `--fsync always`: one thread owns the open segment. It takes every job waiting (up to
//!   [`MAX_GROUP_JOBS`]) and syncs once per group (group commit): the fsync never blocks the
//!   reactor, and the jobs that arrive during one fsync form the next group.
//! - `everysec` and `no`: no fsync waits on the answer, so the group is written on the
//!   reactor itself, as Redis does: the first request of a group spawns a flush task that
//!   yields once (letting every request already readable add its events), then appends them
//!   all and applies them [`APPLY_SLICE`] events at a time, yielding to the reactor between
//!   slices and answering each request once its own events are applied: on one core a group
//!   of batches is milliseconds of work, and the lookups that arrive meanwhile are answered
//!   between two slices rather than after the group. No thread hand-off per request. A background thread syncs the segment
//!   through a second file handle once a second (`everysec`) or at close (`no`), without
//!   holding the appender. Compaction runs on a blocking thread holding the appender, so
//!   writes wait (asynchronously) while lookups go on.

use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::event::CustomerEvent;
use super::log::{Appender, encode_record};
use super::{FsyncPolicy, Live};
use crate::error::{Error, Result};

/// Most jobs written as one group.
pub const MAX_GROUP_JOBS: usize = 4096;
/// Events applied at a time: one chunk of the overlay's read-ahead; under `everysec` and `no`
/// the reactor yields between two slices (a few hundred microseconds at most).
const APPLY_SLICE: usize = super::WARM_CHUNK;
/// The `everysec` interval.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Why events were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The log cannot be written now (a full disk, an I/O error): retry later.
    #[error("the event log cannot be written: {0}")]
    Unavailable(String),
    /// The server is shutting down.
    #[error("the event log is closed: the server is shutting down")]
    Closed,
}

/// Where a job's answer goes: its last sequence, or why it was refused.
type Reply = oneshot::Sender<std::result::Result<u64, WriteError>>;

struct Job {
    events: Vec<CustomerEvent>,
    reply: Reply,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("events", &self.events.len())
            .finish()
    }
}

/// The writer's inbox and threads.
#[derive(Debug, Default)]
pub struct WriterHandle {
    /// `always`: the writer thread's inbox; `everysec`/`no`: the sync thread's stop signal.
    sender: RwLock<Option<Sender<Job>>>,
    /// The writer thread (`always`) or the sync thread (`everysec`, `no`).
    thread: Mutex<Option<JoinHandle<()>>>,
    /// `everysec`/`no`: the groups written on the reactor.
    inline: OnceLock<Inline>,
}

/// The writer of `everysec` and `no`: jobs waiting for the next flush, and the open segment.
#[derive(Debug)]
struct Inline {
    queue: Mutex<Queue>,
    log: tokio::sync::Mutex<Segment>,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A flush task is spawned and has not taken the jobs yet.
    flush_pending: bool,
}

/// The open segment and what the writer keeps with it.
#[derive(Debug)]
struct Segment {
    appender: Appender,
    bytes: Vec<u8>,
    /// Appended since the last sync.
    unsynced: bool,
    /// A compaction is queued or running.
    compacting: bool,
}

impl WriterHandle {
    /// Closes the inbox and waits for the writer to finish what it holds, with a last sync.
    pub fn close(&self) {
        if let Some(inline) = self.inline.get() {
            inline.closed.store(true, Ordering::SeqCst);
        }
        self.sender
            .write()
            .expect("the writer handle is never poisoned")
            .take();
        if let Some(thread) = self.thread.lock().expect("never poisoned").take() {
            let _ = thread.join();
        }
    }
}

/// Sends `events` to `live`'s writer and waits for their last sequence number.
pub(super) async fn submit(
    live: &Arc<Live>,
    events: Vec<CustomerEvent>,
) -> std::result::Result<u64, WriteError> {
    let writer = &live.writer;
    let (reply, answer) = oneshot::channel();
    let job = Job { events, reply };
    match writer.inline.get() {
        Some(inline) => {
            if inline.closed.load(Ordering::SeqCst) {
                return Err(WriteError::Closed);
            }
            let lead = {
                let mut queue = inline.queue.lock().expect("never poisoned");
                queue.jobs.push(job);
                !mem::replace(&mut queue.flush_pending, true)
            };
            if lead {
                tokio::spawn(flush(Arc::clone(live)));
            }
        }
        None => {
            let sender = writer
                .sender
                .read()
                .expect("the writer handle is never poisoned");
            let sender = sender.as_ref().ok_or(WriteError::Closed)?;
            sender.send(job).map_err(|_| WriteError::Closed)?;
        }
    }
    answer.await.map_err(|_| WriteError::Closed)?
}

/// Starts `live`'s writer over `appender`.
pub(super) fn start(live: &Arc<Live>, appender: Appender) -> Result<()> {
    let (sender, inbox) = mpsc::channel();
    let owner = Arc::clone(live);
    let thread = if live.options.fsync == FsyncPolicy::Always {
        std::thread::Builder::new()
            .name("crv-wal".into())
            .spawn(move || run(&owner, appender, &inbox))
    } else {
        let inline = Inline {
            queue: Mutex::default(),
            log: tokio::sync::Mutex::new(Segment {
                appender,
                bytes: Vec::new(),
                unsynced: false,
                compacting: false,
            }),
            closed: AtomicBool::new(false),
        };
        live.writer
            .inline
            .set(inline)
            .expect("the writer starts once");
        std::thread::Builder::new()
            .name("crv-wal-sync".into())
            .spawn(move || run_syncs(&owner, &inbox))
    }
    .map_err(|e| Error::io("<log writer thread>", e))?;
    *live.writer.sender.write().expect("never poisoned") = Some(sender);
    *live.writer.thread.lock().expect("never poisoned") = Some(thread);
    Ok(())
}

/// The flush task of `everysec` and `no`: after one yield, writes every job waiting as one
/// group, then applies it a slice at a time. Spawned (not run by the request), so that a
/// request dropped by its client never strands the others' jobs.
async fn flush(live: Arc<Live>) {
    tokio::task::yield_now().await;
    let inline = live
        .writer
        .inline
        .get()
        .expect("flush runs for inline writers");
    let mut segment = inline.log.lock().await;
    let mut jobs = {
        let mut queue = inline.queue.lock().expect("never poisoned");
        queue.flush_pending = false;
        mem::take(&mut queue.jobs)
    };
    let Segment {
        appender,
        bytes,
        unsynced,
        compacting,
    } = &mut *segment;
    if let Some(first) = append_group(&live, appender, &mut jobs, bytes, unsynced) {
        // The segment stays locked across the yields: the next group waits for this one.
        let (events, mut replies) = Replies::split(first, &mut jobs);
        let mut slices = Slices::of(&events);
        let mut applied = 0;
        while let Some(slice) = slices.next() {
            if applied > 0 {
                tokio::task::yield_now().await;
            }
            live.apply_group(first + applied as u64, slice);
            applied += slice.len();
            replies.answer_applied(applied);
        }
    }
    if !*compacting
        && let Some(limit) = live.options.compact_bytes
        && appender.len() >= limit
    {
        *compacting = true;
        let live = Arc::clone(&live);
        tokio::task::spawn_blocking(move || {
            let inline = live.writer.inline.get().expect("inline writer");
            let mut segment = inline.log.blocking_lock();
            compact_logged(&live, &mut segment.appender);
            segment.compacting = false;
        });
    }
}

/// The sync thread of `everysec` (a sync a second) and `no` (none): both sync once more when
/// `stop` closes.
fn run_syncs(live: &Live, stop: &Receiver<Job>) {
    let interval = match live.options.fsync {
        FsyncPolicy::EverySec => SYNC_INTERVAL,
        _ => Duration::MAX,
    };
    loop {
        let stopped = match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(_) | Err(RecvTimeoutError::Disconnected) => true,
        };
        sync_inline(live);
        if stopped {
            break;
        }
    }
}

/// Syncs what the inline writer appended, through a second handle on the segment.
fn sync_inline(live: &Live) {
    let inline = live.writer.inline.get().expect("inline writer");
    let handle = {
        let mut segment = inline.log.blocking_lock();
        if !segment.unsynced {
            return;
        }
        segment.unsynced = false;
        segment.appender.sync_handle()
    };
    let started = Instant::now();
    match handle.and_then(|file| file.sync_data()) {
        Ok(()) => live.stats.record_fsync(started.elapsed()),
        Err(error) => {
            live.stats.count_write_error();
            let mut segment = inline.log.blocking_lock();
            segment.appender.refuse_appends();
            tracing::error!(%error, path = %segment.appender.path().display(), "fsync of the event log failed; writes stop until a restart");
        }
    }
}

/// The writer thread of `always`.
fn run(live: &Live, mut appender: Appender, inbox: &Receiver<Job>) {
    let mut bytes = Vec::new();
    let mut jobs = Vec::new();
    let mut unsynced = false;
    while let Ok(first) = inbox.recv() {
        jobs.push(first);
        while jobs.len() < MAX_GROUP_JOBS {
            match inbox.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        write_group(live, &mut appender, &mut jobs, &mut bytes, &mut unsynced);
        if let Some(limit) = live.options.compact_bytes
            && appender.len() >= limit
        {
            compact_logged(live, &mut appender);
        }
    }
}

/// Compacts inside the server (`--compact-bytes`), logging the outcome.
fn compact_logged(live: &Live, appender: &mut Appender) {
    match super::compact::compact_serving(live, appender) {
        Ok(report) => tracing::info!(
            last_sequence = report.last_sequence,
            customers = report.customers,
            "compacted the event log into a new store (--compact-bytes)"
        ),
        Err(error) => {
            tracing::error!(%error, "automatic compaction failed; the log is kept")
        }
    }
}

/// Appends `jobs` as one group and, under `always`, syncs it; returns the sequence of its
/// first event, or `None` when the log refused it (every job then answered 503).
fn append_group(
    live: &Live,
    appender: &mut Appender,
    jobs: &mut Vec<Job>,
    bytes: &mut Vec<u8>,
    unsynced: &mut bool,
) -> Option<u64> {
    if jobs.is_empty() {
        return None;
    }
    bytes.clear();
    let first = live.last_sequence() + 1;
    let mut sequence = first;
    for job in jobs.iter() {
        for event in &job.events {
            encode_record(sequence, event, bytes);
            sequence += 1;
        }
    }
    let fail = |jobs: &mut Vec<Job>, why: String| {
        live.stats.count_write_error();
        tracing::error!(why, "events refused: the log could not be written");
        for job in jobs.drain(..) {
            let _ = job.reply.send(Err(WriteError::Unavailable(why.clone())));
        }
        None
    };
    if let Err(error) = appender.append(bytes) {
        return fail(jobs, error.to_string());
    }
    live.stats.add_log_bytes(bytes.len() as u64);
    if live.options.fsync == FsyncPolicy::Always {
        let started = Instant::now();
        if let Err(error) = appender.sync() {
            return fail(jobs, format!("fsync: {error}"));
        }
        live.stats.record_fsync(started.elapsed());
    } else {
        *unsynced = true;
    }
    Some(first)
}

/// The answers a logged group owes: each job's reply with the end of its events in the group,
/// sent once they are all applied.
struct Replies {
    /// The group's first sequence.
    first: u64,
    waiting: VecDeque<(usize, Reply)>,
}

impl Replies {
    /// `jobs`, logged from event `first` on, split into their events (in log order) and
    /// their replies.
    fn split(first: u64, jobs: &mut Vec<Job>) -> (Vec<Vec<CustomerEvent>>, Replies) {
        let mut events = Vec::with_capacity(jobs.len());
        let mut waiting = VecDeque::with_capacity(jobs.len());
        let mut end = 0;
        for job in jobs.drain(..) {
            end += job.events.len();
            events.push(job.events);
            waiting.push_back((end, job.reply));
        }
        (events, Replies { first, waiting })
    }

    /// Answers every job whose events are among the group's first `applied`.
    fn answer_applied(&mut self, applied: usize) {
        while let Some(&(end, _)) = self.waiting.front()
            && end <= applied
        {
            let (_, reply) = self.waiting.pop_front().expect("front exists");
            let _ = reply.send(Ok(self.first + end as u64 - 1));
        }
    }
}

/// Appends, syncs (`always`) and applies `jobs` as one group, answering each (the writer
/// thread of `always`, which has no reactor to yield to).
fn write_group(
    live: &Live,
    appender: &mut Appender,
    jobs: &mut Vec<Job>,
    bytes: &mut Vec<u8>,
    unsynced: &mut bool,
) {
    let Some(first) = append_group(live, appender, jobs, bytes, unsynced) else {
        return;
    };
    let (events, mut replies) = Replies::split(first, jobs);
    let mut slices = Slices::of(&events);
    let mut applied = 0;
    while let Some(slice) = slices.next() {
        live.apply_group(first + applied as u64, slice);
        applied += slice.len();
    }
    replies.answer_applied(applied);
}

/// A logged group's events in log order, handed out [`APPLY_SLICE`] at a time through one
/// small buffer: the group is never listed whole (thousands of batches would take a fresh
/// allocation of megabytes each time, whose pages the kernel zeroes: 3% of a batch run's
/// cycles in `perf`).
struct Slices<'a> {
    pending: std::iter::Flatten<std::slice::Iter<'a, Vec<CustomerEvent>>>,
    slice: Vec<&'a CustomerEvent>,
}

impl<'a> Slices<'a> {
    fn of(events: &'a [Vec<CustomerEvent>]) -> Slices<'a> {
        Slices {
            pending: events.iter().flatten(),
            slice: Vec::with_capacity(APPLY_SLICE),
        }
    }

    /// The next slice, `None` after the last.
    fn next(&mut self) -> Option<&[&'a CustomerEvent]> {
        self.slice.clear();
        self.slice.extend(self.pending.by_ref().take(APPLY_SLICE));
        (!self.slice.is_empty()).then_some(&self.slice[..])
    }
}
