//! Stopping heavy work early. A [`Cancel`] token travels with a job (inside
//! [`crate::select::SolveLimits`]); the job asks it between units of work (scenarios, frontier
//! points, blocks of filter rows, the solver's stages) whether to go on. It says stop once
//! [`Cancel::cancel`] was called (the HTTP server does so when the client goes away: see
//! [`CancelOnDrop`]) or once its deadline passed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A shared stop flag with an optional deadline; clones share the flag. The default never
/// stops until cancelled.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// When the work must stop, and the time limit it came from (for messages).
    deadline: Option<(Instant, Duration)>,
}

/// Why work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// [`Cancel::cancel`] was called: nobody waits for the answer any more.
    Cancelled,
    /// The time limit (the value) passed.
    TimeLimit(Duration),
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Cancelled => f.write_str("the work was cancelled (its client went away)"),
            StopCause::TimeLimit(limit) => {
                write!(f, "the time limit of {} ms passed", limit.as_millis())
            }
        }
    }
}

impl Cancel {
    /// A token whose deadline is `limit` after `started` (none if that instant cannot be
    /// represented).
    pub fn with_time_limit(started: Instant, limit: Duration) -> Cancel {
        Cancel {
            flag: Arc::default(),
            deadline: started.checked_add(limit).map(|at| (at, limit)),
        }
    }

    /// The deadline, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(at, _)| at)
    }

    /// Tells every holder of this token (and its clones) to stop.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Why the work should stop now, `None` to go on.
    pub fn stop_cause(&self) -> Option<StopCause> {
        if self.flag.load(Ordering::Relaxed) {
            return Some(StopCause::Cancelled);
        }
        match self.deadline {
            Some((at, limit)) if Instant::now() >= at => Some(StopCause::TimeLimit(limit)),
            _ => None,
        }
    }

    /// Whether the work should stop now.
    pub fn is_stopped(&self) -> bool {
        self.stop_cause().is_some()
    }

    /// `Ok` to go on; [`Error::Stopped`] naming `during` (what was being computed) to stop.
    pub fn check(&self, during: &str) -> Result<()> {
        match self.stop_cause() {
            None => Ok(()),
            Some(cause) => Err(Error::Stopped {
                cause,
                during: during.to_owned(),
            }),
        }
    }

    /// A guard that cancels this token when dropped: held by whoever waits for the answer, so
    /// the work stops once nobody does.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Cancels its token when dropped (see [`Cancel::cancel_on_drop`]).
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_stops_when_cancelled_or_past_its_deadline() {
        let token = Cancel::default();
        assert!(token.check("work").is_ok());
        let clone = token.clone();
        drop(token.cancel_on_drop());
        assert_eq!(clone.stop_cause(), Some(StopCause::Cancelled));
        let message = clone.check("filter evaluation").unwrap_err().to_string();
        assert!(message.contains("filter evaluation"), "{message}");

        let limit = Duration::from_millis(5);
        let timed = Cancel::with_time_limit(Instant::now() - limit, limit);
        assert_eq!(timed.stop_cause(), Some(StopCause::TimeLimit(limit)));
        let message = timed.check("scenario `a`").unwrap_err().to_string();
        assert!(message.contains("time limit of 5 ms"), "{message}");
        let later = Cancel::with_time_limit(Instant::now(), Duration::from_secs(60));
        assert!(!later.is_stopped());
        assert!(
            Cancel::with_time_limit(Instant::now(), Duration::MAX)
                .deadline()
                .is_none()
        );
    }

    #[test]
    fn the_solver_stops_at_its_limit_check_once_cancelled() {
        use crate::select::{SolveLimits, StopReason, knapsack};
        // Greedy takes the first item (value 10) and nothing else fits; the optimum is 12.
        let (values, costs) = ([10.0f32, 6.0, 6.0], [6u64, 4, 4]);
        let solved = knapsack(&values, &costs, 8, None, &SolveLimits::default());
        assert!(solved.optimal);
        assert_eq!(solved.objective, 12.0);
        let limits = SolveLimits::default();
        limits.cancel.cancel();
        let stopped = knapsack(&values, &costs, 8, None, &limits);
        assert_eq!(stopped.stats.stopped_by, Some(StopReason::TimeLimit));
        assert!(!stopped.optimal && stopped.gap > 0.0);
        assert!(stopped.upper_bound >= 12.0);
    }
}
