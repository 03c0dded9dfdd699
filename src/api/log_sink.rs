//! The server's log sink: lines from any thread gathered in memory, written to the output (the
//! server's stderr) by a thread of its own in batches.
//!
//! Method. A logger appends its line to a shared buffer under a mutex and goes on; the writer
//! thread wakes every [`FLUSH_INTERVAL`], or as soon as [`FLUSH_BYTES`] are waiting, swaps the
//! buffer for an empty one and writes it with one `write`. Under load the access log is one
//! line per request: `tracing-appender`'s non-blocking writer, used before, parked its thread
//! whenever its queue was empty, so a busy server woke it (a futex) and it wrote (a syscall)
//! every line or few, on the core the server shares with it (`strace` of single-event POSTs:
//! ~0.9 writes to stderr per request). Here a line costs a lock and a copy; the output gets
//! one write per interval.
//!
//! Guarantees: lines are written whole and in the order their `write`s took the lock; none is
//! dropped: when [`MAX_PENDING_BYTES`] wait (the output is slower than the loggers), loggers
//! wait for room. A line is written at most [`FLUSH_INTERVAL`] after it was logged, and
//! everything logged is written when the [`FlushOnDrop`] guard is dropped. A failed write of
//! the output drops that batch (as stderr's own writes would fail) and goes on.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a logged line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Waiting bytes that wake the writer before the interval is over.
pub const FLUSH_BYTES: usize = 256 << 10;
/// Waiting bytes past which loggers wait for the writer (about 64k access lines).
pub const MAX_PENDING_BYTES: usize = 16 << 20;

/// Where log lines go: cheap to clone, usable from any thread (a `tracing` writer and the
/// access log's).
#[derive(Debug, Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: enough bytes wait, or the sink closes.
    writer_wake: Condvar,
    /// Wakes loggers waiting for room.
    room: Condvar,
}

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// The writer was woken and has not yet taken the pending bytes.
    woken: bool,
    closed: bool,
}

/// Writes what is left and stops the writer thread when dropped.
#[derive(Debug)]
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogSink {
    /// A sink writing to `out` from a thread named `name`.
    pub fn spawn(
        name: &str,
        out: impl Write + Send + 'static,
    ) -> std::io::Result<(LogSink, FlushOnDrop)> {
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_batches(&writer, out))?;
        Ok((
            LogSink {
                shared: Arc::clone(&shared),
            },
            FlushOnDrop {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Appends `bytes` (whole lines) to what waits to be written; waits while
    /// [`MAX_PENDING_BYTES`] wait already.
    pub fn write_line(&self, bytes: &[u8]) {
        let mut state = self.shared.lock();
        while state.pending.len() >= MAX_PENDING_BYTES && !state.closed {
            state = self
                .shared
                .room
                .wait(state)
                .expect("the log sink's lock is never poisoned");
        }
        state.pending.extend_from_slice(bytes);
        if state.pending.len() >= FLUSH_BYTES && !state.woken {
            state.woken = true;
            self.shared.writer_wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be in `Vec::extend` (allocation failure, which
        // aborts) or in a swap: the state stays whole, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer thread: a batch every [`FLUSH_INTERVAL`] or when woken, until closed and empty.
fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            if !state.woken && !state.closed {
                state = shared
                    .writer_wake
                    .wait_timeout(state, FLUSH_INTERVAL)
                    .map(|(state, _)| state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
            state.woken = false;
            std::mem::swap(&mut state.pending, &mut batch);
            shared.room.notify_all();
            state.closed
        };
        if !batch.is_empty() {
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closed && shared.lock().pending.is_empty() {
            return;
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.writer_wake.notify_one();
            self.shared.room.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for LogSink {
    /// One call is one line (`tracing` writes each formatted event at once).
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_line(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what is written, slowly when asked to.
    #[derive(Clone, Default)]
    struct Kept {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            *self.writes.lock().unwrap() += 1;
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_is_written_whole_and_in_order_in_few_writes() {
        let out = Kept::default();
        let (sink, flush) = LogSink::spawn("test-log", out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for line in 0..20_000 {
                        sink.write_line(format!("thread {thread} line {line}\n").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(flush);
        let text = String::from_utf8(out.bytes.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let (thread, number): (usize, usize) =
                (words[1].parse().unwrap(), words[3].parse().unwrap());
            assert_eq!(number, next[thread], "{line}");
            next[thread] += 1;
        }
        assert_eq!(next, [20_000; 4]);
        let writes = *out.writes.lock().unwrap();
        assert!(writes < 2_000, "{writes} writes for 80,000 lines");
    }

    #[test]
    fn a_slow_output_holds_loggers_back_and_loses_nothing() {
        let out = Kept {
            delay: Duration::from_millis(5),
            ..Kept::default()
        };
        let (sink, flush) = LogSink::spawn("test-log", out.clone()).unwrap();
        let line = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            sink.write_line(&line);
            assert!(sink.shared.lock().pending.len() <= MAX_PENDING_BYTES + line.len());
        }
        drop(flush);
        assert_eq!(out.bytes.lock().unwrap().len(), 40 << 20);
    }

    #[test]
    fn a_lone_line_is_written_within_the_interval() {
        let out = Kept::default();
        let (mut sink, _flush) = LogSink::spawn("test-log", out.clone()).unwrap();
        writeln!(sink, "listening").unwrap();
        let started = std::time::Instant::now();
        while out.bytes.lock().unwrap().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&out.bytes.lock().unwrap()[..], b"listening\n");
    }
}
