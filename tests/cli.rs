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
        b"customer_id,margin\n1,2\n ,3\n",
        &["line 3", "column `customer_id`", "empty customer_id"],
    );
    // Text ids (any id that is not a whole number makes them text) are unique as written.
    assert_import_fails(
        b"customer_id,margin\n-1,2\nC-7,3\n-1,4\n",
        &[
            "line 4",
            "column `customer_id`",
            "duplicate customer_id -1, first seen on line 2",
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

    let store = std::sync::Arc::new(crv::Store::open(&store_path).unwrap());
    let scored = crv::Table::score(
        std::sync::Arc::clone(&store),
        crv::ScoreParams::default(),
        crv::kernel::TierScheme::default(),
    )
    .unwrap();
    assert_eq!(summary["customers"], 3_000);
    assert_eq!(
        summary["total_crv"].as_f64().unwrap(),
        scored.totals().crv_sum()
    );
    for tier in crv::Tier::ALL {
        assert_eq!(
            summary["tiers"][tier.as_str()]["count"],
            scored.tiers().summary.get(tier).count
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
        assert_eq!(record[1].parse::<f32>().unwrap(), scored.crv()[row]);
        assert_eq!(&record[2], scored.tiers().tier[row].as_str());
        assert_eq!(record[3].parse::<u32>().unwrap(), scored.tiers().rank[row]);
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
        let never = work.path("never.csv");
        let mut all = vec!["score", s(&store)];
        all.extend(args.iter().copied());
        all.extend(["-o", s(&never)]);
        let output = crv(&all);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(
            stderr(&output).contains(fragment),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            !never.exists(),
            "{args:?}: output written despite the error"
        );
    }
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
        (["--io-threads", "0"], "invalid io-threads"),
        (["--max-waiting", "18446744073709551615"], "at most 65536"),
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
    let table = crv::Table::score(
        std::sync::Arc::new(store),
        crv::ScoreParams::default(),
        crv::kernel::TierScheme::default(),
    )
    .unwrap();
    let set = crv::campaign::simulate::ScenarioSet::parse(
        &std::fs::read_to_string(scenarios).unwrap(),
        scenarios,
    )
    .unwrap();
    let library = crv::campaign::simulate::simulate(
        &table,
        &set,
        &crv::campaign::simulate::SimulateOptions::default(),
    )
    .unwrap();
    let mut expected = Vec::new();
    crv::campaign::simulate::write_results(&mut expected, &library.results).unwrap();
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

/// Runs `crv` with `args`, expects it to fail cleanly (an error naming `fragment`, not a panic)
/// and to leave no `leftover` file behind.
fn assert_refused(args: &[&str], fragment: &str) {
    let output = crv(args);
    let message = stderr(&output);
    assert!(!output.status.success(), "{args:?} accepted: {message}");
    assert!(
        !message.contains("panicked"),
        "{args:?} panicked: {message}"
    );
    assert!(
        message.contains(fragment),
        "{args:?}: `{fragment}` not in {message}"
    );
}

#[test]
fn absurd_time_limits_frontier_points_and_customer_counts_are_refused_naming_the_cap() {
    let (work, store) = generated_store(200);
    let store = s(&store);
    for limit in ["1e20", "86401", "NaN", "-1", "inf"] {
        let flag = format!("--time-limit={limit}");
        assert_refused(&["select", store, "--budget", "100", &flag], "0 to 86400");
    }
    let scenarios = work.file("sc.json", br#"{"scenarios": [{"budget": 50}]}"#);
    let (results, frontier) = (work.path("r.csv"), work.path("f.csv"));
    let simulate = [
        "simulate",
        store,
        "--scenarios",
        s(&scenarios),
        "-o",
        s(&results),
    ];
    for points in ["4294967296", "1001", "1"] {
        let mut args = simulate.to_vec();
        args.extend(["--frontier", s(&frontier), "--frontier-points", points]);
        assert_refused(&args, "from 2 to 1000 points");
    }
    let mut args = simulate.to_vec();
    args.push("--time-limit=1e300");
    assert_refused(&args, "0 to 86400");
    assert!(!results.exists() && !frontier.exists(), "output written");
    // The largest values allowed still work.
    let mut args = simulate.to_vec();
    args.extend(["--frontier", s(&frontier), "--frontier-points", "1000"]);
    args.push("--time-limit=86400");
    let output = crv(&args);
    assert!(output.status.success(), "{}", stderr(&output));

    let csv = work.path("gen.csv");
    assert_refused(
        &["gen", "--customers", "1000000001", "-o", s(&csv)],
        "at most 1000000000",
    );
    assert!(!csv.exists(), "gen wrote a file");
}

#[test]
fn filters_over_their_caps_are_refused() {
    let (_work, store) = generated_store(200);
    let long = format!("margin > {}", "1".repeat(70_000));
    assert_refused(
        &["select", s(&store), "--budget", "10", "--where", &long],
        "at most 65536",
    );
    let values = vec!["gold"; 10_001].join(", ");
    let listed = format!("segment in ({values})");
    assert_refused(
        &["select", s(&store), "--budget", "10", "--where", &listed],
        "10001 values, at most 10000",
    );
    // Repeats count once when evaluated: the longest list allowed runs.
    let values = vec!["gold"; 10_000].join(", ");
    let listed = format!("segment in ({values})");
    let output = crv(&["select", s(&store), "--budget", "10", "--where", &listed]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn an_infinite_crv_fails_score_and_select_naming_the_customer() {
    let work = Workspace::new();
    let csv = work.file(
        "one.csv",
        b"customer_id,margin,retention,cost\n1,50,1,1\n2,40,0.8,1\n",
    );
    let store = work.path("one.crv");
    assert!(crv(&["import", s(&csv), "-o", s(&store)]).status.success());
    let targets = work.path("targets.csv");
    for command in [
        vec!["select", s(&store), "--budget", "10", "--json"],
        vec!["select", s(&store), "--budget", "10", "-o", s(&targets)],
        vec!["score", s(&store), "--json"],
        vec!["score", s(&store), "-o", s(&targets)],
    ] {
        let mut args = command.clone();
        args.extend(["--discount", "0", "--horizon", "inf"]);
        let output = crv(&args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{command:?}: {}",
            stderr(&output)
        );
        for fragment in ["customer 1 ", "retention 1", "discount 0", "horizon inf"] {
            assert!(stderr(&output).contains(fragment), "{}", stderr(&output));
        }
        assert!(!targets.exists(), "{command:?} wrote its output");
    }
    let output = crv(&[
        "select",
        s(&store),
        "--budget",
        "10",
        "--discount",
        "0",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json_summary(&output)["selected"], 2);
}

#[test]
fn verify_flag_refuses_a_flipped_data_byte_that_plain_open_does_not_read() {
    let (work, store) = generated_store(200);
    let mut bytes = std::fs::read(&store).unwrap();
    let preamble = crv::store::format::decode_preamble(&bytes).unwrap();
    let header = crv::store::format::decode_header(
        &bytes[crv::store::format::PREAMBLE_BYTES..][..preamble.header_len],
    )
    .unwrap();
    let margin = header.columns.iter().find(|c| c.name == "margin").unwrap();
    bytes[margin.data.offset as usize + 41] ^= 0x01;
    let damaged = work.file("damaged.crv", &bytes);
    let scenarios = work.file("s.json", br#"{"scenarios": [{"budget": 10}]}"#);
    let commands: [Vec<&str>; 4] = [
        vec!["score", s(&damaged), "--json"],
        vec!["select", s(&damaged), "--budget", "10", "--json"],
        vec!["simulate", s(&damaged), "--scenarios", s(&scenarios)],
        vec!["serve", s(&damaged), "--addr", "127.0.0.1:0"],
    ];
    for command in commands {
        let mut verified = command.clone();
        verified.push("--verify");
        let output = crv(&verified);
        assert_eq!(output.status.code(), Some(1), "{verified:?}");
        let message = stderr(&output);
        assert!(message.contains("damaged.crv"), "{message}");
        assert!(message.contains("column `margin`: checksum"), "{message}");
        if command[0] != "serve" {
            // Without the flag the flipped byte is read as a (still finite) margin.
            assert!(crv(&command).status.success(), "{command:?}");
        }
    }
}

/// The bad-input matrix: every row is a command line a new user might type, the exit code it
/// must give (2: clap's usage errors, 1: crv's own), a fragment its message must hold, and no
/// panic anywhere.
#[test]
fn bad_input_matrix_gives_precise_errors_and_never_panics() {
    let (work, store) = generated_store(300);
    let csv = work.path("customers.csv");
    let other_store = work.path("other.crv");
    std::fs::copy(&store, &other_store).unwrap();
    let scenarios = work.file("scenarios.json", br#"{"scenarios": [{"name": "a"}]}"#);
    let dir = work.dir.path();
    let missing = work.path("missing.crv");
    let out = work.path("out.csv");
    let long_where = format!(
        "tier in ({})",
        vec!["A"; crv::limits::MAX_FILTER_VALUES].join(", ")
    );
    let (store, csv, other_store, scenarios, dir, missing, out) = (
        s(&store),
        s(&csv),
        s(&other_store),
        s(&scenarios),
        s(dir),
        s(&missing),
        s(&out),
    );
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // Files that are not what the command expects.
        (vec!["info", missing], 1, "No such file"),
        (vec!["info", dir], 1, "is a directory, not a store file"),
        (
            vec!["score", csv],
            1,
            "not a crv store; import it first: crv import",
        ),
        (vec!["select", csv, "--budget", "1"], 1, "crv import"),
        (
            vec!["simulate", store, "--scenarios", missing],
            1,
            "No such file",
        ),
        (vec!["import", missing, "-o", out], 1, "No such file"),
        // A directory is read as a dataset's part files: the store inside it is none of them.
        (
            vec!["import", dir, "-o", out],
            1,
            "not a Parquet or Arrow IPC file",
        ),
        // Outputs that would destroy an input or a store.
        (
            vec!["score", store, "-o", store],
            1,
            "is this command's input",
        ),
        (
            vec!["score", store, "-o", other_store],
            1,
            "is a crv store file",
        ),
        (
            vec!["select", store, "--budget", "1", "-o", other_store],
            1,
            "--force",
        ),
        (
            vec!["simulate", store, "--scenarios", scenarios, "-o", scenarios],
            1,
            "--force",
        ),
        (
            vec!["gen", "--customers", "5", "-o", store],
            1,
            "is a crv store file",
        ),
        (vec!["import", csv, "-o", csv], 1, "an input being imported"),
        (vec!["score", store, "-o", dir], 1, "is a directory"),
        // Numbers: bad, NaN, infinite, negative, absurd.
        (
            vec!["gen", "--customers", "many", "-o", out],
            2,
            "not a whole number",
        ),
        (
            vec!["gen", "--customers", "1.5", "-o", out],
            2,
            "not a whole number",
        ),
        (
            vec!["gen", "--customers", "1e30", "-o", out],
            2,
            "is more than",
        ),
        (
            vec!["gen", "--customers", "1e15", "-o", out],
            1,
            "customers",
        ),
        (
            vec!["score", store, "--horizon", "1e12"],
            2,
            "largest horizon, 4294967295",
        ),
        (
            vec!["score", store, "--horizon", "0"],
            2,
            "from 1 to 4294967295",
        ),
        (
            vec!["score", store, "--horizon=-3"],
            2,
            "from 1 to 4294967295",
        ),
        (
            vec!["score", store, "--discount", "NaN"],
            1,
            "invalid discount",
        ),
        (
            vec!["score", store, "--discount", "inf"],
            1,
            "invalid discount",
        ),
        (
            vec!["score", store, "--discount=-0.5"],
            1,
            "invalid discount",
        ),
        (vec!["score", store, "--discount", "ten"], 2, "discount"),
        (
            vec!["score", store, "--tier-cuts", "NaN,0.9"],
            1,
            "tier-cuts",
        ),
        (
            vec!["select", store, "--budget", "NaN"],
            1,
            "invalid budget",
        ),
        (vec!["select", store, "--budget=-inf"], 1, "invalid budget"),
        (
            vec!["select", store, "--budget", "1", "--time-limit", "1e20"],
            1,
            "time-limit",
        ),
        (
            vec!["select", store, "--budget", "1", "--time-limit", "NaN"],
            1,
            "time-limit",
        ),
        (
            vec!["select", store, "--budget", "1", "--resource-scale", "inf"],
            1,
            "scale",
        ),
        // Columns and --where.
        (
            vec!["select", store, "--budget", "1", "--cost", "nope"],
            1,
            "`nope`",
        ),
        (
            vec!["select", store, "--budget", "1", "--where", "segmnt = gold"],
            1,
            "at position 1: unknown column `segmnt`",
        ),
        (
            vec![
                "select",
                store,
                "--budget",
                "1",
                "--where",
                "margin > 1 crv > 2",
            ],
            1,
            "at position 12: expected `and` or `or`",
        ),
        (
            vec![
                "select",
                store,
                "--budget",
                "1",
                "--where",
                "(margin > 1 or crv > 2",
            ],
            1,
            "at position 23: expected `)` to close the `(` at position 1",
        ),
        (
            vec![
                "select",
                store,
                "--budget",
                "1",
                "--where",
                "tier in (A, X)",
            ],
            1,
            "at position 13: `X` is not a tier",
        ),
        (
            vec!["select", store, "--budget", "1", "--where", &long_where],
            0,
            "",
        ),
        (vec!["no-such-command"], 2, "unrecognized subcommand"),
    ];
    for (args, code, fragment) in cases {
        let output = crv(&args);
        let message = stderr(&output);
        let shown: Vec<&str> = args.iter().map(|a| &a[..a.len().min(40)]).collect();
        assert_eq!(output.status.code(), Some(code), "{shown:?}: {message}");
        assert!(
            message.contains(fragment),
            "{shown:?}: `{fragment}` not in {message}"
        );
        assert!(!message.contains("panicked"), "{shown:?}: {message}");
        assert!(
            message.len() < 2_000,
            "{shown:?}: a long message: {message}"
        );
    }
    assert!(
        !Path::new(out).exists(),
        "a failed command wrote its output"
    );
    // Nothing above replaced a store or the CSV.
    for path in [store, other_store] {
        assert!(crv(&["info", path]).status.success());
    }
    assert!(
        std::fs::read_to_string(csv)
            .unwrap()
            .starts_with("customer_id,")
    );
}

#[test]
fn offending_cells_are_quoted_escaped_and_cut_short() {
    let huge = "9".repeat(1_000_000) + "x";
    assert_import_fails(
        format!("customer_id,margin\n1,{huge}\n").as_bytes(),
        &[
            "line 2",
            "column `margin`",
            "…(1000001 bytes)` is not a number",
        ],
    );
    let work = Workspace::new();
    let input = work.file(
        "input.csv",
        b"customer_id,margin\n1,\x1b[2J\x1b]0;owned\x07\n",
    );
    let output = crv(&["import", s(&input), "-o", s(&work.path("out.crv"))]);
    let message = stderr(&output);
    assert!(!output.status.success());
    assert!(
        !message.contains('\x1b') && !message.contains('\x07'),
        "{message:?}"
    );
    assert!(
        message.contains("`\\u{1b}[2J\\u{1b}]0;owned\\u{7}`"),
        "{message}"
    );
    assert!(message.len() < 300, "{message}");
}

#[test]
fn outputs_keep_links_pipes_devices_and_the_umask() {
    let (work, store) = generated_store(200);
    let store = s(&store);
    // A symlink (dangling at first) stays a link; its target gets the rows.
    let link = work.path("link.csv");
    std::os::unix::fs::symlink("real.csv", &link).unwrap();
    assert!(crv(&["score", store, "-o", s(&link)]).status.success());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let real = std::fs::read_to_string(work.path("real.csv")).unwrap();
    assert_eq!(real.lines().count(), 201);
    // A new file gets the permissions any new file gets under the umask (crv inherits ours).
    let plain = work.path("plain.csv");
    assert!(crv(&["score", store, "-o", s(&plain)]).status.success());
    let reference = work.file("reference.txt", b"x");
    let mode = |path: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&plain), mode(&reference));
    // A named pipe stays a pipe and carries the rows.
    let pipe = work.path("pipe.csv");
    assert!(
        Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read_to_string(pipe).unwrap())
    };
    assert!(crv(&["score", store, "-o", s(&pipe)]).status.success());
    assert_eq!(reader.join().unwrap(), real);
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::metadata(&pipe).unwrap().file_type()
    ));
    // /dev/null is written (a write that must succeed) and stays a device.
    assert!(
        crv(&["select", store, "--budget", "100", "-o", "/dev/null"])
            .status
            .success()
    );
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &std::fs::metadata("/dev/null").unwrap().file_type()
    ));
    // `-o -`: the rows on stdout, the summary on stderr.
    let output = crv(&["score", store, "-o", "-"]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), real);
    assert!(stderr(&output).contains("scored 200 customers"));
    // The store itself is refused as an output, and kept; --force is the way to insist.
    let message = stderr(&crv(&["score", store, "-o", store]));
    assert!(message.contains("--force"), "{message}");
    assert!(crv(&["info", store, "--verify"]).status.success());
}

#[test]
fn summaries_count_in_words_keep_numbers_short_and_warn_about_percentages() {
    let work = Workspace::new();
    let csv = work.file(
        "one.csv",
        b"customer_id,margin,retention,cost\n7,50,0.8,1\n",
    );
    let store = work.path("one.crv");
    let imported = crv(&["import", s(&csv), "-o", s(&store)]);
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported 1 customer, 4 columns"));
    let scored = crv(&["score", s(&store), "--json"]);
    let stdout = String::from_utf8_lossy(&scored.stdout).into_owned();
    assert!(stdout.contains("scored 1 customer "), "{stdout}");
    assert_eq!(json_summary(&scored)["horizon"], 5);
    let selected = crv(&["select", s(&store), "--budget", "1e16"]);
    let stdout = String::from_utf8_lossy(&selected.stdout).into_owned();
    assert!(selected.status.success(), "{}", stderr(&selected));
    assert!(stdout.contains("of budget 1.000e16"), "{stdout}");
    assert!(stdout.lines().all(|line| line.len() < 200), "{stdout}");
    let warned = crv(&["score", s(&store), "--discount", "100"]);
    assert!(warned.status.success());
    assert!(
        stderr(&warned).contains("--discount 100 is 10,000% per period"),
        "{}",
        stderr(&warned)
    );
    let generated = crv(&["gen", "--customers", "1e3", "-o", s(&work.path("g.csv"))]);
    assert!(
        stderr(&generated).contains("wrote 1000 customers"),
        "{}",
        stderr(&generated)
    );
}

#[test]
fn help_shows_an_example_the_where_grammar_and_the_import_columns() {
    for command in ["gen", "import", "info", "score", "select", "simulate"] {
        let help = String::from_utf8_lossy(&crv(&[command, "--help"]).stdout).into_owned();
        assert!(help.contains("Example: crv "), "{command}: {help}");
    }
    let select = String::from_utf8_lossy(&crv(&["select", "--help"]).stdout).into_owned();
    assert!(
        select.contains("--where grammar") && select.contains("`not` binds tightest"),
        "{select}"
    );
    let import = String::from_utf8_lossy(&crv(&["import", "--help"]).stdout).into_owned();
    assert!(
        import.contains("customer_id") && import.contains("retention"),
        "{import}"
    );
    let top = String::from_utf8_lossy(&crv(&["--help"]).stdout).into_owned();
    assert!(top.contains("docs/model.md"), "{top}");
    assert!(!top.contains("DESIGN.md"), "{top}");
}

/// The customer ids in column 0 of a CSV file, sorted.
fn csv_ids(path: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|record| record.unwrap()[0].parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn optimise_with_one_budget_and_one_offer_is_the_select_knapsack() {
    let (work, store) = generated_store(3_000);
    let campaign = work.file(
        "campaign.json",
        br#"{"resources": {"budget": 500}, "offers": [{"name": "retain", "value": "crv", "uses": {"budget": "cost"}, "eligible": "segment != basic"}]}"#,
    );
    let (targets, assignment) = (work.path("targets.csv"), work.path("assignment.csv"));
    let select = json_summary(&crv(&[
        "select",
        s(&store),
        "--budget",
        "500",
        "--where",
        "segment != basic",
        "--json",
        "-o",
        s(&targets),
    ]));
    let plan = json_summary(&crv(&[
        "optimise",
        s(&store),
        "--campaign",
        s(&campaign),
        "--json",
        "-o",
        s(&assignment),
    ]));
    assert_eq!(plan["optimal"], true, "{plan}");
    // The knapsack's answer: no pricing pass of the general method ran.
    assert_eq!(plan["passes"], 0, "{plan}");
    assert_eq!(select["optimal"], true, "{select}");
    let (objective, total_crv) = (
        plan["objective"].as_f64().unwrap(),
        select["total_crv"].as_f64().unwrap(),
    );
    assert!(
        (objective - total_crv).abs() <= 1e-9 * total_crv.abs(),
        "{objective} against {total_crv}"
    );
    assert!(plan["gap"].as_f64().unwrap().abs() <= crv::select::OPTIMALITY_TOLERANCE);
    assert_eq!(plan["assigned"], select["selected"]);
    assert_eq!(csv_ids(&assignment), csv_ids(&targets));
    let used = plan["resources"]["budget"]["used"].as_f64().unwrap();
    assert!(used <= 500.0 + 1e-6, "{used}");
}

/// A campaign of two offers over two resources: calls bind, the budget is money (ample: with
/// one binding limit the plans here are proven optimal).
const FRONTIER_CAMPAIGN: &str = r#"{"resources": {"budget": 100000, "calls": 30},
    "offers": [{"name": "call", "value": "0.2 * crv", "eligible": "segment != basic",
                "uses": {"budget": "cost", "calls": 1}},
               {"name": "email", "value": "0.02 * crv", "uses": {"budget": 0.1}}]}"#;

#[test]
fn a_campaign_frontier_along_one_resource_is_crv_optimise_at_each_limit() {
    let (work, store) = generated_store(400);
    let campaign = work.file("campaign.json", FRONTIER_CAMPAIGN.as_bytes());
    let (frontier, plot) = (work.path("frontier.csv"), work.path("frontier.svg"));
    let summary = json_summary(&crv(&[
        "simulate",
        s(&store),
        "--campaign",
        s(&campaign),
        "--frontier-resource",
        "calls",
        "--frontier-points",
        "7",
        "--frontier-spend",
        "budget",
        "--frontier",
        s(&frontier),
        "--plot",
        s(&plot),
        "--json",
    ]));
    assert_eq!(
        (summary["points"].as_u64(), summary["limit"].as_f64()),
        (Some(7), Some(30.0))
    );
    let points: Vec<csv::StringRecord> = csv::Reader::from_path(&frontier)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(points.len(), 7);
    let number =
        |record: &csv::StringRecord, column: usize| -> f64 { record[column].parse().unwrap() };
    // limit,feasible,objective,upper_bound,gap,optimal,shadow_price,used,spend,roi
    for pair in points.windows(2) {
        assert!(number(&pair[0], 0) < number(&pair[1], 0));
        // Loosening the limit never lowers the objective (every plan here is optimal).
        assert!(number(&pair[1], 2) >= number(&pair[0], 2), "{pair:?}");
        // The shadow price of calls falls as calls get plentiful (up to the dual's precision).
        assert!(
            number(&pair[1], 6) <= number(&pair[0], 6) * (1.0 + 1e-6) + 1e-9,
            "{pair:?}"
        );
    }
    for point in &points {
        assert_eq!((&point[1], &point[5]), ("true", "true"), "{point:?}");
        assert!(number(point, 7) <= number(point, 0) + 1e-9, "{point:?}");
        let (objective, spend) = (number(point, 2), number(point, 8));
        assert_eq!(number(point, 9), (objective - spend) / spend, "{point:?}");
    }
    // The first limit is 0 calls; the last is where calls no longer bind.
    assert_eq!(number(&points[0], 0), 0.0);
    assert!(number(&points[6], 6).abs() <= 1e-9, "{:?}", points[6]);
    // Each point is `crv optimise` with that limit written in the definition.
    for point in [&points[0], &points[3], &points[6]] {
        let mut definition: serde_json::Value = serde_json::from_str(FRONTIER_CAMPAIGN).unwrap();
        definition["resources"]["calls"] = serde_json::json!(number(point, 0));
        let at_limit = work.file("at_limit.json", definition.to_string().as_bytes());
        let plan = json_summary(&crv(&[
            "optimise",
            s(&store),
            "--campaign",
            s(&at_limit),
            "--json",
        ]));
        assert_eq!(
            plan["objective"].as_f64(),
            Some(number(point, 2)),
            "{point:?}"
        );
        assert_eq!(
            plan["upper_bound"].as_f64(),
            Some(number(point, 3)),
            "{point:?}"
        );
        let calls = &plan["resources"]["calls"];
        assert_eq!(
            calls["shadow_price"].as_f64(),
            Some(number(point, 6)),
            "{point:?}"
        );
        assert_eq!(calls["used"].as_f64(), Some(number(point, 7)), "{point:?}");
        assert_eq!(
            plan["resources"]["budget"]["used"].as_f64(),
            Some(number(point, 8))
        );
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.contains("limit of calls") && svg.contains("30 calls"),
        "{svg}"
    );
    assert_eq!(svg.matches("<polyline").count(), 2);

    // Unknown resources are errors naming the flag and the campaign's resources.
    for (flag, args) in [
        (
            "--frontier-resource",
            [
                "--frontier-resource",
                "minutes",
                "--frontier-spend",
                "budget",
            ],
        ),
        (
            "--frontier-spend",
            ["--frontier-resource", "calls", "--frontier-spend", "money"],
        ),
    ] {
        let output = crv(&[
            &["simulate", s(&store), "--campaign", s(&campaign)][..],
            &args[..],
        ]
        .concat());
        assert!(!output.status.success());
        let message = stderr(&output);
        let name = flag.trim_start_matches("--");
        assert!(
            message.contains(name) && message.contains("(resources: budget, calls)"),
            "{message}"
        );
    }
    // Given limits, and the flags that do not go together.
    let given = crv(&[
        "simulate",
        s(&store),
        "--campaign",
        s(&campaign),
        "--frontier-resource",
        "calls",
        "--frontier-limits",
        "20,5",
    ]);
    assert!(given.status.success(), "{}", stderr(&given));
    let rows = String::from_utf8(given.stdout).unwrap();
    let limits: Vec<f64> = rows
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(limits, [5.0, 20.0]);
    let both = crv(&[
        "simulate",
        s(&store),
        "--campaign",
        s(&campaign),
        "--scenarios",
        s(&campaign),
        "--frontier-resource",
        "calls",
    ]);
    assert!(!both.status.success());
    assert!(stderr(&both).contains("--scenarios"), "{}", stderr(&both));
}
