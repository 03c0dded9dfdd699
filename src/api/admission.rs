//! The bounded queue in front of heavy requests: at most `max_running` compute at once on the
//! rayon pool and at most `max_waiting` more wait their turn; anyone beyond is turned away at
//! once (503), so overload never grows an unbounded backlog or touches the reactor threads.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};

use super::wire::{ApiError, DEFAULT_MAX_RUNNING, DEFAULT_MAX_WAITING};

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

/// The two semaphores: `admitted` holds running + waiting places, `running` the turns.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl Admission {
    /// An empty queue with `limits`.
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits,
            admitted: Arc::new(Semaphore::new(limits.max_running + limits.max_waiting)),
            running: Arc::new(Semaphore::new(limits.max_running)),
        }
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

    /// Runs `job` on the rayon pool once it is admitted and has its turn, and returns its
    /// result: 503 at once when the queue is full, 500 (logged) if the job panics.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _place = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| ApiError::overloaded())?;
        let _turn = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .expect("the running semaphore is never closed");
        let (done, result) = oneshot::channel();
        // A panic must not abort the process (rayon's default for a panicking `spawn`): it is
        // caught and becomes a 500.
        rayon::spawn(move || {
            // The receiver is gone only when the connection was dropped; nobody wants the result.
            let _ = done.send(panic::catch_unwind(AssertUnwindSafe(job)));
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
