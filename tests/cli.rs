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
