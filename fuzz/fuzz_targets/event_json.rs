//! Arbitrary bytes as an events body (both forms): the answer is serde's alone, whichever
//! reader read it, and what decodes round-trips through the log.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::live::fuzz::event_json(bytes);
});
