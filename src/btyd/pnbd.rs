//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive, a customer buys
//! as a Poisson process of rate lambda ~ Gamma(r, alpha); they die after an exponential lifetime
//! of rate mu ~ Gamma(s, beta), lambda and mu independent across customers (docs/model.md,
//! "Pareto/NBD").
//!
//! # The likelihood, as computed
//!
//! Integrating the death time out, one history (x, t_x, T) has likelihood
//!
//! ```text
//! L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ E + s D ],
//! E = (alpha+T)^-(r+x) (beta+T)^-s,          (alive at T)
//! D = I(t_x) - I(T),  I(t0) = int_t0^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du.
//! ```
//!
//! `s D` is Fader & Hardie's `s / (r+s+x) A0` (their note "Deriving the Conditional PMF of the
//! Pareto/NBD Model", lifetimes' `ParetoNBDFitter`), written as the integral over the death
//! time that it is. With M = max(alpha, beta) and P its exponent (r+x if M = alpha, else s+1),
//! m = min(alpha, beta) and Q its exponent, the substitution u -> (m+u)/(M+u) and Euler's
//! transformation give
//!
//! ```text
//! I(t0) = (M+t0)^-P (m+t0)^(1-Q) 2F1(1, P; P+Q; z) / (P+Q-1),   z = (M-m) / (M+t0) in [0, 1),
//! ```
//!
//! the alpha >= beta / alpha < beta branches of lifetimes in one form, whose 2F1 has all
//! terms positive and a term ratio below z ([`hyp2f1_unit`]). Everything is in logs: each I
//! is e^scale * g with g the 2F1 (between 1 and 1/(1-z)), so that
//! ln D = scale_1 + ln(g_1 - e^(scale_2 - scale_1) g_2), and ln(E + s D) is a log-sum-exp: no
//! power of a heavy buyer's (alpha+T)^(r+x) is ever formed.
//!
//! # The gradient
//!
//! Analytic, with respect to (ln r, ln alpha, ln s, ln beta). ln Gamma(r+x) - ln Gamma(r) and
//! the terms of E differentiate directly (digamma from statrs, or the finite sums
//! sum_k 1/(r+k) for whole x up to 64). For I, the closed form above is differentiated: in P
//! and Q through the exponents and 2F1's parameters (b = P, c = P+Q), in M and m through the
//! bases and z; the 2F1's partial derivatives in b, c and z come from the same series (d/db of
//! (b)_n is (b)_n times a harmonic sum) or, from z = 0.75 on, from the 1 - z transformation or
//! Gauss's continued fraction evaluated in dual numbers. So the gradient is the exact
//! derivative of the value computed, to the series' 1e-16 truncation; the tests check it
//! against mpmath's derivatives under the integral sign (1e-10 relative) and against central
//! finite differences (proptest). Chosen over a quadrature of the integral (whose parameter
//! derivatives are analytic too) because at the common parameters (alpha near beta, z < 0.1)
//! the series takes about ten terms, fewer than any quadrature rule accurate to 1e-10 for a
//! heavy buyer's sharply peaked integrand.
//!
//! P(alive) = E / (E + s D). Expected purchases in (T, T+t] and DERT (Fader, Hardie & Lee
//! 2005, "RFM and CLV") are in [`ParetoNbd::expected_purchases`] and [`ParetoNbd::dert`].

use rustc_hash::FxHashMap;

use super::fit::{self, PurchaseData};
use super::special::{hyp2f1_unit, scaled_hyperu};
use super::{History, PurchaseModel};
use crate::synthetic::rng::RowRng;
use statrs::function::gamma::{digamma, ln_gamma};

/// The Pareto/NBD model's four parameters: purchase rates ~ Gamma(shape r, rate alpha), death
/// rates ~ Gamma(shape s, rate beta). Each finite and > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Rate (inverse scale) of the purchase-rate distribution, in time units.
    pub alpha: f64,
    /// Shape of the death-rate distribution.
    pub s: f64,
    /// Rate (inverse scale) of the death-rate distribution, in time units.
    pub beta: f64,
}

/// I(t0) of the module doc as e^scale * g (g the 2F1 factor, between 1 and 1/(1-z)), and the
/// partial derivatives of ln I(t0) in P, Q, M and m.
#[derive(Debug, Clone, Copy)]
struct LnTail {
    scale: f64,
    g: f64,
    d_p: f64,
    d_q: f64,
    d_big: f64,
    d_small: f64,
}

/// Which time an I(t0) of [`ParetoNbd::pieces_with`] is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TailAt {
    /// t0 = t_x.
    Recency,
    /// t0 = T.
    Age,
}

/// The bases of [`ln_tail`] at one t0: M + t0, m + t0 and their logarithms (shared with the
/// likelihood's E term at t0 = T).
#[derive(Debug, Clone, Copy)]
struct Bases {
    big_t: f64,
    small_t: f64,
    ln_big_t: f64,
    ln_small_t: f64,
}

impl Bases {
    fn new(big: f64, small: f64, t0: f64) -> Bases {
        Bases {
            big_t: big + t0,
            small_t: small + t0,
            ln_big_t: (big + t0).ln(),
            ln_small_t: (small + t0).ln(),
        }
    }
}

/// ln of int_t0^inf (M+u)^-P (m+u)^-Q du for M >= m > 0, t0 >= 0, P, Q > 0, P + Q > 1, with
/// its partials when `GRADIENT` (else 0); `ln_c1` is ln(P + Q - 1).
fn ln_tail<const GRADIENT: bool>(
    p: f64,
    q: f64,
    big: f64,
    small: f64,
    ln_c1: f64,
    bases: Bases,
) -> LnTail {
    let Bases {
        big_t,
        small_t,
        ln_big_t,
        ln_small_t,
    } = bases;
    let c = p + q;
    let z = (big - small) / big_t;
    let g = hyp2f1_unit::<GRADIENT>(p, c, z);
    let scale = -p * ln_big_t + (1.0 - q) * ln_small_t - ln_c1;
    if !GRADIENT {
        return LnTail {
            scale,
            g: g.value,
            d_p: 0.0,
            d_q: 0.0,
            d_big: 0.0,
            d_small: 0.0,
        };
    }
    let inverse = 1.0 / g.value;
    let inverse_c1 = 1.0 / (c - 1.0);
    let dz = g.d_z * inverse;
    LnTail {
        scale,
        g: g.value,
        d_p: -ln_big_t - inverse_c1 + (g.d_b + g.d_c) * inverse,
        d_q: -ln_small_t - inverse_c1 + g.d_c * inverse,
        // z = (M - m) / (M + t0): dz/dM = (m + t0) / (M + t0)^2, dz/dm = -1 / (M + t0).
        d_big: -p / big_t + dz * small_t / (big_t * big_t),
        d_small: (1.0 - q) / small_t - dz / big_t,
    }
}

/// The likelihood's pieces for one history: ln E, ln(s D) and their gradients in
/// (r, alpha, s, beta) (not log-parameters).
struct Pieces {
    ln_alive: f64,
    ln_dead: f64,
    d_alive: [f64; 4],
    d_dead: [f64; 4],
}

/// ln Gamma(r+x) - ln Gamma(r) and (when `GRADIENT`) digamma(r+x) - digamma(r).
fn ln_rising<const GRADIENT: bool>(r: f64, x: f64) -> (f64, f64) {
    // Whole x up to 64 (most customers): a product and a sum instead of four special
    // functions; r is bounded so that the product of 64 factors stays far from overflow.
    if x == x.trunc() && (0.0..=64.0).contains(&x) && r < 1e4 {
        let (mut product, mut harmonic) = (1.0, 0.0);
        for k in 0..x as u32 {
            let factor = r + f64::from(k);
            product *= factor;
            if GRADIENT {
                harmonic += 1.0 / factor;
            }
        }
        return (product.ln(), harmonic);
    }
    let ln = ln_gamma(r + x) - ln_gamma(r);
    if GRADIENT {
        (ln, digamma(r + x) - digamma(r))
    } else {
        (ln, 0.0)
    }
}

impl ParetoNbd {
    /// `logs`: ln alpha, ln beta and ln s (the same for every history).
    fn pieces<const GRADIENT: bool>(&self, history: History, logs: [f64; 3]) -> Pieces {
        self.pieces_with::<GRADIENT>(history, logs, |_, tail| tail())
    }

    /// [`ParetoNbd::pieces`], each I(t0) (a 2F1) obtained through `tails`, which is given
    /// which time t0 is (the recency or the age) and the computation, and may return a value
    /// it computed before for the same frequency and time ([`ParetoNbd::log_likelihood_sum`]
    /// does).
    fn pieces_with<const GRADIENT: bool>(
        &self,
        history: History,
        logs: [f64; 3],
        mut tails: impl FnMut(TailAt, &dyn Fn() -> LnTail) -> LnTail,
    ) -> Pieces {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let [ln_alpha, ln_beta, ln_s] = logs;
        let History {
            frequency: x,
            recency: t_x,
            age: t,
        } = history;
        let ln_alpha_t = (alpha + t).ln();
        let ln_beta_t = (beta + t).ln();
        let ln_alive = -(r + x) * ln_alpha_t - s * ln_beta_t;
        let d_alive = [
            -ln_alpha_t,
            -(r + x) / (alpha + t),
            -ln_beta_t,
            -s / (beta + t),
        ];
        if t_x >= t {
            // Alive at T for sure: no death between the last purchase and T.
            return Pieces {
                ln_alive,
                ln_dead: f64::NEG_INFINITY,
                d_alive,
                d_dead: [0.0; 4],
            };
        }
        // The larger of alpha and beta is the integral's M (module doc).
        let alpha_is_big = alpha >= beta;
        let (p, q, big, small) = if alpha_is_big {
            (r + x, s + 1.0, alpha, beta)
        } else {
            (s + 1.0, r + x, beta, alpha)
        };
        let ln_c1 = (p + q - 1.0).ln();
        let at_age = if alpha_is_big {
            Bases {
                big_t: alpha + t,
                small_t: beta + t,
                ln_big_t: ln_alpha_t,
                ln_small_t: ln_beta_t,
            }
        } else {
            Bases {
                big_t: beta + t,
                small_t: alpha + t,
                ln_big_t: ln_beta_t,
                ln_small_t: ln_alpha_t,
            }
        };
        let at_recency = if t_x == 0.0 {
            // Most customers (no repeat purchase): the logarithms are the parameters' own.
            let (ln_big, ln_small) = if alpha_is_big {
                (ln_alpha, ln_beta)
            } else {
                (ln_beta, ln_alpha)
            };
            Bases {
                big_t: big,
                small_t: small,
                ln_big_t: ln_big,
                ln_small_t: ln_small,
            }
        } else {
            Bases::new(big, small, t_x)
        };
        let first = tails(TailAt::Recency, &|| {
            ln_tail::<GRADIENT>(p, q, big, small, ln_c1, at_recency)
        });
        let last = tails(TailAt::Age, &|| {
            ln_tail::<GRADIENT>(p, q, big, small, ln_c1, at_age)
        });
        // D = e^first.scale (g1 - e^(last.scale - first.scale) g2): one logarithm. Near
        // t_x = T the difference cancels, but the error is then relative to s I(t_x), which is
        // below E + s D: the likelihood keeps its precision.
        let later = (last.scale - first.scale).exp() * last.g;
        let difference = first.g - later;
        let ln_dead = ln_s + first.scale + difference.ln();
        let mut d_dead = [0.0; 4];
        if GRADIENT {
            // d ln D = (I1 d ln I1 - I2 d ln I2) / (I1 - I2).
            let (w_first, w_later) = (first.g / difference, later / difference);
            let d = |a: f64, b: f64| w_first * a - w_later * b;
            let (d_p, d_q, d_big, d_small) = (
                d(first.d_p, last.d_p),
                d(first.d_q, last.d_q),
                d(first.d_big, last.d_big),
                d(first.d_small, last.d_small),
            );
            d_dead = if alpha_is_big {
                [d_p, d_big, d_q, d_small]
            } else {
                [d_q, d_small, d_p, d_big]
            };
            // ln(s D): the factor s.
            d_dead[2] += 1.0 / s;
        }
        Pieces {
            ln_alive,
            ln_dead,
            d_alive,
            d_dead,
        }
    }

    /// The log-likelihood and its gradient in the log-parameters from a history's
    /// [`Pieces`], its ln Gamma(r+x) - ln Gamma(r) and digamma difference ([`ln_rising`]), and
    /// ln alpha, ln beta, ln s.
    fn combine(&self, pieces: Pieces, rising: (f64, f64), logs: [f64; 3]) -> (f64, [f64; 4]) {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let [ln_alpha, ln_beta, _] = logs;
        let (ln_rising, digamma_difference) = rising;
        // ln(E + sD) and the shares E / (E + sD), sD / (E + sD) from one exponential.
        let (big, small) = if pieces.ln_alive >= pieces.ln_dead {
            (pieces.ln_alive, pieces.ln_dead)
        } else {
            (pieces.ln_dead, pieces.ln_alive)
        };
        let ratio = (small - big).exp();
        // ln(1 + ratio) is added to `big`: its absolute error is what matters, and ln(1 + x)
        // has it; ln_1p only where its relative precision shows in a small likelihood.
        let ln_sum = big
            + if ratio < 1e-2 {
                ratio.ln_1p()
            } else {
                (1.0 + ratio).ln()
            };
        let share_big = 1.0 / (1.0 + ratio);
        let share_small = ratio * share_big;
        let (weight_alive, weight_dead) = if pieces.ln_alive >= pieces.ln_dead {
            (share_big, share_small)
        } else {
            (share_small, share_big)
        };
        let d_sum = |k: usize| weight_alive * pieces.d_alive[k] + weight_dead * pieces.d_dead[k];
        let value = ln_rising + r * ln_alpha + s * ln_beta + ln_sum;
        let gradient = [
            r * (digamma_difference + ln_alpha + d_sum(0)),
            r + alpha * d_sum(1),
            s * (ln_beta + d_sum(2)),
            s + beta * d_sum(3),
        ];
        (value, gradient)
    }

    /// ln alpha, ln beta, ln s.
    fn logs(&self) -> [f64; 3] {
        [self.alpha.ln(), self.beta.ln(), self.s.ln()]
    }

    /// The log-likelihood of one history without its gradient (the cost a finite-difference
    /// gradient pays per evaluation).
    pub fn log_likelihood_value(&self, history: History) -> f64 {
        let logs = self.logs();
        let pieces = self.pieces::<false>(history, logs);
        let (ln_rising, _) = ln_rising::<false>(self.r, history.frequency);
        ln_rising
            + self.r * logs[0]
            + self.s * logs[1]
            + log_add_exp(pieces.ln_alive, pieces.ln_dead)
    }

    /// Discounted expected residual transactions (Fader, Hardie & Lee 2005, "RFM and CLV"):
    /// the expected number of purchases after the end of observation, each discounted at the
    /// continuous rate `delta` > 0 per time unit,
    ///
    /// ```text
    /// DERT = P(alive) (r+x) / (alpha+T) * (beta+T)^s delta^(s-1) U(s, s; delta (beta+T))
    ///      = P(alive) (r+x) / (alpha+T) * W(s, delta (beta+T)) / delta,
    /// ```
    ///
    /// W(s, z) = z^s U(s, s; z) = E[z / (G + z)], G ~ Gamma(s, 1) ([`scaled_hyperu`]):
    /// `E[lambda] E[1 / (mu + delta)]` under the posterior of a customer alive at T. NaN unless
    /// `delta` > 0. A yearly rate d in weeks is delta = ln(1 + d) / 52.
    pub fn dert(&self, history: History, delta: f64) -> f64 {
        if delta.is_nan() || delta <= 0.0 {
            return f64::NAN;
        }
        let History {
            frequency: x,
            age: t,
            ..
        } = history;
        let w = scaled_hyperu(self.s, delta * (self.beta + t));
        self.p_alive(history) * (self.r + x) / (self.alpha + t) * w / delta
    }

    /// A customer's history drawn from the model's generative story, observed for `age` time
    /// units from the first purchase: lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta), a lifetime
    /// ~ Exponential(mu), repeat purchases a Poisson process of rate lambda while alive. The
    /// cost is proportional to the purchases drawn.
    pub fn draw_history(&self, rng: &mut RowRng, age: f64) -> History {
        let lambda = rng.gamma(self.r) / self.alpha;
        let mu = rng.gamma(self.s) / self.beta;
        let active = (rng.exponential() / mu).min(age);
        let (mut time, mut frequency, mut recency) = (0.0, 0.0, 0.0);
        loop {
            time += rng.exponential() / lambda;
            // Also ends the loop when lambda is 0 (time is then infinite).
            if time.is_nan() || time > active {
                break;
            }
            frequency += 1.0;
            recency = time;
        }
        History {
            frequency,
            recency,
            age,
        }
    }
}

/// ln(e^a + e^b), exact when one of them is -inf.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let (big, small) = if a >= b { (a, b) } else { (b, a) };
    if small == f64::NEG_INFINITY {
        return big;
    }
    big + (small - big).exp().ln_1p()
}

impl PurchaseModel for ParetoNbd {
    const NAME: &'static str = "pnbd";
    const PARAM_NAMES: [&'static str; 4] = ["r", "alpha", "s", "beta"];

    fn from_params(params: [f64; 4]) -> Self {
        let [r, alpha, s, beta] = params;
        ParetoNbd { r, alpha, s, beta }
    }

    fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.s, self.beta]
    }

    fn log_likelihood(&self, history: History) -> (f64, [f64; 4]) {
        let logs = self.logs();
        let pieces = self.pieces::<true>(history, logs);
        self.combine(pieces, ln_rising::<true>(self.r, history.frequency), logs)
    }

    /// The sum of [`ParetoNbd::log_likelihood`] over the distinct histories, weighted: the
    /// same terms, but per run of equal frequencies (the histories are sorted by frequency,
    /// age, recency) ln Gamma(r+x) - ln Gamma(r) once, I(T) once per age and I(t_x) once per
    /// recency, since they depend on the history only through (x, T) and (x, t_x): at 1e6
    /// customers ~1e4 of each against ~2e5 distinct histories.
    fn log_likelihood_sum(&self, data: &PurchaseData) -> (f64, [f64; 4]) {
        let logs = self.logs();
        fit::chunked_sum(
            &data.histories,
            &data.weights,
            |chunk, chunk_weights, first| {
                let mut total = (0.0, [0.0; 4]);
                let recency_index = &data.recency_index[first..first + chunk.len()];
                let age_index = &data.age_index[first..first + chunk.len()];
                let mut at_recency: FxHashMap<u32, LnTail> = FxHashMap::default();
                let mut at_age: Option<(u32, LnTail)> = None;
                let mut rising = (f64::NAN, (0.0, 0.0));
                for (k, (&history, &weight)) in chunk.iter().zip(chunk_weights).enumerate() {
                    if history.frequency != rising.0 {
                        rising = (
                            history.frequency,
                            ln_rising::<true>(self.r, history.frequency),
                        );
                        at_recency.clear();
                        at_age = None;
                    }
                    let (recency, age) = (recency_index[k], age_index[k]);
                    let pieces = self.pieces_with::<true>(history, logs, |at, tail| match at {
                        TailAt::Recency => *at_recency.entry(recency).or_insert_with(tail),
                        // Ages ascend within a frequency: the last one is the one to keep.
                        TailAt::Age => match at_age {
                            Some((cached, value)) if cached == age => value,
                            _ => {
                                let value = tail();
                                at_age = Some((age, value));
                                value
                            }
                        },
                    });
                    let (ll, gradient) = self.combine(pieces, rising.1, logs);
                    fit::add_weighted(&mut total, weight, ll, &gradient);
                }
                total
            },
        )
    }

    fn p_alive(&self, history: History) -> f64 {
        let pieces = self.pieces::<false>(history, self.logs());
        // E / (E + s D) = 1 / (1 + e^(ln sD - ln E)).
        1.0 / (1.0 + (pieces.ln_dead - pieces.ln_alive).exp())
    }

    /// E[purchases in (T, T+t] | active at T] =
    /// (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T) / (beta+T+t))^(s-1)], the bracket over
    /// (s-1) computed as -expm1(-(s-1) ln1p(t / (beta+T))) / (s-1), whose limit at s = 1 is
    /// ln1p(t / (beta+T)). Cheap (no special function): a CRV over many horizons multiplies
    /// these by one [`PurchaseModel::p_alive`] (the default `expected_purchases`).
    fn expected_purchases_if_alive(&self, frequency: f64, age: f64, t: f64) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let log_ratio = (t / (beta + age)).ln_1p();
        let k = s - 1.0;
        let lifetime_part = if k == 0.0 {
            log_ratio
        } else {
            -(-k * log_ratio).exp_m1() / k
        };
        (r + frequency) * (beta + age) / (alpha + age) * lifetime_part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDNOW: ParetoNbd = ParetoNbd {
        r: 0.5534,
        alpha: 10.5802,
        s: 0.6061,
        beta: 11.6562,
    };

    fn history(frequency: f64, recency: f64, age: f64) -> History {
        History {
            frequency,
            recency,
            age,
        }
    }

    #[test]
    fn value_only_path_equals_gradient_path() {
        for h in [
            history(0.0, 0.0, 38.86),
            history(7.0, 20.0, 30.0),
            history(100.5, 3.0, 9.0),
        ] {
            let (with_gradient, _) = CDNOW.log_likelihood(h);
            let value = CDNOW.log_likelihood_value(h);
            assert!(
                (with_gradient - value).abs() <= 1e-13 * value.abs(),
                "{h:?}"
            );
        }
    }

    #[test]
    fn the_sum_with_shared_tails_equals_the_histories_one_by_one() {
        // Days over 10-20 weeks, frequencies 0-12 and a heavy buyer, both alpha >= beta and
        // alpha < beta: every (x, T) and (x, t_x) shared by many histories.
        let histories: Vec<History> = (0..30_000u32)
            .map(|i| {
                let age = f64::from(70 + i % 71) / 7.0;
                let x = f64::from(i % 13) + if i % 1001 == 0 { 400.0 } else { 0.0 };
                let recency = if x == 0.0 {
                    0.0
                } else {
                    (age * f64::from(i % 29) / 28.0 * 7.0).floor() / 7.0
                };
                history(x, recency, age)
            })
            .collect();
        let data = PurchaseData::compress(&histories);
        for model in [
            CDNOW,
            ParetoNbd {
                alpha: 3.0,
                ..CDNOW
            },
        ] {
            let (ll, gradient) = model.log_likelihood_sum(&data);
            let mut expected = (0.0, [0.0; 4]);
            for (&h, &w) in data.histories.iter().zip(&data.weights) {
                let (l, g) = model.log_likelihood(h);
                fit::add_weighted(&mut expected, w, l, &g);
            }
            assert!((ll - expected.0).abs() <= 1e-12 * expected.0.abs());
            for (k, (g, e)) in gradient.iter().zip(expected.1).enumerate() {
                assert!((g - e).abs() <= 1e-10 * (1.0 + e.abs()), "{k}: {g} {e}");
            }
        }
    }

    #[test]
    fn ln_rising_fast_path_matches_statrs() {
        for (r, x) in [(0.5534, 0.0), (0.5534, 7.0), (3.25, 64.0), (1e3, 40.0)] {
            let (fast, fast_d) = ln_rising::<true>(r, x);
            let exact = ln_gamma(r + x) - ln_gamma(r);
            let exact_d = digamma(r + x) - digamma(r);
            assert!(
                (fast - exact).abs() <= 1e-12 * exact.abs().max(1.0),
                "{r} {x}"
            );
            assert!(
                (fast_d - exact_d).abs() <= 1e-12 * exact_d.abs().max(1.0),
                "{r} {x}"
            );
        }
    }

    #[test]
    fn zero_age_is_certain_and_alive() {
        let h = history(0.0, 0.0, 0.0);
        let (ll, _) = CDNOW.log_likelihood(h);
        assert!(ll.abs() < 1e-14);
        assert_eq!(CDNOW.p_alive(h), 1.0);
        assert_eq!(CDNOW.expected_purchases(h, 0.0), 0.0);
    }

    #[test]
    fn drawn_histories_match_the_model_mean() {
        // E[x] over the population for age T: E[lambda * min(lifetime, T)]
        // = (r/alpha) E[(1 - e^{-mu T}) / mu] = (r/alpha) beta/(s-1) (1 - (beta/(beta+T))^(s-1)).
        let model = ParetoNbd {
            r: 2.0,
            alpha: 4.0,
            s: 1.5,
            beta: 10.0,
        };
        let age = 30.0;
        let n = 200_000;
        let mut total = 0.0;
        for row in 0..n {
            let h = model.draw_history(&mut RowRng::new(11, row), age);
            assert!(h.recency <= h.age && (h.frequency > 0.0 || h.recency == 0.0));
            total += h.frequency;
        }
        let mean = total / n as f64;
        let expected = model.r / model.alpha * model.beta / (model.s - 1.0)
            * (1.0 - (model.beta / (model.beta + age)).powf(model.s - 1.0));
        assert!(
            (mean - expected).abs() < 0.02 * expected,
            "{mean} {expected}"
        );
    }
}
