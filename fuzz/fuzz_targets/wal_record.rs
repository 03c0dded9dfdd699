//! Arbitrary bytes as an event log segment: the valid prefix re-encodes byte for byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::live::fuzz::wal_record(bytes);
});
