//! Zipf-distributed ranks by inversion of a precomputed CDF: rank `k` (1-based) of `n` has
//! probability `k^-s / H(n, s)`. A draw is one uniform number and a binary search over the
//! table (O(log n)); the table costs 8 bytes per rank, built once in O(n).

/// A Zipf distribution over ranks `0..n` (rank 0 the most popular) with exponent `s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// `cdf[k]`: probability of a rank `<= k`; non-decreasing, the last entry exactly 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `ranks` ranks with exponent `exponent` (0 is uniform, 1 classic
    /// Zipf; larger is more skewed).
    ///
    /// # Panics
    ///
    /// If `ranks` is 0 or `exponent` is negative or not finite (callers validate flags first).
    pub fn new(ranks: usize, exponent: f64) -> Zipf {
        assert!(ranks > 0, "a Zipf distribution needs at least one rank");
        assert!(
            exponent.is_finite() && exponent >= 0.0,
            "the Zipf exponent must be finite and >= 0, got {exponent}"
        );
        let mut cdf = Vec::with_capacity(ranks);
        let mut total = 0.0;
        for rank in 1..=ranks {
            total += (rank as f64).powf(-exponent);
            cdf.push(total);
        }
        for cumulative in &mut cdf {
            *cumulative /= total;
        }
        // Rounding may leave the last sum a hair under 1; a draw near 1 must still land.
        *cdf.last_mut().expect("at least one rank") = 1.0;
        Zipf { cdf }
    }

    /// How many ranks the distribution covers.
    pub fn ranks(&self) -> usize {
        self.cdf.len()
    }

    /// The probability of rank `rank` (0-based), from the table.
    pub fn probability(&self, rank: usize) -> f64 {
        match rank {
            0 => self.cdf[0],
            _ => self.cdf[rank] - self.cdf[rank - 1],
        }
    }

    /// Draws a rank in `0..ranks()`.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let uniform = rng.f64();
        // The first rank whose cumulative probability exceeds the draw: P(k) = cdf[k] - cdf[k-1].
        self.cdf
            .partition_point(|&cumulative| cumulative <= uniform)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws `samples` ranks and checks every rank's frequency against its expected probability
    /// within 5 standard deviations of a binomial count (fixed seed: the test is deterministic).
    fn assert_frequencies_match(zipf: &Zipf, expected: &[f64], samples: usize) {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = vec![0usize; zipf.ranks()];
        for _ in 0..samples {
            counts[zipf.sample(&mut rng)] += 1;
        }
        for (rank, (&count, &p)) in counts.iter().zip(expected).enumerate() {
            let mean = p * samples as f64;
            let sd = (samples as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (count as f64 - mean).abs() <= 5.0 * sd + 1.0,
                "rank {rank}: {count} draws, expected {mean:.0} +- {sd:.0}"
            );
        }
    }

    #[test]
    fn classic_zipf_frequencies_follow_one_over_rank() {
        let ranks = 10;
        let harmonic: f64 = (1..=ranks).map(|k| 1.0 / k as f64).sum();
        let expected: Vec<f64> = (1..=ranks).map(|k| 1.0 / k as f64 / harmonic).collect();
        let zipf = Zipf::new(ranks, 1.0);
        for (rank, &p) in expected.iter().enumerate() {
            assert!((zipf.probability(rank) - p).abs() < 1e-12);
        }
        assert_frequencies_match(&zipf, &expected, 200_000);
    }

    #[test]
    fn steeper_exponent_concentrates_on_the_head() {
        let ranks = 50;
        let exponent = 1.5;
        let total: f64 = (1..=ranks).map(|k| (k as f64).powf(-exponent)).sum();
        let expected: Vec<f64> = (1..=ranks)
            .map(|k| (k as f64).powf(-exponent) / total)
            .collect();
        assert_frequencies_match(&Zipf::new(ranks, exponent), &expected, 200_000);
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let ranks = 20;
        assert_frequencies_match(&Zipf::new(ranks, 0.0), &[1.0 / ranks as f64; 20], 100_000);
    }

    #[test]
    fn million_ranks_give_the_harmonic_head_and_reach_the_tail() {
        let ranks = 1_000_000;
        let zipf = Zipf::new(ranks, 1.0);
        // H(10^6) = ln(10^6) + Euler-Mascheroni + 1/(2 * 10^6) to within 1e-12.
        let harmonic = (ranks as f64).ln() + 0.577_215_664_901_532_9 + 0.5e-6;
        assert!((zipf.probability(0) - 1.0 / harmonic).abs() < 1e-9);
        let mut rng = fastrand::Rng::with_seed(11);
        let draws: Vec<usize> = (0..100_000).map(|_| zipf.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&rank| rank < ranks));
        // Half the mass lies beyond rank ~1,000 (H(1000) / H(10^6) ~ 0.52): the tail is drawn.
        let beyond = draws.iter().filter(|&&rank| rank >= 1_000).count();
        assert!((40_000..56_000).contains(&beyond), "{beyond}");
    }

    #[test]
    fn a_single_rank_is_always_drawn() {
        let zipf = Zipf::new(1, 1.0);
        let mut rng = fastrand::Rng::with_seed(1);
        assert!((0..1_000).all(|_| zipf.sample(&mut rng) == 0));
    }
}
