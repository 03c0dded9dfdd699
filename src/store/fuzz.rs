//! The bodies of the fuzz targets that read stores, CSV exports and `--where` expressions,
//! compiled only with the `fuzzing` feature (enabled by `fuzz/Cargo.toml` and, through a
//! dev-dependency, by `cargo test`), so that `fuzz/` and the test that replays the committed
//! corpus run exactly the same code. Each returns what became of its input; a broken property
//! panics, which is the fuzzer's finding.

use super::columnar::{ColumnarFormat, read_columnar};
use super::csv::read_csv;
use super::schema::Domain;
use super::writer::ColumnValues;
use super::{Column, Store, writer};
use crate::campaign::filter::{Filter, Scores};
use crate::model::{CustomerId, Tier};
use crate::table::TierColumn;

/// What became of one fuzz input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with an error (did not open, parse or evaluate).
    Refused,
    /// Opened (or parsed), then refused by a later check: `Store::verify`, or a filter that
    /// does not bind to the fixture store.
    Opened,
    /// Opened and verified (or parsed and evaluated).
    Verified,
}

/// Arbitrary bytes as a store: open, read every column and dictionary entry, look up every id,
/// verify.
///
/// # Panics
/// When an opened store breaks a property: a column's length is not the row count; a lookup
/// answers a row holding another id, or the batched lookup disagrees with the single one. When
/// a verified store breaks one: a value outside its domain, a text code outside its dictionary,
/// an id not found at its own row.
pub fn store_from_bytes(bytes: &[u8]) -> Outcome {
    let Ok(store) = Store::from_bytes(bytes) else {
        return Outcome::Refused;
    };
    check_lookups(&store);
    let verified = store.verify().is_ok();
    check_columns(&store, verified);
    if verified {
        for (row, &id) in store.ids().iter().enumerate() {
            assert_eq!(store.row_of(CustomerId(id)), Some(row), "verified id {id}");
        }
        Outcome::Verified
    } else {
        Outcome::Opened
    }
}

/// Arbitrary bytes as a CSV export: parse; when it parses, the store written from it must
/// reopen, verify, and give back every id, number and text as parsed.
///
/// # Panics
/// When a CSV that imports cleanly yields a store that does not reopen, verify or read back
/// what was parsed.
pub fn csv_import(bytes: &[u8]) -> Outcome {
    let Ok(parsed) = read_csv(bytes, "<fuzz>", &mut |_| {}) else {
        return Outcome::Refused;
    };
    assert_reads_back(&parsed.table, &parsed.id_slots)
}

/// Arbitrary bytes as a Parquet file (written to a temporary file, as `crv import` reads
/// files): imported with every column; when it imports, the store written from it must
/// reopen, verify, and give back every id, number and text as read. Refused, never a panic,
/// for anything else.
///
/// # Panics
/// When a Parquet file that imports cleanly yields a store that does not reopen, verify or
/// read back what was read.
pub fn parquet_import(bytes: &[u8]) -> Outcome {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::io::Write::write_all(&mut file, bytes).expect("writing a temporary file");
    let files = [(file.path().to_path_buf(), ColumnarFormat::Parquet)];
    let Ok((table, id_slots)) = read_columnar(&files, None, &mut |_| {}) else {
        return Outcome::Refused;
    };
    assert_reads_back(&table, &id_slots)
}

/// Writes `table` to memory and checks that the store reopens, verifies and holds `table`.
fn assert_reads_back(table: &writer::Table, id_slots: &[u32]) -> Outcome {
    let mut encoded = Vec::new();
    writer::encode(table, id_slots, &mut encoded).expect("writing to memory cannot fail");
    let store = Store::from_bytes(&encoded).expect("a store crv wrote must reopen");
    assert_eq!(
        store_from_bytes(&encoded),
        Outcome::Verified,
        "a store crv wrote must verify"
    );
    assert_eq!(store.ids(), table.ids.as_slice());
    let text_ids = store
        .text_ids()
        .map(|text| text.iter().map(str::to_string).collect());
    assert_eq!(text_ids, table.text_ids);
    for column in &table.columns {
        match (&column.values, store.column(&column.name)) {
            (ColumnValues::F32(values), Some(Column::F32(stored))) => {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(stored), bits(values), "column `{}`", column.name);
            }
            (ColumnValues::Text { codes, dictionary }, Some(Column::Text(stored))) => {
                for (row, &code) in codes.iter().enumerate() {
                    let parsed = dictionary[code as usize].as_str();
                    assert_eq!(stored.value(row), Some(parsed), "column `{}`", column.name);
                }
            }
            (_, other) => panic!("column `{}` reads back as {other:?}", column.name),
        }
    }
    Outcome::Verified
}

/// Arbitrary bytes as a `--where` expression, parsed and evaluated against a two-customer
/// store: refused (not UTF-8, or not an expression), parsed but not bound to the store (an
/// unknown column, a type mismatch), or evaluated to one answer per customer.
///
/// # Panics
/// When an evaluated filter's mask has another length than the store.
pub fn filter_parse(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Refused;
    };
    let Ok(filter) = Filter::parse(text) else {
        return Outcome::Refused;
    };
    let csv = "customer_id,margin,segment\n1,50,gold\n2,150,silver\n";
    let parsed = read_csv(csv.as_bytes(), "fuzz.csv", &mut |_| {}).expect("the fixture parses");
    let mut bytes = Vec::new();
    writer::encode(&parsed.table, &parsed.id_slots, &mut bytes)
        .expect("writing to memory cannot fail");
    let store = Store::from_bytes(&bytes).expect("the fixture store opens");
    let scores = Scores {
        crv: &[1.0, -1.0],
        tier: TierColumn::Stored(&[Tier::A, Tier::N]),
    };
    match filter.eligible(&store, scores) {
        Ok(mask) => {
            assert_eq!(mask.len(), 2, "one answer per customer");
            Outcome::Verified
        }
        Err(_) => Outcome::Opened,
    }
}

/// Every lookup of an opened store answers a row that holds the id asked for (the index may be
/// damaged, a lookup never lies), and the batched lookup agrees with the single one, for the
/// store's ids and for ids next to them.
fn check_lookups(store: &Store) {
    let ids = store.ids();
    let wanted: Vec<u64> = ids
        .iter()
        .flat_map(|&id| [id, id.wrapping_add(1)])
        .collect();
    let mut rows = Vec::new();
    store.rows_of(&wanted, &mut rows);
    for (&id, &row) in wanted.iter().zip(&rows) {
        assert_eq!(row, store.row_of(CustomerId(id)), "batched lookup of {id}");
        if let Some(row) = row {
            assert_eq!(ids[row], id, "lookup of {id} answered row {row}");
        }
    }
}

/// Every column has one value per row; in a verified store every number is in its domain and
/// every text code names a dictionary entry.
fn check_columns(store: &Store, verified: bool) {
    for meta in store.columns() {
        let column = store
            .column(&meta.name)
            .expect("every column the header names can be viewed");
        let rows = match column {
            Column::U64(values) => values.len(),
            Column::F32(values) => {
                if verified {
                    let domain = Domain::of(&meta.name);
                    assert!(values.iter().all(|&v| domain.violation(v).is_none()));
                }
                values.len()
            }
            Column::Text(text) => {
                let entries: usize = text.dictionary.iter().map(str::len).sum();
                std::hint::black_box(entries);
                if verified {
                    assert!((0..text.codes.len()).all(|row| text.value(row).is_some()));
                }
                text.codes.len()
            }
        };
        assert_eq!(rows, store.rows(), "column `{}`", meta.name);
    }
}
