//! Fuzz bodies for the live parsers (`fuzz/fuzz_targets/event_json.rs`, `wal_record.rs`,
//! `checkpoint_body.rs`); compiled only with the `fuzzing` feature. Each must return for any
//! input, without panicking.

use super::checkpoint;
use super::event;
use super::log;
use crate::limits::{MAX_CONTACT_HISTORY, RECENT_EVENTS};

/// What a fuzzed checkpoint body may claim for its containers: a mebibyte, where the reader
/// allows 4 GiB (a body that matched its checksum was written by crv), so that a length read
/// from random bytes cannot make the fuzzer allocate gigabytes.
const FUZZ_BODY_CLAIM: usize = 1 << 20;

/// Decodes `bytes` as an events body in both forms: the answer (events or error) is serde's
/// alone, bit for bit (the plain reader agrees wherever it reads a body), and whatever decodes
/// re-encodes as a log record that reads back equal. Returns the events decoded in the
/// per-customer form, `None` when refused.
pub fn event_json(bytes: &[u8]) -> Option<usize> {
    for customer in [None, Some(7)] {
        let decoded = event::decode(bytes, customer, || 0);
        assert_eq!(
            format!("{decoded:?}"),
            format!("{:?}", event::decode_by_serde(bytes, customer, || 0))
        );
        if let Ok(events) = decoded {
            let mut out = Vec::new();
            for (index, event) in events.iter().enumerate() {
                log::encode_record(index as u64 + 1, event, &mut out);
            }
            let read = log::read_segment(&out);
            assert!(read.damage.is_none());
            let decoded: Vec<_> = read.records.into_iter().map(|r| r.event).collect();
            assert_eq!(decoded, events);
            for event in &events {
                assert_eq!(event.event.outside_limits(), None);
            }
        }
    }
    event::decode(bytes, Some(7), || 0)
        .ok()
        .map(|events| events.len())
}

/// Reads `bytes` as a log segment: the valid prefix is whole records, re-encoding them gives
/// that prefix back byte for byte, and what follows is damage or zeros (the room a writer
/// keeps ahead). Returns the records read.
pub fn wal_record(bytes: &[u8]) -> usize {
    let read = log::read_segment(bytes);
    assert!(read.valid_bytes as usize <= bytes.len());
    let mut out = Vec::new();
    for record in &read.records {
        log::encode_record(record.sequence, &record.event, &mut out);
    }
    assert_eq!(out.len() as u64, read.valid_bytes);
    match read.damage {
        Some(damage) => assert_eq!(damage.offset, read.valid_bytes),
        None => assert!(bytes[out.len()..].iter().all(|&byte| byte == 0)),
    }
    read.records.len()
}

/// Decodes `bytes` as a checkpoint's body, as the reader does once the file's checksum matched
/// (random bytes would never get past the checksum): refused, or a checkpoint whose customers
/// keep at most the recent events and contacts a history holds, and whose file (header and
/// re-encoded body) reads back as the same checkpoint, which encodes to that file again, bit
/// for bit. Every event it holds is one a request could have given (no NaN, no negative
/// purchase: [`event::Event::outside_limits`]). Returns the customers decoded.
pub fn checkpoint_body(bytes: &[u8]) -> Option<usize> {
    let checkpoint = checkpoint::decode_body::<FUZZ_BODY_CLAIM>(bytes).ok()?;
    for (_, history) in &checkpoint.customers {
        assert!(history.recent.len() <= RECENT_EVENTS);
        assert!(history.contacts.len() <= MAX_CONTACT_HISTORY);
        for logged in history.recent.iter() {
            assert_eq!(logged.event.outside_limits(), None);
        }
        for contact in history.contacts.iter() {
            assert_eq!(contact.event().outside_limits(), None);
        }
    }
    let file = checkpoint::encode(&checkpoint).expect("a decoded checkpoint encodes");
    let read = checkpoint::decode(&file).expect("an encoded checkpoint reads back");
    assert_eq!(read, checkpoint);
    assert_eq!(checkpoint::encode(&read).expect("encodes"), file);
    Some(checkpoint.customers.len())
}
