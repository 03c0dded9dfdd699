//! The generator's own random numbers: SplitMix64 keyed by (seed, row), and the few samplers
//! the customer model needs, so a seed gives the same data whatever crate versions are used.
//! Tests and benches draw their seeded instances from the same stream.

use std::f64::consts::TAU;

/// SplitMix64's increment: the golden ratio in 64-bit fixed point.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// 2^-53: turns the top 53 bits of a draw into a float with every bit significant.
const UNIT_53: f64 = 1.0 / (1u64 << 53) as f64;

/// SplitMix64's output function (Stafford's variant 13), a bijection on u64.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One row's stream of random numbers: SplitMix64 (Steele, Lea, Flood 2014) started at a state
/// derived from the seed and the row number, so a row never depends on the rows before it.
///
/// See: <https://prng.di.unimi.it/splitmix64.c>
pub struct RowRng {
    state: u64,
}

impl RowRng {
    /// The stream for row `row` of the data set generated from `seed`.
    pub fn new(seed: u64, row: u64) -> Self {
        // Mixing the seed first keeps (seed, row) and (seed + 1, row - 1) apart.
        RowRng {
            state: mix64(mix64(seed ^ GOLDEN_GAMMA).wrapping_add(row.wrapping_mul(GOLDEN_GAMMA))),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform draw in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * UNIT_53
    }

    /// A uniform draw in (0, 1], safe to take the logarithm of.
    pub fn uniform_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * UNIT_53
    }

    /// A uniform draw in `lo..=hi` (multiply-shift: no division, bias below 2^-64 per value).
    ///
    /// # Panics
    /// If `lo > hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = (hi - lo).checked_add(1);
        match span {
            Some(span) => lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64,
            None => self.next_u64(),
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Two independent standard normal draws (Box-Muller: a fixed number of draws per row,
    /// unlike rejection methods).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let radius = (-2.0 * self.uniform_open0().ln()).sqrt();
        let (sin, cos) = (TAU * self.uniform()).sin_cos();
        (radius * cos, radius * sin)
    }

    /// An exponential draw with mean 1.
    pub fn exponential(&mut self) -> f64 {
        -self.uniform_open0().ln()
    }

    /// A Gamma(`shape`, 1) draw, `shape` > 0 (Marsaglia & Tsang 2000; a shape below 1 through
    /// Gamma(shape + 1) times U^(1/shape), taken as exp(ln U / shape)).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let boost = (self.uniform_open0().ln() / shape).exp();
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let (normal, _) = self.normal_pair();
            let v = 1.0 + c * normal;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform_open0();
            if u.ln() < 0.5 * normal * normal + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A Beta(`a`, `b`) draw, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// A Beta(`a`, 2) draw for whole `a` >= 1, as X / (X + Y) with X ~ Gamma(a) and Y ~ Gamma(2),
    /// each a sum of exponentials taken as one logarithm of a product of uniforms.
    pub fn beta_whole_a_2(&mut self, a: u32) -> f64 {
        let mut product = 1.0;
        for _ in 0..a {
            product *= self.uniform_open0();
        }
        let x = -product.ln();
        let y = -(self.uniform_open0() * self.uniform_open0()).ln();
        x / (x + y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_draws_have_their_mean_and_variance() {
        for shape in [0.3, 1.0, 4.5] {
            let mut rng = RowRng::new(1, 1);
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.gamma(shape)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean - shape).abs() < 0.02 * shape, "{shape}: {mean}");
            assert!((var - shape).abs() < 0.05 * shape, "{shape}: {var}");
        }
        // Beta(a, b) has mean a / (a + b).
        let mut rng = RowRng::new(2, 2);
        let mean = (0..100_000).map(|_| rng.beta(0.8, 2.4)).sum::<f64>() / 100_000.0;
        assert!((mean - 0.25).abs() < 0.005, "{mean}");
    }

    fn mean_of(n: usize, mut draw: impl FnMut() -> f64) -> f64 {
        (0..n).map(|_| draw()).sum::<f64>() / n as f64
    }

    #[test]
    fn rows_of_one_seed_get_different_streams() {
        let a = RowRng::new(7, 0).next_u64();
        let b = RowRng::new(7, 1).next_u64();
        let c = RowRng::new(8, 0).next_u64();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, RowRng::new(7, 0).next_u64());
    }

    #[test]
    fn ranges_cover_their_bounds_and_nothing_else() {
        let mut rng = RowRng::new(5, 6);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let x = rng.range(3, 6);
            assert!((3..=6).contains(&x), "{x}");
            seen[(x - 3) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(rng.range(9, 9), 9);
        rng.range(0, u64::MAX);
    }

    #[test]
    fn uniform_draws_stay_in_their_intervals() {
        let mut rng = RowRng::new(1, 2);
        for _ in 0..100_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u), "{u}");
            let v = rng.uniform_open0();
            assert!(v > 0.0 && v <= 1.0, "{v}");
        }
    }

    #[test]
    fn samplers_have_their_textbook_means() {
        let mut rng = RowRng::new(3, 4);
        let uniform = mean_of(200_000, || rng.uniform());
        assert!((uniform - 0.5).abs() < 0.005, "{uniform}");
        let exponential = mean_of(200_000, || rng.exponential());
        assert!((exponential - 1.0).abs() < 0.01, "{exponential}");
        let normal = mean_of(200_000, || rng.normal_pair().0);
        assert!(normal.abs() < 0.01, "{normal}");
        let square = mean_of(200_000, || rng.normal_pair().1.powi(2));
        assert!((square - 1.0).abs() < 0.02, "{square}");
        let beta = mean_of(200_000, || rng.beta_whole_a_2(6));
        assert!((beta - 0.75).abs() < 0.005, "{beta}");
    }
}
