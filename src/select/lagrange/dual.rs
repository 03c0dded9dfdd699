//! The Lagrangian dual over the prices, minimised by a box-step cutting-plane method: every
//! pricing pass gives the Lagrangian's value and a subgradient at the prices it ran at, i.e. a
//! cut `L(y) >= L(y_j) + g_j.(y - y_j)`; the next prices minimise the cuts' maximum (a small
//! dense LP, `microlp`) inside a box around the best prices so far. The box doubles when a
//! step reaches its edge and shrinks after a step that did not pay. The bound returned is the
//! Lagrangian at the best prices: valid whatever the prices, so stopping early only widens the
//! gap. A descent warm-started from a sample's prices prices inside a small box around them
//! (`boxed.rs`), widened when the descent converges on its edge.

use std::time::Instant;

use microlp::{ComparisonOp, OptimizationDirection, Problem as Lp};

use super::boxed::Pricer;
use super::pricing::{Prices, Tally, price};
use super::sample::{SAMPLE_FROM, Sample};
use super::{Options, Problem};

/// Where each price sits in the flat vector `y` the master LP works on: the resources'
/// prices, then `mu+` of each offer with a maximum, then `mu-` of each offer with a minimum.
pub struct Layout {
    resources: usize,
    offers: usize,
    with_max: Vec<usize>,
    with_min: Vec<usize>,
}

impl Layout {
    /// The layout of `problem`'s prices.
    pub fn of(problem: &Problem<'_>) -> Layout {
        Layout {
            resources: problem.limits.len(),
            offers: problem.offers.len(),
            with_max: (0..problem.offers.len())
                .filter(|&o| problem.offers[o].max.is_some())
                .collect(),
            with_min: (0..problem.offers.len())
                .filter(|&o| problem.offers[o].min > 0)
                .collect(),
        }
    }

    fn dims(&self) -> usize {
        self.resources + self.with_max.len() + self.with_min.len()
    }

    /// The flat vector of `prices` (each offer's price split into its `mu+` and `mu-`).
    pub fn point(&self, prices: &Prices) -> Vec<f64> {
        let mut y = prices.resource.clone();
        y.extend(self.with_max.iter().map(|&o| prices.offer[o].max(0.0)));
        y.extend(self.with_min.iter().map(|&o| (-prices.offer[o]).max(0.0)));
        y
    }

    /// How far each price moves when every entry of `y` moves by at most `half`: each
    /// offer's price moves by its `mu+`'s and its `mu-`'s half-widths together.
    pub fn spread(&self, half: &[f64]) -> Prices {
        let mut spread = self.prices(half);
        let mins = self.resources + self.with_max.len();
        for (&o, &h) in self.with_min.iter().zip(&half[mins..]) {
            spread.offer[o] += 2.0 * h;
        }
        spread
    }

    /// The Lagrangian at `prices`, from an exact pass there (boxed when `pricer` covers
    /// them): a valid bound on the optimum whatever the prices.
    pub fn bound(&self, problem: &Problem<'_>, pricer: &Pricer, prices: &Prices) -> f64 {
        let y = self.point(prices);
        let tally = pricer.price(problem, self, &y);
        self.value_and_subgradient(problem, &y, &tally).0
    }

    /// The prices `y` stands for.
    pub fn prices(&self, y: &[f64]) -> Prices {
        let mut offer = vec![0.0; self.offers];
        let mut at = self.resources;
        for &o in &self.with_max {
            offer[o] += y[at];
            at += 1;
        }
        for &o in &self.with_min {
            offer[o] -= y[at];
            at += 1;
        }
        Prices {
            resource: y[..self.resources].to_vec(),
            offer,
        }
    }

    /// The Lagrangian at `y` and a subgradient, from the pricing pass's tally there.
    fn value_and_subgradient(
        &self,
        problem: &Problem<'_>,
        y: &[f64],
        tally: &Tally,
    ) -> (f64, Vec<f64>) {
        let prices = self.prices(y);
        let mut value = 0.0;
        let mut gradient = Vec::with_capacity(self.dims());
        for (k, &limit) in problem.limits.iter().enumerate() {
            let used = tally.used(problem, k);
            value += y[k] * limit;
            gradient.push(limit - used);
        }
        let mut at = self.resources;
        for &o in &self.with_max {
            let max = problem.offers[o].max.expect("offers with a maximum") as f64;
            value += y[at] * max;
            gradient.push(max - tally.counts[o] as f64);
            at += 1;
        }
        for &o in &self.with_min {
            let min = problem.offers[o].min as f64;
            value -= y[at] * min;
            gradient.push(tally.counts[o] as f64 - min);
            at += 1;
        }
        for o in 0..self.offers {
            let mut reduced =
                tally.offer_value(problem, o) - prices.offer[o] * tally.counts[o] as f64;
            for k in 0..self.resources {
                if prices.resource[k] != 0.0 {
                    reduced -= prices.resource[k] * tally.offer_use(problem, o, k);
                }
            }
            value += reduced;
        }
        (value, gradient)
    }
}

/// The dual's answer.
pub struct Dual {
    /// The best prices found.
    pub prices: Prices,
    /// The same, as the flat vector of [`Layout`].
    pub point: Vec<f64>,
    /// The Lagrangian there: an upper bound on the optimum.
    pub bound: f64,
    /// Pricing passes run.
    pub passes: usize,
    /// A time limit or the cancel token stopped the search.
    pub stopped: bool,
    /// The pricer of the last passes (boxed around the best prices on large campaigns).
    pub pricer: Pricer,
}

/// One cut: `L(z) >= value + gradient.(z - at)`, in the master's scaled coordinates.
struct Cut {
    at: Vec<f64>,
    value: f64,
    gradient: Vec<f64>,
}

/// Half-width of the first box around a sample's prices, in the master's units (value per
/// unit of each resource at the start): the sample's prices are within a few percent.
const WARM_RADIUS: f64 = 0.05;

/// The boxed pricing's first box around a sample's prices: each price within this share of
/// itself plus [`BOX_FLOOR`] of its unit. It widens fourfold whenever the descent converges
/// on its edge.
const BOX_RELATIVE: f64 = 0.01;

/// See [`BOX_RELATIVE`].
const BOX_FLOOR: f64 = 1e-3;

/// The smallest target gap the descent works to: a target below it (0 asks for a proven
/// optimum, which the core search gives) stops the descent at this one, where the master
/// LP's precision ends; the rest is the core search's.
const MIN_TARGET_GAP: f64 = 1e-9;

/// Minimises the Lagrangian over the prices (module doc), until the model predicts less than
/// a hundredth of the target gap (at least [`MIN_TARGET_GAP`]), or a limit. Large campaigns start from the prices of a
/// sample of their customers (`sample.rs`).
pub fn minimise(problem: &Problem<'_>, options: &Options, started: Instant) -> Dual {
    if problem.ids.len() < SAMPLE_FROM {
        return descend(problem, options, started, None);
    }
    let sample = Sample::of(problem);
    let warm = descend(&sample.problem(), options, started, None);
    descend(problem, options, started, Some(&warm.point))
}

/// The cutting-plane descent from the origin (box half-width 1), or from `start` (box
/// half-width [`WARM_RADIUS`], passes boxed around it: `boxed.rs`).
fn descend(
    problem: &Problem<'_>,
    options: &Options,
    started: Instant,
    start: Option<&[f64]>,
) -> Dual {
    let layout = Layout::of(problem);
    let dims = layout.dims();
    let stopped = || {
        options.cancel.is_stopped() || options.time_limit.is_some_and(|l| started.elapsed() >= l)
    };
    let origin = start.map_or_else(|| vec![0.0; dims], <[f64]>::to_vec);
    let first = price(problem, &layout.prices(&origin));
    let (first_value, first_gradient) = layout.value_and_subgradient(problem, &origin, &first);
    let mut passes = 1;
    if dims == 0 {
        return Dual {
            prices: layout.prices(&origin),
            point: origin,
            bound: first_value,
            passes,
            stopped: false,
            pricer: Pricer::full(),
        };
    }
    // Price units: value per unit of each resource and value per customer at the origin, so
    // the master works on numbers of order one.
    let total_value = (0..problem.offers.len())
        .map(|o| first.offer_value(problem, o))
        .sum::<f64>()
        .max(1e-9);
    let customers = first.counts.iter().sum::<u64>().max(1) as f64;
    let mut unit = vec![total_value / customers; dims];
    for (k, unit) in unit.iter_mut().enumerate().take(layout.resources) {
        let used = first.used(problem, k);
        if used > 0.0 {
            *unit = total_value / used;
        }
    }
    let scale = first_value.abs().max(total_value).max(1e-9);
    let scaled = |value: f64, gradient: &[f64], at: &[f64]| Cut {
        at: at.iter().zip(&unit).map(|(y, u)| y / u).collect(),
        value: value / scale,
        gradient: gradient
            .iter()
            .zip(&unit)
            .map(|(g, u)| g * u / scale)
            .collect(),
    };
    // The boxed pricing's box around `y`: each price within `widen` times a hundredth of
    // itself plus a thousandth of its unit (the sample's prices are within a few tenths of a
    // percent), clipped at zero.
    let pricing_box = |y: &[f64], widen: f64| {
        let half = |y: f64, u: f64| widen * (BOX_RELATIVE * y + BOX_FLOOR * u);
        let lo = y
            .iter()
            .zip(&unit)
            .map(|(&y, &u)| (y - half(y, u)).max(0.0));
        let hi = y.iter().zip(&unit).map(|(&y, &u)| y + half(y, u));
        Pricer::boxed(problem, &layout, lo.collect(), hi.collect())
    };
    let mut widen = 1.0;
    let mut pricer = match start {
        Some(start) if options.max_passes > 1 => pricing_box(start, widen),
        _ => Pricer::full(),
    };
    let mut cuts = vec![scaled(first_value, &first_gradient, &origin)];
    let mut best = (origin, first_value);
    let mut radius = if start.is_some() { WARM_RADIUS } else { 1.0 };
    let tolerance = 0.01 * options.target_gap.max(MIN_TARGET_GAP);
    let mut was_stopped = false;
    while passes < options.max_passes {
        if stopped() {
            was_stopped = true;
            break;
        }
        let center: Vec<f64> = best.0.iter().zip(&unit).map(|(y, u)| y / u).collect();
        // The trust box, within the pricing box when there is one.
        let mut lo: Vec<f64> = center.iter().map(|c| (c - radius).max(0.0)).collect();
        let mut hi: Vec<f64> = center.iter().map(|c| c + radius).collect();
        if let Some((box_lo, box_hi)) = pricer.bounds() {
            for d in 0..dims {
                lo[d] = lo[d].max(box_lo[d] / unit[d]);
                hi[d] = hi[d].min(box_hi[d] / unit[d]);
            }
        }
        let Some((z, model)) = master(&cuts, &lo, &hi) else {
            break;
        };
        let predicted = best.1 / scale - model;
        if predicted <= tolerance * (best.1.abs() / scale).max(1e-12) {
            // The minimum within the pricing box; when it lies on the box's edge (other than
            // a zero price), the minimum over all prices may lie beyond: a wider box.
            let on_edge = pricer.bounds().is_some_and(|(box_lo, box_hi)| {
                best.0.iter().enumerate().any(|(d, &y)| {
                    let near = 1e-6 * (box_hi[d] - box_lo[d]);
                    (box_lo[d] > 0.0 && y <= box_lo[d] + near) || y >= box_hi[d] - near
                })
            });
            if !on_edge {
                break;
            }
            widen *= 4.0;
            pricer = pricing_box(&best.0, widen);
            radius = radius.max(WARM_RADIUS);
            continue;
        }
        let y: Vec<f64> = z.iter().zip(&unit).map(|(z, u)| (z * u).max(0.0)).collect();
        let tally = pricer.price(problem, &layout, &y);
        passes += 1;
        let (value, gradient) = layout.value_and_subgradient(problem, &y, &tally);
        cuts.push(scaled(value, &gradient, &y));
        if (best.1 - value) / scale >= 0.1 * predicted {
            let at_edge = z
                .iter()
                .zip(&center)
                .any(|(z, c)| (z - c).abs() >= 0.999 * radius);
            best = (y, value);
            if at_edge {
                radius *= 2.0;
            }
        } else {
            radius = (radius * 0.5).max(1e-12);
        }
    }
    Dual {
        prices: layout.prices(&best.0),
        point: best.0,
        bound: best.1,
        passes,
        stopped: was_stopped,
        pricer,
    }
}

/// The master LP: minimise the cuts' maximum over the box `lo..=hi`. `None` when the LP
/// solver fails (the caller keeps its best).
fn master(cuts: &[Cut], lo: &[f64], hi: &[f64]) -> Option<(Vec<f64>, f64)> {
    let mut lp = Lp::new(OptimizationDirection::Minimize);
    let z: Vec<_> = lo
        .iter()
        .zip(hi)
        .map(|(&l, &h)| lp.add_var(0.0, (l, h)))
        .collect();
    let t = lp.add_var(1.0, (f64::NEG_INFINITY, f64::INFINITY));
    for cut in cuts {
        // t - g.z >= value - g.at
        let mut row = vec![(t, 1.0)];
        let mut rhs = cut.value;
        for ((&var, &g), &a) in z.iter().zip(&cut.gradient).zip(&cut.at) {
            if g != 0.0 {
                row.push((var, -g));
                rhs -= g * a;
            }
        }
        lp.add_constraint(row.as_slice(), ComparisonOp::Ge, rhs);
    }
    let outcome = lp.solve().ok()?;
    let solution = outcome.solution()?;
    Some((
        z.iter().map(|&v| solution.var_value(v)).collect(),
        solution.objective(),
    ))
}
