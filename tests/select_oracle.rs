//! Oracles for the knapsack solver, written here independently of it: brute force on tiny
//! instances (also with huge costs and capacities above 2^53), the integer-capacity DP up to
//! 10^5 rows (also on the sampled-band path, n >= 131,072), an exact two-cost method at large
//! capacity, and the LP relaxation (sort by ratio, fill fractionally) that every bound the
//! solver reports must lie under. Plus the rounding of real costs: a selection never spends
//! more than the budget in the cost column's own units.

use std::time::Duration;

use crv::campaign::{CampaignSpec, RealCosts, targets};
use crv::select::{
    OPTIMALITY_TOLERANCE, Selection, SolveLimits, StopReason, as_written, knapsack,
    knapsack_greedy, scale_capacity, scale_costs,
};
use crv::synthetic::RowRng;
use proptest::prelude::*;

/// The classic instance classes, plus real-valued and messy variants.
#[derive(Debug, Clone, Copy)]
enum Class {
    Uncorrelated,
    WeaklyCorrelated,
    StronglyCorrelated,
    SubsetSum,
    /// Real values with ties, zero costs, zero and negative values.
    Messy,
    /// Whole values, except zero-cost rows worth a fraction: the bound's floor for whole
    /// values must keep the fraction that every solution takes.
    WholeWithFractionalFreeRows,
}

const CLASSES: [Class; 6] = [
    Class::Uncorrelated,
    Class::WeaklyCorrelated,
    Class::StronglyCorrelated,
    Class::SubsetSum,
    Class::Messy,
    Class::WholeWithFractionalFreeRows,
];

struct Instance {
    values: Vec<f32>,
    costs: Vec<u64>,
}

fn generate(class: Class, n: usize, max_cost: u64, seed: u64) -> Instance {
    let mut rng = RowRng::new(seed, 0);
    let r = max_cost;
    let (mut values, mut costs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let w = rng.range(1, r);
        let v = match class {
            Class::Uncorrelated => rng.range(1, r) as f32,
            Class::WeaklyCorrelated => {
                let spread = (r / 10).max(1);
                (w + rng.range(0, 2 * spread)).saturating_sub(spread).max(1) as f32
            }
            Class::StronglyCorrelated => (w + (r / 10).max(1)) as f32,
            Class::SubsetSum => w as f32,
            Class::Messy => match rng.range(0, 9) {
                0 => 0.0,
                1 => -(rng.uniform() as f32) * 10.0,
                2 => 2.5,
                _ => (rng.uniform() * r as f64) as f32,
            },
            Class::WholeWithFractionalFreeRows => rng.range(1, r) as f32,
        };
        let (v, w) = match class {
            Class::WholeWithFractionalFreeRows if rng.range(0, 5) == 0 => (v + 0.25, 0),
            _ => (v, w),
        };
        let w = match class {
            Class::Messy if rng.range(0, 9) == 0 => 0,
            Class::Messy if rng.range(0, 4) == 0 => w / 2 + 1,
            _ => w,
        };
        values.push(v);
        costs.push(w);
    }
    Instance { values, costs }
}

/// The best objective by enumerating every subset of eligible rows (costs summed in u128).
fn brute_force(values: &[f32], costs: &[u64], capacity: u64, eligible: &[bool]) -> f64 {
    let n = values.len();
    let mut best = 0.0f64;
    for mask in 0u32..(1 << n) {
        let (mut w, mut v) = (0u128, 0.0f64);
        for i in (0..n).filter(|&i| mask >> i & 1 == 1) {
            if !eligible[i] {
                w = u128::MAX;
                break;
            }
            w += u128::from(costs[i]);
            v += f64::from(values[i]);
        }
        if w <= u128::from(capacity) {
            best = best.max(v);
        }
    }
    best
}

/// The best objective by the textbook DP over integer capacities: O(n capacity).
fn capacity_dp(values: &[f32], costs: &[u64], capacity: u64, eligible: &[bool]) -> f64 {
    let cap = usize::try_from(capacity).expect("a DP capacity fits memory");
    let mut best = vec![0.0f64; cap + 1];
    for i in 0..values.len() {
        let v = f64::from(values[i]);
        if !(eligible[i] && v > 0.0 && v.is_finite()) || costs[i] > capacity {
            continue;
        }
        let w = costs[i] as usize;
        for c in (w..=cap).rev() {
            best[c] = best[c].max(best[c - w] + v);
        }
    }
    best[cap]
}

/// The LP relaxation's optimum: eligible rows of positive value by ratio, highest first, filled
/// whole while they fit and the first that does not fractionally (zero-cost rows whole, rows
/// costing more than the capacity never). An upper bound on every selection.
fn lp_bound(values: &[f32], costs: &[u64], capacity: u64, eligible: Option<&[bool]>) -> f64 {
    let mut free = 0.0f64;
    let mut items: Vec<(f64, u64)> = Vec::new();
    for (i, (&v, &w)) in values.iter().zip(costs).enumerate() {
        let v = f64::from(v);
        if !(v > 0.0 && v.is_finite() && eligible.is_none_or(|e| e[i])) || w > capacity {
            continue;
        }
        if w == 0 {
            free += v;
        } else {
            items.push((v, w));
        }
    }
    items.sort_by(|a, b| (b.0 / b.1 as f64).total_cmp(&(a.0 / a.1 as f64)));
    let (mut room, mut total) = (capacity, free);
    for (v, w) in items {
        if w <= room {
            room -= w;
            total += v;
        } else {
            total += v * room as f64 / w as f64;
            break;
        }
    }
    total
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// What every selection must satisfy, whatever the instance: feasible, eligible, positive, its
/// objective the sum of its rows, its bound at least the objective and at most the LP bound
/// computed here, and `optimal` exactly when the gap is within tolerance.
fn check_certificate(
    sel: &Selection,
    values: &[f32],
    costs: &[u64],
    capacity: u64,
    eligible: Option<&[bool]>,
) {
    assert!(sel.rows.windows(2).all(|w| w[0] < w[1]), "rows ascending");
    let cost: u128 = sel.rows.iter().map(|&r| u128::from(costs[r])).sum();
    assert!(
        cost <= u128::from(capacity),
        "cost {cost} > capacity {capacity}"
    );
    for &r in &sel.rows {
        assert!(values[r] > 0.0, "row {r} has value {}", values[r]);
        assert!(eligible.is_none_or(|e| e[r]), "row {r} is not eligible");
    }
    let sum: f64 = sel.rows.iter().map(|&r| f64::from(values[r])).sum();
    assert!(
        close(sum, sel.objective),
        "objective {} != sum {sum}",
        sel.objective
    );
    let lp = lp_bound(values, costs, capacity, eligible);
    let slack = 1e-9 * lp.abs().max(1.0);
    assert!(
        sel.objective <= lp + slack,
        "objective {} above the LP bound {lp}",
        sel.objective
    );
    assert!(
        sel.upper_bound <= lp + slack,
        "bound {} above the LP bound {lp}",
        sel.upper_bound
    );
    assert!(
        sel.upper_bound >= sel.objective - 1e-12 * sel.objective.abs().max(1.0),
        "bound {} below objective {}",
        sel.upper_bound,
        sel.objective
    );
    let gap = (sel.upper_bound - sel.objective) / sel.upper_bound.abs().max(f64::MIN_POSITIVE);
    assert_eq!(
        sel.optimal,
        gap.abs() <= OPTIMALITY_TOLERANCE,
        "optimal flag disagrees with the gap"
    );
}

/// Checks `sel` against the true optimum `best`: its bound is at least `best`, and when it
/// claims optimality its objective is `best`.
fn check_against_optimum(sel: &Selection, best: f64) {
    assert!(
        sel.upper_bound >= best - 1e-9 * best.abs().max(1.0),
        "bound {} below the optimum {best}",
        sel.upper_bound
    );
    if sel.optimal {
        assert!(
            close(sel.objective, best),
            "claims optimal with {} but the optimum is {best}",
            sel.objective
        );
    }
}

fn solve_and_check(
    inst: &Instance,
    capacity: u64,
    eligible: &[bool],
    reference: impl Fn(&[f32], &[u64], u64, &[bool]) -> f64,
) {
    let sel = knapsack(
        &inst.values,
        &inst.costs,
        capacity,
        Some(eligible),
        &SolveLimits::default(),
    );
    check_certificate(&sel, &inst.values, &inst.costs, capacity, Some(eligible));
    let best = reference(&inst.values, &inst.costs, capacity, eligible);
    assert!(sel.optimal, "not proven optimal: {:?}", sel.stats);
    check_against_optimum(&sel, best);
}

fn eligibility(n: usize, seed: u64, filtered: bool) -> Vec<bool> {
    let mut rng = RowRng::new(seed, 0xE11);
    (0..n).map(|_| !filtered || rng.range(0, 3) != 0).collect()
}

fn capacity_for(costs: &[u64], fraction: f64) -> u64 {
    (costs.iter().sum::<u64>() as f64 * fraction) as u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn small_instances_match_brute_force(
        class in 0..CLASSES.len(),
        n in 0usize..=16,
        max_cost in 1u64..60,
        fraction in 0.0f64..1.2,
        filtered: bool,
        seed: u64,
    ) {
        let inst = generate(CLASSES[class], n, max_cost, seed);
        let capacity = capacity_for(&inst.costs, fraction);
        let eligible = eligibility(n, seed, filtered);
        solve_and_check(&inst, capacity, &eligible, brute_force);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// The solver reads 32-bit costs where they fit: the same rows, value and bound as from
    /// the same costs in 64 bits.
    #[test]
    fn narrow_costs_solve_as_wide_ones(
        class in 0..CLASSES.len(),
        n in 1usize..5000,
        max_cost in 1u64..10_000,
        fraction in 0.0f64..0.7,
        filtered: bool,
        seed: u64,
    ) {
        let inst = generate(CLASSES[class], n, max_cost, seed);
        let capacity = capacity_for(&inst.costs, fraction);
        let eligible = eligibility(n, seed, filtered);
        let narrow: Vec<u32> = inst.costs.iter().map(|&c| u32::try_from(c).unwrap()).collect();
        let limits = SolveLimits::default();
        let wide = knapsack(&inst.values, &inst.costs, capacity, Some(&eligible), &limits);
        let narrow = knapsack(&inst.values, &narrow, capacity, Some(&eligible), &limits);
        prop_assert_eq!(&wide.rows, &narrow.rows);
        prop_assert_eq!(wide.objective, narrow.objective);
        prop_assert_eq!(wide.upper_bound, narrow.upper_bound);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn medium_instances_match_the_capacity_dp(
        class in 0..CLASSES.len(),
        n in 1usize..3000,
        max_cost in 1u64..200,
        fraction in 0.0f64..0.7,
        filtered: bool,
        seed: u64,
    ) {
        let inst = generate(CLASSES[class], n, max_cost, seed);
        let capacity = capacity_for(&inst.costs, fraction).min(40_000);
        let eligible = eligibility(n, seed, filtered);
        solve_and_check(&inst, capacity, &eligible, capacity_dp);
    }
}

#[test]
fn capacity_zero_takes_only_zero_cost_rows() {
    let values = [3.0, 1.0, -1.0, 2.0];
    let costs = [0u64, 1, 0, 0];
    let sel = knapsack(&values, &costs, 0, None, &SolveLimits::default());
    assert_eq!(sel.rows, vec![0, 3]);
    assert_eq!(sel.objective, 5.0);
    assert!(sel.optimal);
}

#[test]
fn capacity_above_the_total_takes_every_positive_row() {
    let values = [3.0, 0.0, -1.0, 2.0, 1.5];
    let costs = [4u64, 1, 1, 7, 2];
    let sel = knapsack(&values, &costs, 1000, None, &SolveLimits::default());
    assert_eq!(sel.rows, vec![0, 3, 4]);
    assert!(sel.optimal);
    assert_eq!(sel.upper_bound, sel.objective);
}

#[test]
fn ineligible_rows_are_never_chosen() {
    let values = [10.0, 1.0, 1.0];
    let costs = [1u64, 1, 1];
    let eligible = [false, true, true];
    let sel = knapsack(&values, &costs, 3, Some(&eligible), &SolveLimits::default());
    assert_eq!(sel.rows, vec![1, 2]);
    assert_eq!(sel.stats.eligible_rows, 2);
}

#[test]
fn rows_costing_more_than_the_capacity_stay_out() {
    let values = [100.0, 1.0];
    let costs = [11u64, 10];
    let sel = knapsack(&values, &costs, 10, None, &SolveLimits::default());
    assert_eq!(sel.rows, vec![1]);
    assert!(sel.optimal);
}

#[test]
fn non_finite_values_are_never_chosen() {
    let values = [f32::NAN, f32::INFINITY, 1.0];
    let costs = [1u64, 1, 1];
    let sel = knapsack(&values, &costs, 3, None, &SolveLimits::default());
    assert_eq!(sel.rows, vec![2]);
}

fn large(class: Class, n: usize, fraction: f64, seed: u64) -> (Instance, u64) {
    let inst = generate(class, n, 10_000, seed);
    let capacity = capacity_for(&inst.costs, fraction);
    (inst, capacity)
}

#[test]
fn large_instances_stay_within_their_own_bound() {
    for (i, class) in CLASSES.into_iter().enumerate() {
        for n in [100_000, 1_000_000] {
            let (inst, capacity) = large(class, n, 0.3, 7 + i as u64);
            let sel = knapsack(
                &inst.values,
                &inst.costs,
                capacity,
                None,
                &SolveLimits::default(),
            );
            check_certificate(&sel, &inst.values, &inst.costs, capacity, None);
            let greedy = knapsack_greedy(&inst.values, &inst.costs, capacity, None);
            check_certificate(&greedy, &inst.values, &inst.costs, capacity, None);
            assert!(
                sel.objective >= greedy.objective,
                "{class:?}: worse than greedy"
            );
            check_against_optimum(&greedy, sel.objective);
            assert!(
                sel.upper_bound <= greedy.upper_bound * (1.0 + 1e-12),
                "{class:?}: bound looser than Dantzig"
            );
            assert!(sel.optimal, "{class:?} n={n}: {:?}", sel.stats);
        }
    }
}

/// Uncorrelated real values over costs 1..=200: the root bound does not prove the greedy
/// optimal, so the search must run (the tests below assert that it needs more than a few
/// states). Small enough for the DP.
fn searching(n: usize, seed: u64) -> (Instance, u64) {
    let mut rng = RowRng::new(seed, 0x4A2D);
    let costs: Vec<u64> = (0..n).map(|_| rng.range(1, 200)).collect();
    let values = costs
        .iter()
        .map(|_| (rng.uniform() * 200.0) as f32)
        .collect();
    let capacity = capacity_for(&costs, 0.3);
    (Instance { values, costs }, capacity)
}

#[test]
fn a_zero_time_limit_stops_the_search_with_a_valid_bound_and_a_gap() {
    let limits = SolveLimits {
        time_limit: Some(Duration::ZERO),
        ..SolveLimits::default()
    };
    for seed in 0..3 {
        let (inst, capacity) = searching(2_000, seed);
        let sel = knapsack(&inst.values, &inst.costs, capacity, None, &limits);
        check_certificate(&sel, &inst.values, &inst.costs, capacity, None);
        assert_eq!(
            sel.stats.stopped_by,
            Some(StopReason::TimeLimit),
            "{:?}",
            sel.stats
        );
        assert!(!sel.optimal && sel.gap > 0.0, "gap {}", sel.gap);
        let all = vec![true; inst.values.len()];
        let best = capacity_dp(&inst.values, &inst.costs, capacity, &all);
        check_against_optimum(&sel, best);
        assert!(sel.objective <= best + 1e-9 * best);
    }
    // Every class stops too, unless its root bound already proves the greedy optimal.
    for (i, class) in CLASSES.into_iter().enumerate() {
        let (inst, capacity) = large(class, 200_000, 0.3, 99 + i as u64);
        let sel = knapsack(&inst.values, &inst.costs, capacity, None, &limits);
        check_certificate(&sel, &inst.values, &inst.costs, capacity, None);
        let exact = knapsack(
            &inst.values,
            &inst.costs,
            capacity,
            None,
            &SolveLimits::default(),
        );
        assert!(exact.optimal);
        assert!(
            sel.upper_bound >= exact.objective * (1.0 - 1e-12),
            "{class:?}: bound below optimum"
        );
        assert!(sel.optimal || sel.stats.stopped_by == Some(StopReason::TimeLimit));
    }
}

#[test]
fn a_state_limit_stops_the_search_with_a_valid_bound_and_a_gap() {
    let limits = SolveLimits {
        max_states: 4,
        ..SolveLimits::default()
    };
    for seed in 0..3 {
        let (inst, capacity) = searching(2_000, 10 + seed);
        let exact = knapsack(
            &inst.values,
            &inst.costs,
            capacity,
            None,
            &SolveLimits::default(),
        );
        assert!(
            exact.stats.max_states > 4,
            "the instance must need more than 4 states: {:?}",
            exact.stats
        );
        let sel = knapsack(&inst.values, &inst.costs, capacity, None, &limits);
        check_certificate(&sel, &inst.values, &inst.costs, capacity, None);
        assert_eq!(
            sel.stats.stopped_by,
            Some(StopReason::StateLimit),
            "{:?}",
            sel.stats
        );
        // Checked once per round of two stages, each of which at most doubles the list.
        assert!(sel.stats.max_states <= 4 * (4 + 1), "{:?}", sel.stats);
        assert!(!sel.optimal && sel.gap > 0.0, "gap {}", sel.gap);
        let all = vec![true; inst.values.len()];
        check_against_optimum(&sel, capacity_dp(&inst.values, &inst.costs, capacity, &all));
    }
}

#[test]
fn large_filtered_instances_choose_only_eligible_rows() {
    for (i, class) in CLASSES.into_iter().enumerate() {
        let (inst, capacity) = large(class, 300_000, 0.2, 500 + i as u64);
        let eligible = eligibility(inst.values.len(), i as u64, true);
        let sel = knapsack(
            &inst.values,
            &inst.costs,
            capacity,
            Some(&eligible),
            &SolveLimits::default(),
        );
        check_certificate(&sel, &inst.values, &inst.costs, capacity, Some(&eligible));
        assert!(sel.optimal, "{class:?}: {:?}", sel.stats);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Costs near 2^60 and capacities above 2^53: the solver's integer arithmetic and its
    /// common divisor, against brute force in u128.
    #[test]
    fn huge_costs_match_brute_force(
        n in 1usize..=14,
        shift in 40u32..=60,
        common_divisor: bool,
        fraction in 0.0f64..1.2,
        seed: u64,
    ) {
        let mut rng = RowRng::new(seed, 0xB16);
        let unit = 1u64 << (shift - 4);
        let values: Vec<f32> = (0..n).map(|_| (rng.uniform() * 100.0) as f32).collect();
        let costs: Vec<u64> = (0..n)
            .map(|_| {
                let multiple = rng.range(1, 16) * unit;
                if common_divisor { multiple } else { multiple + rng.range(0, unit - 1) }
            })
            .collect();
        let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
        let capacity = u64::try_from((total as f64 * fraction) as u128).unwrap_or(u64::MAX);
        let eligible = vec![true; n];
        let sel = knapsack(&values, &costs, capacity, None, &SolveLimits::default());
        check_certificate(&sel, &values, &costs, capacity, None);
        prop_assert!(sel.optimal, "{:?}", sel.stats);
        check_against_optimum(&sel, brute_force(&values, &costs, capacity, &eligible));
    }
}

/// Instances of `n` rows with costs 1..=`max_cost` and a capacity the DP handles in a second
/// or so (about 2e8 cells), against the DP.
fn matches_the_dp_at_scale(n: usize, max_cost: u64, capacity: u64, seed: u64) {
    for (i, class) in CLASSES.into_iter().enumerate() {
        let inst = generate(class, n, max_cost, seed + i as u64);
        let eligible = eligibility(n, seed + i as u64, i % 2 == 1);
        let sel = knapsack(
            &inst.values,
            &inst.costs,
            capacity,
            Some(&eligible),
            &SolveLimits::default(),
        );
        check_certificate(&sel, &inst.values, &inst.costs, capacity, Some(&eligible));
        assert!(sel.optimal, "{class:?}: {:?}", sel.stats);
        let best = capacity_dp(&inst.values, &inst.costs, capacity, &eligible);
        check_against_optimum(&sel, best);
    }
}

#[test]
fn ten_thousand_rows_match_the_capacity_dp() {
    matches_the_dp_at_scale(10_000, 2_000, 20_000, 71);
}

#[test]
fn a_hundred_thousand_rows_match_the_capacity_dp() {
    matches_the_dp_at_scale(100_000, 200, 2_000, 72);
}

#[test]
fn the_sampled_band_path_matches_the_capacity_dp() {
    // 140,000 rows: past 4 x 32768, so preprocessing samples a band around the break.
    matches_the_dp_at_scale(140_000, 100, 1_500, 73);
}

/// The exact optimum when every cost is 2 or 3: taking `k` rows of cost 2, the best are the
/// `k` most valuable of them, and then the most valuable rows of cost 3 that fit the rest.
fn two_cost_optimum(values: &[f32], costs: &[u64], capacity: u64) -> f64 {
    let prefix = |cost: u64| {
        let mut side: Vec<f64> = values
            .iter()
            .zip(costs)
            .filter(|&(&v, &w)| w == cost && v > 0.0 && v.is_finite())
            .map(|(&v, _)| f64::from(v))
            .collect();
        side.sort_by(|a, b| b.total_cmp(a));
        std::iter::once(0.0)
            .chain(side.iter().scan(0.0, |sum, v| {
                *sum += v;
                Some(*sum)
            }))
            .collect::<Vec<f64>>()
    };
    let (twos, threes) = (prefix(2), prefix(3));
    (0..twos.len())
        .filter(|&k| 2 * k as u64 <= capacity)
        .map(|k| {
            let fit = ((capacity - 2 * k as u64) / 3) as usize;
            twos[k] + threes[fit.min(threes.len() - 1)]
        })
        .fold(0.0, f64::max)
}

#[test]
fn a_large_capacity_on_the_sampled_band_path_matches_the_two_cost_optimum() {
    for seed in 0..3 {
        let n = 200_000;
        let mut rng = RowRng::new(seed, 0x23);
        let costs: Vec<u64> = (0..n).map(|_| rng.range(2, 3)).collect();
        let values: Vec<f32> = (0..n)
            .map(|_| (rng.uniform() * 120.0 - 20.0) as f32)
            .collect();
        let total: u64 = costs.iter().sum();
        for fraction in [0.05, 0.3, 0.7] {
            let capacity = (total as f64 * fraction) as u64 + seed;
            let sel = knapsack(&values, &costs, capacity, None, &SolveLimits::default());
            check_certificate(&sel, &values, &costs, capacity, None);
            assert!(sel.optimal, "{:?}", sel.stats);
            check_against_optimum(&sel, two_cost_optimum(&values, &costs, capacity));
        }
    }
}

#[test]
fn capacity_zero_and_capacity_above_the_total_at_scale() {
    let (inst, _) = large(Class::Messy, 300_000, 0.3, 41);
    let positive = |row: usize| inst.values[row] > 0.0 && inst.values[row].is_finite();
    let zero = knapsack(&inst.values, &inst.costs, 0, None, &SolveLimits::default());
    check_certificate(&zero, &inst.values, &inst.costs, 0, None);
    let free: Vec<usize> = (0..inst.values.len())
        .filter(|&r| positive(r) && inst.costs[r] == 0)
        .collect();
    assert!(zero.optimal && !free.is_empty());
    assert_eq!(zero.rows, free);
    let total: u64 = inst.costs.iter().sum();
    for capacity in [total, total + 1, u64::MAX] {
        let all = knapsack(
            &inst.values,
            &inst.costs,
            capacity,
            None,
            &SolveLimits::default(),
        );
        check_certificate(&all, &inst.values, &inst.costs, capacity, None);
        let every: Vec<usize> = (0..inst.values.len()).filter(|&r| positive(r)).collect();
        assert!(all.optimal);
        assert_eq!(all.rows, every);
    }
}

/// A number's shortest round-trip decimal as Rust's `Display` writes it (never in exponent
/// notation), as `(digits, q)`: `digits 10^q`, exactly.
fn written(text: &str) -> (u128, i32) {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = format!("{whole}{fraction}").parse().unwrap();
    (digits, -(fraction.len() as i32))
}

/// `sum` of the written decimals against the written `bound`, exactly: `None` when beyond
/// u128 (the caller skips such a case).
fn written_sum_vs(terms: &[String], bound: &str) -> Option<std::cmp::Ordering> {
    let mut all: Vec<(u128, i32)> = terms.iter().map(|t| written(t)).collect();
    all.push(written(bound));
    let q = all.iter().map(|&(_, q)| q).min().unwrap();
    let scaled = |(m, e): (u128, i32)| m.checked_mul(10u128.checked_pow((e - q) as u32)?);
    let bound = scaled(all.pop().unwrap())?;
    let mut sum = 0u128;
    for &term in &all {
        sum = sum.checked_add(scaled(term)?)?;
    }
    Some(sum.cmp(&bound))
}

/// Whole-cent costs whose sum is the budget, at 100 units per cost unit: every customer fits
/// and is chosen, and the accounts show the budget spent exactly. (Reading the f32 `12.34` as
/// its exact value, 12.3400001525..., cost a cent more per customer and left some out.)
#[test]
fn whole_cent_costs_summing_to_the_budget_are_all_selected() {
    let mut rng = RowRng::new(17, 0xCE27);
    for n in [2usize, 7, 50, 400] {
        let cents: Vec<u64> = (0..n)
            .map(|_| 1 + (rng.uniform() * 99_999.0) as u64)
            .collect();
        let costs: Vec<f32> = cents
            .iter()
            .map(|&c| format!("{}.{:02}", c / 100, c % 100).parse().unwrap())
            .collect();
        let total: u64 = cents.iter().sum();
        // The budget as a planner types it: the sum in cost units, read as an f64.
        let budget: f64 = format!("{}.{:02}", total / 100, total % 100)
            .parse()
            .unwrap();
        let values: Vec<f32> = (0..n).map(|_| 1.0 + rng.uniform() as f32 * 50.0).collect();
        let units = scale_costs(&costs, 100.0).unwrap();
        assert_eq!(
            units.clone().into_wide(),
            cents,
            "each cost is exactly its cents"
        );
        let capacity = scale_capacity(budget, 100.0).unwrap();
        assert_eq!(capacity, total, "the budget is exactly its cents");
        let spec = CampaignSpec {
            budget,
            resource_scale: 100.0,
            ..CampaignSpec::default()
        };
        let real = RealCosts {
            column: &costs,
            multiplier: 1.0,
        };
        let targets = targets::solve(&values, &units, capacity, None, &spec, real, Duration::ZERO);
        assert_eq!(
            targets.selection.rows,
            (0..n).collect::<Vec<_>>(),
            "n = {n}"
        );
        assert_eq!(targets.total_cost, budget, "n = {n}");
        assert_eq!(targets.budget_left, 0.0, "n = {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    /// Costs with more decimals than the resource scale keeps, or whole cents: the chosen
    /// customers' costs as written (their shortest decimals), summed exactly, never exceed the
    /// budget as written, and the accounts report that sum and a real-cost bound above the
    /// objective.
    #[test]
    fn a_selection_never_spends_more_than_the_budget_in_written_costs(
        n in 1usize..400,
        scale in prop::sample::select(vec![0.01, 1.0, 100.0, 1e4]),
        magnitude in prop::sample::select(vec![0.01, 1.0, 100.0]),
        cents in any::<bool>(),
        fraction in 0.0f64..1.1,
        seed: u64,
    ) {
        let mut rng = RowRng::new(seed, 0xC057);
        let costs: Vec<f32> = (0..n)
            .map(|_| rng.uniform() * magnitude * 10.0)
            .map(|c| if cents { ((c * 100.0).round() / 100.0) as f32 } else { c as f32 })
            .collect();
        let values: Vec<f32> = (0..n).map(|_| (rng.uniform() * 100.0 - 10.0) as f32).collect();
        let total: f64 = costs.iter().map(|&c| f64::from(c)).sum();
        let budget = total * fraction;
        let units = scale_costs(&costs, scale).unwrap();
        let capacity = scale_capacity(budget, scale).unwrap();
        let spec = CampaignSpec {
            budget,
            resource_scale: scale,
            ..CampaignSpec::default()
        };
        let real = RealCosts { column: &costs, multiplier: 1.0 };
        let targets =
            targets::solve(&values, &units, capacity, None, &spec, real, Duration::ZERO);
        // Each cost as crv writes it: its shortest round-trip decimal, a tie between two
        // (the f32 425.640625: 425.64062 or 425.64063) going to the even digit as in zmij
        // and serde_json; Rust's `Display` takes the other one.
        let chosen: Vec<String> = targets
            .selection
            .rows
            .iter()
            .map(|&r| as_written(costs[r]).to_string())
            .collect();
        let versus = written_sum_vs(&chosen, &budget.to_string());
        prop_assume!(versus.is_some());
        prop_assert!(versus.unwrap().is_le(), "spent {chosen:?} of budget {budget}");
        let spent: f64 = chosen.iter().map(|c| c.parse::<f64>().unwrap()).sum();
        prop_assert!((targets.total_cost - spent).abs() <= 1e-9 * spent.max(1.0));
        prop_assert!(targets.total_cost <= budget);
        prop_assert_eq!(targets.budget, budget);
        prop_assert!(targets.budget_left >= -1e-9);
        check_certificate(&targets.selection, &values, &units.into_wide(), capacity, None);
        // The real bound lies above the optimum of the real problem, which the rounded
        // selection is a solution of.
        prop_assert!(targets.real_upper_bound >= targets.selection.objective - 1e-9);
        prop_assert!(targets.rounding_loss >= -1e-9);
        prop_assert_eq!(
            targets.rounding_loss,
            targets.real_upper_bound - targets.selection.objective
        );
    }
}

#[test]
fn the_break_ratio_is_per_unit_of_the_input_costs() {
    // Costs share the divisor 100; the greedy takes 10/100, then breaks at 12/200.
    let selection = knapsack(
        &[10.0, 12.0, 4.0],
        &[100u64, 200, 400],
        200,
        None,
        &SolveLimits::default(),
    );
    assert_eq!(selection.stats.cost_divisor, 100);
    let ratio = selection.stats.break_ratio.expect("a break item");
    assert!((ratio - 0.06).abs() < 1e-15, "{ratio}");
    // Everything fits: no break item.
    let all = knapsack(&[10.0, 12.0], &[1u64, 2], 3, None, &SolveLimits::default());
    assert_eq!(all.stats.break_ratio, None);
}

#[test]
fn a_fractional_zero_cost_value_is_not_floored_away_with_whole_candidates() {
    // The candidates' values are whole, so their sums are too; the zero-cost row's 0.5 is
    // always taken on top. The proven optimum is 3.5: the bound must not be floored to 3.
    let values = [0.5, 3.0, 3.0];
    let costs = [0u64, 2, 2];
    let sel = knapsack(&values, &costs, 2, None, &SolveLimits::default());
    check_certificate(&sel, &values, &costs, 2, None);
    assert_eq!(sel.objective, 3.5);
    assert_eq!(sel.upper_bound, 3.5);
    assert!(sel.optimal);
}
