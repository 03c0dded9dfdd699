//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the fuzz targets' own
//! code (the `fuzzing` feature, which `cargo test` enables through a dev-dependency), so CI
//! covers every input the fuzzers found interesting without running a fuzzer. The bodies assert
//! their properties on every input (a lookup never answers another customer's row, a store crv
//! wrote verifies and reads back what was parsed, ...); the seed inputs named here must also
//! end as stated, so a body that silently refuses everything fails.

use std::collections::BTreeMap;
use std::path::Path;

use crv::api::fuzz::Decoded;
use crv::store::fuzz::Outcome;

/// Runs `run` over every file of the target's corpus; returns each file's answer by name.
fn replay<T>(target: &str, run: fn(&[u8]) -> T) -> BTreeMap<String, T> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut answers = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            answers.insert(name, run(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(!answers.is_empty(), "no corpus in {}", dir.display());
    answers
}

fn assert_seeds<T: PartialEq + std::fmt::Debug>(
    answers: &BTreeMap<String, T>,
    seeds: &[(&str, T)],
) {
    for (name, expected) in seeds {
        assert_eq!(answers.get(*name), Some(expected), "{name}");
    }
}

#[test]
fn store_from_bytes_corpus_keeps_its_properties() {
    let answers = replay("store_from_bytes", crv::store::fuzz::store_from_bytes);
    assert_seeds(
        &answers,
        &[
            ("small_store", Outcome::Verified),
            ("truncated", Outcome::Refused),
            ("preamble_only", Outcome::Refused),
        ],
    );
}

#[test]
fn parquet_import_corpus_keeps_its_properties() {
    let answers = replay("parquet_import", crv::store::fuzz::parquet_import);
    assert_seeds(
        &answers,
        &[
            ("numeric_ids.parquet", Outcome::Verified),
            ("text_ids_decimals_nulls.parquet", Outcome::Verified),
            ("duplicate_text_ids.parquet", Outcome::Refused),
            ("truncated.parquet", Outcome::Refused),
        ],
    );
}

#[test]
fn csv_import_corpus_keeps_its_properties() {
    let answers = replay("csv_import", crv::store::fuzz::csv_import);
    assert_seeds(
        &answers,
        &[
            ("basic.csv", Outcome::Verified),
            ("bom_crlf_quoted.csv", Outcome::Verified),
            ("domains.csv", Outcome::Verified),
            ("extreme_ids.csv", Outcome::Verified),
            ("duplicate.csv", Outcome::Refused),
        ],
    );
}

#[test]
fn filter_parse_corpus_keeps_its_properties() {
    let answers = replay("filter_parse", crv::store::fuzz::filter_parse);
    assert_seeds(
        &answers,
        &[
            ("id.txt", Outcome::Verified),
            ("in_and.txt", Outcome::Verified),
            ("tier_quoted.txt", Outcome::Verified),
            ("unclosed.txt", Outcome::Refused),
        ],
    );
}

#[test]
fn api_request_corpus_keeps_its_properties() {
    let answers = replay("api_request", crv::api::fuzz::requests);
    let none = Decoded::default();
    let lookup_json = Decoded {
        lookup_json: true,
        ..none
    };
    let lookup_bincode = Decoded {
        lookup_bincode: true,
        ..none
    };
    let select = Decoded {
        select: true,
        ..none
    };
    let simulate = Decoded {
        simulate: true,
        ..none
    };
    assert_seeds(
        &answers,
        &[
            ("lookup_ids.json", lookup_json),
            ("lookup_empty.json", lookup_json),
            ("lookup_truncated.json", none),
            ("lookup_unknown_field.json", none),
            ("bincode_two_ids", lookup_bincode),
            ("bincode_trailing", none),
            ("bincode_forged_count", none),
            ("select_all_fields.json", select),
            ("select_rescore.json", select),
            ("select_bad_domains.json", none),
            ("select_duplicate.json", none),
            ("simulate_sweep.json", simulate),
            ("simulate_bad_field.json", none),
            ("simulate_campaign.json", simulate),
            ("simulate_campaign_both_grids.json", none),
        ],
    );
}

#[test]
fn model_file_corpus_keeps_its_properties() {
    let answers = replay("model_file", crv::btyd::model_file::fuzz::model_file);
    assert_seeds(
        &answers,
        &[
            ("fitted.json", Outcome::Verified),
            ("minimal_pnbd.json", Outcome::Verified),
            ("hand_written.json", Outcome::Verified),
            ("zero_param.json", Outcome::Refused),
            ("truncated.json", Outcome::Refused),
            ("q_one.json", Outcome::Refused),
        ],
    );
}

#[test]
fn transaction_log_corpus_keeps_its_properties() {
    let answers = replay("transaction_log", crv::rfm::fuzz::transaction_log);
    assert_seeds(
        &answers,
        &[
            ("basic.csv", Some(2)),
            ("bom_crlf_timestamps.csv", Some(2)),
            ("extremes.csv", Some(2)),
            ("bad_date.csv", None),
            ("header_only.csv", None),
            ("missing_column.csv", None),
        ],
    );
}

#[test]
fn request_head_corpus_keeps_its_properties() {
    let answers = replay("request_head", crv::api::fuzz::request_head);
    assert_seeds(
        &answers,
        &[
            ("event_post.http", "direct"),
            ("pipelined.http", "direct"),
            ("query_target.http", "direct"),
            ("absolute_target.http", "hyper"),
            ("chunked_post.http", "hyper"),
            ("http10.http", "hyper"),
            ("half_head.http", "partial"),
        ],
    );
}

#[test]
fn event_json_corpus_keeps_its_properties() {
    let answers = replay("event_json", crv::live::fuzz::event_json);
    assert_seeds(
        &answers,
        &[
            ("all_types.json", Some(4)),
            ("bad_value.json", None),
            ("other_customer.json", None),
        ],
    );
}

#[test]
fn wal_record_corpus_keeps_its_properties() {
    let answers = replay("wal_record", crv::live::fuzz::wal_record);
    assert_seeds(
        &answers,
        &[
            ("two_records.wal", 2),
            ("torn.wal", 1),
            ("garbage_tail.wal", 2),
            ("zero_room.wal", 2),
            // Its checksums match, but no request gives a NaN amount: the log stops before it.
            ("nan_amount_in_the_middle.wal", 1),
        ],
    );
}

#[test]
fn checkpoint_body_corpus_keeps_its_properties() {
    let answers = replay("checkpoint_body", crv::live::fuzz::checkpoint_body);
    assert_seeds(
        &answers,
        &[
            ("one_customer.body", Some(1)),
            ("three_customers.body", Some(3)),
            ("huge_length.body", None),
            ("trailing_byte.body", None),
            // Found by the fuzzer: a response worth NaN, which reads back bit for bit.
            ("nan_response.body", None),
        ],
    );
}

#[test]
fn campaign_definition_corpus_keeps_its_properties() {
    let answers = replay(
        "campaign_definition",
        crv::campaign::fuzz::campaign_definition,
    );
    assert_seeds(
        &answers,
        &[
            ("design_example.json", Outcome::Verified),
            ("infeasible_minimum.json", Outcome::Verified),
            ("unknown_column.json", Outcome::Opened),
            ("no_value.json", Outcome::Refused),
        ],
    );
}

#[test]
fn contacts_csv_corpus_keeps_its_properties() {
    let answers = replay("contacts_csv", crv::campaign::fuzz::contacts_csv);
    assert_seeds(
        &answers,
        &[
            ("basic.csv", Outcome::Verified),
            ("bad_date.csv", Outcome::Refused),
            ("bad_header.csv", Outcome::Refused),
            // A store of numeric ids has no customer `C-1`: not an id.
            ("text_id.csv", Outcome::Refused),
        ],
    );
}
