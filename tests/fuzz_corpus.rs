//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the fuzz targets' own
//! code, so CI covers every input the fuzzers found interesting without running a fuzzer.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus in {}", dir.display());
}

#[test]
fn store_from_bytes_corpus_replays_without_panics() {
    replay("store_from_bytes", crv::store::fuzz::store_from_bytes);
}

#[test]
fn csv_import_corpus_replays_without_panics() {
    replay("csv_import", crv::store::fuzz::csv_import);
}

#[test]
fn filter_parse_corpus_replays_without_panics() {
    replay("filter_parse", crv::filter::fuzz_parse);
}

#[test]
fn api_request_corpus_replays_without_panics() {
    replay("api_request", crv::api::fuzz::requests);
}
