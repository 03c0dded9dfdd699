//! Arbitrary text as a `--where` expression: parse, and evaluate against a small store.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::store::fuzz::filter_parse(bytes);
});
