//! Customers valued from their purchase histories (`--model`), end to end: CDNOW imported,
//! a model.json as a user writes it, `crv score` / `crv select` run as binaries, every
//! customer's CRV against lifetimes' customer lifetime value at the same parameters
//! (tests/data/lifetimes_clv.py), and the kernel's shared-curve path against its per-customer
//! specification for both purchase models.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crv::btyd::bgnbd::BgNbd;
use crv::btyd::columns::HistoryColumns;
use crv::btyd::gamma_gamma::GammaGamma;
use crv::btyd::pnbd::ParetoNbd;
use crv::kernel::history::{
    HistoryInputs, HistoryParams, ObservedSpend, SpendRule, crv_reference, score_histories,
};

const CDNOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cdnow_summary.csv");
const LIFETIMES_CLV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lifetimes_clv.csv");

const BGNBD_MODEL: &str = r#"{"model": "bgnbd",
  "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
  "spend": {"model": "gamma-gamma", "params": {"p": 6.25, "q": 3.74, "gamma": 15.44}}}"#;
const PNBD_MODEL: &str = r#"{"model": "pnbd",
  "params": {"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562},
  "spend": {"model": "gamma-gamma", "params": {"p": 6.25, "q": 3.74, "gamma": 15.44}}}"#;

fn crv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(args)
        .output()
        .expect("the crv binary runs")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A directory with CDNOW imported as `cdnow.crv`.
fn cdnow_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cdnow.crv");
    let output = crv(&["import", CDNOW, "-o", s(&store)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (dir, store)
}

/// Rows of a CSV file with a header, as (header, rows of fields).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn score_with_a_model_file_gives_lifetimes_customer_lifetime_value() {
    let (dir, store) = cdnow_store();
    let (_, reference) = read_csv(Path::new(LIFETIMES_CLV));
    for (name, json, column) in [("bgnbd", BGNBD_MODEL, 1), ("pnbd", PNBD_MODEL, 2)] {
        let model = dir.path().join(format!("{name}.json"));
        std::fs::write(&model, json).unwrap();
        let scores = dir.path().join(format!("{name}.csv"));
        let output = crv(&[
            "score",
            s(&store),
            "--model",
            s(&model),
            "--horizon",
            "52",
            "--discount",
            "0.01",
            "-o",
            s(&scores),
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("{name} purchases, spend from gamma-gamma")),
            "{stdout}"
        );
        let (header, rows) = read_csv(&scores);
        assert_eq!(
            header,
            [
                "customer_id",
                "crv",
                "tier",
                "rank",
                "percentile",
                "p_alive",
                "expected_purchases",
                "expected_spend"
            ]
        );
        assert_eq!(rows.len(), 2357);
        for (ours, theirs) in rows.iter().zip(&reference) {
            assert_eq!(ours[0], theirs[0], "rows in store order");
            let (ours, theirs): (f64, f64) =
                (ours[1].parse().unwrap(), theirs[column].parse().unwrap());
            // f32 output: 1e-6 relative, and an absolute floor for the tiny values.
            assert!(
                (ours - theirs).abs() <= 2e-6 * theirs.abs() + 1e-6,
                "{name}: customer {}: {ours} vs lifetimes {theirs}",
                rows[0][0]
            );
        }
        for row in &rows {
            let p_alive: f64 = row[5].parse().unwrap();
            assert!((0.0..=1.0).contains(&p_alive), "{row:?}");
        }
    }
}

#[test]
fn select_and_its_errors_with_a_model_file() {
    let (dir, store) = cdnow_store();
    let model = dir.path().join("model.json");
    std::fs::write(&model, BGNBD_MODEL).unwrap();
    // CDNOW has no cost column: its `frequency` serves as the resource.
    let output = crv(&[
        "select",
        s(&store),
        "--model",
        s(&model),
        "--horizon",
        "52",
        "--budget",
        "100",
        "--cost",
        "frequency",
        "--resource-scale",
        "1",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["optimal"], true, "{summary}");
    assert!(summary["total_cost"].as_f64().unwrap() <= 100.0);
    assert!(summary["selected"].as_u64().unwrap() > 0);

    let failure = |args: &[&str], fragment: &str| {
        let output = crv(args);
        let message = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(message.contains(fragment), "{args:?}: {message}");
    };
    failure(
        &["score", s(&store), "--model", s(&model), "--horizon", "inf"],
        "`inf` with a purchase model",
    );
    failure(&["score", s(&store), "--margin-rate", "0.3"], "--model");
    let missing = dir.path().join("missing.json");
    failure(
        &["score", s(&store), "--model", s(&missing)],
        "missing.json",
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"model": "bgnbd", "params": {"r": -1, "alpha": 1, "a": 1, "b": 1}}"#,
    )
    .unwrap();
    failure(&["score", s(&store), "--model", s(&bad)], "bad.json");
    // A store without purchase histories.
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "customer_id,margin,retention\n1,10,0.5\n").unwrap();
    let plain_store = dir.path().join("plain.crv");
    assert!(
        crv(&["import", s(&plain), "-o", s(&plain_store)])
            .status
            .success()
    );
    failure(
        &["score", s(&plain_store), "--model", s(&model)],
        "frequency",
    );
}

/// CDNOW's columns, read from the committed CSV.
struct Cdnow {
    frequency: Vec<f32>,
    recency: Vec<f32>,
    age: Vec<f32>,
    monetary_value: Vec<f32>,
}

impl Cdnow {
    fn read() -> Cdnow {
        let (_, rows) = read_csv(Path::new(CDNOW));
        let column = |k: usize| rows.iter().map(|r| r[k].parse::<f32>().unwrap()).collect();
        Cdnow {
            frequency: column(1),
            recency: column(2),
            age: column(3),
            monetary_value: column(4),
        }
    }

    fn inputs(&self) -> HistoryInputs<'_> {
        HistoryInputs {
            histories: HistoryColumns {
                frequency: &self.frequency,
                recency: &self.recency,
                age: &self.age,
            },
            monetary_value: Some(&self.monetary_value),
            referral_value: None,
            competence_value: None,
            development_cost: None,
            acquisition_cost: None,
        }
    }
}

fn assert_paths_agree<M: crv::btyd::PurchaseModel, S: SpendRule>(model: &M, spend: &S) {
    let cdnow = Cdnow::read();
    let inputs = cdnow.inputs();
    for params in [
        HistoryParams {
            discount: 0.01,
            horizon_periods: 52,
            margin_rate: 0.3,
        },
        HistoryParams {
            discount: 0.0,
            horizon_periods: 1,
            margin_rate: 1.0,
        },
        HistoryParams {
            discount: 0.2,
            horizon_periods: 260,
            margin_rate: -1.0,
        },
    ] {
        let reference = crv_reference(model, spend, &inputs, &params);
        let fast = score_histories(model, spend, &inputs, &params);
        assert!(fast.distinct_curves <= fast.distinct_histories);
        assert!(fast.distinct_histories < inputs.len());
        for row in 0..inputs.len() {
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1e-3);
            assert!(
                close(fast.crv[row], reference.crv[row]),
                "{params:?} row {row}"
            );
            assert!(close(
                fast.expected_purchases[row],
                reference.expected_purchases[row]
            ));
            assert_eq!(fast.p_alive[row], reference.p_alive[row]);
            assert_eq!(fast.expected_spend[row], reference.expected_spend[row]);
        }
    }
}

#[test]
fn shared_curves_equal_the_per_customer_specification_for_both_models() {
    let bgnbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let pnbd = ParetoNbd {
        r: 0.5534,
        alpha: 10.5802,
        s: 0.6061,
        beta: 11.6562,
    };
    let spend = GammaGamma::from_params([6.25, 3.74, 15.44]);
    assert_paths_agree(&bgnbd, &spend);
    assert_paths_agree(&bgnbd, &ObservedSpend);
    assert_paths_agree(&pnbd, &spend);
    assert_paths_agree(&pnbd, &ObservedSpend);
}

/// `crv simulate --model`: one row per scenario, each valued by the purchase model at its own
/// discount and horizon. The neutral scenario is `crv select --model`'s selection; a margin
/// multiplier of 2 doubles every value (CDNOW has no one-off columns); a margin uplift's
/// potential is the response rate times the uplift times the positive values; retention
/// changes and an infinite horizon are errors naming the scenario's field.
#[test]
fn simulate_with_a_model_file_values_each_scenario_by_the_model() {
    let (dir, store) = cdnow_store();
    let model = dir.path().join("model.json");
    std::fs::write(&model, BGNBD_MODEL).unwrap();
    let common = r#""horizon": 52, "budget": 100, "cost": "frequency", "resource_scale": 1"#;
    let scenarios = dir.path().join("scenarios.json");
    std::fs::write(
        &scenarios,
        format!(
            r#"{{"scenarios": [
                {{"name": "base", {common}}},
                {{"name": "double", "margin_multiplier": 2, {common}}},
                {{"name": "uplift", "margin_uplift": 0.2, "response_rate": 0.5,
                  "objective": "incremental", {common}}}]}}"#
        ),
    )
    .unwrap();
    let results = dir.path().join("results.csv");
    let output = crv(&[
        "simulate",
        s(&store),
        "--model",
        s(&model),
        "--scenarios",
        s(&scenarios),
        "-o",
        s(&results),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (header, rows) = read_csv(&results);
    let field = |row: usize, name: &str| -> f64 {
        let column = header.iter().position(|h| h == name).unwrap();
        rows[row][column].parse().unwrap()
    };

    let select = crv(&[
        "select",
        s(&store),
        "--model",
        s(&model),
        "--horizon",
        "52",
        "--budget",
        "100",
        "--cost",
        "frequency",
        "--resource-scale",
        "1",
        "--json",
    ]);
    assert!(select.status.success());
    let summary: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&select.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(field(0, "contacted"), summary["selected"].as_f64().unwrap());
    assert_eq!(
        field(0, "targets_crv"),
        summary["total_crv"].as_f64().unwrap()
    );
    assert_eq!(field(0, "spend"), summary["total_cost"].as_f64().unwrap());

    let score = crv(&[
        "score",
        s(&store),
        "--model",
        s(&model),
        "--horizon",
        "52",
        "--json",
    ]);
    assert!(score.status.success());
    let scored: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&score.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let total = field(0, "total_crv");
    assert!(
        (total - scored["total_crv"].as_f64().unwrap()).abs() <= 1e-9 * total,
        "{total} against {scored}"
    );
    assert_eq!(field(1, "total_crv"), 2.0 * total);
    assert_eq!(
        field(1, "potential_value"),
        2.0 * field(0, "potential_value")
    );
    // Every CDNOW value is positive or zero: the uplift's potential is 0.5 * 0.2 of the total.
    let potential = field(2, "potential_value");
    assert!(
        (potential - 0.1 * field(0, "potential_value")).abs() <= 1e-6 * potential,
        "{potential}"
    );
    assert!(field(2, "incremental_value") > 0.0);
    assert!(field(2, "incremental_value") <= potential);

    let failure = |scenario: &str, fragment: &str| {
        std::fs::write(&scenarios, format!(r#"{{"scenarios": [{scenario}]}}"#)).unwrap();
        let output = crv(&[
            "simulate",
            s(&store),
            "--model",
            s(&model),
            "--scenarios",
            s(&scenarios),
        ]);
        let message = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{scenario} succeeded");
        assert!(message.contains(fragment), "{scenario}: {message}");
    };
    failure(
        r#"{"name": "shift", "horizon": 52, "retention_shift": 0.1, "cost": "frequency"}"#,
        "retention_shift",
    );
    failure(
        r#"{"name": "keep", "horizon": 52, "retention_uplift": 0.1, "response_rate": 0.5, "cost": "frequency"}"#,
        "retention_uplift",
    );
    failure(
        r#"{"name": "forever", "horizon": "inf", "cost": "frequency"}"#,
        "`inf` with a purchase model",
    );
}
