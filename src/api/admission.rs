//! The bounded queue in front of heavy requests: at most `max_running` compute at once on the
//! heavy pool and at most `max_waiting` more wait their turn; anyone beyond is turned away at
//! once (503), so overload never grows an unbounded backlog or touches the reactor threads.
//!
//! The heavy pool is a rayon pool of its own whose threads run at a lower CPU priority
//! (`--heavy-nice`): when a selection and the lookups share a core, the scheduler gives the
//! core to a lookup as soon as one arrives, so lookups keep their latency while a selection
//! runs, and the selection gets every cycle the lookups leave.
//!
//! A job holds its place and its turn until it ends on the pool, even when its client has
//! gone: the queue and the gauges count the work actually running. The handler cancels the
//! job's token when the client goes ([`crate::cancel::CancelOnDrop`]), so such a job stops
//! soon and frees its place.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use rayon::ThreadPool;

use tokio::sync::{Semaphore, oneshot};

use super::wire::{ApiError, DEFAULT_MAX_RUNNING, DEFAULT_MAX_WAITING};
use crate::cancel::Cancel;

/// How many heavy requests may run and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Heavy requests computing at once, >= 1 (see [`super::ServerConfig::validate`]).
    pub max_running: usize,
    /// Heavy requests waiting for a turn beyond those running.
    pub max_waiting: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_running: DEFAULT_MAX_RUNNING,
            max_waiting: DEFAULT_MAX_WAITING,
        }
    }
}

/// The two semaphores: `admitted` holds running + waiting places, `running` the turns; and the
/// pool the admitted jobs run on.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    pool: ThreadPool,
}

impl Admission {
    /// An empty queue with `limits` in front of a new heavy pool, one thread per core, each
    /// `nice` steps lower in CPU priority than the thread that starts it (0 = the same; the
    /// nice value stops at 19; Linux only, ignored elsewhere). Fails when the pool's threads
    /// cannot be started.
    pub fn new(limits: AdmissionLimits, nice: u8) -> io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|index| format!("crv-heavy-{index}"))
            .start_handler(move |_| {
                if let Err(error) = lower_thread_priority(nice) {
                    tracing::warn!(%error, nice, "cannot lower a heavy thread's CPU priority");
                }
            })
            .build()
            .map_err(io::Error::other)?;
        Ok(Admission {
            limits,
            admitted: Arc::new(Semaphore::new(limits.max_running + limits.max_waiting)),
            running: Arc::new(Semaphore::new(limits.max_running)),
            pool,
        })
    }

    /// Runs `job` on the heavy pool, outside the queue (no place, no turn): work the server
    /// does for itself, at the heavy pool's priority. A panic is logged, not propagated.
    pub fn spawn_background(&self, job: impl FnOnce() + Send + 'static) {
        self.pool.spawn(move || {
            if panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a background job panicked on the heavy pool");
            }
        });
    }

    /// Heavy requests admitted now, running or waiting.
    pub fn admitted(&self) -> usize {
        self.limits.max_running + self.limits.max_waiting - self.admitted.available_permits()
    }

    /// Heavy requests that have their turn now (computing, or about to).
    pub fn running(&self) -> usize {
        self.limits.max_running - self.running.available_permits()
    }

    /// Heavy requests admitted and waiting for a turn. Read apart from [`Admission::running`],
    /// so a scrape racing a request may see it in neither.
    pub fn waiting(&self) -> usize {
        self.admitted().saturating_sub(self.running())
    }

    /// Runs `job` on the heavy pool once it is admitted and has its turn, and returns its
    /// result: 503 at once when the queue is full, 504 when `cancel`'s deadline passes while
    /// it waits for a turn, 500 (logged) if the job panics. The job keeps its place and turn
    /// until it returns, even if this future is dropped (`job` should watch `cancel`). Rayon
    /// work the job starts (`par_iter`) stays on the heavy pool.
    pub async fn run<T, F>(&self, cancel: &Cancel, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let place = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| ApiError::overloaded())?;
        let turn = Arc::clone(&self.running).acquire_owned();
        let turn = match cancel.deadline() {
            None => turn.await,
            Some(deadline) => match tokio::time::timeout_at(deadline.into(), turn).await {
                Ok(turn) => turn,
                Err(_) => {
                    return Err(match cancel.check("the wait for a turn") {
                        Err(error) => error.into(),
                        Ok(()) => ApiError::internal(),
                    });
                }
            },
        }
        .expect("the running semaphore is never closed");
        let (done, result) = oneshot::channel();
        // A panic must not abort the process (rayon's default for a panicking `spawn`): it is
        // caught and becomes a 500.
        self.pool.spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(job));
            // The place and the turn are given back when the work ends, before the answer
            // goes out: a caller that has its answer finds them free.
            drop((turn, place));
            // The receiver is gone only when the connection was dropped; nobody wants the result.
            let _ = done.send(outcome);
        });
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => {
                tracing::error!("a heavy request panicked on the rayon pool");
                Err(ApiError::internal())
            }
            Err(_) => {
                tracing::error!("a heavy request's job ended without an answer");
                Err(ApiError::internal())
            }
        }
    }
}

/// Raises the calling thread's nice value by `steps` (capped at 19, the lowest priority):
/// Linux keeps one per thread, so the reactor threads keep theirs. Lowering one's own priority
/// needs no privilege.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_thread_priority(steps: u8) -> io::Result<()> {
    const LOWEST: libc::c_int = 19;
    // SAFETY: getpriority and setpriority read their integer arguments and touch no memory of
    // ours; on Linux, PRIO_PROCESS with `who` 0 names the calling thread only. getpriority
    // cannot fail for the caller itself, so its answer (-20..=19) is the nice value.
    let status = unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        let lowered = current.saturating_add(libc::c_int::from(steps)).min(LOWEST);
        libc::setpriority(libc::PRIO_PROCESS, 0, lowered)
    };
    if status == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere a process has one priority, shared with the reactor: left as it is.
#[cfg(not(target_os = "linux"))]
fn lower_thread_priority(_steps: u8) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod queue_tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls until `condition` holds, at most 10 s.
    async fn wait_until(condition: impl Fn() -> bool) {
        let started = Instant::now();
        while !condition() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_job_keeps_its_place_and_turn_until_it_ends_even_when_its_caller_leaves() {
        let limits = AdmissionLimits {
            max_running: 1,
            max_waiting: 0,
        };
        let admission = Arc::new(Admission::new(limits, 0).unwrap());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let caller = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move {
                admission
                    .run(&Cancel::default(), move || released.recv().unwrap())
                    .await
            }
        });
        wait_until(|| admission.running() == 1).await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        // The caller is gone, its job is not: it still counts, and nobody else gets in.
        assert_eq!((admission.running(), admission.admitted()), (1, 1));
        let refused = admission.run(&Cancel::default(), || ()).await;
        assert_eq!(refused.unwrap_err().code, "overloaded");
        release.send(()).unwrap();
        wait_until(|| admission.admitted() == 0).await;
        assert_eq!(admission.run(&Cancel::default(), || 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_request_waiting_past_its_deadline_gets_504() {
        let limits = AdmissionLimits {
            max_running: 1,
            max_waiting: 1,
        };
        let admission = Arc::new(Admission::new(limits, 0).unwrap());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move {
                admission
                    .run(&Cancel::default(), move || released.recv().unwrap())
                    .await
            }
        });
        wait_until(|| admission.running() == 1).await;
        let limit = Duration::from_millis(30);
        let cancel = Cancel::with_time_limit(Instant::now(), limit);
        let error = admission.run(&cancel, || ()).await.unwrap_err();
        assert_eq!(error.code, "time_limit_exceeded", "{}", error.message);
        assert!(
            error.message.contains("the wait for a turn"),
            "{}",
            error.message
        );
        assert_eq!(admission.admitted(), 1, "the place is given back");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value, field 19 of `/proc/thread-self/stat` (after the
    /// parenthesised command name, which may hold spaces).
    fn thread_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn jobs_and_their_parallel_work_run_at_the_heavy_nice_value() {
        use rayon::prelude::*;
        let reactor_nice = thread_nice();
        let admission = Admission::new(AdmissionLimits::default(), 7).unwrap();
        let (job_nice, worker_nices) = admission
            .run(&Cancel::default(), || {
                let workers: Vec<i32> = (0..64).into_par_iter().map(|_| thread_nice()).collect();
                (thread_nice(), workers)
            })
            .await
            .unwrap();
        let expected = (reactor_nice + 7).min(19);
        assert_eq!(job_nice, expected);
        assert!(
            worker_nices.iter().all(|&nice| nice == expected),
            "{worker_nices:?}"
        );
        assert_eq!(
            thread_nice(),
            reactor_nice,
            "the caller's thread keeps its priority"
        );
    }

    #[test]
    fn background_jobs_run_at_the_heavy_nice_value_and_outlive_a_panicking_one() {
        let admission = Admission::new(AdmissionLimits::default(), 7).unwrap();
        admission.spawn_background(|| panic!("a background job's bug"));
        let (sender, receiver) = std::sync::mpsc::channel();
        admission.spawn_background(move || sender.send(thread_nice()).unwrap());
        let nice = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(nice, (thread_nice() + 7).min(19));
        assert_eq!(admission.admitted(), 0, "background jobs take no place");
    }
}
