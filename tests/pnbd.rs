//! The Pareto/NBD model and its special functions against independently computed values:
//! mpmath at 50 digits (`tests/data/pnbd_reference.py`), lifetimes' `ParetoNBDFitter`
//! (`tests/data/pnbd_lifetimes.py`), the published CDNOW estimates, and properties.

use crv::btyd::pnbd::ParetoNbd;
use crv::btyd::special::{hyp2f1, ln_hyp2f1, scaled_hyperu};
use crv::btyd::{History, PurchaseModel};
use proptest::prelude::*;

/// The rows of a committed CSV fixture, header skipped, as text fields.
fn fixture(name: &str) -> Vec<Vec<String>> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture is committed");
    text.lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

fn number(field: &str) -> f64 {
    field.parse().expect("fixture fields are numbers")
}

fn close(got: f64, expected: f64, relative: f64, absolute: f64) -> bool {
    (got - expected).abs() <= relative * expected.abs() + absolute
}

#[test]
fn hyp2f1_matches_mpmath() {
    let rows = fixture("hyp2f1_reference.csv");
    assert_eq!(rows.len(), 18);
    for row in rows {
        let [a, b, c, z, sign, ln_abs] = [0, 1, 2, 3, 4, 5].map(|i| number(&row[i]));
        if sign > 0.0 {
            let got = ln_hyp2f1(a, b, c, z);
            assert!(close(got, ln_abs, 1e-12, 1e-12), "{row:?}: ln {got}");
        }
        if ln_abs < 700.0 {
            let got = hyp2f1(a, b, c, z);
            let expected = sign * ln_abs.exp();
            assert!(close(got, expected, 1e-11, 0.0), "{row:?}: {got}");
        } else {
            assert_eq!(hyp2f1(a, b, c, z), f64::INFINITY, "{row:?}");
        }
    }
}

#[test]
fn scaled_hyperu_matches_mpmath() {
    let rows = fixture("hyperu_reference.csv");
    assert_eq!(rows.len(), 42);
    for row in rows {
        let [s, z, w] = [0, 1, 2].map(|i| number(&row[i]));
        let got = scaled_hyperu(s, z);
        assert!(close(got, w, 1e-13, 0.0), "{row:?}: {got}");
    }
}

#[test]
fn model_matches_mpmath() {
    let rows = fixture("pnbd_reference.csv");
    assert_eq!(rows.len(), 70);
    for row in rows {
        let v: Vec<f64> = row[1..].iter().map(|f| number(f)).collect();
        let model = ParetoNbd::from_params([v[0], v[1], v[2], v[3]]);
        let history = History {
            frequency: v[4],
            recency: v[5],
            age: v[6],
        };
        let (ll, gradient) = model.log_likelihood(history);
        assert!(close(ll, v[7], 1e-12, 1e-12), "{row:?}: ll {ll}");
        for k in 0..4 {
            let expected = v[8 + k];
            assert!(
                close(gradient[k], expected, 1e-10, 1e-10),
                "{row:?}: gradient[{k}] {}",
                gradient[k]
            );
        }
        // P(alive) and what it scales: relative, down to f64's smallest normal numbers.
        let p_alive = model.p_alive(history);
        assert!(
            close(p_alive, v[12], 1e-11, 1e-300),
            "{row:?}: p_alive {p_alive}"
        );
        for (t, expected) in [(10.0, v[13]), (52.0, v[14])] {
            let got = model.expected_purchases(history, t);
            assert!(close(got, expected, 1e-11, 1e-300), "{row:?}: E[{t}] {got}");
        }
        for (delta, expected) in [(0.15 / 52.0, v[15]), (0.01, v[16])] {
            let got = model.dert(history, delta);
            assert!(close(got, expected, 1e-11, 1e-300), "{row:?}: dert {got}");
        }
    }
}

fn cdnow() -> Vec<History> {
    fixture("cdnow_summary.csv")
        .iter()
        .map(|row| History {
            frequency: number(&row[1]),
            recency: number(&row[2]),
            age: number(&row[3]),
        })
        .collect()
}

fn summed(model: ParetoNbd, histories: &[History]) -> (f64, [f64; 4]) {
    let mut total = (0.0, [0.0; 4]);
    for &history in histories {
        let (ll, gradient) = model.log_likelihood(history);
        total.0 += ll;
        for (sum, g) in total.1.iter_mut().zip(gradient) {
            *sum += g;
        }
    }
    total
}

/// The estimates published for CDNOW (BTYD R package, lifetimes' documentation).
const PUBLISHED: [f64; 4] = [0.5534, 10.5802, 0.6061, 11.6562];

#[test]
fn cdnow_log_likelihood_matches_lifetimes() {
    let histories = cdnow();
    assert_eq!(histories.len(), 2357);
    let (ll, _) = summed(ParetoNbd::from_params(PUBLISHED), &histories);
    // lifetimes 0.11.3 (`pnbd_lifetimes.py`): -9594.973955390631; reported: about -9595.0.
    assert!(close(ll, -9594.973955390631, 1e-9, 0.0), "{ll}");
}

#[test]
fn cdnow_gradient_vanishes_at_the_estimates() {
    let histories = cdnow();
    // lifetimes' own maximum-likelihood fit (`pnbd_lifetimes.py`), which agrees with the
    // published estimates to 3 significant digits: r 0.553, alpha 10.6, s 0.606, beta 11.7.
    let mle = [
        0.5532829892691767,
        10.577861604781132,
        0.6061882013038753,
        11.667431373333127,
    ];
    for (p, published) in mle.iter().zip(PUBLISHED) {
        assert!(close(*p, published, 5e-3, 0.0));
    }
    let norm = |g: [f64; 4]| g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (ll, at_mle) = summed(ParetoNbd::from_params(mle), &histories);
    assert!(close(ll, -9594.973929925445, 1e-9, 0.0), "{ll}");
    let perturbed = mle.map(|p| p * 1.05);
    let (_, away) = summed(ParetoNbd::from_params(perturbed), &histories);
    assert!(norm(at_mle) < 1e-3 * norm(away), "{at_mle:?} vs {away:?}");
}

#[test]
fn cdnow_predictions_match_lifetimes() {
    let model = ParetoNbd::from_params(PUBLISHED);
    let rows = fixture("pnbd_lifetimes_cdnow.csv");
    assert_eq!(rows.len(), 41);
    for row in rows {
        let v: Vec<f64> = row.iter().map(|f| number(f)).collect();
        let history = History {
            frequency: v[1],
            recency: v[2],
            age: v[3],
        };
        let p_alive = model.p_alive(history);
        assert!(close(p_alive, v[4], 1e-9, 1e-15), "{row:?}: {p_alive}");
        let expected = model.expected_purchases(history, 52.0);
        assert!(close(expected, v[5], 1e-9, 1e-15), "{row:?}: {expected}");
    }
}

/// Parameters over several orders of magnitude, alpha and beta far apart either way.
fn model_strategy() -> impl Strategy<Value = ParetoNbd> {
    (-3.0..3.0_f64, -4.0..5.5_f64, -3.0..3.0_f64, -4.0..5.5_f64)
        .prop_map(|(r, a, s, b)| ParetoNbd::from_params([r.exp(), a.exp(), s.exp(), b.exp()]))
}

/// Histories from none to 20,000 repeat purchases, age 0 to 500, recency anywhere in [0, age].
fn history_strategy() -> impl Strategy<Value = History> {
    (
        prop_oneof![Just(0.0), 0.0..40.0_f64, Just(5000.0), Just(20000.0)],
        0.0..=1.0_f64,
        prop_oneof![Just(0.0), 0.0..500.0_f64],
    )
        .prop_map(|(x, position, age)| {
            let frequency = x.round();
            let recency = if frequency == 0.0 {
                0.0
            } else {
                position * age
            };
            History {
                frequency,
                recency,
                age,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn everything_is_finite_and_in_range(model in model_strategy(), history in history_strategy()) {
        let (ll, gradient) = model.log_likelihood(history);
        prop_assert!(ll.is_finite(), "ll {ll}");
        prop_assert!(gradient.iter().all(|g| g.is_finite()), "{gradient:?}");
        let p = model.p_alive(history);
        prop_assert!((0.0..=1.0).contains(&p), "p_alive {p}");
        let mut previous = 0.0;
        for t in [0.0, 0.5, 1.0, 10.0, 52.0, 520.0, 1e6] {
            let e = model.expected_purchases(history, t);
            prop_assert!(e.is_finite() && e >= previous, "E[{t}] {e} < {previous}");
            previous = e;
        }
        let dert = model.dert(history, 0.003);
        prop_assert!(dert.is_finite() && dert >= 0.0, "dert {dert}");
    }

    #[test]
    fn gradient_equals_central_differences(
        model in model_strategy(),
        history in history_strategy(),
    ) {
        let (ll, gradient) = model.log_likelihood(history);
        let h = 1e-5;
        for k in 0..4 {
            let shifted = |step: f64| {
                let mut params = model.params();
                params[k] *= step.exp();
                ParetoNbd::from_params(params).log_likelihood_value(history)
            };
            let difference = (shifted(h) - shifted(-h)) / (2.0 * h);
            // Truncation ~h^2, rounding ~ulp(ll) / h.
            let tolerance = 1e-6 * (1.0 + gradient[k].abs()) + 1e-15 * ll.abs() / h;
            prop_assert!(
                (gradient[k] - difference).abs() <= tolerance,
                "[{k}]: analytic {} vs differences {difference}", gradient[k]
            );
        }
    }
}

/// The plain power series of 2F1, term by term (no transformation), for where it converges
/// quickly: the reference for the transformed evaluations.
fn plain_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0_f64, 1.0_f64);
    for n in 0..20_000 {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
    }
    sum
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// BG/NBD's 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)) and others with positive parameters:
    /// whichever form `hyp2f1` picks (series, Euler, 1 - z) equals the plain series.
    #[test]
    fn hyp2f1_equals_the_plain_series(
        a in 0.05..40.0_f64,
        b in 0.05..40.0_f64,
        c in 0.05..60.0_f64,
        z in 0.0..0.97_f64,
    ) {
        let expected = plain_series(a, b, c, z);
        prop_assume!(expected.is_finite() && expected < 1e250);
        let got = hyp2f1(a, b, c, z);
        prop_assert!(close(got, expected, 1e-11, 0.0), "{got} vs {expected}");
    }
}

#[test]
fn lopsided_parameters_stay_finite_and_accurate() {
    // max(alpha, beta) / min(alpha, beta) up to 1e6 either way: z up to 1 - 1e-6 at t_x = 0,
    // where the continued fraction works. The gradient still equals central differences.
    for (alpha, beta) in [(1e4, 0.01), (0.01, 1e4), (300.0, 1.0), (1.0, 300.0)] {
        let model = ParetoNbd::from_params([0.7, alpha, 1.3, beta]);
        for history in [
            History {
                frequency: 0.0,
                recency: 0.0,
                age: 30.0,
            },
            History {
                frequency: 3.0,
                recency: 0.2,
                age: 30.0,
            },
            History {
                frequency: 5000.0,
                recency: 1.0,
                age: 30.0,
            },
        ] {
            let (ll, gradient) = model.log_likelihood(history);
            assert!(
                ll.is_finite() && gradient.iter().all(|g| g.is_finite()),
                "{model:?} {history:?}"
            );
            let h = 1e-5;
            for k in 0..4 {
                let shifted = |step: f64| {
                    let mut params = model.params();
                    params[k] *= f64::exp(step);
                    ParetoNbd::from_params(params).log_likelihood_value(history)
                };
                let difference = (shifted(h) - shifted(-h)) / (2.0 * h);
                let tolerance = 1e-6 * (1.0 + gradient[k].abs()) + 1e-15 * ll.abs() / h;
                assert!(
                    (gradient[k] - difference).abs() <= tolerance,
                    "{model:?} {history:?} [{k}]: {} vs {difference}",
                    gradient[k]
                );
            }
            let p = model.p_alive(history);
            assert!((0.0..=1.0).contains(&p));
        }
    }
}
