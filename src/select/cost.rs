//! Turns real-valued resources (currency, minutes) into the integer units the solver works in.
//!
//! Costs are rounded **up** and the budget **down**, exactly: with `s` resource units per cost
//! unit, a cost `c` becomes the least whole number of units `u` with `u >= c s` in exact
//! arithmetic, and a budget `B` the greatest `U` with `U <= B s`. So any set of customers whose
//! units fit the scaled budget has real costs that sum to at most `B`, in the cost column's own
//! units: `sum c_i <= sum u_i / s <= U / s <= B`. A positive cost, however small, is at least
//! one unit.
//!
//! `s` is the f64 scale as given, except that a scale below 1 which is the f64 nearest the
//! reciprocal of a whole number `d` (`0.01`: `d = 100`) means exactly `1/d`, so that a cost of
//! 100 at scale 0.01 is one unit (the f64 `0.01` is a hair above 1/100, and 100 times it a hair
//! above one unit). The products and quotients are rounded in f64; a fused multiply-add then
//! gives the exact sign of what is left over, which decides the last unit.
//! Every scaled amount is checked against `u64::MAX` and so is the total of all costs.

use crate::error::{Error, Result};

/// 2^64 as an `f64`: the first value that no longer fits a `u64`.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;
/// 2^52: below it an f64 quotient is within one unit of the exact one.
const EXACT_QUOTIENT_LIMIT: f64 = 4_503_599_627_370_496.0;

/// Scales each cost to integer resource units: the least `u >= cost * resource_scale`
/// (exactly; see the module doc for the scale's reading).
///
/// `-0.0` counts as zero; a positive cost, however small, costs at least one unit.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `resource_scale` is not finite and positive, when a cost is
/// negative or not finite (naming its row), when a scaled cost does not fit a `u64`, or when the
/// scaled costs together exceed `u64::MAX` units.
pub fn scale_costs(costs: &[f32], resource_scale: f64) -> Result<Vec<u64>> {
    let scale = Scale::new(resource_scale)?;
    let mut total: u128 = 0;
    let mut scaled = Vec::with_capacity(costs.len());
    for (row, &cost) in costs.iter().enumerate() {
        if !cost.is_finite() || cost < 0.0 {
            return Err(Error::invalid(
                "cost",
                format!("row {row}: {cost} is not a finite cost >= 0"),
            ));
        }
        let units = scale.units_at_least(f64::from(cost)).ok_or_else(|| {
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

/// Scales a budget to integer resource units: the greatest `U <= budget * resource_scale`
/// (exactly; see the module doc for the scale's reading).
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `resource_scale` is not finite and positive, when the budget
/// is negative or not finite, or when the scaled budget does not fit a `u64`.
pub fn scale_capacity(budget: f64, resource_scale: f64) -> Result<u64> {
    let scale = Scale::new(resource_scale)?;
    if !budget.is_finite() || budget < 0.0 {
        return Err(Error::invalid(
            "budget",
            format!("{budget} is not a finite budget >= 0"),
        ));
    }
    scale.units_at_most(budget).ok_or_else(|| {
        Error::invalid(
            "budget",
            format!("{budget} * {resource_scale} overflows 64-bit resource units"),
        )
    })
}

/// Resource units per cost unit, as the rounding reads it.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// `s` units per cost unit, the f64 itself.
    Times(f64),
    /// One unit per `d` cost units, `d` a whole number >= 2 (below 2^52).
    Per(f64),
}

impl Scale {
    fn new(resource_scale: f64) -> Result<Scale> {
        if !(resource_scale.is_finite() && resource_scale > 0.0) {
            return Err(Error::invalid(
                "resource-scale",
                format!("{resource_scale} must be finite and > 0"),
            ));
        }
        let per = (1.0 / resource_scale).round();
        Ok(
            if resource_scale < 1.0 && per < EXACT_QUOTIENT_LIMIT && 1.0 / per == resource_scale {
                Scale::Per(per)
            } else {
                Scale::Times(resource_scale)
            },
        )
    }

    /// The least whole `u` with `u >= amount * scale` exactly (`amount` finite, >= 0), or
    /// `None` when it does not fit a `u64`.
    fn units_at_least(self, amount: f64) -> Option<u64> {
        match self {
            Scale::Per(per) if amount / per < EXACT_QUOTIENT_LIMIT => {
                let units = (amount / per).ceil();
                // The quotient is within one unit of `amount / per`; the sign of
                // `units * per - amount` is exact (one rounding of the exact value).
                let short = units.mul_add(per, -amount) < 0.0;
                to_u64(units).map(|u| u + u64::from(short))
            }
            Scale::Per(per) => Scale::Times(1.0 / per).units_at_least(amount),
            Scale::Times(s) => {
                let product = amount * s;
                let units = to_u64(product.ceil())?;
                // Exact when `product` is whole: the error of a product of two f64 is an f64
                // (barring underflow, where the product is below one unit anyway). When it is
                // not whole, `ceil` lies at least an ulp above it, beyond its rounding error.
                let residual = amount.mul_add(s, -product);
                if product.ceil() == product && residual > 0.0 {
                    units.checked_add(to_u64(residual.ceil())?)
                } else if units == 0 && amount > 0.0 {
                    // The product of a tiny amount can underflow to 0.
                    Some(1)
                } else {
                    Some(units)
                }
            }
        }
    }

    /// The greatest whole `U` with `U <= amount * scale` exactly (`amount` finite, >= 0), or
    /// `None` when it does not fit a `u64`: the mirror of [`Scale::units_at_least`].
    fn units_at_most(self, amount: f64) -> Option<u64> {
        match self {
            Scale::Per(per) if amount / per < EXACT_QUOTIENT_LIMIT => {
                let units = (amount / per).floor();
                let over = units.mul_add(per, -amount) > 0.0;
                to_u64(units).map(|u| u - u64::from(over))
            }
            Scale::Per(per) => Scale::Times(1.0 / per).units_at_most(amount),
            Scale::Times(s) => {
                let product = amount * s;
                let units = to_u64(product.floor())?;
                let residual = amount.mul_add(s, -product);
                Some(if product.floor() == product && residual < 0.0 {
                    units.saturating_sub(to_u64((-residual).ceil())?)
                } else {
                    units
                })
            }
        }
    }
}

/// A whole, non-negative `f64` as a `u64`, or `None` when it does not fit.
fn to_u64(units: f64) -> Option<u64> {
    // `as` saturates, so the range is checked first; `units` is whole and >= 0 here.
    (units.is_finite() && units < U64_LIMIT).then_some(units.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_round_up_to_whole_units() {
        let scaled = scale_costs(&[0.0, -0.0, 12.5, 0.006, 0.004, 1.0], 100.0).unwrap();
        assert_eq!(scaled, vec![0, 0, 1250, 1, 1, 100]);
        // The f32 nearest 12.34 is 12.340000152...: a hair above 1234 cents.
        assert_eq!(
            scale_costs(&[12.34, 12.33], 100.0).unwrap(),
            vec![1235, 1233]
        );
        // At one unit per cost unit, and at one unit per hundred, any positive cost is a unit.
        assert_eq!(
            scale_costs(&[0.004, 1.005, 2.0], 1.0).unwrap(),
            vec![1, 2, 2]
        );
        assert_eq!(
            scale_costs(&[0.0049, 100.0, 100.5], 0.01).unwrap(),
            vec![1, 1, 2]
        );
        assert_eq!(scale_costs(&[f32::from_bits(1)], 1e-300).unwrap(), vec![1]);
        // 10 * 1.1 rounds to exactly 11.0 in f64, yet the f64 1.1 is a hair above 1.1: the
        // exact product needs a twelfth unit.
        assert_eq!(scale_costs(&[10.0], 1.1).unwrap(), vec![12]);
    }

    /// Mantissa and exponent of a finite `x >= 0`: `x = m 2^e`.
    fn parts(x: f64) -> (u128, i32) {
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let mantissa = u128::from(bits & ((1 << 52) - 1));
        if exp == 0 {
            (mantissa, -1074)
        } else {
            (mantissa | (1 << 52), exp - 1075)
        }
    }

    /// `a b` against `c d` in exact arithmetic (each product of mantissas fits 106 bits; the
    /// side with the larger exponent is shifted, and a shift past 128 bits means it is larger).
    fn exact_cmp((a, b): (f64, f64), (c, d): (f64, f64)) -> std::cmp::Ordering {
        let (ma, ea) = parts(a);
        let (mb, eb) = parts(b);
        let (mc, ec) = parts(c);
        let (md, ed) = parts(d);
        let (left, el) = (ma * mb, ea + eb);
        let (right, er) = (mc * md, ec + ed);
        if left == 0 || right == 0 {
            return left.cmp(&right);
        }
        let e = el.min(er);
        let shift = |m: u128, ex: i32| {
            let by = (ex - e) as u32;
            m.checked_shl(by)
                .filter(|&shifted| by < 128 && shifted >> by == m)
        };
        match (shift(left, el), shift(right, er)) {
            (Some(l), Some(r)) => l.cmp(&r),
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
        }
    }

    /// `units` against `amount` resource units' worth in cost units, exactly, for the scale as
    /// [`Scale`] reads it: `units - amount s`.
    fn units_vs(units: u64, amount: f64, resource_scale: f64) -> std::cmp::Ordering {
        match Scale::new(resource_scale).unwrap() {
            Scale::Times(s) => exact_cmp((units as f64, 1.0), (amount, s)),
            Scale::Per(per) => exact_cmp((units as f64, per), (amount, 1.0)),
        }
    }

    #[test]
    fn rounded_up_costs_cover_the_exact_product() {
        // 0.333f32 * 100 rounds in f64 to exactly 33.3...; the classic trap is a product that
        // rounds to a whole number below the exact one.
        let mut costs = vec![0.333f32, 2.675, 1.005, 0.0049, 0.1, 0.7, 1e-7, 16_777_215.0];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            costs.push(f32::from_bits((state >> 40) as u32 % 0x4b80_0000));
        }
        for scale in [0.01, 0.1, 0.3, 1.0, 3.0, 100.0, 1e4, 1.0 / 3.0, 1.1] {
            let units = scale_costs(&costs, scale).unwrap();
            for (&cost, &u) in costs.iter().zip(&units) {
                let covers = |u: u64| units_vs(u, f64::from(cost), scale).is_ge();
                assert!(covers(u), "{cost} * {scale} -> {u} units");
                if u > 0 {
                    assert!(!covers(u - 1), "{cost} * {scale}: {u} is not least");
                }
            }
        }
    }

    #[test]
    fn the_budget_rounds_down_to_whole_units() {
        assert_eq!(scale_capacity(1234.5, 100.0).unwrap(), 123_450);
        // The f64 nearest 1234.56 is a hair below it, so 123456 cents would overspend it.
        assert_eq!(scale_capacity(1234.56, 100.0).unwrap(), 123_455);
        assert_eq!(scale_capacity(0.0, 100.0).unwrap(), 0);
        assert_eq!(scale_capacity(100.0, 0.01).unwrap(), 1);
        assert_eq!(scale_capacity(99.99, 0.01).unwrap(), 0);
        assert_eq!(scale_capacity(0.999, 1.0).unwrap(), 0);
        // 0.009 * 1e4 rounds to exactly 90.0 in f64, yet the exact product of the f64 nearest
        // 0.009 and 1e4 is just below 90: 89 whole units fit.
        assert_eq!(scale_capacity(0.009, 1e4).unwrap(), 89);
        // Likewise 10 * 0.3 is 3.0 in f64, and the f64 0.3 a hair below 0.3.
        assert_eq!(scale_capacity(10.0, 0.3).unwrap(), 2);
        let mut state = 7u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let budget = (state >> 11) as f64 / (1u64 << 53) as f64 * 1e6;
            for scale in [0.01, 1.0, 100.0, 1e4] {
                let units = scale_capacity(budget, scale).unwrap();
                let below = |u: u64| units_vs(u, budget, scale).is_le();
                assert!(below(units), "{budget} * {scale} -> {units}");
                assert!(
                    !below(units + 1),
                    "{budget} * {scale}: {units} is not greatest"
                );
            }
        }
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
    fn a_negative_or_non_finite_budget_is_rejected() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = scale_capacity(bad, 100.0).unwrap_err().to_string();
            assert!(err.contains("budget"), "{err}");
        }
        assert!(scale_capacity(1e300, 100.0).is_err());
    }
}
