//! The live counters behind `GET /metrics`: events accepted, log bytes, fsync latency,
//! compactions and refused writes. Relaxed atomic adds; rendered only when scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the fsync latency buckets, in seconds.
const FSYNC_BOUNDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The counters.
#[derive(Debug, Default)]
pub struct LiveStats {
    events: AtomicU64,
    log_bytes: AtomicU64,
    write_errors: AtomicU64,
    compactions: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_BOUNDS.len() + 1],
    fsync_micros: AtomicU64,
}

impl LiveStats {
    /// `count` more events accepted or replayed.
    pub fn count_events(&self, count: u64) {
        self.events.fetch_add(count, Ordering::Relaxed);
    }

    /// `bytes` appended to (or found in) the log.
    pub fn add_log_bytes(&self, bytes: u64) {
        self.log_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The log was compacted and now holds `bytes`.
    pub fn record_compaction(&self, bytes: u64) {
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.log_bytes.store(bytes, Ordering::Relaxed);
    }

    /// A write or fsync of the log failed.
    pub fn count_write_error(&self) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One fsync took `elapsed`.
    pub fn record_fsync(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = FSYNC_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(FSYNC_BOUNDS.len());
        self.fsync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.fsync_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Events applied so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut counter = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        counter(
            "crv_events_total",
            "counter",
            "Events applied (accepted, and replayed from the log at start).",
            self.events(),
        );
        counter(
            "crv_event_log_bytes",
            "gauge",
            "Bytes in the event log since the last compaction.",
            self.log_bytes.load(Ordering::Relaxed),
        );
        counter(
            "crv_event_log_write_errors_total",
            "counter",
            "Writes or fsyncs of the event log that failed (events answered 503).",
            self.write_errors.load(Ordering::Relaxed),
        );
        counter(
            "crv_compactions_total",
            "counter",
            "Compactions of the event log into a new store.",
            self.compactions.load(Ordering::Relaxed),
        );
        let name = "crv_event_log_fsync_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time one fsync of the event log took.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (index, bucket) in self.fsync_buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match FSYNC_BOUNDS.get(index) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.fsync_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}
