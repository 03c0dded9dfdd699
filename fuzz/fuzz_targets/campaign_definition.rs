//! Arbitrary bytes as a campaign definition: parse, bind to a small table, solve, check the plan.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::campaign::fuzz::campaign_definition(bytes);
});
