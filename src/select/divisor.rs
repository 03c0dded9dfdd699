//! The greatest common divisor of the candidates' costs, tracked in the preprocessing pass.
//!
//! Dividing every cost by it is exact (`sum w x <= W` iff `sum (w/g) x <= floor(W/g)`) and
//! removes capacity that no combination can use, which would otherwise loosen every bound:
//! costs in whole currency units scaled to cents share the divisor 100. The test for "g still
//! divides w" is one multiplication by the inverse of g's odd part modulo 2^64, not a division.

/// A running gcd with a fast exact-divisibility test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommonDivisor {
    /// The gcd so far; 0 before the first cost.
    g: u64,
    /// Trailing zero bits of `g`.
    shift: u32,
    /// Inverse of `g >> shift` modulo 2^64.
    inverse: u64,
    /// `u64::MAX / (g >> shift)`: the products of multiples of the odd part stay at or below it.
    limit: u64,
}

impl CommonDivisor {
    /// No cost seen yet.
    pub fn new() -> Self {
        CommonDivisor {
            g: 0,
            shift: 0,
            inverse: 1,
            limit: 0,
        }
    }

    /// The gcd of the costs seen (0 when none).
    pub fn value(&self) -> u64 {
        self.g
    }

    /// Whether the current divisor divides `w` (`w >= 1`).
    #[inline]
    fn divides(&self, w: u64) -> bool {
        w.trailing_zeros() >= self.shift
            && (w >> self.shift).wrapping_mul(self.inverse) <= self.limit
    }

    /// Takes one cost (`w >= 1`) into the gcd.
    #[inline]
    pub fn add(&mut self, w: u64) {
        if self.g != 1 && (self.g == 0 || !self.divides(w)) {
            self.set(gcd(self.g, w));
        }
    }

    /// Takes every cost `other` has seen into the gcd.
    pub fn merge(&mut self, other: &CommonDivisor) {
        if other.g != 0 {
            self.add(other.g);
        }
    }

    /// `w / g` for a multiple `w` of the divisor.
    #[inline]
    pub fn divide(&self, w: u64) -> u64 {
        (w >> self.shift).wrapping_mul(self.inverse)
    }

    fn set(&mut self, g: u64) {
        self.g = g;
        self.shift = g.trailing_zeros();
        let odd = g >> self.shift;
        // Newton's iteration doubles the correct low bits: 3 -> 6 -> 12 -> 24 -> 48 -> 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        self.inverse = inverse;
        self.limit = u64::MAX / odd;
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divisor_of(costs: &[u64]) -> CommonDivisor {
        let mut d = CommonDivisor::new();
        for &w in costs {
            d.add(w);
        }
        d
    }

    #[test]
    fn the_divisor_is_the_gcd_of_the_costs() {
        assert_eq!(divisor_of(&[100, 300, 5000]).value(), 100);
        assert_eq!(divisor_of(&[100, 300, 5050]).value(), 50);
        assert_eq!(divisor_of(&[6, 9, 15]).value(), 3);
        assert_eq!(divisor_of(&[7, 8]).value(), 1);
        assert_eq!(divisor_of(&[64, 1 << 40]).value(), 64);
        assert_eq!(divisor_of(&[u64::MAX]).value(), u64::MAX);
    }

    #[test]
    fn division_by_the_divisor_is_exact() {
        let d = divisor_of(&[700, 2100, 4900]);
        assert_eq!(d.value(), 700);
        assert_eq!(d.divide(4900), 7);
        assert_eq!(d.divide(700 * 123_456_789), 123_456_789);
    }

    #[test]
    fn the_divisibility_test_matches_the_remainder() {
        for g in [1u64, 3, 12, 100, 1 << 20, 999_999_937] {
            let mut d = CommonDivisor::new();
            d.add(g);
            for w in (1..5000).chain([g * 17, g * 17 + 1, u64::MAX]) {
                assert_eq!(d.divides(w), w % g == 0, "g={g} w={w}");
            }
        }
    }
}
