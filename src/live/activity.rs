//! What the dashboard shows of the live path (`GET /v1/events/activity`): events applied in
//! each of the last [`RATE_SECONDS`] seconds, and the latest [`TIER_CHANGES_KEPT`] changes of
//! a customer's tier. Both are kept as events are applied, so reading them scans nothing:
//! a ring of per-second counters (each one atomic word: the second and its count) and a short
//! queue of changes behind a mutex taken only when an event moves a customer to another tier.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::Tier;

/// Whole seconds of event counts answered (the current second, still counting, is not).
pub const RATE_SECONDS: usize = 60;
/// Changes of tier kept, the oldest dropped first.
pub const TIER_CHANGES_KEPT: usize = 20;
/// Counters in the ring: more than [`RATE_SECONDS`], so the second being counted never
/// shares a slot with one answered.
const SLOTS: usize = 64;
/// The low half of a slot's word holds the count, the high half the second (mod 2^32).
const HALF: u32 = 32;
const LOW: u64 = (1 << HALF) - 1;

/// One customer moved to another tier by an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierChange {
    /// The event's sequence number.
    pub sequence: u64,
    /// The customer (the store's id).
    pub customer_id: u64,
    /// The tier before the event; `None` for a customer the event created.
    pub from: Option<Tier>,
    /// The tier after it, against the served version's cut points.
    pub to: Tier,
    /// The CRV after it.
    pub crv: f32,
    /// When it was applied, in microseconds since 1970 UTC.
    pub at_micros: i64,
}

/// The per-second counters and the latest changes of tier.
#[derive(Debug)]
pub struct Activity {
    seconds: [AtomicU64; SLOTS],
    changes: Mutex<VecDeque<TierChange>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            seconds: [const { AtomicU64::new(0) }; SLOTS],
            changes: Mutex::new(VecDeque::with_capacity(TIER_CHANGES_KEPT)),
        }
    }
}

impl Activity {
    /// `count` events applied in `second` (since 1970 UTC).
    pub fn count_events(&self, second: u64, count: u64) {
        let stamp = second & LOW;
        let slot = &self.seconds[second as usize % SLOTS];
        // The closure always answers `Some`: the update cannot fail.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            let before = if word >> HALF == stamp { word & LOW } else { 0 };
            Some(stamp << HALF | (before + count).min(LOW))
        });
    }

    /// Events applied in each of the [`RATE_SECONDS`] whole seconds before `now_second`,
    /// oldest first.
    pub fn per_second(&self, now_second: u64) -> Vec<u64> {
        (now_second.saturating_sub(RATE_SECONDS as u64)..now_second)
            .map(|second| {
                let word = self.seconds[second as usize % SLOTS].load(Ordering::Relaxed);
                if word >> HALF == second & LOW {
                    word & LOW
                } else {
                    0
                }
            })
            .collect()
    }

    /// Keeps `change`, dropping the oldest beyond [`TIER_CHANGES_KEPT`].
    pub fn record_tier_change(&self, change: TierChange) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        if changes.len() == TIER_CHANGES_KEPT {
            changes.pop_front();
        }
        changes.push_back(change);
    }

    /// The changes of tier kept, newest first.
    pub fn tier_changes(&self) -> Vec<TierChange> {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        changes.iter().rev().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_second_and_old_seconds_read_zero() {
        let activity = Activity::default();
        let now = 1_700_000_000;
        activity.count_events(now - 1, 3);
        activity.count_events(now - 1, 2);
        activity.count_events(now - 60, 7);
        activity.count_events(now - 61, 11); // Before the window.
        activity.count_events(now, 13); // The second still counting.
        let rate = activity.per_second(now);
        assert_eq!(rate.len(), RATE_SECONDS);
        assert_eq!(rate[RATE_SECONDS - 1], 5);
        assert_eq!(rate[0], 7);
        assert_eq!(rate.iter().sum::<u64>(), 12);
        // A slot reused SLOTS seconds later starts from zero.
        activity.count_events(now - 1 + SLOTS as u64, 1);
        assert_eq!(activity.per_second(now + SLOTS as u64)[RATE_SECONDS - 1], 1);
    }

    #[test]
    fn the_latest_changes_are_kept_newest_first() {
        let activity = Activity::default();
        for sequence in 1..=(TIER_CHANGES_KEPT as u64 + 5) {
            activity.record_tier_change(TierChange {
                sequence,
                customer_id: sequence,
                from: Some(Tier::B),
                to: Tier::A,
                crv: 1.0,
                at_micros: 0,
            });
        }
        let changes = activity.tier_changes();
        assert_eq!(changes.len(), TIER_CHANGES_KEPT);
        assert_eq!(changes[0].sequence, TIER_CHANGES_KEPT as u64 + 5);
        assert_eq!(changes.last().unwrap().sequence, 6);
    }
}
