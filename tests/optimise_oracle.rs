//! The multi-resource, multi-offer solver (`select::lagrange`) against exact optima: brute
//! force over every assignment on tiny campaigns, and microlp's MIP on small ones. The plan is
//! feasible, never worth more than the optimum, its bound never below it; loosening a limit
//! never lowers the objective; shuffling the rows never changes the plan; a customer
//! eligible for no offer never gets one.

use crv::select::lagrange::{Coefficients, Offer, Options, Outcome, Plan, Problem, solve};
use microlp::{ComparisonOp, OptimizationDirection, Problem as Lp};
use proptest::prelude::*;

/// A campaign with owned columns.
#[derive(Debug, Clone)]
struct Campaign {
    ids: Vec<u64>,
    limits: Vec<f64>,
    offers: Vec<OwnedOffer>,
}

#[derive(Debug, Clone)]
struct OwnedOffer {
    value: Vec<f32>,
    uses: Vec<Vec<f32>>,
    eligible: Vec<bool>,
    min: u64,
    max: Option<u64>,
}

impl Campaign {
    fn problem(&self) -> Problem<'_> {
        Problem {
            ids: &self.ids,
            limits: self.limits.clone(),
            offers: self
                .offers
                .iter()
                .map(|o| Offer {
                    value: Coefficients::PerCustomer(&o.value),
                    uses: o
                        .uses
                        .iter()
                        .map(|u| Coefficients::PerCustomer(u))
                        .collect(),
                    eligible: Some(&o.eligible),
                    min: o.min,
                    max: o.max,
                })
                .collect(),
        }
    }

    /// One resource, one offer without minimum or maximum (uses here are whole numbers).
    fn is_single_budget(&self) -> bool {
        self.limits.len() == 1
            && self.offers.len() == 1
            && self.offers[0].min == 0
            && self.offers[0].max.is_none()
    }

    /// No offer has a minimum count: the core search runs.
    fn has_no_minimum(&self) -> bool {
        self.offers.iter().all(|o| o.min == 0)
    }

    fn customers(&self) -> usize {
        self.ids.len()
    }

    /// Whether `choice` (0 none, o + 1) meets every constraint, and its value.
    fn evaluate(&self, choice: &[u8]) -> Option<f64> {
        let mut used = vec![0.0; self.limits.len()];
        let mut counts = vec![0u64; self.offers.len()];
        let mut value = 0.0;
        for (i, &c) in choice.iter().enumerate() {
            if let Some(o) = c.checked_sub(1) {
                let offer = &self.offers[usize::from(o)];
                if !offer.eligible[i] {
                    return None;
                }
                counts[usize::from(o)] += 1;
                value += f64::from(offer.value[i]);
                for (k, u) in used.iter_mut().enumerate() {
                    *u += f64::from(offer.uses[k][i]);
                }
            }
        }
        let fits = used
            .iter()
            .zip(&self.limits)
            .all(|(u, l)| *u <= l + 1e-6 * l.abs().max(1.0));
        let counted = counts
            .iter()
            .zip(&self.offers)
            .all(|(&n, o)| n >= o.min && o.max.is_none_or(|m| n <= m));
        (fits && counted).then_some(value)
    }

    /// The optimum by enumerating every assignment.
    fn brute_force(&self) -> Option<f64> {
        let n = self.customers();
        let base = self.offers.len() as u64 + 1;
        let mut best: Option<f64> = None;
        let mut choice = vec![0u8; n];
        for code in 0..base.pow(n as u32) {
            let mut rest = code;
            for c in choice.iter_mut() {
                *c = (rest % base) as u8;
                rest /= base;
            }
            if let Some(v) = self.evaluate(&choice) {
                best = Some(best.map_or(v, |b: f64| b.max(v)));
            }
        }
        best
    }

    /// The optimum by microlp's branch and bound.
    fn mip(&self) -> Option<f64> {
        let mut lp = Lp::new(OptimizationDirection::Maximize);
        let n = self.customers();
        let x: Vec<Vec<_>> = self
            .offers
            .iter()
            .map(|o| {
                (0..n)
                    .map(|i| {
                        let upper = if o.eligible[i] { 1.0 } else { 0.0 };
                        lp.add_integer_var(f64::from(o.value[i]), (0, upper as i32))
                    })
                    .collect()
            })
            .collect();
        for i in 0..n {
            let row: Vec<_> = x.iter().map(|xo| (xo[i], 1.0)).collect();
            lp.add_constraint(row.as_slice(), ComparisonOp::Le, 1.0);
        }
        for (k, &limit) in self.limits.iter().enumerate() {
            let row: Vec<_> = self
                .offers
                .iter()
                .zip(&x)
                .flat_map(|(o, xo)| (0..n).map(move |i| (xo[i], f64::from(o.uses[k][i]))))
                .collect();
            lp.add_constraint(row.as_slice(), ComparisonOp::Le, limit);
        }
        for (o, xo) in self.offers.iter().zip(&x) {
            let row: Vec<_> = xo.iter().map(|&v| (v, 1.0)).collect();
            lp.add_constraint(row.as_slice(), ComparisonOp::Ge, o.min as f64);
            if let Some(max) = o.max {
                lp.add_constraint(row.as_slice(), ComparisonOp::Le, max as f64);
            }
        }
        let outcome = lp.solve().ok()?;
        outcome.solution().map(|s| s.objective())
    }

    /// The same campaign with only `resources`' limits and `offers`' minimums (the other
    /// limits unbounded, the other minimums 0).
    fn restricted(&self, resources: &[usize], offers: &[usize]) -> Campaign {
        let mut restricted = self.clone();
        for (k, limit) in restricted.limits.iter_mut().enumerate() {
            if !resources.contains(&k) {
                *limit = f64::INFINITY;
            }
        }
        for (o, offer) in restricted.offers.iter_mut().enumerate() {
            if !offers.contains(&o) {
                offer.min = 0;
            }
        }
        restricted
    }

    /// The same campaign with its rows in `order`.
    fn permuted(&self, order: &[usize]) -> Campaign {
        let pick = |v: &[f32]| order.iter().map(|&i| v[i]).collect::<Vec<_>>();
        Campaign {
            ids: order.iter().map(|&i| self.ids[i]).collect(),
            limits: self.limits.clone(),
            offers: self
                .offers
                .iter()
                .map(|o| OwnedOffer {
                    value: pick(&o.value),
                    uses: o.uses.iter().map(|u| pick(u)).collect(),
                    eligible: order.iter().map(|&i| o.eligible[i]).collect(),
                    min: o.min,
                    max: o.max,
                })
                .collect(),
        }
    }
}

fn campaign(
    customers: std::ops::Range<usize>,
    offers: std::ops::Range<usize>,
    resources: std::ops::Range<usize>,
) -> impl Strategy<Value = Campaign> {
    (customers, offers, resources).prop_flat_map(|(n, o, r)| {
        let offer = (
            proptest::collection::vec(-20i32..100, n),
            proptest::collection::vec(proptest::collection::vec(0u32..30, n), r),
            proptest::collection::vec(proptest::bool::weighted(0.85), n),
            prop_oneof![4 => Just(0u64), 1 => 1u64..3],
            prop_oneof![3 => Just(None), 1 => (1u64..4).prop_map(Some)],
        )
            .prop_map(|(value, uses, eligible, min, max)| OwnedOffer {
                value: value.into_iter().map(|v| v as f32 * 0.5).collect(),
                uses: uses
                    .into_iter()
                    .map(|u| u.into_iter().map(|a| a as f32).collect())
                    .collect(),
                eligible,
                min,
                max: max.map(|m: u64| m.max(min)),
            });
        (
            proptest::collection::vec(offer, o),
            proptest::collection::vec(0u32..120, r),
            proptest::sample::subsequence((1..1000u64).collect::<Vec<_>>(), n),
        )
            .prop_map(|(offers, limits, ids)| Campaign {
                ids,
                limits: limits.into_iter().map(f64::from).collect(),
                offers,
            })
    })
}

fn plan(campaign: &Campaign) -> Outcome {
    solve(&campaign.problem(), &Options::default())
}

/// The plan's checks that need no optimum: feasible, its objective and totals its own.
fn check_plan(campaign: &Campaign, plan: &Plan) -> Result<f64, TestCaseError> {
    let value = campaign.evaluate(&plan.choice);
    prop_assert!(value.is_some(), "infeasible plan {:?}", plan.choice);
    let value = value.unwrap();
    prop_assert!((value - plan.objective).abs() <= 1e-6 * value.abs().max(1.0));
    prop_assert!(plan.upper_bound >= plan.objective - 1e-6 * plan.objective.abs().max(1.0));
    Ok(value)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tiny_campaigns_match_brute_force(c in campaign(1..7, 1..4, 0..3)) {
        let optimum = c.brute_force();
        match (plan(&c), optimum) {
            (Outcome::Plan(plan), Some(optimum)) => {
                let value = check_plan(&c, &plan)?;
                prop_assert!(value <= optimum + 1e-6 * optimum.abs().max(1.0));
                prop_assert!(plan.upper_bound >= optimum - 1e-6 * optimum.abs().max(1.0),
                    "bound {} below the optimum {optimum}", plan.upper_bound);
                if plan.optimal {
                    prop_assert!(close(value, optimum));
                }
                // Without minimum counts the core search covers every better plan: proven.
                if c.has_no_minimum() {
                    prop_assert!(plan.optimal, "not proven: gap {}", plan.gap);
                    prop_assert!(close(value, optimum), "{value} against {optimum}");
                }
                // One resource, one offer, no counts: the exact knapsack, proven optimal.
                if c.is_single_budget() {
                    prop_assert!(plan.optimal, "single budget not proven: gap {}", plan.gap);
                    prop_assert!(close(value, optimum), "{value} against {optimum}");
                }
            }
            (Outcome::Infeasible(conflict), None) => {
                // Proven, infeasible on its own, and irreducible: dropping any limit or minimum
                // it names leaves a feasible campaign.
                prop_assert!(conflict.proven, "{conflict:?}");
                prop_assert!(!conflict.offers.is_empty());
                let (resources, offers) = (&conflict.resources, &conflict.offers);
                prop_assert!(c.restricted(resources, offers).brute_force().is_none(),
                    "{conflict:?} is not a conflict on its own");
                for drop in 0..resources.len() + offers.len() {
                    let (mut r, mut o) = (resources.clone(), offers.clone());
                    if drop < r.len() { r.remove(drop); } else { o.remove(drop - r.len()); }
                    prop_assert!(c.restricted(&r, &o).brute_force().is_some(),
                        "{conflict:?} is not the smallest: without item {drop} still infeasible");
                }
            }
            (Outcome::Infeasible(conflict), Some(optimum)) => {
                prop_assert!(false, "conflict {conflict:?} on a feasible campaign (optimum {optimum})");
            }
            (Outcome::Plan(plan), None) => {
                prop_assert!(false, "plan {:?} on an infeasible campaign", plan.choice);
            }
        }
    }

    #[test]
    fn small_campaigns_stay_within_the_mip_optimum(c in campaign(20..40, 1..4, 1..3)) {
        let optimum = c.mip();
        if let (Outcome::Plan(plan), Some(optimum)) = (plan(&c), optimum) {
            let value = check_plan(&c, &plan)?;
            prop_assert!(value <= optimum + 1e-6 * optimum.abs().max(1.0));
            prop_assert!(plan.upper_bound >= optimum - 1e-6 * optimum.abs().max(1.0));
            if plan.optimal {
                prop_assert!(close(value, optimum), "{value} against {optimum}");
            }
            if c.has_no_minimum() {
                prop_assert!(close(value, optimum), "{value} against {optimum}");
            }
        }
    }

    #[test]
    fn shuffling_rows_never_changes_the_plan(
        c in campaign(1..40, 1..4, 1..3),
        seed in any::<u64>(),
    ) {
        let mut order: Vec<usize> = (0..c.customers()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let shuffled = c.permuted(&order);
        match (plan(&c), plan(&shuffled)) {
            (Outcome::Plan(a), Outcome::Plan(b)) => {
                for (j, &i) in order.iter().enumerate() {
                    prop_assert_eq!(a.choice[i], b.choice[j]);
                }
                prop_assert_eq!(a.objective, b.objective);
                prop_assert_eq!(a.upper_bound, b.upper_bound);
            }
            (Outcome::Infeasible(a), Outcome::Infeasible(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{a:?} against {b:?}"),
        }
    }

    #[test]
    fn loosening_a_limit_never_lowers_the_objective(
        c in campaign(1..7, 1..4, 1..3),
        extra in 1u32..50,
    ) {
        let mut looser = c.clone();
        looser.limits[0] += f64::from(extra);
        // On tiny campaigns the optimum itself is compared: the solver's plans are within
        // their gaps of it, so the property is asserted on what the solver certifies.
        if let (Some(tight), Some(loose)) = (c.brute_force(), looser.brute_force()) {
            prop_assert!(loose >= tight);
            if let (Outcome::Plan(a), Outcome::Plan(b)) = (plan(&c), plan(&looser)) {
                prop_assert!(b.upper_bound >= tight - 1e-6 * tight.abs().max(1.0));
                if a.optimal && b.optimal {
                    prop_assert!(b.objective >= a.objective - 1e-9 * a.objective.abs().max(1.0));
                }
            }
        }
    }
}

#[test]
fn customers_eligible_for_nothing_never_get_an_offer() {
    let n = 200;
    let ids: Vec<u64> = (1..=n as u64).collect();
    let value: Vec<f32> = (0..n).map(|i| 10.0 + (i % 7) as f32).collect();
    let cost: Vec<f32> = (0..n).map(|i| 1.0 + (i % 3) as f32).collect();
    let eligible: Vec<bool> = (0..n).map(|i| i % 4 != 0).collect();
    let problem = Problem {
        ids: &ids,
        limits: vec![1e9],
        offers: vec![Offer {
            value: Coefficients::PerCustomer(&value),
            uses: vec![Coefficients::PerCustomer(&cost)],
            eligible: Some(&eligible),
            min: 0,
            max: None,
        }],
    };
    let Outcome::Plan(plan) = solve(&problem, &Options::default()) else {
        panic!("feasible");
    };
    for (i, (&choice, &eligible)) in plan.choice.iter().zip(&eligible).enumerate() {
        assert_eq!(choice != 0, eligible, "customer {i}");
    }
    assert!(plan.optimal);
}
