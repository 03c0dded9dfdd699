//! `crv import`: streams a CSV export into columns, checking every value on the way, then
//! writes the store atomically. Every error names the file, the line, the column and the
//! offending text; nothing is written unless the whole input is good.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::Path;

use super::format::{self, ID_COLUMN};
use super::id_index;
use super::schema::{self, Domain};
use super::writer::{self, ColumnValues, Table, TableColumn};
use crate::error::{Error, Result, quote, quote_bytes};

/// What `crv import` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Customers imported.
    pub rows: u64,
    /// Columns stored, `customer_id` included.
    pub columns: usize,
    /// Size of the CSV read.
    pub csv_bytes: u64,
    /// Size of the store written.
    pub store_bytes: u64,
}

/// A parsed CSV, ready to be written: the columns and the id index over them.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCsv {
    /// The customers, column by column.
    pub table: Table,
    /// The id index slots for `table.ids`.
    pub id_slots: Vec<u32>,
}

/// Imports the CSV at `csv_path` into a new store at `store_path`. `progress` is called now and
/// then with the number of CSV bytes consumed so far.
pub fn import(
    csv_path: &Path,
    store_path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    let file = File::open(csv_path).map_err(|e| Error::io(csv_path, e))?;
    let csv_bytes = file.metadata().map_err(|e| Error::io(csv_path, e))?.len();
    if let (Ok(input), Ok(output)) = (csv_path.canonicalize(), store_path.canonicalize())
        && input == output
    {
        return Err(Error::invalid(
            "output",
            format!(
                "{} would replace the CSV being imported",
                store_path.display()
            ),
        ));
    }
    let parsed = read_csv(file, &csv_path.display().to_string(), progress)?;
    let store_bytes = writer::write_file(&parsed.table, &parsed.id_slots, store_path)?;
    Ok(ImportSummary {
        rows: parsed.table.ids.len() as u64,
        columns: parsed.table.columns.len() + 1,
        csv_bytes,
        store_bytes,
    })
}

/// How one CSV column is read.
enum Reader {
    Id,
    Numeric {
        values: Vec<f32>,
        domain: Domain,
        requires_value: bool,
    },
    /// A column outside the model's table (docs/model.md): kept as text while reading, and stored as numbers
    /// if every distinct value turns out to be one.
    Attribute {
        codes: Vec<u32>,
        lookup: HashMap<Box<[u8]>, u32, BuildHasherDefault<FieldHasher>>,
        dictionary: Vec<String>,
    },
}

/// A multiply-rotate hash (the Fx hash of rustc) for dictionary lookups: one per text cell, so
/// SipHash's flood resistance is not worth its cost here (measured: 4% of import time).
#[derive(Default)]
struct FieldHasher(u64);

impl Hasher for FieldHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Lines of rows, stored sparsely: a new entry only where a quoted field spanned lines, so a
/// plain file costs one entry however long it is.
struct LineMap {
    /// `(row, line)`: rows from `row` on sit on consecutive lines from `line`.
    runs: Vec<(usize, u64)>,
}

impl LineMap {
    fn record(&mut self, row: usize, line: u64) {
        let predicted = self
            .runs
            .last()
            .map(|&(start, first)| first + (row - start) as u64);
        if predicted != Some(line) {
            self.runs.push((row, line));
        }
    }

    fn line_of(&self, row: usize) -> u64 {
        let run = self.runs.partition_point(|&(start, _)| start <= row) - 1;
        let (start, first) = self.runs[run];
        first + (row - start) as u64
    }
}

/// Reads a whole CSV (header row first; any column order) into columns and builds the id index.
/// `file` names the input in error messages.
pub fn read_csv(input: impl Read, file: &str, progress: &mut dyn FnMut(u64)) -> Result<ParsedCsv> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let csv_error = |e: ::csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        Error::Csv {
            file: file.to_string(),
            line,
            column: "-".to_string(),
            message: e.to_string(),
        }
    };
    let header = reader.byte_headers().map_err(csv_error)?.clone();
    let (names, mut readers) = read_header(&header, file)?;

    let mut ids: Vec<u64> = Vec::new();
    let mut lines = LineMap { runs: Vec::new() };
    let mut record = ::csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let position = record
            .position()
            .expect("records read from a reader have a position");
        let line = position.line();
        let row = ids.len();
        if row as u64 >= format::MAX_ROWS {
            return Err(Error::CsvFile {
                file: file.to_string(),
                message: format!("more than {} customers", format::MAX_ROWS),
            });
        }
        if record.len() != names.len() {
            let column = names
                .get(record.len())
                .cloned()
                .unwrap_or_else(|| format!("(extra field {})", names.len() + 1));
            return Err(Error::Csv {
                file: file.to_string(),
                line,
                column,
                message: format!(
                    "{} fields, but the header has {}",
                    record.len(),
                    names.len()
                ),
            });
        }
        lines.record(row, line);
        for ((field, reader), name) in record.iter().zip(&mut readers).zip(&names) {
            let at = |message: String| Error::Csv {
                file: file.to_string(),
                line,
                column: name.clone(),
                message,
            };
            match reader {
                Reader::Id => ids.push(parse_id(field).map_err(at)?),
                Reader::Numeric {
                    values,
                    domain,
                    requires_value,
                } => values.push(parse_number(field, *domain, *requires_value).map_err(at)?),
                Reader::Attribute {
                    codes,
                    lookup,
                    dictionary,
                } => {
                    let code = match lookup.get(field) {
                        Some(&code) => code,
                        None => {
                            let text = std::str::from_utf8(field).map_err(|_| {
                                at(format!("{} is not valid UTF-8", quote_bytes(field)))
                            })?;
                            let code = dictionary.len() as u32;
                            dictionary.push(text.to_string());
                            lookup.insert(field.into(), code);
                            code
                        }
                    };
                    codes.push(code);
                }
            }
        }
        if row.is_multiple_of(65_536) {
            progress(position.byte());
        }
    }
    if ids.is_empty() {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: "no customer rows after the header".to_string(),
        });
    }
    progress(reader.position().byte());

    let id_slots = id_index::build(&ids).map_err(|duplicate| Error::Csv {
        file: file.to_string(),
        line: lines.line_of(duplicate.second_row),
        column: ID_COLUMN.to_string(),
        message: format!(
            "duplicate customer_id {}, first seen on line {}",
            duplicate.id,
            lines.line_of(duplicate.first_row)
        ),
    })?;
    let columns = names
        .into_iter()
        .zip(readers)
        .filter_map(|(name, reader)| {
            let values = match reader {
                Reader::Id => return None,
                Reader::Numeric { values, .. } => ColumnValues::F32(values),
                Reader::Attribute {
                    codes, dictionary, ..
                } => attribute_values(codes, dictionary),
            };
            Some(TableColumn { name, values })
        })
        .collect();
    Ok(ParsedCsv {
        table: Table { ids, columns },
        id_slots,
    })
}

/// Column names and how to read each; `customer_id` is required, names are unique.
fn read_header(header: &::csv::ByteRecord, file: &str) -> Result<(Vec<String>, Vec<Reader>)> {
    let at = |column: String, message: String| Error::Csv {
        file: file.to_string(),
        line: 1,
        column,
        message,
    };
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: "empty file: no header row".to_string(),
        });
    }
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    let mut readers = Vec::with_capacity(header.len());
    for (position, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| {
                at(
                    format!("#{}", position + 1),
                    format!("header name {} is not valid UTF-8", quote_bytes(raw)),
                )
            })?
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(at(
                format!("#{}", position + 1),
                "empty column name in the header".to_string(),
            ));
        }
        if names.contains(&name) {
            return Err(at(
                name,
                "column name appears twice in the header".to_string(),
            ));
        }
        readers.push(if name == ID_COLUMN {
            Reader::Id
        } else if let Some(known) = schema::known(&name) {
            Reader::Numeric {
                values: Vec::new(),
                domain: known.domain,
                requires_value: known.requires_value,
            }
        } else {
            Reader::Attribute {
                codes: Vec::new(),
                lookup: HashMap::default(),
                dictionary: Vec::new(),
            }
        });
        names.push(name);
    }
    if !names.iter().any(|name| name == ID_COLUMN) {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: format!(
                "the header has no `{ID_COLUMN}` column (found: {})",
                quote(&names.join(", "))
            ),
        });
    }
    Ok((names, readers))
}

fn parse_id(field: &[u8]) -> std::result::Result<u64, String> {
    let text = field.trim_ascii();
    if text.is_empty() {
        return Err("empty customer_id".to_string());
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "{} is not a customer id (a whole number from 0 to {})",
                quote_bytes(field),
                u64::MAX
            )
        })
}

/// Parses straight to `f32` from the bytes, so the stored value is the correctly rounded f32 of
/// the text.
fn parse_number(
    field: &[u8],
    domain: Domain,
    requires_value: bool,
) -> std::result::Result<f32, String> {
    let text = field.trim_ascii();
    if text.is_empty() {
        return if requires_value {
            Err("empty value; this column is required".to_string())
        } else {
            Ok(0.0)
        };
    }
    let value = match parse_short_decimal(text) {
        Some(value) => value,
        None => fast_float2::parse::<f32, _>(text)
            .map_err(|_| format!("{} is not a number", quote_bytes(field)))?,
    };
    match domain.violation(value) {
        None => Ok(value),
        Some(why) => Err(format!("{} {why}", quote_bytes(field))),
    }
}

/// The common case of a CRM export, `[-]digits[.digits]` with at most 7 digits, in a few
/// nanoseconds: the digits form an integer m < 2^24 and the scale 10^k (k <= 7) is exact in f32,
/// so one IEEE division gives the correctly rounded f32 of m / 10^k (Clinger's fast path).
/// Anything else returns `None` and goes to the general parser. Measured: parsing took 28% of
/// import time before this path.
fn parse_short_decimal(text: &[u8]) -> Option<f32> {
    const POW10: [f32; 8] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let mut mantissa: u32 = 0;
    let mut count = 0;
    let mut fraction_digits = 0;
    let mut seen_point = false;
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u32::from(byte - b'0');
                count += 1;
                fraction_digits += usize::from(seen_point);
                if count > 7 {
                    return None;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let value = mantissa as f32 / POW10[fraction_digits];
    Some(if negative { -value } else { value })
}

/// An attribute is numeric when every distinct value parses as a finite number; otherwise text.
fn attribute_values(codes: Vec<u32>, dictionary: Vec<String>) -> ColumnValues {
    let numbers: Option<Vec<f32>> = dictionary
        .iter()
        .map(|text| {
            fast_float2::parse::<f32, _>(text.trim())
                .ok()
                .filter(|v| v.is_finite())
        })
        .collect();
    match numbers {
        Some(numbers) => {
            ColumnValues::F32(codes.iter().map(|&code| numbers[code as usize]).collect())
        }
        None => ColumnValues::Text { codes, dictionary },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(csv: &str) -> Result<ParsedCsv> {
        read_csv(csv.as_bytes(), "t.csv", &mut |_| {})
    }

    #[test]
    fn duplicate_lines_count_quoted_newlines() {
        let csv = "customer_id,note\n1,\"two\nlines\"\n2,x\n1,y\n";
        let message = parse(csv).unwrap_err().to_string();
        assert!(
            message.contains("line 5") && message.contains("first seen on line 2"),
            "{message}"
        );
    }

    #[test]
    fn attributes_are_numeric_only_when_every_value_is_a_number() {
        let parsed = parse("customer_id,score,label\n1,2.5,7\n2,3,x\n3,2.5,7\n").unwrap();
        let columns = &parsed.table.columns;
        assert_eq!(columns[0].values, ColumnValues::F32(vec![2.5, 3.0, 2.5]));
        assert_eq!(
            columns[1].values,
            ColumnValues::Text {
                codes: vec![0, 1, 0],
                dictionary: vec!["7".into(), "x".into()],
            }
        );
    }

    #[test]
    fn empty_optional_values_count_as_zero() {
        let parsed = parse("customer_id,margin,referral_value\n1,5,\n2,6, 3 \n").unwrap();
        assert_eq!(
            parsed.table.columns[1].values,
            ColumnValues::F32(vec![0.0, 3.0])
        );
    }

    #[test]
    fn header_names_must_be_unique_and_non_empty() {
        let message = parse("customer_id,margin,margin\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 1, column `margin`: column name appears twice"),
            "{message}"
        );
        let message = parse("customer_id,,margin\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("column `#2`: empty column name"),
            "{message}"
        );
    }

    proptest::proptest! {
        #[test]
        fn short_decimal_path_equals_the_general_parser(
            negative in proptest::bool::ANY,
            integer in 0u32..10_000_000,
            fraction in 0u32..10_000,
            fraction_digits in 0usize..5,
        ) {
            let sign = if negative { "-" } else { "" };
            let text = if fraction_digits == 0 {
                format!("{sign}{integer}")
            } else {
                format!("{sign}{integer}.{:0width$}", fraction % 10u32.pow(fraction_digits as u32), width = fraction_digits)
            };
            let general: f32 = text.parse().unwrap();
            match parse_short_decimal(text.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(fast.to_bits(), general.to_bits(), "{}", text),
                None => proptest::prop_assert!(text.bytes().filter(u8::is_ascii_digit).count() > 7),
            }
        }
    }

    #[test]
    fn short_decimal_path_declines_what_it_cannot_do_exactly() {
        for text in ["", "-", ".", "1e5", "12345678", "1.2.3", "+1", "0x10", " 1"] {
            assert_eq!(parse_short_decimal(text.as_bytes()), None, "{text}");
        }
        assert_eq!(parse_short_decimal(b".5"), Some(0.5));
        assert_eq!(parse_short_decimal(b"7."), Some(7.0));
    }

    #[test]
    fn numbers_round_to_the_nearest_f32_of_their_text() {
        let parsed = parse("customer_id,margin\n1,0.1\n2,16777217\n").unwrap();
        assert_eq!(
            parsed.table.columns[0].values,
            ColumnValues::F32(vec!["0.1".parse().unwrap(), "16777217".parse().unwrap()])
        );
    }
}
