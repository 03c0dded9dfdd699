//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while active, a
//! customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase they
//! become inactive with probability p ~ Beta(a, b). The formulas as implemented are in
//! docs/model.md ("BG/NBD").

use statrs::function::beta::ln_beta;
use statrs::function::gamma::{digamma, ln_gamma};

use rayon::prelude::*;
use wide::f64x4;

use super::fit::{self, PurchaseData};
use super::special::hyp2f1;
use super::{History, PurchaseModel};
use crate::synthetic::RowRng;

/// The BG/NBD model with its four positive parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    /// Shape of the purchase rate's gamma distribution.
    pub r: f64,
    /// Rate (inverse scale, in time units) of the purchase rate's gamma distribution.
    pub alpha: f64,
    /// First shape of the beta distribution of the drop-out probability.
    pub a: f64,
    /// Second shape of the beta distribution of the drop-out probability.
    pub b: f64,
}

/// The terms of the log-likelihood and its gradient that depend on the frequency x alone (and
/// the parameters), computed once per run of equal frequencies.
struct FrequencyTerms {
    /// r + x.
    r_x: f64,
    /// ln Gamma(r + x) - ln Gamma(r) + r ln alpha + ln B(a, b + x) - ln B(a, b).
    constant: f64,
    /// ln a - ln(b + x - 1): the log-ratio of the second term's beta functions (x >= 1).
    log_ratio: f64,
    /// d/dr of the constant: psi(r + x) - psi(r) + ln alpha.
    d_r: f64,
    /// psi(a + b) - psi(a + b + x), shared by d/da and d/db.
    d_ab: f64,
    /// psi(b + x) - psi(b).
    d_b: f64,
    /// 1 / (b + x - 1) (x >= 1).
    inv_b_x_1: f64,
}

impl BgNbd {
    fn frequency_terms(&self, x: f64) -> FrequencyTerms {
        let BgNbd { r, alpha, a, b } = *self;
        let ln_alpha = alpha.ln();
        let inv_b_x_1 = if x > 0.0 { 1.0 / (b + x - 1.0) } else { 0.0 };
        let log_ratio = self.dropout_log_ratio(x);
        FrequencyTerms {
            r_x: r + x,
            constant: ln_gamma(r + x) - ln_gamma(r) + r * ln_alpha + ln_beta(a, b + x)
                - ln_beta(a, b),
            log_ratio,
            d_r: digamma(r + x) - digamma(r) + ln_alpha,
            d_ab: digamma(a + b) - digamma(a + b + x),
            d_b: digamma(b + x) - digamma(b),
            inv_b_x_1,
        }
    }

    /// ln a - ln(b + x - 1): the frequency's part of the dropout log-odds (-inf when x = 0).
    fn dropout_log_ratio(&self, x: f64) -> f64 {
        if x > 0.0 {
            self.a.ln() - (self.b + x - 1.0).ln()
        } else {
            f64::NEG_INFINITY
        }
    }

    /// The log-odds d = ln a - ln(b + x - 1) + (r + x) (ln(alpha + T) - ln(alpha + t_x)) that
    /// the customer became inactive at the last purchase rather than being still active (-inf
    /// when x = 0), from the frequency's `log_ratio` and `r_x` = r + x.
    fn dropout_log_odds(log_ratio: f64, r_x: f64, at: &Logs) -> f64 {
        if log_ratio == f64::NEG_INFINITY {
            f64::NEG_INFINITY
        } else {
            log_ratio + r_x * (at.ln_age - at.ln_recency)
        }
    }

    /// ln(alpha + T), ln(alpha + t_x) and their reciprocals for one history.
    fn logs(&self, history: History) -> Logs {
        Logs {
            ln_age: (self.alpha + history.age).ln(),
            inv_age: 1.0 / (self.alpha + history.age),
            ln_recency: (self.alpha + history.recency).ln(),
            inv_recency: 1.0 / (self.alpha + history.recency),
        }
    }

    /// One history's log-likelihood and gradient in the log-parameters, given its frequency's
    /// terms and its logarithms: ln L = constant - (r + x) ln(alpha + T) + ln(1 + e^d).
    fn history_log_likelihood(&self, terms: &FrequencyTerms, at: &Logs) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *self;
        let d = Self::dropout_log_odds(terms.log_ratio, terms.r_x, at);
        // w_dead = e^d / (1 + e^d), w_alive = 1 - w_dead (= P(alive)), softplus = ln(1 + e^d):
        // each from e^-|d|, which cannot overflow.
        let e = (-d.abs()).exp();
        let inv = 1.0 / (1.0 + e);
        let (w_alive, w_dead, softplus) = if d > 0.0 {
            (e * inv, inv, d + e.ln_1p())
        } else {
            (inv, e * inv, e.ln_1p())
        };
        let ll = terms.constant - terms.r_x * at.ln_age + softplus;
        // w_dead is 0 without a repeat purchase; ln(alpha + t_x) is then unused.
        let d_r = terms.d_r - w_alive * at.ln_age - w_dead * at.ln_recency;
        let d_alpha = r / alpha - terms.r_x * (w_alive * at.inv_age + w_dead * at.inv_recency);
        let d_a = terms.d_ab + w_dead / a;
        let d_b = terms.d_ab + terms.d_b - w_dead * terms.inv_b_x_1;
        (ll, [d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    }

    /// The conditional expectation's core for one `a`: (a + b + x - 1) / (a - 1) times
    /// 1 - (1 - z)^(a - 1) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z), z = t / (alpha + T + t).
    /// This is Fader, Hardie & Lee's 1 - ((alpha + T) / (alpha + T + t))^(r + x)
    /// 2F1(r + x, b + x; a + b + x - 1; z) after Euler's transformation, which moves the large
    /// parameters of a heavy buyer into the series' denominator: no power or 2F1 overflows.
    fn expected_core(&self, a: f64, x: f64, age: f64, t: f64) -> f64 {
        let BgNbd { r, alpha, b, .. } = *self;
        let z = t / (alpha + age + t);
        let ln_1_z = (alpha + age).ln() - (alpha + age + t).ln();
        let series = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z);
        // The series is negative when a + b + x - 1 < 0 (so is the factor before the bracket):
        // no logarithm of it.
        let bracket = 1.0 - ((a - 1.0) * ln_1_z).exp() * series;
        (a + b + x - 1.0) / (a - 1.0) * bracket
    }
}

/// The logarithms (and reciprocals) one history's likelihood needs beyond its frequency's
/// terms.
struct Logs {
    /// ln(alpha + T).
    ln_age: f64,
    /// 1 / (alpha + T).
    inv_age: f64,
    /// ln(alpha + t_x).
    ln_recency: f64,
    /// 1 / (alpha + t_x).
    inv_recency: f64,
}

/// Distinct times per rayon task of [`TimeLogs::of`].
const MIN_TIMES_PER_TASK: usize = 4096;

/// ln(alpha + t) and 1 / (alpha + t) for each distinct time t of the data (recencies or
/// ages), computed once per evaluation.
struct TimeLogs {
    ln: Vec<f64>,
    inv: Vec<f64>,
}

impl TimeLogs {
    fn of(alpha: f64, times: &[f64]) -> TimeLogs {
        // In parallel only when there are many (continuous times): a day-rounded log has a
        // few hundred.
        let each = |f: fn(f64) -> f64| -> Vec<f64> {
            (times.par_iter())
                .with_min_len(MIN_TIMES_PER_TASK)
                .map(|t| f(alpha + t))
                .collect()
        };
        TimeLogs {
            ln: each(f64::ln),
            inv: each(f64::recip),
        }
    }

    /// The four histories' ln(alpha + t) and 1 / (alpha + t), from their indexes. Always
    /// inlined: called from [`run_sums`]' loop, the call spilled its lanes to the stack.
    #[inline(always)]
    fn gather(&self, index: [u32; 4]) -> (f64x4, f64x4) {
        let i = index.map(|i| i as usize);
        (
            f64x4::new(i.map(|i| self.ln[i])),
            f64x4::new(i.map(|i| self.inv[i])),
        )
    }
}

/// The weighted sums over one run of histories of equal frequency from which the run's
/// log-likelihood and gradient follow ([`BgNbd::add_run`]); with w the weight, w_alive and
/// w_dead as in [`BgNbd::history_log_likelihood`].
#[derive(Debug, Default)]
struct RunSums {
    /// Sum of w.
    weight: f64,
    /// Sum of w (ln(1 + e^d) - (r + x) ln(alpha + T)).
    log_likelihood: f64,
    /// Sum of w (w_alive ln(alpha + T) + w_dead ln(alpha + t_x)).
    log_time: f64,
    /// Sum of w (w_alive / (alpha + T) + w_dead / (alpha + t_x)).
    inv_time: f64,
    /// Sum of w w_dead.
    dead: f64,
}

/// [`RunSums`] of one run of equal frequency (`terms`), four histories per `f64x4` lane: the
/// same terms as [`BgNbd::history_log_likelihood`] (its scalar f64 specification), summed
/// lane-wise then across the lanes. A last incomplete group of four is padded with the run's
/// last history at weight 0.
fn run_sums(
    terms: &FrequencyTerms,
    weights: &[f64],
    (recency_index, at_recency): (&[u32], &TimeLogs),
    (age_index, at_age): (&[u32], &TimeLogs),
) -> RunSums {
    let n = weights.len();
    let log_ratio = f64x4::splat(terms.log_ratio);
    let r_x = f64x4::splat(terms.r_x);
    let zero = f64x4::ZERO;
    let one = f64x4::ONE;
    let [
        mut weight,
        mut log_likelihood,
        mut log_time,
        mut inv_time,
        mut dead,
    ] = [zero; 5];
    for quad in (0..n).step_by(4) {
        let row = |k: usize| (quad + k).min(n - 1);
        let w = f64x4::new(std::array::from_fn(|k| {
            if quad + k < n { weights[quad + k] } else { 0.0 }
        }));
        let (ln_age, inv_age) = at_age.gather(std::array::from_fn(|k| age_index[row(k)]));
        let (ln_recency, inv_recency) =
            at_recency.gather(std::array::from_fn(|k| recency_index[row(k)]));
        // d = ln a - ln(b + x - 1) + (r + x)(ln(alpha + T) - ln(alpha + t_x)); -inf for x = 0,
        // where e = 0: w_alive = 1, w_dead = 0, softplus = 0.
        let d = log_ratio + r_x * (ln_age - ln_recency);
        let e = (-d.abs()).exp();
        let inv = one / (one + e);
        let positive = d.simd_gt(zero);
        let w_alive = positive.select(e * inv, inv);
        let w_dead = positive.select(inv, e * inv);
        let softplus = d.max(zero) + e.ln_1p();
        weight += w;
        log_likelihood += w * (softplus - r_x * ln_age);
        log_time += w * (w_alive * ln_age + w_dead * ln_recency);
        inv_time += w * (w_alive * inv_age + w_dead * inv_recency);
        dead += w * w_dead;
    }
    RunSums {
        weight: weight.reduce_add(),
        log_likelihood: log_likelihood.reduce_add(),
        log_time: log_time.reduce_add(),
        inv_time: inv_time.reduce_add(),
        dead: dead.reduce_add(),
    }
}

impl BgNbd {
    /// Adds one run's log-likelihood and gradient in the log-parameters to `total`: the sums
    /// of [`BgNbd::history_log_likelihood`]'s terms over the run, its frequency's terms taken
    /// out of the sums.
    fn add_run(&self, total: &mut (f64, [f64; 4]), terms: &FrequencyTerms, sums: &RunSums) {
        let BgNbd { r, alpha, a, b } = *self;
        let w = sums.weight;
        let ll = terms.constant * w + sums.log_likelihood;
        let gradient = [
            r * (terms.d_r * w - sums.log_time),
            r * w - alpha * terms.r_x * sums.inv_time,
            a * terms.d_ab * w + sums.dead,
            b * ((terms.d_ab + terms.d_b) * w - terms.inv_b_x_1 * sums.dead),
        ];
        fit::add_weighted(total, 1.0, ll, &gradient);
    }
}

/// Half the width of the interval around a = 1 where [`BgNbd::expected_core`]'s 0/0 is
/// replaced by the mean of its values at its ends (the function is smooth in a).
const NEAR_A_ONE: f64 = 1e-6;

impl PurchaseModel for BgNbd {
    const NAME: &'static str = "bgnbd";
    const PARAM_NAMES: [&'static str; 4] = ["r", "alpha", "a", "b"];

    fn from_params(params: [f64; 4]) -> Self {
        let [r, alpha, a, b] = params;
        BgNbd { r, alpha, a, b }
    }

    fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }

    fn log_likelihood(&self, history: History) -> (f64, [f64; 4]) {
        self.history_log_likelihood(
            &self.frequency_terms(history.frequency),
            &self.logs(history),
        )
    }

    fn log_likelihood_sum(&self, data: &PurchaseData) -> (f64, [f64; 4]) {
        let at_recency = TimeLogs::of(self.alpha, &data.recencies);
        let at_age = TimeLogs::of(self.alpha, &data.ages);
        fit::chunked_sum(
            &data.histories,
            &data.weights,
            |chunk, chunk_weights, first| {
                let mut total = (0.0, [0.0; 4]);
                let recency_index = &data.recency_index[first..first + chunk.len()];
                let age_index = &data.age_index[first..first + chunk.len()];
                let mut start = 0;
                while start < chunk.len() {
                    let x = chunk[start].frequency;
                    let end = chunk[start..]
                        .iter()
                        .position(|h| h.frequency != x)
                        .map_or(chunk.len(), |n| start + n);
                    let terms = self.frequency_terms(x);
                    let sums = run_sums(
                        &terms,
                        &chunk_weights[start..end],
                        (&recency_index[start..end], &at_recency),
                        (&age_index[start..end], &at_age),
                    );
                    self.add_run(&mut total, &terms, &sums);
                    start = end;
                }
                total
            },
        )
    }

    fn p_alive(&self, history: History) -> f64 {
        // Only the dropout log-odds, not the likelihood's log-gamma and digamma terms of the
        // frequency: scoring calls this once per history.
        let x = history.frequency;
        let d = Self::dropout_log_odds(self.dropout_log_ratio(x), self.r + x, &self.logs(history));
        // 1 / (1 + e^d), from e^-|d|.
        let e = (-d.abs()).exp();
        if d > 0.0 {
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + e)
        }
    }

    fn expected_purchases_if_alive(&self, frequency: f64, age: f64, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        if (self.a - 1.0).abs() < NEAR_A_ONE {
            0.5 * (self.expected_core(1.0 - NEAR_A_ONE, frequency, age, t)
                + self.expected_core(1.0 + NEAR_A_ONE, frequency, age, t))
        } else {
            self.expected_core(self.a, frequency, age, t)
        }
    }
}

impl BgNbd {
    /// One customer drawn from the model's own story, observed for `age` time units after
    /// the first purchase: lambda ~ Gamma(r, alpha), p ~ Beta(a, b); purchases at Poisson rate
    /// lambda; after each repeat purchase the customer drops out with probability p.
    pub fn draw_history(&self, rng: &mut RowRng, age: f64) -> History {
        let lambda = rng.gamma(self.r) / self.alpha;
        let p = rng.beta(self.a, self.b);
        let (mut time, mut frequency, mut recency) = (0.0, 0.0, 0.0);
        loop {
            time += rng.exponential() / lambda;
            if time > age {
                break;
            }
            frequency += 1.0;
            recency = time;
            if rng.chance(p) {
                break;
            }
        }
        History {
            frequency,
            recency,
            age,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDNOW: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    /// The likelihood straight from Fader, Hardie & Lee's equation (6), with raw powers: the
    /// reference for moderate histories.
    fn plain_likelihood(m: &BgNbd, h: History) -> f64 {
        let BgNbd { r, alpha, a, b } = *m;
        let x = h.frequency;
        let beta = |p: f64, q: f64| ln_beta(p, q).exp();
        let common = (ln_gamma(r + x) - ln_gamma(r)).exp() * alpha.powf(r);
        let first = beta(a, b + x) / beta(a, b) * common / (alpha + h.age).powf(r + x);
        let second = if x > 0.0 {
            beta(a + 1.0, b + x - 1.0) / beta(a, b) * common / (alpha + h.recency).powf(r + x)
        } else {
            0.0
        };
        first + second
    }

    #[test]
    fn log_likelihood_is_the_log_of_the_papers_formula() {
        for (x, t_x, age) in [(0.0, 0.0, 38.0), (2.0, 30.43, 38.86), (7.0, 2.0, 30.0)] {
            let h = History {
                frequency: x,
                recency: t_x,
                age,
            };
            let (ll, _) = CDNOW.log_likelihood(h);
            let plain = plain_likelihood(&CDNOW, h).ln();
            assert!((ll - plain).abs() < 1e-12 * plain.abs(), "{ll} {plain}");
        }
    }

    #[test]
    fn the_sum_equals_the_histories_one_by_one() {
        let histories: Vec<History> = (0..10_000)
            .map(|i| History {
                frequency: f64::from(i % 7),
                recency: if i % 7 == 0 { 0.0 } else { f64::from(i % 13) },
                age: 13.0 + f64::from(i % 3),
            })
            .collect();
        let data = PurchaseData::compress(&histories);
        let (ll, gradient) = CDNOW.log_likelihood_sum(&data);
        let mut expected = (0.0, [0.0; 4]);
        for &h in &histories {
            let w = 1.0;
            let (l, g) = CDNOW.log_likelihood(h);
            fit::add_weighted(&mut expected, w, l, &g);
        }
        assert!((ll - expected.0).abs() < 1e-9 * ll.abs());
        for (g, e) in gradient.iter().zip(expected.1) {
            assert!((g - e).abs() < 1e-9 * (1.0 + e.abs()));
        }
    }

    #[test]
    fn the_lanes_equal_the_scalar_specification() {
        // Runs of every length modulo 4, no repeat purchase, heavy buyers, age 0, recency
        // equal to age.
        let histories: Vec<History> = (0..20_000u32)
            .map(|i| {
                let x = f64::from(i % 23) + if i % 97 == 0 { 3000.0 } else { 0.0 };
                let age = if i % 13 == 0 && x == 0.0 {
                    0.0
                } else {
                    1.0 + f64::from(i % 41) / 7.0
                };
                let recency = if x == 0.0 {
                    0.0
                } else if i % 3 == 0 {
                    age
                } else {
                    age * f64::from(i % 17) / 17.0
                };
                History {
                    frequency: x,
                    recency,
                    age,
                }
            })
            .collect();
        let data = PurchaseData::compress(&histories);
        let other = BgNbd {
            r: 2.0,
            alpha: 0.5,
            a: 3.0,
            b: 0.7,
        };
        for model in [CDNOW, other] {
            let (ll, gradient) = model.log_likelihood_sum(&data);
            // The scalar specification, history by history, and the sum of the terms'
            // magnitudes that the rounding is relative to.
            let (mut expected, mut scale) = ((0.0, [0.0; 4]), (0.0, [0.0; 4]));
            for (&h, &w) in data.histories.iter().zip(&data.weights) {
                let (l, g) = model.log_likelihood(h);
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
    fn expected_purchases_match_the_papers_formula_for_moderate_histories() {
        let BgNbd { r, alpha, a, b } = CDNOW;
        for (x, t_x, age, t) in [(2.0, 30.43, 38.86, 39.0), (0.0, 0.0, 38.86, 52.0)] {
            let h = History {
                frequency: x,
                recency: t_x,
                age,
            };
            let z = t / (alpha + age + t);
            let plain = (a + b + x - 1.0) / (a - 1.0)
                * (1.0
                    - ((alpha + age) / (alpha + age + t)).powf(r + x)
                        * hyp2f1(r + x, b + x, a + b + x - 1.0, z))
                * CDNOW.p_alive(h);
            let ours = CDNOW.expected_purchases(h, t);
            assert!((ours - plain).abs() < 1e-10 * plain, "{ours} {plain}");
        }
    }

    #[test]
    fn a_at_one_gives_the_limit_of_its_neighbours() {
        let h = History {
            frequency: 3.0,
            recency: 20.0,
            age: 30.0,
        };
        let at = |a| BgNbd { a, ..CDNOW }.expected_purchases(h, 10.0);
        let (below, one, above) = (at(1.0 - 1e-4), at(1.0), at(1.0 + 1e-4));
        assert!(one.is_finite() && one > 0.0);
        assert!(
            (one - 0.5 * (below + above)).abs() < 1e-6 * one,
            "{below} {one} {above}"
        );
    }

    #[test]
    fn draws_have_the_models_mean_number_of_purchases() {
        // E[X(t)] of BG/NBD (Fader, Hardie & Lee, equation 9).
        let m = BgNbd {
            r: 2.0,
            alpha: 5.0,
            a: 1.5,
            b: 4.0,
        };
        let age = 20.0;
        let n = 200_000;
        let mean = (0..n)
            .map(|i| m.draw_history(&mut RowRng::new(9, i), age).frequency)
            .sum::<f64>()
            / n as f64;
        let BgNbd { r, alpha, a, b } = m;
        let z = age / (alpha + age);
        let expected = (a + b - 1.0) / (a - 1.0)
            * (1.0 - (alpha / (alpha + age)).powf(r) * hyp2f1(r, b, a + b - 1.0, z));
        assert!(
            (mean - expected).abs() < 0.01 * expected,
            "{mean} {expected}"
        );
    }
}
