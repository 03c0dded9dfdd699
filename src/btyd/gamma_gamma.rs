//! Gamma-Gamma spend (Colombo & Jiang 1999; Fader, Hardie & Berger's note "The Gamma-Gamma
//! model of monetary value", 2005): a customer's purchases are worth Gamma(p, nu) each, with
//! nu ~ Gamma(q, gamma) across customers; fitted on the repeat buyers' mean spend. Formulas as
//! implemented in docs/model.md ("Gamma-Gamma").

use statrs::function::gamma::{digamma, ln_gamma};

use wide::f64x4;

use super::distinct::DistinctKeys;
use super::fit::{self, Estimate, Likelihood, MIN_REPEAT_BUYERS, Progress};
use crate::error::{Error, Result};
use crate::synthetic::RowRng;

/// The Gamma-Gamma spend model with its three positive parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Shape of one purchase's value given the customer.
    pub p: f64,
    /// Shape of the customers' spend rates nu.
    pub q: f64,
    /// Rate of the customers' spend rates nu (in money units).
    pub gamma: f64,
}

/// One repeat buyer's spend: `frequency` x >= 1 repeat purchases of mean value
/// `monetary_value` m > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    /// Repeat purchases x (>= 1).
    pub frequency: f64,
    /// Mean value m of the repeat purchases (> 0).
    pub monetary_value: f64,
}

impl GammaGamma {
    /// The model's name in `model.json`.
    pub const NAME: &'static str = "gamma-gamma";
    /// The parameters' names in `model.json`, in the order of [`GammaGamma::params`].
    pub const PARAM_NAMES: [&'static str; 3] = ["p", "q", "gamma"];

    /// The model with these parameters (each finite and > 0; the caller checks).
    pub fn from_params([p, q, gamma]: [f64; 3]) -> Self {
        GammaGamma { p, q, gamma }
    }

    /// The parameters, in the order of [`GammaGamma::PARAM_NAMES`].
    pub fn params(&self) -> [f64; 3] {
        [self.p, self.q, self.gamma]
    }

    /// The log-likelihood of one repeat buyer's mean spend and its gradient with respect to
    /// ln p, ln q, ln gamma:
    /// ln L = ln Gamma(px + q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + (px - 1) ln m
    ///        + px ln x - (px + q) ln(gamma + mx).
    pub fn log_likelihood(&self, spend: Spend) -> (f64, [f64; 3]) {
        let terms = self.frequency_terms(spend.frequency);
        self.spend_log_likelihood(&terms, spend.monetary_value, spend.monetary_value.ln())
    }

    /// The sum of [`GammaGamma::log_likelihood`] over the distinct spends of `data` weighted
    /// by their counts: per run of equal frequencies, the terms of the frequency computed
    /// once and the spends' terms summed four per `f64x4` lane (`bgnbd::run_sums`).
    pub fn log_likelihood_sum(&self, data: &SpendData) -> (f64, [f64; 3]) {
        fit::chunked_sum(
            &data.spends,
            &data.weights,
            |chunk, chunk_weights, first| {
                let mut total = (0.0, [0.0; 3]);
                let logs = &data.ln_monetary[first..first + chunk.len()];
                let mut start = 0;
                while start < chunk.len() {
                    let x = chunk[start].frequency;
                    let end = chunk[start..]
                        .iter()
                        .position(|s| s.frequency != x)
                        .map_or(chunk.len(), |n| start + n);
                    let terms = self.frequency_terms(x);
                    let sums = self.run_sums(
                        &terms,
                        &chunk[start..end],
                        &chunk_weights[start..end],
                        &logs[start..end],
                    );
                    self.add_run(&mut total, &terms, &sums);
                    start = end;
                }
                total
            },
        )
    }

    /// [`SpendRunSums`] of one run of spends of equal frequency (`terms`), four per `f64x4`
    /// lane: the terms of [`GammaGamma::spend_log_likelihood`] (its scalar f64
    /// specification) that vary within the run. A last incomplete group of four is padded
    /// with the run's last spend at weight 0.
    fn run_sums(
        &self,
        terms: &SpendTerms,
        spends: &[Spend],
        weights: &[f64],
        ln_monetary: &[f64],
    ) -> SpendRunSums {
        let n = spends.len();
        let gamma = f64x4::splat(self.gamma);
        let x = f64x4::splat(terms.x);
        let [mut weight, mut log_monetary, mut log_spent, mut inv_spent] = [f64x4::ZERO; 4];
        for quad in (0..n).step_by(4) {
            let row = |k: usize| (quad + k).min(n - 1);
            let w = f64x4::new(std::array::from_fn(|k| {
                if quad + k < n { weights[quad + k] } else { 0.0 }
            }));
            let m = f64x4::new(std::array::from_fn(|k| spends[row(k)].monetary_value));
            let ln_m = f64x4::new(std::array::from_fn(|k| ln_monetary[row(k)]));
            let spent = m.mul_add(x, gamma);
            weight += w;
            log_monetary += w * ln_m;
            log_spent += w * spent.ln();
            inv_spent += w / spent;
        }
        SpendRunSums {
            weight: weight.reduce_add(),
            log_monetary: log_monetary.reduce_add(),
            log_spent: log_spent.reduce_add(),
            inv_spent: inv_spent.reduce_add(),
        }
    }

    /// Adds one run's log-likelihood and gradient in the log-parameters to `total`, from its
    /// frequency's terms and its [`SpendRunSums`].
    fn add_run(&self, total: &mut (f64, [f64; 3]), terms: &SpendTerms, sums: &SpendRunSums) {
        let GammaGamma { p, q, gamma } = *self;
        let w = sums.weight;
        let shape = terms.px + q;
        let ll = terms.constant * w + (terms.px - 1.0) * sums.log_monetary - shape * sums.log_spent;
        let gradient = [
            p * terms.x * (terms.d_p * w + sums.log_monetary - sums.log_spent),
            q * (terms.d_q * w - sums.log_spent),
            q * w - gamma * shape * sums.inv_spent,
        ];
        fit::add_weighted(total, 1.0, ll, &gradient);
    }

    fn frequency_terms(&self, x: f64) -> SpendTerms {
        let GammaGamma { p, q, gamma } = *self;
        let px = p * x;
        SpendTerms {
            x,
            px,
            constant: ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * gamma.ln() + px * x.ln(),
            d_p: digamma(px + q) - digamma(px) + x.ln(),
            d_q: digamma(px + q) - digamma(q) + gamma.ln(),
        }
    }

    fn spend_log_likelihood(&self, terms: &SpendTerms, m: f64, ln_m: f64) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, gamma } = *self;
        let spent = gamma + m * terms.x;
        let ln_spent = spent.ln();
        let ll = terms.constant + (terms.px - 1.0) * ln_m - (terms.px + q) * ln_spent;
        let d_p = terms.x * (terms.d_p + ln_m - ln_spent);
        let d_q = terms.d_q - ln_spent;
        let d_gamma = q / gamma - (terms.px + q) / spent;
        (ll, [d_p * p, d_q * q, d_gamma * gamma])
    }

    /// The expected value of one purchase of a customer with `frequency` x repeat purchases
    /// of mean value `monetary_value` m: (p (gamma + m x)) / (p x + q - 1), a weighted mean of
    /// the population's mean p gamma / (q - 1) and m. Needs q > 1 for x = 0 (the fit and
    /// `model.json` check it); infinite where p x + q <= 1.
    pub fn expected_spend(&self, frequency: f64, monetary_value: f64) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let denominator = p * frequency + q - 1.0;
        if denominator <= 0.0 {
            return f64::INFINITY;
        }
        p * (gamma + monetary_value * frequency) / denominator
    }

    /// The mean spend of a customer drawn from the model who made `frequency` (>= 1)
    /// purchases: nu ~ Gamma(q, gamma), each purchase Gamma(p, nu), so their sum is
    /// Gamma(p x, nu).
    pub fn draw_mean_spend(&self, rng: &mut RowRng, frequency: u32) -> f64 {
        let nu = rng.gamma(self.q) / self.gamma;
        let x = f64::from(frequency);
        rng.gamma(self.p * x) / nu / x
    }
}

/// The terms of the spend log-likelihood that depend on the frequency x alone.
struct SpendTerms {
    x: f64,
    px: f64,
    /// ln Gamma(px + q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + px ln x.
    constant: f64,
    /// psi(px + q) - psi(px) + ln x.
    d_p: f64,
    /// psi(px + q) - psi(q) + ln gamma.
    d_q: f64,
}

/// The weighted sums over one run of spends of equal frequency x from which the run's
/// log-likelihood and gradient follow, with w the weight and m the mean spend.
struct SpendRunSums {
    /// Sum of w.
    weight: f64,
    /// Sum of w ln m.
    log_monetary: f64,
    /// Sum of w ln(gamma + m x).
    log_spent: f64,
    /// Sum of w / (gamma + m x).
    inv_spent: f64,
}

/// The repeat buyers' spend, sorted by frequency, with equal (frequency, mean spend) pairs
/// merged and counted: what Gamma-Gamma is fitted on.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendData {
    /// The distinct spends.
    pub spends: Vec<Spend>,
    /// How many repeat buyers have each.
    pub weights: Vec<f64>,
    /// ln m of each distinct spend (constant through the fit).
    pub ln_monetary: Vec<f64>,
    /// Repeat buyers in all.
    pub repeat_buyers: u64,
}

impl SpendData {
    /// The repeat buyers' (frequency, mean spend), each already checked: frequency a whole
    /// number >= 1, mean spend finite and > 0. Grouped by [`DistinctKeys`] (positive floats
    /// order as their bits do).
    pub fn compress(spends: &[Spend]) -> SpendData {
        let DistinctKeys {
            values: [frequencies, monetary_values],
            keys,
            counts,
            row_key: _,
        } = DistinctKeys::counted(spends.len(), |row| {
            [spends[row].frequency, spends[row].monetary_value].map(f64::to_bits)
        });
        // ln m once per distinct mean spend.
        let ln_monetary: Vec<f64> = (monetary_values.iter())
            .map(|&m| f64::from_bits(m).ln())
            .collect();
        SpendData {
            spends: (keys.iter())
                .map(|&[x, m]| Spend {
                    frequency: f64::from_bits(frequencies[x as usize]),
                    monetary_value: f64::from_bits(monetary_values[m as usize]),
                })
                .collect(),
            ln_monetary: keys.iter().map(|&[_, m]| ln_monetary[m as usize]).collect(),
            weights: counts.iter().map(|&c| c as f64).collect(),
            repeat_buyers: spends.len() as u64,
        }
    }
}

impl Likelihood<3> for SpendData {
    fn evaluate(&self, params: [f64; 3]) -> (f64, [f64; 3]) {
        GammaGamma::from_params(params).log_likelihood_sum(self)
    }

    fn total_weight(&self) -> f64 {
        self.repeat_buyers as f64
    }
}

/// Fits Gamma-Gamma to the repeat buyers' spend by maximum likelihood, starting from all
/// parameters 1 (as lifetimes does). An error when there are too few repeat buyers, or the
/// fitted q is <= 1 (the mean spend would be infinite).
pub fn fit_gamma_gamma(
    data: &SpendData,
    progress: Option<Progress<'_>>,
) -> Result<(GammaGamma, Estimate<3>)> {
    let what = GammaGamma::NAME;
    if data.repeat_buyers < MIN_REPEAT_BUYERS {
        return Err(Error::invalid(
            format!("{what} fit"),
            format!(
                "{} repeat buyers (frequency >= 1): at least {MIN_REPEAT_BUYERS} are needed",
                data.repeat_buyers
            ),
        ));
    }
    let estimate = fit::maximise(data, [1.0; 3], what, GammaGamma::PARAM_NAMES, progress)?;
    let model = GammaGamma::from_params(estimate.params);
    if model.q <= 1.0 {
        return Err(Error::invalid(
            format!("{what} fit"),
            format!(
                "q = {:.4} <= 1: the spend is too heavy-tailed for a finite mean spend",
                model.q
            ),
        ));
    }
    Ok((model, estimate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The density straight from the note's equation, with raw powers.
    fn plain_likelihood(m: &GammaGamma, s: Spend) -> f64 {
        let GammaGamma { p, q, gamma } = *m;
        let (x, z) = (s.frequency, s.monetary_value);
        (ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)).exp()
            * gamma.powf(q)
            * z.powf(p * x - 1.0)
            * x.powf(p * x)
            / (gamma + z * x).powf(p * x + q)
    }

    #[test]
    fn log_likelihood_is_the_log_of_the_notes_formula() {
        let m = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        for (x, z) in [(1.0, 22.35), (3.0, 11.77), (10.0, 40.0)] {
            let s = Spend {
                frequency: x,
                monetary_value: z,
            };
            let (ll, _) = m.log_likelihood(s);
            let plain = plain_likelihood(&m, s).ln();
            assert!((ll - plain).abs() < 1e-11 * plain.abs(), "{ll} {plain}");
        }
    }

    #[test]
    fn expected_spend_weighs_the_customers_mean_against_the_populations() {
        let m = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let population = m.p * m.gamma / (m.q - 1.0);
        assert!((m.expected_spend(0.0, 0.0) - population).abs() < 1e-12);
        let heavy = m.expected_spend(1e6, 50.0);
        assert!((heavy - 50.0).abs() < 1e-3, "{heavy}");
        let q_below_one = GammaGamma { q: 0.5, ..m };
        assert_eq!(q_below_one.expected_spend(0.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn the_lanes_equal_the_scalar_specification() {
        let spends: Vec<Spend> = (0..5_000u32)
            .map(|i| Spend {
                frequency: f64::from(1 + i % 9) + if i % 101 == 0 { 2000.0 } else { 0.0 },
                monetary_value: 0.01 + f64::from(i % 37) * 3.7 + f64::from(i % 3) * 1e4,
            })
            .collect();
        let data = SpendData::compress(&spends);
        for model in [
            GammaGamma {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
            },
            GammaGamma {
                p: 0.3,
                q: 1.5,
                gamma: 900.0,
            },
        ] {
            let (ll, gradient) = model.log_likelihood_sum(&data);
            let (mut expected, mut scale) = ((0.0, [0.0; 3]), (0.0, [0.0; 3]));
            for (&s, &w) in data.spends.iter().zip(&data.weights) {
                let (l, g) = model.log_likelihood(s);
                fit::add_weighted(&mut expected, w, l, &g);
                fit::add_weighted(&mut scale, w, l.abs(), &g.map(f64::abs));
            }
            assert!(
                (ll - expected.0).abs() <= 1e-12 * scale.0,
                "{ll} {}",
                expected.0
            );
            for (k, (g, e)) in gradient.iter().zip(expected.1).enumerate() {
                assert!((g - e).abs() <= 1e-12 * scale.1[k], "{k}: {g} {e}");
            }
        }
    }

    #[test]
    fn compress_merges_equal_spends() {
        let s = |frequency, monetary_value| Spend {
            frequency,
            monetary_value,
        };
        let data = SpendData::compress(&[s(2.0, 5.0), s(1.0, 7.0), s(2.0, 5.0)]);
        assert_eq!(data.spends, vec![s(1.0, 7.0), s(2.0, 5.0)]);
        assert_eq!(data.weights, vec![1.0, 2.0]);
        assert_eq!(data.repeat_buyers, 3);
    }
}
