//! A store's purchase-history columns (`frequency`, `recency`, `age` or `T`), read in place
//! and checked once: what `crv fit` fits and `crv score --model` values.

use super::History;
use crate::error::{Error, Result};
use crate::store::{Store, schema};

/// The name `age` may also have in a store (lifetimes' and the papers' `T`).
pub const AGE_ALIAS: &str = "T";

/// Every customer's history, column by column, as the store holds it (f32), checked:
/// frequency a whole number >= 0, 0 <= recency <= age, recency 0 when frequency is 0.
#[derive(Debug, Clone, Copy)]
pub struct HistoryColumns<'a> {
    /// Repeat purchases x.
    pub frequency: &'a [f32],
    /// Time t_x of the last purchase since the first.
    pub recency: &'a [f32],
    /// Time T from the first purchase to the end of observation.
    pub age: &'a [f32],
}

impl<'a> HistoryColumns<'a> {
    /// The history columns of `store`, each value checked; an error names the column, the row
    /// (1-based) and the customer.
    pub fn from_store(store: &'a Store) -> Result<HistoryColumns<'a>> {
        let frequency = store.numeric(schema::FREQUENCY)?;
        let recency = store.numeric(schema::RECENCY)?;
        let (age_name, age) = match store.optional_numeric(schema::AGE)? {
            Some(age) => (schema::AGE, age),
            None => match store.optional_numeric(AGE_ALIAS)? {
                Some(age) => (AGE_ALIAS, age),
                None => {
                    return Err(Error::Column {
                        name: schema::AGE.to_string(),
                        message: format!("not in the store (nor `{AGE_ALIAS}`)"),
                    });
                }
            },
        };
        for (row, ((&x, &t_x), &t)) in frequency.iter().zip(recency).zip(age).enumerate() {
            let fail = |column: &str, message: String| Err(row_error(store, column, row, message));
            if !(x >= 0.0 && x.is_finite() && x.fract() == 0.0) {
                return fail(
                    schema::FREQUENCY,
                    format!("{x} is not a whole number of repeat purchases >= 0"),
                );
            }
            if !(t >= 0.0 && t.is_finite()) {
                return fail(age_name, format!("{t} is not a time >= 0"));
            }
            if !(t_x >= 0.0 && t_x <= t) {
                return fail(
                    schema::RECENCY,
                    format!("{t_x} is not a time from 0 to the customer's {age_name}, {t}"),
                );
            }
            if x == 0.0 && t_x != 0.0 {
                return fail(
                    schema::RECENCY,
                    format!("{t_x} with frequency 0: without a repeat purchase, recency is 0"),
                );
            }
        }
        Ok(HistoryColumns {
            frequency,
            recency,
            age,
        })
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.frequency.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.frequency.is_empty()
    }

    /// Row `row`'s history, in f64.
    pub fn history(&self, row: usize) -> History {
        History {
            frequency: f64::from(self.frequency[row]),
            recency: f64::from(self.recency[row]),
            age: f64::from(self.age[row]),
        }
    }

    /// Every customer's history, in row order.
    pub fn to_histories(&self) -> Vec<History> {
        (0..self.len()).map(|row| self.history(row)).collect()
    }
}

/// The column error for `row` (0-based) of `column`, naming the row (1-based) and the customer.
pub(crate) fn row_error(store: &Store, column: &str, row: usize, message: String) -> Error {
    Error::Column {
        name: column.to_string(),
        message: format!(
            "row {} (customer {}): {message}",
            row + 1,
            store.customer_id(row)
        ),
    }
}
