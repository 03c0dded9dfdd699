//! Arithmetic over columns, for a campaign's `value` and `uses` entries: a number, a column
//! name, or an expression such as `0.05 * crv`, `(margin - cost_call) / 2`, `-retention_cost`.
//! It extends the `--where` language ([`super::filter`]): the same tokenizer (in its
//! arithmetic mode), the same parser state and the same positioned errors. `*` and `/` bind
//! tighter than `+` and `-`; unary `-` tightest. Binding resolves names against a table's
//! numeric columns and `crv`; evaluation runs block by block in time linear in the rows, and
//! a constant or a single column costs nothing (it is read in place).

use super::filter::{Literal, MAX_NESTING, Mode, Parser, Token, check_length, syntax, tokenize};
use crate::error::{Error, Result, quote};
use crate::select::lagrange::Coefficients;
use crate::store::Column;
use crate::table::Table;

/// An arithmetic expression as parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Arithmetic {
    /// A finite number.
    Number(f64),
    /// A numeric column of the store, or `crv`.
    Column(Literal),
    /// `-E`
    Negate(Box<Arithmetic>),
    /// `E op E` with op one of `+ - * /`.
    Binary(Box<Arithmetic>, char, Box<Arithmetic>),
}

impl Arithmetic {
    /// Parses `text`. Errors say `invalid where: at position N: ...`; callers rename the field
    /// ([`rename_field`]).
    pub fn parse(text: &str) -> Result<Arithmetic> {
        check_length(text)?;
        let tokens = tokenize(text, Mode::Arithmetic)?;
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
            end: text.chars().count() + 1,
        };
        let expression = parser.sum(0)?;
        match tokens.get(parser.at) {
            None => Ok(expression),
            Some((_, position)) => Err(syntax(
                *position,
                "expected an operator (+, -, *, /) between terms",
            )),
        }
    }

    /// The expression as a constant, when it names no column.
    pub fn constant(&self) -> Option<f64> {
        match self {
            Arithmetic::Number(value) => Some(*value),
            Arithmetic::Column(_) => None,
            Arithmetic::Negate(operand) => operand.constant().map(|v| -v),
            Arithmetic::Binary(left, op, right) => {
                Some(apply(left.constant()?, *op, right.constant()?))
            }
        }
    }
}

fn apply(left: f64, op: char, right: f64) -> f64 {
    match op {
        '+' => left + right,
        '-' => left - right,
        '*' => left * right,
        _ => left / right,
    }
}

impl Parser<'_> {
    /// `product ((+|-) product)*`
    fn sum(&mut self, depth: usize) -> Result<Arithmetic> {
        let mut left = self.product(depth)?;
        while let Some((Token::Arithmetic(op @ ('+' | '-')), _)) = self.tokens.get(self.at) {
            self.at += 1;
            left = Arithmetic::Binary(Box::new(left), *op, Box::new(self.product(depth)?));
        }
        Ok(left)
    }

    /// `factor ((*|/) factor)*`
    fn product(&mut self, depth: usize) -> Result<Arithmetic> {
        let mut left = self.factor(depth)?;
        while let Some((Token::Arithmetic(op @ ('*' | '/')), _)) = self.tokens.get(self.at) {
            self.at += 1;
            left = Arithmetic::Binary(Box::new(left), *op, Box::new(self.factor(depth)?));
        }
        Ok(left)
    }

    /// `- factor | ( sum ) | number | column`
    fn factor(&mut self, depth: usize) -> Result<Arithmetic> {
        let position = self.position();
        let deeper = || {
            if depth >= MAX_NESTING {
                Err(syntax(
                    position,
                    format!("more than {MAX_NESTING} levels of parentheses and `-`"),
                ))
            } else {
                Ok(depth + 1)
            }
        };
        match self.tokens.get(self.at) {
            Some((Token::Arithmetic('-'), _)) => {
                let depth = deeper()?;
                self.at += 1;
                Ok(Arithmetic::Negate(Box::new(self.factor(depth)?)))
            }
            Some((Token::Open, open)) => {
                let open = *open;
                let depth = deeper()?;
                self.at += 1;
                let inner = self.sum(depth)?;
                match self.tokens.get(self.at) {
                    Some((Token::Close, _)) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err(syntax(
                        self.position(),
                        format!("expected `)` to close the `(` at position {open}"),
                    )),
                }
            }
            Some((Token::Word(text), position)) => {
                let position = *position;
                let text = text.clone();
                self.at += 1;
                match text.parse::<f64>() {
                    Ok(value) if value.is_finite() => Ok(Arithmetic::Number(value)),
                    Ok(_) => Err(syntax(position, format!("{} is not finite", quote(&text)))),
                    Err(_) => Ok(Arithmetic::Column(Literal { text, position })),
                }
            }
            Some((Token::Quoted(text), position)) => {
                let column = Literal {
                    text: text.clone(),
                    position: *position,
                };
                self.at += 1;
                Ok(Arithmetic::Column(column))
            }
            Some((_, position)) => Err(syntax(*position, "expected a number, a column or `(`")),
            None => Err(syntax(
                self.end,
                "expected a number, a column or `(` at the end",
            )),
        }
    }
}

/// Gives a `where` error from the shared parser the name of the field it came from
/// (`offers[0].value`); other errors pass unchanged.
pub fn rename_field(error: Error, field: &str) -> Error {
    match error {
        Error::InvalidParameter { name, message } if name == "where" => {
            Error::invalid(field, message)
        }
        other => other,
    }
}

/// Per-customer numbers an expression evaluates to over a table.
#[derive(Debug, Clone)]
pub enum Values<'a> {
    /// The same number for every customer.
    Constant(f64),
    /// A store column (or the CRV), read in place.
    Column(&'a [f32]),
    /// Computed, one number per row.
    Computed(Vec<f32>),
}

impl Values<'_> {
    /// The values as the solver reads them.
    pub fn coefficients(&self) -> Coefficients<'_> {
        match self {
            Values::Constant(value) => Coefficients::Constant(*value),
            Values::Column(values) => Coefficients::PerCustomer(values),
            Values::Computed(values) => Coefficients::PerCustomer(values),
        }
    }

    /// Row `row`'s value.
    pub fn get(&self, row: usize) -> f64 {
        match self {
            Values::Constant(value) => *value,
            Values::Column(values) => f64::from(values[row]),
            Values::Computed(values) => f64::from(values[row]),
        }
    }
}

/// A column resolved for evaluation.
enum BoundArithmetic<'a> {
    Number(f64),
    Column(&'a [f32]),
    Negate(Box<BoundArithmetic<'a>>),
    Binary(Box<BoundArithmetic<'a>>, char, Box<BoundArithmetic<'a>>),
}

fn resolve<'a>(expression: &Arithmetic, table: &'a Table) -> Result<BoundArithmetic<'a>> {
    Ok(match expression {
        Arithmetic::Number(value) => BoundArithmetic::Number(*value),
        Arithmetic::Column(literal) => BoundArithmetic::Column(column(literal, table)?),
        Arithmetic::Negate(operand) => BoundArithmetic::Negate(Box::new(resolve(operand, table)?)),
        Arithmetic::Binary(left, op, right) => BoundArithmetic::Binary(
            Box::new(resolve(left, table)?),
            *op,
            Box::new(resolve(right, table)?),
        ),
    })
}

/// The numeric column `literal` names: a store column, or the table's CRV for `crv`.
fn column<'a>(literal: &Literal, table: &'a Table) -> Result<&'a [f32]> {
    let name = literal.text.as_str();
    match table.store().column(name) {
        Some(Column::F32(values)) => Ok(values),
        Some(_) => Err(syntax(
            literal.position,
            format!("column {} is not numeric", quote(name)),
        )),
        None if name == "crv" => Ok(table.crv()),
        None => {
            let mut known: Vec<&str> = table
                .store()
                .columns()
                .iter()
                .filter(|c| matches!(table.store().column(&c.name), Some(Column::F32(_))))
                .map(|c| c.name.as_str())
                .collect();
            known.push("crv");
            Err(syntax(
                literal.position,
                format!(
                    "unknown column {} (numeric columns: {})",
                    quote(name),
                    known.join(", ")
                ),
            ))
        }
    }
}

/// Rows evaluated at once.
const BLOCK_ROWS: usize = 4096;

fn evaluate(expression: &BoundArithmetic<'_>, first: usize, out: &mut [f64]) {
    match expression {
        BoundArithmetic::Number(value) => out.fill(*value),
        BoundArithmetic::Column(values) => {
            for (o, &v) in out.iter_mut().zip(&values[first..]) {
                *o = f64::from(v);
            }
        }
        BoundArithmetic::Negate(operand) => {
            evaluate(operand, first, out);
            out.iter_mut().for_each(|o| *o = -*o);
        }
        BoundArithmetic::Binary(left, op, right) => {
            evaluate(left, first, out);
            let mut other = vec![0.0; out.len()];
            evaluate(right, first, &mut other);
            for (o, r) in out.iter_mut().zip(other) {
                *o = apply(*o, *op, r);
            }
        }
    }
}

impl Arithmetic {
    /// Resolves the names against `table` (errors as in parsing, at the name's position) and
    /// evaluates the expression for every customer. `field` names the entry in errors; a value
    /// that is not a finite f32 (a division by zero, an overflow) is an error naming the
    /// customer.
    pub fn values<'a>(&self, table: &'a Table, field: &str) -> Result<Values<'a>> {
        let bound = resolve(self, table).map_err(|e| rename_field(e, field))?;
        if let Some(value) = self.constant() {
            if !value.is_finite() || value.abs() > f64::from(f32::MAX) {
                return Err(Error::invalid(
                    field,
                    format!("the expression's value {value} is not a finite number"),
                ));
            }
            return Ok(Values::Constant(value));
        }
        if let BoundArithmetic::Column(values) = bound {
            return Ok(Values::Column(values));
        }
        let rows = table.rows();
        let mut computed = Vec::with_capacity(rows);
        let mut block = vec![0.0; BLOCK_ROWS];
        for first in (0..rows).step_by(BLOCK_ROWS) {
            let block = &mut block[..BLOCK_ROWS.min(rows - first)];
            evaluate(&bound, first, block);
            for (offset, &value) in block.iter().enumerate() {
                let narrowed = value as f32;
                if !narrowed.is_finite() {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "the expression is {value} for customer {}: not a finite number",
                            table.ids()[first + offset]
                        ),
                    ));
                }
                computed.push(narrowed);
            }
        }
        Ok(Values::Computed(computed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Arithmetic::parse(text).unwrap_err().to_string()
    }

    fn column(name: &str, position: usize) -> Arithmetic {
        Arithmetic::Column(Literal {
            text: name.into(),
            position,
        })
    }

    #[test]
    fn precedence_is_unary_minus_then_products_then_sums() {
        use Arithmetic::*;
        assert_eq!(Arithmetic::parse("12.5").unwrap(), Number(12.5));
        assert_eq!(
            Arithmetic::parse("0.05 * crv").unwrap(),
            Binary(Box::new(Number(0.05)), '*', Box::new(column("crv", 8)))
        );
        assert_eq!(
            Arithmetic::parse("1 + 2 * 3 - -4").unwrap().constant(),
            Some(11.0)
        );
        assert_eq!(
            Arithmetic::parse("(1 + 2) * 3 / 2").unwrap().constant(),
            Some(4.5)
        );
        assert_eq!(
            Arithmetic::parse("1.5e-3*2").unwrap().constant(),
            Some(0.003)
        );
        assert_eq!(
            Arithmetic::parse("'cost-call'").unwrap(),
            column("cost-call", 1)
        );
        assert_eq!(Arithmetic::parse("margin-cost").unwrap().constant(), None);
    }

    #[test]
    fn syntax_errors_give_the_position() {
        assert!(error("").contains("at position 1: expected a number, a column or `(` at the end"));
        assert!(error("crv *").contains("at position 6: expected a number"));
        assert!(error("crv 2").contains("at position 5: expected an operator"));
        assert!(
            error("(crv + 1")
                .contains("at position 9: expected `)` to close the `(` at position 1")
        );
        assert!(error("crv > 1").contains("at position 5: expected an operator"));
        assert!(error("* 2").contains("at position 1: expected a number"));
        assert!(error("1e999").contains("`1e999` is not finite"));
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        assert!(error(&deep).contains("more than"));
        assert!(error(&"-".repeat(1_000)).contains("more than"));
    }

    #[test]
    fn rename_field_names_the_entry() {
        let renamed = rename_field(Arithmetic::parse("crv *").unwrap_err(), "offers[1].value");
        assert!(
            renamed
                .to_string()
                .starts_with("invalid offers[1].value: at position 6"),
            "{renamed}"
        );
    }
}
