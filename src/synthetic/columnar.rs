//! The Parquet form of synthetic customers (`crv gen -o customers.parquet`): the rows and values
//! of the CSV form, typed as a warehouse unload types them: `customer_id` Int64, the numeric
//! columns Float64, the text attributes strings (dictionary-encoded by the writer), snappy
//! compression, in row groups of a chosen size. Each row group's customers are drawn in
//! parallel ([`generate`] depends on the row alone), so the file is the same for any thread count.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use super::{ATTRIBUTES, Customer, MAX_CUSTOMERS, columns, generate};

/// Writes rows `0..customers` of `seed`'s data set as a Parquet file to `out`, in row groups of
/// `row_group_rows` customers (the last one may be smaller), and returns the bytes written.
///
/// # Errors
///
/// `InvalidInput` when `customers` exceeds [`MAX_CUSTOMERS`] or `row_group_rows` is 0, and any
/// error from `out`.
pub fn write_customers_parquet<W: Write + Send>(
    out: W,
    customers: u64,
    seed: u64,
    row_group_rows: usize,
) -> io::Result<u64> {
    if customers > MAX_CUSTOMERS || row_group_rows == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{customers} customers in row groups of {row_group_rows}: at most \
                 {MAX_CUSTOMERS} customers, at least one per row group"
            ),
        ));
    }
    let schema = schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let failed = |e: parquet::errors::ParquetError| io::Error::other(e.to_string());
    let mut writer =
        ArrowWriter::try_new(out, Arc::clone(&schema), Some(properties)).map_err(failed)?;
    let mut start = 0;
    while start < customers {
        let end = customers.min(start + row_group_rows as u64);
        let rows: Vec<Customer> = (start..end)
            .into_par_iter()
            .map(|row| generate(seed, row))
            .collect();
        writer.write(&batch(&schema, &rows)).map_err(failed)?;
        // One row group per batch, whatever the writer's buffering.
        writer.flush().map_err(failed)?;
        start = end;
    }
    writer.finish().map_err(failed)?;
    Ok(writer.bytes_written() as u64)
}

/// The file's schema: [`columns`] in order.
fn schema() -> Arc<Schema> {
    let fields = columns()
        .into_iter()
        .map(|name| {
            let data_type = if name == crate::store::schema::CUSTOMER_ID {
                DataType::Int64
            } else if ATTRIBUTES.contains(&name) {
                DataType::Utf8
            } else {
                DataType::Float64
            };
            Field::new(name, data_type, false)
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// `rows` as one record batch of `schema`.
fn batch(schema: &Arc<Schema>, rows: &[Customer]) -> RecordBatch {
    let ids = Int64Array::from_iter_values(rows.iter().map(|c| c.customer_id.0 as i64));
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(ids)];
    let known: Vec<_> = rows.iter().map(Customer::known_values).collect();
    for column in 0..Customer::KNOWN_VALUES {
        let values = known.iter().map(|values| values[column]);
        arrays.push(Arc::new(Float64Array::from_iter_values(values)));
    }
    arrays.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|c| c.segment.as_str()),
    )));
    arrays.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|c| c.region.as_str()),
    )));
    RecordBatch::try_new(Arc::clone(schema), arrays)
        .expect("one array of the rows' length per column of the schema")
}
