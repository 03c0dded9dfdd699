//! Arbitrary bytes as a checkpoint's body: refused, or read back equal after re-encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::live::fuzz::checkpoint_body(bytes);
});
