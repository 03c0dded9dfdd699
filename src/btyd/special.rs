//! Special functions the purchase models need beyond `statrs` (log-gamma, digamma): the Gauss
//! hypergeometric function 2F1.

/// Most terms [`hyp2f1`] sums before it gives up (the series converges for |z| < 1).
const MAX_SERIES_TERMS: usize = 100_000;

/// The Gauss hypergeometric function 2F1(a, b; c; z) by its power series, for 0 <= z < 1 and
/// c > 0. NaN when the series does not converge within [`MAX_SERIES_TERMS`] terms.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..MAX_SERIES_TERMS {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= f64::EPSILON * sum.abs() {
            return sum;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z.
        for z in [0.1_f64, 0.5, 0.9] {
            let expected = -(1.0 - z).ln() / z;
            assert!((hyp2f1(1.0, 1.0, 2.0, z) - expected).abs() < 1e-13 * expected);
        }
        // 2F1(a, b; b; z) = (1 - z)^-a.
        let expected = 0.7_f64.powf(-2.5);
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.3) - expected).abs() < 1e-13 * expected);
    }
}
