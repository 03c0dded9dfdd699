//! Relationship value from purchase histories: the "buy till you die" models (docs/model.md,
//! "Relationship value from purchase histories").
//!
//! A customer's history is summarised as `frequency` x (repeat purchase periods after the
//! first), `recency` t_x (time of the last purchase since the first) and `age` T (time from the
//! first purchase to the end of observation). A [`PurchaseModel`] (BG/NBD, Pareto/NBD) turns a
//! history into the probability that the customer is still active and the purchases to expect;
//! a spend model (Gamma-Gamma) into the expected value of one purchase. Fitting is maximum
//! likelihood on the log-parameters over the distinct histories, weighted by their counts.

pub mod bgnbd;
pub mod columns;
pub mod diagnostics;
pub mod distinct;
pub mod fit;
pub mod gamma_gamma;
pub mod model_file;
pub mod model_fit;
pub mod pnbd;
pub mod special;
pub mod value;

/// One customer's purchase history in the models' terms (time in `--time-unit`s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Repeat purchases x: purchase periods after the first one.
    pub frequency: f64,
    /// Time t_x of the last purchase since the first (0 when `frequency` is 0).
    pub recency: f64,
    /// Time T from the first purchase to the end of observation (t_x <= T).
    pub age: f64,
}

/// A model of how many purchases a customer makes and when they stop ("die"): BG/NBD or
/// Pareto/NBD, each with four positive parameters.
pub trait PurchaseModel: Sized + Copy + Send + Sync {
    /// The model's name in `model.json` (`"bgnbd"`, `"pnbd"`).
    const NAME: &'static str;
    /// The parameters' names in `model.json`, in the order of [`PurchaseModel::params`].
    const PARAM_NAMES: [&'static str; 4];

    /// The model with these parameters (each finite and > 0; the caller checks).
    fn from_params(params: [f64; 4]) -> Self;

    /// The parameters, in the order of [`PurchaseModel::PARAM_NAMES`].
    fn params(&self) -> [f64; 4];

    /// The log-likelihood of one history and its gradient with respect to the
    /// log-parameters (d/d ln r, d/d ln alpha, ...), computed in log form (no raw power that
    /// can overflow).
    fn log_likelihood(&self, history: History) -> (f64, [f64; 4]);

    /// The sum of [`PurchaseModel::log_likelihood`] over the distinct histories of `data`,
    /// each weighted by its count, with the gradient summed likewise: what the fit evaluates.
    /// The default sums one history at a time on the rayon pool in fixed chunks (the same
    /// result on any number of threads); a model may override it with a faster form of the
    /// same sum (BG/NBD computes the terms of one frequency once per run of equal frequencies,
    /// the logarithms of each distinct recency and age once per evaluation, and sums in
    /// `f64x4` lanes; Pareto/NBD computes its integrals once per (frequency, recency) and
    /// (frequency, age)).
    fn log_likelihood_sum(&self, data: &fit::PurchaseData) -> (f64, [f64; 4]) {
        fit::chunked_sum(&data.histories, &data.weights, |chunk, chunk_weights, _| {
            let mut total = (0.0, [0.0; 4]);
            for (&history, &weight) in chunk.iter().zip(chunk_weights) {
                let (ll, gradient) = self.log_likelihood(history);
                fit::add_weighted(&mut total, weight, ll, &gradient);
            }
            total
        })
    }

    /// The probability that a customer with this history is still active at the end of
    /// observation, in [0, 1].
    fn p_alive(&self, history: History) -> f64;

    /// The expected number of purchases in the `t` time units after the end of observation,
    /// given the history; non-decreasing in `t`, 0 at `t = 0`. In both models it factors as
    /// P(alive) times [`PurchaseModel::expected_purchases_if_alive`]: given that the customer is
    /// still active, what they will buy depends on the history only through `frequency` and
    /// `age` (the posterior of their purchase rate, and of BG/NBD's dropout probability).
    fn expected_purchases(&self, history: History, t: f64) -> f64 {
        self.p_alive(history) * self.expected_purchases_if_alive(history.frequency, history.age, t)
    }

    /// The expected number of purchases in the `t` time units after the end of observation of
    /// a customer who is still active then, with `frequency` repeat purchases over `age`.
    fn expected_purchases_if_alive(&self, frequency: f64, age: f64, t: f64) -> f64;
}
