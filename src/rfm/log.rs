//! The transaction log's bytes to purchases: the header's column names, then one purchase a
//! line, parsed straight from the bytes (no allocation per field).
//!
//! The log is CSV with a header row; lines end in `\n` or `\r\n`; blank lines are skipped. A
//! field may be wrapped in double quotes and have spaces around it, but may not hold a comma,
//! a quote or a line break (a purchase log has no use for them; such a line is an error).

use super::date::{Moment, parse_moment};
use super::fast::{self, LastDate};

/// The names of the log's columns that `crv rfm` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnNames {
    /// The customer id column (`--customer-col`, default `customer_id`).
    pub customer: String,
    /// The date or timestamp column (`--date-col`, default `date`).
    pub date: String,
    /// The purchase amount column (`--amount-col`, default `amount`).
    pub amount: String,
}

impl Default for ColumnNames {
    fn default() -> Self {
        ColumnNames {
            customer: "customer_id".to_string(),
            date: "date".to_string(),
            amount: "amount".to_string(),
        }
    }
}

/// Where the read columns are in a line, from the header.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Field positions of the customer, date and amount columns.
    positions: [usize; 3],
    /// The names, in the same order, for messages.
    names: [String; 3],
    /// Fields to read of each line: one past the last read column.
    needed: usize,
}

/// A field that cannot be read: which of the read columns (0 customer, 1 date, 2 amount) and
/// why, quoting the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// 0: the customer column, 1: the date column, 2: the amount column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// One line of the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// The customer's id.
    pub customer: u64,
    /// When.
    pub moment: Moment,
    /// How much (finite, >= 0).
    pub amount: f64,
}

impl Layout {
    /// The layout of a header line (without its line break); the error names the first read
    /// column missing from it.
    pub fn from_header(header: &[u8], columns: &ColumnNames) -> Result<Self, FieldError> {
        let header = header.strip_prefix(b"\xef\xbb\xbf").unwrap_or(header);
        let fields: Vec<&[u8]> = strip_cr(header)
            .split(|&b| b == b',')
            .map(unquote)
            .collect();
        let wanted = [&columns.customer, &columns.date, &columns.amount];
        let mut positions = [0; 3];
        for (column, name) in wanted.iter().enumerate() {
            positions[column] = fields
                .iter()
                .position(|field| *field == name.as_bytes())
                .ok_or_else(|| FieldError {
                    column,
                    message: format!(
                        "no such column in the header ({})",
                        crate::error::quote_bytes(header)
                    ),
                })?;
        }
        Ok(Layout {
            positions,
            names: wanted.map(String::clone),
            needed: positions.iter().max().expect("three positions") + 1,
        })
    }

    /// The name of read column `column` (0 customer, 1 date, 2 amount).
    pub fn name(&self, column: usize) -> &str {
        &self.names[column]
    }

    /// Parses one line (without its `\n`; a trailing `\r` is ignored).
    pub fn parse(&self, line: &[u8]) -> Result<Purchase, FieldError> {
        self.parse_after(line, &mut LastDate::default())
    }

    /// [`Layout::parse`], given the last date read (from the line before, in the same piece).
    pub fn parse_after(&self, line: &[u8], last: &mut LastDate) -> Result<Purchase, FieldError> {
        let line = strip_cr(line);
        let mut fields: [&[u8]; 3] = [&[]; 3];
        let mut found = 0;
        let mut index = 0;
        let mut start = 0;
        while index < self.needed {
            let mut end = start;
            while end < line.len() && line[end] != b',' {
                end += 1;
            }
            for (slot, &position) in self.positions.iter().enumerate() {
                if position == index {
                    fields[slot] = &line[start..end];
                    found += 1;
                }
            }
            index += 1;
            if end == line.len() {
                break;
            }
            start = end + 1;
        }
        if found < 3 {
            let column = (0..3)
                .find(|&slot| self.positions[slot] >= index)
                .expect("a read column lies beyond the line's fields");
            return Err(FieldError {
                column,
                message: format!("missing: the line has {index} fields"),
            });
        }
        // The common shapes on the fast path, the rest (and every error) by the general parsers.
        let [customer, date, amount] = fields;
        let customer = match fast::customer(customer) {
            Some(customer) => customer,
            None => parse_customer(unquote(customer))
                .map_err(|message| FieldError { column: 0, message })?,
        };
        let moment = match fast::moment(date, last) {
            Some(moment) => moment,
            None => {
                let date = unquote(date);
                parse_moment(date).map_err(|why| FieldError {
                    column: 1,
                    message: format!("{}: {why}", crate::error::quote_bytes(date)),
                })?
            }
        };
        let amount = match fast::amount(amount) {
            Some(amount) => amount,
            None => parse_amount(unquote(amount))
                .map_err(|message| FieldError { column: 2, message })?,
        };
        Ok(Purchase {
            customer,
            moment,
            amount,
        })
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A field without the spaces around it and one pair of double quotes.
fn unquote(field: &[u8]) -> &[u8] {
    let field = field.trim_ascii();
    match field {
        [b'"', inner @ .., b'"'] => inner.trim_ascii(),
        _ => field,
    }
}

/// A customer id: a whole number from 0 to 2^64 - 1 (what `crv import` stores).
pub(super) fn parse_customer(field: &[u8]) -> Result<u64, String> {
    if field.is_empty() {
        return Err("missing customer id (empty)".to_string());
    }
    let mut value = 0u64;
    for &b in field {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(format!(
                "{}: not a customer id (a whole number from 0 to {})",
                crate::error::quote_bytes(field),
                u64::MAX
            ));
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| {
                format!(
                    "{}: customer id larger than {}",
                    crate::error::quote_bytes(field),
                    u64::MAX
                )
            })?;
    }
    Ok(value)
}

/// An amount: a finite number >= 0.
pub(super) fn parse_amount(field: &[u8]) -> Result<f64, String> {
    match fast_float2::parse::<f64, _>(field) {
        Ok(amount) if amount.is_finite() && amount >= 0.0 => Ok(amount + 0.0),
        Ok(amount) if amount.is_finite() => Err(format!(
            "{}: negative amount",
            crate::error::quote_bytes(field)
        )),
        Ok(_) => Err(format!(
            "{}: not a finite amount",
            crate::error::quote_bytes(field)
        )),
        Err(_) if field.is_empty() => Err("missing amount (empty)".to_string()),
        Err(_) => Err(format!(
            "{}: not a number",
            crate::error::quote_bytes(field)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(header: &str) -> Layout {
        Layout::from_header(header.as_bytes(), &ColumnNames::default()).unwrap()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let layout = layout("\u{feff}amount,note,\"date\" ,customer_id\r");
        let purchase = layout.parse(b" 12.5 ,x,\"1997-01-02\",42\r").unwrap();
        assert_eq!(purchase.customer, 42);
        assert_eq!(purchase.amount, 12.5);
        assert_eq!(purchase.moment.day(), 9863);
    }

    #[test]
    fn a_missing_header_column_is_named() {
        let error = Layout::from_header(b"id,date,amount", &ColumnNames::default()).unwrap_err();
        assert_eq!(error.column, 0);
        assert!(error.message.contains("`id,date,amount`"), "{error:?}");
    }

    #[test]
    fn bad_fields_name_their_column() {
        let layout = layout("customer_id,date,amount");
        let column = |line: &str| layout.parse(line.as_bytes()).unwrap_err();
        assert_eq!(column("1,1997-01-01").column, 2);
        assert_eq!(column("1").column, 1);
        assert_eq!(column(",1997-01-01,1").column, 0);
        assert_eq!(column("x1,1997-01-01,1").column, 0);
        assert_eq!(column("18446744073709551616,1997-01-01,1").column, 0);
        assert_eq!(column("1,1997-02-30,1").column, 1);
        assert_eq!(column("1,1997-01-01,-1").column, 2);
        assert_eq!(column("1,1997-01-01,inf").column, 2);
        assert_eq!(column("1,1997-01-01,NaN").column, 2);
        assert_eq!(column("1,1997-01-01,1.5x").column, 2);
        assert_eq!(column("1,1997-01-01,").column, 2);
        assert!(column("1,1997-01-01,-1").message.contains("negative"));
        assert!(layout.parse(b"18446744073709551615,1997-01-01,-0").is_ok());
    }
}
