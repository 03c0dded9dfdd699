//! Corrupt and truncated store files: every damaged byte gives a typed error, never a panic, and
//! `verify` catches what open does not look at.

use crv::Store;
use crv::store::Column;
use crv::store::csv::read_csv;
use crv::store::format::{self, Header, PREAMBLE_BYTES, Section};
use crv::store::writer;

const SAMPLE_CSV: &str = "\
customer_id,margin,retention,cost,segment,score
10,120.5,0.8,3.25,gold,7
11,-4,0.5,1,basic,8
12,33.3,1,12.5,silver,9
13,0,0,0,gold,10
";

fn sample_store_bytes() -> Vec<u8> {
    let parsed = read_csv(SAMPLE_CSV.as_bytes(), "sample.csv", &mut |_| {}).unwrap();
    let mut bytes = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
    bytes
}

fn header_of(bytes: &[u8]) -> Header {
    let preamble = format::decode_preamble(bytes).unwrap();
    format::decode_header(&bytes[PREAMBLE_BYTES..PREAMBLE_BYTES + preamble.header_len]).unwrap()
}

/// Re-encodes a modified (same length or shorter) header in place with a correct checksum, so that validation past the
/// header checksum is what rejects the change.
fn with_header(bytes: &[u8], change: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut header = header_of(bytes);
    change(&mut header);
    let encoded = format::encode_header(&header).unwrap();
    let version = format::decode_preamble(bytes).unwrap().version;
    let preamble =
        format::encode_preamble(version, encoded.len(), format::checksum(&encoded)).unwrap();
    let old_len = format::decode_preamble(bytes).unwrap().header_len;
    assert!(
        encoded.len() <= old_len,
        "a longer header would move the data"
    );
    let mut out = bytes.to_vec();
    out[..PREAMBLE_BYTES].copy_from_slice(&preamble);
    out[PREAMBLE_BYTES..PREAMBLE_BYTES + old_len].fill(0);
    out[PREAMBLE_BYTES..PREAMBLE_BYTES + encoded.len()].copy_from_slice(&encoded);
    out
}

fn open_error(bytes: &[u8]) -> String {
    Store::from_bytes(bytes)
        .expect_err("damaged store must not open")
        .to_string()
}

fn column_section(header: &Header, name: &str) -> Section {
    header.columns.iter().find(|c| c.name == name).unwrap().data
}

#[test]
fn sample_store_opens_and_reads_back_every_value() {
    let store = Store::from_bytes(&sample_store_bytes()).unwrap();
    assert_eq!(store.rows(), 4);
    assert_eq!(store.ids(), &[10, 11, 12, 13]);
    assert_eq!(
        store.numeric("margin").unwrap(),
        &[120.5, -4.0, 33.3f32, 0.0]
    );
    assert_eq!(store.numeric("score").unwrap(), &[7.0, 8.0, 9.0, 10.0]);
    let Some(Column::Text(segment)) = store.column("segment") else {
        panic!("segment is a text column");
    };
    let values: Vec<_> = (0..4).map(|row| segment.value(row).unwrap()).collect();
    assert_eq!(values, ["gold", "basic", "silver", "gold"]);
    assert_eq!(segment.dictionary.len(), 3);
    assert_eq!(store.row_of(crv::CustomerId(12)), Some(2));
    assert_eq!(store.row_of(crv::CustomerId(99)), None);
    store.verify().unwrap();
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let bytes = sample_store_bytes();
    for len in 0..bytes.len() {
        let result = Store::from_bytes(&bytes[..len]);
        assert!(result.is_err(), "store truncated to {len} bytes opened");
    }
}

#[test]
fn every_flipped_bit_in_preamble_and_header_is_an_error() {
    let bytes = sample_store_bytes();
    let header_end = PREAMBLE_BYTES + format::decode_preamble(&bytes).unwrap().header_len;
    for byte in 0..header_end {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[byte] ^= 1 << bit;
            assert!(
                Store::from_bytes(&damaged).is_err(),
                "flipping bit {bit} of byte {byte} went unnoticed"
            );
        }
    }
}

#[test]
fn flipped_magic_and_version_are_named() {
    let bytes = sample_store_bytes();
    let mut magic = bytes.clone();
    magic[3] ^= 0x20;
    assert!(open_error(&magic).contains("bad magic"));
    let mut version = bytes.clone();
    version[8] = 9;
    assert!(open_error(&version).contains("format version 9"));
}

#[test]
fn misaligned_column_is_rejected() {
    let bytes = with_header(&sample_store_bytes(), |h| h.columns[1].data.offset += 4);
    assert!(open_error(&bytes).contains("not 64-byte aligned"));
}

#[test]
fn overlapping_columns_are_rejected() {
    let bytes = with_header(&sample_store_bytes(), |h| {
        h.columns[2].data.offset = h.columns[1].data.offset;
    });
    assert!(open_error(&bytes).contains("overlaps"));
}

#[test]
fn overflowing_offset_is_rejected() {
    let bytes = with_header(&sample_store_bytes(), |h| {
        h.columns[1].data.offset = u64::MAX - 63;
        h.columns[1].data.len = 64;
    });
    assert!(open_error(&bytes).contains("overflows"));
}

#[test]
fn offset_past_the_end_of_the_file_is_rejected() {
    let bytes = sample_store_bytes();
    let len = bytes.len() as u64;
    let damaged = with_header(&bytes, |h| h.columns[1].data.offset = format::align_up(len));
    assert!(open_error(&damaged).contains("outside the data region"));
}

#[test]
fn column_length_must_equal_rows_times_element_size() {
    let bytes = with_header(&sample_store_bytes(), |h| h.columns[1].data.len -= 4);
    assert!(open_error(&bytes).contains("expected 4 rows x 4 bytes = 16"));
    let bytes = with_header(&sample_store_bytes(), |h| h.rows += 1);
    assert!(open_error(&bytes).contains("expected 5 rows"));
}

#[test]
fn absurd_row_count_is_rejected_before_arithmetic() {
    let bytes = with_header(&sample_store_bytes(), |h| h.rows = u64::MAX);
    assert!(open_error(&bytes).contains("rows exceed the limit"));
}

#[test]
fn id_index_must_be_a_power_of_two_above_the_row_count() {
    let bytes = with_header(&sample_store_bytes(), |h| h.id_index.len -= 4);
    assert!(open_error(&bytes).contains("id index"));
}

#[test]
fn header_must_start_with_customer_id_and_name_columns_once() {
    let bytes = sample_store_bytes();
    let swapped = with_header(&bytes, |h| h.columns.swap(0, 1));
    assert!(open_error(&swapped).contains("first column must be"));
    let renamed = with_header(&bytes, |h| h.columns[2].name = "margin".into());
    assert!(open_error(&renamed).contains("column `margin` appears twice"));
}

#[test]
fn text_column_needs_its_dictionary() {
    let bytes = with_header(&sample_store_bytes(), |h| {
        let text = h.columns.iter_mut().find(|c| c.name == "segment").unwrap();
        text.kind = format::ColumnKind::F32;
    });
    assert!(open_error(&bytes).contains("dictionary must accompany"));
}

#[test]
fn dictionary_offsets_must_span_the_text() {
    let bytes = sample_store_bytes();
    let header = header_of(&bytes);
    let dictionary = header
        .columns
        .iter()
        .find(|c| c.name == "segment")
        .unwrap()
        .dictionary
        .clone()
        .unwrap();
    // Point the second offset past the end of the text.
    let mut damaged = bytes.clone();
    let at = dictionary.offsets.offset as usize + 8;
    damaged[at..at + 8].copy_from_slice(&1000u64.to_le_bytes());
    assert!(open_error(&damaged).contains("dictionary of column `segment`"));
    // Invalid UTF-8 in the text.
    let mut damaged = bytes;
    damaged[dictionary.bytes.offset as usize] = 0xff;
    assert!(open_error(&damaged).contains("not valid UTF-8"));
}

#[test]
fn verify_catches_a_flipped_bit_inside_a_column() {
    let bytes = sample_store_bytes();
    let margin = column_section(&header_of(&bytes), "margin");
    let mut damaged = bytes;
    damaged[margin.offset as usize + 5] ^= 0x10;
    let store = Store::from_bytes(&damaged).expect("open does not read column values");
    let message = store.verify().unwrap_err().to_string();
    assert!(message.contains("column `margin`: checksum"), "{message}");
}

#[test]
fn verify_catches_values_outside_their_domain_even_with_good_checksums() {
    let bytes = sample_store_bytes();
    let retention = column_section(&header_of(&bytes), "retention");
    let mut damaged = bytes;
    let at = retention.offset as usize + 4;
    damaged[at..at + 4].copy_from_slice(&1.5f32.to_le_bytes());
    let checksum = format::checksum(&damaged[retention.offset as usize..][..16]);
    let damaged = with_header(&damaged, |h| {
        h.columns
            .iter_mut()
            .find(|c| c.name == "retention")
            .unwrap()
            .data
            .checksum = checksum;
    });
    let store = Store::from_bytes(&damaged).unwrap();
    let message = store.verify().unwrap_err().to_string();
    assert!(
        message.contains("column `retention`, row 1 (customer 11): 1.5 is outside [0, 1]"),
        "{message}"
    );
}

#[test]
fn verify_catches_duplicate_ids_behind_a_consistent_checksum() {
    let bytes = sample_store_bytes();
    let ids = column_section(&header_of(&bytes), "customer_id");
    let mut damaged = bytes;
    let at = ids.offset as usize + 8;
    damaged[at..at + 8].copy_from_slice(&10u64.to_le_bytes());
    let checksum = format::checksum(&damaged[ids.offset as usize..][..ids.len as usize]);
    let damaged = with_header(&damaged, |h| h.columns[0].data.checksum = checksum);
    let store = Store::from_bytes(&damaged).unwrap();
    let message = store.verify().unwrap_err().to_string();
    assert!(message.contains("duplicated or missing"), "{message}");
}

#[test]
fn every_flipped_byte_of_the_id_index_fails_open_or_leaves_every_lookup_correct() {
    let bytes = sample_store_bytes();
    let index = header_of(&bytes).id_index;
    let mut opened = 0;
    for position in index.offset as usize..(index.offset + index.len) as usize {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[position] ^= flip;
            match Store::from_bytes(&damaged) {
                Err(error) => {
                    let message = error.to_string();
                    assert!(message.contains("id index: "), "{message}");
                }
                Ok(store) => {
                    opened += 1;
                    for (row, &id) in [10u64, 11, 12, 13].iter().enumerate() {
                        assert_eq!(
                            store.row_of(crv::CustomerId(id)),
                            Some(row),
                            "byte {position}"
                        );
                    }
                }
            }
        }
    }
    // No single flipped byte gets past the structural check at open.
    assert_eq!(opened, 0);
}

#[test]
fn swapped_index_slots_pass_open_but_not_verify() {
    let bytes = sample_store_bytes();
    let index = header_of(&bytes).id_index;
    let slots: Vec<u32> = bytes[index.offset as usize..][..index.len as usize]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let occupied: Vec<usize> = (0..slots.len()).filter(|&s| slots[s] != u32::MAX).collect();
    let empty = (0..slots.len()).find(|&s| slots[s] == u32::MAX).unwrap();
    // Move one row to an empty slot: still every row once, but no longer on its probe path
    // (unless the empty slot happens to be the next one on it).
    let (from, to) = (occupied[0], empty);
    let mut damaged = bytes.clone();
    let at = |slot: usize| index.offset as usize + slot * 4;
    damaged[at(to)..at(to) + 4].copy_from_slice(&slots[from].to_le_bytes());
    damaged[at(from)..at(from) + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let store = Store::from_bytes(&damaged).expect("the structural check sees every row once");
    let message = store.verify().unwrap_err().to_string();
    assert!(message.contains("id index: checksum"), "{message}");
}

/// The CSV behind the format-version-1 golden file: every column kind, a text column with a
/// repeated and a non-ASCII value, ids out of order up to `u64::MAX`, `-0` and a subnormal.
const GOLDEN_V1_CSV: &str = "\
customer_id,margin,retention,cost,retention_cost,segment
42,120.5,0.8,3.25,1.5,gold
7,-4,0.5,1,0,basic
18446744073709551615,33.3,1,12.5,2,Zürich
0,-0,0,0,1e-40,gold
";

const GOLDEN_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden-v1.crv");

/// Today's writer's store of a golden file's CSV.
fn golden_bytes_from_todays_writer(csv: &str) -> Vec<u8> {
    let parsed = read_csv(csv.as_bytes(), "golden.csv", &mut |_| {}).unwrap();
    let mut bytes = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
    bytes
}

/// Asserts today's writer gives exactly the golden file's bytes.
fn assert_writer_produces(golden: &str, csv: &str) {
    let expected = std::fs::read(golden).unwrap();
    let written = golden_bytes_from_todays_writer(csv);
    assert_eq!(written.len(), expected.len(), "length");
    if let Some(at) = (0..expected.len()).find(|&i| written[i] != expected[i]) {
        panic!(
            "byte {at} differs from {golden}: a format change needs a new version and a new \
             golden file (docs/format.md)"
        );
    }
}

/// Rewrites tests/data/golden-v1.crv from today's writer. Run only when the format version
/// changes, and then as a new golden file (see docs/format.md): `cargo test --test store_format
/// -- --ignored regenerate`.
#[test]
#[ignore = "rewrites a committed golden file"]
fn regenerate_golden_v1() {
    std::fs::write(GOLDEN_V1, golden_bytes_from_todays_writer(GOLDEN_V1_CSV)).unwrap();
}

#[test]
fn the_golden_v1_file_opens_with_its_exact_columns_values_and_ids() {
    let store = Store::open(GOLDEN_V1).unwrap();
    assert_eq!(store.format_version(), 1);
    store.verify().unwrap();
    let names: Vec<&str> = store.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "margin",
            "retention",
            "cost",
            "retention_cost",
            "segment"
        ]
    );
    assert_eq!(store.ids(), &[42, 7, u64::MAX, 0]);
    let bits = |name: &str| -> Vec<u32> {
        store
            .numeric(name)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    let expected = |values: [f32; 4]| values.map(f32::to_bits).to_vec();
    assert_eq!(bits("margin"), expected([120.5, -4.0, 33.3, -0.0]));
    assert_eq!(bits("retention"), expected([0.8, 0.5, 1.0, 0.0]));
    assert_eq!(bits("cost"), expected([3.25, 1.0, 12.5, 0.0]));
    assert_eq!(bits("retention_cost"), expected([1.5, 0.0, 2.0, 1e-40]));
    let Some(Column::Text(segment)) = store.column("segment") else {
        panic!("segment is a text column");
    };
    assert_eq!(segment.codes, &[0, 1, 2, 0]);
    let values: Vec<_> = (0..4).map(|row| segment.value(row).unwrap()).collect();
    assert_eq!(values, ["gold", "basic", "Zürich", "gold"]);
    for (row, id) in [42, 7, u64::MAX, 0].into_iter().enumerate() {
        assert_eq!(store.row_of(crv::CustomerId(id)), Some(row));
    }
    assert_eq!(store.row_of(crv::CustomerId(1)), None);
}

#[test]
fn todays_writer_produces_the_golden_v1_bytes() {
    assert_writer_produces(GOLDEN_V1, GOLDEN_V1_CSV);
}

/// The CSV behind the format-version-2 golden file: text customer ids (one with a comma, one
/// non-ASCII, one that looks like a number), out of byte order.
const GOLDEN_V2_CSV: &str = "\
customer_id,margin,retention,segment
C-0002,120.5,0.8,gold
\"Müller, K.\",-4,0.5,basic
007,33.3,1,gold
C-0001,0,0,Zürich
";

const GOLDEN_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden-v2.crv");

/// Rewrites tests/data/golden-v2.crv from today's writer (see [`regenerate_golden_v1`]).
#[test]
#[ignore = "rewrites a committed golden file"]
fn regenerate_golden_v2() {
    std::fs::write(GOLDEN_V2, golden_bytes_from_todays_writer(GOLDEN_V2_CSV)).unwrap();
}

#[test]
fn the_golden_v2_file_opens_with_its_text_ids_in_byte_order() {
    let store = Store::open(GOLDEN_V2).unwrap();
    assert_eq!(store.format_version(), 2);
    store.verify().unwrap();
    let written = ["C-0002", "Müller, K.", "007", "C-0001"];
    let ids: Vec<String> = (0..4)
        .map(|row| store.customer_id(row).to_string())
        .collect();
    assert_eq!(ids, written);
    let sorted: Vec<&str> = store.text_ids().unwrap().iter().collect();
    assert_eq!(sorted, ["007", "C-0001", "C-0002", "Müller, K."]);
    assert_eq!(store.ids(), &[2, 3, 0, 1]);
    for (row, id) in written.into_iter().enumerate() {
        assert_eq!(store.row_of_external(id), Some(row));
    }
    assert_eq!(store.row_of_external("7"), None);
    assert_eq!(store.row_of_external("C-0003"), None);
    assert_eq!(store.numeric("margin").unwrap(), &[120.5, -4.0, 33.3, 0.0]);
}

#[test]
fn todays_writer_produces_the_golden_v2_bytes() {
    assert_writer_produces(GOLDEN_V2, GOLDEN_V2_CSV);
}

#[test]
fn text_ids_must_be_one_per_row_in_version_2_and_sorted_to_verify() {
    let bytes = std::fs::read(GOLDEN_V2).unwrap();
    let fewer = with_header(&bytes, |h| {
        h.columns[0].dictionary.as_mut().unwrap().entries = 3;
    });
    let message = open_error(&fewer);
    assert!(
        message.contains("offset section length")
            || message.contains("3 text customer ids for 4 rows"),
        "{message}"
    );
    // In a version-1 file a dictionary on `customer_id` is corrupt.
    let mut version_1 = bytes.clone();
    version_1[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert!(
        open_error(&version_1).contains("a dictionary must accompany exactly the text columns")
    );
    // Two ids swapped in the dictionary text: open passes, verify names the order.
    let header = header_of(&bytes);
    let text = header.columns[0].dictionary.as_ref().unwrap().bytes;
    let mut swapped = bytes.clone();
    let start = text.offset as usize;
    // "007C-0001..." -> "C-0001007..." keeps the offsets' char boundaries but breaks the order.
    swapped[start..start + 9].copy_from_slice(b"C-0001007");
    let damaged_text = &swapped[start..start + text.len as usize];
    let checksum = format::checksum(damaged_text);
    let swapped = with_header(&swapped, |h| {
        h.columns[0].dictionary.as_mut().unwrap().bytes.checksum = checksum;
    });
    let store = Store::from_bytes(&swapped).expect("order is checked by verify");
    let message = store.verify().unwrap_err().to_string();
    assert!(message.contains("text customer ids: entry"), "{message}");
}
