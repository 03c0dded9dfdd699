//! `crv import` of Parquet and Arrow IPC: the same customers written as CSV and as Parquet (by
//! arrow-rs's writer, here in the test) give stores equal value for value and scores equal bit
//! for bit; part files in a directory or a glob, projections, decimals, nulls, dictionaries and
//! text ids; and every kind of bad input names its file, row group, row and column.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, UInt64Array,
};
use crv::kernel::TierScheme;
use crv::store::{self, Column, ImportOptions, Store};
use crv::{ScoreParams, Table, synthetic};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn write_parquet(path: &Path, batches: &[RecordBatch], rows_per_group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}

fn write_ipc(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batches[0].schema()).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
}

/// Generated customers as CSV text and as one Arrow batch of the same values: ids as `UInt64`,
/// numbers as `Float64` (as a CSV reader infers them), text as strings.
fn generated(customers: u64, seed: u64) -> (String, RecordBatch) {
    let mut csv = Vec::new();
    synthetic::write_customers_csv(&mut csv, customers, seed).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let columns = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cells: Vec<&str> = records.iter().map(|r| &r[i]).collect();
            let array: ArrayRef = if name == "customer_id" {
                Arc::new(UInt64Array::from_iter_values(
                    cells.iter().map(|c| c.parse::<u64>().unwrap()),
                ))
            } else if cells.iter().all(|c| c.parse::<f64>().is_ok()) {
                Arc::new(Float64Array::from_iter_values(
                    cells.iter().map(|c| c.parse::<f64>().unwrap()),
                ))
            } else {
                Arc::new(StringArray::from(cells))
            };
            (name.as_str(), array)
        })
        .collect::<Vec<_>>();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    (text, batch)
}

fn import(input: &Path, store: &Path) -> Store {
    store::import(input, store, &mut |_| {}).unwrap();
    Store::open(store).unwrap()
}

fn import_error(input: &Path, options: &ImportOptions) -> String {
    let out = input.with_extension("crv");
    let error = store::import_with(input, &out, options, &mut |_| {})
        .expect_err("bad input must not import")
        .to_string();
    assert!(!out.exists(), "a failed import left {}", out.display());
    error
}

/// Every column of `a` equals `b`'s: ids, text ids, numbers bit for bit, text row by row.
fn assert_same_customers(a: &Store, b: &Store) {
    assert_eq!(a.rows(), b.rows());
    assert_eq!(a.ids(), b.ids());
    let text = |s: &Store| {
        s.text_ids()
            .map(|t| t.iter().map(String::from).collect::<Vec<_>>())
    };
    assert_eq!(text(a), text(b));
    let names = |s: &Store| {
        s.columns()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b));
    for meta in a.columns().iter().skip(1) {
        match (a.column(&meta.name).unwrap(), b.column(&meta.name).unwrap()) {
            (Column::F32(x), Column::F32(y)) => {
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(x), bits(y), "column {}", meta.name);
            }
            (Column::Text(x), Column::Text(y)) => {
                for row in 0..a.rows() {
                    assert_eq!(
                        x.value(row),
                        y.value(row),
                        "column {}, row {row}",
                        meta.name
                    );
                }
            }
            _ => panic!("column {} has different kinds", meta.name),
        }
    }
}

fn scores(store: Store) -> (Vec<u32>, Vec<crv::Tier>, Vec<u32>) {
    let table = Table::score(
        Arc::new(store),
        ScoreParams::default(),
        TierScheme::default(),
    )
    .unwrap();
    let crv = table.crv().iter().map(|v| v.to_bits()).collect();
    (crv, table.tiers().tier.clone(), table.tiers().rank.clone())
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

#[test]
fn parquet_with_many_row_groups_imports_and_scores_as_the_csv_does() {
    let dir = Dir::new();
    let (csv, batch) = generated(5_000, 11);
    std::fs::write(dir.path("c.csv"), csv).unwrap();
    write_parquet(&dir.path("c.parquet"), std::slice::from_ref(&batch), 700);
    let from_csv = import(&dir.path("c.csv"), &dir.path("csv.crv"));
    let from_parquet = import(&dir.path("c.parquet"), &dir.path("pq.crv"));
    assert_same_customers(&from_csv, &from_parquet);
    // The very same store: the text attributes' dictionaries in the same order too.
    assert_same_bytes(&dir.path("csv.crv"), &dir.path("pq.crv"));
    from_parquet.verify().unwrap();
    assert_eq!(scores(from_csv), scores(from_parquet));

    // An Arrow IPC file of the same batch, in three record batches.
    let slices: Vec<RecordBatch> = [0, 2_000, 4_000]
        .iter()
        .map(|&at| batch.slice(at, 2_000.min(5_000 - at)))
        .collect();
    write_ipc(&dir.path("c.arrow"), &slices);
    let from_csv = Store::open(dir.path("csv.crv")).unwrap();
    assert_same_customers(
        &from_csv,
        &import(&dir.path("c.arrow"), &dir.path("ipc.crv")),
    );
    assert_same_bytes(&dir.path("csv.crv"), &dir.path("ipc.crv"));
}

fn assert_same_bytes(a: &Path, b: &Path) {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "the stores differ");
}

#[test]
fn an_attribute_of_numbers_in_one_part_and_text_in_the_next_is_coded_as_the_csv_codes_it() {
    let dir = Dir::new();
    let parts = dir.path("parts");
    std::fs::create_dir(&parts).unwrap();
    let part = |ids: [i64; 4], tag: ArrayRef| {
        batch(vec![
            ("customer_id", Arc::new(Int64Array::from(ids.to_vec()))),
            ("tag", tag),
        ])
    };
    let numbers = part(
        [1, 2, 3, 4],
        Arc::new(Float64Array::from(vec![2.5, 3.0, 2.5, 4.0])),
    );
    write_parquet(&parts.join("a.parquet"), &[numbers], 4);
    // Text, which the writer dictionary-encodes: the numbers before become text first, so
    // the codes follow first appearance as in the CSV.
    let text = part(
        [5, 6, 7, 8],
        Arc::new(StringArray::from(vec!["x", "3", "y", "x"])),
    );
    write_parquet(&parts.join("b.parquet"), &[text], 4);
    std::fs::write(
        dir.path("c.csv"),
        "customer_id,tag\n1,2.5\n2,3\n3,2.5\n4,4\n5,x\n6,3\n7,y\n8,x\n",
    )
    .unwrap();
    let from_csv = import(&dir.path("c.csv"), &dir.path("csv.crv"));
    assert_same_customers(&from_csv, &import(&parts, &dir.path("pq.crv")));
    assert_same_bytes(&dir.path("csv.crv"), &dir.path("pq.crv"));
}

#[test]
fn of_several_bad_values_the_one_a_sequential_read_meets_first_is_named() {
    // Row groups of 2 rows: row group by row group, then column by column.
    let bad = |margin: usize, retention: usize| {
        let mut margins = vec![10.0; 4];
        margins[margin - 1] = f64::NAN;
        let mut retentions = vec![0.5; 4];
        retentions[retention - 1] = 2.0;
        small(|c| {
            replace(c, "margin", Arc::new(Float64Array::from(margins)));
            replace(c, "retention", Arc::new(Float64Array::from(retentions)));
        })
    };
    let none = ImportOptions::default();
    let message = parquet_error(bad(4, 3), &none);
    assert!(
        message.contains("row group 1, row 4, column `margin`"),
        "{message}"
    );
    let message = parquet_error(bad(4, 1), &none);
    assert!(
        message.contains("row group 0, row 1, column `retention`"),
        "{message}"
    );

    // One row group of two batches: batch by batch, then column by column.
    let rows = 70_000;
    let big = |margin: usize, retention: usize| {
        let mut margins = vec![10.0; rows];
        margins[margin - 1] = f64::NAN;
        let mut retentions = vec![0.5; rows];
        retentions[retention - 1] = 2.0;
        batch(vec![
            (
                "customer_id",
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            ),
            ("margin", Arc::new(Float64Array::from(margins))),
            ("retention", Arc::new(Float64Array::from(retentions))),
        ])
    };
    let dir = Dir::new();
    for (margin, retention, want) in [
        (69_000, 10, "row 10, column `retention`"),
        (100, 10, "row 100, column `margin`"),
    ] {
        let path = dir.path("big.parquet");
        write_parquet(&path, &[big(margin, retention)], rows);
        let message = import_error(&path, &none);
        assert!(
            message.contains(&format!("row group 0, {want}")),
            "{message}"
        );
    }
}

#[test]
fn part_files_in_a_directory_or_a_glob_read_in_name_order_with_a_projection() {
    let dir = Dir::new();
    let (csv, batch) = generated(3_000, 5);
    std::fs::write(dir.path("c.csv"), csv).unwrap();
    let parts = dir.path("unload");
    std::fs::create_dir(&parts).unwrap();
    for (k, at) in [0usize, 1_000, 2_000].iter().enumerate() {
        write_parquet(
            &parts.join(format!("part-{k:05}.parquet")),
            &[batch.slice(*at, 1_000)],
            300,
        );
    }
    std::fs::write(parts.join("_SUCCESS"), "").unwrap();
    let from_csv = import(&dir.path("c.csv"), &dir.path("csv.crv"));
    assert_same_customers(&from_csv, &import(&parts, &dir.path("dir.crv")));
    let pattern = parts.join("part-*.parquet");
    assert_same_customers(&from_csv, &import(&pattern, &dir.path("glob.crv")));

    let columns = ["customer_id", "margin", "retention", "cost"]
        .map(String::from)
        .to_vec();
    let options = ImportOptions {
        columns: Some(columns.clone()),
    };
    store::import_with(&parts, &dir.path("some.crv"), &options, &mut |_| {}).unwrap();
    let some = Store::open(dir.path("some.crv")).unwrap();
    let names: Vec<&str> = some.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, columns);
    assert_eq!(
        some.numeric("margin").unwrap(),
        from_csv.numeric("margin").unwrap()
    );
    assert_eq!(some.ids(), from_csv.ids());
}

#[test]
fn decimals_nulls_dictionaries_and_text_ids_follow_the_csv_rules() {
    let dir = Dir::new();
    let mut segment = StringDictionaryBuilder::<Int32Type>::new();
    for value in [Some("gold"), None, Some("basic"), Some("gold")] {
        match value {
            Some(value) => segment.append_value(value),
            None => segment.append_null(),
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "customer_id",
            Arc::new(StringArray::from(vec![
                "C-0003", "C-0001", "sf-001Ab", "007",
            ])),
        ),
        (
            "margin",
            Arc::new(
                Decimal128Array::from(vec![12345, -50, 1, 99_999_999_999])
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ),
        (
            "retention",
            Arc::new(Float32Array::from(vec![0.5, 0.25, 1.0, 0.0])),
        ),
        (
            "cost",
            Arc::new(
                Decimal128Array::from(vec![Some(125), None, Some(0), Some(7)])
                    .with_precision_and_scale(9, 2)
                    .unwrap(),
            ),
        ),
        (
            "referral_value",
            Arc::new(Float64Array::from(vec![Some(1.5), None, None, Some(-2.0)])),
        ),
        ("segment", Arc::new(segment.finish())),
        (
            "visits",
            Arc::new(Int32Array::from(vec![Some(3), Some(4), None, Some(5)])),
        ),
        ("score", Arc::new(Int64Array::from(vec![10, 20, 30, 40]))),
        (
            "active",
            Arc::new(BooleanArray::from(vec![true, false, true, true])),
        ),
    ];
    write_parquet(&dir.path("c.parquet"), &[batch(columns)], 3);
    std::fs::write(
        dir.path("c.csv"),
        "customer_id,margin,retention,cost,referral_value,segment,visits,score,active\n\
         C-0003,123.45,0.5,1.25,1.5,gold,3,10,true\n\
         C-0001,-0.50,0.25,,,,4,20,false\n\
         sf-001Ab,0.01,1,0,,basic,,30,true\n\
         007,999999999.99,0,0.07,-2,gold,5,40,true\n",
    )
    .unwrap();
    let from_csv = import(&dir.path("c.csv"), &dir.path("csv.crv"));
    let from_parquet = import(&dir.path("c.parquet"), &dir.path("pq.crv"));
    assert_same_customers(&from_csv, &from_parquet);
    from_parquet.verify().unwrap();
    assert_eq!(from_parquet.format_version(), 2);
    // Text ids are kept as written, `007` included, and sorted by their bytes.
    let ids: Vec<String> = (0..4)
        .map(|row| from_parquet.customer_id(row).to_string())
        .collect();
    assert_eq!(ids, ["C-0003", "C-0001", "sf-001Ab", "007"]);
    assert_eq!(from_parquet.ids(), &[2, 1, 3, 0]);
    assert_eq!(from_parquet.row_of_external("sf-001Ab"), Some(2));
    assert_eq!(from_parquet.row_of_external("C-0002"), None);
    assert_eq!(
        from_parquet.numeric("cost").unwrap(),
        &[1.25, 0.0, 0.0, 0.07]
    );
    let Some(Column::Text(visits)) = from_parquet.column("visits") else {
        panic!("a numeric attribute with a null is text, as a CSV with an empty cell");
    };
    assert_eq!(visits.value(2), Some(""));
    assert_eq!(scores(from_csv), scores(from_parquet));
}

/// A one-column-changed copy of a small valid batch.
fn small(change: impl FnOnce(&mut Vec<(&'static str, ArrayRef)>)) -> RecordBatch {
    let mut columns: Vec<(&'static str, ArrayRef)> = vec![
        ("customer_id", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
        (
            "margin",
            Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 40.0])),
        ),
        (
            "retention",
            Arc::new(Float64Array::from(vec![0.5, 0.6, 0.7, 0.8])),
        ),
    ];
    change(&mut columns);
    batch(columns)
}

fn replace(columns: &mut [(&'static str, ArrayRef)], name: &str, array: ArrayRef) {
    columns.iter_mut().find(|(n, _)| *n == name).unwrap().1 = array;
}

fn parquet_error(batch: RecordBatch, options: &ImportOptions) -> String {
    let dir = Dir::new();
    let path = dir.path("bad.parquet");
    write_parquet(&path, &[batch], 2);
    let message = import_error(&path, options);
    assert!(message.contains("bad.parquet"), "{message}");
    message
}

#[test]
fn bad_values_name_file_row_group_row_and_column() {
    let none = ImportOptions::default();
    let cases: Vec<(RecordBatch, &str)> = vec![
        (
            small(|c| {
                replace(
                    c,
                    "customer_id",
                    Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4)])),
                )
            }),
            "row group 1, row 3, column `customer_id`: null customer_id",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "customer_id",
                    Arc::new(Int64Array::from(vec![1, 2, 3, -5])),
                )
            }),
            "row group 1, row 4, column `customer_id`: `-5` is not a customer id",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "customer_id",
                    Arc::new(StringArray::from(vec!["A", "B", "C", "A"])),
                )
            }),
            "row group 1, row 4, column `customer_id`: duplicate customer_id `A`, first seen in row group 0, row 1",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "customer_id",
                    Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
                )
            }),
            "column `customer_id`: type Float64 cannot be imported",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "retention",
                    Arc::new(Float64Array::from(vec![
                        Some(0.5),
                        None,
                        Some(0.5),
                        Some(0.5),
                    ])),
                )
            }),
            "row group 0, row 2, column `retention`: null; this column is required",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "retention",
                    Arc::new(Float64Array::from(vec![0.5, 0.5, 1.5, 0.5])),
                )
            }),
            "row group 1, row 3, column `retention`: 1.5 is outside [0, 1]",
        ),
        (
            small(|c| {
                replace(
                    c,
                    "margin",
                    Arc::new(StringArray::from(vec!["1", "x", "3", "4"])),
                )
            }),
            "row group 0, row 2, column `margin`: `x` is not a number",
        ),
        (
            small(|c| replace(c, "margin", Arc::new(BooleanArray::from(vec![true; 4])))),
            "column `margin`: a boolean column where a number is expected",
        ),
        (
            small(|c| {
                c.push((
                    "ratio",
                    Arc::new(Float64Array::from(vec![1.0, f64::NAN, 1.0, 1.0])),
                ))
            }),
            "row group 0, row 2, column `ratio`: NaN is not a finite number",
        ),
    ];
    for (batch, want) in cases {
        let message = parquet_error(batch, &none);
        assert!(message.contains(want), "{message}\nwanted: {want}");
    }
    let only = |names: &[&str]| ImportOptions {
        columns: Some(names.iter().map(|n| n.to_string()).collect()),
    };
    let message = parquet_error(small(|_| {}), &only(&["margin", "retention"]));
    assert!(message.contains("no `customer_id` column"), "{message}");
    let message = parquet_error(small(|_| {}), &only(&["customer_id", "tenure"]));
    assert!(
        message.contains("column `tenure`: no such column"),
        "{message}"
    );
}

#[test]
fn truncated_files_and_mismatched_parts_are_errors_not_panics() {
    let dir = Dir::new();
    let path = dir.path("c.parquet");
    write_parquet(&path, &[small(|_| {})], 2);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 9, bytes.len() / 2, 4, 0] {
        let truncated = dir.path(&format!("cut{cut}.parquet"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let error = store::import(&truncated, &dir.path("out.crv"), &mut |_| {});
        let message = error
            .expect_err("a truncated file must not import")
            .to_string();
        assert!(message.contains(&format!("cut{cut}.parquet")), "{message}");
    }
    // Damaged bytes inside a row group: an error naming the row group, never a panic.
    for at in (4..bytes.len() - 8).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5a;
        let target = dir.path("damaged.parquet");
        std::fs::write(&target, &damaged).unwrap();
        if let Ok(summary) = store::import(&target, &dir.path("out.crv"), &mut |_| {}) {
            assert!(summary.rows <= 4, "byte {at}");
        }
    }

    let parts = dir.path("parts");
    std::fs::create_dir(&parts).unwrap();
    write_parquet(&parts.join("a.parquet"), &[small(|_| {})], 2);
    let other = small(|c| {
        c.retain(|(name, _)| *name != "retention");
        replace(
            c,
            "customer_id",
            Arc::new(Int64Array::from(vec![5, 6, 7, 8])),
        );
    });
    write_parquet(&parts.join("b.parquet"), &[other], 2);
    let message = import_error(&parts, &ImportOptions::default());
    assert!(
        message.contains("b.parquet: column `retention`: not in this file"),
        "{message}"
    );
    std::fs::remove_file(parts.join("b.parquet")).unwrap();
    write_parquet(&parts.join("b.parquet"), &[small(|_| {})], 3);
    let message = import_error(&parts, &ImportOptions::default());
    assert!(
        message.contains("b.parquet: row group 0, row 1, column `customer_id`: duplicate customer_id `1`, first seen in row group 0, row 1 of")
            && message.contains("a.parquet"),
        "{message}"
    );
}

#[test]
fn score_files_in_parquet_and_arrow_hold_the_csv_score_files_values() {
    use arrow_array::types::Int8Type;
    use arrow_array::{DictionaryArray, UInt32Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = Dir::new();
    let (csv, _) = generated(2_000, 3);
    let text_csv: String = csv
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("{line}\n")
            } else {
                format!("C-{line}\n")
            }
        })
        .collect();
    for (name, content) in [("n.csv", csv), ("t.csv", text_csv)] {
        std::fs::write(dir.path(name), content).unwrap();
        let store = import(&dir.path(name), &dir.path("s.crv"));
        let text_ids = store.text_ids().is_some();
        let table = Table::score(
            Arc::new(store),
            ScoreParams::default(),
            TierScheme::default(),
        )
        .unwrap();
        crv::score_file::write(&dir.path("s.parquet"), &table).unwrap();
        crv::score_file::write(&dir.path("s.arrow"), &table).unwrap();
        let file = std::fs::File::open(dir.path("s.parquet")).unwrap();
        let parquet: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let file = std::fs::File::open(dir.path("s.arrow")).unwrap();
        let ipc: Vec<RecordBatch> = arrow_ipc::reader::FileReader::try_new(file, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for batches in [parquet, ipc] {
            let mut row = 0;
            for batch in &batches {
                let column = |name: &str| batch.column_by_name(name).unwrap().as_any();
                let crv = column("crv").downcast_ref::<Float32Array>().unwrap();
                let rank = column("rank").downcast_ref::<UInt32Array>().unwrap();
                let tier = column("tier")
                    .downcast_ref::<DictionaryArray<Int8Type>>()
                    .unwrap();
                let tier_names = tier
                    .values()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                for at in 0..batch.num_rows() {
                    let id = if text_ids {
                        column("customer_id")
                            .downcast_ref::<StringArray>()
                            .unwrap()
                            .value(at)
                            .to_string()
                    } else {
                        column("customer_id")
                            .downcast_ref::<UInt64Array>()
                            .unwrap()
                            .value(at)
                            .to_string()
                    };
                    assert_eq!(id, table.customer_id(row).to_string());
                    assert_eq!(crv.value(at).to_bits(), table.crv()[row].to_bits());
                    assert_eq!(rank.value(at), table.tiers().rank[row]);
                    let code = tier.keys().value(at) as usize;
                    assert_eq!(tier_names.value(code), table.tiers().tier[row].as_str());
                    row += 1;
                }
            }
            assert_eq!(row, 2_000);
        }
        std::fs::remove_file(dir.path("s.crv")).unwrap();
    }
}

#[test]
fn crv_gen_writes_the_same_customers_as_parquet_in_row_groups() {
    let dir = Dir::new();
    let generate = |output: &Path, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
            .args(["gen", "--customers", "2500", "--seed", "5", "-o"])
            .arg(output)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(generate(&dir.path("c.csv"), &[]).status.success());
    let written = generate(&dir.path("c.parquet"), &["--row-group-rows", "1000"]);
    assert!(written.status.success(), "{written:?}");
    let file = std::fs::File::open(dir.path("c.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    let groups: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|group| group.num_rows())
        .collect();
    assert_eq!(groups, [1000, 1000, 500]);
    assert_same_customers(
        &import(&dir.path("c.csv"), &dir.path("csv.crv")),
        &import(&dir.path("c.parquet"), &dir.path("pq.crv")),
    );
    let refused = generate(&dir.path("c.arrow"), &[]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("crv gen writes CSV or Parquet"),
        "{message}"
    );
    assert!(!dir.path("c.arrow").exists());
    let zero = generate(&dir.path("z.parquet"), &["--row-group-rows", "0"]);
    assert!(String::from_utf8_lossy(&zero.stderr).contains("between 1 and"));
}
