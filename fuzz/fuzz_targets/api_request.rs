//! Arbitrary bytes as every request body the server decodes (lookup JSON, lookup bincode,
//! select JSON): decode, re-encode or validate. Any outcome but a panic is fine.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::api::fuzz::requests(bytes);
});
