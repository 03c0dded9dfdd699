//! `--where` expressions: conditions over store columns and the score, joined with `and`, e.g.
//! `segment in (gold, silver) and margin > 100 and tier = A`. Parsing checks syntax; binding
//! checks names and values against a store; evaluation fills an eligibility mask column by
//! column. Every error points at the character position where the problem starts.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::limits::{MAX_FILTER_BYTES, MAX_FILTER_VALUES};
use crate::model::Tier;
use crate::store::{Column, Store};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Comparison {
    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Comparison::Eq => left == right,
            Comparison::Ne => left != right,
            Comparison::Lt => left < right,
            Comparison::Le => left <= right,
            Comparison::Gt => left > right,
            Comparison::Ge => left >= right,
        }
    }
}

/// A literal as written, with its position for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// The text (quotes removed).
    pub text: String,
    /// 1-based character position in the expression.
    pub position: usize,
}

/// One condition of a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `column op value`
    Compare {
        /// The column (or `crv`, `tier`).
        column: Literal,
        /// The operator.
        op: Comparison,
        /// The right-hand side.
        value: Literal,
    },
    /// `column in (v1, v2, ...)`
    In {
        /// The column (or `crv`, `tier`).
        column: Literal,
        /// The accepted values.
        values: Vec<Literal>,
    },
}

/// A parsed filter: every condition must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The conditions, joined by `and`.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Comparison),
    Open,
    Close,
    Comma,
}

fn syntax(position: usize, message: impl std::fmt::Display) -> Error {
    Error::invalid("where", format!("at position {position}: {message}"))
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                tokens.push((
                    match c {
                        '(' => Token::Open,
                        ')' => Token::Close,
                        _ => Token::Comma,
                    },
                    position,
                ));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, width) = match (c, next) {
                    ('=', Some('=')) => (Comparison::Eq, 2),
                    ('=', _) => (Comparison::Eq, 1),
                    ('!', Some('=')) => (Comparison::Ne, 2),
                    ('<', Some('=')) => (Comparison::Le, 2),
                    ('<', Some('>')) => (Comparison::Ne, 2),
                    ('<', _) => (Comparison::Lt, 1),
                    ('>', Some('=')) => (Comparison::Ge, 2),
                    ('>', _) => (Comparison::Gt, 1),
                    _ => return Err(syntax(position, "`!` must be followed by `=`")),
                };
                tokens.push((Token::Op(op), position));
                i += width;
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .ok_or_else(|| syntax(position, format!("unclosed {c}quote")))?;
                tokens.push((
                    Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()),
                    position,
                ));
                i += end + 2;
            }
            _ => {
                let len = chars[i..]
                    .iter()
                    .position(|&d| d.is_whitespace() || "(),=!<>'\"".contains(d))
                    .unwrap_or(chars.len() - i);
                tokens.push((Token::Word(chars[i..i + len].iter().collect()), position));
                i += len;
            }
        }
    }
    Ok(tokens)
}

impl Filter {
    /// Parses `text`; an empty text is the filter that accepts everyone.
    pub fn parse(text: &str) -> Result<Filter> {
        check_length(text)?;
        let tokens = tokenize(text)?;
        let end = text.chars().count() + 1;
        let mut conditions = Vec::new();
        let mut at = 0;
        if tokens.is_empty() {
            return Ok(Filter { conditions });
        }
        loop {
            let (condition, next) = parse_condition(&tokens, at, end)?;
            conditions.push(condition);
            at = next;
            match tokens.get(at) {
                None => break,
                Some((Token::Word(word), _)) if word.eq_ignore_ascii_case("and") => at += 1,
                Some((_, position)) => {
                    return Err(syntax(*position, "expected `and` between conditions"));
                }
            }
        }
        Ok(Filter { conditions })
    }
}

fn literal(tokens: &[(Token, usize)], at: usize, end: usize, what: &str) -> Result<Literal> {
    match tokens.get(at) {
        Some((Token::Word(text) | Token::Quoted(text), position)) => Ok(Literal {
            text: text.clone(),
            position: *position,
        }),
        Some((_, position)) => Err(syntax(*position, format!("expected {what}"))),
        None => Err(syntax(end, format!("expected {what} at the end"))),
    }
}

fn parse_condition(tokens: &[(Token, usize)], at: usize, end: usize) -> Result<(Condition, usize)> {
    let column = literal(tokens, at, end, "a column name")?;
    match tokens.get(at + 1) {
        Some((Token::Op(op), _)) => {
            let value = literal(tokens, at + 2, end, "a value")?;
            Ok((
                Condition::Compare {
                    column,
                    op: *op,
                    value,
                },
                at + 3,
            ))
        }
        Some((Token::Word(word), _)) if word.eq_ignore_ascii_case("in") => {
            let mut at = at + 2;
            match tokens.get(at) {
                Some((Token::Open, _)) => at += 1,
                Some((_, position)) => return Err(syntax(*position, "expected `(` after `in`")),
                None => return Err(syntax(end, "expected `(` after `in`")),
            }
            let mut values = Vec::new();
            loop {
                values.push(literal(tokens, at, end, "a value")?);
                at += 1;
                match tokens.get(at) {
                    Some((Token::Comma, _)) => at += 1,
                    Some((Token::Close, _)) => {
                        return Ok((Condition::In { column, values }, at + 1));
                    }
                    Some((_, position)) => return Err(syntax(*position, "expected `,` or `)`")),
                    None => return Err(syntax(end, "expected `)` to close the list")),
                }
            }
        }
        Some((_, position)) => Err(syntax(
            *position,
            "expected an operator (=, !=, <, <=, >, >=) or `in`",
        )),
        None => Err(syntax(end, "expected an operator or `in` at the end")),
    }
}

/// What a filter can look at besides the store's own columns.
#[derive(Debug, Clone, Copy)]
pub struct Scores<'a> {
    /// Every customer's CRV, row by row.
    pub crv: &'a [f32],
    /// Every customer's tier, row by row.
    pub tier: &'a [Tier],
}

/// A condition resolved against a store: the column's values and the accepted set.
enum Bound<'a> {
    Number {
        values: &'a [f32],
        op: Comparison,
        right: f32,
    },
    NumberIn {
        values: &'a [f32],
        accepted: Vec<f32>,
    },
    Id {
        ids: &'a [u64],
        op: Comparison,
        right: u64,
    },
    Codes {
        codes: &'a [u32],
        accepted: Vec<u32>,
        negate: bool,
    },
    Tiers {
        tiers: &'a [Tier],
        accepted: Vec<Tier>,
        negate: bool,
    },
}

impl Filter {
    /// Resolves every name and value against `store` without evaluating anything: the errors
    /// [`Filter::eligible`] would give (an unknown column or value), before scores exist.
    pub fn check(&self, store: &Store) -> Result<()> {
        let no_scores = Scores {
            crv: &[],
            tier: &[],
        };
        self.conditions
            .iter()
            .try_for_each(|condition| bind(condition, store, no_scores).map(drop))
    }

    /// Resolves every name and value against `store` and `scores`, then marks the rows where
    /// every condition holds. The mask has one entry per row.
    pub fn eligible(&self, store: &Store, scores: Scores<'_>) -> Result<Vec<bool>> {
        self.eligible_until(store, scores, &Cancel::default())
    }

    /// [`Filter::eligible`], asking `cancel` every [`CANCEL_CHECK_ROWS`] rows whether to go
    /// on: [`Error::Stopped`] once it says stop.
    pub fn eligible_until(
        &self,
        store: &Store,
        scores: Scores<'_>,
        cancel: &Cancel,
    ) -> Result<Vec<bool>> {
        let bound = self
            .conditions
            .iter()
            .map(|condition| bind(condition, store, scores))
            .collect::<Result<Vec<_>>>()?;
        let mut mask = vec![true; store.rows()];
        for (block, rows) in mask.chunks_mut(CANCEL_CHECK_ROWS).enumerate() {
            cancel.check("filter evaluation (`where`)")?;
            for condition in &bound {
                apply(condition, rows, block * CANCEL_CHECK_ROWS);
            }
        }
        Ok(mask)
    }
}

/// Rows evaluated between two questions to the cancel token.
pub const CANCEL_CHECK_ROWS: usize = 16 << 10;

/// Refuses an expression longer than [`MAX_FILTER_BYTES`] before reading it.
fn check_length(text: &str) -> Result<()> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(Error::invalid(
            "where",
            format!(
                "the expression is {} bytes long, at most {MAX_FILTER_BYTES}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// `values` sorted with repeats removed, so a long list with repeats costs what its distinct
/// values cost.
fn distinct<T: PartialOrd>(mut values: Vec<T>) -> Vec<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.dedup();
    values
}

/// Narrows `mask`, the rows from `first` on, to those where `condition` holds.
fn apply(condition: &Bound<'_>, mask: &mut [bool], first: usize) {
    match condition {
        Bound::Number { values, op, right } => {
            for (keep, &value) in mask.iter_mut().zip(values.iter().skip(first)) {
                *keep &= op.holds(value, *right);
            }
        }
        Bound::NumberIn { values, accepted } => {
            for (keep, value) in mask.iter_mut().zip(values.iter().skip(first)) {
                *keep &= accepted.contains(value);
            }
        }
        Bound::Id { ids, op, right } => {
            for (keep, &id) in mask.iter_mut().zip(ids.iter().skip(first)) {
                *keep &= op.holds(id, *right);
            }
        }
        Bound::Codes {
            codes,
            accepted,
            negate,
        } => {
            for (keep, code) in mask.iter_mut().zip(codes.iter().skip(first)) {
                *keep &= accepted.contains(code) != *negate;
            }
        }
        Bound::Tiers {
            tiers,
            accepted,
            negate,
        } => {
            for (keep, tier) in mask.iter_mut().zip(tiers.iter().skip(first)) {
                *keep &= accepted.contains(tier) != *negate;
            }
        }
    }
}

fn parse_number(literal: &Literal, column: &str) -> Result<f32> {
    literal
        .text
        .parse::<f32>()
        .ok()
        .filter(|v| !v.is_nan())
        .ok_or_else(|| {
            syntax(
                literal.position,
                format!(
                    "`{}` is not a number (column `{column}` is numeric)",
                    literal.text
                ),
            )
        })
}

/// Splits a condition into its column, operator (None for `in`) and values.
fn parts(condition: &Condition) -> (&Literal, Option<Comparison>, Vec<&Literal>) {
    match condition {
        Condition::Compare { column, op, value } => (column, Some(*op), vec![value]),
        Condition::In { column, values } => (column, None, values.iter().collect()),
    }
}

/// Text and tiers have no order: only `=`, `!=` and `in` apply.
fn equality_only(column: &Literal, op: Option<Comparison>) -> Result<bool> {
    match op {
        None | Some(Comparison::Eq) => Ok(false),
        Some(Comparison::Ne) => Ok(true),
        Some(_) => Err(syntax(
            column.position,
            format!("`{}` is not numeric: use =, != or in", column.text),
        )),
    }
}

fn bind<'a>(condition: &Condition, store: &'a Store, scores: Scores<'a>) -> Result<Bound<'a>> {
    let (column, op, values) = parts(condition);
    let name = column.text.as_str();
    if values.len() > MAX_FILTER_VALUES {
        return Err(syntax(
            column.position,
            format!(
                "`{name} in (...)` lists {} values, at most {MAX_FILTER_VALUES}",
                values.len()
            ),
        ));
    }
    let numbers = |column_values: &'a [f32]| -> Result<Bound<'a>> {
        let parsed = values
            .iter()
            .map(|v| parse_number(v, name))
            .collect::<Result<Vec<f32>>>()?;
        Ok(match op {
            Some(op) => Bound::Number {
                values: column_values,
                op,
                right: parsed[0],
            },
            None => Bound::NumberIn {
                values: column_values,
                accepted: distinct(parsed),
            },
        })
    };
    if name == "crv" && store.column("crv").is_none() {
        return numbers(scores.crv);
    }
    if name == "tier" && store.column("tier").is_none() {
        let negate = equality_only(column, op)?;
        let accepted = values
            .iter()
            .map(|v| {
                v.text.parse::<Tier>().map_err(|_| {
                    syntax(
                        v.position,
                        format!("`{}` is not a tier (A, B, C or N)", v.text),
                    )
                })
            })
            .collect::<Result<_>>()?;
        return Ok(Bound::Tiers {
            tiers: scores.tier,
            accepted: distinct(accepted),
            negate,
        });
    }
    match store.column(name) {
        Some(Column::F32(values)) => numbers(values),
        Some(Column::U64(ids)) => {
            let (Some(op), [value]) = (op, values.as_slice()) else {
                return Err(syntax(
                    column.position,
                    "`customer_id` takes a comparison, not `in`",
                ));
            };
            let right = value.text.parse::<u64>().map_err(|_| {
                syntax(
                    value.position,
                    format!("`{}` is not a customer id", value.text),
                )
            })?;
            Ok(Bound::Id { ids, op, right })
        }
        Some(Column::Text(text)) => {
            let negate = equality_only(column, op)?;
            let accepted = values
                .iter()
                .map(|v| {
                    text.dictionary.code_of(&v.text).ok_or_else(|| {
                        let known: Vec<&str> = text.dictionary.iter().take(20).collect();
                        syntax(
                            v.position,
                            format!(
                                "`{}` is not a value of `{name}` (values: {})",
                                v.text,
                                known.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<_>>()?;
            Ok(Bound::Codes {
                codes: text.codes,
                accepted: distinct(accepted),
                negate,
            })
        }
        None => {
            let mut known: Vec<&str> = store.columns().iter().map(|c| c.name.as_str()).collect();
            known.extend(["crv", "tier"]);
            Err(syntax(
                column.position,
                format!("unknown column `{name}` (columns: {})", known.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::csv::read_csv;
    use crate::store::writer;

    fn store() -> Store {
        let csv = "customer_id,margin,segment\n1,50,gold\n2,150,silver\n3,250,gold\n4,-5,basic\n";
        let parsed = read_csv(csv.as_bytes(), "t.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        Store::from_bytes(&bytes).unwrap()
    }

    const CRV: [f32; 4] = [10.0, 60.0, 200.0, -3.0];
    const TIER: [Tier; 4] = [Tier::C, Tier::B, Tier::A, Tier::N];

    fn eligible(expression: &str) -> Result<Vec<bool>> {
        let scores = Scores {
            crv: &CRV,
            tier: &TIER,
        };
        Filter::parse(expression)?.eligible(&store(), scores)
    }

    fn error(expression: &str) -> String {
        eligible(expression).unwrap_err().to_string()
    }

    #[test]
    fn conditions_over_columns_scores_and_tiers_combine_with_and() {
        assert_eq!(
            eligible("segment = gold").unwrap(),
            [true, false, true, false]
        );
        assert_eq!(
            eligible("segment in (gold, silver) and margin > 100").unwrap(),
            [false, true, true, false]
        );
        assert_eq!(
            eligible("tier in (A, B)").unwrap(),
            [false, true, true, false]
        );
        assert_eq!(eligible("crv >= 50").unwrap(), [false, true, true, false]);
        assert_eq!(
            eligible("segment != 'gold'").unwrap(),
            [false, true, false, true]
        );
        assert_eq!(
            eligible("customer_id <= 2 AND tier != N").unwrap(),
            [true, true, false, false]
        );
        assert_eq!(eligible("").unwrap(), [true; 4]);
    }

    #[test]
    fn unknown_column_points_at_its_position() {
        let message = error("margin > 1 and segmnt = gold");
        assert!(
            message.contains("at position 16: unknown column `segmnt`"),
            "{message}"
        );
    }

    #[test]
    fn check_gives_the_errors_of_eligible_without_scores() {
        let store = store();
        for expression in [
            "margin > 1 and segmnt = gold",
            "segment = platinum",
            "tier = Z",
            "customer_id in (1, 2)",
        ] {
            let checked = Filter::parse(expression).unwrap().check(&store);
            assert_eq!(checked.unwrap_err().to_string(), error(expression));
        }
        for expression in ["segment = gold and crv >= 50 and tier != N", ""] {
            Filter::parse(expression).unwrap().check(&store).unwrap();
        }
    }

    #[test]
    fn unknown_text_value_lists_the_known_ones() {
        let message = error("segment = platinum");
        assert!(
            message.contains("at position 11: `platinum` is not a value of `segment`")
                && message.contains("gold, silver, basic"),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        assert!(error("margin >").contains("at position 9: expected a value at the end"));
        assert!(error("margin 5").contains("at position 8: expected an operator"));
        assert!(error("segment in gold").contains("expected `(` after `in`"));
        assert!(error("segment in (gold").contains("expected `)`"));
        assert!(error("margin > 1 or crv > 2").contains("at position 12: expected `and`"));
        assert!(error("segment = 'gold").contains("at position 11: unclosed"));
        assert!(error("margin > ten").contains("`ten` is not a number"));
        assert!(error("tier = Z").contains("`Z` is not a tier"));
        assert!(error("segment > gold").contains("is not numeric"));
    }
}
