//! Random campaigns for the unit tests of the solver's steps.

use super::{Coefficients, Offer, Problem};
use crate::synthetic::rng::mix64;

/// A campaign with owned columns.
pub struct Campaign {
    ids: Vec<u64>,
    limits: Vec<f64>,
    values: Vec<Vec<f32>>,
    uses: Vec<Vec<Vec<f32>>>,
    eligible: Vec<Vec<bool>>,
    max: Vec<Option<u64>>,
    min: Vec<u64>,
}

impl Campaign {
    /// `n` customers, `offers` offers, `resources` resources, from `seed`. Values and uses lie
    /// on a coarse grid, so that customers tie; some offers have a maximum count when
    /// `with_max`, and a minimum when `with_min`; each limit allows 0.2 to 0.6 per customer
    /// (uses average 2).
    pub fn random(
        seed: u64,
        n: usize,
        (offers, resources): (usize, usize),
        with_max: bool,
        with_min: bool,
    ) -> Self {
        let mut state = seed;
        let mut next = move |modulus: u64| {
            state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state % modulus
        };
        let values = (0..offers)
            .map(|_| (0..n).map(|_| next(41) as f32 * 0.5 - 4.0).collect())
            .collect();
        let uses: Vec<Vec<Vec<f32>>> = (0..offers)
            .map(|_| {
                (0..resources)
                    .map(|_| (0..n).map(|_| next(9) as f32 * 0.5).collect())
                    .collect()
            })
            .collect();
        let eligible = (0..offers)
            .map(|_| (0..n).map(|_| next(8) != 0).collect())
            .collect();
        let max = (0..offers)
            .map(|_| (with_max && next(3) == 0).then(|| next(n as u64 / 2 + 1)))
            .collect();
        let min = (0..offers)
            .map(|_| if with_min && next(3) == 0 { 1 } else { 0 })
            .collect();
        Campaign {
            ids: (0..n as u64).map(|i| mix64(i ^ seed)).collect(),
            limits: (0..resources)
                .map(|_| (n as f64) * (0.2 + next(5) as f64 * 0.1))
                .collect(),
            values,
            uses,
            eligible,
            max,
            min,
        }
    }

    /// The campaign as the solver sees it.
    pub fn problem(&self) -> Problem<'_> {
        Problem {
            ids: &self.ids,
            limits: self.limits.clone(),
            offers: (0..self.values.len())
                .map(|o| Offer {
                    value: Coefficients::PerCustomer(&self.values[o]),
                    uses: self.uses[o]
                        .iter()
                        .map(|u| Coefficients::PerCustomer(u))
                        .collect(),
                    eligible: Some(&self.eligible[o]),
                    min: self.min[o],
                    max: self.max[o],
                })
                .collect(),
        }
    }
}
