//! Exact sums of f32 values, rounded once to f64: the same result in any order of addition, so a
//! selection that never sorts and a full sort agree bit for bit on every tier's value.
//!
//! Every finite f32 is an integer multiple of 2^-149 (the smallest subnormal) below 2^128, so a
//! fixed-point two's-complement integer of 384 bits with that unit holds the sum of up to 2^32
//! of them exactly (2^128 * 2^32 * 2^149 = 2^309, far inside 383 bits). Values of one biased
//! exponent share one scale, so their significands add up in a u64 first (2^32 values of 24 bits
//! need 56 bits) and enter the accumulator once: a bucket of the tier histogram, whose values
//! all have one sign and one exponent, costs one shifted add.

/// 64-bit limbs of the fixed-point accumulator, least significant first.
const LIMBS: usize = 6;

/// Bits below the binary point of the accumulator: its unit is 2^-149.
const FRACTION_BITS: i32 = 149;

/// An exact sum of f32 values (see the module doc). Infinite and NaN values are kept apart, in
/// an f64 sum of their own; once one is added, that sum (infinite or NaN) is the result.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExactSum {
    /// Two's complement, unit 2^-149, least significant limb first.
    limbs: [u64; LIMBS],
    /// The f64 sum of the infinite and NaN values added; 0 while there are none.
    special: f64,
}

/// The significand of an f32 as the integer that, times 2^(max(exponent, 1) - 150), is the
/// value's magnitude: the fraction with the implicit bit for normal numbers, the fraction alone
/// for subnormals (and for infinities and NaN, where a nonzero fraction marks a NaN).
pub(crate) fn significand(bits: u32) -> u64 {
    let fraction = u64::from(bits & 0x7f_ffff);
    match (bits >> 23) & 0xff {
        0 | 0xff => fraction,
        _ => fraction | 1 << 23,
    }
}

impl ExactSum {
    /// Adds `count` values of one sign and one biased exponent (0..=255) whose
    /// [`significand`]s sum to `significands`.
    pub(crate) fn add_significands(
        &mut self,
        negative: bool,
        exponent: u32,
        count: u64,
        significands: u64,
    ) {
        if exponent == 0xff {
            if count > 0 {
                let value = match (significands > 0, negative) {
                    (true, _) => f64::NAN,
                    (false, false) => f64::INFINITY,
                    (false, true) => f64::NEG_INFINITY,
                };
                self.special += value;
            }
            return;
        }
        let shift = exponent.max(1) - 1;
        let (limb, offset) = ((shift / 64) as usize, shift % 64);
        let wide = u128::from(significands) << offset;
        let parts = [wide as u64, (wide >> 64) as u64];
        let mut carry = false;
        for (index, slot) in self.limbs.iter_mut().enumerate().skip(limb) {
            let part = parts.get(index - limb).copied().unwrap_or(0);
            if negative {
                let (difference, borrow_a) = slot.overflowing_sub(part);
                let (difference, borrow_b) = difference.overflowing_sub(u64::from(carry));
                *slot = difference;
                carry = borrow_a || borrow_b;
            } else {
                let (total, carry_a) = slot.overflowing_add(part);
                let (total, carry_b) = total.overflowing_add(u64::from(carry));
                *slot = total;
                carry = carry_a || carry_b;
            }
            if !carry && index > limb {
                break;
            }
        }
    }

    /// Adds one value.
    #[cfg(test)]
    pub(crate) fn add(&mut self, value: f32) {
        let bits = value.to_bits();
        self.add_significands(bits >> 31 == 1, (bits >> 23) & 0xff, 1, significand(bits));
    }

    /// `self - earlier`, exactly (the sum of the values added to `self` after `earlier` was
    /// taken from it). Special values subtract in f64.
    pub(crate) fn minus(&self, earlier: &ExactSum) -> ExactSum {
        let mut limbs = [0u64; LIMBS];
        let mut borrow = false;
        for ((slot, &x), &y) in limbs.iter_mut().zip(&self.limbs).zip(&earlier.limbs) {
            let (difference, borrow_a) = x.overflowing_sub(y);
            let (difference, borrow_b) = difference.overflowing_sub(u64::from(borrow));
            *slot = difference;
            borrow = borrow_a || borrow_b;
        }
        ExactSum {
            limbs,
            special: self.special - earlier.special,
        }
    }

    /// The sum rounded to the nearest f64 (ties to even): the one rounding of the sum.
    pub(crate) fn round(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let negative = self.limbs[LIMBS - 1] >> 63 == 1;
        let magnitude = if negative {
            negate(&self.limbs)
        } else {
            self.limbs
        };
        let Some(top) = (0..LIMBS).rev().find(|&limb| magnitude[limb] != 0) else {
            return 0.0;
        };
        let highest = top as i32 * 64 + 63 - magnitude[top].leading_zeros() as i32;
        let bit = |position: i32| magnitude[(position / 64) as usize] >> (position % 64) & 1;
        // The 53 bits from `highest` down (fewer when the sum is that small: then exact).
        let lowest_kept = (highest - 52).max(0);
        let mut kept = (lowest_kept..=highest)
            .rev()
            .fold(0u64, |kept, position| kept << 1 | bit(position));
        if lowest_kept > 0 {
            let half = bit(lowest_kept - 1) == 1;
            let sticky = (0..lowest_kept - 1).any(|position| bit(position) == 1);
            if half && (sticky || kept & 1 == 1) {
                kept += 1; // at most 2^53: still exact as an f64
            }
        }
        // `kept` has at most 54 bits and the scale lies within f64's normal exponents, so both
        // conversions and the product are exact.
        let magnitude = kept as f64 * power_of_two(lowest_kept - FRACTION_BITS);
        if negative { -magnitude } else { magnitude }
    }
}

/// The two's-complement negation of `limbs`.
fn negate(limbs: &[u64; LIMBS]) -> [u64; LIMBS] {
    let mut negated = [0u64; LIMBS];
    let mut carry = true;
    for (slot, &limb) in negated.iter_mut().zip(limbs) {
        let (value, overflow) = (!limb).overflowing_add(u64::from(carry));
        *slot = value;
        carry = overflow;
    }
    negated
}

/// 2^exponent as an f64, for exponents of normal f64 numbers.
fn power_of_two(exponent: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&exponent));
    f64::from_bits(((exponent + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn exact(values: &[f32]) -> f64 {
        let mut sum = ExactSum::default();
        for &value in values {
            sum.add(value);
        }
        sum.round()
    }

    /// f32 values scaled to integers of at most 2^-149 units: an i128 sum is exact when the
    /// values' exponents stay within a range (here |v| < 2^40 and v a multiple of 2^-60).
    fn reference(values: &[f32]) -> f64 {
        let units: i128 = values
            .iter()
            .map(|&v| (f64::from(v) * 2f64.powi(60)) as i128)
            .sum();
        // Round once: the integer to f64 conversion rounds to nearest even.
        (units as f64) * 2f64.powi(-60)
    }

    #[test]
    fn sums_of_very_different_magnitudes_keep_the_small_ones() {
        // An ulp of 2^60 in f64 is 256: each 1 added alone is below half of it and lost.
        let big = 2f32.powi(60);
        let ones = [1.0f32; 200];
        let mut values = vec![big];
        values.extend_from_slice(&ones);
        // The naive f64 sum drops every 1 (each is below half an ulp of 2^60, 128).
        let naive: f64 = values.iter().map(|&v| f64::from(v)).sum();
        assert_eq!(naive, 2f64.powi(60));
        // Exactly 2^60 + 200, rounded once: the nearest multiple of 256 is 2^60 + 256.
        assert_eq!(exact(&values), 2f64.powi(60) + 256.0);
        // Cancellation: the big values cancel exactly, the small ones remain.
        assert_eq!(exact(&[1e30, 1e-30, -1e30]), f64::from(1e-30f32));
        assert_eq!(exact(&[f32::MAX, f32::MAX, -f32::MAX]), f64::from(f32::MAX));
        let tiny = f32::from_bits(1);
        assert_eq!(exact(&[tiny, tiny, -tiny]), f64::from(tiny));
        assert_eq!(exact(&[]), 0.0);
        assert_eq!(exact(&[-2.5, -0.5]), -3.0);
    }

    #[test]
    fn special_values_follow_f64_arithmetic() {
        assert_eq!(exact(&[1.0, f32::INFINITY]), f64::INFINITY);
        assert_eq!(exact(&[f32::NEG_INFINITY, 3.0]), f64::NEG_INFINITY);
        assert!(exact(&[f32::INFINITY, f32::NEG_INFINITY]).is_nan());
        assert!(exact(&[f32::NAN, 1.0]).is_nan());
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even is 2^53; + 3 rounds up to + 4.
        let big = 2f32.powi(53);
        assert_eq!(exact(&[big, 1.0]), 2f64.powi(53));
        assert_eq!(exact(&[big, 1.0, 1.0, 1.0]), 2f64.powi(53) + 4.0);
        // A tie broken by a sticky bit far below: 2^53 + 1 + 2^-100 rounds up.
        assert_eq!(exact(&[big, 1.0, 2f32.powi(-100)]), 2f64.powi(53) + 2.0);
    }

    proptest! {
        #[test]
        fn exact_sums_match_a_wide_integer_reference(
            values in prop::collection::vec(
                prop_oneof![
                    (-40i32..40, -1.0f32..1.0).prop_map(|(e, m)| {
                        // multiples of 2^-60 below 2^40: exact in the i128 reference
                        let v = m * 2f32.powi(e);
                        (f64::from(v) * 2f64.powi(60)).trunc() as f32 * 2f32.powi(-60)
                    }),
                    prop::sample::select(vec![0.0f32, -0.0, 1.0, 2f32.powi(39), -2f32.powi(39)]),
                ],
                0..200,
            ),
            seed in any::<u64>(),
        ) {
            let expected = reference(&values);
            prop_assert_eq!(exact(&values), expected);
            // In any order, and after subtracting a prefix, the same.
            let mut shuffled = values.clone();
            let mut state = seed | 1;
            for index in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(index, (state % (index as u64 + 1)) as usize);
            }
            prop_assert_eq!(exact(&shuffled), expected);
            let split = values.len() / 3;
            let mut prefix = ExactSum::default();
            let mut whole = ExactSum::default();
            for (index, &value) in values.iter().enumerate() {
                if index < split {
                    prefix.add(value);
                }
                whole.add(value);
            }
            prop_assert_eq!(whole.minus(&prefix).round(), reference(&values[split..]));
        }
    }
}
