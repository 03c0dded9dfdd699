//! gen -> import -> open: every value in the store equals the CSV's text rounded to f32, every
//! id looks up to its row, and text attributes decode to the CSV's strings.

use crv::store::{self, Column, Store};
use crv::{CustomerId, synthetic};

#[test]
fn generated_customers_survive_import_value_for_value() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("customers.csv");
    let store_path = dir.path().join("customers.crv");
    let file = std::fs::File::create(&csv_path).unwrap();
    synthetic::write_customers_csv(file, 20_000, 7).unwrap();

    let summary = store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    assert_eq!(summary.rows, 20_000);
    assert_eq!(summary.columns, synthetic::columns().len());
    let store = Store::open(&store_path).unwrap();
    store.verify().unwrap();

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, synthetic::columns());
    let columns: Vec<Option<Column<'_>>> = header.iter().map(|name| store.column(name)).collect();
    for (row, record) in reader.records().enumerate() {
        let record = record.unwrap();
        for ((name, column), text) in header.iter().zip(&columns).zip(record.iter()) {
            match column.expect("every CSV column is stored") {
                Column::U64(ids) => {
                    let id: u64 = text.parse().unwrap();
                    assert_eq!(ids[row], id);
                    assert_eq!(store.row_of(CustomerId(id)), Some(row));
                }
                Column::F32(values) => {
                    let expected: f32 = text.parse().unwrap();
                    assert_eq!(values[row], expected, "row {row}, column {name}: `{text}`");
                }
                Column::Text(values) => assert_eq!(values.value(row), Some(text)),
            }
        }
    }
}

#[test]
fn generated_text_attributes_are_dictionary_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("c.csv");
    let store_path = dir.path().join("c.crv");
    synthetic::write_customers_csv(std::fs::File::create(&csv_path).unwrap(), 5_000, 1).unwrap();
    store::import(&csv_path, &store_path, &mut |_| {}).unwrap();
    let store = Store::open(&store_path).unwrap();
    for (name, distinct) in [("segment", 4), ("region", 5)] {
        let Some(Column::Text(text)) = store.column(name) else {
            panic!("{name} is text");
        };
        assert_eq!(text.dictionary.len(), distinct, "{name}");
    }
}
