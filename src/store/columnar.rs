//! `crv import` of Parquet files (one file, or the part files of a warehouse unload) and Arrow
//! IPC files. The columns to store are chosen from the first file's schema (all of them, or a
//! projection). Every column is read by its own task, in parallel with the others: it decodes
//! its column chunk of each row group in file order and feeds it to the same column builder as
//! a CSV's ([`super::builder`], sized from the metadata's row count up front), so each builder
//! sees the values in the order a sequential read gives them, both imports apply the same
//! rules, and give the same store. Text attributes are read as dictionaries, so each distinct
//! value is looked up once per batch. Every error names the file, the row group (an IPC file's
//! record batch), the row (1-based within the file) and the column; of several, the one a
//! sequential read meets first.
//!
//! [`store_from_batches`] applies the same rules to record batches already in memory (a Python
//! table, a Spark partition), each batch counting as a row group.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type,
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;

use super::builder::{
    AttributeBuilder, ColumnBuilder, DuplicateId, IdBuilder, NumericBuilder, TableBuilder,
    exact_quotient,
};
use super::format::{self, ID_COLUMN};
use super::schema;
use super::writer::Table;
use crate::error::{Error, Result, quote};

/// The columnar formats `crv import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnarFormat {
    /// Apache Parquet.
    Parquet,
    /// The Arrow IPC file format (Feather v2).
    ArrowIpc,
}

impl ColumnarFormat {
    /// The format of a file, by its first bytes (`PAR1`, `ARROW1`), `None` for anything else.
    pub fn sniff(head: &[u8]) -> Option<ColumnarFormat> {
        if head.starts_with(b"PAR1") {
            Some(ColumnarFormat::Parquet)
        } else if head.starts_with(b"ARROW1") {
            Some(ColumnarFormat::ArrowIpc)
        } else {
            None
        }
    }
}

/// Rows per decoded batch: large enough to amortise the per-batch work, small enough that the
/// batch each column's task holds stays well under a MB.
const BATCH_ROWS: usize = 64 * 1024;

/// Input bytes (compressed) read between two progress reports: at least one row group. The
/// memory an import holds does not depend on it (each column's task holds one batch).
const WINDOW_BYTES: u64 = 64 << 20;

/// Where a row group sits: its file, its index there, and the rows before it.
#[derive(Debug, Clone, Copy)]
struct RowGroupPlace {
    file: usize,
    row_group: usize,
    /// Rows of the file before this row group.
    file_rows_before: u64,
    /// Rows of the whole import before this row group.
    rows_before: u64,
    /// Its rows, as the file's metadata says.
    rows: u64,
    /// Its bytes in the input, for progress.
    bytes: u64,
}

/// The batches of one column of one row group, in order.
type ColumnChunk<'a> = Box<dyn Iterator<Item = Result<ArrayRef>> + 'a>;

/// What [`fill_columns`] reads a column chunk with: the row group, and the column's position
/// among the chosen ones.
type ReadChunk<'a> = dyn Fn(&RowGroupPlace, usize) -> Result<ColumnChunk<'a>> + Sync + 'a;

/// One input file, opened and with its schema read.
struct Input {
    path: PathBuf,
    name: String,
    source: Source,
}

enum Source {
    Parquet(ArrowReaderMetadata),
    Ipc(Arc<Schema>),
}

impl Input {
    fn schema(&self) -> &Schema {
        match &self.source {
            Source::Parquet(metadata) => metadata.schema(),
            Source::Ipc(schema) => schema,
        }
    }
}

/// An error at a place in a file.
fn at(
    file: &str,
    row_group: Option<usize>,
    row: Option<u64>,
    column: Option<&str>,
    message: impl Into<String>,
) -> Error {
    Error::Columnar {
        file: file.to_string(),
        row_group,
        row,
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// Reads `files` (each Parquet or Arrow IPC, as `formats` says) into one table: the columns of
/// the first file, or `projection`; every file must have them. `progress` is called with the
/// bytes of the row groups read so far.
pub fn read_columnar(
    files: &[(PathBuf, ColumnarFormat)],
    projection: Option<&[String]>,
    progress: &mut dyn FnMut(u64),
) -> Result<(Table, Vec<u32>)> {
    let inputs = files
        .iter()
        .map(|(path, format)| open(path, *format))
        .collect::<Result<Vec<_>>>()?;
    let first = inputs.first().ok_or_else(|| Error::CsvFile {
        file: "<input>".to_string(),
        message: "no input files".to_string(),
    })?;
    let names = chosen_columns(first.schema(), &first.name, projection)?;

    let mut places = Vec::new();
    // Each file's position of every chosen column in its schema.
    let mut positions = Vec::with_capacity(inputs.len());
    let mut rows: u64 = 0;
    for (index, input) in inputs.iter().enumerate() {
        let schema = input.schema();
        let mut file_positions = Vec::with_capacity(names.len());
        for name in &names {
            let position = schema.index_of(name).map_err(|_| {
                at(&input.name, None, None, Some(name), format!(
                    "not in this file, but in {} (every file of an import needs the same columns)",
                    first.name
                ))
            })?;
            check_type(&input.name, name, schema.field(position).data_type())?;
            file_positions.push(position);
        }
        positions.push(file_positions);
        let mut file_rows = 0u64;
        for (row_group, (group_rows, bytes)) in row_groups(input)?.into_iter().enumerate() {
            places.push(RowGroupPlace {
                file: index,
                row_group,
                file_rows_before: file_rows,
                rows_before: rows,
                rows: group_rows,
                bytes,
            });
            file_rows += group_rows;
            rows += group_rows;
        }
        if rows > format::MAX_ROWS {
            return Err(at(
                &input.name,
                None,
                None,
                None,
                format!("more than {} customers", format::MAX_ROWS),
            ));
        }
    }
    if rows == 0 {
        return Err(Error::CsvFile {
            file: first.name.clone(),
            message: "no customer rows".to_string(),
        });
    }

    let files: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
    let read = |place: &RowGroupPlace, column: usize| {
        let position = positions[place.file][column];
        read_chunk(&inputs[place.file], place.row_group, position)
    };
    let mut builder = TableBuilder::new(names, rows as usize);
    let mut read_bytes = 0u64;
    let mut start = 0;
    while start < places.len() {
        let (mut end, mut bytes) = (start, 0);
        while end < places.len() && bytes < WINDOW_BYTES {
            bytes += places[end].bytes;
            end += 1;
        }
        fill_columns(&mut builder, &places, start..end, &files, &read)?;
        read_bytes += bytes;
        progress(read_bytes);
        start = end;
    }
    builder
        .finish()
        .map_err(|duplicate| duplicate_error(&duplicate, &places, &files))
}

/// Customers handed over as Arrow record batches (a pyarrow or polars table from Python, a Spark
/// partition) as an in-memory store, read by the rules of `crv import` (every column of
/// `schema`). `source` names the input in errors, where each batch counts as a row group.
pub fn store_from_batches(
    schema: &Schema,
    batches: &[RecordBatch],
    source: &str,
) -> Result<super::Store> {
    let names = chosen_columns(schema, source, None)?;
    for name in &names {
        let field = schema
            .field_with_name(name)
            .expect("chosen from this schema");
        check_type(source, name, field.data_type())?;
    }
    let mut places = Vec::with_capacity(batches.len());
    let mut rows = 0u64;
    for (row_group, batch) in batches.iter().enumerate() {
        places.push(RowGroupPlace {
            file: 0,
            row_group,
            file_rows_before: rows,
            rows_before: rows,
            rows: batch.num_rows() as u64,
            bytes: 0,
        });
        rows += batch.num_rows() as u64;
        if rows > format::MAX_ROWS {
            let limit = format!("more than {} customers", format::MAX_ROWS);
            return Err(at(source, None, None, None, limit));
        }
    }
    if rows == 0 {
        return Err(at(source, None, None, None, "no customer rows"));
    }
    let read = |place: &RowGroupPlace, column: usize| -> Result<ColumnChunk<'_>> {
        let name = &names[column];
        let array = batches[place.row_group]
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| missing(source, place.row_group, name));
        Ok(Box::new(std::iter::once(array)))
    };
    let mut builder = TableBuilder::new(names.clone(), rows as usize);
    fill_columns(&mut builder, &places, 0..places.len(), &[source], &read)?;
    let (table, id_slots) = builder
        .finish()
        .map_err(|duplicate| duplicate_error(&duplicate, &places, &[source]))?;
    super::Store::in_memory(&table, &id_slots)
}

/// The duplicate id's second appearance, with its first.
fn duplicate_error(duplicate: &DuplicateId, places: &[RowGroupPlace], files: &[&str]) -> Error {
    let locate = |row: usize| {
        let row = row as u64;
        let place = places[places.partition_point(|place| place.rows_before <= row) - 1];
        let file_row = place.file_rows_before + (row - place.rows_before) + 1;
        (place, file_row)
    };
    let (second, second_row) = locate(duplicate.second_row);
    let (first, first_row) = locate(duplicate.first_row);
    let first_file = if first.file == second.file {
        String::new()
    } else {
        format!(" of {}", files[first.file])
    };
    at(
        files[second.file],
        Some(second.row_group),
        Some(second_row),
        Some(ID_COLUMN),
        format!(
            "duplicate customer_id {}, first seen in row group {}, row {first_row}{first_file}",
            quote(&duplicate.id),
            first.row_group
        ),
    )
}

fn open(path: &Path, format: ColumnarFormat) -> Result<Input> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let source = match format {
        ColumnarFormat::Parquet => {
            let unreadable = |e: parquet::errors::ParquetError| {
                at(
                    &name,
                    None,
                    None,
                    None,
                    format!("not a readable Parquet file: {e}"),
                )
            };
            let plain =
                ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(unreadable)?;
            Source::Parquet(match text_attributes_as_dictionaries(plain.schema()) {
                // A file whose schema the reader does not take back as given keeps the plain one.
                Some(hinted) => ArrowReaderMetadata::try_new(
                    Arc::clone(plain.metadata()),
                    ArrowReaderOptions::new().with_schema(hinted),
                )
                .unwrap_or(plain),
                None => plain,
            })
        }
        ColumnarFormat::ArrowIpc => Source::Ipc(
            arrow_ipc::reader::FileReader::try_new(file, None)
                .map_err(|e| {
                    at(
                        &name,
                        None,
                        None,
                        None,
                        format!("not a readable Arrow IPC file: {e}"),
                    )
                })?
                .schema(),
        ),
    };
    Ok(Input {
        path: path.to_path_buf(),
        name,
        source,
    })
}

/// `schema` with every text attribute (a text column outside `customer_id` and the model's
/// columns) read as a dictionary of its text: Parquet writers dictionary-encode such columns,
/// and the reader then hands over each distinct value once per batch instead of a string per
/// row. `None` when there is no such column.
fn text_attributes_as_dictionaries(schema: &Schema) -> Option<Arc<Schema>> {
    let is_attribute = |field: &Field| {
        field.name() != ID_COLUMN
            && schema::known(field.name()).is_none()
            && matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8)
    };
    if !schema.fields().iter().any(|field| is_attribute(field)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let field = field.as_ref().clone();
            if is_attribute(&field) {
                let text = Box::new(field.data_type().clone());
                field.with_data_type(DataType::Dictionary(Box::new(DataType::Int32), text))
            } else {
                field
            }
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The row count and size of every row group (record batch) of a file: its compressed bytes
/// in a Parquet file, its bytes in memory for an IPC batch.
fn row_groups(input: &Input) -> Result<Vec<(u64, u64)>> {
    match &input.source {
        Source::Parquet(metadata) => Ok(metadata
            .metadata()
            .row_groups()
            .iter()
            .map(|group| {
                let rows = u64::try_from(group.num_rows()).unwrap_or(0);
                (rows, u64::try_from(group.compressed_size()).unwrap_or(0))
            })
            .collect()),
        Source::Ipc(_) => {
            let file = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
            let mut reader = arrow_ipc::reader::FileReader::try_new(file, None).map_err(|e| {
                at(
                    &input.name,
                    None,
                    None,
                    None,
                    format!("not a readable Arrow IPC file: {e}"),
                )
            })?;
            // An IPC file's footer lists its batches but not their rows: the batches are
            // read here for their lengths (IPC batches are the file's bytes, no decoding).
            let mut sizes = Vec::with_capacity(reader.num_batches());
            for index in 0..reader.num_batches() {
                reader
                    .set_index(index)
                    .map_err(|e| at(&input.name, Some(index), None, None, e.to_string()))?;
                let batch = reader
                    .next()
                    .transpose()
                    .map_err(|e| at(&input.name, Some(index), None, None, e.to_string()))?;
                sizes.push(batch.map_or((0, 0), |batch| {
                    let bytes = batch.get_array_memory_size() as u64;
                    (batch.num_rows() as u64, bytes)
                }));
            }
            Ok(sizes)
        }
    }
}

/// The columns to store: `projection` (each in the file, `customer_id` among them, no name
/// twice), or every column of the first file.
fn chosen_columns(
    schema: &Schema,
    file: &str,
    projection: Option<&[String]>,
) -> Result<Vec<String>> {
    let available: Vec<&str> = schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    let names: Vec<String> = match projection {
        Some(names) => names.to_vec(),
        None => available.iter().map(|name| name.to_string()).collect(),
    };
    for (position, name) in names.iter().enumerate() {
        if !available.contains(&name.as_str()) {
            return Err(at(
                file,
                None,
                None,
                Some(name),
                format!(
                    "no such column (the file has: {})",
                    quote(&available.join(", "))
                ),
            ));
        }
        if names[..position].contains(name) {
            return Err(at(file, None, None, Some(name), "column named twice"));
        }
    }
    if !names.iter().any(|name| name == ID_COLUMN) {
        return Err(at(
            file,
            None,
            None,
            None,
            format!("no `{ID_COLUMN}` column among {}", quote(&names.join(", "))),
        ));
    }
    Ok(names)
}

/// Whether a column of type `data_type` can be read at all (values are checked as they come).
fn check_type(file: &str, name: &str, data_type: &DataType) -> Result<()> {
    let readable = match data_type {
        DataType::Dictionary(_, values) => is_text(values),
        other => is_number(other) || is_text(other) || *other == DataType::Boolean,
    };
    let id_readable = is_whole(data_type)
        || is_text(data_type)
        || matches!(data_type, DataType::Dictionary(_, values) if is_text(values));
    if (name == ID_COLUMN && !id_readable) || !readable {
        return Err(at(
            file,
            None,
            None,
            Some(name),
            format!(
                "type {data_type} cannot be imported ({}); leave the column out with --columns",
                if name == ID_COLUMN {
                    "customer ids are integers, decimals without fractions, or text"
                } else {
                    "columns are numbers, decimals, booleans or text"
                }
            ),
        ));
    }
    Ok(())
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_whole(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        )
}

pub(crate) fn is_number(data_type: &DataType) -> bool {
    is_whole(data_type) || matches!(data_type, DataType::Float32 | DataType::Float64)
}

/// The batches of the column at `position` in `input`'s schema, of one row group (an IPC
/// file's record batch).
fn read_chunk(input: &Input, row_group: usize, position: usize) -> Result<ColumnChunk<'_>> {
    let failed = move |e: &dyn std::fmt::Display| {
        at(
            &input.name,
            Some(row_group),
            None,
            None,
            format!("cannot be read: {e}"),
        )
    };
    let only_column = move |batch: RecordBatch| {
        let name = input.schema().field(position).name();
        batch
            .columns()
            .first()
            .cloned()
            .ok_or_else(|| missing(&input.name, row_group, name))
    };
    let file = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
    match &input.source {
        Source::Parquet(metadata) => {
            let mask = ProjectionMask::roots(
                metadata.metadata().file_metadata().schema_descr(),
                [position],
            );
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
                .with_projection(mask)
                .with_row_groups(vec![row_group])
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| failed(&e))?;
            Ok(Box::new(reader.map(move |batch| {
                batch.map_err(|e| failed(&e)).and_then(only_column)
            })))
        }
        Source::Ipc(_) => {
            let mut reader = arrow_ipc::reader::FileReader::try_new(file, Some(vec![position]))
                .map_err(|e| failed(&e))?;
            reader.set_index(row_group).map_err(|e| failed(&e))?;
            let batch = reader.next();
            Ok(Box::new(batch.into_iter().map(move |batch| {
                batch.map_err(|e| failed(&e)).and_then(only_column)
            })))
        }
    }
}

fn missing(file: &str, row_group: usize, column: &str) -> Error {
    at(
        file,
        Some(row_group),
        None,
        Some(column),
        "missing from a row group",
    )
}

/// How far a read got when it failed, ordered as a sequential read (row group by row group;
/// in each, the readers opened, then batch by batch, column by column, decoded, then their
/// values checked) meets failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FailedAt {
    place: usize,
    stage: Stage,
    batch: usize,
    column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Open,
    Decode,
    Value,
}

/// Reads the row groups `window` of `places` into `builder`: every column in a task of its own
/// (in parallel), which reads that column's chunk of each row group, batch by batch, in file
/// order, so each column builder sees the values in the order a sequential read feeds them. Of
/// several failures, the one a sequential read meets first ([`FailedAt`]) is returned.
fn fill_columns(
    builder: &mut TableBuilder,
    places: &[RowGroupPlace],
    window: Range<usize>,
    files: &[&str],
    read: &ReadChunk<'_>,
) -> Result<()> {
    let failure = builder
        .columns
        .par_iter_mut()
        .zip(builder.names.par_iter())
        .enumerate()
        .filter_map(|(column, (values, name))| {
            window.clone().find_map(|index| {
                let place = &places[index];
                let failed = |stage, batch, error| {
                    let at = FailedAt {
                        place: index,
                        stage,
                        batch,
                        column,
                    };
                    Some((at, error))
                };
                let batches = match read(place, column) {
                    Ok(batches) => batches,
                    Err(error) => return failed(Stage::Open, 0, error),
                };
                let mut row = place.file_rows_before;
                let mut batch = 0;
                for array in batches {
                    let array = match array {
                        Ok(array) => array,
                        Err(error) => return failed(Stage::Decode, batch, error),
                    };
                    if let Err((offset, message)) = push_array(values, array.as_ref()) {
                        let error = at(
                            files[place.file],
                            Some(place.row_group),
                            Some(row + offset as u64 + 1),
                            Some(name),
                            message,
                        );
                        return failed(Stage::Value, batch, error);
                    }
                    row += array.len() as u64;
                    batch += 1;
                }
                // Every column must hold the row group's rows, or the columns would not line up.
                let read = row - place.file_rows_before;
                if read != place.rows {
                    let message = format!(
                        "cannot be read: {read} rows where the file's metadata says {}",
                        place.rows
                    );
                    let file = files[place.file];
                    let error = at(file, Some(place.row_group), None, Some(name), message);
                    return failed(Stage::Decode, batch, error);
                }
                None
            })
        })
        .min_by_key(|(at, _)| *at);
    match failure {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// A failed value: its row in the array and what is wrong.
type ValueError = (usize, String);

/// Every value of `array` into `column`, by the column's rule.
fn push_array(
    column: &mut ColumnBuilder,
    array: &dyn Array,
) -> std::result::Result<(), ValueError> {
    match column {
        ColumnBuilder::Id(ids) => push_ids(ids, array),
        ColumnBuilder::Numeric(numbers) => push_numeric(numbers, array),
        ColumnBuilder::Attribute(attribute) => push_attribute(attribute, array),
    }
}

fn push_ids(ids: &mut IdBuilder, array: &dyn Array) -> std::result::Result<(), ValueError> {
    if is_whole(array.data_type()) {
        return for_each_whole(array, |row, id| match id {
            None => Err((row, "null customer_id".to_string())),
            Some(Ok(id)) => {
                ids.push_number(id);
                Ok(())
            }
            Some(Err(text)) => Err((
                row,
                format!(
                    "{} is not a customer id (a whole number from 0 to {})",
                    quote(&text),
                    u64::MAX
                ),
            )),
        });
    }
    for_each_text(array, |row, text| match text {
        None => Err((row, "null customer_id".to_string())),
        Some(text) => ids.push_text(text).map_err(|message| (row, message)),
    })
}

fn push_numeric(
    numbers: &mut NumericBuilder,
    array: &dyn Array,
) -> std::result::Result<(), ValueError> {
    if is_number(array.data_type()) {
        // The common case, no null and every value in the domain, in bulk; otherwise value by
        // value, which names the first wrong one.
        if array.null_count() == 0 && numbers.append_checked(|values| append_numbers(array, values))
        {
            return Ok(());
        }
        return for_each_number(array, |row, value| {
            match value {
                None => numbers.push_missing("null"),
                Some(value) => numbers.push_value(value),
            }
            .map_err(|message| (row, message))
        });
    }
    if *array.data_type() == DataType::Boolean {
        return Err((0, "a boolean column where a number is expected".to_string()));
    }
    for_each_text(array, |row, text| {
        match text {
            None => numbers.push_missing("null"),
            Some(text) => numbers.push_text(text),
        }
        .map_err(|message| (row, message))
    })
}

fn push_attribute(
    attribute: &mut AttributeBuilder,
    array: &dyn Array,
) -> std::result::Result<(), ValueError> {
    let data_type = array.data_type();
    if is_number(data_type) {
        return for_each_number(array, |row, value| match value {
            // A missing value is the empty text, as an empty CSV cell is.
            None => attribute.push_text(b"").map_err(|message| (row, message)),
            Some(value) => attribute
                .push_number(value)
                .map_err(|message| (row, message)),
        });
    }
    if *data_type == DataType::Boolean {
        for (row, value) in array.as_boolean().iter().enumerate() {
            let text: &[u8] = match value {
                None => b"",
                Some(true) => b"true",
                Some(false) => b"false",
            };
            attribute
                .push_text(text)
                .map_err(|message| (row, message))?;
        }
        return Ok(());
    }
    if let Some(dictionary) = array.as_any_dictionary_opt() {
        // Each distinct value is looked up once per batch, not once per row, and on its
        // first use, so codes follow first appearance as a CSV's do.
        let texts = dictionary_values(dictionary.values().as_ref())?;
        let mut codes: Vec<Option<u32>> = vec![None; texts.len()];
        for (row, key) in dictionary.normalized_keys().into_iter().enumerate() {
            if dictionary.keys().is_null(row) {
                attribute.push_text(b"").map_err(|message| (row, message))?;
                continue;
            }
            let code = match codes.get(key).copied().flatten() {
                Some(code) => code,
                None => {
                    let code = attribute
                        .text_code(texts.get(key).copied().flatten().unwrap_or_default())
                        .map_err(|message| (row, message))?;
                    if let Some(slot) = codes.get_mut(key) {
                        *slot = Some(code);
                    }
                    code
                }
            };
            attribute.push_code(code);
        }
        return Ok(());
    }
    for_each_text(array, |row, text| {
        attribute
            .push_text(text.unwrap_or_default())
            .map_err(|message| (row, message))
    })
}

/// Calls `each` with every value of a number array as `f32` ([`append_numbers`]), `None` for
/// null.
fn for_each_number(
    array: &dyn Array,
    mut each: impl FnMut(usize, Option<f32>) -> std::result::Result<(), ValueError>,
) -> std::result::Result<(), ValueError> {
    let mut values = Vec::with_capacity(array.len());
    append_numbers(array, &mut values);
    for (row, value) in values.into_iter().enumerate() {
        each(row, array.is_valid(row).then_some(value))?;
    }
    Ok(())
}

/// Appends every value of a number array to `out` as `f32`, null slots included (as whatever
/// they hold): floats and integers rounded to nearest, decimals to the nearest `f32` of their
/// decimal value.
pub(crate) fn append_numbers(array: &dyn Array, out: &mut Vec<f32>) {
    macro_rules! each {
        ($type:ty, |$value:ident| $convert:expr) => {{
            let values = array.as_primitive::<$type>().values();
            out.extend(values.iter().map(|&$value| $convert))
        }};
    }
    match array.data_type() {
        DataType::Float32 => each!(Float32Type, |v| v),
        DataType::Float64 => each!(Float64Type, |v| v as f32),
        DataType::Int8 => each!(Int8Type, |v| f32::from(v)),
        DataType::Int16 => each!(Int16Type, |v| f32::from(v)),
        DataType::Int32 => each!(Int32Type, |v| v as f32),
        DataType::Int64 => each!(Int64Type, |v| v as f32),
        DataType::UInt8 => each!(UInt8Type, |v| f32::from(v)),
        DataType::UInt16 => each!(UInt16Type, |v| f32::from(v)),
        DataType::UInt32 => each!(UInt32Type, |v| v as f32),
        DataType::UInt64 => each!(UInt64Type, |v| v as f32),
        DataType::Decimal32(_, scale) => {
            each!(Decimal32Type, |v| decimal_to_f32(i128::from(v), *scale))
        }
        DataType::Decimal64(_, scale) => {
            each!(Decimal64Type, |v| decimal_to_f32(i128::from(v), *scale))
        }
        DataType::Decimal128(_, scale) => each!(Decimal128Type, |v| decimal_to_f32(v, *scale)),
        DataType::Decimal256(_, scale) => each!(Decimal256Type, |v| match v.to_i128() {
            Some(v) => decimal_to_f32(v, *scale),
            None => decimal_text_to_f32(&v.to_string(), *scale),
        }),
        other => unreachable!("is_number admits no {other}"),
    }
}

/// Calls `each` with every value of an integer or decimal array as a whole number: `Ok` for
/// one from 0 to 2^64 - 1, `Err` with its text for any other (negative, a fraction, too big).
fn for_each_whole(
    array: &dyn Array,
    mut each: impl FnMut(
        usize,
        Option<std::result::Result<u64, String>>,
    ) -> std::result::Result<(), ValueError>,
) -> std::result::Result<(), ValueError> {
    macro_rules! each {
        ($type:ty, $convert:expr) => {{
            for (row, value) in array.as_primitive::<$type>().iter().enumerate() {
                each(row, value.map($convert))?;
            }
            Ok(())
        }};
    }
    fn signed(v: impl Into<i128>) -> std::result::Result<u64, String> {
        let v = v.into();
        u64::try_from(v).map_err(|_| v.to_string())
    }
    match array.data_type() {
        DataType::Int8 => each!(Int8Type, signed),
        DataType::Int16 => each!(Int16Type, signed),
        DataType::Int32 => each!(Int32Type, signed),
        DataType::Int64 => each!(Int64Type, signed),
        DataType::UInt8 => each!(UInt8Type, |v| Ok(u64::from(v))),
        DataType::UInt16 => each!(UInt16Type, |v| Ok(u64::from(v))),
        DataType::UInt32 => each!(UInt32Type, |v| Ok(u64::from(v))),
        DataType::UInt64 => each!(UInt64Type, Ok),
        DataType::Decimal32(_, scale) => {
            each!(Decimal32Type, |v| whole_decimal(v.to_string(), *scale))
        }
        DataType::Decimal64(_, scale) => {
            each!(Decimal64Type, |v| whole_decimal(v.to_string(), *scale))
        }
        DataType::Decimal128(_, scale) => {
            each!(Decimal128Type, |v| whole_decimal(v.to_string(), *scale))
        }
        DataType::Decimal256(_, scale) => {
            each!(Decimal256Type, |v| whole_decimal(v.to_string(), *scale))
        }
        other => unreachable!("is_whole admits no {other}"),
    }
}

/// A decimal's unscaled digits and scale as a whole number, or its decimal text when it is not
/// one from 0 to 2^64 - 1.
fn whole_decimal(digits: String, scale: i8) -> std::result::Result<u64, String> {
    let text = decimal_text(&digits, scale);
    let whole = text.strip_suffix(|c| c == '.').unwrap_or(&text);
    let whole = whole
        .split_once('.')
        .map_or(Some(whole), |(integer, fraction)| {
            fraction.bytes().all(|b| b == b'0').then_some(integer)
        });
    whole
        .and_then(|whole| whole.parse::<u64>().ok())
        .ok_or(text)
}

/// The decimal text of unscaled `digits` (an integer's text) at `scale`: `12345` at 2 is
/// `123.45`, at -2 is `1234500`.
fn decimal_text(digits: &str, scale: i8) -> String {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let scale = i32::from(scale);
    if scale <= 0 {
        return format!(
            "{sign}{digits}{}",
            "0".repeat(scale.unsigned_abs() as usize)
        );
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (integer, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{integer}.{fraction}")
}

/// The nearest `f32` of the decimal `unscaled` x 10^-`scale`, as the CSV import rounds the same
/// number written in decimals: one division when both parts are exact in `f32`, the decimal
/// text through the correctly rounding parser otherwise.
fn decimal_to_f32(unscaled: i128, scale: i8) -> f32 {
    if let (Ok(magnitude), Ok(scale)) = (
        u32::try_from(unscaled.unsigned_abs()),
        usize::try_from(scale),
    ) && magnitude < 1 << 24
        && scale <= 7
    {
        let value = exact_quotient(magnitude, scale);
        return if unscaled < 0 { -value } else { value };
    }
    decimal_text_to_f32(&unscaled.to_string(), scale)
}

fn decimal_text_to_f32(digits: &str, scale: i8) -> f32 {
    fast_float2::parse::<f32, _>(decimal_text(digits, scale)).expect("decimal text is a number")
}

/// Calls `each` with every value of a text array (UTF-8 of any offset width, views, or a
/// dictionary of them) as bytes, `None` for null.
fn for_each_text<'a>(
    array: &'a dyn Array,
    mut each: impl FnMut(usize, Option<&'a [u8]>) -> std::result::Result<(), ValueError>,
) -> std::result::Result<(), ValueError> {
    macro_rules! each {
        ($iter:expr) => {{
            for (row, value) in $iter.enumerate() {
                each(row, value.map(str::as_bytes))?;
            }
            Ok(())
        }};
    }
    match array.data_type() {
        DataType::Utf8 => each!(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => each!(array.as_string::<i64>().iter()),
        DataType::Utf8View => each!(array.as_string_view().iter()),
        DataType::Dictionary(..) => dictionary_text(array, each),
        other => Err((
            0,
            format!("a column of type {other} where text is expected"),
        )),
    }
}

/// The values of a dictionary of text.
fn dictionary_values(values: &dyn Array) -> std::result::Result<Vec<Option<&[u8]>>, ValueError> {
    fn bytes(value: Option<&str>) -> Option<&[u8]> {
        value.map(str::as_bytes)
    }
    match values.data_type() {
        DataType::Utf8 => Ok(values.as_string::<i32>().iter().map(bytes).collect()),
        DataType::LargeUtf8 => Ok(values.as_string::<i64>().iter().map(bytes).collect()),
        DataType::Utf8View => Ok(values.as_string_view().iter().map(bytes).collect()),
        other => Err((0, format!("a dictionary of {other} where text is expected"))),
    }
}

/// [`for_each_text`] of a dictionary array: each row's value by its key.
fn dictionary_text<'a>(
    array: &'a dyn Array,
    mut each: impl FnMut(usize, Option<&'a [u8]>) -> std::result::Result<(), ValueError>,
) -> std::result::Result<(), ValueError> {
    let dictionary = array
        .as_any_dictionary_opt()
        .expect("called for dictionary arrays");
    let texts = dictionary_values(dictionary.values().as_ref())?;
    let keys = dictionary.keys();
    for (row, key) in dictionary.normalized_keys().into_iter().enumerate() {
        let text = if keys.is_null(row) {
            None
        } else {
            texts.get(key).copied().flatten()
        };
        each(row, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_like_their_text() {
        for (unscaled, scale, text) in [
            (12345i128, 2i8, "123.45"),
            (-5, 3, "-0.005"),
            (7, -2, "700"),
            (123_456_789_012_345, 4, "12345678901.2345"),
            (1, 20, "0.00000000000000000001"),
        ] {
            assert_eq!(decimal_text(&unscaled.to_string(), scale), text);
            let want: f32 = text.parse().unwrap();
            assert_eq!(
                decimal_to_f32(unscaled, scale).to_bits(),
                want.to_bits(),
                "{text}"
            );
        }
    }

    #[test]
    fn whole_decimals_are_ids_and_fractions_are_not() {
        assert_eq!(whole_decimal("12300".to_string(), 2), Ok(123));
        assert_eq!(whole_decimal("12345".to_string(), 0), Ok(12345));
        assert_eq!(
            whole_decimal("12345".to_string(), 2),
            Err("123.45".to_string())
        );
        assert_eq!(whole_decimal("-1".to_string(), 0), Err("-1".to_string()));
        assert_eq!(whole_decimal("5".to_string(), -1), Ok(50));
    }
}
