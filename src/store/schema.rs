//! The columns docs/model.md gives a meaning to, and the value domain each must satisfy: the one
//! place the code names them. Import checks every value against it and `Store::verify` checks
//! the stored columns again.

/// The column of customer ids.
pub const CUSTOMER_ID: &str = "customer_id";
/// Margin per period (m_i).
pub const MARGIN: &str = "margin";
/// Probability of staying one more period (r_i).
pub const RETENTION: &str = "retention";
/// Cost per period of keeping the customer.
pub const RETENTION_COST: &str = "retention_cost";
/// One-off cost of developing the relationship.
pub const DEVELOPMENT_COST: &str = "development_cost";
/// One-off cost of acquiring the customer.
pub const ACQUISITION_COST: &str = "acquisition_cost";
/// Value per period of the customer's referrals.
pub const REFERRAL_VALUE: &str = "referral_value";
/// Value per period of what the firm learns from the customer.
pub const COMPETENCE_VALUE: &str = "competence_value";
/// The resource a contact uses (CR_i), the default cost column of a campaign.
pub const COST: &str = "cost";
/// Repeat purchases in the observed period.
pub const FREQUENCY: &str = "frequency";
/// Age of the customer at the last repeat purchase.
pub const RECENCY: &str = "recency";
/// Periods observed since the first purchase.
pub const AGE: &str = "age";
/// Mean value of the repeat purchases.
pub const MONETARY_VALUE: &str = "monetary_value";

/// Purchase periods in the holdout period (`crv rfm --calibration-end`; read by `crv fit
/// --holdout`). An attribute for the store, like the two below.
pub const FREQUENCY_HOLDOUT: &str = "frequency_holdout";
/// Mean spend of the holdout purchases.
pub const MONETARY_VALUE_HOLDOUT: &str = "monetary_value_holdout";
/// Length of the holdout period, in the time unit.
pub const DURATION_HOLDOUT: &str = "duration_holdout";

/// One column of docs/model.md's table: its name, the values it may hold, and whether every
/// row must have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownColumn {
    /// The column's name in a CSV header and a store.
    pub name: &'static str,
    /// The values it may hold.
    pub domain: Domain,
    /// Whether an empty cell is an error (otherwise it counts as zero, as a missing column
    /// would).
    pub requires_value: bool,
}

const fn column(name: &'static str, domain: Domain, requires_value: bool) -> KnownColumn {
    KnownColumn {
        name,
        domain,
        requires_value,
    }
}

/// The numeric columns docs/model.md gives a meaning to, besides `customer_id`, in its order
/// (also the order `crv gen` writes them in). They are always stored as numbers: a text value
/// in one of them is an error, not a text attribute. The one list of them in the code.
pub const KNOWN_COLUMNS: &[KnownColumn] = &[
    column(MARGIN, Domain::Finite, true),
    column(RETENTION, Domain::Probability, true),
    column(RETENTION_COST, Domain::NonNegative, false),
    column(DEVELOPMENT_COST, Domain::NonNegative, false),
    column(ACQUISITION_COST, Domain::NonNegative, false),
    column(REFERRAL_VALUE, Domain::Finite, false),
    column(COMPETENCE_VALUE, Domain::Finite, false),
    column(COST, Domain::NonNegative, false),
    column(FREQUENCY, Domain::NonNegative, false),
    column(RECENCY, Domain::NonNegative, false),
    column(AGE, Domain::NonNegative, false),
    column(MONETARY_VALUE, Domain::NonNegative, false),
];

/// The known column called `name`, if it is one.
pub fn known(name: &str) -> Option<&'static KnownColumn> {
    KNOWN_COLUMNS.iter().find(|column| column.name == name)
}

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
    /// The domain of the column called `name`: attributes outside [`KNOWN_COLUMNS`] are
    /// [`Domain::Finite`].
    pub fn of(name: &str) -> Domain {
        known(name).map_or(Domain::Finite, |column| column.domain)
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

    /// Whether every one of `values` is inside the domain ([`Domain::violation`] is `None` for
    /// each): one branch-free pass the compiler vectorises, for values read in bulk.
    pub fn contains_all(self, values: &[f32]) -> bool {
        let all = |inside: fn(f32) -> bool| values.iter().fold(true, |all, &v| all & inside(v));
        match self {
            Domain::Finite => all(|v| v.abs() < f32::INFINITY),
            Domain::NonNegative => all(|v| (0.0..f32::INFINITY).contains(&v)),
            Domain::Probability => all(|v| (0.0..=1.0).contains(&v)),
        }
    }
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

    #[test]
    fn contains_all_agrees_with_violation_value_by_value() {
        let values = [
            0.0,
            -0.0,
            1.0,
            0.5,
            1.0000001,
            -1e-30,
            -5.0,
            3e38,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        for domain in [Domain::Finite, Domain::NonNegative, Domain::Probability] {
            for &value in &values {
                assert_eq!(
                    domain.contains_all(&[value]),
                    domain.violation(value).is_none(),
                    "{domain:?} {value}"
                );
                // Among many inside values, the one outside is still found.
                let mut many = vec![0.25f32; 100];
                many[37] = value;
                assert_eq!(
                    domain.contains_all(&many),
                    domain.violation(value).is_none()
                );
            }
            assert!(domain.contains_all(&[]));
        }
    }
}
