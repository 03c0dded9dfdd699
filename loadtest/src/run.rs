//! The closed loop: every connection sends its next request as soon as the last answer is in,
//! until the deadline or the request cap, whichever comes first. With a rate (`Plan::rate`)
//! the loop is open: each connection sends on a fixed schedule instead, and a request's
//! latency counts from the time it was due, not from when it went out, so a server that falls
//! behind is charged for the wait (no coordinated omission). Requests due during the warm-up
//! are sent and checked but not counted. In the mixed scenario one more connection
//! sends a selection every interval, and each lookup is attributed to whether it overlapped one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use crate::client::Connection;
use crate::error::{Error, Result};
use crate::report::{Overlap, Report, SelectionRun, Tally};
use crate::scenario::{self, Scenario};
use crate::workload::Workload;

/// How long a selection still running at the deadline is waited for before it is abandoned
/// (the server's own default time limit is 10 s).
const SELECTION_GRACE: Duration = Duration::from_secs(15);
/// Pause before reconnecting after a connection failed, so a dead server is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// What to run: the target, the load's shape and its bounds.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server, on loopback.
    pub target: SocketAddr,
    /// The scenario.
    pub scenario: Scenario,
    /// Lookup connections, each with one request in flight at a time.
    pub connections: usize,
    /// Open loop: requests a second over all lookup connections, each connection sending on
    /// a fixed schedule (`None`: the closed loop).
    pub rate: Option<f64>,
    /// Ids per batch request.
    pub batch: usize,
    /// Measured time after the warm-up.
    pub duration: Duration,
    /// Time before the measurement, excluded from the figures.
    pub warmup: Duration,
    /// Most measured requests, across all connections.
    pub max_requests: Option<u64>,
    /// Check every `check_every`-th body of a connection (0: status only).
    pub check_every: u64,
    /// Seeds each connection's id choice.
    pub seed: u64,
    /// The mixed scenario's selections.
    pub selections: Option<SelectionPlan>,
    /// The bearer token of event requests (the server's `CRV_TOKEN`).
    pub token: Option<String>,
    /// The events-mixed scenario's event stream.
    pub stream: Option<StreamPlan>,
}

/// The event stream of the events-mixed scenario: batches of purchases on connections of
/// their own, each sending one batch per `interval` so that together they send `rate` events
/// a second (a connection that falls behind sends its late batches at once, then keeps the
/// rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamPlan {
    /// Events a second, all stream connections together.
    pub rate: f64,
    /// Events per request.
    pub batch: usize,
    /// Connections the stream is spread over.
    pub connections: usize,
}

impl StreamPlan {
    /// Time between two batches of one stream connection.
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.connections as f64 * self.batch as f64 / self.rate)
    }
}

/// When a lookup connection sends its requests.
enum Pace {
    /// The closed loop: as soon as the last answer is in.
    Closed,
    /// The open loop: on a fixed schedule (a connection whose answer came late sends the
    /// requests it missed at once, one after another).
    Open {
        ticks: tokio::time::Interval,
        /// When the connection's last answer came.
        answered: Option<Instant>,
    },
}

impl Pace {
    /// Connection `index`'s pace under `plan`: for the open loop, one request every
    /// `connections / rate` seconds from `start`, the connections' schedules staggered evenly
    /// over one period so that they do not all send at the same instant.
    fn of(plan: &Plan, index: usize, start: Instant) -> Pace {
        let Some(rate) = plan.rate else {
            return Pace::Closed;
        };
        let period = Duration::from_secs_f64(plan.connections as f64 / rate);
        let offset = period.mul_f64(index as f64 / plan.connections as f64);
        let mut ticks = tokio::time::interval_at((start + offset).into(), period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Pace::Open {
            ticks,
            answered: None,
        }
    }

    /// Waits for the next request's turn; returns when it was due and the instant its latency
    /// counts from. The closed loop: now, twice. The open loop: the tick it was due at (which
    /// decides whether it falls in the warm-up or the measured window: a tick the timer fires
    /// late is still counted where it was due), and for its latency that tick when the
    /// server's last answer came after it (the server delayed it), otherwise now (the timer's
    /// own lateness, up to a millisecond in tokio, is the generator's, not the server's).
    async fn next(&mut self) -> (Instant, Instant) {
        match self {
            Pace::Closed => {
                let now = Instant::now();
                (now, now)
            }
            Pace::Open { ticks, answered } => {
                let due = ticks.tick().await.into_std();
                let from = match answered {
                    Some(answered) if *answered > due => due,
                    _ => Instant::now(),
                };
                (due, from)
            }
        }
    }

    /// Notes that the last request's answer came at `done`.
    fn answered(&mut self, done: Instant) {
        if let Pace::Open { answered, .. } = self {
            *answered = Some(done);
        }
    }
}

/// The selections of the mixed scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionPlan {
    /// `budget` of each `POST /v1/select`, in the `cost` column's units.
    pub budget: f64,
    /// Time from one selection's start to the next (later if one takes longer).
    pub interval: Duration,
    /// `max_ids` of each request.
    pub max_ids: usize,
}

/// The instants a run is bounded by.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// When the run began (the warm-up's start).
    start: Instant,
    /// End of the warm-up: requests started from here on are measured.
    measure_from: Instant,
    /// No request starts after this.
    deadline: Instant,
}

/// Counts selections begun and finished, so that a lookup can tell whether one overlapped it.
#[derive(Debug, Default)]
struct SelectionCounter {
    started: AtomicU64,
    finished: AtomicU64,
}

impl SelectionCounter {
    /// `(started, finished)` now.
    fn snapshot(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::SeqCst),
            self.finished.load(Ordering::SeqCst),
        )
    }

    /// Whether a selection ran at some time between `before` (a snapshot at a lookup's start)
    /// and now (its end): one was running at the start, or one started since.
    fn overlapped_since(&self, before: (u64, u64)) -> bool {
        before.0 != before.1 || self.started.load(Ordering::SeqCst) != before.0
    }
}

/// Runs `plan` against its target and reports what was measured. All connections are opened
/// before the clock starts; a target that cannot be reached is an error, not a report.
pub async fn run(plan: Plan, workload: Arc<Workload>) -> Result<Report> {
    let mut connections = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        connections.push(open(plan.target).await?);
    }
    let selector = match plan.selections {
        Some(_) => Some(open(plan.target).await?),
        None => None,
    };
    let mut streamers = Vec::new();
    for _ in 0..plan.stream.map_or(0, |stream| stream.connections) {
        streamers.push(open(plan.target).await?);
    }
    let headers = Arc::new(scenario::Headers::new(plan.target, plan.token.as_deref())?);

    let start = Instant::now();
    let clock = Clock {
        start,
        measure_from: start + plan.warmup,
        deadline: start + plan.warmup + plan.duration,
    };
    let plan = Arc::new(plan);
    let counter = Arc::new(SelectionCounter::default());
    let budget = Arc::new(AtomicU64::new(0));
    let lookups: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(index, connection)| {
            tokio::spawn(lookup_loop(
                index as u64,
                connection,
                Arc::clone(&plan),
                Arc::clone(&workload),
                clock,
                Arc::clone(&counter),
                Arc::clone(&budget),
            ))
        })
        .collect();
    let streams: Vec<_> = streamers
        .into_iter()
        .enumerate()
        .map(|(index, connection)| {
            tokio::spawn(stream_loop(
                index as u64,
                connection,
                Arc::clone(&plan),
                Arc::clone(&workload),
                Arc::clone(&headers),
                clock,
            ))
        })
        .collect();
    let selections = match (selector, plan.selections) {
        (Some(connection), Some(selections)) => Some(tokio::spawn(selection_loop(
            connection,
            Arc::clone(&headers),
            plan.target,
            selections,
            clock,
            Arc::clone(&counter),
        ))),
        _ => None,
    };

    let mut tally = Tally::new(plan.selections.is_some());
    for lookup in lookups {
        tally.merge(&lookup.await.expect("a lookup loop does not panic"));
    }
    let selections = match selections {
        Some(task) => task.await.expect("the selection loop does not panic"),
        None => Vec::new(),
    };
    let mut stream = plan.stream.map(|_| Tally::new(false));
    for task in streams {
        let tally = task.await.expect("a stream loop does not panic");
        if let Some(stream) = &mut stream {
            stream.merge(&tally);
        }
    }
    let elapsed = tally.last_done.map_or(Duration::ZERO, |done| {
        done.saturating_duration_since(clock.measure_from)
    });
    Ok(Report {
        scenario: plan.scenario.name(),
        connections: plan.connections,
        offered_rate: plan.rate,
        ids_per_request: plan.scenario.ids_per_request(plan.batch),
        elapsed,
        tally,
        selections,
        stream,
    })
}

async fn open(target: SocketAddr) -> Result<Connection> {
    Connection::open(target)
        .await
        .map_err(|reason| Error::Connect {
            addr: target,
            reason,
        })
}

/// One lookup connection's loop, closed or open ([`Pace`]).
async fn lookup_loop(
    index: u64,
    mut connection: Connection,
    plan: Arc<Plan>,
    workload: Arc<Workload>,
    clock: Clock,
    counter: Arc<SelectionCounter>,
    budget: Arc<AtomicU64>,
) -> Tally {
    let headers = scenario::Headers::new(plan.target, plan.token.as_deref())
        .expect("the token was checked when the run started");
    let mut rng = fastrand::Rng::with_seed(
        plan.seed
            .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let mut tally = Tally::new(plan.selections.is_some());
    let mut sent: u64 = 0;
    let mut pace = Pace::of(&plan, index as usize, clock.start);
    loop {
        let (due, started) = pace.next().await;
        if due >= clock.deadline || Instant::now() >= clock.deadline {
            break;
        }
        let measured = due >= clock.measure_from;
        if measured
            && let Some(max) = plan.max_requests
            && budget.fetch_add(1, Ordering::Relaxed) >= max
        {
            break;
        }
        let exchange = plan
            .scenario
            .exchange(&headers, &workload, &mut rng, plan.batch);
        let inspect_body = plan.check_every > 0 && sent.is_multiple_of(plan.check_every);
        sent += 1;
        let before = counter.snapshot();
        let answer = connection.send(exchange.request).await;
        let done = Instant::now();
        pace.answered(done);
        let overlap = match plan.selections {
            None => Overlap::Untracked,
            Some(_) if counter.overlapped_since(before) => Overlap::DuringSelection,
            Some(_) => Overlap::OutsideSelection,
        };
        let answer = settle(answer, &mut connection, plan.target).await;
        record(
            &mut tally,
            &exchange.expected,
            answer,
            inspect_body,
            measured.then_some((started, done)),
            overlap,
        );
    }
    tally
}

/// `answer`, after replacing `connection` when it failed (a connection is unusable after a
/// transport error).
async fn settle(
    answer: std::result::Result<(hyper::StatusCode, bytes::Bytes), String>,
    connection: &mut Connection,
    target: SocketAddr,
) -> std::result::Result<(hyper::StatusCode, bytes::Bytes), String> {
    if answer.is_err() {
        tokio::time::sleep(RECONNECT_PAUSE).await;
        if let Ok(fresh) = Connection::open(target).await {
            *connection = fresh;
        }
    }
    answer
}

/// Checks an answer against `expected` and, for a measured request (`span`: sent, answered),
/// counts it in `tally`.
fn record(
    tally: &mut Tally,
    expected: &scenario::Expected,
    answer: std::result::Result<(hyper::StatusCode, bytes::Bytes), String>,
    inspect_body: bool,
    span: Option<(Instant, Instant)>,
    overlap: Overlap,
) {
    let answered = answer.is_ok();
    let outcome = answer.and_then(|(status, body)| expected.check(status, &body, inspect_body));
    let Some((started, done)) = span else {
        return;
    };
    if answered {
        let ids = if outcome.is_ok() { expected.ids() } else { 0 };
        tally.answered(done - started, ids, overlap);
    }
    tally.requests += 1;
    tally.last_done = Some(done);
    if let Err(kind) = outcome {
        tally.failed(kind);
    }
}

/// One event-stream connection of the events-mixed scenario: a batch of purchases every
/// interval from the start, its answers checked, its measured events counted (as ids).
async fn stream_loop(
    index: u64,
    mut connection: Connection,
    plan: Arc<Plan>,
    workload: Arc<Workload>,
    headers: Arc<scenario::Headers>,
    clock: Clock,
) -> Tally {
    let stream = plan
        .stream
        .expect("stream loops run only for a stream plan");
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0x5EED_0000 ^ index);
    let mut tally = Tally::new(false);
    let mut ticks = tokio::time::interval(stream.interval());
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        if started >= clock.deadline {
            break;
        }
        let exchange =
            scenario::Scenario::EventsBatch.exchange(&headers, &workload, &mut rng, stream.batch);
        let answer = connection.send(exchange.request).await;
        let done = Instant::now();
        let answer = settle(answer, &mut connection, plan.target).await;
        let span = (started >= clock.measure_from).then_some((started, done));
        record(
            &mut tally,
            &exchange.expected,
            answer,
            true,
            span,
            Overlap::Untracked,
        );
    }
    tally
}

/// The mixed scenario's selection connection: from the end of the warm-up, one selection per
/// interval (the next waits for the last to finish), none started after the deadline.
async fn selection_loop(
    mut connection: Connection,
    headers: Arc<scenario::Headers>,
    target: SocketAddr,
    plan: SelectionPlan,
    clock: Clock,
    counter: Arc<SelectionCounter>,
) -> Vec<SelectionRun> {
    let mut ticks = tokio::time::interval_at(clock.measure_from.into(), plan.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut runs = Vec::new();
    loop {
        ticks.tick().await;
        let started = Instant::now();
        if started >= clock.deadline {
            break;
        }
        let exchange = scenario::selection(&headers, plan.budget, plan.max_ids);
        counter.started.fetch_add(1, Ordering::SeqCst);
        let answer = tokio::time::timeout_at(
            (clock.deadline + SELECTION_GRACE).into(),
            connection.send(exchange.request),
        )
        .await;
        counter.finished.fetch_add(1, Ordering::SeqCst);
        let latency = started.elapsed();
        let (failure, broken) = match answer {
            Ok(Ok((status, body))) => (exchange.expected.check(status, &body, true).err(), false),
            Ok(Err(kind)) => (Some(kind), true),
            Err(_) => (
                Some("selection still running after the grace period".to_string()),
                true,
            ),
        };
        runs.push(SelectionRun {
            started_s: started
                .saturating_duration_since(clock.measure_from)
                .as_secs_f64(),
            latency_ms: latency.as_secs_f64() * 1e3,
            failure,
        });
        if broken {
            match Connection::open(target).await {
                Ok(fresh) => connection = fresh,
                Err(_) => break,
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_overlaps_a_selection_running_at_its_start_or_starting_during_it() {
        let counter = SelectionCounter::default();
        let before = counter.snapshot();
        assert!(!counter.overlapped_since(before));
        counter.started.fetch_add(1, Ordering::SeqCst);
        assert!(
            counter.overlapped_since(before),
            "started during the lookup"
        );
        let during = counter.snapshot();
        counter.finished.fetch_add(1, Ordering::SeqCst);
        assert!(
            counter.overlapped_since(during),
            "running at the lookup's start"
        );
        assert!(!counter.overlapped_since(counter.snapshot()));
    }
}
