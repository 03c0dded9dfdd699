//! The pricing pass: at given prices every customer takes the offer of largest reduced value
//! (none when no reduced value is positive), and the pass tallies what those choices use.
//! Sums are exact (integer accumulators per f32 exponent), so a tally, and every price
//! computed from it, is the same whatever the order of the rows or the rayon split.

use rayon::prelude::*;

use super::{Coefficients, Problem};

/// Rows per rayon task.
const CHUNK_ROWS: usize = 1 << 16;

/// An exact sum of f32 values: one integer accumulator of mantissas per binary exponent. Adding
/// is exact and commutative; [`ExactSum::value`] rounds once per exponent, in a fixed order.
#[derive(Clone)]
pub struct ExactSum(Box<[i64; 256]>);

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum(Box::new([0; 256]))
    }
}

impl ExactSum {
    /// Adds `x` exactly (up to 2^39 additions: 24-bit mantissas in 63 bits).
    #[inline]
    pub fn add(&mut self, x: f32) {
        let bits = x.to_bits();
        let exponent = ((bits >> 23) & 0xff) as usize;
        let mut mantissa = i64::from(bits & 0x7f_ffff);
        if exponent != 0 {
            mantissa |= 1 << 23;
        }
        if bits >> 31 == 1 {
            mantissa = -mantissa;
        }
        // Subnormals (exponent 0) share the scale of exponent 1.
        self.0[exponent.max(1)] += mantissa;
    }

    /// Adds every term of `other`.
    pub fn merge(&mut self, other: &ExactSum) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The sum, rounded to f64.
    pub fn value(&self) -> f64 {
        let mut total = 0.0;
        for (exponent, &mantissas) in self.0.iter().enumerate() {
            if mantissas != 0 {
                total += mantissas as f64 * (2f64).powi(exponent as i32 - 150);
            }
        }
        total
    }
}

/// Prices per resource (lambda_k >= 0) and per offer (mu_o, of either sign).
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// Per resource.
    pub resource: Vec<f64>,
    /// Per offer.
    pub offer: Vec<f64>,
}

impl Prices {
    /// Customer `i`'s reduced value for offer `o`: `v_io - sum_k lambda_k a_iok - mu_o`.
    #[inline]
    pub fn reduced(&self, problem: &Problem<'_>, i: usize, o: usize) -> f64 {
        let offer = &problem.offers[o];
        let mut r = offer.value.get(i) - self.offer[o];
        for (use_, price) in offer.uses.iter().zip(&self.resource) {
            if *price != 0.0 {
                r -= price * use_.get(i);
            }
        }
        r
    }

    /// Customer `i`'s best offer and its reduced value, among the offers they are eligible
    /// for and whose reduced value is positive; ties go to the first offer.
    #[inline]
    pub fn best(&self, problem: &Problem<'_>, i: usize) -> Option<(usize, f64)> {
        let mut best = None;
        let mut best_value = 0.0;
        for (o, offer) in problem.offers.iter().enumerate() {
            if offer.is_eligible(i) {
                let r = self.reduced(problem, i, o);
                if r > best_value {
                    best_value = r;
                    best = Some(o);
                }
            }
        }
        best.map(|o| (o, best_value))
    }

    /// Customer `i`'s best choice (0 for none, `o + 1` for offer o, ties as [`Prices::best`])
    /// and its margin: the best reduced value (0 for none) less the second best.
    #[inline]
    pub fn ranked(&self, problem: &Problem<'_>, i: usize) -> (u8, f64) {
        let (mut choice, mut first, mut second) = (0u8, 0.0, f64::NEG_INFINITY);
        for (o, offer) in problem.offers.iter().enumerate() {
            if offer.is_eligible(i) {
                let r = self.reduced(problem, i, o);
                if r > first {
                    (choice, first, second) = (o as u8 + 1, r, first);
                } else if r > second {
                    second = r;
                }
            }
        }
        (choice, first - second)
    }
}

/// What a set of choices adds up to, exactly, per offer.
#[derive(Clone)]
pub struct Tally {
    /// Customers per offer.
    pub counts: Vec<u64>,
    /// Sum of the per-customer values, per offer.
    values: Vec<ExactSum>,
    /// Sum of the per-customer uses, per offer and resource (`o * resources + k`).
    uses: Vec<ExactSum>,
}

impl Tally {
    /// The tally of no customer.
    pub fn new(problem: &Problem<'_>) -> Tally {
        let offers = problem.offers.len();
        Tally {
            counts: vec![0; offers],
            values: vec![ExactSum::default(); offers],
            uses: vec![ExactSum::default(); offers * problem.limits.len()],
        }
    }

    /// Adds customer `i` taking offer `o`.
    #[inline]
    pub fn add(&mut self, problem: &Problem<'_>, i: usize, o: usize) {
        self.count(problem, i, o, 1.0);
    }

    /// Takes back customer `i` taking offer `o` (added before): exact, as the sums are.
    pub fn remove(&mut self, problem: &Problem<'_>, i: usize, o: usize) {
        self.count(problem, i, o, -1.0);
    }

    #[inline]
    fn count(&mut self, problem: &Problem<'_>, i: usize, o: usize, sign: f32) {
        let resources = problem.limits.len();
        let offer = &problem.offers[o];
        if sign > 0.0 {
            self.counts[o] += 1;
        } else {
            self.counts[o] -= 1;
        }
        if let Coefficients::PerCustomer(values) = offer.value {
            self.values[o].add(sign * values[i]);
        }
        for (k, use_) in offer.uses.iter().enumerate() {
            if let Coefficients::PerCustomer(values) = use_ {
                self.uses[o * resources + k].add(sign * values[i]);
            }
        }
    }

    /// Both tallies together (exact).
    pub fn merge(mut self, other: Tally) -> Tally {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            a.merge(b);
        }
        for (a, b) in self.uses.iter_mut().zip(&other.uses) {
            a.merge(b);
        }
        self
    }

    /// `sum` for a per-customer coefficient, `count * c` for a constant one.
    fn total(coefficients: &Coefficients<'_>, sum: &ExactSum, count: u64) -> f64 {
        match coefficients {
            Coefficients::Constant(c) => c * count as f64,
            Coefficients::PerCustomer(_) => sum.value(),
        }
    }

    /// Value of offer `o`'s customers.
    pub fn offer_value(&self, problem: &Problem<'_>, o: usize) -> f64 {
        Tally::total(&problem.offers[o].value, &self.values[o], self.counts[o])
    }

    /// Offer `o`'s customers' use of resource `k`.
    pub fn offer_use(&self, problem: &Problem<'_>, o: usize, k: usize) -> f64 {
        let resources = problem.limits.len();
        Tally::total(
            &problem.offers[o].uses[k],
            &self.uses[o * resources + k],
            self.counts[o],
        )
    }

    /// Every offer's use of resource `k`.
    pub fn used(&self, problem: &Problem<'_>, k: usize) -> f64 {
        (0..problem.offers.len())
            .map(|o| self.offer_use(problem, o, k))
            .sum()
    }
}

/// Runs `per_row(i, tally)` over every customer, split over rayon in fixed chunks.
fn tally_rows(problem: &Problem<'_>, per_row: impl Fn(usize, &mut Tally) + Sync) -> Tally {
    let n = problem.ids.len();
    (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|chunk| {
            let mut tally = Tally::new(problem);
            for i in chunk * CHUNK_ROWS..n.min((chunk + 1) * CHUNK_ROWS) {
                per_row(i, &mut tally);
            }
            tally
        })
        .reduce(|| Tally::new(problem), Tally::merge)
}

/// The pricing pass over the customers `rows` only: their best offers at `prices`, tallied.
pub fn price_rows(problem: &Problem<'_>, prices: &Prices, rows: &[usize]) -> Tally {
    rows.par_chunks(CHUNK_ROWS)
        .map(|chunk| {
            let mut tally = Tally::new(problem);
            for &i in chunk {
                if let Some((o, _)) = prices.best(problem, i) {
                    tally.add(problem, i, o);
                }
            }
            tally
        })
        .reduce(|| Tally::new(problem), Tally::merge)
}

/// The pricing pass: every customer's best offer at `prices`, tallied.
pub fn price(problem: &Problem<'_>, prices: &Prices) -> Tally {
    tally_rows(problem, |i, tally| {
        if let Some((o, _)) = prices.best(problem, i) {
            tally.add(problem, i, o);
        }
    })
}

/// Every customer's best choice and margin at some prices ([`Prices::ranked`]).
pub struct Ranked {
    /// Per customer: 0 for none, `o + 1` for offer o.
    pub best: Vec<u8>,
    /// Per customer: the best reduced value less the second best.
    pub margin: Vec<f64>,
}

/// Every customer ranked at `prices`.
pub fn ranked(problem: &Problem<'_>, prices: &Prices) -> Ranked {
    let n = problem.ids.len();
    let mut best = vec![0u8; n];
    let mut margin = vec![0.0; n];
    best.par_chunks_mut(CHUNK_ROWS)
        .zip(margin.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .for_each(|(chunk, (best, margin))| {
            for (j, (b, m)) in best.iter_mut().zip(margin.iter_mut()).enumerate() {
                (*b, *m) = prices.ranked(problem, chunk * CHUNK_ROWS + j);
            }
        });
    Ranked { best, margin }
}

/// A plan's totals.
pub struct Totals {
    /// The plan's value.
    pub value: f64,
    /// Per resource.
    pub used: Vec<f64>,
    /// Per offer.
    pub counts: Vec<u64>,
    /// Per offer.
    pub offer_values: Vec<f64>,
}

/// The tally of `choice` (0: none, `o + 1`: offer o).
pub fn tally_choices(problem: &Problem<'_>, choice: &[u8]) -> Tally {
    tally_rows(problem, |i, tally| {
        if let Some(o) = choice[i].checked_sub(1) {
            tally.add(problem, i, usize::from(o));
        }
    })
}

/// The totals of `choice` (0: none, `o + 1`: offer o), exact.
pub fn totals(problem: &Problem<'_>, choice: &[u8]) -> Totals {
    Totals::of(problem, tally_choices(problem, choice))
}

impl Totals {
    /// What `tally` adds up to.
    pub fn of(problem: &Problem<'_>, tally: Tally) -> Totals {
        let offer_values: Vec<f64> = (0..problem.offers.len())
            .map(|o| tally.offer_value(problem, o))
            .collect();
        Totals {
            value: offer_values.iter().sum(),
            used: (0..problem.limits.len())
                .map(|k| tally.used(problem, k))
                .collect(),
            counts: tally.counts,
            offer_values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sum_does_not_depend_on_the_order() {
        let values: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f32 * 1.37e-3 + if i % 3 == 0 { 1e6 } else { -2.5 })
            .collect();
        let mut forward = ExactSum::default();
        values.iter().for_each(|&v| forward.add(v));
        let mut backward = ExactSum::default();
        values.iter().rev().for_each(|&v| backward.add(v));
        assert_eq!(forward.value(), backward.value());
        let exact: f64 = values.iter().map(|&v| f64::from(v)).sum();
        assert!((forward.value() - exact).abs() <= 1e-9 * exact.abs());
        let mut tiny = ExactSum::default();
        tiny.add(f32::from_bits(1));
        tiny.add(-0.0);
        assert_eq!(tiny.value(), f64::from(f32::from_bits(1)));
    }
}
