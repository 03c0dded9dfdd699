//! The bodies of the store's fuzz targets, in the library so that `fuzz/` and the test that
//! replays the committed corpus run exactly the same code. Each must return normally on any
//! input: an error is a fine answer, a panic is a bug.

use super::csv::read_csv;
use super::{Column, Store, writer};
use crate::model::CustomerId;

/// Arbitrary bytes as a store: open, read every column and dictionary entry, look up every id,
/// verify.
pub fn store_from_bytes(bytes: &[u8]) {
    let Ok(store) = Store::from_bytes(bytes) else {
        return;
    };
    read_everything(&store);
    let _ = store.verify();
}

/// Arbitrary bytes as a CSV export: parse; when it parses, the store written from it must
/// reopen, verify and give back every id.
///
/// # Panics
/// When a CSV that imports cleanly yields a store that does not reopen or verify.
pub fn csv_import(bytes: &[u8]) {
    let Ok(parsed) = read_csv(bytes, "<fuzz>", &mut |_| {}) else {
        return;
    };
    let mut encoded = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut encoded)
        .expect("writing to memory cannot fail");
    let store = Store::from_bytes(&encoded).expect("a store crv wrote must reopen");
    store.verify().expect("a store crv wrote must verify");
    assert_eq!(store.ids(), parsed.table.ids.as_slice());
    read_everything(&store);
}

fn read_everything(store: &Store) {
    let mut checksum = 0u64;
    for meta in store.columns() {
        match store.column(&meta.name) {
            Some(Column::U64(values)) => checksum ^= values.iter().fold(0, |a, &v| a ^ v),
            Some(Column::F32(values)) => {
                checksum ^= values.iter().fold(0, |a, &v| a ^ u64::from(v.to_bits()))
            }
            Some(Column::Text(text)) => {
                for row in 0..text.codes.len() {
                    checksum ^= text.value(row).map_or(0, |s| s.len() as u64);
                }
                checksum ^= text.dictionary.iter().map(|s| s.len() as u64).sum::<u64>();
            }
            None => unreachable!("every column the header names can be viewed"),
        }
    }
    for &id in store.ids() {
        checksum ^= store.row_of(CustomerId(id)).map_or(0, |row| row as u64);
    }
    std::hint::black_box(checksum);
}
