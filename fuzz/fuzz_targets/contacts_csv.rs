//! Arbitrary bytes as a contacts CSV: read for a three-customer store, the contact rules
//! evaluated for every customer in it.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = crv::campaign::fuzz::contacts_csv(bytes);
});
