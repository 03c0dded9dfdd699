//! The figures: per-connection tallies (HDR histograms of latency in microseconds, counts,
//! errors by kind), merged into one [`Report`] printed as text and, with `--json`, as one JSON
//! object. Latency is service time in a closed loop (no coordinated-omission correction).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Longest latency told apart; longer ones are recorded as this (60 s, in microseconds).
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Significant figures kept: a recorded value is within 0.1% of the true one.
const SIGNIFICANT_FIGURES: u8 = 3;

/// An empty latency histogram in microseconds, 1 µs to 60 s at 3 significant figures.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, SIGNIFICANT_FIGURES)
        .expect("1 <= 60e6 and 3 significant figures are valid bounds")
}

/// Which latency histogram a measured lookup goes to in the mixed scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Not a mixed run: no split.
    Untracked,
    /// The lookup overlapped a running selection.
    DuringSelection,
    /// No selection ran at any time during the lookup.
    OutsideSelection,
}

/// What one connection measured; tallies merge into a [`Report`].
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of every measured answer (any status), µs.
    pub latency: Histogram<u64>,
    /// Mixed runs: latency of lookups that overlapped a selection, and of the others.
    pub by_overlap: Option<(Histogram<u64>, Histogram<u64>)>,
    /// Measured requests, answered or failed.
    pub requests: u64,
    /// Customer ids asked for by measured requests that were answered correctly.
    pub ids: u64,
    /// Failed measured requests by kind.
    pub errors: BTreeMap<String, u64>,
    /// When this connection's last measured request ended.
    pub last_done: Option<Instant>,
}

impl Tally {
    /// An empty tally; `split_by_overlap` for the mixed scenario.
    pub fn new(split_by_overlap: bool) -> Tally {
        Tally {
            latency: latency_histogram(),
            by_overlap: split_by_overlap.then(|| (latency_histogram(), latency_histogram())),
            requests: 0,
            ids: 0,
            errors: BTreeMap::new(),
            last_done: None,
        }
    }

    /// Records an answered request: its latency, and its ids when `correct`.
    pub fn answered(&mut self, latency: Duration, ids: usize, overlap: Overlap) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(micros);
        if let Some((during, outside)) = &mut self.by_overlap {
            match overlap {
                Overlap::DuringSelection => during.saturating_record(micros),
                Overlap::OutsideSelection => outside.saturating_record(micros),
                Overlap::Untracked => {}
            }
        }
        self.ids += ids as u64;
    }

    /// Counts a failure of kind `kind`.
    pub fn failed(&mut self, kind: String) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &Tally) {
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds add");
        if let (Some((during, outside)), Some((other_during, other_outside))) =
            (&mut self.by_overlap, &other.by_overlap)
        {
            during.add(other_during).expect("same bounds");
            outside.add(other_outside).expect("same bounds");
        }
        self.requests += other.requests;
        self.ids += other.ids;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// Latency percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean, µs.
    pub mean: f64,
    /// Median, µs.
    pub p50: u64,
    /// 90th percentile, µs.
    pub p90: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// 99.9th percentile, µs.
    pub p999: u64,
    /// Largest value (to the histogram's precision), µs.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `histogram` (all zero when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        Percentiles {
            count: histogram.len(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "count": self.count, "mean_us": self.mean, "p50_us": self.p50, "p90_us": self.p90,
            "p99_us": self.p99, "p99_9_us": self.p999, "max_us": self.max,
        })
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.0} µs, n = {})",
            micros(self.p50),
            micros(self.p90),
            micros(self.p99),
            micros(self.p999),
            micros(self.max),
            self.mean,
            self.count
        )
    }
}

/// `value` µs as µs below 10 ms, ms above.
fn micros(value: u64) -> String {
    if value < 10_000 {
        format!("{value} µs")
    } else {
        format!("{:.1} ms", value as f64 / 1e3)
    }
}

/// One selection of the mixed scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionRun {
    /// When it started, seconds after the measurement began.
    pub started_s: f64,
    /// How long the answer took, ms.
    pub latency_ms: f64,
    /// `None` for a correct answer, otherwise the failure's kind.
    pub failure: Option<String>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario's name.
    pub scenario: &'static str,
    /// Lookup connections.
    pub connections: usize,
    /// The open loop's requests a second asked of the lookup connections (`None`: the closed
    /// loop).
    pub offered_rate: Option<f64>,
    /// Ids per lookup request.
    pub ids_per_request: usize,
    /// From the end of the warm-up to the last measured answer.
    pub elapsed: Duration,
    /// The merged lookup tallies.
    pub tally: Tally,
    /// The selections of a mixed run, in order.
    pub selections: Vec<SelectionRun>,
    /// The event stream of an events-mixed run: its requests, latency and events (as ids).
    pub stream: Option<Tally>,
}

impl Report {
    /// Measured requests per second.
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.tally.requests, self.elapsed)
    }

    /// Correctly answered ids per second.
    pub fn ids_per_second(&self) -> f64 {
        per_second(self.tally.ids, self.elapsed)
    }

    /// Failed requests of every kind.
    pub fn errors(&self) -> u64 {
        self.tally.errors.values().sum::<u64>()
            + self
                .selections
                .iter()
                .filter(|run| run.failure.is_some())
                .count() as u64
            + self
                .stream
                .as_ref()
                .map_or(0, |stream| stream.errors.values().sum())
    }

    /// Events a second the stream of an events-mixed run had accepted.
    pub fn stream_events_per_second(&self) -> f64 {
        self.stream
            .as_ref()
            .map_or(0.0, |stream| per_second(stream.ids, self.elapsed))
    }

    /// The report as one JSON object (the `--json` line).
    pub fn to_json(&self) -> Value {
        let mut report = json!({
            "scenario": self.scenario,
            "connections": self.connections,
            "offered_rate": self.offered_rate,
            "ids_per_request": self.ids_per_request,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.tally.requests,
            "requests_per_s": self.requests_per_second(),
            "ids_per_s": self.ids_per_second(),
            "latency": Percentiles::of(&self.tally.latency).to_json(),
            "errors": self.errors(),
            "errors_by_kind": self.tally.errors,
        });
        if let Some((during, outside)) = &self.tally.by_overlap {
            report["latency_during_selection"] = Percentiles::of(during).to_json();
            report["latency_outside_selection"] = Percentiles::of(outside).to_json();
            report["selections"] = self
                .selections
                .iter()
                .map(|run| {
                    json!({"started_s": run.started_s, "latency_ms": run.latency_ms,
                           "failure": run.failure})
                })
                .collect();
        }
        if let Some(stream) = &self.stream {
            report["stream"] = json!({
                "requests": stream.requests,
                "events": stream.ids,
                "events_per_s": self.stream_events_per_second(),
                "latency": Percentiles::of(&stream.latency).to_json(),
                "errors_by_kind": stream.errors,
            });
        }
        report
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {}: {} connections{}, {} requests in {:.2} s",
            self.scenario,
            self.connections,
            self.offered_rate
                .map(|rate| format!(" (open loop, {rate:.0} req/s asked)"))
                .unwrap_or_default(),
            self.tally.requests,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "throughput  {:.0} req/s", self.requests_per_second())?;
        if self.ids_per_request > 1 {
            writeln!(
                f,
                "ids         {:.0} ids/s ({} per request)",
                self.ids_per_second(),
                self.ids_per_request
            )?;
        }
        writeln!(f, "latency     {}", Percentiles::of(&self.tally.latency))?;
        if let Some((during, outside)) = &self.tally.by_overlap {
            writeln!(f, "  during a selection   {}", Percentiles::of(during))?;
            writeln!(f, "  outside selections   {}", Percentiles::of(outside))?;
            for run in &self.selections {
                writeln!(
                    f,
                    "selection at {:>6.2} s: {:.1} ms{}",
                    run.started_s,
                    run.latency_ms,
                    run.failure
                        .as_deref()
                        .map(|kind| format!(" FAILED: {kind}"))
                        .unwrap_or_default()
                )?;
            }
        }
        if let Some(stream) = &self.stream {
            writeln!(
                f,
                "event stream {:.0} events/s in {} requests, latency {}",
                self.stream_events_per_second(),
                stream.requests,
                Percentiles::of(&stream.latency)
            )?;
        }
        writeln!(f, "errors      {}", self.errors())?;
        let stream_errors = self.stream.iter().flat_map(|stream| &stream.errors);
        for (kind, count) in self.tally.errors.iter().chain(stream_errors) {
            writeln!(f, "  {count:>10}  {kind}")?;
        }
        Ok(())
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    match elapsed.as_secs_f64() {
        0.0 => 0.0,
        seconds => count as f64 / seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_precision(value: u64, expected: u64) -> bool {
        value.abs_diff(expected) as f64 <= expected as f64 * 1e-3 + 1.0
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut tally = Tally::new(false);
        for micros in 1..=10_000 {
            tally.answered(Duration::from_micros(micros), 1, Overlap::Untracked);
        }
        let p = Percentiles::of(&tally.latency);
        assert_eq!(p.count, 10_000);
        assert!(within_precision(p.p50, 5_000), "{p:?}");
        assert!(within_precision(p.p90, 9_000), "{p:?}");
        assert!(within_precision(p.p99, 9_900), "{p:?}");
        assert!(within_precision(p.p999, 9_990), "{p:?}");
        assert!(within_precision(p.max, 10_000), "{p:?}");
        assert!((p.mean - 5_000.5).abs() < 10.0, "{p:?}");
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_recorded_not_lost() {
        let mut tally = Tally::new(false);
        tally.answered(Duration::from_nanos(300), 1, Overlap::Untracked);
        tally.answered(Duration::from_secs(3_600), 1, Overlap::Untracked);
        let p = Percentiles::of(&tally.latency);
        assert_eq!(p.count, 2);
        assert!(within_precision(p.max, MAX_LATENCY_MICROS), "{p:?}");
    }

    #[test]
    fn merged_tallies_add_counts_errors_and_overlap_lanes() {
        let mut total = Tally::new(true);
        let mut one = Tally::new(true);
        one.requests = 3;
        one.answered(Duration::from_micros(100), 10, Overlap::DuringSelection);
        one.answered(Duration::from_micros(200), 10, Overlap::OutsideSelection);
        one.failed("status 500 (expected 200)".into());
        total.merge(&one);
        total.merge(&one);
        assert_eq!((total.requests, total.ids), (6, 40));
        assert_eq!(total.errors["status 500 (expected 200)"], 2);
        let (during, outside) = total.by_overlap.as_ref().unwrap();
        assert_eq!((during.len(), outside.len()), (2, 2));
    }

    #[test]
    fn report_prints_rates_percentiles_and_errors() {
        let mut tally = Tally::new(false);
        tally.requests = 2_000;
        for _ in 0..2_000 {
            tally.answered(Duration::from_micros(250), 100, Overlap::Untracked);
        }
        tally.failed("transport: connection closed".into());
        let report = Report {
            scenario: "batch-json",
            connections: 4,
            offered_rate: None,
            ids_per_request: 100,
            elapsed: Duration::from_secs(2),
            tally,
            selections: Vec::new(),
            stream: None,
        };
        assert_eq!(report.requests_per_second(), 1_000.0);
        assert_eq!(report.ids_per_second(), 100_000.0);
        let text = report.to_string();
        for needle in [
            "1000 req/s",
            "100000 ids/s",
            "p99.9 250 µs",
            "errors      1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        let json = report.to_json();
        assert_eq!(json["latency"]["p99_us"], 250);
        assert_eq!(json["errors_by_kind"]["transport: connection closed"], 1);
    }
}
