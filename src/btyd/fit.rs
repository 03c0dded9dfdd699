//! Maximum likelihood for the purchase and spend models, generic over the number of
//! parameters: the customers are compressed into their distinct histories with counts as
//! weights, the weighted log-likelihood and its analytic gradient are summed on the rayon pool,
//! and the negative mean log-likelihood is minimised over the log-parameters by argmin's
//! L-BFGS with a More-Thuente line search. Standard errors come from the Hessian of the
//! log-likelihood in the original parameters, by central finite differences of the analytic
//! gradient.

use std::cell::{Cell, RefCell};

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

use super::columns::{HistoryColumns, row_error};
use super::distinct::DistinctHistories;
use super::gamma_gamma::Spend;
use super::{History, PurchaseModel};
use crate::error::{Error, Result};
use crate::store::{Store, schema};

/// Histories per rayon task in [`chunked_sum`]: fixed, so the sum does not depend on the
/// number of threads.
const CHUNK: usize = 8192;

/// Iterations L-BFGS may take before the fit is declared not converged.
pub const MAX_ITERATIONS: u64 = 500;

/// The norm of the gradient of the mean log-likelihood (per customer, in the log-parameters)
/// below which the fit has converged.
const GRADIENT_TOLERANCE: f64 = 1e-7;

/// A fit whose line search can make no more progress is still accepted as converged when the
/// gradient norm is below this: the log-likelihood is flat to rounding there.
const STALLED_GRADIENT_TOLERANCE: f64 = 1e-6;

/// The log-parameters may not leave [-LOG_PARAM_LIMIT, LOG_PARAM_LIMIT] (e^30 is 1e13): a
/// parameter that runs off there is one the data cannot identify.
const LOG_PARAM_LIMIT: f64 = 30.0;

/// The fewest customers a purchase model is fitted to.
pub const MIN_CUSTOMERS: u64 = 10;

/// The fewest repeat buyers (frequency >= 1) a fit needs: each model's repeat-purchase
/// parameters rest on them alone (Gamma-Gamma is fitted on them only).
pub const MIN_REPEAT_BUYERS: u64 = 10;

/// Sums `evaluate` over fixed chunks of `items` (with their weights and the index of the
/// chunk's first item) on the rayon pool, the chunks' results added in order, so the result
/// is the same on any number of threads.
pub fn chunked_sum<T: Sync, const K: usize>(
    items: &[T],
    weights: &[f64],
    evaluate: impl Fn(&[T], &[f64], usize) -> (f64, [f64; K]) + Sync,
) -> (f64, [f64; K]) {
    assert_eq!(items.len(), weights.len(), "one weight per item");
    let parts: Vec<(f64, [f64; K])> = items
        .par_chunks(CHUNK)
        .zip(weights.par_chunks(CHUNK))
        .enumerate()
        .map(|(i, (chunk, chunk_weights))| evaluate(chunk, chunk_weights, i * CHUNK))
        .collect();
    let mut total = (0.0, [0.0; K]);
    for (ll, gradient) in parts {
        add_weighted(&mut total, 1.0, ll, &gradient);
    }
    total
}

/// Adds `weight` times (`ll`, `gradient`) to `total`.
#[inline]
pub fn add_weighted<const K: usize>(
    total: &mut (f64, [f64; K]),
    weight: f64,
    ll: f64,
    gradient: &[f64; K],
) {
    total.0 += weight * ll;
    for (sum, g) in total.1.iter_mut().zip(gradient) {
        *sum += weight * g;
    }
}

/// A weighted log-likelihood the fit maximises: over K positive parameters, with its gradient
/// in the log-parameters.
pub trait Likelihood<const K: usize>: Sync {
    /// The weighted log-likelihood at `params` and its gradient with respect to the
    /// log-parameters.
    fn evaluate(&self, params: [f64; K]) -> (f64, [f64; K]);

    /// The total weight (customers) behind the sum.
    fn total_weight(&self) -> f64;
}

/// The outcome of a maximum-likelihood fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate<const K: usize> {
    /// The estimates, in the model's parameter order.
    pub params: [f64; K],
    /// Their standard errors (from the inverse of the negative Hessian of the log-likelihood in
    /// the original parameters); `None` when that Hessian is not negative definite.
    pub standard_errors: Option<[f64; K]>,
    /// The log-likelihood at the estimates (summed over the customers).
    pub log_likelihood: f64,
    /// L-BFGS iterations.
    pub iterations: u64,
    /// Evaluations of the log-likelihood and its gradient (including those of the line search
    /// and of the Hessian).
    pub evaluations: u64,
    /// How the optimiser ended, in words ("converged: gradient norm 3.1e-10").
    pub status: String,
}

/// What a fit reports while it runs: after each evaluation, their count and the
/// log-likelihood.
pub type Progress<'a> = &'a (dyn Fn(u64, f64) + Sync);

/// An evaluated point of the objective: the log-parameters, the cost and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// argmin's view of a [`Likelihood`]: the negative mean log-likelihood over the
/// log-parameters. The last evaluation is kept, since L-BFGS asks for the cost and the
/// gradient of one point separately and one pass computes both.
struct Objective<'a, L, const K: usize> {
    likelihood: &'a L,
    scale: f64,
    /// The last point evaluated, its cost and gradient.
    last: &'a RefCell<Option<Evaluation>>,
    /// Evaluations of the likelihood so far.
    evaluations: &'a Cell<u64>,
    progress: Option<Progress<'a>>,
}

impl<L, const K: usize> Clone for Objective<'_, L, K> {
    fn clone(&self) -> Self {
        Objective { ..*self }
    }
}

impl<L: Likelihood<K>, const K: usize> Objective<'_, L, K> {
    fn evaluate(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        if let Some((at, cost, gradient)) = &*self.last.borrow()
            && at == log_params
        {
            return (*cost, gradient.clone());
        }
        let (cost, gradient) = if log_params.iter().all(|p| p.abs() <= LOG_PARAM_LIMIT) {
            let params: [f64; K] = std::array::from_fn(|k| log_params[k].exp());
            let (ll, gradient) = self.likelihood.evaluate(params);
            self.evaluations.set(self.evaluations.get() + 1);
            if let Some(progress) = self.progress {
                progress(self.evaluations.get(), ll);
            }
            (-ll * self.scale, gradient.map(|g| -g * self.scale).to_vec())
        } else {
            (f64::NAN, vec![f64::NAN; K])
        };
        // A point where the likelihood cannot be evaluated (outside the limits, or where it
        // overflows) is a wall for the line search: an infinite cost pointing back.
        let (cost, gradient) = if cost.is_finite() && gradient.iter().all(|g| g.is_finite()) {
            (cost, gradient)
        } else {
            (
                f64::INFINITY,
                log_params.iter().map(|p| p.signum()).collect(),
            )
        };
        *self.last.borrow_mut() = Some((log_params.to_vec(), cost, gradient.clone()));
        (cost, gradient)
    }
}

impl<L: Likelihood<K>, const K: usize> CostFunction for Objective<'_, L, K> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, log_params: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(log_params).0)
    }
}

impl<L: Likelihood<K>, const K: usize> Gradient for Objective<'_, L, K> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(
        &self,
        log_params: &Vec<f64>,
    ) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(log_params).1)
    }
}

/// Maximises `likelihood` from `start` (positive parameters). `what` names the model in
/// errors, `names` its parameters. An error, not a result, when the optimiser does not
/// converge or a parameter runs off to 0 or infinity (the data cannot identify it).
pub fn maximise<L: Likelihood<K>, const K: usize>(
    likelihood: &L,
    start: [f64; K],
    what: &str,
    names: [&str; K],
    progress: Option<Progress<'_>>,
) -> Result<Estimate<K>> {
    let last = RefCell::new(None);
    let evaluations = Cell::new(0);
    let mean = 1.0 / likelihood.total_weight();
    let (start_ll, start_gradient) = likelihood.evaluate(start);
    evaluations.set(1);
    if !start_ll.is_finite() || start_gradient.iter().any(|g| !g.is_finite()) {
        return Err(Error::invalid(
            format!("{what} fit"),
            format!(
                "the log-likelihood is not finite at the starting point {}",
                describe(&names, &start)
            ),
        ));
    }
    // L-BFGS's first step is the gradient itself: the objective is divided by the starting
    // gradient's norm (when above 1), so that step moves the log-parameters by at most 1.
    // The gradient tolerance is divided alike, so it stays one on the mean log-likelihood.
    let start_norm = start_gradient.iter().map(|g| g * g).sum::<f64>().sqrt() * mean;
    let normaliser = start_norm.max(1.0);
    let objective = Objective {
        likelihood,
        scale: mean / normaliser,
        last: &last,
        evaluations: &evaluations,
        progress,
    };
    let not_fitted = |message: String| Error::invalid(format!("{what} fit"), message);
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(GRADIENT_TOLERANCE / normaliser)
        .and_then(|solver| solver.with_tolerance_cost(0.0))
        .map_err(|e| not_fitted(e.to_string()))?;
    let result = Executor::new(objective.clone(), solver)
        .configure(|state| {
            state
                .param(start.iter().map(|p| p.ln()).collect())
                .max_iters(MAX_ITERATIONS)
        })
        .timer(false)
        .run()
        .map_err(|e| not_fitted(format!("the optimiser failed: {e}")))?;
    let state = result.state();
    let iterations = state.get_iter();
    let log_params = state
        .get_best_param()
        .ok_or_else(|| not_fitted("the optimiser returned no parameters".to_string()))?
        .clone();
    let (cost, gradient) = objective.evaluate(&log_params);
    // The norm of the mean log-likelihood's gradient.
    let gradient_norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt() * normaliser;
    let reason = state
        .get_termination_reason()
        .cloned()
        .unwrap_or(TerminationReason::SolverExit("no reason given".to_string()));
    let params: [f64; K] = std::array::from_fn(|k| log_params[k].exp());
    let described = describe(&names, &params);
    if !cost.is_finite() {
        return Err(not_fitted(format!(
            "the log-likelihood is not finite at {described}"
        )));
    }
    let status = match reason {
        TerminationReason::SolverConverged => {
            format!("converged: gradient norm {gradient_norm:.1e}")
        }
        _ if gradient_norm < STALLED_GRADIENT_TOLERANCE => format!(
            "converged: gradient norm {gradient_norm:.1e} (the line search could not improve \
             further)"
        ),
        TerminationReason::MaxItersReached => {
            return Err(not_fitted(format!(
                "did not converge in {MAX_ITERATIONS} iterations (at {described}, gradient norm \
                 {gradient_norm:.1e}); the data may not identify the model"
            )));
        }
        other => {
            return Err(not_fitted(format!(
                "did not converge: {} after {iterations} iterations (at {described}, gradient \
                 norm {gradient_norm:.1e}); the data may not identify the model",
                other.text()
            )));
        }
    };
    if let Some(k) = (0..K).find(|&k| log_params[k].abs() > LOG_PARAM_LIMIT - 5.0) {
        return Err(not_fitted(format!(
            "parameter {} runs off to {:e} ({described}): the data cannot identify it",
            names[k], params[k]
        )));
    }
    let log_likelihood = -cost / objective.scale;
    let standard_errors = standard_errors(likelihood, params);
    let evaluations = evaluations.get() + 2 * K as u64;
    Ok(Estimate {
        params,
        standard_errors,
        log_likelihood,
        iterations,
        evaluations,
        status,
    })
}

/// `r = 0.243, alpha = 4.41, ...` for messages.
fn describe<const K: usize>(names: &[&str; K], params: &[f64; K]) -> String {
    names
        .iter()
        .zip(params)
        .map(|(name, value)| format!("{name} = {value:.4e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The standard errors at the maximum `params`: square roots of the diagonal of the inverse of
/// the negative Hessian of the log-likelihood in the original parameters. The Hessian is
/// central finite differences (relative step 1e-5) of the analytic gradient, symmetrised.
/// `None` when it is not negative definite.
pub fn standard_errors<L: Likelihood<K>, const K: usize>(
    likelihood: &L,
    params: [f64; K],
) -> Option<[f64; K]> {
    // The gradient in the original parameters: d/dθ = (d/d ln θ) / θ.
    let gradient = |at: [f64; K]| -> [f64; K] {
        let (_, g) = likelihood.evaluate(at);
        std::array::from_fn(|k| g[k] / at[k])
    };
    let mut hessian = [[0.0; K]; K];
    for j in 0..K {
        let step = 1e-5 * params[j];
        let mut up = params;
        up[j] += step;
        let mut down = params;
        down[j] -= step;
        let (g_up, g_down) = (gradient(up), gradient(down));
        for i in 0..K {
            hessian[i][j] = (g_up[i] - g_down[i]) / (2.0 * step);
        }
    }
    let mut information = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..K {
            information[i][j] = -0.5 * (hessian[i][j] + hessian[j][i]);
        }
    }
    let covariance = invert_positive_definite(information)?;
    let errors: [f64; K] = std::array::from_fn(|k| covariance[k][k].sqrt());
    errors.iter().all(|e| e.is_finite()).then_some(errors)
}

/// The inverse of a symmetric positive definite matrix by its Cholesky factor; `None` when it
/// is not positive definite.
fn invert_positive_definite<const K: usize>(matrix: [[f64; K]; K]) -> Option<[[f64; K]; K]> {
    // matrix = L L^T.
    let mut lower = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| lower[i][k] * lower[j][k]).sum();
            if i == j {
                let pivot = matrix[i][i] - sum;
                if pivot.is_nan() || pivot <= 0.0 {
                    return None;
                }
                lower[i][i] = pivot.sqrt();
            } else {
                lower[i][j] = (matrix[i][j] - sum) / lower[j][j];
            }
        }
    }
    // Solve L L^T x = e_c for each column c; the inverse is symmetric, so x is row c too.
    let mut inverse = [[0.0; K]; K];
    for (c, row) in inverse.iter_mut().enumerate() {
        let mut y = [0.0; K];
        for i in 0..K {
            let unit = if i == c { 1.0 } else { 0.0 };
            let sum: f64 = (0..i).map(|k| lower[i][k] * y[k]).sum();
            y[i] = (unit - sum) / lower[i][i];
        }
        for i in (0..K).rev() {
            let sum: f64 = (i + 1..K).map(|k| lower[k][i] * row[k]).sum();
            row[i] = (y[i] - sum) / lower[i][i];
        }
    }
    Some(inverse)
}

/// Customers compressed into their distinct purchase histories, with how many customers share
/// each, sorted by (frequency, age, recency): what the purchase models are fitted on. The
/// distinct recencies and ages are listed apart, with each history's index into them, so a
/// model can take their logarithms once per evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseData {
    /// The distinct histories.
    pub histories: Vec<History>,
    /// How many customers have each.
    pub weights: Vec<f64>,
    /// The distinct recencies, ascending.
    pub recencies: Vec<f64>,
    /// Each history's recency's index in `recencies`.
    pub recency_index: Vec<u32>,
    /// The distinct ages, ascending.
    pub ages: Vec<f64>,
    /// Each history's age's index in `ages`.
    pub age_index: Vec<u32>,
    /// Customers in all.
    pub customers: u64,
    /// Customers with at least one repeat purchase.
    pub repeat_buyers: u64,
}

impl PurchaseData {
    /// Compresses the customers' histories (each already checked: finite, frequency a whole
    /// number >= 0, 0 <= recency <= age).
    pub fn compress(histories: &[History]) -> PurchaseData {
        let distinct = DistinctHistories::counted(histories.len(), |row| histories[row]);
        let repeat_buyers = (distinct.histories.iter().zip(&distinct.counts))
            .filter(|(h, _)| h.frequency > 0.0)
            .map(|(_, &count)| count)
            .sum();
        PurchaseData {
            weights: distinct.counts.iter().map(|&c| c as f64).collect(),
            histories: distinct.histories,
            recencies: distinct.recencies,
            recency_index: distinct.recency_index,
            ages: distinct.ages,
            age_index: distinct.age_index,
            customers: histories.len() as u64,
            repeat_buyers,
        }
    }

    /// Checks that the data can identify a purchase model: enough customers, some repeat
    /// purchases.
    pub fn check_identifiable(&self, what: &str) -> Result<()> {
        let refuse = |message: String| Err(Error::invalid(format!("{what} fit"), message));
        if self.customers < MIN_CUSTOMERS {
            return refuse(format!(
                "{} customers: at least {MIN_CUSTOMERS} are needed",
                self.customers
            ));
        }
        if self.repeat_buyers == 0 {
            return refuse(
                "every frequency is 0 (no repeat purchase): the purchase rate and drop-out \
                 cannot be told apart"
                    .to_string(),
            );
        }
        if self.repeat_buyers < MIN_REPEAT_BUYERS {
            return refuse(format!(
                "{} repeat buyers (frequency >= 1): at least {MIN_REPEAT_BUYERS} are needed",
                self.repeat_buyers
            ));
        }
        Ok(())
    }
}

/// A purchase model's likelihood over [`PurchaseData`].
struct PurchaseLikelihood<'a, M> {
    data: &'a PurchaseData,
    model: std::marker::PhantomData<M>,
}

impl<M: PurchaseModel> Likelihood<4> for PurchaseLikelihood<'_, M> {
    fn evaluate(&self, params: [f64; 4]) -> (f64, [f64; 4]) {
        M::from_params(params).log_likelihood_sum(self.data)
    }

    fn total_weight(&self) -> f64 {
        self.data.customers as f64
    }
}

/// Fits the purchase model `M` to the customers by maximum likelihood, starting from all
/// parameters 1 (as lifetimes does).
pub fn fit_purchase_model<M: PurchaseModel>(
    data: &PurchaseData,
    progress: Option<Progress<'_>>,
) -> Result<(M, Estimate<4>)> {
    data.check_identifiable(M::NAME)?;
    let likelihood = PurchaseLikelihood::<M> {
        data,
        model: std::marker::PhantomData,
    };
    let estimate = maximise(&likelihood, [1.0; 4], M::NAME, M::PARAM_NAMES, progress)?;
    Ok((M::from_params(estimate.params), estimate))
}

/// Every customer's purchase history, checked ([`HistoryColumns::from_store`]), in row order.
pub fn read_histories(store: &Store) -> Result<Vec<History>> {
    Ok(HistoryColumns::from_store(store)?.to_histories())
}

/// The repeat buyers' spend (frequency >= 1, with their `monetary_value`, which must be > 0:
/// Gamma-Gamma models positive amounts), in row order.
pub fn read_spends(store: &Store, histories: &[History]) -> Result<Vec<Spend>> {
    let monetary = store.numeric(schema::MONETARY_VALUE)?;
    let mut spends = Vec::new();
    for (row, (history, &m)) in histories.iter().zip(monetary).enumerate() {
        if history.frequency == 0.0 {
            continue;
        }
        if !(m > 0.0 && m.is_finite()) {
            return Err(row_error(
                store,
                schema::MONETARY_VALUE,
                row,
                format!(
                    "{m} for a repeat buyer: Gamma-Gamma needs a mean spend > 0 for every \
                     customer with frequency >= 1"
                ),
            ));
        }
        spends.push(Spend {
            frequency: history.frequency,
            monetary_value: f64::from(m),
        });
    }
    Ok(spends)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A likelihood with a known maximum: independent normals' log-density in the
    /// log-parameters, ln L = -sum w_k (ln θ_k - ln m_k)^2 / 2.
    struct Quadratic {
        means: [f64; 3],
        curvature: [f64; 3],
    }

    impl Likelihood<3> for Quadratic {
        fn evaluate(&self, params: [f64; 3]) -> (f64, [f64; 3]) {
            let d: [f64; 3] = std::array::from_fn(|k| params[k].ln() - self.means[k].ln());
            let ll = -(0..3)
                .map(|k| 0.5 * self.curvature[k] * d[k] * d[k])
                .sum::<f64>();
            (ll, std::array::from_fn(|k| -self.curvature[k] * d[k]))
        }

        fn total_weight(&self) -> f64 {
            1.0
        }
    }

    #[test]
    fn maximise_finds_a_known_maximum_and_its_standard_errors() {
        let q = Quadratic {
            means: [0.5, 3.0, 40.0],
            curvature: [4.0, 1.0, 100.0],
        };
        let estimate = maximise(&q, [1.0; 3], "test", ["p", "q", "gamma"], None).unwrap();
        for k in 0..3 {
            assert!((estimate.params[k] - q.means[k]).abs() < 1e-7 * q.means[k]);
            // At the maximum, d2 ln L / dθ2 = -c / θ^2, so se = θ / sqrt(c).
            let se = estimate.standard_errors.unwrap()[k];
            let expected = q.means[k] / q.curvature[k].sqrt();
            assert!(
                (se - expected).abs() < 1e-5 * expected,
                "{k}: {se} {expected}"
            );
        }
        assert!(
            estimate.status.starts_with("converged"),
            "{}",
            estimate.status
        );
    }

    #[test]
    fn inverse_of_a_positive_definite_matrix() {
        let m = [[4.0, 2.0, 0.6], [2.0, 5.0, 1.0], [0.6, 1.0, 3.0]];
        let inv = invert_positive_definite(m).unwrap();
        // m times inv is the identity.
        for (i, row) in m.iter().enumerate() {
            for (j, unit) in (0..3).map(|j| (j, if i == j { 1.0 } else { 0.0 })) {
                let product: f64 = row.iter().zip(&inv).map(|(a, b)| a * b[j]).sum();
                assert!((product - unit).abs() < 1e-12);
            }
        }
        assert!(invert_positive_definite([[1.0, 2.0], [2.0, 1.0]]).is_none());
    }

    #[test]
    fn compress_counts_each_distinct_history_and_sorts_by_frequency() {
        let h = |frequency, recency, age| History {
            frequency,
            recency,
            age,
        };
        let customers = [
            h(2.0, 3.0, 10.0),
            h(0.0, 0.0, 10.0),
            h(2.0, 3.0, 10.0),
            h(0.0, -0.0, 10.0),
            h(1.0, 5.0, 9.0),
        ];
        let data = PurchaseData::compress(&customers);
        assert_eq!(
            data.histories,
            vec![h(0.0, 0.0, 10.0), h(1.0, 5.0, 9.0), h(2.0, 3.0, 10.0)]
        );
        assert_eq!(data.weights, vec![2.0, 1.0, 2.0]);
        assert_eq!((data.customers, data.repeat_buyers), (5, 3));
    }

    #[test]
    fn unidentifiable_data_is_refused_with_the_reason() {
        let zeros: Vec<History> = (0..100)
            .map(|i| History {
                frequency: 0.0,
                recency: 0.0,
                age: f64::from(i),
            })
            .collect();
        let message = PurchaseData::compress(&zeros)
            .check_identifiable("bgnbd")
            .unwrap_err()
            .to_string();
        assert!(message.contains("every frequency is 0"), "{message}");
        let message = PurchaseData::compress(&zeros[..5])
            .check_identifiable("bgnbd")
            .unwrap_err()
            .to_string();
        assert!(message.contains("5 customers"), "{message}");
    }
}
