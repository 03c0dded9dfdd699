//! A warm start for the dual on large campaigns: the same campaign over a sample of its
//! customers (those whose mixed id falls in one of [`SAMPLE_EVERY`] classes), with every
//! limit and count scaled to the sample's share. Its optimal prices are close to the whole
//! campaign's, so the dual over every customer starts near its optimum and takes a few
//! passes, each over every customer, instead of tens. The sample is chosen by id, so it does
//! not depend on the order of the rows; any prices give a valid bound, so the sample changes
//! how fast the bound is reached, never whether it holds.

use rayon::prelude::*;

use super::{Coefficients, Offer, Problem};
use crate::synthetic::rng::mix64;

/// One customer in this many enters the sample.
pub const SAMPLE_EVERY: u64 = 32;

/// Campaigns with at least this many customers start from a sample.
pub const SAMPLE_FROM: usize = 1 << 20;

/// The sampled customers' columns, owned.
pub struct Sample {
    ids: Vec<u64>,
    limits: Vec<f64>,
    offers: Vec<SampledOffer>,
}

struct SampledOffer {
    value: Vec<f32>,
    uses: Vec<Vec<f32>>,
    eligible: Option<Vec<bool>>,
    min: u64,
    max: Option<u64>,
}

impl Sample {
    /// The sample of `problem`.
    pub fn of(problem: &Problem<'_>) -> Sample {
        let rows: Vec<usize> = (0..problem.ids.len())
            .into_par_iter()
            .filter(|&i| mix64(problem.ids[i]).is_multiple_of(SAMPLE_EVERY))
            .collect();
        let share = rows.len() as f64 / problem.ids.len().max(1) as f64;
        let column =
            |c: &Coefficients<'_>| -> Vec<f32> { rows.iter().map(|&i| c.get(i) as f32).collect() };
        Sample {
            ids: rows.iter().map(|&i| problem.ids[i]).collect(),
            limits: problem.limits.iter().map(|l| l * share).collect(),
            offers: problem
                .offers
                .iter()
                .map(|offer| SampledOffer {
                    value: column(&offer.value),
                    uses: offer.uses.iter().map(column).collect(),
                    eligible: offer.eligible.map(|e| rows.iter().map(|&i| e[i]).collect()),
                    // A minimum stays positive, so that the sample's prices have the same
                    // layout as the campaign's.
                    min: if offer.min > 0 {
                        ((offer.min as f64 * share).floor() as u64).max(1)
                    } else {
                        0
                    },
                    max: offer.max.map(|m| (m as f64 * share).ceil() as u64),
                })
                .collect(),
        }
    }

    /// The sampled campaign.
    pub fn problem(&self) -> Problem<'_> {
        Problem {
            ids: &self.ids,
            limits: self.limits.clone(),
            offers: self
                .offers
                .iter()
                .map(|offer| Offer {
                    value: Coefficients::PerCustomer(&offer.value),
                    uses: offer
                        .uses
                        .iter()
                        .map(|u| Coefficients::PerCustomer(u))
                        .collect(),
                    eligible: offer.eligible.as_deref(),
                    min: offer.min,
                    max: offer.max,
                })
                .collect(),
        }
    }
}
