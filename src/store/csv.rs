//! `crv import` of a CSV export: streams it into columns, checking every value on the way
//! ([`super::builder`]). Every error names the file, the line, the column and the offending
//! text.

use std::io::Read;

use super::builder::TableBuilder;
use super::format::{self, ID_COLUMN};
use super::writer::Table;
use crate::capped_records::CappedRecords;
use crate::error::{Error, Result, quote, quote_bytes};
use crate::limits::MAX_STORE_RECORD_BYTES;

/// A parsed CSV, ready to be written: the columns and the id index over them.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCsv {
    /// The customers, column by column.
    pub table: Table,
    /// The id index slots for `table.ids`.
    pub id_slots: Vec<u32>,
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
        .from_reader(CappedRecords::new(input, MAX_STORE_RECORD_BYTES));
    // A read error has no position of its own: the record being read starts on the line
    // after the last one read.
    let csv_error = |e: ::csv::Error, next_line: u64| {
        let line = e.position().map_or(next_line, |p| p.line());
        Error::Csv {
            file: file.to_string(),
            line,
            column: "-".to_string(),
            message: e.to_string(),
        }
    };
    let header = reader.byte_headers().map_err(|e| csv_error(e, 1))?.clone();
    let mut builder = TableBuilder::new(read_header(&header, file)?, 0);
    let names = builder.names.clone();

    let mut lines = LineMap { runs: Vec::new() };
    let mut record = ::csv::ByteRecord::new();
    loop {
        let next_line = reader.position().line();
        if !(reader.read_byte_record(&mut record)).map_err(|e| csv_error(e, next_line))? {
            break;
        }
        let position = record
            .position()
            .expect("records read from a reader have a position");
        let line = position.line();
        let row = builder.rows();
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
        for ((field, column), name) in record.iter().zip(&mut builder.columns).zip(&names) {
            column.push_text(field).map_err(|message| Error::Csv {
                file: file.to_string(),
                line,
                column: name.clone(),
                message,
            })?;
        }
        if row.is_multiple_of(65_536) {
            progress(position.byte());
        }
    }
    if builder.rows() == 0 {
        return Err(Error::CsvFile {
            file: file.to_string(),
            message: "no customer rows after the header".to_string(),
        });
    }
    progress(reader.position().byte());

    let (table, id_slots) = builder.finish().map_err(|duplicate| Error::Csv {
        file: file.to_string(),
        line: lines.line_of(duplicate.second_row),
        column: ID_COLUMN.to_string(),
        message: format!(
            "duplicate customer_id {}, first seen on line {}",
            duplicate.id,
            lines.line_of(duplicate.first_row)
        ),
    })?;
    Ok(ParsedCsv { table, id_slots })
}

/// Column names; `customer_id` is required, names are unique.
fn read_header(header: &::csv::ByteRecord, file: &str) -> Result<Vec<String>> {
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
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::builder::parse_short_decimal;
    use crate::store::writer::ColumnValues;

    fn parse(csv: &str) -> Result<ParsedCsv> {
        read_csv(csv.as_bytes(), "t.csv", &mut |_| {})
    }

    #[test]
    fn a_record_past_the_cap_is_an_error_naming_its_line() {
        let long = "x".repeat(MAX_STORE_RECORD_BYTES);
        let message = parse(&format!("customer_id,note\n1,a\n2,{long}\n3,b\n"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 3") && message.contains("record 3"),
            "{message}"
        );
        let unclosed = format!("customer_id,note\n1,\"{long}\n");
        let message = parse(&unclosed).unwrap_err().to_string();
        assert!(message.contains("closing quote"), "{message}");
        // A record at the cap is read.
        let at_cap = "y".repeat(MAX_STORE_RECORD_BYTES - 3);
        let parsed = parse(&format!("customer_id,note\n1,{at_cap}\n")).unwrap();
        assert_eq!(parsed.table.ids, vec![1]);
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
