//! Arbitrary bytes as a CSV export: parse, write the store to memory, reopen and verify it.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::store::fuzz::csv_import(bytes);
});
