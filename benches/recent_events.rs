//! A customer's recent events (`live::recent_events::RecentEvents`) under a stream of events
//! for the same customers, as the live-speed check sends them (10,000 customers, each with
//! its twenty recent events kept, so that every event replaces the oldest):
//! - `push_full/10k`: one purchase pushed into the next customer's full buffer;
//! - `deque_full/10k` (baseline): the same into a plain `VecDeque` of the decoded events
//!   (push at the back, pop at the front), the representation the encoded buffer replaced.
//!
//! Ratios of criterion's medians are printed after them.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use crv::limits::RECENT_EVENTS;
use crv::live::customer::LoggedEvent;
use crv::live::event::Event;
use crv::live::recent_events::RecentEvents;

const CUSTOMERS: usize = 10_000;

/// The purchase of event `sequence`.
fn purchase(sequence: u64) -> Event {
    Event::Purchase {
        amount: (sequence % 10_000) as f64 / 100.0,
        time: 1_795_000_000_000_000 + sequence as i64,
    }
}

fn main() {
    let mut recent: Vec<RecentEvents> = vec![RecentEvents::default(); CUSTOMERS];
    let mut deques: Vec<VecDeque<LoggedEvent>> =
        vec![VecDeque::with_capacity(RECENT_EVENTS); CUSTOMERS];
    let mut sequence = 0u64;
    for _ in 0..RECENT_EVENTS {
        for (buffer, deque) in recent.iter_mut().zip(&mut deques) {
            sequence += 1;
            buffer.push(sequence, &purchase(sequence));
            deque.push_back(LoggedEvent {
                sequence,
                event: purchase(sequence),
            });
        }
    }

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let since = SystemTime::now();
    let mut group = criterion.benchmark_group("recent_events");
    let mut customer = 0;
    group.bench_function("push_full/10k", |b| {
        b.iter(|| {
            sequence += 1;
            customer = (customer + 1) % CUSTOMERS;
            recent[customer].push(sequence, &purchase(sequence));
        })
    });
    group.bench_function("deque_full/10k", |b| {
        b.iter(|| {
            sequence += 1;
            customer = (customer + 1) % CUSTOMERS;
            let deque = &mut deques[customer];
            deque.pop_front();
            deque.push_back(LoggedEvent {
                sequence,
                event: purchase(sequence),
            });
        })
    });
    group.finish();
    criterion.final_summary();
    assert!(recent.iter().all(|buffer| buffer.len() == RECENT_EVENTS));
    common::print_ratio("recent_events", "push_full/10k", "deque_full/10k", since);
}
