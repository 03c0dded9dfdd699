//! Customers given as Arrow record batches (a pyarrow or polars table, a Spark partition): checked
//! as `crv import` checks a CSV and held as an in-memory [`Store`], so everything that works on
//! a store file (scoring, tiers, selection, filters) works on them unchanged.
//!
//! Columns by type: `customer_id` holds whole numbers `>= 0` without nulls ([`read_ids`], the
//! one place ids are read); the known numeric columns (docs/model.md) accept any integer,
//! float or decimal type and are checked against their domain, a null counting as zero except
//! in `margin` and `retention`, which require a value; other numeric columns become numeric
//! attributes (no nulls), and text columns (plain, large, view or dictionary-encoded) text
//! attributes, a null reading as the empty text. Numbers are stored as f32, rounded to nearest.
//! Errors name the input, the 0-based row and the column.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use super::Store;
use super::format::{self, ID_COLUMN};
use super::id_index;
use super::schema::{self, Domain};
use super::writer::{ColumnValues, Table, TableColumn};
use crate::error::{Error, Result, quote};

/// The customers of `batches` (all of `schema`) as an in-memory store; `source` names the input
/// in errors (`<table>`, a file name, a partition).
pub fn store_from_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    source: &str,
) -> Result<Store> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let whole = |message: String| Error::ArrowInput {
        input: source.to_string(),
        message,
    };
    if rows as u64 > format::MAX_ROWS {
        return Err(whole(format!(
            "{rows} rows exceed the limit of {}",
            format::MAX_ROWS
        )));
    }
    if rows == 0 {
        return Err(whole("no customer rows".to_string()));
    }
    let id_position = schema.index_of(ID_COLUMN).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        whole(format!(
            "no `{ID_COLUMN}` column (found: {})",
            quote(&names.join(", "))
        ))
    })?;
    let mut ids = Vec::with_capacity(rows);
    let mut columns = Vec::new();
    for (position, field) in schema.fields().iter().enumerate() {
        let at = |row: usize, message: String| Error::Arrow {
            input: source.to_string(),
            row: row as u64,
            column: field.name().clone(),
            message,
        };
        let mut reader =
            ColumnReader::new(field.name(), field.data_type(), position == id_position)
                .map_err(|message| whole(format!("column {}: {message}", quote(field.name()))))?;
        let mut start = 0;
        for batch in batches {
            let array = batch.column(position);
            reader
                .read(array.as_ref(), &mut ids)
                .map_err(|(row, message)| at(start + row, message))?;
            start += array.len();
        }
        if let Some(values) = reader.finish() {
            columns.push(TableColumn {
                name: field.name().clone(),
                values,
            });
        }
    }
    let id_slots = id_index::build(&ids).map_err(|duplicate| Error::Arrow {
        input: source.to_string(),
        row: duplicate.second_row as u64,
        column: ID_COLUMN.to_string(),
        message: format!(
            "duplicate customer_id {}, first seen in row {}",
            duplicate.id, duplicate.first_row
        ),
    })?;
    Store::in_memory(&Table { ids, columns }, &id_slots)
}

/// How one column is read, batch after batch.
enum ColumnReader {
    Id,
    Numeric {
        values: Vec<f32>,
        domain: Domain,
        /// `None`: nulls are errors with this message; `Some(v)`: a null reads as `v`.
        null: std::result::Result<f32, &'static str>,
    },
    Text {
        codes: Vec<u32>,
        lookup: HashMap<String, u32>,
        dictionary: Vec<String>,
    },
}

/// A row-relative error: the row within the batch and the message.
type RowError = (usize, String);

impl ColumnReader {
    fn new(name: &str, data_type: &DataType, is_id: bool) -> std::result::Result<Self, String> {
        if is_id {
            return match data_type {
                t if t.is_integer() => Ok(ColumnReader::Id),
                other => Err(format!(
                    "type {other} cannot hold customer ids (whole numbers from 0 to {})",
                    u64::MAX
                )),
            };
        }
        let known = schema::known(name);
        if is_number(data_type) {
            let null = match known {
                Some(known) if known.requires_value => Err("null value; this column is required"),
                Some(_) => Ok(0.0),
                None => Err("null value in a numeric attribute (fill it first, e.g. fill_null(0))"),
            };
            return Ok(ColumnReader::Numeric {
                values: Vec::new(),
                domain: Domain::of(name),
                null,
            });
        }
        if known.is_some() {
            return Err(format!(
                "type {data_type} is not numeric; this column holds numbers"
            ));
        }
        if is_text(data_type) {
            return Ok(ColumnReader::Text {
                codes: Vec::new(),
                lookup: HashMap::new(),
                dictionary: Vec::new(),
            });
        }
        Err(format!(
            "type {data_type} is neither numeric nor text (cast it, or leave the column out)"
        ))
    }

    fn read(&mut self, array: &dyn Array, ids: &mut Vec<u64>) -> std::result::Result<(), RowError> {
        match self {
            ColumnReader::Id => read_ids(array, ids),
            ColumnReader::Numeric {
                values,
                domain,
                null,
            } => {
                let start = values.len();
                push_numbers(array, values)?;
                for (row, value) in values[start..].iter_mut().enumerate() {
                    if array.is_null(row) {
                        *value = null.map_err(|why| (row, why.to_string()))?;
                    } else if let Some(why) = domain.violation(*value) {
                        return Err((row, format!("{value} {why}")));
                    }
                }
                Ok(())
            }
            ColumnReader::Text {
                codes,
                lookup,
                dictionary,
            } => {
                let mut push = |text: Option<&str>| {
                    let text = text.unwrap_or("");
                    let code = match lookup.get(text) {
                        Some(&code) => code,
                        None => {
                            let code = dictionary.len() as u32;
                            dictionary.push(text.to_string());
                            lookup.insert(text.to_string(), code);
                            code
                        }
                    };
                    codes.push(code);
                };
                match array.data_type() {
                    DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut push),
                    DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut push),
                    DataType::Utf8View => array.as_string_view().iter().for_each(&mut push),
                    _ => {
                        let dictionary = array
                            .as_any_dictionary_opt()
                            .expect("text columns are plain or dictionary-encoded (checked)");
                        let values = dictionary.values();
                        let keys = dictionary.normalized_keys();
                        let text = |index: usize| match values.data_type() {
                            DataType::LargeUtf8 => values.as_string::<i64>().value(index),
                            DataType::Utf8View => values.as_string_view().value(index),
                            _ => values.as_string::<i32>().value(index),
                        };
                        for (row, key) in keys.into_iter().enumerate() {
                            push((!array.is_null(row)).then(|| text(key)));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The stored column; `None` for the ids, which the store keeps apart.
    fn finish(self) -> Option<ColumnValues> {
        match self {
            ColumnReader::Id => None,
            ColumnReader::Numeric { values, .. } => Some(ColumnValues::F32(values)),
            ColumnReader::Text {
                codes, dictionary, ..
            } => Some(ColumnValues::Text { codes, dictionary }),
        }
    }
}

fn is_number(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)
        )
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, values) => {
            matches!(
                **values,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        }
        _ => false,
    }
}

/// Appends the customer ids of `array` (an integer type): every row must hold a whole number
/// `>= 0`. The one place customer ids are read from Arrow data.
pub fn read_ids(array: &dyn Array, ids: &mut Vec<u64>) -> std::result::Result<(), RowError> {
    if let Some(row) = (0..array.len()).find(|&row| array.is_null(row)) {
        return Err((row, "null customer_id".to_string()));
    }
    fn widen<T: ArrowPrimitiveType>(
        array: &dyn Array,
        ids: &mut Vec<u64>,
        id: impl Fn(T::Native) -> Option<u64>,
    ) -> std::result::Result<(), RowError>
    where
        T::Native: std::fmt::Display,
    {
        for (row, &value) in array.as_primitive::<T>().values().iter().enumerate() {
            ids.push(id(value).ok_or_else(|| {
                (
                    row,
                    format!(
                        "{value} is not a customer id (a whole number from 0 to {})",
                        u64::MAX
                    ),
                )
            })?);
        }
        Ok(())
    }
    match array.data_type() {
        DataType::UInt64 => {
            ids.extend_from_slice(array.as_primitive::<UInt64Type>().values());
            Ok(())
        }
        DataType::UInt32 => widen::<UInt32Type>(array, ids, |v| Some(u64::from(v))),
        DataType::UInt16 => widen::<UInt16Type>(array, ids, |v| Some(u64::from(v))),
        DataType::UInt8 => widen::<UInt8Type>(array, ids, |v| Some(u64::from(v))),
        DataType::Int64 => widen::<Int64Type>(array, ids, |v| u64::try_from(v).ok()),
        DataType::Int32 => widen::<Int32Type>(array, ids, |v| u64::try_from(v).ok()),
        DataType::Int16 => widen::<Int16Type>(array, ids, |v| u64::try_from(v).ok()),
        DataType::Int8 => widen::<Int8Type>(array, ids, |v| u64::try_from(v).ok()),
        other => unreachable!("customer ids are integers (checked), not {other}"),
    }
}

/// Appends `array`'s numbers as f32 (nulls as whatever the buffer holds: the caller replaces
/// them).
fn push_numbers(array: &dyn Array, values: &mut Vec<f32>) -> std::result::Result<(), RowError> {
    fn cast<T: ArrowPrimitiveType>(
        array: &dyn Array,
        values: &mut Vec<f32>,
        f: impl Fn(T::Native) -> f32,
    ) {
        values.extend(array.as_primitive::<T>().values().iter().map(|&v| f(v)));
    }
    match array.data_type() {
        DataType::Float32 => values.extend_from_slice(array.as_primitive::<Float32Type>().values()),
        DataType::Float64 => cast::<Float64Type>(array, values, |v| v as f32),
        DataType::Int8 => cast::<Int8Type>(array, values, f32::from),
        DataType::Int16 => cast::<Int16Type>(array, values, f32::from),
        DataType::Int32 => cast::<Int32Type>(array, values, |v| v as f32),
        DataType::Int64 => cast::<Int64Type>(array, values, |v| v as f32),
        DataType::UInt8 => cast::<UInt8Type>(array, values, f32::from),
        DataType::UInt16 => cast::<UInt16Type>(array, values, f32::from),
        DataType::UInt32 => cast::<UInt32Type>(array, values, |v| v as f32),
        DataType::UInt64 => cast::<UInt64Type>(array, values, |v| v as f32),
        DataType::Decimal128(_, scale) => {
            let scale = 10f64.powi(i32::from(*scale));
            cast::<Decimal128Type>(array, values, |v| (v as f64 / scale) as f32)
        }
        other => {
            unreachable!("numeric columns are integers, floats or decimals (checked), not {other}")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> (SchemaRef, RecordBatch) {
        let schema: SchemaRef = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let arrays = columns.into_iter().map(|(_, array)| array).collect();
        (
            schema.clone(),
            RecordBatch::try_new(schema, arrays).unwrap(),
        )
    }

    #[test]
    fn columns_arrive_as_the_csv_import_stores_them() {
        let (schema, first) = batch(vec![
            ("customer_id", Arc::new(Int64Array::from(vec![7, 3]))),
            ("margin", Arc::new(Float64Array::from(vec![10.5, 20.0]))),
            ("retention", Arc::new(Float64Array::from(vec![0.5, 0.9]))),
            ("cost", Arc::new(Float64Array::from(vec![Some(1.25), None]))),
            (
                "region",
                Arc::new(StringArray::from(vec![Some("north"), None])),
            ),
        ]);
        let second = first.slice(0, 1);
        let store = store_from_batches(&schema, &[first, second.clone()], "<t>");
        let error = store.unwrap_err().to_string();
        assert_eq!(
            error,
            "<t>: row 2, column `customer_id`: duplicate customer_id 7, first seen in row 0"
        );
        let (schema, only) = batch(vec![
            ("customer_id", Arc::new(Int64Array::from(vec![7, 3]))),
            ("margin", Arc::new(Float64Array::from(vec![10.5, 20.0]))),
            ("cost", Arc::new(Float64Array::from(vec![Some(1.25), None]))),
            (
                "region",
                Arc::new(StringArray::from(vec![Some("north"), None])),
            ),
        ]);
        let store = store_from_batches(&schema, &[only], "<t>").unwrap();
        assert_eq!(store.ids(), &[7, 3]);
        assert_eq!(store.numeric("margin").unwrap(), &[10.5, 20.0]);
        assert_eq!(store.numeric("cost").unwrap(), &[1.25, 0.0]);
        match store.column("region") {
            Some(crate::store::Column::Text(text)) => {
                assert_eq!(text.codes, &[0, 1]);
                assert_eq!(text.dictionary.get(1), Some(""));
            }
            _ => panic!("region is text"),
        }
        store.verify().unwrap();
    }

    #[test]
    fn bad_values_name_the_row_and_column() {
        let cases: Vec<(Vec<(&str, ArrayRef)>, &str)> = vec![
            (
                vec![(
                    "customer_id",
                    Arc::new(Int64Array::from(vec![Some(1), None])),
                )],
                "<t>: row 1, column `customer_id`: null customer_id",
            ),
            (
                vec![("customer_id", Arc::new(Int64Array::from(vec![1, -4])))],
                "<t>: row 1, column `customer_id`: -4 is not a customer id (a whole number from 0 to 18446744073709551615)",
            ),
            (
                vec![
                    ("customer_id", Arc::new(Int64Array::from(vec![1, 2]))),
                    ("retention", Arc::new(Float64Array::from(vec![0.5, 1.5]))),
                ],
                "<t>: row 1, column `retention`: 1.5 is outside [0, 1]; this column is a probability",
            ),
            (
                vec![
                    ("customer_id", Arc::new(Int64Array::from(vec![1, 2]))),
                    (
                        "margin",
                        Arc::new(Float64Array::from(vec![None, Some(1.0)])),
                    ),
                ],
                "<t>: row 0, column `margin`: null value; this column is required",
            ),
            (
                vec![
                    ("customer_id", Arc::new(Int64Array::from(vec![1]))),
                    ("margin", Arc::new(StringArray::from(vec!["x"]))),
                ],
                "<t>: column `margin`: type Utf8 is not numeric; this column holds numbers",
            ),
            (
                vec![("id", Arc::new(Int64Array::from(vec![1])))],
                "<t>: no `customer_id` column (found: `id`)",
            ),
        ];
        for (columns, expected) in cases {
            let (schema, batch) = batch(columns);
            let error = store_from_batches(&schema, &[batch], "<t>").unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
    }
}
