//! The dashboard's summary of one served version (`GET /v1/summary`): the tiers, the Lorenz
//! (Pareto) curve of value and the value-versus-budget frontier, computed once per served
//! version and kept as encoded JSON, so a request copies bytes and never scans the table. It is
//! computed on the heavy pool once the version is served (or by the first request that needs
//! it first), not on a start-up's or a publication's path.
//!
//! - **Lorenz curve**: customers by CRV descending (the served ranks), the cumulative CRV of
//!   the top `x` share of customers over the total positive CRV, at [`LORENZ_POINTS`] + 1
//!   evenly spaced shares. It rises to 100% at the last customer of positive value and falls
//!   after it by the value the negative customers destroy (a "whale curve").
//! - **Frontier**: the linear relaxation of the selection (customers of positive CRV by
//!   CRV per unit of the default cost column, descending, the last one taken fractionally),
//!   which is the Dantzig upper bound on the best selection's value at every budget and within
//!   one customer's CRV of it. Its slope at a budget is the relaxation's shadow price of the
//!   budget: the value of one more unit of budget. Sampled at [`FRONTIER_POINTS`] evenly spaced
//!   and as many geometrically spaced budgets (small budgets, where the curve bends, stay
//!   visible). Zero-cost customers of positive value are taken at budget 0.
//!
//! Cost: one O(n) scatter of CRV into rank order and one parallel sort of the positive
//! customers by value per cost (about a second at 10^7 customers on 2 cores), in the
//! background.

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::campaign::DEFAULT_COST_COLUMN;
use crate::campaign::report::score_summary;
use crate::kernel::Tiers;
use crate::table::Table;

/// Intervals of the Lorenz curve (its points are one more).
pub const LORENZ_POINTS: usize = 200;
/// Evenly spaced budgets of the frontier (as many again are spaced geometrically).
pub const FRONTIER_POINTS: usize = 120;
/// Smallest geometrically spaced budget, as a share of the budget that takes every customer
/// of positive value.
const SMALLEST_BUDGET_SHARE: f64 = 1e-4;
/// Bins of the P(alive) histogram of a table valued by a purchase model.
const P_ALIVE_BINS: usize = 20;

/// The encoded summary of `table` whose ranks are `tiers`: `{"tiers", "lorenz", "frontier",
/// "p_alive"}` (`frontier` is `null` without a numeric default cost column, `p_alive` without
/// a purchase model).
pub fn encode(table: &Table, tiers: &Tiers) -> Vec<u8> {
    let summary = json!({
        "version": table.version(),
        "tiers": score_summary(table),
        "lorenz": lorenz(table.crv(), &tiers.rank),
        "frontier": table
            .store()
            .optional_numeric(DEFAULT_COST_COLUMN)
            .ok()
            .flatten()
            .map(|costs| frontier(table.crv(), costs)),
        "p_alive": table.outlook().map(|outlook| p_alive_histogram(&outlook.p_alive)),
    });
    serde_json::to_vec(&summary).expect("a JSON value always encodes")
}

/// The Lorenz curve of `crv` ranked by `rank` (1 = highest): `{"customer_share": [..],
/// "value_share": [..], "positive_customers", "positive_crv"}`, shares as fractions.
pub fn lorenz(crv: &[f32], rank: &[u32]) -> Value {
    let customers = crv.len();
    let mut ranked = vec![0f32; customers];
    for (&value, &rank) in crv.iter().zip(rank) {
        ranked[rank as usize - 1] = value;
    }
    let positive_crv: f64 = crv
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| f64::from(v))
        .sum();
    let positive_customers = crv.iter().filter(|&&v| v > 0.0).count();
    let mut customer_share = Vec::with_capacity(LORENZ_POINTS + 1);
    let mut value_share = Vec::with_capacity(LORENZ_POINTS + 1);
    let (mut taken, mut running) = (0usize, 0f64);
    for point in 0..=LORENZ_POINTS {
        let upto = customers * point / LORENZ_POINTS;
        running += ranked[taken..upto]
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>();
        taken = upto;
        customer_share.push(round4(point as f64 / LORENZ_POINTS as f64));
        value_share.push(if positive_crv > 0.0 {
            round4(running / positive_crv)
        } else {
            0.0
        });
    }
    json!({
        "customer_share": customer_share,
        "value_share": value_share,
        "positive_customers": positive_customers,
        "positive_crv": positive_crv,
    })
}

/// The relaxed frontier of selecting from `crv` under a budget of `costs`: `{"cost_column",
/// "budget": [..], "value": [..], "marginal_value": [..], "full_budget", "full_value"}`;
/// `marginal_value[i]` is the value of one more unit of budget at `budget[i]` (0 past
/// `full_budget`, the budget that takes every customer of positive value).
pub fn frontier(crv: &[f32], costs: &[f32]) -> Value {
    let mut items: Vec<(f64, f64)> = crv
        .par_iter()
        .zip(costs)
        .filter(|&(&value, &cost)| value > 0.0 && cost >= 0.0)
        .map(|(&value, &cost)| (f64::from(value), f64::from(cost)))
        .collect();
    // Value per unit of cost, descending; a free customer (ratio +inf) first.
    items.par_sort_unstable_by(|a, b| (b.0 * a.1).total_cmp(&(a.0 * b.1)));
    let full_budget: f64 = items.iter().map(|item| item.1).sum();
    let full_value: f64 = items.iter().map(|item| item.0).sum();
    let mut budgets: Vec<f64> = (0..=FRONTIER_POINTS)
        .map(|i| full_budget * i as f64 / FRONTIER_POINTS as f64)
        .chain((0..FRONTIER_POINTS).map(|i| {
            full_budget * SMALLEST_BUDGET_SHARE.powf(1.0 - i as f64 / FRONTIER_POINTS as f64)
        }))
        .collect();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    let (mut budget_out, mut value_out, mut marginal_out) = (vec![], vec![], vec![]);
    let (mut next, mut spent, mut value) = (0usize, 0f64, 0f64);
    for budget in budgets {
        while next < items.len() && spent + items[next].1 <= budget {
            value += items[next].0;
            spent += items[next].1;
            next += 1;
        }
        let (relaxed, marginal) = match items.get(next) {
            Some(&(item_value, item_cost)) => {
                let ratio = item_value / item_cost;
                (value + (budget - spent) * ratio, ratio)
            }
            None => (value, 0.0),
        };
        budget_out.push(round_significant(budget));
        value_out.push(round_significant(relaxed));
        marginal_out.push(round_significant(marginal));
    }
    json!({
        "cost_column": DEFAULT_COST_COLUMN,
        "budget": budget_out,
        "value": value_out,
        "marginal_value": marginal_out,
        "full_budget": full_budget,
        "full_value": full_value,
    })
}

/// Customers per P(alive) bin, `P_ALIVE_BINS` bins of equal width from 0 to 1:
/// `{"bin_edges": [..], "customers": [..], "mean"}`.
pub fn p_alive_histogram(p_alive: &[f32]) -> Value {
    let mut counts = [0u64; P_ALIVE_BINS];
    let mut sum = 0f64;
    for &p in p_alive {
        let bin = ((f64::from(p) * P_ALIVE_BINS as f64) as usize).min(P_ALIVE_BINS - 1);
        counts[bin] += 1;
        sum += f64::from(p);
    }
    let edges: Vec<f64> = (0..=P_ALIVE_BINS)
        .map(|i| i as f64 / P_ALIVE_BINS as f64)
        .collect();
    json!({
        "bin_edges": edges,
        "customers": counts,
        "mean": if p_alive.is_empty() { 0.0 } else { sum / p_alive.len() as f64 },
    })
}

/// `share` to 4 decimals (a hundredth of a percent: finer than a chart shows, half the bytes).
fn round4(share: f64) -> f64 {
    (share * 1e4).round() / 1e4
}

/// `value` to 6 significant digits.
fn round_significant(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() { value } else { 0.0 };
    }
    let scale = 10f64.powi(5 - value.abs().log10().floor() as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lorenz_follows_the_ranks_and_ends_at_net_over_positive_value() {
        // Ranks: 30 (1), 10 (2), 0 (3), -10 (4).
        let crv = [10.0, -10.0, 30.0, 0.0];
        let rank = [2, 4, 1, 3];
        let curve = lorenz(&crv, &rank);
        let shares = curve["value_share"].as_array().unwrap();
        assert_eq!(shares.len(), LORENZ_POINTS + 1);
        assert_eq!(shares[0], 0.0);
        assert_eq!(shares[LORENZ_POINTS / 4], 0.75);
        assert_eq!(shares[LORENZ_POINTS / 2], 1.0);
        assert_eq!(shares[LORENZ_POINTS * 3 / 4], 1.0);
        assert_eq!(shares[LORENZ_POINTS], 0.75);
        assert_eq!(curve["positive_customers"], 2);
    }

    /// The relaxed frontier against brute force over every subset: it is never below the
    /// best selection and never more than one customer's CRV above it.
    #[test]
    fn frontier_bounds_the_best_selection_within_one_customer() {
        let crv = [5.0, 4.0, -2.0, 3.0, 7.0, 1.0];
        let costs = [2.0, 3.0, 1.0, 1.0, 6.0, 0.0];
        let curve = frontier(&crv, &costs);
        let budgets = curve["budget"].as_array().unwrap();
        let values = curve["value"].as_array().unwrap();
        assert_eq!(curve["full_budget"], 12.0);
        assert_eq!(curve["full_value"], 20.0);
        for (budget, value) in budgets.iter().zip(values) {
            let (budget, value) = (budget.as_f64().unwrap(), value.as_f64().unwrap());
            let best = (0u32..1 << crv.len())
                .filter_map(|set| {
                    let chosen = (0..crv.len()).filter(|i| set >> i & 1 == 1);
                    let cost: f32 = chosen.clone().map(|i| costs[i]).sum();
                    (f64::from(cost) <= budget + 1e-9)
                        .then(|| chosen.map(|i| f64::from(crv[i])).sum::<f64>())
                })
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(value >= best - 1e-6, "budget {budget}: {value} < {best}");
            assert!(
                value <= best + 7.0 + 1e-6,
                "budget {budget}: {value} >> {best}"
            );
        }
        // At budget 0 only the free customer; the next unit buys 3 (the ratio 3/1).
        assert_eq!(values[0], 1.0);
        assert_eq!(curve["marginal_value"][0], 3.0);
        assert_eq!(*values.last().unwrap(), 20.0);
        assert_eq!(
            *curve["marginal_value"].as_array().unwrap().last().unwrap(),
            0.0
        );
    }

    #[test]
    fn p_alive_bins_cover_zero_to_one() {
        let histogram = p_alive_histogram(&[0.0, 0.5, 1.0, 0.99]);
        let counts = histogram["customers"].as_array().unwrap();
        assert_eq!(counts.len(), P_ALIVE_BINS);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[P_ALIVE_BINS / 2], 1);
        assert_eq!(counts[P_ALIVE_BINS - 1], 2);
        assert_eq!(round_significant(1_234_567.8), 1_234_570.0);
    }
}
