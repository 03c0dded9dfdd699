//! The log writer. Requests hand it their checked events; it numbers them, appends whatever
//! arrived meanwhile as one group in one write, makes them durable per the fsync policy,
//! applies them to the overlay in log order and answers each request. A failed write is cut
//! back out of the file and answered 503; a failed fsync stops all later writes (the kernel may
//! have dropped the pages) until a restart re-reads the log.
//!
//! Groups are written on the reactor itself, as Redis does, under every policy: the first
//! request of a group spawns a flush task that yields once (letting every request already
//! readable add its events), then appends them all in one write and applies them
//! `APPLY_SLICE` events at a time, yielding to the reactor between slices and answering each
//! request once its own events are applied: on one core a group of batches is milliseconds of
//! work, and the lookups that arrive meanwhile are answered between two slices rather than
//! after the group. No thread hand-off per request. Groups are applied in log order: the
//! group being applied holds `applying`, which the next one takes while it still holds the
//! segment. Under `everysec` and `no` a group keeps the segment until it is applied, so the
//! next one takes every request that arrived meanwhile (fewer, larger groups).
//!
//! A background thread makes the log durable through its own handle on the segment, without
//! holding the appender:
//! - `--fsync always` (group commit, pipelined): each group, once appended, asks the sync
//!   thread for an fsync and waits for it before it is applied; the sync thread takes every
//!   request waiting and syncs once for all of them. Meanwhile the reactor goes on reading
//!   requests and appends the next group, so the disk is kept busy by one sync after another
//!   and the core by everything else (the reactor never blocks on a sync, and no request
//!   waits for a sync that began before its events were written).
//! - `everysec`: once a second; `no`: at close.
//!
//! Compaction runs on a blocking thread holding the appender and, once the groups already
//! appended are applied, the right to apply (so every logged event is in the overlay it
//! folds): writes wait (asynchronously) while lookups go on.

use std::collections::VecDeque;
use std::fs::File;
use std::mem;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::event::CustomerEvent;
use super::log::{Appender, encode_record};
use super::stats::LiveStats;
use super::{FsyncPolicy, Live};
use crate::error::{Error, Result};

/// Events applied at a time: one chunk of the overlay's read-ahead; the reactor yields
/// between two slices (a few hundred microseconds at most).
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

/// `always`: a group's request for an fsync of the segment `file` once it holds events up to
/// sequence `through`.
#[derive(Debug)]
struct SyncRequest {
    file: Arc<File>,
    through: u64,
}

/// `always`: how far the log is durable, as the sync thread publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Durable {
    /// Every event up to this sequence is on disk.
    Through(u64),
    /// An fsync failed: nothing later is durable until a restart re-reads the log.
    Failed(String),
}

impl Durable {
    /// Whether a group ending at `last` knows its outcome.
    fn settles(&self, last: u64) -> bool {
        match self {
            Durable::Through(through) => *through >= last,
            Durable::Failed(_) => true,
        }
    }

    /// What a group is answered when an fsync failed (503), `None` while the log is whole.
    fn refusal(&self) -> Option<WriteError> {
        match self {
            Durable::Through(_) => None,
            Durable::Failed(why) => Some(WriteError::Unavailable(why.clone())),
        }
    }
}

/// The writer's groups and its sync thread.
#[derive(Debug, Default)]
pub struct WriterHandle {
    /// The sync thread's inbox: `always`: a request per group; `everysec`/`no`: nothing is
    /// sent, closing it stops the thread.
    syncs: RwLock<Option<Sender<SyncRequest>>>,
    /// The sync thread.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set when the writer starts: the groups.
    inline: OnceLock<Inline>,
}

/// Jobs waiting for the next flush, the open segment and the order of application.
#[derive(Debug)]
struct Inline {
    queue: Mutex<Queue>,
    log: tokio::sync::Mutex<Segment>,
    /// Held by the group being applied, taken by the next one while it still holds the
    /// segment: groups are applied in log order.
    applying: tokio::sync::Mutex<()>,
    /// `always`: how far the log is durable.
    durable: Option<watch::Receiver<Durable>>,
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
    /// The sequence of the next event appended (ahead of the overlay's last while a group
    /// waits for its fsync or its turn to be applied).
    next: u64,
    bytes: Vec<u8>,
    /// Appended since the last sync (read by the `everysec` syncer; under `always` each
    /// group asks the sync thread itself).
    unsynced: bool,
    /// A compaction is queued or running.
    compacting: bool,
}

impl WriterHandle {
    /// Closes the writer and waits for its sync thread to finish, with a last sync; then cuts
    /// the zeros written ahead of the log's last record, unless a group still holds the
    /// segment (a reader takes them for the end anyway).
    pub fn close(&self) {
        if let Some(inline) = self.inline.get() {
            inline.closed.store(true, Ordering::SeqCst);
        }
        self.syncs
            .write()
            .expect("the writer handle is never poisoned")
            .take();
        if let Some(thread) = self.thread.lock().expect("never poisoned").take() {
            let _ = thread.join();
        }
        if let Some(inline) = self.inline.get()
            && let Ok(mut segment) = inline.log.try_lock()
            && let Err(error) = segment.appender.trim()
        {
            tracing::warn!(%error, path = %segment.appender.path().display(), "could not cut the zeros after the event log's last record");
        }
    }
}

/// Sends `events` to `live`'s writer and waits for their last sequence number.
pub(super) async fn submit(
    live: &Arc<Live>,
    events: Vec<CustomerEvent>,
) -> std::result::Result<u64, WriteError> {
    let inline = live.writer.inline.get().ok_or(WriteError::Closed)?;
    if inline.closed.load(Ordering::SeqCst) {
        return Err(WriteError::Closed);
    }
    let (reply, answer) = oneshot::channel();
    let lead = {
        let mut queue = inline.queue.lock().expect("never poisoned");
        queue.jobs.push(Job { events, reply });
        !mem::replace(&mut queue.flush_pending, true)
    };
    if lead {
        tokio::spawn(flush(Arc::clone(live)));
    }
    answer.await.map_err(|_| WriteError::Closed)?
}

/// Starts `live`'s writer over `appender`, the log's next event being the one after the
/// overlay's last.
pub(super) fn start(live: &Arc<Live>, appender: Appender) -> Result<()> {
    let (syncs, inbox) = mpsc::channel();
    let owner = Arc::clone(live);
    let (durable, run): (_, Box<dyn FnOnce() + Send>) = if live.options.fsync == FsyncPolicy::Always
    {
        let (durable, published) = watch::channel(Durable::Through(live.last_sequence()));
        let run = move || run_group_syncs(&owner.stats, &owner.options.wal, &inbox, &durable);
        (Some(published), Box::new(run))
    } else {
        (None, Box::new(move || run_syncs(&owner, &inbox)))
    };
    let inline = Inline {
        queue: Mutex::default(),
        log: tokio::sync::Mutex::new(Segment {
            appender,
            next: live.last_sequence() + 1,
            bytes: Vec::new(),
            unsynced: false,
            compacting: false,
        }),
        applying: tokio::sync::Mutex::new(()),
        durable,
        closed: AtomicBool::new(false),
    };
    live.writer
        .inline
        .set(inline)
        .expect("the writer starts once");
    let thread = std::thread::Builder::new()
        .name("crv-wal-sync".into())
        .spawn(run)
        .map_err(|e| Error::io("<log sync thread>", e))?;
    *live.writer.syncs.write().expect("never poisoned") = Some(syncs);
    *live.writer.thread.lock().expect("never poisoned") = Some(thread);
    Ok(())
}

/// The flush task: after one yield, appends every job waiting as one group, waits for its
/// fsync under `always` (the next group is appended meanwhile), then applies it a slice at a
/// time after the groups before it. Spawned (not run by the request), so that a request
/// dropped by its client never strands the others' jobs.
async fn flush(live: Arc<Live>) {
    tokio::task::yield_now().await;
    let inline = live.writer.inline.get().expect("flush runs once started");
    let mut segment = inline.log.lock().await;
    let mut jobs = {
        let mut queue = inline.queue.lock().expect("never poisoned");
        queue.flush_pending = false;
        mem::take(&mut queue.jobs)
    };
    if let Some(why) = inline.durable.as_ref().and_then(|d| d.borrow().refusal()) {
        refuse(&live, &mut jobs, why);
        return;
    }
    let Some(first) = append_group(&live, &mut segment, &mut jobs) else {
        return;
    };
    let last = segment.next - 1;
    let durable = inline.durable.clone();
    if durable.is_some()
        && let Some(syncs) = live.writer.syncs.read().expect("never poisoned").as_ref()
    {
        let request = SyncRequest {
            file: segment.appender.sync_handle(),
            through: last,
        };
        // A closed inbox (the server stopping) drops the sync thread's side of `durable`,
        // which refuses the group below.
        let _ = syncs.send(request);
    }
    let compact = !segment.compacting
        && live
            .options
            .compact_bytes
            .is_some_and(|limit| segment.appender.len() >= limit);
    segment.compacting |= compact;
    let applying = inline.applying.lock().await;
    // Under `always` the next group is appended while this one waits for its fsync; under
    // `everysec` and `no` it waits for this one to be applied, and so takes every request
    // that arrived meanwhile (fewer, larger groups).
    let segment = durable.is_none().then_some(segment);
    if compact {
        let live = Arc::clone(&live);
        tokio::task::spawn_blocking(move || compact_when_applied(&live));
    }
    let (events, mut replies) = Replies::split(first, &mut jobs);
    if let Some(mut durable) = durable {
        let refused = match durable.wait_for(|durable| durable.settles(last)).await {
            Ok(durable) => durable.refusal(),
            Err(_) => Some(WriteError::Closed),
        };
        if let Some(why) = refused {
            replies.refuse(&why);
            return;
        }
    }
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
    drop(applying);
    drop(segment);
}

/// Compaction inside the server (`--compact-bytes`), on a blocking thread: it holds the
/// segment (writes wait), then the right to apply, which it gets once every group appended
/// before it is applied (so the overlay it folds holds every logged event).
fn compact_when_applied(live: &Live) {
    let inline = live.writer.inline.get().expect("the writer is started");
    let mut segment = inline.log.blocking_lock();
    let _applied = inline.applying.blocking_lock();
    match super::compact::compact_serving(live, &mut segment.appender) {
        Ok(report) => {
            segment.next = report.last_sequence + 1;
            tracing::info!(
                last_sequence = report.last_sequence,
                customers = report.customers,
                "compacted the event log into a new store (--compact-bytes)"
            )
        }
        Err(error) => {
            tracing::error!(%error, "automatic compaction failed; the log is kept")
        }
    }
    segment.compacting = false;
}

/// The sync thread of `always`: takes every request waiting and syncs once for them all,
/// then publishes how far the log is durable. A failed fsync is final: every group after it
/// is refused. `stats` counts the syncs; `wal` names the log in the error.
fn run_group_syncs(
    stats: &LiveStats,
    wal: &Path,
    requests: &Receiver<SyncRequest>,
    durable: &watch::Sender<Durable>,
) {
    let sync_through = |request: &SyncRequest| {
        if matches!(*durable.borrow(), Durable::Failed(_)) {
            return;
        }
        let started = Instant::now();
        match request.file.sync_data() {
            Ok(()) => {
                stats.record_fsync(started.elapsed());
                durable.send_replace(Durable::Through(request.through));
            }
            Err(error) => {
                stats.count_write_error();
                tracing::error!(%error, wal = %wal.display(), "fsync of the event log failed; writes stop until a restart");
                durable.send_replace(Durable::Failed(format!("fsync: {error}")));
            }
        }
    };
    while let Ok(mut request) = requests.recv() {
        while let Ok(next) = requests.try_recv() {
            if !Arc::ptr_eq(&next.file, &request.file) {
                sync_through(&request);
            }
            request = next;
        }
        sync_through(&request);
    }
}

/// The sync thread of `everysec` (a sync a second) and `no` (none): both sync once more when
/// `stop` closes.
fn run_syncs(live: &Live, stop: &Receiver<SyncRequest>) {
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

/// Syncs what was appended since the last sync, through the segment's second handle.
fn sync_inline(live: &Live) {
    let inline = live.writer.inline.get().expect("the writer is started");
    let file = {
        let mut segment = inline.log.blocking_lock();
        if !segment.unsynced {
            return;
        }
        segment.unsynced = false;
        segment.appender.sync_handle()
    };
    let started = Instant::now();
    match file.sync_data() {
        Ok(()) => live.stats.record_fsync(started.elapsed()),
        Err(error) => {
            live.stats.count_write_error();
            let mut segment = inline.log.blocking_lock();
            segment.appender.refuse_appends();
            tracing::error!(%error, path = %segment.appender.path().display(), "fsync of the event log failed; writes stop until a restart");
        }
    }
}

/// Answers every job `why`, counting a write error when the log failed.
fn refuse(live: &Live, jobs: &mut Vec<Job>, why: WriteError) {
    if let WriteError::Unavailable(reason) = &why {
        live.stats.count_write_error();
        tracing::error!(reason, "events refused: the log could not be written");
    }
    for job in jobs.drain(..) {
        let _ = job.reply.send(Err(why.clone()));
    }
}

/// Appends `jobs` as one group from the segment's next sequence on; returns the sequence of
/// its first event, or `None` when there was none or the log refused them (every job then
/// answered 503).
fn append_group(live: &Live, segment: &mut Segment, jobs: &mut Vec<Job>) -> Option<u64> {
    if jobs.is_empty() {
        return None;
    }
    let bytes = &mut segment.bytes;
    bytes.clear();
    let first = segment.next;
    let mut sequence = first;
    for job in jobs.iter() {
        for event in &job.events {
            encode_record(sequence, event, bytes);
            sequence += 1;
        }
    }
    if let Err(error) = segment.appender.append(bytes) {
        refuse(live, jobs, WriteError::Unavailable(error.to_string()));
        return None;
    }
    live.stats.add_log_bytes(bytes.len() as u64);
    segment.next = sequence;
    segment.unsynced = true;
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

    /// Answers every job still waiting `why` (its group was logged but not made durable).
    fn refuse(&mut self, why: &WriteError) {
        for (_, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(why.clone()));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(file: &Arc<File>, through: u64) -> SyncRequest {
        SyncRequest {
            file: Arc::clone(file),
            through,
        }
    }

    /// The sync thread publishes the last request it synced, syncs once for the requests
    /// waiting, and after a failed fsync (a pipe cannot be synced: EINVAL) publishes the
    /// failure and never again a sequence, even for a file that could be synced.
    #[test]
    fn syncs_publish_how_far_the_log_is_durable_and_a_failure_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Arc::new(File::create(dir.path().join("segment")).unwrap());
        let (_, pipe) = std::io::pipe().unwrap();
        let pipe = Arc::new(File::from(std::os::fd::OwnedFd::from(pipe)));
        let stats = LiveStats::default();
        let (durable, published) = watch::channel(Durable::Through(0));

        let (requests, inbox) = mpsc::channel();
        for through in [3, 5, 9] {
            requests.send(request(&segment, through)).unwrap();
        }
        drop(requests);
        run_group_syncs(&stats, dir.path(), &inbox, &durable);
        assert_eq!(*published.borrow(), Durable::Through(9));
        assert!(published.borrow().settles(9) && !published.borrow().settles(10));
        let mut metrics = String::new();
        stats.render(&mut metrics);
        assert!(
            metrics.contains("crv_event_log_fsync_duration_seconds_count 1\n"),
            "three requests waiting, one fsync: {metrics}"
        );

        let (requests, inbox) = mpsc::channel();
        requests.send(request(&segment, 12)).unwrap();
        requests.send(request(&pipe, 14)).unwrap();
        requests.send(request(&segment, 20)).unwrap();
        drop(requests);
        run_group_syncs(&stats, dir.path(), &inbox, &durable);
        let Durable::Failed(why) = published.borrow().clone() else {
            panic!("a failed fsync is published: {:?}", *published.borrow());
        };
        assert!(why.starts_with("fsync: "), "{why}");
        assert!(published.borrow().settles(u64::MAX));
        let mut metrics = String::new();
        stats.render(&mut metrics);
        assert!(
            metrics.contains("crv_event_log_write_errors_total 1\n"),
            "{metrics}"
        );
    }
}
