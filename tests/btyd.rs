//! The purchase and spend models against published results (CDNOW), an independent
//! implementation (lifetimes, at the published parameters), their own generative story
//! (recovery), extreme histories and properties.

use std::path::Path;

use crv::btyd::bgnbd::BgNbd;
use crv::btyd::fit::{PurchaseData, fit_purchase_model};
use crv::btyd::gamma_gamma::{GammaGamma, Spend, SpendData, fit_gamma_gamma};
use crv::btyd::pnbd::ParetoNbd;
use crv::btyd::{History, PurchaseModel};
use crv::synthetic::RowRng;
use proptest::prelude::*;

/// The CDNOW sample's (history, mean repeat spend), customer by customer.
fn cdnow() -> Vec<(u64, History, f64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_summary.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let value = |i: usize| record[i].parse::<f64>().unwrap();
            let history = History {
                frequency: value(1),
                recency: value(2),
                age: value(3),
            };
            (value(0) as u64, history, value(4))
        })
        .collect()
}

/// `value` equals `published` to 3 significant digits.
fn assert_3_digits(name: &str, value: f64, published: f64) {
    let digits = published.abs().log10().floor() as i32 - 2;
    let unit = 10f64.powi(digits);
    assert!(
        (value - published).abs() <= 0.5 * unit,
        "{name}: {value} is not {published} to 3 significant digits"
    );
}

/// The published BG/NBD estimates on CDNOW (Fader, Hardie & Lee 2005).
const CDNOW_BGNBD: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};

/// The published Gamma-Gamma estimates on CDNOW's repeat buyers (Fader, Hardie & Berger's
/// note; lifetimes reproduces them).
const CDNOW_GAMMA_GAMMA: GammaGamma = GammaGamma {
    p: 6.25,
    q: 3.74,
    gamma: 15.44,
};

#[test]
fn bgnbd_on_cdnow_gives_the_published_estimates() {
    let histories: Vec<History> = cdnow().iter().map(|(_, h, _)| *h).collect();
    let data = PurchaseData::compress(&histories);
    assert_eq!(data.customers, 2357);
    let (model, estimate) = fit_purchase_model::<BgNbd>(&data, None).unwrap();
    eprintln!("{model:?} {estimate:?}");
    assert_3_digits("r", model.r, CDNOW_BGNBD.r);
    assert_3_digits("alpha", model.alpha, CDNOW_BGNBD.alpha);
    assert_3_digits("a", model.a, CDNOW_BGNBD.a);
    assert_3_digits("b", model.b, CDNOW_BGNBD.b);
    assert_3_digits("log-likelihood", estimate.log_likelihood, -9582.4);
    assert!(
        estimate.status.starts_with("converged"),
        "{}",
        estimate.status
    );
}

#[test]
fn pnbd_on_cdnow_gives_the_published_estimates() {
    // The BTYD R package's estimates, which lifetimes' ParetoNBDFitter reproduces.
    let histories: Vec<History> = cdnow().iter().map(|(_, h, _)| *h).collect();
    let (model, estimate) =
        fit_purchase_model::<ParetoNbd>(&PurchaseData::compress(&histories), None).unwrap();
    assert_3_digits("r", model.r, 0.5534);
    assert_3_digits("alpha", model.alpha, 10.5802);
    assert_3_digits("s", model.s, 0.6061);
    assert_3_digits("beta", model.beta, 11.6562);
    assert_3_digits("log-likelihood", estimate.log_likelihood, -9594.98);
    assert!(
        estimate.status.starts_with("converged"),
        "{}",
        estimate.status
    );
}

#[test]
fn pnbd_fit_recovers_the_parameters_customers_were_drawn_from() {
    let truth = ParetoNbd {
        r: 0.8,
        alpha: 6.0,
        s: 0.9,
        beta: 15.0,
    };
    let histories: Vec<History> = (0..50_000u64)
        .map(|i| {
            let mut rng = RowRng::new(13, i);
            let age = 20.0 + 60.0 * rng.uniform();
            truth.draw_history(&mut rng, age)
        })
        .collect();
    let (fitted, estimate) =
        fit_purchase_model::<ParetoNbd>(&PurchaseData::compress(&histories), None).unwrap();
    let errors = estimate.standard_errors.unwrap();
    for (k, name) in ParetoNbd::PARAM_NAMES.iter().enumerate() {
        let (value, expected) = (fitted.params()[k], truth.params()[k]);
        assert!(
            (value - expected).abs() < 4.0 * errors[k],
            "{name}: {value} (se {}) against {expected}",
            errors[k]
        );
    }
}

#[test]
fn gamma_gamma_on_cdnow_repeat_buyers_gives_the_published_estimates() {
    let spends: Vec<Spend> = cdnow()
        .iter()
        .filter(|(_, h, _)| h.frequency > 0.0)
        .map(|(_, h, m)| Spend {
            frequency: h.frequency,
            monetary_value: *m,
        })
        .collect();
    let data = SpendData::compress(&spends);
    assert_eq!(data.repeat_buyers, 946);
    let (model, estimate) = fit_gamma_gamma(&data, None).unwrap();
    eprintln!("{model:?} {estimate:?}");
    assert_3_digits("p", model.p, CDNOW_GAMMA_GAMMA.p);
    assert_3_digits("q", model.q, CDNOW_GAMMA_GAMMA.q);
    assert_3_digits("gamma", model.gamma, CDNOW_GAMMA_GAMMA.gamma);
}

/// `value` is within `relative` of `expected` (or 1e-14 of it near zero).
fn assert_close(what: &str, value: f64, expected: f64, relative: f64) {
    assert!(
        (value - expected).abs() <= relative * expected.abs() + 1e-14,
        "{what}: {value}, expected {expected}"
    );
}

#[test]
fn predictions_match_lifetimes_at_the_published_parameters() {
    // tests/data/lifetimes_predictions.py computed these with lifetimes 0.11.3.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lifetimes_predictions.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut customers = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let value = |i: usize| record[i].parse::<f64>().unwrap();
        let id = &record[0];
        let history = History {
            frequency: value(1),
            recency: value(2),
            age: value(3),
        };
        let m = CDNOW_BGNBD;
        assert_close(id, m.p_alive(history), value(5), 1e-9);
        assert_close(id, m.expected_purchases(history, 10.0), value(6), 1e-9);
        assert_close(id, m.expected_purchases(history, 52.0), value(7), 1e-9);
        let spend = CDNOW_GAMMA_GAMMA.expected_spend(history.frequency, value(4));
        assert_close(id, spend, value(8), 1e-9);
        customers += 1;
    }
    assert!(customers >= 20, "{customers}");
}

/// Customers drawn from BG/NBD with ages spread over [20, 80] time units, and the mean spend
/// of the repeat buyers drawn from Gamma-Gamma.
fn draw_customers(purchase: &BgNbd, spend: &GammaGamma, n: u64, seed: u64) -> Vec<(History, f64)> {
    (0..n)
        .map(|i| {
            let mut rng = RowRng::new(seed, i);
            let age = 20.0 + 60.0 * rng.uniform();
            let history = purchase.draw_history(&mut rng, age);
            let m = if history.frequency > 0.0 {
                spend.draw_mean_spend(&mut rng, history.frequency as u32)
            } else {
                0.0
            };
            (history, m)
        })
        .collect()
}

#[test]
fn fits_recover_the_parameters_customers_were_drawn_from() {
    let purchase = BgNbd {
        r: 0.6,
        alpha: 8.0,
        a: 0.9,
        b: 3.0,
    };
    let spend = GammaGamma {
        p: 5.0,
        q: 4.0,
        gamma: 20.0,
    };
    let customers = draw_customers(&purchase, &spend, 50_000, 11);
    let histories: Vec<History> = customers.iter().map(|(h, _)| *h).collect();
    let (fitted, estimate) =
        fit_purchase_model::<BgNbd>(&PurchaseData::compress(&histories), None).unwrap();
    let errors = estimate.standard_errors.unwrap();
    for (k, name) in BgNbd::PARAM_NAMES.iter().enumerate() {
        let (value, truth) = (fitted.params()[k], purchase.params()[k]);
        assert!(
            (value - truth).abs() < 4.0 * errors[k],
            "{name}: {value} (se {}) against {truth}",
            errors[k]
        );
    }
    let spends: Vec<Spend> = customers
        .iter()
        .filter(|(h, _)| h.frequency > 0.0)
        .map(|(h, m)| Spend {
            frequency: h.frequency,
            monetary_value: *m,
        })
        .collect();
    let (fitted, estimate) = fit_gamma_gamma(&SpendData::compress(&spends), None).unwrap();
    let errors = estimate.standard_errors.unwrap();
    for (k, name) in GammaGamma::PARAM_NAMES.iter().enumerate() {
        let (value, truth) = (fitted.params()[k], spend.params()[k]);
        assert!(
            (value - truth).abs() < 4.0 * errors[k],
            "{name}: {value} (se {}) against {truth}",
            errors[k]
        );
    }
}

#[test]
fn extreme_histories_give_finite_values() {
    let h = |frequency, recency, age| History {
        frequency,
        recency,
        age,
    };
    let extremes = [
        h(5000.0, 100.0, 100.0),
        h(5000.0, 1.0, 1e4),
        h(3000.0, 52.0, 52.0),
        h(0.0, 0.0, 0.0),
        h(0.0, 0.0, 1e4),
        h(1.0, 1e4, 1e4),
        h(20.0, 1e4, 1e4),
        h(1.0, 0.0, 0.0),
    ];
    let models = [
        CDNOW_BGNBD,
        BgNbd {
            r: 30.0,
            alpha: 0.5,
            a: 0.05,
            b: 50.0,
        },
    ];
    for m in models {
        for history in extremes {
            let (ll, gradient) = m.log_likelihood(history);
            assert!(ll.is_finite(), "{m:?} {history:?}: ll {ll}");
            assert!(
                gradient.iter().all(|g| g.is_finite()),
                "{history:?}: {gradient:?}"
            );
            let p = m.p_alive(history);
            assert!((0.0..=1.0).contains(&p), "{history:?}: p_alive {p}");
            for t in [10.0, 52.0] {
                let e = m.expected_purchases(history, t);
                assert!(e.is_finite() && e >= 0.0, "{m:?} {history:?}: E[{t}] = {e}");
            }
        }
    }
    // A heavy buyer still active buys about at their own rate: 5000 purchases in 100 units.
    let heavy = CDNOW_BGNBD.expected_purchases(h(5000.0, 100.0, 100.0), 10.0);
    assert!((400.0..500.0).contains(&heavy), "{heavy}");
    for (x, m) in [(5000.0, 1e6), (1.0, 1e-6), (3000.0, 0.01)] {
        let spend = Spend {
            frequency: x,
            monetary_value: m,
        };
        let (ll, gradient) = CDNOW_GAMMA_GAMMA.log_likelihood(spend);
        assert!(ll.is_finite() && gradient.iter().all(|g| g.is_finite()));
        assert!(CDNOW_GAMMA_GAMMA.expected_spend(x, m).is_finite());
    }
}

/// Positive parameters, log-uniform over [0.2, 20].
fn parameter() -> impl Strategy<Value = f64> {
    (0.2f64.ln()..20f64.ln()).prop_map(f64::exp)
}

/// A history: frequency 0 to 200, age 0 to 500, recency within it (0 without repeat).
fn history() -> impl Strategy<Value = History> {
    (0u32..200, 0.0..500.0, 0.0..=1.0f64).prop_map(|(x, age, share)| History {
        frequency: f64::from(x),
        recency: if x == 0 { 0.0 } else { age * share },
        age,
    })
}

fn bgnbd() -> impl Strategy<Value = BgNbd> {
    (parameter(), 0.5..20.0, parameter(), parameter()).prop_map(|(r, alpha, a, b)| BgNbd {
        r,
        alpha,
        a,
        b,
    })
}

/// Central finite differences of `ll` in the log-parameters against `gradient`; `magnitude`
/// is the size of the largest terms summed into `ll` (their rounding error, divided by the
/// step, is the differences' noise).
fn check_gradient<const K: usize>(
    params: [f64; K],
    gradient: [f64; K],
    magnitude: f64,
    ll: impl Fn([f64; K]) -> f64,
) -> Result<(), TestCaseError> {
    let step = 1e-6;
    for k in 0..K {
        let at = |sign: f64| {
            let mut p = params;
            p[k] *= (sign * step).exp();
            ll(p)
        };
        let numeric = (at(1.0) - at(-1.0)) / (2.0 * step);
        let scale = 1.0 + gradient[k].abs() + (ll(params).abs() + magnitude) * 1e-4;
        prop_assert!(
            (numeric - gradient[k]).abs() < 1e-5 * scale,
            "parameter {k}: analytic {} numeric {numeric}",
            gradient[k]
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn p_alive_is_a_probability(m in bgnbd(), h in history()) {
        let p = m.p_alive(h);
        prop_assert!((0.0..=1.0).contains(&p), "{p}");
    }

    #[test]
    fn expected_purchases_grow_with_the_horizon(
        m in bgnbd(),
        h in history(),
        t in 0.0..100.0f64,
        more in 0.0..100.0f64,
    ) {
        let (short, long) = (m.expected_purchases(h, t), m.expected_purchases(h, t + more));
        prop_assert!(short >= 0.0 && short.is_finite(), "{short}");
        prop_assert!(long >= short * (1.0 - 1e-9), "{short} then {long}");
    }

    #[test]
    fn bgnbd_gradient_matches_finite_differences(m in bgnbd(), h in history()) {
        let (_, gradient) = m.log_likelihood(h);
        let magnitude = (m.r + h.frequency) * (1.0 + (m.alpha + h.age).ln().abs());
        check_gradient(m.params(), gradient, magnitude, |p| {
            BgNbd::from_params(p).log_likelihood(h).0
        })?;
    }

    #[test]
    fn gamma_gamma_gradient_matches_finite_differences(
        p in parameter(),
        q in parameter(),
        gamma in parameter(),
        x in 1u32..500,
        m in 0.01..1000.0f64,
    ) {
        let model = GammaGamma { p, q, gamma };
        let spend = Spend { frequency: f64::from(x), monetary_value: m };
        let (_, gradient) = model.log_likelihood(spend);
        let magnitude = (p * spend.frequency + q) * (1.0 + (gamma + m * spend.frequency).ln().abs());
        check_gradient(model.params(), gradient, magnitude, |params| {
            GammaGamma::from_params(params).log_likelihood(spend).0
        })?;
    }
}

/// Runs the `crv` binary.
fn crv(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(args)
        .output()
        .expect("the crv binary runs")
}

/// Imports `csv` into a store in `dir`.
fn import(dir: &Path, name: &str, csv: &str) -> std::path::PathBuf {
    let csv_path = dir.join(format!("{name}.csv"));
    std::fs::write(&csv_path, csv).unwrap();
    let store = dir.join(format!("{name}.crv"));
    let output = crv(&[
        "import",
        csv_path.to_str().unwrap(),
        "-o",
        store.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    store
}

#[test]
fn crv_fit_writes_the_cdnow_model_and_a_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_summary.csv"),
    )
    .unwrap();
    let store = import(dir.path(), "cdnow", &csv.replace(",age,", ",T,"));
    let model_path = dir.path().join("model.json");
    let output = crv(&[
        "fit",
        store.to_str().unwrap(),
        "--model",
        "bgnbd",
        "--spend",
        "gamma-gamma",
        "-o",
        model_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("log-likelihood"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["model"], "bgnbd");
    assert_eq!(summary["fit"]["customers"], 2357);
    let model = crv::btyd::model_file::ModelFile::read(&model_path).unwrap();
    assert_3_digits("r", model.params[0], CDNOW_BGNBD.r);
    assert_3_digits("b", model.params[3], CDNOW_BGNBD.b);
    assert_3_digits("ll", model.details.log_likelihood.unwrap(), -9582.4);
    let spend = model.spend.unwrap().model;
    assert_3_digits("p", spend.p, CDNOW_GAMMA_GAMMA.p);
    assert_3_digits("q", spend.q, CDNOW_GAMMA_GAMMA.q);
    assert_3_digits("gamma", spend.gamma, CDNOW_GAMMA_GAMMA.gamma);
    assert!(model.details.standard_errors.is_some());
}

#[test]
fn crv_fit_names_the_bad_column_and_row_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.json");
    let cases = [
        (
            "customer_id,frequency,recency,age,monetary_value\n1,1,3,2,5\n",
            "column `recency`: row 1 (customer 1): 3 is not a time from 0 to the customer's age",
        ),
        (
            "customer_id,frequency,recency,age,monetary_value\n1,0,0,2,0\n7,1.5,1,2,5\n",
            "column `frequency`: row 2 (customer 7): 1.5 is not a whole number",
        ),
        (
            "customer_id,frequency,recency,T,monetary_value\n1,0,0,-2,0\n",
            "column `T`: row 1 (customer 1): -2 is not a time >= 0",
        ),
        (
            "customer_id,frequency,recency,monetary_value\n1,0,0,0\n",
            "column `age`: not in the store (nor `T`)",
        ),
        (
            "customer_id,frequency,recency,age,monetary_value\n1,2,1,2,0\n",
            "column `monetary_value`: row 1 (customer 1): 0 for a repeat buyer",
        ),
    ];
    for (i, (csv, expected)) in cases.iter().enumerate() {
        let store = import(dir.path(), &format!("bad{i}"), csv);
        let output = crv(&[
            "fit",
            store.to_str().unwrap(),
            "--model",
            "bgnbd",
            "--spend",
            "gamma-gamma",
            "-o",
            model_path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(expected), "{csv}: {stderr}");
        assert!(!model_path.exists());
    }
    // Data that cannot identify the model: no repeat purchase at all.
    let rows: String = (1..=50).map(|i| format!("{i},0,0,{i}\n")).collect();
    let store = import(
        dir.path(),
        "zeros",
        &format!("customer_id,frequency,recency,age\n{rows}"),
    );
    let output = crv(&[
        "fit",
        store.to_str().unwrap(),
        "--model",
        "bgnbd",
        "-o",
        model_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("every frequency is 0"), "{stderr}");
    assert!(!model_path.exists());
}

#[test]
fn spend_that_cannot_identify_gamma_gamma_is_an_error_not_nan() {
    // Every repeat buyer spends exactly 10: no spread across customers, so q and gamma run off.
    let spends: Vec<Spend> = (0..500)
        .map(|i| Spend {
            frequency: f64::from(1 + i % 5),
            monetary_value: 10.0,
        })
        .collect();
    let message = fit_gamma_gamma(&SpendData::compress(&spends), None)
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("invalid gamma-gamma fit"), "{message}");
    let few = &spends[..5];
    let message = fit_gamma_gamma(&SpendData::compress(few), None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("5 repeat buyers"), "{message}");
}

#[test]
fn crv_fit_holdout_prints_the_table_and_writes_both_charts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_holdout.csv"),
    )
    .unwrap();
    let store = import(dir.path(), "holdout", &csv);
    let model_path = dir.path().join("model.json");
    let output = crv(&[
        "fit",
        store.to_str().unwrap(),
        "--model",
        "bgnbd",
        "-o",
        model_path.to_str().unwrap(),
        "--holdout",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    // Fader, Hardie & Lee's figure: 1411 customers without a repeat purchase made 0.237
    // purchases each in the 39 holdout weeks; the model predicts 0.225.
    assert!(
        stdout.contains("0                1411       0.2367       0.2251"),
        "{stdout}"
    );
    assert!(stdout.contains("7+"), "{stdout}");
    for chart in ["model.holdout.svg", "model.p_alive.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
            "{chart}"
        );
    }
    // Without the holdout columns: an error naming the missing one.
    let plain = import(
        dir.path(),
        "plain",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cdnow_summary.csv"),
        )
        .unwrap(),
    );
    let output = crv(&[
        "fit",
        plain.to_str().unwrap(),
        "--model",
        "bgnbd",
        "-o",
        dir.path().join("other.json").to_str().unwrap(),
        "--holdout",
    ]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(message.contains("frequency_holdout"), "{message}");
}
