//! The columns of an import while they are read, shared by the CSV reader and the Arrow
//! (Parquet, IPC) reader, so both apply the same rules: every value checked against its
//! column's domain, one rule for missing values (an error in a required column, zero in an
//! optional one), attributes dictionary-encoded, and customer ids kept as whole numbers until
//! one is not, then as text, each as written.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::slice::ParallelSliceMut;

use super::format::{self, ID_COLUMN};
use super::id_index;
use super::schema::{self, Domain};
use super::writer::{ColumnValues, Table, TableColumn};
use crate::error::quote_bytes;
use crate::limits::MAX_CUSTOMER_ID_BYTES;

/// How one input column is built.
pub enum ColumnBuilder {
    /// `customer_id`.
    Id(IdBuilder),
    /// A column of docs/model.md's table.
    Numeric(NumericBuilder),
    /// Any other column.
    Attribute(AttributeBuilder),
}

impl ColumnBuilder {
    /// The builder of the column called `name`, with room for `rows` values reserved (the
    /// row count when the input says it up front, as Parquet's metadata does; 0 otherwise).
    pub fn for_column(name: &str, rows: usize) -> ColumnBuilder {
        if name == ID_COLUMN {
            ColumnBuilder::Id(IdBuilder {
                numbers: reserved(rows),
                ..IdBuilder::default()
            })
        } else if let Some(known) = schema::known(name) {
            ColumnBuilder::Numeric(NumericBuilder {
                values: reserved(rows),
                domain: known.domain,
                requires_value: known.requires_value,
            })
        } else {
            ColumnBuilder::Attribute(AttributeBuilder {
                expected_rows: rows,
                ..AttributeBuilder::default()
            })
        }
    }

    /// A text cell (a CSV field): parsed by the column's rule.
    pub fn push_text(&mut self, field: &[u8]) -> Result<(), String> {
        match self {
            ColumnBuilder::Id(ids) => ids.push_text(field),
            ColumnBuilder::Numeric(numbers) => numbers.push_text(field),
            ColumnBuilder::Attribute(attribute) => attribute.push_text(field),
        }
    }
}

/// An empty column with room for `rows` values, or less: the row count comes from the input's
/// metadata, which may claim more than the file holds (and more than memory), so a reservation
/// the allocator refuses is left out, and the values grow as they come.
fn reserved<T>(rows: usize) -> Vec<T> {
    let mut values = Vec::new();
    // Refused: no reservation, as said above.
    let _ = values.try_reserve_exact(rows);
    values
}

/// A row of one column that holds a customer id already seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateId {
    /// The id as written.
    pub id: String,
    /// The row (0-based) where it first appears.
    pub first_row: usize,
    /// The row of its second appearance.
    pub second_row: usize,
}

/// The finished id column: what a [`Table`] needs, and the index over it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerIds {
    /// Row `i`'s id, or its position in `text_ids`.
    pub ids: Vec<u64>,
    /// The text ids in byte order, when any id is not a whole number.
    pub text_ids: Option<Vec<String>>,
    /// The id index over `ids`.
    pub id_slots: Vec<u32>,
}

/// The customer ids as they are read: whole numbers while every id is one, text from the first
/// that is not, every id then kept as written (`007` stays `007`).
#[derive(Debug, Default)]
pub struct IdBuilder {
    numbers: Vec<u64>,
    /// Whole numbers written other than plainly (`007`, `+7`), with their rows: the text they
    /// keep if the ids turn out to be text. Empty for a plain export.
    unusual: Vec<(usize, Box<str>)>,
    text: Option<Vec<Box<str>>>,
}

impl IdBuilder {
    /// Ids read so far.
    pub fn len(&self) -> usize {
        self.text.as_ref().map_or(self.numbers.len(), Vec::len)
    }

    /// Whether no id has been read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A whole-number id (an integer column).
    pub fn push_number(&mut self, id: u64) {
        match &mut self.text {
            None => self.numbers.push(id),
            Some(text) => text.push(id.to_string().into()),
        }
    }

    /// An id written as text: a whole number from 0 to 2^64 - 1 while the ids are numbers,
    /// otherwise text (spaces around it trimmed, at most [`MAX_CUSTOMER_ID_BYTES`] bytes).
    pub fn push_text(&mut self, field: &[u8]) -> Result<(), String> {
        let trimmed = field.trim_ascii();
        if trimmed.is_empty() {
            return Err("empty customer_id".to_string());
        }
        if self.text.is_none()
            && let Some(id) = std::str::from_utf8(trimmed)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
        {
            let plain = trimmed[0] != b'+' && (trimmed.len() == 1 || trimmed[0] != b'0');
            if !plain {
                let text = std::str::from_utf8(trimmed).expect("parsed as a number above");
                self.unusual.push((self.numbers.len(), text.into()));
            }
            self.numbers.push(id);
            return Ok(());
        }
        let text = std::str::from_utf8(trimmed)
            .map_err(|_| format!("{} is not valid UTF-8", quote_bytes(field)))?;
        if text.len() > MAX_CUSTOMER_ID_BYTES {
            return Err(format!(
                "a customer_id of {} bytes; at most {MAX_CUSTOMER_ID_BYTES}",
                text.len()
            ));
        }
        if self.text.is_none() {
            self.text = Some(self.numbers_as_text());
        }
        self.text
            .as_mut()
            .expect("set just above")
            .push(text.into());
        Ok(())
    }

    /// The whole numbers read so far as the text they were written as.
    fn numbers_as_text(&mut self) -> Vec<Box<str>> {
        let mut text: Vec<Box<str>> = self
            .numbers
            .iter()
            .map(|id| id.to_string().into())
            .collect();
        for (row, written) in self.unusual.drain(..) {
            text[row] = written;
        }
        self.numbers = Vec::new();
        text
    }

    /// The finished column: text ids sorted (each row's id then its position among them) and
    /// the index; the first duplicate (by its second row) is an error.
    pub fn finish(self) -> Result<CustomerIds, DuplicateId> {
        let Some(mut text) = self.text else {
            let id_slots = id_index::build(&self.numbers).map_err(|duplicate| DuplicateId {
                id: duplicate.id.to_string(),
                first_row: duplicate.first_row,
                second_row: duplicate.second_row,
            })?;
            return Ok(CustomerIds {
                ids: self.numbers,
                text_ids: None,
                id_slots,
            });
        };
        let mut order: Vec<u32> = (0..text.len() as u32).collect();
        order
            .par_sort_unstable_by(|&a, &b| text[a as usize].cmp(&text[b as usize]).then(a.cmp(&b)));
        if let Some(pair) = order
            .windows(2)
            .filter(|pair| text[pair[0] as usize] == text[pair[1] as usize])
            .min_by_key(|pair| pair[1])
        {
            return Err(DuplicateId {
                id: text[pair[0] as usize].to_string(),
                first_row: pair[0] as usize,
                second_row: pair[1] as usize,
            });
        }
        let mut ids = vec![0u64; text.len()];
        for (position, &row) in order.iter().enumerate() {
            ids[row as usize] = position as u64;
        }
        let text_ids = order
            .iter()
            .map(|&row| std::mem::take(&mut text[row as usize]).into_string())
            .collect();
        let id_slots = id_index::build(&ids).expect("positions in a sorted list are distinct");
        Ok(CustomerIds {
            ids,
            text_ids: Some(text_ids),
            id_slots,
        })
    }
}

/// A numeric column of docs/model.md's table.
#[derive(Debug)]
pub struct NumericBuilder {
    values: Vec<f32>,
    domain: Domain,
    requires_value: bool,
}

impl NumericBuilder {
    /// Parses straight to `f32` from the bytes, so the stored value is the correctly rounded
    /// f32 of the text; an empty cell is a missing value.
    pub fn push_text(&mut self, field: &[u8]) -> Result<(), String> {
        let text = field.trim_ascii();
        if text.is_empty() {
            return self.push_missing("empty value");
        }
        let value = match parse_short_decimal(text) {
            Some(value) => value,
            None => fast_float2::parse::<f32, _>(text)
                .map_err(|_| format!("{} is not a number", quote_bytes(field)))?,
        };
        match self.domain.violation(value) {
            None => {
                self.values.push(value);
                Ok(())
            }
            Some(why) => Err(format!("{} {why}", quote_bytes(field))),
        }
    }

    /// Numbers read in bulk, none missing (an Arrow array without nulls): `append` appends
    /// them, then all are checked against the domain at once. When one is outside it, none
    /// stays appended and `false` tells the caller to push them one by one for the error.
    pub fn append_checked(&mut self, append: impl FnOnce(&mut Vec<f32>)) -> bool {
        let start = self.values.len();
        append(&mut self.values);
        if self.domain.contains_all(&self.values[start..]) {
            return true;
        }
        self.values.truncate(start);
        false
    }

    /// A number already read (an Arrow value, rounded to `f32`), checked against the domain.
    pub fn push_value(&mut self, value: f32) -> Result<(), String> {
        match self.domain.violation(value) {
            None => {
                self.values.push(value);
                Ok(())
            }
            Some(why) => Err(format!("{} {why}", crate::error::number(value))),
        }
    }

    /// A missing value (`what`: an empty cell, a null): zero, as a missing column would be,
    /// or an error when the column is required.
    pub fn push_missing(&mut self, what: &str) -> Result<(), String> {
        if self.requires_value {
            return Err(format!("{what}; this column is required"));
        }
        self.values.push(0.0);
        Ok(())
    }
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

/// A column outside the model's table (docs/model.md): numbers while every value is one (typed
/// input), otherwise text; text is stored as numbers if every distinct value is one.
#[derive(Debug, Default)]
pub struct AttributeBuilder {
    /// Typed numbers, while no text or missing value has come.
    numbers: Vec<f32>,
    codes: Vec<u32>,
    /// Rows reserved for whichever of `numbers` and `codes` the first value goes to.
    expected_rows: usize,
    lookup: HashMap<Box<[u8]>, u32, BuildHasherDefault<FieldHasher>>,
    dictionary: Vec<String>,
}

impl fmt::Debug for FieldHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldHasher")
    }
}

impl AttributeBuilder {
    /// The code of `field` in the dictionary, adding it if new.
    fn code_of(&mut self, field: &[u8]) -> Result<u32, String> {
        if let Some(&code) = self.lookup.get(field) {
            return Ok(code);
        }
        let text = std::str::from_utf8(field)
            .map_err(|_| format!("{} is not valid UTF-8", quote_bytes(field)))?;
        let code = self.dictionary.len() as u32;
        self.dictionary.push(text.to_string());
        self.lookup.insert(field.into(), code);
        Ok(code)
    }

    /// A text cell; a missing value is the empty text, as an empty CSV cell is.
    pub fn push_text(&mut self, field: &[u8]) -> Result<(), String> {
        self.text_from_here();
        let code = self.code_of(field)?;
        self.codes.push(code);
        Ok(())
    }

    /// The code of a text value of dictionary-encoded input, adding it if new: looked up once
    /// per distinct value, then pushed by [`AttributeBuilder::push_code`]. Numbers read before
    /// become text first, as for any text cell.
    pub fn text_code(&mut self, field: &[u8]) -> Result<u32, String> {
        self.text_from_here();
        self.code_of(field)
    }

    /// A value by its code (from [`AttributeBuilder::text_code`]): dictionary-encoded input.
    pub fn push_code(&mut self, code: u32) {
        self.text_from_here();
        self.codes.push(code);
    }

    /// A typed number: must be finite, like every stored number.
    pub fn push_number(&mut self, value: f32) -> Result<(), String> {
        if let Some(why) = Domain::Finite.violation(value) {
            return Err(format!("{} {why}", crate::error::number(value)));
        }
        if self.codes.is_empty() {
            if self.numbers.capacity() == 0 {
                self.numbers = reserved(self.expected_rows);
            }
            self.numbers.push(value);
            Ok(())
        } else {
            // Text came first: numbers join as the text of the value.
            self.push_text(value.to_string().as_bytes())
        }
    }

    /// Numbers read so far become text (their shortest decimals), from the first text cell on.
    fn text_from_here(&mut self) {
        if self.codes.capacity() == 0 {
            self.codes = reserved(self.expected_rows);
        }
        for value in std::mem::take(&mut self.numbers) {
            let code = self
                .code_of(value.to_string().as_bytes())
                .expect("a number's decimals are UTF-8");
            self.codes.push(code);
        }
    }

    /// Numeric when every distinct value is a finite number; otherwise text.
    fn finish(mut self) -> ColumnValues {
        if self.codes.is_empty() {
            return ColumnValues::F32(self.numbers);
        }
        self.text_from_here();
        let numbers: Option<Vec<f32>> = self
            .dictionary
            .iter()
            .map(|text| {
                fast_float2::parse::<f32, _>(text.trim())
                    .ok()
                    .filter(|v| v.is_finite())
            })
            .collect();
        match numbers {
            Some(numbers) => ColumnValues::F32(
                self.codes
                    .iter()
                    .map(|&code| numbers[code as usize])
                    .collect(),
            ),
            None => ColumnValues::Text {
                codes: self.codes,
                dictionary: self.dictionary,
            },
        }
    }
}

/// Every column of an import, in input order, with their names.
pub struct TableBuilder {
    /// The column names, unique, `customer_id` among them.
    pub names: Vec<String>,
    /// One builder per name.
    pub columns: Vec<ColumnBuilder>,
}

impl TableBuilder {
    /// Builders for `names`, with room for `rows` customers (0 when the count is not known
    /// up front); the caller checked the names (unique, `customer_id` present).
    pub fn new(names: Vec<String>, rows: usize) -> TableBuilder {
        let columns = names
            .iter()
            .map(|name| ColumnBuilder::for_column(name, rows))
            .collect();
        TableBuilder { names, columns }
    }

    /// Customers read so far.
    pub fn rows(&self) -> usize {
        self.columns
            .iter()
            .find_map(|column| match column {
                ColumnBuilder::Id(ids) => Some(ids.len()),
                _ => None,
            })
            .expect("a table builder has a customer_id column")
    }

    /// The finished table and its id index, or the first duplicate id.
    pub fn finish(self) -> Result<(Table, Vec<u32>), DuplicateId> {
        let mut ids = None;
        let mut columns = Vec::with_capacity(self.names.len().saturating_sub(1));
        for (name, column) in self.names.into_iter().zip(self.columns) {
            let values = match column {
                ColumnBuilder::Id(builder) => {
                    ids = Some(builder.finish()?);
                    continue;
                }
                ColumnBuilder::Numeric(numbers) => ColumnValues::F32(numbers.values),
                ColumnBuilder::Attribute(attribute) => attribute.finish(),
            };
            columns.push(TableColumn { name, values });
        }
        let ids = ids.expect("a table builder has a customer_id column");
        debug_assert!(ids.ids.len() as u64 <= format::MAX_ROWS);
        Ok((
            Table {
                ids: ids.ids,
                text_ids: ids.text_ids,
                columns,
            },
            ids.id_slots,
        ))
    }
}

/// The common case of a CRM export, `[-]digits[.digits]` with at most 7 digits, in a few
/// nanoseconds: the digits form an integer m < 2^24 and the scale 10^k (k <= 7) is exact in f32,
/// so one IEEE division gives the correctly rounded f32 of m / 10^k (Clinger's fast path).
/// Anything else returns `None` and goes to the general parser. Measured: parsing took 28% of
/// import time before this path.
pub fn parse_short_decimal(text: &[u8]) -> Option<f32> {
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
    let value = exact_quotient(mantissa, fraction_digits);
    Some(if negative { -value } else { value })
}

/// `mantissa / 10^scale` correctly rounded to f32, for `mantissa < 2^24` and `scale <= 7`: both
/// are exact in f32, so one IEEE division rounds once.
pub fn exact_quotient(mantissa: u32, scale: usize) -> f32 {
    const POW10: [f32; 8] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
    debug_assert!(mantissa < 1 << 24 && scale < POW10.len());
    mantissa as f32 / POW10[scale]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(fields: &[&str]) -> Result<CustomerIds, String> {
        let mut builder = IdBuilder::default();
        for field in fields {
            builder.push_text(field.as_bytes())?;
        }
        builder.finish().map_err(|d| format!("{d:?}"))
    }

    #[test]
    fn ids_stay_numbers_until_one_is_not_then_keep_their_text() {
        let numbers = ids(&["7", " 12 ", "008"]).unwrap();
        assert_eq!(numbers.ids, [7, 12, 8]);
        assert_eq!(numbers.text_ids, None);
        let text = ids(&["7", "007", "C-2", "+1", "B"]).unwrap();
        let sorted = text.text_ids.unwrap();
        assert_eq!(sorted, ["+1", "007", "7", "B", "C-2"]);
        let as_written: Vec<&str> = text
            .ids
            .iter()
            .map(|&p| sorted[p as usize].as_str())
            .collect();
        assert_eq!(as_written, ["7", "007", "C-2", "+1", "B"]);
    }

    #[test]
    fn duplicate_text_ids_name_the_earliest_second_appearance() {
        let error = ids(&["b", "a", "c", "a", "b", "a"]).unwrap_err();
        assert!(
            error.contains("id: \"a\", first_row: 1, second_row: 3"),
            "{error}"
        );
        // Whole numbers are duplicates by value, as before.
        let error = ids(&["5", "05"]).unwrap_err();
        assert!(error.contains("first_row: 0, second_row: 1"), "{error}");
        // Once the ids are text, `5` and `05` are different customers.
        assert!(ids(&["5", "05", "x"]).is_ok());
    }

    #[test]
    fn ids_are_never_empty_or_too_long() {
        assert_eq!(ids(&["1", " "]).unwrap_err(), "empty customer_id");
        let long = "x".repeat(MAX_CUSTOMER_ID_BYTES + 1);
        assert!(ids(&[&long]).unwrap_err().contains("at most 256"));
        assert!(ids(&[&long[1..]]).is_ok());
    }

    #[test]
    fn attributes_turn_text_when_text_or_a_missing_value_comes() {
        let mut attribute = AttributeBuilder::default();
        attribute.push_number(2.5).unwrap();
        attribute.push_number(3.0).unwrap();
        assert_eq!(attribute.finish(), ColumnValues::F32(vec![2.5, 3.0]));
        let mut attribute = AttributeBuilder::default();
        attribute.push_number(2.5).unwrap();
        attribute.push_text(b"").unwrap();
        attribute.push_number(4.0).unwrap();
        assert_eq!(
            attribute.finish(),
            ColumnValues::Text {
                codes: vec![0, 1, 2],
                dictionary: vec!["2.5".into(), "".into(), "4".into()],
            }
        );
        assert!(AttributeBuilder::default().push_number(f32::NAN).is_err());
    }
}
