//! The log writer: one thread owns the open segment. Requests hand it their checked events
//! through a channel; it takes every job waiting (up to [`MAX_GROUP_JOBS`]), numbers the events,
//! appends them in one write, makes them durable per the fsync policy (one fsync for the whole
//! group under `always`: group commit), applies them to the overlay in log order and answers
//! each job. A failed write is cut back out of the file and answered 503; a failed fsync stops
//! all later writes (the kernel may have dropped the pages) until a restart re-reads the log.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::event::CustomerEvent;
use super::log::{Appender, encode_record};
use super::{FsyncPolicy, Live};
use crate::error::{Error, Result};

/// Most jobs written as one group.
pub const MAX_GROUP_JOBS: usize = 4096;
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

struct Job {
    events: Vec<CustomerEvent>,
    reply: oneshot::Sender<std::result::Result<u64, WriteError>>,
}

/// The writer thread's inbox and handle.
#[derive(Debug, Default)]
pub struct WriterHandle {
    sender: RwLock<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("events", &self.events.len())
            .finish()
    }
}

impl WriterHandle {
    /// Sends `events` to the writer and waits for their last sequence number.
    pub async fn submit(&self, events: Vec<CustomerEvent>) -> std::result::Result<u64, WriteError> {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self
                .sender
                .read()
                .expect("the writer handle is never poisoned");
            let sender = sender.as_ref().ok_or(WriteError::Closed)?;
            sender
                .send(Job { events, reply })
                .map_err(|_| WriteError::Closed)?;
        }
        answer.await.map_err(|_| WriteError::Closed)?
    }

    /// Closes the inbox and waits for the writer to finish what it holds.
    pub fn close(&self) {
        self.sender
            .write()
            .expect("the writer handle is never poisoned")
            .take();
        if let Some(thread) = self.thread.lock().expect("never poisoned").take() {
            let _ = thread.join();
        }
    }
}

/// Starts `live`'s writer thread over `appender`.
pub(super) fn start(live: &Arc<Live>, appender: Appender) -> Result<()> {
    let (sender, inbox) = mpsc::channel();
    let owner = Arc::clone(live);
    let thread = std::thread::Builder::new()
        .name("crv-wal".into())
        .spawn(move || run(&owner, appender, &inbox))
        .map_err(|e| Error::io("<log writer thread>", e))?;
    *live.writer.sender.write().expect("never poisoned") = Some(sender);
    *live.writer.thread.lock().expect("never poisoned") = Some(thread);
    Ok(())
}

fn run(live: &Live, mut appender: Appender, inbox: &Receiver<Job>) {
    let policy = live.options.fsync;
    let mut bytes = Vec::new();
    let mut jobs = Vec::new();
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    loop {
        let first = if policy == FsyncPolicy::EverySec && unsynced {
            match inbox.recv_timeout(SYNC_INTERVAL.saturating_sub(last_sync.elapsed())) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match inbox.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            }
        };
        if let Some(first) = first {
            jobs.push(first);
            while jobs.len() < MAX_GROUP_JOBS {
                match inbox.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            write_group(live, &mut appender, &mut jobs, &mut bytes, &mut unsynced);
        }
        if policy == FsyncPolicy::EverySec && unsynced && last_sync.elapsed() >= SYNC_INTERVAL {
            sync(live, &mut appender);
            unsynced = false;
            last_sync = Instant::now();
        }
        if let Some(limit) = live.options.compact_bytes
            && appender.len() >= limit
        {
            match super::compact::compact_serving(live, &mut appender) {
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
    }
    if unsynced {
        sync(live, &mut appender);
    }
}

fn sync(live: &Live, appender: &mut Appender) {
    let started = Instant::now();
    match appender.sync() {
        Ok(()) => live.stats.record_fsync(started.elapsed()),
        Err(error) => {
            live.stats.count_write_error();
            tracing::error!(%error, path = %appender.path().display(), "fsync of the event log failed; writes stop until a restart");
        }
    }
}

/// Appends, syncs and applies `jobs` as one group, answering each.
fn write_group(
    live: &Live,
    appender: &mut Appender,
    jobs: &mut Vec<Job>,
    bytes: &mut Vec<u8>,
    unsynced: &mut bool,
) {
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
    let mut sequence = first;
    for job in jobs.drain(..) {
        for event in &job.events {
            live.apply(sequence, event);
            sequence += 1;
        }
        let _ = job.reply.send(Ok(sequence - 1));
    }
}
