//! Synthetic live events, as a server would have logged them: the input of the start-up
//! replay's measurements (`benches/replay.rs`, `crv-eventlog` in loadtest/). A mix of
//! purchases (85%), contacts (8%), responses (4%) and margin changes (3%), a millisecond apart
//! from 2026-11-30, each drawn from its own stream of the seed, so event `sequence` is the same
//! whatever else is generated.

use super::rng::RowRng;
use crate::live::event::{CustomerEvent, Event, SetValue};

/// Microseconds since 1970 of 2026-11-30T00:00:00Z: the time of event 0.
const FIRST_TIME: i64 = 1_795_996_800_000_000;

/// Event number `sequence` of the log generated from `seed`, for `customer_id`.
pub fn event(seed: u64, sequence: u64, customer_id: u64) -> CustomerEvent {
    let mut rng = RowRng::new(seed, sequence);
    let mut below = |n: u64| rng.next_u64() % n;
    let time = FIRST_TIME + sequence as i64 * 1_000;
    let campaign = || format!("campaign-{}", sequence % 12);
    let cents = |below: &mut dyn FnMut(u64) -> u64, from: u64, to: u64| {
        (from + below(to - from)) as f64 / 100.0
    };
    let event = match below(100) {
        0..85 => Event::Purchase {
            amount: cents(&mut below, 100, 50_000),
            time,
        },
        85..93 => Event::Contact {
            channel: ["email", "phone", "mail"][below(3) as usize].to_string(),
            campaign: campaign(),
            offer: "coupon".to_string(),
            time,
        },
        93..97 => Event::Response {
            campaign: campaign(),
            offer: "coupon".to_string(),
            value: cents(&mut below, 0, 10_000),
            time,
        },
        _ => Event::Set {
            column: "margin".to_string(),
            value: SetValue::Number(cents(&mut below, 0, 100_000)),
        },
    };
    CustomerEvent { customer_id, event }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_and_the_values_are_as_documented() {
        let events: Vec<CustomerEvent> =
            (0..20_000).map(|sequence| event(3, sequence, 9)).collect();
        let share = |kind: &str| {
            events.iter().filter(|e| e.event.kind() == kind).count() as f64 / events.len() as f64
        };
        for (kind, expected) in [
            ("purchase", 0.85),
            ("contact", 0.08),
            ("response", 0.04),
            ("set", 0.03),
        ] {
            assert!(
                (share(kind) - expected).abs() < 0.01,
                "{kind}: {}",
                share(kind)
            );
        }
        for e in &events {
            assert_eq!(e.customer_id, 9);
            if let Event::Purchase { amount, .. } = e.event {
                assert!((1.0..500.0).contains(&amount), "{amount}");
            }
        }
        assert_eq!(event(3, 17, 9), events[17]);
        assert_ne!(event(4, 17, 9), events[17]);
    }
}
