//! `--where` expressions: conditions over store columns and the score, combined with `and`,
//! `or`, `not` and parentheses, e.g.
//! `segment in (gold, silver) and (margin > 100 or tier = A) and not region = north`.
//! `not` binds tightest, then `and`, then `or`. Parsing checks syntax; binding checks names and
//! values against a store (lists deduplicated, tiers as a bit set, text values as a table by
//! code); evaluation fills an eligibility mask column by column, in time linear in the rows
//! for each condition. Every error points at the character position where the problem starts.

use std::collections::HashMap;
use std::ops::Range;

use crate::cancel::Cancel;
use crate::error::{Error, Result, quote};
use crate::limits::{MAX_FILTER_BYTES, MAX_FILTER_VALUES};
use crate::model::Tier;
use crate::store::{Column, Store};
use crate::table::{Table, TierColumn};

/// Most levels of parentheses and `not` an expression may nest (each level of `and`/`or`
/// alternation holds one mask while it is evaluated).
pub const MAX_NESTING: usize = 16;

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

/// A filter expression: conditions combined with `not`, `and` and `or`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// One condition.
    Condition(Condition),
    /// `not E`: the rows where E does not hold.
    Not(Box<Expr>),
    /// `E1 and E2 and ...`: every operand holds.
    And(Vec<Expr>),
    /// `E1 or E2 or ...`: at least one operand holds.
    Or(Vec<Expr>),
}

/// A parsed filter; the empty filter accepts everyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The expression, `None` for an empty filter.
    pub expr: Option<Expr>,
}

/// A token of the language. `Arithmetic` appears only when tokenizing an arithmetic
/// expression ([`Mode::Arithmetic`]); in a filter `-5` and `a*b` are words.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Word(String),
    Quoted(String),
    Op(Comparison),
    Open,
    Close,
    Comma,
    /// `+`, `-`, `*` or `/`.
    Arithmetic(char),
}

/// What the text is: a filter (conditions) or an arithmetic expression (numbers, columns and
/// `+ - * /`, [`super::expression`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Filter,
    Arithmetic,
}

pub(super) fn syntax(position: usize, message: impl std::fmt::Display) -> Error {
    Error::invalid("where", format!("at position {position}: {message}"))
}

/// The length of the number starting at `chars[0]` (a digit or `.`): digits, `.`, and an
/// exponent with its sign (`1.5e-3`), so an arithmetic expression keeps `e-3` in the number.
fn number_length(chars: &[char]) -> usize {
    let mut len = 0;
    while len < chars.len() {
        let c = chars[len];
        let exponent_sign = (c == '+' || c == '-')
            && len > 0
            && matches!(chars[len - 1], 'e' | 'E')
            && chars[..len - 1]
                .iter()
                .all(|d| d.is_ascii_digit() || *d == '.');
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
            len += 1;
        } else {
            break;
        }
    }
    len
}

pub(super) fn tokenize(text: &str, mode: Mode) -> Result<Vec<(Token, usize)>> {
    let arithmetic = mode == Mode::Arithmetic;
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
            '+' | '-' | '*' | '/' if arithmetic => {
                tokens.push((Token::Arithmetic(c), position));
                i += 1;
            }
            _ => {
                let len = if arithmetic && (c.is_ascii_digit() || c == '.') {
                    number_length(&chars[i..])
                } else {
                    chars[i..]
                        .iter()
                        .position(|&d| {
                            d.is_whitespace()
                                || "(),=!<>'\"".contains(d)
                                || (arithmetic && "+-*/".contains(d))
                        })
                        .unwrap_or(chars.len() - i)
                };
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
        let tokens = tokenize(text, Mode::Filter)?;
        if tokens.is_empty() {
            return Ok(Filter { expr: None });
        }
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
            end: text.chars().count() + 1,
        };
        let expr = parser.or(0)?;
        match tokens.get(parser.at) {
            None => Ok(Filter { expr: Some(expr) }),
            Some((Token::Close, position)) => Err(syntax(*position, "`)` without a matching `(`")),
            Some((_, position)) => Err(syntax(
                *position,
                "expected `and` or `or` between conditions",
            )),
        }
    }

    /// True for the empty filter, which accepts everyone.
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }
}

/// A recursive-descent parser over the tokens: `or` of `and`s of (`not`) primaries; the
/// arithmetic grammar (`super::expression`) extends it.
pub(super) struct Parser<'t> {
    pub(super) tokens: &'t [(Token, usize)],
    pub(super) at: usize,
    /// The position just past the text, for errors at the end.
    pub(super) end: usize,
}

impl Parser<'_> {
    fn keyword(&self, keyword: &str) -> bool {
        self.keyword_at(self.at, keyword)
    }

    fn keyword_at(&self, at: usize, keyword: &str) -> bool {
        matches!(self.tokens.get(at), Some((Token::Word(word), _)) if word.eq_ignore_ascii_case(keyword))
    }

    pub(super) fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end, |(_, position)| *position)
    }

    /// `and-expr (or and-expr)*`
    fn or(&mut self, depth: usize) -> Result<Expr> {
        let mut operands = vec![self.and(depth)?];
        while self.keyword("or") {
            self.at += 1;
            operands.push(self.and(depth)?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::Or(operands)
        })
    }

    /// `unary (and unary)*`
    fn and(&mut self, depth: usize) -> Result<Expr> {
        let mut operands = vec![self.unary(depth)?];
        while self.keyword("and") {
            self.at += 1;
            operands.push(self.unary(depth)?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::And(operands)
        })
    }

    /// `not unary | ( or-expr ) | condition`
    fn unary(&mut self, depth: usize) -> Result<Expr> {
        let position = self.position();
        let nested = || {
            if depth >= MAX_NESTING {
                Err(syntax(
                    position,
                    format!("more than {MAX_NESTING} levels of parentheses and `not`"),
                ))
            } else {
                Ok(depth + 1)
            }
        };
        // `not` followed by an operator or `in` is a column named `not`.
        if self.keyword("not") && !self.is_condition_start(self.at) {
            let depth = nested()?;
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary(depth)?)));
        }
        match self.tokens.get(self.at) {
            Some((Token::Open, open)) => {
                let open = *open;
                let depth = nested()?;
                self.at += 1;
                let expr = self.or(depth)?;
                match self.tokens.get(self.at) {
                    Some((Token::Close, _)) => {
                        self.at += 1;
                        Ok(expr)
                    }
                    Some((_, position)) => Err(syntax(
                        *position,
                        format!("expected `and`, `or` or `)` to close the `(` at position {open}"),
                    )),
                    None => Err(syntax(
                        self.end,
                        format!("expected `)` to close the `(` at position {open}"),
                    )),
                }
            }
            _ => self.condition(),
        }
    }

    /// Whether the tokens at `at` read `word op` or `word [not] in`: a condition on `word`.
    fn is_condition_start(&self, at: usize) -> bool {
        matches!(self.tokens.get(at + 1), Some((Token::Op(_), _)))
            || self.keyword_at(at + 1, "in")
            || (self.keyword_at(at + 1, "not") && self.keyword_at(at + 2, "in"))
    }

    fn literal(&self, at: usize, what: &str) -> Result<Literal> {
        match self.tokens.get(at) {
            Some((Token::Word(text) | Token::Quoted(text), position)) => Ok(Literal {
                text: text.clone(),
                position: *position,
            }),
            Some((_, position)) => Err(syntax(*position, format!("expected {what}"))),
            None => Err(syntax(self.end, format!("expected {what} at the end"))),
        }
    }

    /// `column op value | column [not] in ( value, ... )`
    fn condition(&mut self) -> Result<Expr> {
        let column = self.literal(self.at, "a column name or `(`")?;
        self.at += 1;
        if let Some((Token::Op(op), _)) = self.tokens.get(self.at) {
            let op = *op;
            let value = self.literal(self.at + 1, "a value")?;
            self.at += 2;
            return Ok(Expr::Condition(Condition::Compare { column, op, value }));
        }
        let negated = self.keyword("not") && self.keyword_at(self.at + 1, "in");
        if negated {
            self.at += 1;
        }
        if !self.keyword("in") {
            return Err(syntax(
                self.position(),
                "expected an operator (=, !=, <, <=, >, >=) or `in`",
            ));
        }
        self.at += 1;
        match self.tokens.get(self.at) {
            Some((Token::Open, _)) => self.at += 1,
            _ => return Err(syntax(self.position(), "expected `(` after `in`")),
        }
        let mut values = Vec::new();
        loop {
            values.push(self.literal(self.at, "a value")?);
            self.at += 1;
            match self.tokens.get(self.at) {
                Some((Token::Comma, _)) => self.at += 1,
                Some((Token::Close, _)) => {
                    self.at += 1;
                    let condition = Expr::Condition(Condition::In { column, values });
                    return Ok(if negated {
                        Expr::Not(Box::new(condition))
                    } else {
                        condition
                    });
                }
                Some((_, position)) => return Err(syntax(*position, "expected `,` or `)`")),
                None => return Err(syntax(self.end, "expected `)` to close the list")),
            }
        }
    }
}

/// What a filter can look at besides the store's own columns.
#[derive(Debug, Clone, Copy)]
pub struct Scores<'a> {
    /// Every customer's CRV, row by row.
    pub crv: &'a [f32],
    /// Every customer's tier.
    pub tier: TierColumn<'a>,
}

/// A condition resolved against a store: the column's values and the accepted set, each
/// tested in constant or logarithmic time per row whatever the list's length.
enum Bound<'a> {
    Number {
        values: &'a [f32],
        op: Comparison,
        right: f32,
    },
    /// Sorted, deduplicated, `-0` as `0`.
    NumberIn {
        values: &'a [f32],
        accepted: Vec<f32>,
    },
    Id {
        ids: &'a [u64],
        op: Comparison,
        right: u64,
    },
    /// `accepted[code]`: whether the row's text value passes (`!=` already folded in).
    Codes {
        codes: &'a [u32],
        accepted: Vec<bool>,
    },
    /// Bit `tier as u8` set when the tier passes (`!=` already folded in).
    Tiers { tiers: TierColumn<'a>, accepted: u8 },
}

/// An expression resolved against a store.
enum BoundExpr<'a> {
    Condition(Bound<'a>),
    Not(Box<BoundExpr<'a>>),
    And(Vec<BoundExpr<'a>>),
    Or(Vec<BoundExpr<'a>>),
}

fn bind_expr<'a>(expr: &Expr, store: &'a Store, scores: Scores<'a>) -> Result<BoundExpr<'a>> {
    let all = |operands: &[Expr]| {
        operands
            .iter()
            .map(|operand| bind_expr(operand, store, scores))
            .collect::<Result<Vec<_>>>()
    };
    Ok(match expr {
        Expr::Condition(condition) => BoundExpr::Condition(bind(condition, store, scores)?),
        Expr::Not(operand) => BoundExpr::Not(Box::new(bind_expr(operand, store, scores)?)),
        Expr::And(operands) => BoundExpr::And(all(operands)?),
        Expr::Or(operands) => BoundExpr::Or(all(operands)?),
    })
}

impl Filter {
    /// Resolves every name and value against `store` without evaluating anything: the errors
    /// [`Filter::eligible`] would give (an unknown column or value), before scores exist.
    pub fn check(&self, store: &Store) -> Result<()> {
        let no_scores = Scores {
            crv: &[],
            tier: TierColumn::Stored(&[]),
        };
        match &self.expr {
            Some(expr) => bind_expr(expr, store, no_scores).map(drop),
            None => Ok(()),
        }
    }

    /// Whether some condition looks at the tier (so evaluating it needs the tiers' cut points).
    pub fn uses_tier(&self) -> bool {
        fn uses(expr: &Expr) -> bool {
            match expr {
                Expr::Condition(condition) => parts(condition).0.text == "tier",
                Expr::Not(operand) => uses(operand),
                Expr::And(operands) | Expr::Or(operands) => operands.iter().any(uses),
            }
        }
        self.expr.as_ref().is_some_and(uses)
    }

    /// [`Filter::eligible_until`] over `table`: its columns, its CRV and, only when some
    /// condition looks at the tier, its tiers (the cut points, computed then if not yet).
    pub fn eligible_in(&self, table: &Table, cancel: &Cancel) -> Result<Vec<bool>> {
        let scores = Scores {
            crv: table.crv(),
            tier: if self.uses_tier() {
                table.tier_column()
            } else {
                TierColumn::Stored(&[])
            },
        };
        self.eligible_until(table.store(), scores, cancel)
    }

    /// Resolves every name and value against `store` and `scores`, then marks the rows where
    /// the expression holds. The mask has one entry per row.
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
        let rows = store.rows();
        let Some(expr) = &self.expr else {
            return Ok(vec![true; rows]);
        };
        let bound = bind_expr(expr, store, scores)?;
        let mut mask = Vec::with_capacity(rows);
        for first in (0..rows).step_by(CANCEL_CHECK_ROWS) {
            cancel.check("filter evaluation (`where`)")?;
            let block = first..rows.min(first + CANCEL_CHECK_ROWS);
            mask.extend(evaluate(&bound, false, block));
        }
        Ok(mask)
    }
}

/// Rows evaluated between two questions to the cancel token.
pub const CANCEL_CHECK_ROWS: usize = 16 << 10;

/// Refuses an expression longer than [`MAX_FILTER_BYTES`] before reading it.
pub(super) fn check_length(text: &str) -> Result<()> {
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

/// The mask of `expr` (of `not expr` when `negate`) over the rows `rows`. `not` is pushed down
/// to the conditions (De Morgan), so it costs nothing; a conjunction ANDs its conditions into
/// one mask in place; only a nested `or`/`and` takes a mask of its own.
fn evaluate(expr: &BoundExpr<'_>, negate: bool, rows: Range<usize>) -> Vec<bool> {
    let (operands, conjunction) = match expr {
        BoundExpr::Condition(condition) => {
            let mut mask = vec![true; rows.len()];
            apply(condition, negate, &mut mask, rows.start);
            return mask;
        }
        BoundExpr::Not(operand) => return evaluate(operand, !negate, rows),
        BoundExpr::And(operands) => (operands, !negate),
        BoundExpr::Or(operands) => (operands, negate),
    };
    if conjunction {
        let mut mask = vec![true; rows.len()];
        for operand in operands {
            match operand {
                BoundExpr::Condition(condition) => apply(condition, negate, &mut mask, rows.start),
                nested => {
                    let other = evaluate(nested, negate, rows.clone());
                    mask.iter_mut().zip(other).for_each(|(keep, o)| *keep &= o);
                }
            }
        }
        mask
    } else {
        let mut mask = vec![false; rows.len()];
        for operand in operands {
            let other = evaluate(operand, negate, rows.clone());
            mask.iter_mut().zip(other).for_each(|(keep, o)| *keep |= o);
        }
        mask
    }
}

/// ANDs `condition` (its negation when `negate`) into `mask`, the rows from `first` on.
fn apply(condition: &Bound<'_>, negate: bool, mask: &mut [bool], first: usize) {
    match condition {
        Bound::Number { values, op, right } => {
            for (keep, &value) in mask.iter_mut().zip(values[first..].iter()) {
                *keep &= op.holds(value, *right) != negate;
            }
        }
        Bound::NumberIn { values, accepted } => {
            for (keep, &value) in mask.iter_mut().zip(values[first..].iter()) {
                let found = accepted
                    .binary_search_by(|probe| probe.total_cmp(&(value + 0.0)))
                    .is_ok();
                *keep &= found != negate;
            }
        }
        Bound::Id { ids, op, right } => {
            for (keep, &id) in mask.iter_mut().zip(ids[first..].iter()) {
                *keep &= op.holds(id, *right) != negate;
            }
        }
        Bound::Codes { codes, accepted } => {
            for (keep, &code) in mask.iter_mut().zip(codes[first..].iter()) {
                let passes = accepted.get(code as usize).copied().unwrap_or(false);
                *keep &= passes != negate;
            }
        }
        Bound::Tiers { tiers, accepted } => {
            for (row, keep) in (first..).zip(mask.iter_mut()) {
                *keep &= ((accepted >> (tiers.get(row) as u8)) & 1 == 1) != negate;
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
                    "{} is not a number (column {} is numeric)",
                    quote(&literal.text),
                    quote(column)
                ),
            )
        })
}

/// Splits a condition into its column, operator (None for `in`) and values.
fn parts(condition: &Condition) -> (&Literal, Option<Comparison>, &[Literal]) {
    match condition {
        Condition::Compare { column, op, value } => {
            (column, Some(*op), std::slice::from_ref(value))
        }
        Condition::In { column, values } => (column, None, values),
    }
}

/// Text and tiers have no order: only `=`, `!=` and `in` apply. True for `!=`.
fn equality_only(column: &Literal, op: Option<Comparison>) -> Result<bool> {
    match op {
        None | Some(Comparison::Eq) => Ok(false),
        Some(Comparison::Ne) => Ok(true),
        Some(_) => Err(syntax(
            column.position,
            format!("{} is not numeric: use =, != or in", quote(&column.text)),
        )),
    }
}

/// A comparison of text ids with `value`, as one of the stored positions: the ids are sorted by
/// their bytes, so `id < value` is `position < (ids below value)`, and so on; an `=` with an
/// id the store does not have compares with a position no row holds.
fn text_id_bound(
    text_ids: &crate::store::Dictionary<'_>,
    op: Comparison,
    value: &str,
) -> (Comparison, u64) {
    let below = |inclusive: bool| -> u64 {
        let (mut low, mut high) = (0usize, text_ids.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let entry = text_ids.get(middle as u32).unwrap_or_default();
            if entry < value || (inclusive && entry == value) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low as u64
    };
    let (less, at_most) = (below(false), below(true));
    let position = if at_most > less { less } else { u64::MAX };
    match op {
        Comparison::Lt => (Comparison::Lt, less),
        Comparison::Le => (Comparison::Lt, at_most),
        Comparison::Gt => (Comparison::Ge, at_most),
        Comparison::Ge => (Comparison::Ge, less),
        Comparison::Eq | Comparison::Ne => (op, position),
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
        let mut parsed = values
            .iter()
            .map(|v| parse_number(v, name).map(|value| value + 0.0))
            .collect::<Result<Vec<f32>>>()?;
        Ok(match op {
            Some(op) => Bound::Number {
                values: column_values,
                op,
                right: parsed[0],
            },
            None => {
                parsed.sort_by(f32::total_cmp);
                parsed.dedup();
                Bound::NumberIn {
                    values: column_values,
                    accepted: parsed,
                }
            }
        })
    };
    if name == "crv" && store.column("crv").is_none() {
        return numbers(scores.crv);
    }
    if name == "tier" && store.column("tier").is_none() {
        let negate = equality_only(column, op)?;
        let mut accepted = 0u8;
        for v in values {
            let tier = v.text.parse::<Tier>().map_err(|_| {
                syntax(
                    v.position,
                    format!("{} is not a tier (A, B, C or N)", quote(&v.text)),
                )
            })?;
            accepted |= 1 << tier as u8;
        }
        if negate {
            accepted = !accepted;
        }
        return Ok(Bound::Tiers {
            tiers: scores.tier,
            accepted,
        });
    }
    match store.column(name) {
        Some(Column::F32(values)) => numbers(values),
        Some(Column::U64(ids)) => {
            let (Some(op), [value]) = (op, values) else {
                return Err(syntax(
                    column.position,
                    "`customer_id` takes a comparison, not `in`",
                ));
            };
            if let Some(text_ids) = store.text_ids() {
                let (op, right) = text_id_bound(&text_ids, op, &value.text);
                return Ok(Bound::Id { ids, op, right });
            }
            let right = value.text.parse::<u64>().map_err(|_| {
                syntax(
                    value.position,
                    format!("{} is not a customer id", quote(&value.text)),
                )
            })?;
            Ok(Bound::Id { ids, op, right })
        }
        Some(Column::Text(text)) => {
            let negate = equality_only(column, op)?;
            let codes: HashMap<&str, u32> = text.dictionary.iter().zip(0..).collect();
            let mut accepted = vec![negate; text.dictionary.len()];
            for v in values {
                let code = codes.get(v.text.as_str()).ok_or_else(|| {
                    let known: Vec<&str> = text.dictionary.iter().take(20).collect();
                    syntax(
                        v.position,
                        format!(
                            "{} is not a value of {} (values: {})",
                            quote(&v.text),
                            quote(name),
                            quote(&known.join(", "))
                        ),
                    )
                })?;
                accepted[*code as usize] = !negate;
            }
            Ok(Bound::Codes {
                codes: text.codes,
                accepted,
            })
        }
        None => {
            let mut known: Vec<&str> = store.columns().iter().map(|c| c.name.as_str()).collect();
            known.extend(["crv", "tier"]);
            Err(syntax(
                column.position,
                format!(
                    "unknown column {} (columns: {})",
                    quote(name),
                    known.join(", ")
                ),
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
            tier: TierColumn::Stored(&TIER),
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
    fn text_id_comparisons_follow_the_ids_byte_order() {
        let ids = ["C-9", "C-10", "b", "C-2", "007"];
        let mut csv = String::from("customer_id,margin\n");
        for id in ids {
            csv.push_str(&format!("{id},1\n"));
        }
        let parsed = read_csv(csv.as_bytes(), "t.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        let store = Store::from_bytes(&bytes).unwrap();
        let crv = [1.0f32; 5];
        let tier = [Tier::A; 5];
        let scores = Scores {
            crv: &crv,
            tier: TierColumn::Stored(&tier),
        };
        for value in ["C-9", "C-10", "C-1", "C-", "007", "0", "b", "c"] {
            for (op, holds) in [
                ("=", (|a: &str, b: &str| a == b) as fn(&str, &str) -> bool),
                ("!=", |a, b| a != b),
                ("<", |a, b| a < b),
                ("<=", |a, b| a <= b),
                (">", |a, b| a > b),
                (">=", |a, b| a >= b),
            ] {
                let expression = format!("customer_id {op} '{value}'");
                let mask = Filter::parse(&expression)
                    .unwrap()
                    .eligible(&store, scores)
                    .unwrap();
                let want: Vec<bool> = ids.iter().map(|id| holds(id, value)).collect();
                assert_eq!(mask, want, "{expression}");
            }
        }
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
        assert!(error("margin > 1 crv > 2").contains("at position 12: expected `and` or `or`"));
        assert!(
            error("(margin > 1")
                .contains("at position 12: expected `)` to close the `(` at position 1")
        );
        assert!(error("margin > 1)").contains("at position 11: `)` without a matching `(`"));
        assert!(
            error("(margin > 1 crv > 2)").contains("at position 13: expected `and`, `or` or `)`")
        );
        assert!(error("not").contains("at position 4: expected a column name or `(` at the end"));
        assert!(error("margin > 1 or").contains("at position 14: expected a column name"));
        assert!(error("()").contains("at position 2: expected a column name or `(`"));
        assert!(error("segment = 'gold").contains("at position 11: unclosed"));
        assert!(error("margin > ten").contains("`ten` is not a number"));
        assert!(error("tier = Z").contains("`Z` is not a tier"));
        assert!(error("segment > gold").contains("is not numeric"));
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        // or of (segment = gold) and (margin > 100): rows 1, 2 (margin 150, 250) and 0 (gold).
        assert_eq!(
            eligible("segment = gold or margin > 100 and tier = B").unwrap(),
            [true, true, true, false]
        );
        assert_eq!(
            eligible("(segment = gold or margin > 100) and tier = B").unwrap(),
            [false, true, false, false]
        );
        assert_eq!(
            eligible("not segment = gold and margin > 0").unwrap(),
            [false, true, false, false]
        );
        assert_eq!(
            eligible("not (segment = gold and margin > 0)").unwrap(),
            [false, true, false, true]
        );
        assert_eq!(
            eligible("segment not in (gold, basic) OR NOT tier != N").unwrap(),
            [false, true, false, true]
        );
        assert_eq!(
            eligible("not not crv > 50").unwrap(),
            [false, true, true, false]
        );
    }

    #[test]
    fn a_column_may_be_named_like_a_keyword_when_quoted_or_compared() {
        let message = error("not = 5");
        assert!(message.contains("unknown column `not`"), "{message}");
        let message = error("'or' in (1)");
        assert!(message.contains("unknown column `or`"), "{message}");
    }

    #[test]
    fn nesting_is_capped_with_its_position() {
        let deep = format!(
            "{}margin > 1{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        let message = error(&deep);
        assert!(
            message.contains(&format!(
                "at position {}: more than {MAX_NESTING} levels",
                MAX_NESTING + 1
            )),
            "{message}"
        );
        let ok = format!(
            "{}margin > 1{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert_eq!(eligible(&ok).unwrap(), [true, true, true, false]);
        let nots = format!("{}margin > 1", "not ".repeat(10_000));
        assert!(error(&nots).contains("more than"));
    }

    #[test]
    fn long_repeated_lists_bind_to_their_distinct_values() {
        let tiers = vec!["A"; MAX_FILTER_VALUES - 1].join(", ");
        assert_eq!(
            eligible(&format!("tier in ({tiers}, B)")).unwrap(),
            [false, true, true, false]
        );
        let segments = vec!["gold"; MAX_FILTER_VALUES].join(", ");
        assert_eq!(
            eligible(&format!("segment in ({segments})")).unwrap(),
            [true, false, true, false]
        );
        let margins = ["150", "-0", "250"]
            .repeat(MAX_FILTER_VALUES / 3)
            .join(", ");
        assert_eq!(
            eligible(&format!("margin in ({margins})")).unwrap(),
            [false, true, true, false]
        );
        let filter = Filter::parse(&format!("margin in ({margins})")).unwrap();
        let Some(Expr::Condition(condition)) = &filter.expr else {
            panic!("one condition");
        };
        let store = store();
        let scores = Scores {
            crv: &CRV,
            tier: TierColumn::Stored(&TIER),
        };
        let Ok(Bound::NumberIn { accepted, .. }) = bind(condition, &store, scores) else {
            panic!("a numeric list");
        };
        assert_eq!(accepted, [0.0, 150.0, 250.0]);
    }

    #[test]
    fn echoed_values_are_quoted_and_truncated() {
        let long = "x".repeat(10_000);
        let message = error(&format!("segment = '{long}\u{1b}'"));
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("…(10001 bytes)"), "{message}");
        let message = error("margin > '\u{1b}[2J'");
        assert!(message.contains("`\\u{1b}[2J`"), "{message}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A plain expression tree, rendered as text and evaluated row by row.
        #[derive(Debug, Clone)]
        enum Plain {
            Leaf(usize),
            Not(Box<Plain>),
            And(Box<Plain>, Box<Plain>),
            Or(Box<Plain>, Box<Plain>),
        }

        const ROWS: usize = 4;
        const MARGIN: [f32; ROWS] = [50.0, 150.0, 250.0, -5.0];
        const SEGMENT: [&str; ROWS] = ["gold", "silver", "gold", "basic"];

        /// The conditions, as text and as a plain test of one row.
        /// A plain test of one row.
        type RowTest = fn(usize) -> bool;

        const LEAVES: [(&str, RowTest); 8] = [
            ("segment = gold", |r| SEGMENT[r] == "gold"),
            ("segment in (silver, basic, silver)", |r| {
                SEGMENT[r] != "gold"
            }),
            ("margin > 100", |r| MARGIN[r] > 100.0),
            ("margin in (50, -5)", |r| {
                MARGIN[r] == 50.0 || MARGIN[r] == -5.0
            }),
            ("tier in (A, B)", |r| matches!(TIER[r], Tier::A | Tier::B)),
            ("tier != N", |r| TIER[r] != Tier::N),
            ("crv >= 50", |r| CRV[r] >= 50.0),
            ("customer_id <= 2", |r| r < 2),
        ];

        fn plain() -> impl Strategy<Value = Plain> {
            (0..LEAVES.len())
                .prop_map(Plain::Leaf)
                .prop_recursive(5, 32, 2, |inner| {
                    prop_oneof![
                        inner.clone().prop_map(|e| Plain::Not(Box::new(e))),
                        (inner.clone(), inner.clone())
                            .prop_map(|(a, b)| Plain::And(Box::new(a), Box::new(b))),
                        (inner.clone(), inner)
                            .prop_map(|(a, b)| Plain::Or(Box::new(a), Box::new(b))),
                    ]
                })
        }

        /// Binding strength: or 1, and 2, not 3, a condition 4.
        fn strength(e: &Plain) -> u8 {
            match e {
                Plain::Or(..) => 1,
                Plain::And(..) => 2,
                Plain::Not(_) => 3,
                Plain::Leaf(_) => 4,
            }
        }

        /// The text with only the parentheses precedence requires (`not` binds tightest).
        fn render(e: &Plain) -> String {
            let operand = |child: &Plain, at_least: u8| {
                if strength(child) >= at_least {
                    render(child)
                } else {
                    format!("({})", render(child))
                }
            };
            match e {
                Plain::Leaf(i) => LEAVES[*i].0.to_string(),
                Plain::Not(a) => format!("not {}", operand(a, 3)),
                Plain::And(a, b) => format!("{} and {}", operand(a, 2), operand(b, 3)),
                Plain::Or(a, b) => format!("{} or {}", operand(a, 1), operand(b, 2)),
            }
        }

        fn holds(e: &Plain, row: usize) -> bool {
            match e {
                Plain::Leaf(i) => LEAVES[*i].1(row),
                Plain::Not(a) => !holds(a, row),
                Plain::And(a, b) => holds(a, row) && holds(b, row),
                Plain::Or(a, b) => holds(a, row) || holds(b, row),
            }
        }

        proptest! {
            #[test]
            fn the_filter_agrees_with_a_plain_evaluator(e in plain()) {
                let expected: Vec<bool> = (0..ROWS).map(|row| holds(&e, row)).collect();
                prop_assert_eq!(eligible(&render(&e)).unwrap(), expected);
            }

            #[test]
            fn not_is_the_complement(e in plain()) {
                let mask = eligible(&format!("({})", render(&e))).unwrap();
                let complement = eligible(&format!("not ({})", render(&e))).unwrap();
                for (a, b) in mask.iter().zip(&complement) {
                    prop_assert_ne!(a, b);
                }
            }

            #[test]
            fn de_morgan_holds(a in plain(), b in plain()) {
                let (a, b) = (render(&a), render(&b));
                prop_assert_eq!(
                    eligible(&format!("not (({a}) and ({b}))")).unwrap(),
                    eligible(&format!("not ({a}) or not ({b})")).unwrap()
                );
                prop_assert_eq!(
                    eligible(&format!("not (({a}) or ({b}))")).unwrap(),
                    eligible(&format!("not ({a}) and not ({b})")).unwrap()
                );
            }
        }
    }
}
