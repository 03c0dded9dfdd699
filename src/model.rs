//! Shared vocabulary of the model in docs/model.md: customer ids, tiers, scoring parameters.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A customer's key, unique within a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomerId(pub u64);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A customer's key as the CRM gives it: a whole number, or text (`C-0001234`, an 18-character
/// Salesforce id). A store with text ids holds them in byte order and numbers its rows' ids
/// by that order ([`CustomerId`] is then the id's position), so everything that breaks ties by
/// customer id orders text ids byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalId<'a> {
    /// A whole number from 0 to 2^64 - 1.
    Number(u64),
    /// Any other id, as imported (leading and trailing spaces trimmed).
    Text(&'a str),
}

impl fmt::Display for ExternalId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalId::Number(id) => id.fmt(f),
            ExternalId::Text(id) => f.write_str(id),
        }
    }
}

/// An id as a CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
#[derive(Debug, Clone, Copy)]
pub struct CsvField<'a>(pub ExternalId<'a>);

impl fmt::Display for CsvField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ExternalId::Text(text) if text.contains([',', '"', '\n', '\r']) => {
                write!(f, "\"{}\"", text.replace('"', "\"\""))
            }
            id => id.fmt(f),
        }
    }
}

/// A number in JSON, a string for a text id.
impl serde::Serialize for ExternalId<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ExternalId::Number(id) => serializer.serialize_u64(*id),
            ExternalId::Text(id) => serializer.serialize_str(id),
        }
    }
}

/// A value tier from ABC analysis; `N` holds customers whose CRV is zero or negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
#[repr(u8)]
pub enum Tier {
    /// The most valuable customers: the first 80% of positive value by default.
    A = 0,
    /// The next band: up to 95% of positive value by default.
    B = 1,
    /// The rest of the customers with positive value.
    C = 2,
    /// Customers with CRV <= 0: they destroy value and need a different treatment.
    N = 3,
}

impl Tier {
    /// All tiers in report order.
    pub const ALL: [Tier; 4] = [Tier::A, Tier::B, Tier::C, Tier::N];

    /// The tier's one-letter name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::A => "A",
            Tier::B => "B",
            Tier::C => "C",
            Tier::N => "N",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "A" | "a" => Ok(Tier::A),
            "B" | "b" => Ok(Tier::B),
            "C" | "c" => Ok(Tier::C),
            "N" | "n" => Ok(Tier::N),
            other => Err(Error::invalid(
                "tier",
                format!("`{other}` is not a tier (A, B, C or N)"),
            )),
        }
    }
}

/// How many periods of cash flow a relationship is valued over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Horizon {
    /// Cash flows at the end of periods 1..=T, T >= 1.
    Periods(u32),
    /// The perpetuity limit, T = infinity.
    Infinite,
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Horizon::Periods(t) => t.fmt(f),
            Horizon::Infinite => f.write_str("inf"),
        }
    }
}

impl FromStr for Horizon {
    type Err = Error;

    /// Parses a whole number of periods (>= 1) or `inf`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") {
            return Ok(Horizon::Infinite);
        }
        match s.parse::<u32>() {
            Ok(0) => Err(Error::invalid(
                "horizon",
                "must be at least 1 period, or `inf`",
            )),
            Ok(t) => Ok(Horizon::Periods(t)),
            Err(_) => Err(Error::invalid(
                "horizon",
                format!("`{s}` is not a whole number of periods or `inf`"),
            )),
        }
    }
}

/// Parameters of the CRV formula shared by every customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreParams {
    /// Discount rate per period, >= 0 and finite (0.10 = 10%).
    pub discount: f64,
    /// Number of periods valued.
    pub horizon: Horizon,
}

impl Default for ScoreParams {
    /// The default: 10% per period over 5 periods.
    fn default() -> Self {
        ScoreParams {
            discount: 0.10,
            horizon: Horizon::Periods(5),
        }
    }
}

impl ScoreParams {
    /// Checks the parameters' domains; the kernel assumes they hold.
    pub fn validate(&self) -> Result<()> {
        if !self.discount.is_finite() || self.discount < 0.0 {
            return Err(Error::invalid(
                "discount",
                format!("{} must be a finite rate >= 0", self.discount),
            ));
        }
        if self.horizon == Horizon::Periods(0) {
            return Err(Error::invalid(
                "horizon",
                "must be at least 1 period, or `inf`",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_parses_periods_and_infinity() {
        assert_eq!("5".parse::<Horizon>().unwrap(), Horizon::Periods(5));
        assert_eq!("inf".parse::<Horizon>().unwrap(), Horizon::Infinite);
        let zero = "0".parse::<Horizon>().unwrap_err().to_string();
        assert!(zero.contains("at least 1"), "{zero}");
        let junk = "five".parse::<Horizon>().unwrap_err().to_string();
        assert!(junk.contains("`five`"), "{junk}");
    }

    #[test]
    fn score_params_reject_negative_or_nan_discount() {
        for discount in [-0.1, f64::NAN, f64::INFINITY] {
            let params = ScoreParams {
                discount,
                ..ScoreParams::default()
            };
            assert!(params.validate().is_err(), "{discount} accepted");
        }
        assert!(ScoreParams::default().validate().is_ok());
    }

    #[test]
    fn tier_round_trips_through_its_name() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>().unwrap(), tier);
        }
        assert!("D".parse::<Tier>().is_err());
    }
}
