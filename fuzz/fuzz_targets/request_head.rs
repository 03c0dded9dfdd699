//! Arbitrary bytes as the start of a connection, read by the server's direct lane: a request
//! head it answers itself, one to read more of, or one for hyper. Any outcome but a panic is
//! fine.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::api::fuzz::request_head(bytes);
});
