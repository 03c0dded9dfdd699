//! Arbitrary bytes as a purchase log: summarise it; in reverse line order and spilled to files
//! it must give the same rows.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::rfm::fuzz::transaction_log(bytes);
});
