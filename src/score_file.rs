//! The per-customer score file of `crv score -o`: one row per customer in store order,
//! `customer_id, crv, tier, rank, percentile` (and `p_alive, expected_purchases,
//! expected_spend` for a table valued by a purchase model), as CSV, or as Parquet (`.parquet`,
//! `.pq`) or Arrow IPC (`.arrow`, `.ipc`, `.feather`) by the file's extension. The columnar files
//! hold the same values: `customer_id` as `UInt64` or, for text ids, `Utf8`; `crv`,
//! `percentile` and the outlook as `Float32`; `tier` dictionary-encoded `Utf8`; `rank` `UInt32`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float32Array, Int8Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};

use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};
use crate::kernel::Tiers;
use crate::model::{CsvField, Tier};
use crate::table::Table;

/// The encodings of a score file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFormat {
    /// Comma-separated text with a header row.
    Csv,
    /// Apache Parquet, snappy-compressed.
    Parquet,
    /// The Arrow IPC file format.
    ArrowIpc,
}

impl ScoreFormat {
    /// The encoding a path's extension asks for; CSV for any other (and for stdout).
    pub fn of(path: &Path) -> ScoreFormat {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("parquet" | "pq") => ScoreFormat::Parquet,
            Some("arrow" | "ipc" | "feather") => ScoreFormat::ArrowIpc,
            _ => ScoreFormat::Csv,
        }
    }
}

/// Rows per record batch (and Parquet row group) of a columnar score file.
const BATCH_ROWS: usize = 1 << 20;

/// Writes `table`'s scores to `path` atomically, in the encoding its extension names.
pub fn write(path: &Path, table: &Table) -> Result<()> {
    match ScoreFormat::of(path) {
        ScoreFormat::Csv => write_csv(path, table),
        format => write_columnar(path, table, format),
    }
}

fn write_csv(path: &Path, table: &Table) -> Result<()> {
    write_atomically(path, |out| {
        let io = |e| Error::io(path, e);
        let outlook = table.outlook();
        let extra_header = if outlook.is_some() {
            ",p_alive,expected_purchases,expected_spend"
        } else {
            ""
        };
        writeln!(out, "customer_id,crv,tier,rank,percentile{extra_header}").map_err(io)?;
        let (crv, tiers) = (table.crv(), table.tiers());
        for (row, crv) in crv.iter().enumerate() {
            write!(
                out,
                "{},{},{},{},{}",
                CsvField(table.customer_id(row)),
                crv,
                tiers.tier[row],
                tiers.rank[row],
                tiers.percentile[row]
            )
            .map_err(io)?;
            match outlook {
                Some(outlook) => writeln!(
                    out,
                    ",{},{},{}",
                    outlook.p_alive[row],
                    outlook.expected_purchases[row],
                    outlook.expected_spend[row]
                ),
                None => writeln!(out),
            }
            .map_err(io)?;
        }
        Ok(())
    })
}

/// The schema of a score file of `table`.
fn schema(table: &Table) -> Arc<Schema> {
    let id_type = if table.store().text_ids().is_some() {
        DataType::Utf8
    } else {
        DataType::UInt64
    };
    schema_of(id_type, table.outlook().is_some())
}

/// The schema of a score file: ids of `id_type`, the outlook's columns when `outlook`.
fn schema_of(id_type: DataType, outlook: bool) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("customer_id", id_type, false),
        Field::new("crv", DataType::Float32, false),
        Field::new(
            "tier",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("rank", DataType::UInt32, false),
        Field::new("percentile", DataType::Float32, false),
    ];
    if outlook {
        for name in ["p_alive", "expected_purchases", "expected_spend"] {
            fields.push(Field::new(name, DataType::Float32, false));
        }
    }
    Arc::new(Schema::new(fields))
}

/// The tier column: each row's tier name, dictionary-encoded.
fn tier_array(tiers: &[Tier]) -> Result<ArrayRef> {
    let tier_names = StringArray::from_iter_values(Tier::ALL.iter().map(|tier| tier.as_str()));
    let tier_codes = Int8Array::from_iter_values(tiers.iter().map(|&tier| tier as u8 as i8));
    let tier_column = DictionaryArray::<Int8Type>::try_new(tier_codes, Arc::new(tier_names))
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    Ok(Arc::new(tier_column))
}

/// The score rows of customers scored without a [`Table`] ([`crate::arrow_scores`]): `ids` as
/// given (`UInt64`), one CRV per id and their tiers, moved into the batch, not copied.
pub fn scores_batch_of(ids: ArrayRef, crv: Vec<f32>, tiers: Tiers) -> Result<RecordBatch> {
    let schema = schema_of(ids.data_type().clone(), false);
    let columns: Vec<ArrayRef> = vec![
        ids,
        Arc::new(Float32Array::from(crv)),
        tier_array(&tiers.tier)?,
        Arc::new(UInt32Array::from(tiers.rank)),
        Arc::new(Float32Array::from(tiers.percentile)),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| Error::invalid("output", e.to_string()))
}

/// Every customer's score as one record batch in store order, the columns of a score file: the
/// way out to Python and Spark. Computes the ranks (the full sort) if not yet.
pub fn scores_batch(table: &Table) -> Result<RecordBatch> {
    batch(table, &schema(table), 0..table.rows())
}

/// The customer ids of `rows` as imported: `UInt64`, or `Utf8` for text ids.
pub fn id_array(table: &Table, rows: impl Iterator<Item = usize>) -> ArrayRef {
    match table.store().text_ids() {
        Some(_) => Arc::new(StringArray::from_iter_values(
            rows.map(|row| table.customer_id(row).to_string()),
        )),
        None => {
            let ids = table.ids();
            Arc::new(UInt64Array::from_iter_values(rows.map(|row| ids[row])))
        }
    }
}

/// Rows `range` of the score file as one record batch.
fn batch(
    table: &Table,
    schema: &Arc<Schema>,
    range: std::ops::Range<usize>,
) -> Result<RecordBatch> {
    let ids = id_array(table, range.clone());
    let tiers = table.tiers();
    let floats = |values: &[f32]| -> ArrayRef {
        Arc::new(Float32Array::from(values[range.clone()].to_vec()))
    };
    let mut columns: Vec<ArrayRef> = vec![
        ids,
        floats(table.crv()),
        tier_array(&tiers.tier[range.clone()])?,
        Arc::new(UInt32Array::from(tiers.rank[range.clone()].to_vec())),
        floats(&tiers.percentile),
    ];
    if let Some(outlook) = table.outlook() {
        columns.push(floats(&outlook.p_alive));
        columns.push(floats(&outlook.expected_purchases));
        columns.push(floats(&outlook.expected_spend));
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| Error::invalid("output", e.to_string()))
}

fn write_columnar(path: &Path, table: &Table, format: ScoreFormat) -> Result<()> {
    let schema = schema(table);
    let failed = |e: &dyn std::fmt::Display| Error::io(path, std::io::Error::other(e.to_string()));
    write_atomically(path, |out| {
        let batches = (0..table.rows()).step_by(BATCH_ROWS).map(|start| {
            batch(
                table,
                &schema,
                start..(start + BATCH_ROWS).min(table.rows()),
            )
        });
        match format {
            ScoreFormat::Parquet => {
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(BATCH_ROWS))
                    .build();
                let mut writer = parquet::arrow::ArrowWriter::try_new(
                    &mut *out,
                    Arc::clone(&schema),
                    Some(properties),
                )
                .map_err(|e| failed(&e))?;
                for batch in batches {
                    writer.write(&batch?).map_err(|e| failed(&e))?;
                }
                writer.close().map_err(|e| failed(&e))?;
            }
            ScoreFormat::ArrowIpc => {
                let mut writer = arrow_ipc::writer::FileWriter::try_new(&mut *out, &schema)
                    .map_err(|e| failed(&e))?;
                for batch in batches {
                    writer.write(&batch?).map_err(|e| failed(&e))?;
                }
                writer.finish().map_err(|e| failed(&e))?;
            }
            ScoreFormat::Csv => unreachable!("CSV is written by write_csv"),
        }
        Ok(())
    })
}
