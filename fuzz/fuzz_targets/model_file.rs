//! Arbitrary bytes as a model.json: parse; what parses must round-trip through the writer.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::btyd::model_file::fuzz::model_file(bytes);
});
