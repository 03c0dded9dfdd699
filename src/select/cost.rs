//! Turns real-valued resources (currency, minutes) into the integer units the solver works in.
//!
//! Costs and the budget are both multiplied by the resource scale and rounded to the nearest
//! unit, half away from zero (`f64::round`), so a budget equal to a sum of costs admits exactly
//! those costs. Every product is checked against `u64::MAX` and so is the total of all costs.

use crate::error::{Error, Result};

/// 2^64 as an `f64`: the first value that no longer fits a `u64`.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// Scales each cost to integer resource units: `round(cost * resource_scale)`.
///
/// Rounding is to the nearest unit, half away from zero; `-0.0` counts as zero.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `resource_scale` is not finite and positive, when a cost is
/// negative or not finite (naming its row), when a scaled cost does not fit a `u64`, or when the
/// scaled costs together exceed `u64::MAX` units.
pub fn scale_costs(costs: &[f32], resource_scale: f64) -> Result<Vec<u64>> {
    check_scale(resource_scale)?;
    let mut total: u128 = 0;
    let mut scaled = Vec::with_capacity(costs.len());
    for (row, &cost) in costs.iter().enumerate() {
        if !cost.is_finite() || cost < 0.0 {
            return Err(Error::invalid(
                "cost",
                format!("row {row}: {cost} is not a finite cost >= 0"),
            ));
        }
        let units = to_units(f64::from(cost) * resource_scale).ok_or_else(|| {
            Error::invalid(
                "cost",
                format!("row {row}: {cost} * {resource_scale} overflows 64-bit resource units"),
            )
        })?;
        total += u128::from(units);
        scaled.push(units);
    }
    if total > u128::from(u64::MAX) {
        return Err(Error::invalid(
            "cost",
            format!(
                "the scaled costs sum to {total} units, more than {} (lower --resource-scale)",
                u64::MAX
            ),
        ));
    }
    Ok(scaled)
}

/// Scales a budget to integer resource units with the same rounding as [`scale_costs`].
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `resource_scale` is not finite and positive, when the budget
/// is negative or not finite, or when the scaled budget does not fit a `u64`.
pub fn scale_capacity(budget: f64, resource_scale: f64) -> Result<u64> {
    check_scale(resource_scale)?;
    if !budget.is_finite() || budget < 0.0 {
        return Err(Error::invalid(
            "budget",
            format!("{budget} is not a finite budget >= 0"),
        ));
    }
    to_units(budget * resource_scale).ok_or_else(|| {
        Error::invalid(
            "budget",
            format!("{budget} * {resource_scale} overflows 64-bit resource units"),
        )
    })
}

fn check_scale(resource_scale: f64) -> Result<()> {
    if resource_scale.is_finite() && resource_scale > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "resource-scale",
            format!("{resource_scale} must be finite and > 0"),
        ))
    }
}

/// Rounds a non-negative product to whole units, or `None` when it does not fit a `u64`.
fn to_units(product: f64) -> Option<u64> {
    let rounded = product.round();
    // `as` saturates, so the range is checked first; `rounded` is finite and >= 0 here.
    (rounded.is_finite() && rounded < U64_LIMIT).then_some(rounded.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_round_to_the_nearest_unit() {
        let scaled = scale_costs(&[0.0, -0.0, 12.34, 0.006, 0.004, 1.0], 100.0).unwrap();
        assert_eq!(scaled, vec![0, 0, 1234, 1, 0, 100]);
    }

    #[test]
    fn a_negative_cost_is_rejected_with_its_row() {
        let err = scale_costs(&[1.0, -2.0], 100.0).unwrap_err().to_string();
        assert!(err.contains("row 1") && err.contains("-2"), "{err}");
    }

    #[test]
    fn a_non_finite_cost_is_rejected() {
        for bad in [f32::NAN, f32::INFINITY] {
            let err = scale_costs(&[bad], 1.0).unwrap_err().to_string();
            assert!(err.contains("row 0"), "{err}");
        }
    }

    #[test]
    fn a_cost_that_overflows_u64_is_rejected() {
        let err = scale_costs(&[1e30], 1e3).unwrap_err().to_string();
        assert!(err.contains("overflows"), "{err}");
    }

    #[test]
    fn costs_whose_total_overflows_u64_are_rejected() {
        let err = scale_costs(&[1e19, 1e19], 1.0).unwrap_err().to_string();
        assert!(err.contains("sum to"), "{err}");
    }

    #[test]
    fn a_bad_scale_is_rejected() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(scale_costs(&[1.0], bad).is_err());
            assert!(scale_capacity(1.0, bad).is_err());
        }
    }

    #[test]
    fn the_budget_rounds_like_the_costs() {
        assert_eq!(scale_capacity(1234.56, 100.0).unwrap(), 123_456);
        assert_eq!(scale_capacity(0.0, 100.0).unwrap(), 0);
    }

    #[test]
    fn a_negative_or_non_finite_budget_is_rejected() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = scale_capacity(bad, 100.0).unwrap_err().to_string();
            assert!(err.contains("budget"), "{err}");
        }
        assert!(scale_capacity(1e300, 100.0).is_err());
    }
}
