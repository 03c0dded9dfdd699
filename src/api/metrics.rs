//! Prometheus metrics (`GET /metrics`): request counts and latencies per route and status,
//! selection, re-scoring and simulation times, the store's size, start-up times and the
//! admission queue.
//! Recording sits on every request's path, so it is two relaxed atomic adds into fixed arrays
//! indexed by ([`Route`], status): no lock, no allocation, no hashing. Text is built only when
//! scraped.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::StatusCode;

use super::AppState;

/// The media type of the text exposition format.
pub const MEDIA_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// [`MEDIA_TYPE`] as the `Content-Type` of an answer.
pub const CONTENT_TYPE: hyper::header::HeaderValue =
    hyper::header::HeaderValue::from_static(MEDIA_TYPE);

/// An endpoint, named by its path template in the `route` label so that ids never become
/// labels; every path that matches no endpoint counts as [`Route::Unmatched`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`.
    Health,
    /// `/readyz`.
    Ready,
    /// `/metrics`.
    Metrics,
    /// `/v1/customers/{id}`.
    Customer,
    /// `/v1/customers/lookup`.
    Lookup,
    /// `/v1/tiers`.
    Tiers,
    /// `/v1/select`.
    Select,
    /// `/v1/simulate`.
    Simulate,
    /// `/v1/customers/{id}/events`.
    CustomerEvents,
    /// `/v1/events`.
    Events,
    /// `/v1/customers/{id}/profile`.
    Profile,
    /// `/v1/admin/retier`.
    Retier,
    /// `/`: the dashboard page.
    Dashboard,
    /// `/openapi.json`.
    OpenApi,
    /// `/v1/summary`: what the dashboard draws, precomputed per version.
    Summary,
    /// `/v1/campaigns/optimise`.
    CampaignOptimise,
    /// `/v1/campaigns/{id}`.
    Campaign,
    /// `/v1/campaigns/{id}/customers/{cid}`.
    CampaignCustomer,
    /// `/v1/campaigns/{id}/report`: the plan against the responses recorded for it.
    CampaignReport,
    /// `/v1/campaigns`: the plans kept and the newest.
    Campaigns,
    /// `/v1/events/activity`: events per second and the latest changes of tier.
    EventsActivity,
    /// Any other path.
    Unmatched,
}

impl Route {
    /// Every route, in the order of the metrics' arrays.
    pub const ALL: [Route; 22] = [
        Route::Health,
        Route::Ready,
        Route::Metrics,
        Route::Customer,
        Route::Lookup,
        Route::Tiers,
        Route::Select,
        Route::Simulate,
        Route::CustomerEvents,
        Route::Events,
        Route::Profile,
        Route::Retier,
        Route::Dashboard,
        Route::OpenApi,
        Route::Summary,
        Route::CampaignOptimise,
        Route::Campaign,
        Route::CampaignCustomer,
        Route::CampaignReport,
        Route::Campaigns,
        Route::EventsActivity,
        Route::Unmatched,
    ];

    /// The `route` label: the endpoint's path template.
    pub fn template(self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Ready => "/readyz",
            Route::Metrics => "/metrics",
            Route::Customer => "/v1/customers/{id}",
            Route::Lookup => "/v1/customers/lookup",
            Route::Tiers => "/v1/tiers",
            Route::Select => "/v1/select",
            Route::Simulate => "/v1/simulate",
            Route::CustomerEvents => "/v1/customers/{id}/events",
            Route::Events => "/v1/events",
            Route::Profile => "/v1/customers/{id}/profile",
            Route::Retier => "/v1/admin/retier",
            Route::Dashboard => "/",
            Route::OpenApi => "/openapi.json",
            Route::Summary => "/v1/summary",
            Route::CampaignOptimise => "/v1/campaigns/optimise",
            Route::Campaign => "/v1/campaigns/{id}",
            Route::CampaignCustomer => "/v1/campaigns/{id}/customers/{cid}",
            Route::CampaignReport => "/v1/campaigns/{id}/report",
            Route::Campaigns => "/v1/campaigns",
            Route::EventsActivity => "/v1/events/activity",
            Route::Unmatched => "unmatched",
        }
    }

    /// The methods the endpoint takes (the `Allow` header of a 405): `POST`, or `GET` and
    /// `HEAD` (the same answer without its body).
    pub fn method(self) -> &'static str {
        match self {
            Route::Lookup
            | Route::Select
            | Route::Simulate
            | Route::CustomerEvents
            | Route::Events
            | Route::Retier
            | Route::CampaignOptimise => "POST",
            _ => "GET, HEAD",
        }
    }
}

/// Statuses the server answers with, each with a `status` label of its own; any other status
/// counts under `other`.
const STATUSES: [u16; 9] = [200, 400, 401, 404, 405, 413, 415, 500, 503];
/// The label of statuses not in [`STATUSES`].
const OTHER_STATUS: &str = "other";
const STATUS_LABELS: usize = STATUSES.len() + 1;

/// Upper bounds of the histogram buckets (`le`), in microseconds: 50 µs (a lookup) to 60 s (the
/// longest solver time limit). One list for every histogram.
const BUCKET_BOUNDS_MICROS: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 60_000_000,
];
/// The buckets plus the one above the last bound (`+Inf`).
const BUCKETS: usize = BUCKET_BOUNDS_MICROS.len() + 1;

/// A latency histogram: a count per bucket (not cumulative; summed when rendered) and the sum.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The per-bucket counts as read now.
    fn counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|bucket| self.buckets[bucket].load(Ordering::Relaxed))
    }

    /// `_bucket` lines (cumulative, ending with `+Inf`), `_sum` in seconds and `_count` of the
    /// series `name{labels}` from `counts` (read once by the caller, so that every line of one
    /// scrape agrees); `labels` is empty or `key="value"` pairs joined by commas.
    fn render(&self, out: &mut String, name: &str, labels: &str, counts: &[u64; BUCKETS]) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bucket, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = match BUCKET_BOUNDS_MICROS.get(bucket) {
                Some(&bound) => (bound as f64 / 1e6).to_string(),
                None => "+Inf".to_string(),
            };
            line(
                out,
                format_args!("{name}_bucket{{{labels}{separator}le=\"{le}\"}} {cumulative}"),
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        line(out, format_args!("{name}_sum{labels} {sum}"));
        line(out, format_args!("{name}_count{labels} {cumulative}"));
    }
}

/// The server's counters.
#[derive(Debug)]
pub struct Metrics {
    /// One latency histogram per (route, status label); its count is the request count.
    requests: [[Histogram; STATUS_LABELS]; Route::ALL.len()],
    selection: Histogram,
    rescoring: Histogram,
    simulation: Histogram,
    /// Connections turned away at the connection cap.
    refused_connections: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: [const { [const { Histogram::new() }; STATUS_LABELS] }; Route::ALL.len()],
            selection: Histogram::new(),
            rescoring: Histogram::new(),
            simulation: Histogram::new(),
            refused_connections: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request (its status and the time to its response head).
    pub fn record_request(&self, route: Route, status: StatusCode, elapsed: Duration) {
        self.requests[route as usize][status_index(status)].record(elapsed);
    }

    /// Counts one selection (filter, costs and knapsack) on the heavy pool.
    pub fn record_selection(&self, elapsed: Duration) {
        self.selection.record(elapsed);
    }

    /// Counts one per-request re-scoring of the store.
    pub fn record_rescoring(&self, elapsed: Duration) {
        self.rescoring.record(elapsed);
    }

    /// Counts one connection refused at the connection cap; returns how many were, this one
    /// included.
    pub fn record_refused_connection(&self) -> u64 {
        self.refused_connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts one scenario batch of `POST /v1/simulate` (scoring, selections, frontier).
    pub fn record_simulation(&self, elapsed: Duration) {
        self.simulation.record(elapsed);
    }
}

fn status_index(status: StatusCode) -> usize {
    let code = status.as_u16();
    STATUSES
        .iter()
        .position(|&known| known == code)
        .unwrap_or(STATUSES.len())
}

fn status_label(index: usize) -> String {
    STATUSES
        .get(index)
        .map_or_else(|| OTHER_STATUS.to_string(), u16::to_string)
}

fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    out.write_fmt(args)
        .expect("writing to a String cannot fail");
    out.push('\n');
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    line(out, format_args!("# HELP {name} {help}"));
    line(out, format_args!("# TYPE {name} {kind}"));
}

/// Every metric of `state` in the Prometheus text format (version 0.0.4). Request series
/// appear once their (route, status) has answered at least once.
pub fn render(state: &AppState) -> String {
    let metrics = state.metrics();
    let mut out = String::with_capacity(16 << 10);
    let series: Vec<(Route, usize, [u64; BUCKETS])> = Route::ALL
        .iter()
        .flat_map(|&route| {
            metrics.requests[route as usize]
                .iter()
                .enumerate()
                .map(move |(status, histogram)| (route, status, histogram.counts()))
        })
        .filter(|(_, _, counts)| counts.iter().any(|&count| count > 0))
        .collect();
    let labels = |route: Route, status: usize| {
        format!(
            "route=\"{}\",status=\"{}\"",
            route.template(),
            status_label(status)
        )
    };

    let name = "crv_http_requests_total";
    header(
        &mut out,
        name,
        "counter",
        "Requests answered, by route template and status.",
    );
    for &(route, status, counts) in &series {
        let total: u64 = counts.iter().sum();
        line(
            &mut out,
            format_args!("{name}{{{}}} {total}", labels(route, status)),
        );
    }
    let name = "crv_http_request_duration_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time from a request's arrival to its response head, by route template and status.",
    );
    for (route, status, counts) in &series {
        metrics.requests[*route as usize][*status].render(
            &mut out,
            name,
            &labels(*route, *status),
            counts,
        );
    }

    for (name, histogram, help) in [
        (
            "crv_selection_duration_seconds",
            &metrics.selection,
            "Time a selection (filter, costs, knapsack) computed on the heavy pool.",
        ),
        (
            "crv_rescoring_duration_seconds",
            &metrics.rescoring,
            "Time a selection with its own discount or horizon spent re-scoring the store.",
        ),
        (
            "crv_simulation_duration_seconds",
            &metrics.simulation,
            "Time a scenario batch (fused scoring, one selection per scenario, frontier) computed \
             on the heavy pool.",
        ),
    ] {
        header(&mut out, name, "histogram", help);
        histogram.render(&mut out, name, "", &histogram.counts());
    }

    if let Some(live) = state.live() {
        live.stats().render(&mut out);
    }

    let table = state.table();
    let name = "crv_store_rows";
    header(&mut out, name, "gauge", "Customers in the served store.");
    line(&mut out, format_args!("{name} {}", table.rows()));

    let name = "crv_table_version";
    header(
        &mut out,
        name,
        "gauge",
        "Version of the served customer table (1 at start, one more per publish).",
    );
    line(&mut out, format_args!("{name} {}", table.version()));

    let name = "crv_startup_seconds";
    header(
        &mut out,
        name,
        "gauge",
        "Time to open the store at start, and to score and tier the served version.",
    );
    for (phase, time) in [
        ("open", state.open_time()),
        ("score", table.score_time()),
        ("tiers", table.tier_time()),
    ] {
        let time = time.as_secs_f64();
        line(&mut out, format_args!("{name}{{phase=\"{phase}\"}} {time}"));
    }

    let name = "crv_connections_open";
    header(
        &mut out,
        name,
        "gauge",
        "Connections open now (`--max-connections` caps them).",
    );
    line(
        &mut out,
        format_args!("{name} {}", state.open_connections()),
    );
    let name = "crv_connections_refused_total";
    header(
        &mut out,
        name,
        "counter",
        "Connections answered 503 and closed at once at the connection cap.",
    );
    let refused = metrics.refused_connections.load(Ordering::Relaxed);
    line(&mut out, format_args!("{name} {refused}"));

    let admission = state.admission();
    for (name, value, help) in [
        (
            "crv_admission_running",
            admission.running(),
            "Heavy requests computing now.",
        ),
        (
            "crv_admission_waiting",
            admission.waiting(),
            "Heavy requests admitted and waiting for a turn.",
        ),
    ] {
        header(&mut out, name, "gauge", help);
        line(&mut out, format_args!("{name} {value}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_index_their_arrays_in_order() {
        for (index, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, index, "{route:?}");
        }
    }

    #[test]
    fn a_latency_falls_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let histogram = Histogram::new();
        for micros in [0, 50, 51, 60_000_000, 60_000_001] {
            histogram.record(Duration::from_micros(micros));
        }
        let counts = histogram.counts();
        assert_eq!(counts[0], 2, "0 and 50 µs are <= 50 µs");
        assert_eq!(counts[1], 1, "51 µs is <= 100 µs");
        assert_eq!(counts[BUCKETS - 2], 1, "60 s is the last bound");
        assert_eq!(counts[BUCKETS - 1], 1, "beyond it is +Inf");
        assert_eq!(status_index(StatusCode::IM_A_TEAPOT), STATUSES.len());
        assert_eq!(status_label(STATUSES.len()), OTHER_STATUS);
    }
}
