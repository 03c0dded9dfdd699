//! Box-restricted pricing: within a box of prices, most customers take the same choice at
//! every price (their best offer, or none, wins by more than the box lets the reduced values
//! move), so one classification pass tallies those *settled* customers once, and each pass
//! at prices inside the box re-prices only the others (the *ambiguous* ones). The settled
//! tally is exact and merges exactly, so a boxed pass gives the very tally, and so the same
//! Lagrangian and subgradient, bit for bit, as a pass over every customer; prices outside the
//! box get a pass over every customer.
//!
//! A customer is settled when, for every alternative `o` to their best choice `b` at the
//! box's centre, `r_b - r_o` at the centre exceeds what the box can move it by
//! (`sum_k h_k |a_bk - a_ok|` plus the offers' price half-widths) by a relative safety margin
//! (`SAFETY` of the magnitudes involved), so that the rounding of the reduced values in a pass
//! cannot flip the choice either.

use rayon::prelude::*;

use super::Problem;
use super::dual::Layout;
use super::pricing::{Prices, Tally, price, price_rows};

/// Relative margin, over the magnitudes of the reduced values compared, that a settled
/// customer's best choice keeps at every price of the box.
const SAFETY: f64 = 1e-9;

/// Rows per rayon task of the classification.
const CHUNK_ROWS: usize = 1 << 16;

/// Prices passes: over every customer, or boxed (module doc).
pub struct Pricer {
    region: Option<Region>,
}

/// A box of prices (in the [`Layout`]'s flat coordinates) with its settled tally.
struct Region {
    lo: Vec<f64>,
    hi: Vec<f64>,
    settled: Tally,
    /// The customers whose choice may change in the box, by row.
    ambiguous: Vec<usize>,
}

impl Pricer {
    /// Every pass over every customer.
    pub fn full() -> Pricer {
        Pricer { region: None }
    }

    /// Classifies every customer against the box `lo..=hi` (one pass over every customer).
    pub fn boxed(problem: &Problem<'_>, layout: &Layout, lo: Vec<f64>, hi: Vec<f64>) -> Pricer {
        let mid: Vec<f64> = lo.iter().zip(&hi).map(|(l, h)| 0.5 * (l + h)).collect();
        let half: Vec<f64> = lo.iter().zip(&hi).map(|(l, h)| 0.5 * (h - l)).collect();
        let centre = layout.prices(&mid);
        let spread = layout.spread(&half);
        let n = problem.ids.len();
        let (settled, ambiguous) = (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|chunk| {
                let mut tally = Tally::new(problem);
                let mut ambiguous = Vec::new();
                for i in chunk * CHUNK_ROWS..n.min((chunk + 1) * CHUNK_ROWS) {
                    match settled_choice(problem, &centre, &spread, i) {
                        Some(0) => {}
                        Some(c) => tally.add(problem, i, usize::from(c - 1)),
                        None => ambiguous.push(i),
                    }
                }
                (tally, ambiguous)
            })
            .reduce(
                || (Tally::new(problem), Vec::new()),
                |(a, mut rows), (b, more)| {
                    rows.extend(more);
                    (a.merge(b), rows)
                },
            );
        Pricer {
            region: Some(Region {
                lo,
                hi,
                settled,
                ambiguous,
            }),
        }
    }

    /// The box, when there is one.
    pub fn bounds(&self) -> Option<(&[f64], &[f64])> {
        self.region
            .as_ref()
            .map(|r| (r.lo.as_slice(), r.hi.as_slice()))
    }

    /// The customers a pass inside the box re-prices (`None`: no box, every customer), and
    /// the tally of the others.
    pub fn ambiguous(&self) -> Option<(&[usize], &Tally)> {
        self.region
            .as_ref()
            .map(|r| (r.ambiguous.as_slice(), &r.settled))
    }

    /// Whether `y` lies in the box.
    pub fn covers(&self, y: &[f64]) -> bool {
        self.region.as_ref().is_some_and(|r| {
            y.iter()
                .zip(r.lo.iter().zip(&r.hi))
                .all(|(y, (lo, hi))| lo <= y && y <= hi)
        })
    }

    /// The pricing pass at `y`: the same tally as [`price`] there, boxed when `y` is in the
    /// box.
    pub fn price(&self, problem: &Problem<'_>, layout: &Layout, y: &[f64]) -> Tally {
        let prices = layout.prices(y);
        match &self.region {
            Some(region) if self.covers(y) => {
                region
                    .settled
                    .clone()
                    .merge(price_rows(problem, &prices, &region.ambiguous))
            }
            _ => price(problem, &prices),
        }
    }
}

/// Customer `i`'s choice at every price within `spread` of `centre` (0 for none, `o + 1` for
/// offer o), or `None` when it may change there.
fn settled_choice(problem: &Problem<'_>, centre: &Prices, spread: &Prices, i: usize) -> Option<u8> {
    let (best, _) = centre.ranked(problem, i);
    let b = best.checked_sub(1).map(usize::from);
    // A choice's reduced value at the centre, the magnitude of its terms anywhere in the box,
    // and its offer price's half-width (no offer: all zero).
    let side = |c: Option<usize>| match c {
        None => (0.0, 0.0, 0.0),
        Some(o) => {
            let offer = &problem.offers[o];
            let mut magnitude = offer.value.get(i).abs() + centre.offer[o].abs() + spread.offer[o];
            for (k, use_) in offer.uses.iter().enumerate() {
                magnitude += (centre.resource[k] + spread.resource[k]) * use_.get(i).abs();
            }
            (centre.reduced(problem, i, o), magnitude, spread.offer[o])
        }
    };
    let use_of = |c: Option<usize>, k: usize| c.map_or(0.0, |o| problem.offers[o].uses[k].get(i));
    let (best_reduced, best_magnitude, best_spread) = side(b);
    let beaten = |c: Option<usize>| {
        let (reduced, magnitude, offer_spread) = side(c);
        let mut moves = best_spread + offer_spread;
        for (k, &h) in spread.resource.iter().enumerate() {
            if h != 0.0 {
                moves += h * (use_of(b, k) - use_of(c, k)).abs();
            }
        }
        best_reduced - reduced - moves > SAFETY * (best_magnitude + magnitude)
    };
    let offers = (0..problem.offers.len())
        .filter(|&o| Some(o) != b && problem.offers[o].is_eligible(i))
        .map(Some);
    b.map(|_| None)
        .into_iter()
        .chain(offers)
        .all(beaten)
        .then_some(best)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::select::lagrange::testing::Campaign;
    use crate::synthetic::rng::mix64;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// At every price in the box, on its faces and corners included, a boxed pass gives
        /// the very tally of a pass over every customer, and so the same Lagrangian.
        #[test]
        fn boxed_passes_equal_full_passes(
            seed in any::<u64>(),
            n in 1usize..300,
            shape in (1usize..5, 1usize..4),
            counts in (any::<bool>(), any::<bool>()),
            width in 0.0f64..2.0,
        ) {
            let campaign = Campaign::random(seed, n, shape, counts.0, counts.1);
            let problem = campaign.problem();
            let layout = Layout::of(&problem);
            let dims = layout.point(&Prices {
                resource: vec![0.0; problem.limits.len()],
                offer: vec![0.0; problem.offers.len()],
            }).len();
            let mut state = seed;
            let mut unit = move || {
                state = mix64(state ^ 0x5851_f42d_4c95_7f2d);
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            // Prices on a coarse grid too, so that ties fall inside the box.
            let centre: Vec<f64> = (0..dims).map(|_| (unit() * 8.0).round() * 0.25).collect();
            let lo: Vec<f64> = centre.iter().map(|c| (c - width * unit()).max(0.0)).collect();
            let hi: Vec<f64> = centre.iter().map(|c| c + width * unit()).collect();
            let pricer = Pricer::boxed(&problem, &layout, lo.clone(), hi.clone());
            let (ambiguous, _) = pricer.ambiguous().expect("a box");
            prop_assert!(ambiguous.len() <= n);
            for trial in 0..8 {
                let y: Vec<f64> = lo
                    .iter()
                    .zip(&hi)
                    .map(|(&l, &h)| match trial {
                        0 => l,
                        1 => h,
                        _ => match (unit() * 3.0) as usize {
                            0 => l,
                            1 => h,
                            _ => l + (h - l) * unit(),
                        },
                    })
                    .collect();
                prop_assert!(pricer.covers(&y));
                let boxed = pricer.price(&problem, &layout, &y);
                let full = price(&problem, &layout.prices(&y));
                prop_assert_eq!(&boxed.counts, &full.counts);
                for o in 0..problem.offers.len() {
                    prop_assert_eq!(
                        boxed.offer_value(&problem, o).to_bits(),
                        full.offer_value(&problem, o).to_bits()
                    );
                    for k in 0..problem.limits.len() {
                        prop_assert_eq!(
                            boxed.offer_use(&problem, o, k).to_bits(),
                            full.offer_use(&problem, o, k).to_bits()
                        );
                    }
                }
                let prices = layout.prices(&y);
                prop_assert_eq!(
                    layout.bound(&problem, &pricer, &prices).to_bits(),
                    layout.bound(&problem, &Pricer::full(), &prices).to_bits()
                );
            }
        }
    }
}
