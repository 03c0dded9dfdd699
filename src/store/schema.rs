//! The columns docs/model.md gives a meaning to, and the value domain each must satisfy. Import
//! checks every value against it and `Store::verify` checks the stored columns again.

/// The set of values a numeric column may hold (beyond being finite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Any finite number (margins, one-off values, attributes).
    Finite,
    /// Costs and counts: finite and `>= 0`.
    NonNegative,
    /// A probability: finite and in `[0, 1]`.
    Probability,
}

impl Domain {
    /// The domain of the column called `name`: attributes outside that table are
    /// [`Domain::Finite`].
    pub fn of(name: &str) -> Domain {
        match name {
            "retention" => Domain::Probability,
            "retention_cost" | "development_cost" | "acquisition_cost" | "cost" | "frequency"
            | "recency" | "age" | "monetary_value" => Domain::NonNegative,
            _ => Domain::Finite,
        }
    }

    /// Why `value` is outside the domain, or `None` when it is inside.
    pub fn violation(self, value: f32) -> Option<&'static str> {
        if !value.is_finite() {
            return Some("is not a finite number");
        }
        match self {
            Domain::Finite => None,
            Domain::NonNegative if value < 0.0 => Some("is negative; this column must be >= 0"),
            Domain::Probability if !(0.0..=1.0).contains(&value) => {
                Some("is outside [0, 1]; this column is a probability")
            }
            Domain::NonNegative | Domain::Probability => None,
        }
    }
}

/// The numeric columns of docs/model.md's table, besides `customer_id`. They are always stored as
/// numbers: a text value in one of them is an error, not a text attribute.
pub const KNOWN_NUMERIC: &[&str] = &[
    "margin",
    "retention",
    "retention_cost",
    "development_cost",
    "acquisition_cost",
    "referral_value",
    "competence_value",
    "cost",
    "frequency",
    "recency",
    "age",
    "monetary_value",
];

/// Columns that must have a value in every row when present. The others count an empty
/// cell as zero, as a missing column would.
pub fn requires_value(name: &str) -> bool {
    matches!(name, "margin" | "retention")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_name_the_violation() {
        assert_eq!(Domain::of("retention").violation(0.5), None);
        assert!(
            Domain::of("retention")
                .violation(1.01)
                .unwrap()
                .contains("[0, 1]")
        );
        assert!(
            Domain::of("cost")
                .violation(-0.01)
                .unwrap()
                .contains(">= 0")
        );
        assert_eq!(Domain::of("margin").violation(-5.0), None);
        assert!(
            Domain::of("margin")
                .violation(f32::NAN)
                .unwrap()
                .contains("finite")
        );
        assert!(
            Domain::of("region_score")
                .violation(f32::INFINITY)
                .is_some()
        );
    }
}
