//! Turns real-valued resources (currency, minutes) into the integer units the solver works in.
//!
//! A cost's own units are the decimal the user wrote, which is what crv prints: the shortest
//! decimal that reads back as the stored f32 (`12.34`, not the f32's exact value
//! `12.340000152587890625`). With `s` resource units per cost unit, a cost whose decimal is `D`
//! becomes the least whole number of units `u` with `u >= D s`, and a budget `B` (an f64, whose
//! decimal is what the user wrote) the greatest `U` with `U <= B s`, where a product within a
//! few f64 ulps of a whole number (relative `2^-50`) counts as that number. So whole-cent costs
//! at scale 100 cost exactly their cents, a budget of `1234.56` is 123456 cents, and any set of
//! customers whose units fit the scaled budget has written costs that sum to at most the
//! written budget: `sum D_i <= sum u_i / s <= U / s <= B`. A positive cost, however small, is
//! at least one unit.
//!
//! How it is computed: the f32 `c` lies within its representation error of `D`,
//! `|D - c| <= 2^-24 c`. When no whole number lies within `2^-23 c s` of the f64 product `c s`
//! (that error plus the product's own rounding, with room to spare), `D s` and `c s` share their
//! ceiling, and `c`'s exact ceiling is taken: the product and quotient are rounded in f64 and a
//! fused multiply-add gives the exact sign of what is left over, which decides the last unit.
//! Otherwise (whole-cent data at scale 100, say), when the scale is a power of ten and the
//! whole number `k` over the scale lies well inside `c`'s rounding interval, narrower than a
//! tenth of a unit, `D` is that decimal and the cost is `k` units, without formatting anything.
//! Failing that, `D` itself is formatted (zmij: shortest round-trip digits), read back as the
//! nearest f64, multiplied by `s` in f64, and taken as the
//! whole number it lies within `2^-50` of, or else rounded up. The budget is floored exactly the
//! same way when `B s` is not within `2^-50` of a whole number. Within that `2^-50`, a product
//! that is not exactly whole counts as whole: with a scale and budget that are short decimals
//! (100, 0.01, 1234.56) the decimal products are exact and the bound holds exactly; with a
//! scale such as `1/3` it holds to that relative `2^-50`.
//!
//! `s` is the f64 scale as given, except that a scale below 1 which is the f64 nearest the
//! reciprocal of a whole number `d` (`0.01`: `d = 100`) means exactly `1/d`, so that a cost of
//! 100 at scale 0.01 is one unit (the f64 `0.01` is a hair above 1/100, and 100 times it a hair
//! above one unit); the products are then quotients by `d`.
//! Every scaled amount is checked against `u64::MAX` and so is the total of all costs.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Integer resource units per cost unit when none is given: costs in cents.
pub const DEFAULT_RESOURCE_SCALE: f64 = 100.0;

/// 2^64 as an `f64`: the first value that no longer fits a `u64`.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;
/// 2^52: below it an f64 quotient is within one unit of the exact one.
const EXACT_QUOTIENT_LIMIT: f64 = 4_503_599_627_370_496.0;
/// 2^-23: relative distance from a whole number within which a scaled f32 cost may be that
/// number once read as its decimal (the f32's representation error, 2^-24, plus the f64
/// product's rounding, with room to spare).
const F32_WINDOW: f64 = 1.0 / 8_388_608.0;
/// 2^-50: relative distance within which a scaled f64 amount counts as a whole number (a few
/// f64 ulps: the representation error of a decimal and the product's rounding).
const F64_WHOLE: f64 = 1.0 / 1_125_899_906_842_624.0;

/// The f64 nearest to `value`'s shortest round-trip decimal (zmij's digits: what crv prints
/// and what the user most likely wrote): `12.34f32` gives the f64 `12.34`, not
/// `12.340000152587890625`. That decimal has at most 9 significant digits, so the f64's own
/// shortest decimal is the same digits. NaN stays NaN, infinities stay infinite.
pub fn as_written(value: f32) -> f64 {
    if !value.is_finite() {
        return f64::from(value);
    }
    fast_float2::parse(zmij::Buffer::new().format_finite(value))
        .expect("fast-float reads back the decimal zmij wrote")
}

/// The sum of `costs` as written (their shortest round-trip decimals, [`as_written`]), added
/// exactly and rounded once to the nearest f64: whole-cent costs summing to `100` give exactly
/// `100.0`, where adding their f64 values could give `100.00000000000001`. Falls back to adding
/// the written f64 values when the exact sum leaves 128 bits (decimals spanning some 29 orders
/// of magnitude). Costs are finite and `>= 0`; a `-0.0` adds nothing. Formats each cost: for
/// the chosen rows, not for whole columns.
pub fn written_sum(costs: impl Iterator<Item = f32> + Clone) -> f64 {
    exact_decimal_sum(costs.clone()).unwrap_or_else(|| costs.map(as_written).sum())
}

/// The exact sum of the costs' shortest decimals, rounded to f64; `None` past 128 bits.
fn exact_decimal_sum(costs: impl IntoIterator<Item = f32>) -> Option<f64> {
    // The running sum is `sum 10^exponent`, the exponent the least seen so far.
    let (mut sum, mut exponent) = (0u128, i32::MAX);
    let mut buffer = zmij::Buffer::new();
    for cost in costs {
        if cost <= 0.0 {
            continue;
        }
        let text = buffer.format_finite(cost);
        let (mantissa, power) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits = 0u128;
        for byte in whole.bytes().chain(fraction.bytes()) {
            digits = digits * 10 + u128::from(byte - b'0');
        }
        let power: i32 = power.parse().expect("zmij writes a decimal exponent");
        let q = power - i32::try_from(fraction.len()).expect("a short decimal");
        if q < exponent {
            if sum != 0 {
                sum = sum.checked_mul(10u128.checked_pow((exponent - q).unsigned_abs())?)?;
            }
            exponent = q;
        }
        let term = digits.checked_mul(10u128.checked_pow((q - exponent).unsigned_abs())?)?;
        sum = sum.checked_add(term)?;
    }
    if sum == 0 {
        return Some(0.0);
    }
    Some(
        format!("{sum}e{exponent}")
            .parse()
            .expect("Rust reads back the decimal it wrote"),
    )
}

/// A cost column in integer resource units ([`scale_costs`]): 4 bytes a row when every cost
/// fits 32 bits (most columns: a million currency units in cents is 1e8), else 8. The solver's
/// passes read the column several times, so the narrow form halves their memory traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CostUnits {
    /// Every cost is below 2^32 units.
    Narrow(Vec<u32>),
    /// Some cost needs 64 bits.
    Wide(Vec<u64>),
}

impl CostUnits {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            CostUnits::Narrow(units) => units.len(),
            CostUnits::Wide(units) => units.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s cost in units.
    ///
    /// # Panics
    ///
    /// If `row` is out of range.
    pub fn get(&self, row: usize) -> u64 {
        match self {
            CostUnits::Narrow(units) => u64::from(units[row]),
            CostUnits::Wide(units) => units[row],
        }
    }

    /// The sum of every row's cost ([`scale_costs`] checked that it fits a `u64`).
    pub fn total(&self) -> u64 {
        let total: u128 = match self {
            CostUnits::Narrow(units) => units.par_iter().map(|&u| u128::from(u)).sum(),
            CostUnits::Wide(units) => units.par_iter().map(|&u| u128::from(u)).sum(),
        };
        u64::try_from(total).expect("scale_costs checked the total")
    }

    /// Every row's cost as a `u64`.
    pub fn into_wide(self) -> Vec<u64> {
        match self {
            CostUnits::Narrow(units) => units.into_iter().map(u64::from).collect(),
            CostUnits::Wide(units) => units,
        }
    }
}

/// Scales each cost to integer resource units: the least `u >= D * resource_scale`, `D` the
/// cost's shortest round-trip decimal (see the module doc for the rule and the scale's reading),
/// in 32 bits a row when the largest cost fits them ([`CostUnits`]).
///
/// `-0.0` counts as zero; a positive cost, however small, costs at least one unit.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `resource_scale` is not finite and positive, when a cost is
/// negative or not finite (naming its row), when a scaled cost does not fit a `u64`, or when the
/// scaled costs together exceed `u64::MAX` units.
pub fn scale_costs(costs: &[f32], resource_scale: f64) -> Result<CostUnits> {
    let scale = Scale::new(resource_scale)?;
    // Units grow with the cost, so the largest cost decides the width (NaN and negative costs
    // are errors of the pass below).
    let largest = costs
        .par_chunks(SCALE_CHUNK_ROWS)
        .map(|chunk| chunk.iter().copied().fold(0.0f32, f32::max))
        .reduce(|| 0.0, f32::max);
    let narrow = scale
        .cost_units(largest)
        .is_some_and(|units| units <= u64::from(u32::MAX));
    if narrow {
        scale_into::<u32>(costs, resource_scale, scale).map(CostUnits::Narrow)
    } else {
        scale_into::<u64>(costs, resource_scale, scale).map(CostUnits::Wide)
    }
}

/// [`scale_costs`] into `C`, which holds every row's units (checked by the caller for `u32`).
fn scale_into<C>(costs: &[f32], resource_scale: f64, scale: Scale) -> Result<Vec<C>>
where
    C: Copy + Default + Send + TryFrom<u64>,
{
    let mut scaled = vec![C::default(); costs.len()];
    // Fixed chunks on the rayon pool, reduced in chunk order: the first bad row in row order
    // is the one named, whatever the thread count. (Each row's decimal costs tens of
    // nanoseconds, and at 1e8 customers the fresh output pages fault on both cores.)
    let chunk_totals: Vec<Result<u128>> = scaled
        .par_chunks_mut(SCALE_CHUNK_ROWS)
        .zip(costs.par_chunks(SCALE_CHUNK_ROWS))
        .enumerate()
        .map(|(chunk, (scaled, costs))| {
            let mut total: u128 = 0;
            for (offset, (out, &cost)) in scaled.iter_mut().zip(costs).enumerate() {
                let row = chunk * SCALE_CHUNK_ROWS + offset;
                if !cost.is_finite() || cost < 0.0 {
                    return Err(Error::invalid(
                        "cost",
                        format!("row {row}: {cost} is not a finite cost >= 0"),
                    ));
                }
                let overflow = || {
                    Error::invalid(
                        "cost",
                        format!(
                            "row {row}: {cost} * {resource_scale} overflows 64-bit resource units"
                        ),
                    )
                };
                let units = scale.cost_units(cost).ok_or_else(overflow)?;
                total += u128::from(units);
                *out = C::try_from(units).map_err(|_| overflow())?;
            }
            Ok(total)
        })
        .collect();
    let mut total: u128 = 0;
    for chunk_total in chunk_totals {
        total += chunk_total?;
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

/// Rows per parallel chunk of [`scale_costs`].
const SCALE_CHUNK_ROWS: usize = 1 << 16;

/// Scales a budget to integer resource units: the greatest `U <= budget * resource_scale`,
/// where a product within a few f64 ulps (`2^-50`) of a whole number counts as that number
/// (see the module doc for the rule and the scale's reading).
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
    scale.budget_units(budget).ok_or_else(|| {
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

    /// `amount * scale`, rounded in f64.
    fn apply(self, amount: f64) -> f64 {
        match self {
            Scale::Times(s) => amount * s,
            Scale::Per(per) => amount / per,
        }
    }

    /// The whole number `amount * scale` lies within `2^-50` of (relative), if any.
    fn whole(self, amount: f64) -> Option<f64> {
        let product = self.apply(amount);
        let near = product.round();
        ((product - near).abs() <= product * F64_WHOLE).then_some(near)
    }

    /// `cost`'s units: the least whole `u >= D scale`, `D` its shortest round-trip decimal, or
    /// `None` when it does not fit a `u64`.
    fn cost_units(self, cost: f32) -> Option<u64> {
        let amount = f64::from(cost);
        let product = self.apply(amount);
        let near = product.round();
        if near == 0.0 || (product - near).abs() > product * F32_WINDOW {
            // No whole number between `c s` and `D s`: they share their ceiling.
            return self.units_at_least(amount);
        }
        if self.is_shortest_decimal(cost, near) {
            return to_u64(near);
        }
        let written = as_written(cost);
        match self.whole(written) {
            Some(units) => to_u64(units),
            None => to_u64(self.apply(written).ceil()),
        }
    }

    /// Whether `units / scale` is certainly `cost`'s shortest round-trip decimal, without
    /// formatting it (the common case of whole cents at scale 100): the scale is a power of
    /// ten (or one per a power of ten), `units / scale` lies well inside `cost`'s rounding
    /// interval (within 0.49 of the gap to each f32 neighbour, far beyond the f64 quotient's
    /// error), and that interval is narrower than a tenth of a unit. Every other decimal with
    /// no more significant digits than `units / scale` lies at least a tenth of a unit from
    /// it, so outside the interval: `units / scale` is the shortest decimal there.
    fn is_shortest_decimal(self, cost: f32, units: f64) -> bool {
        const POWERS_OF_TEN: [f64; 16] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        ];
        let (decimal, unit) = match self {
            Scale::Times(s) if POWERS_OF_TEN.contains(&s) => (units / s, 1.0 / s),
            Scale::Per(per) if POWERS_OF_TEN.contains(&per) => (units * per, per),
            _ => return false,
        };
        // `cost > 0` here (its product is at least half a unit), so both neighbours exist (the
        // one above may be infinite, which fails the test).
        let bits = cost.to_bits();
        let stored = f64::from(cost);
        let below = stored - f64::from(f32::from_bits(bits - 1));
        let above = f64::from(f32::from_bits(bits + 1)) - stored;
        let offset = decimal - stored;
        above * 10.0 < unit && -0.49 * below < offset && offset < 0.49 * above
    }

    /// A budget's units: the whole number `amount * scale` lies within `2^-50` of, else the
    /// greatest whole `U <= amount * scale` exactly; `None` when it does not fit a `u64`.
    fn budget_units(self, amount: f64) -> Option<u64> {
        match self.whole(amount) {
            Some(units) => to_u64(units),
            None => self.units_at_most(amount),
        }
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
    fn costs_take_32_bits_a_row_when_the_largest_fits() {
        let narrow = scale_costs(&[0.0, 12.5, 40_000_000.0], 100.0).unwrap();
        assert_eq!(narrow, CostUnits::Narrow(vec![0, 1250, 4_000_000_000]));
        // 5e9 cents is more than 2^32 - 1: the column needs 64 bits.
        let wide = scale_costs(&[1.0, 50_000_000.0], 100.0).unwrap();
        assert_eq!(wide, CostUnits::Wide(vec![100, 5_000_000_000]));
        assert_eq!(wide.total(), 5_000_000_100);
        assert_eq!((wide.len(), wide.get(1)), (2, 5_000_000_000));
        assert!(scale_costs(&[], 100.0).unwrap().is_empty());
    }

    #[test]
    fn costs_round_up_to_whole_units_of_their_written_decimal() {
        let scaled = scale_costs(&[0.0, -0.0, 12.5, 0.006, 0.004, 1.0], 100.0)
            .unwrap()
            .into_wide();
        assert_eq!(scaled, vec![0, 0, 1250, 1, 1, 100]);
        // The f32 nearest 12.34 is 12.340000152...: as written, exactly 1234 cents.
        assert_eq!(
            scale_costs(&[12.34, 12.33], 100.0).unwrap().into_wide(),
            vec![1234, 1233]
        );
        // 0.333 is 33.3 cents, so 34; the f32 1.005 reads back as 1.005 (100.5 cents, 101);
        // 0.0049 at ten thousand units per cost unit is 49 units.
        assert_eq!(
            scale_costs(&[0.333, 0.004, 1.005], 100.0)
                .unwrap()
                .into_wide(),
            vec![34, 1, 101]
        );
        assert_eq!(scale_costs(&[0.0049], 1e4).unwrap().into_wide(), vec![49]);
        // At one unit per cost unit, and at one unit per hundred, any positive cost is a unit.
        assert_eq!(
            scale_costs(&[0.004, 1.005, 2.0], 1.0).unwrap().into_wide(),
            vec![1, 2, 2]
        );
        assert_eq!(
            scale_costs(&[0.0049, 100.0, 100.5], 0.01)
                .unwrap()
                .into_wide(),
            vec![1, 1, 2]
        );
        assert_eq!(
            scale_costs(&[f32::from_bits(1)], 1e-300)
                .unwrap()
                .into_wide(),
            vec![1]
        );
        // 10 * 1.1 is 11 as written, although the f64 1.1 is a hair above 1.1.
        assert_eq!(scale_costs(&[10.0], 1.1).unwrap().into_wide(), vec![11]);
        // The stored f32 of 16777217 is 16777216, which is what crv prints.
        assert_eq!(
            scale_costs(&[16_777_217.0], 1.0).unwrap().into_wide(),
            vec![16_777_216]
        );
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

    /// `cost`'s shortest round-trip decimal as `(m, q)`: `m 10^q`.
    fn decimal(cost: f32) -> (u128, i32) {
        let text = zmij::Buffer::new().format_finite(cost).to_string();
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: u128 = format!("{whole}{fraction}").parse().unwrap();
        let q = exponent.parse::<i32>().unwrap() - fraction.len() as i32;
        (digits, q)
    }

    /// `a 10^q` against `b`, exactly (a side past u128's reach is the larger, unless zero).
    fn decimal_cmp(a: u128, q: i32, b: u128) -> std::cmp::Ordering {
        let power = |n: u32| 10u128.checked_pow(n);
        if a == 0 || b == 0 {
            a.cmp(&b)
        } else if q >= 0 {
            power(q as u32)
                .and_then(|p| a.checked_mul(p))
                .map_or(std::cmp::Ordering::Greater, |left| left.cmp(&b))
        } else {
            power(q.unsigned_abs())
                .and_then(|p| b.checked_mul(p))
                .map_or(std::cmp::Ordering::Less, |right| a.cmp(&right))
        }
    }

    /// `units` against the written decimal of `cost` times the scale, exactly, for the decimal
    /// scales `n` units per cost unit or one per `n`: `units - D s`.
    fn units_vs_written(units: u64, cost: f32, n: u128, per: bool) -> std::cmp::Ordering {
        let (m, q) = decimal(cost);
        if per {
            decimal_cmp(m, q, u128::from(units) * n).reverse()
        } else {
            decimal_cmp(m * n, q, u128::from(units)).reverse()
        }
    }

    #[test]
    fn rounded_up_costs_cover_the_written_decimal_exactly() {
        // 0.333f32 * 100 rounds in f64 to exactly 33.3...; the classic trap is a product that
        // rounds to a whole number below the exact one. Whole cents are the common case.
        let mut costs = vec![0.333f32, 2.675, 1.005, 0.0049, 0.1, 0.7, 1e-7, 16_777_215.0];
        costs.extend((0..3000).map(|cents| cents as f32 / 100.0));
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            costs.push(f32::from_bits((state >> 40) as u32 % 0x4b80_0000));
            // A random amount of cents, as a CSV would hold it.
            costs.push(((state >> 20) % 10_000_000) as f32 / 100.0);
        }
        for (scale, n, per) in [
            (1.0, 1, false),
            (3.0, 3, false),
            (100.0, 100, false),
            (1e4, 10_000, false),
            (0.01, 100, true),
            (0.1, 10, true),
        ] {
            let units = scale_costs(&costs, scale).unwrap().into_wide();
            for (&cost, &u) in costs.iter().zip(&units) {
                let covers = |u: u64| units_vs_written(u, cost, n, per).is_ge();
                assert!(covers(u), "{cost} * {scale} -> {u} units");
                if u > 0 {
                    assert!(!covers(u - 1), "{cost} * {scale}: {u} is not least");
                }
            }
        }
    }

    #[test]
    fn costs_away_from_a_whole_unit_cover_the_exact_product() {
        // Where no whole unit lies within the f32's error, the stored value's exact ceiling is
        // the written decimal's too, for any scale.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let cost = f32::from_bits((state >> 40) as u32 % 0x4b80_0000);
            for scale in [0.3, 1.0 / 3.0, 1.1, 7.0] {
                let product = f64::from(cost) * scale;
                if (product - product.round()).abs() <= product * F32_WINDOW * 2.0 {
                    continue;
                }
                let u = scale_costs(&[cost], scale).unwrap().into_wide()[0];
                let covers = |u: u64| units_vs(u, f64::from(cost), scale).is_ge();
                assert!(covers(u), "{cost} * {scale} -> {u} units");
                if u > 0 {
                    assert!(!covers(u - 1), "{cost} * {scale}: {u} is not least");
                }
            }
        }
    }

    #[test]
    fn the_budget_rounds_down_to_whole_units_of_its_written_decimal() {
        assert_eq!(scale_capacity(1234.5, 100.0).unwrap(), 123_450);
        // The f64 nearest 1234.56 is a hair below it; as written it is 123456 cents.
        assert_eq!(scale_capacity(1234.56, 100.0).unwrap(), 123_456);
        assert_eq!(scale_capacity(0.0, 100.0).unwrap(), 0);
        assert_eq!(scale_capacity(100.0, 0.01).unwrap(), 1);
        assert_eq!(scale_capacity(99.99, 0.01).unwrap(), 0);
        assert_eq!(scale_capacity(0.999, 1.0).unwrap(), 0);
        assert_eq!(scale_capacity(1234.567, 100.0).unwrap(), 123_456);
        // 0.009 * 1e4 and 10 * 0.3 are whole as written, although the f64 0.009 and 0.3 are a
        // hair below them.
        assert_eq!(scale_capacity(0.009, 1e4).unwrap(), 90);
        assert_eq!(scale_capacity(10.0, 0.3).unwrap(), 3);
        let mut state = 7u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let budget = (state >> 11) as f64 / (1u64 << 53) as f64 * 1e6;
            let cents = ((state >> 20) % 100_000_000) as f64 / 100.0;
            for scale in [0.01, 1.0, 100.0, 1e4] {
                let units = scale_capacity(budget, scale).unwrap();
                let below = |u: u64| units_vs(u, budget, scale).is_le();
                assert!(below(units), "{budget} * {scale} -> {units}");
                assert!(
                    !below(units + 1),
                    "{budget} * {scale}: {units} is not greatest"
                );
            }
            // A budget in whole cents is exactly its cents.
            assert_eq!(
                scale_capacity(cents, 100.0).unwrap(),
                ((state >> 20) % 100_000_000),
                "{cents}"
            );
        }
    }

    #[test]
    fn written_costs_sum_exactly() {
        let sum = |costs: &[f32]| written_sum(costs.iter().copied());
        // Added as f64, 0.1 + 0.2 is 0.30000000000000004; as written it is 0.3.
        assert_eq!(sum(&[0.1, 0.2]), 0.3);
        assert_eq!(sum(&[12.34, 0.66, 87.0]), 100.0);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[-0.0, 0.0]), 0.0);
        assert_eq!(sum(&[1e-7, 2.5e-8]), 1.25e-7);
        // Beyond 128 bits, the written f64 values are added instead.
        assert_eq!(sum(&[1e30, 1e-30]), 1e30);
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
