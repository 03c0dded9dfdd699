//! Arbitrary bytes as a store file: open, read every column, look ids up, verify. Any outcome
//! but a panic (or a sanitizer report) is fine.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::store::fuzz::store_from_bytes(bytes);
});
