//! Arbitrary bytes as a Parquet file: import, write the store to memory, reopen and verify it.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::store::fuzz::parquet_import(bytes);
});
