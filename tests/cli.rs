//! The `crv` binary as users run it: real files on disk, exit codes, messages that name the
//! file, line and column, and no half-written output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn crv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(args)
        .output()
        .expect("the crv binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Imports `csv`, expects failure with every fragment in the message and no store written.
fn assert_import_fails(csv: &[u8], fragments: &[&str]) {
    let work = Workspace::new();
    let input = work.file("input.csv", csv);
    let output = crv(&["import", s(&input), "-o", s(&work.path("out.crv"))]);
    let message = stderr(&output);
    assert!(!output.status.success(), "import succeeded: {message}");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "`{fragment}` missing from: {message}"
        );
    }
    assert!(message.contains("input.csv"), "file not named: {message}");
    assert_eq!(work.entries(), ["input.csv"], "output left behind");
}

#[test]
fn import_rejects_a_missing_customer_id_column() {
    assert_import_fails(b"id,margin\n1,2\n", &["no `customer_id` column"]);
}

#[test]
fn import_names_both_lines_of_a_duplicate_id() {
    assert_import_fails(
        b"customer_id,margin\n5,1\n6,2\n5,3\n",
        &[
            "line 4",
            "`customer_id`",
            "duplicate customer_id 5",
            "line 2",
        ],
    );
}

#[test]
fn import_rejects_unparsable_numbers() {
    assert_import_fails(
        b"customer_id,margin,cost\n1,2,3\n2,4,abc\n",
        &["line 3", "column `cost`", "`abc` is not a number"],
    );
}

#[test]
fn import_rejects_nan_and_infinity() {
    assert_import_fails(
        b"customer_id,margin\n1,NaN\n",
        &["line 2", "column `margin`", "`NaN` is not a finite number"],
    );
    assert_import_fails(
        b"customer_id,referral_value\n1,1\n2,inf\n",
        &["line 3", "column `referral_value`", "`inf`"],
    );
    assert_import_fails(
        b"customer_id,margin\n1,1e40\n",
        &["line 2", "column `margin`", "`1e40` is not a finite number"],
    );
}

#[test]
fn import_rejects_retention_outside_zero_one() {
    assert_import_fails(
        b"customer_id,retention\n1,0.5\n2,-0.1\n",
        &["line 3", "column `retention`", "`-0.1` is outside [0, 1]"],
    );
}

#[test]
fn import_rejects_negative_costs() {
    for column in [
        "retention_cost",
        "development_cost",
        "acquisition_cost",
        "cost",
    ] {
        let csv = format!("customer_id,{column}\n1,2\n2,-3\n");
        assert_import_fails(
            csv.as_bytes(),
            &["line 3", &format!("column `{column}`"), "`-3` is negative"],
        );
    }
}

#[test]
fn import_rejects_ragged_rows() {
    assert_import_fails(
        b"customer_id,margin,retention\n1,2,0.5\n2,3\n",
        &[
            "line 3",
            "column `retention`",
            "2 fields, but the header has 3",
        ],
    );
    assert_import_fails(
        b"customer_id,margin\n1,2,0.5\n",
        &["line 2", "3 fields, but the header has 2"],
    );
}

#[test]
fn import_rejects_an_empty_file_and_a_header_only_file() {
    assert_import_fails(b"", &["empty file"]);
    assert_import_fails(b"customer_id,margin\n", &["no customer rows"]);
}

#[test]
fn import_rejects_non_utf8_text() {
    assert_import_fails(
        b"customer_id,segment\n1,gold\n2,g\xffld\n",
        &["line 3", "column `segment`", "not valid UTF-8"],
    );
}

#[test]
fn import_rejects_empty_required_values_and_bad_ids() {
    assert_import_fails(
        b"customer_id,margin\n1,\n",
        &["line 2", "column `margin`", "empty value"],
    );
    assert_import_fails(
        b"customer_id,margin\n-1,2\n",
        &[
            "line 2",
            "column `customer_id`",
            "`-1` is not a customer id",
        ],
    );
}

#[test]
fn import_accepts_a_bom_and_crlf_line_endings() {
    let work = Workspace::new();
    let input = work.file(
        "bom.csv",
        b"\xef\xbb\xbfcustomer_id,margin,retention\r\n1,10,0.5\r\n2,20,0.75\r\n",
    );
    let store = work.path("bom.crv");
    let output = crv(&["import", s(&input), "-o", s(&store)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let store = crv::Store::open(&store).unwrap();
    assert_eq!(store.ids(), &[1, 2]);
    assert_eq!(store.numeric("retention").unwrap(), &[0.5, 0.75]);
}

#[test]
fn failed_import_leaves_an_existing_store_untouched() {
    let work = Workspace::new();
    let good = work.file("good.csv", b"customer_id,margin\n1,10\n");
    let target = work.path("customers.crv");
    assert!(
        crv(&["import", s(&good), "-o", s(&target)])
            .status
            .success()
    );
    let before = std::fs::read(&target).unwrap();

    // Many good rows, then a bad one at the very end: the import fails halfway through.
    let mut bad = b"customer_id,margin\n".to_vec();
    for id in 0..50_000 {
        bad.extend_from_slice(format!("{id},{id}.5\n").as_bytes());
    }
    bad.extend_from_slice(b"50000,oops\n");
    let bad = work.file("bad.csv", &bad);
    let output = crv(&["import", s(&bad), "-o", s(&target)]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("line 50002"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&target).unwrap(), before);
    assert_eq!(work.entries(), ["bad.csv", "customers.crv", "good.csv"]);
}

#[test]
fn info_reports_rows_columns_and_verifies() {
    let work = Workspace::new();
    let input = work.file(
        "c.csv",
        b"customer_id,margin,segment\n1,10,gold\n2,20,silver\n3,30,gold\n",
    );
    let store = work.path("c.crv");
    assert!(
        crv(&["import", s(&input), "-o", s(&store)])
            .status
            .success()
    );
    let output = crv(&["info", s(&store), "--verify", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["rows"], 3);
    assert_eq!(summary["verified"], true);
    assert_eq!(summary["columns"][2]["name"], "segment");
    assert_eq!(summary["columns"][2]["type"], "text");
    assert_eq!(summary["columns"][2]["distinct"], 2);
    assert!(stdout.contains("verified"), "{stdout}");
}

#[test]
fn info_on_a_corrupt_file_fails_with_its_name() {
    let work = Workspace::new();
    let junk = work.file("junk.crv", b"definitely not a store file at all");
    let output = crv(&["info", s(&junk)]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("junk.crv") && message.contains("bad magic"),
        "{message}"
    );
}

#[test]
fn gen_is_deterministic_for_a_seed_and_imports_cleanly() {
    let work = Workspace::new();
    let first = work.path("a.csv");
    let second = work.path("b.csv");
    for path in [&first, &second] {
        let output = crv(&["gen", "--customers", "2000", "--seed", "9", "-o", s(path)]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    let store = work.path("a.crv");
    let output = crv(&["import", s(&first), "-o", s(&store), "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["rows"], 2000);
}

/// A generated store of `customers` customers in a fresh workspace.
fn generated_store(customers: u64) -> (Workspace, PathBuf) {
    let work = Workspace::new();
    let csv = work.path("customers.csv");
    let store = work.path("customers.crv");
    crv::synthetic::write_customers_csv(std::fs::File::create(&csv).unwrap(), customers, 3)
        .unwrap();
    crv::store::import(&csv, &store, &mut |_| {}).unwrap();
    (work, store)
}

fn json_summary(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn score_summary_and_rows_match_the_library_kernel() {
    let (work, store_path) = generated_store(3_000);
    let scores = work.path("scores.csv");
    let summary = json_summary(&crv(&["score", s(&store_path), "--json", "-o", s(&scores)]));

    let store = crv::Store::open(&store_path).unwrap();
    let scored = crv::kernel::score_store(
        &store,
        &crv::ScoreParams::default(),
        &crv::kernel::TierScheme::default(),
    )
    .unwrap();
    assert_eq!(summary["customers"], 3_000);
    assert_eq!(
        summary["total_crv"].as_f64().unwrap(),
        scored.totals.crv_sum()
    );
    for tier in crv::Tier::ALL {
        assert_eq!(
            summary["tiers"][tier.as_str()]["count"],
            scored.tiers.summary.get(tier).count
        );
    }

    let mut reader = csv::Reader::from_path(&scores).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["customer_id", "crv", "tier", "rank", "percentile"]
    );
    let mut rows = 0;
    for (row, record) in reader.records().enumerate() {
        let record = record.unwrap();
        assert_eq!(record[0].parse::<u64>().unwrap(), store.ids()[row]);
        assert_eq!(record[1].parse::<f32>().unwrap(), scored.crv[row]);
        assert_eq!(&record[2], scored.tiers.tier[row].as_str());
        assert_eq!(record[3].parse::<u32>().unwrap(), scored.tiers.rank[row]);
        rows += 1;
    }
    assert_eq!(rows, 3_000);
}

#[test]
fn score_accepts_an_infinite_horizon_and_quantile_tiers() {
    let (_work, store) = generated_store(500);
    let summary = json_summary(&crv(&[
        "score",
        s(&store),
        "--horizon",
        "inf",
        "--discount",
        "0.2",
        "--quantiles",
        "0.2,0.5",
        "--json",
    ]));
    assert_eq!(summary["horizon"], "inf");
    assert_eq!(summary["scheme"], "quantile");
}

#[test]
fn score_rejects_invalid_parameters_with_their_names() {
    let (work, store) = generated_store(100);
    for (args, fragment) in [
        (vec!["--discount=-0.1"], "invalid discount"),
        (vec!["--horizon", "0"], "horizon"),
        (vec!["--tier-cuts", "0.9,0.8"], "invalid tier-cuts"),
        (vec!["--tier-cuts", "0.8,1.5"], "invalid tier-cuts"),
        (vec!["--quantiles", "0.5"], "quantiles"),
    ] {
        let mut all = vec!["score", s(&store)];
        all.extend(args.iter().copied());
        all.extend(["-o", "never.csv"]);
        let output = crv(&all);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(
            stderr(&output).contains(fragment),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(!Path::new("never.csv").exists());
    assert_eq!(work.entries(), ["customers.crv", "customers.csv"]);
}

#[test]
fn select_is_optimal_feasible_and_writes_its_targets() {
    let (work, store_path) = generated_store(3_000);
    let targets = work.path("targets.csv");
    let summary = json_summary(&crv(&[
        "select",
        s(&store_path),
        "--budget",
        "500",
        "--where",
        "segment in (gold, silver, bronze) and tier != N",
        "--json",
        "-o",
        s(&targets),
    ]));
    for key in [
        "eligible",
        "selected",
        "total_crv",
        "total_cost",
        "budget_left",
        "upper_bound",
        "gap",
        "optimal",
        "time_ms",
    ] {
        assert!(summary.get(key).is_some(), "missing `{key}` in {summary}");
    }
    assert_eq!(summary["optimal"], true);
    assert!(summary["total_cost"].as_f64().unwrap() <= 500.0);
    let (bound, total_crv) = (
        summary["upper_bound"].as_f64().unwrap(),
        summary["total_crv"].as_f64().unwrap(),
    );
    // The certificate as computed: at least the objective, and within the optimality
    // tolerance of it since the answer claims to be optimal.
    assert!(bound >= total_crv * (1.0 - 1e-12), "{bound} < {total_crv}");
    let gap = summary["gap"].as_f64().unwrap();
    assert!(gap.abs() <= crv::select::OPTIMALITY_TOLERANCE, "gap {gap}");
    assert!((bound - total_crv) / bound <= crv::select::OPTIMALITY_TOLERANCE);
    assert!(summary["real_upper_bound"].as_f64().unwrap() >= total_crv * (1.0 - 1e-12));

    let store = crv::Store::open(&store_path).unwrap();
    let Some(crv::store::Column::Text(segment)) = store.column("segment") else {
        panic!("segment is text");
    };
    let mut reader = csv::Reader::from_path(&targets).unwrap();
    let (mut count, mut cost, mut value) = (0u64, 0.0f64, 0.0f64);
    for record in reader.records() {
        let record = record.unwrap();
        let row = store
            .row_of(crv::CustomerId(record[0].parse().unwrap()))
            .unwrap();
        assert_ne!(segment.value(row), Some("basic"), "filter ignored");
        assert_ne!(&record[3], "N");
        value += record[1].parse::<f32>().unwrap() as f64;
        cost += record[2].parse::<f64>().unwrap();
        count += 1;
    }
    assert_eq!(count, summary["selected"].as_u64().unwrap());
    assert!(cost <= 500.0 + 1e-6, "{cost}");
    let objective = summary["total_crv"].as_f64().unwrap();
    assert!((value - objective).abs() <= 1e-6 * objective.abs().max(1.0));
}

#[test]
fn select_never_spends_more_than_the_budget_when_costs_are_finer_than_the_scale() {
    let work = Workspace::new();
    let mut csv = String::from("customer_id,margin,retention,cost\n");
    let fine = [0.004, 1.005, 0.333, 2.675, 0.0049];
    for i in 1..=3000u32 {
        let margin = 5.0 + f64::from(i * 37 % 751) / 10.0;
        let retention = 0.5 + f64::from(i * 13 % 450) / 1000.0;
        let cost = fine[i as usize % fine.len()];
        csv.push_str(&format!("{i},{margin:.2},{retention:.4},{cost}\n"));
    }
    let input = work.file("fine.csv", csv.as_bytes());
    let store = work.path("fine.crv");
    let import = crv(&["import", s(&input), "-o", s(&store)]);
    assert!(import.status.success(), "{}", stderr(&import));
    for scale in ["1", "100", "0.01", "10000"] {
        let targets = work.path(&format!("t{scale}.csv"));
        let output = crv(&[
            "select",
            s(&store),
            "--budget",
            "100",
            "--resource-scale",
            scale,
            "-o",
            s(&targets),
            "--json",
        ]);
        let summary = json_summary(&output);
        let mut reader = csv::Reader::from_path(&targets).unwrap();
        let (mut real, mut count) = (0.0f64, 0u64);
        for record in reader.records() {
            // The cost as crv prints it (the shortest decimal of the stored f32): the cost
            // column's own units.
            real += record.unwrap()[2].parse::<f64>().unwrap();
            count += 1;
        }
        assert_eq!(count, summary["selected"].as_u64().unwrap());
        assert!(count > 0, "scale {scale}: nothing selected");
        assert!(real <= 100.0 + 1e-9, "scale {scale}: spent {real} of 100");
        let total_cost = summary["total_cost"].as_f64().unwrap();
        assert!((total_cost - real).abs() <= 1e-9, "{total_cost} != {real}");
        assert_eq!(summary["budget"].as_f64().unwrap(), 100.0);
        let (bound, total_crv) = (
            summary["real_upper_bound"].as_f64().unwrap(),
            summary["total_crv"].as_f64().unwrap(),
        );
        assert!(bound >= total_crv, "scale {scale}: {bound} < {total_crv}");
        let loss = summary["rounding_loss"].as_f64().unwrap();
        assert!((loss - (bound - total_crv)).abs() <= 1e-9 * bound, "{loss}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("rounding"), "{text}");
    }
}

#[test]
fn select_handles_zero_budget_huge_budget_and_empty_eligibility() {
    let (_work, store) = generated_store(1_000);
    let zero = json_summary(&crv(&["select", s(&store), "--budget", "0", "--json"]));
    assert_eq!(zero["selected"], 0);
    assert_eq!(zero["optimal"], true);

    let all = json_summary(&crv(&["select", s(&store), "--budget", "1e9", "--json"]));
    let scored = json_summary(&crv(&["score", s(&store), "--json"]));
    let positive = ["A", "B", "C"]
        .iter()
        .map(|t| scored["tiers"][t]["count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(all["selected"].as_u64().unwrap(), positive);
    assert_eq!(all["optimal"], true);

    let none = json_summary(&crv(&[
        "select",
        s(&store),
        "--budget",
        "100",
        "--where",
        "crv > 1e30",
        "--json",
    ]));
    assert_eq!(none["selected"], 0);
    assert_eq!(none["eligible"], 0);
}

#[test]
fn select_rejects_bad_budgets_filters_and_cost_columns() {
    let (_work, store) = generated_store(200);
    for (args, fragment) in [
        (vec!["--budget=-5"], "invalid budget"),
        (vec!["--budget", "NaN"], "invalid budget"),
        (vec!["--budget", "inf"], "invalid budget"),
        (
            vec!["--budget", "10", "--where", "segmnt = gold"],
            "at position 1: unknown column `segmnt`",
        ),
        (vec!["--budget", "10", "--cost", "segment"], "numeric"),
        (vec!["--budget", "10", "--cost", "nope"], "`nope`"),
        (vec!["--budget", "10", "--resource-scale", "0"], "scale"),
        (vec!["--budget", "10", "--time-limit=-1"], "time-limit"),
    ] {
        let mut all = vec!["select", s(&store)];
        all.extend(args.iter().copied());
        let output = crv(&all);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(
            stderr(&output).contains(fragment),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn serve_demo_generates_its_store_answers_and_exits_zero_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let work = Workspace::new();
    let data = work.path("demo-data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_crv"))
        .args([
            "serve",
            "--demo",
            "--data-dir",
            s(&data),
            "--addr",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(at) = line.find("addr=") {
            break line[at + 5..].trim().to_string();
        }
    };

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: crv\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("{\"status\":\"ok\"}"), "{response}");
    let demo_store = std::fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(crv::Store::open(&demo_store).unwrap().rows(), 1_000_000);

    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn serve_rejects_absurd_limits_before_opening_the_store() {
    for (flags, fragment) in [
        (["--max-running", "0"], "invalid max-running"),
        (["--max-body-bytes", "0"], "invalid max-body-bytes"),
        (["--header-timeout-ms", "0"], "invalid header-timeout-ms"),
        (["--heavy-nice", "20"], "invalid heavy-nice"),
    ] {
        let mut args = vec!["serve", "no-such-store.crv", "--addr", "127.0.0.1:0"];
        args.extend(flags);
        let output = crv(&args);
        assert!(!output.status.success(), "{flags:?} accepted");
        let message = stderr(&output);
        assert!(message.contains(fragment), "{flags:?}: {message}");
        assert!(!message.contains("no-such-store"), "{message}");
    }
}

/// The records of a results CSV without its `time_ms` column (the one that differs per run).
fn results_without_time(csv_bytes: &[u8]) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(csv_bytes);
    let headers = reader.headers().unwrap().clone();
    let time = headers.iter().position(|h| h == "time_ms").unwrap();
    let mut rows = vec![headers.iter().map(str::to_owned).collect::<Vec<_>>()];
    for record in reader.records() {
        let record = record.unwrap();
        rows.push(
            record
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != time)
                .map(|(_, field)| field.to_owned())
                .collect(),
        );
    }
    rows
}

#[test]
fn simulate_writes_results_frontier_and_plot_that_match_the_library() {
    let (work, store_path) = generated_store(3_000);
    let scenarios = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios.json");
    let (results, frontier, plot) = (
        work.path("results.csv"),
        work.path("frontier.csv"),
        work.path("frontier.svg"),
    );
    let summary = json_summary(&crv(&[
        "simulate",
        s(&store_path),
        "--scenarios",
        scenarios,
        "-o",
        s(&results),
        "--frontier",
        s(&frontier),
        "--plot",
        s(&plot),
        "--frontier-scenario",
        "retention offer",
        "--json",
    ]));
    assert_eq!(summary["scenarios"], 22);
    assert_eq!(summary["customers"], 3_000);
    assert_eq!(summary["frontier"]["scenario"], "retention offer");

    let store = crv::Store::open(&store_path).unwrap();
    let set =
        crv::simulate::ScenarioSet::parse(&std::fs::read_to_string(scenarios).unwrap(), scenarios)
            .unwrap();
    let library =
        crv::simulate::simulate(&store, &set, &crv::simulate::SimulateOptions::default()).unwrap();
    let mut expected = Vec::new();
    crv::simulate::write_results(&mut expected, &library.results).unwrap();
    let written = std::fs::read(&results).unwrap();
    assert_eq!(
        results_without_time(&written),
        results_without_time(&expected)
    );
    assert_eq!(results_without_time(&written).len(), 23);

    let frontier = std::fs::read_to_string(&frontier).unwrap();
    let mut lines = frontier.lines();
    assert_eq!(lines.next(), Some("budget,objective,spend,roi,optimal,gap"));
    assert_eq!(lines.count(), 50);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("knee"), "{svg}");
}

#[test]
fn simulate_prints_rows_without_output_and_names_bad_scenarios() {
    let (work, store_path) = generated_store(300);
    let good = work.file(
        "good.json",
        br#"{"scenarios": [{"name": "all", "retention_uplift": 0.05}]}"#,
    );
    let output = crv(&["simulate", s(&store_path), "--scenarios", s(&good)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("name,discount,horizon,"), "{stdout}");
    assert!(
        stdout.lines().nth(1).unwrap().starts_with("all,0.1,5,"),
        "{stdout}"
    );

    let before = work.entries();
    for (json, fragments) in [
        (
            &br#"{"scenarios": [{"name": "x", "horizon": "forever"}]}"#[..],
            &["bad.json", "scenario `x`, field `horizon`", "`forever`"][..],
        ),
        (
            br#"{"sweep": {"budget": [10, -1]}}"#,
            &["bad.json", "scenario `budget=-1`, field `budget`"],
        ),
        (
            br#"{"scenarios": [{"budgett": 1}]}"#,
            &["unknown field `budgett`"],
        ),
        (b"[1, 2]", &["bad.json", "expected a JSON object"]),
    ] {
        let bad = work.file("bad.json", json);
        let results = work.path("results.csv");
        let output = crv(&[
            "simulate",
            s(&store_path),
            "--scenarios",
            s(&bad),
            "-o",
            s(&results),
        ]);
        assert!(!output.status.success());
        for fragment in fragments {
            assert!(stderr(&output).contains(fragment), "{}", stderr(&output));
        }
        assert!(!results.exists(), "results written despite the error");
    }
    let mut after = work.entries();
    after.retain(|name| name != "bad.json");
    assert_eq!(after, before);
}
