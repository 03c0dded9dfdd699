//! `crv rfm`: the CDNOW sample against its published summary and against lifetimes'
//! calibration/holdout split, unsorted input, every error's file/line/column, and random small
//! logs against a plain in-memory reference (every purchase in a BTreeMap).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crv::rfm::{Moment, Options, Period, RfmRow, Summary, summarize};
use proptest::prelude::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn crv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crv"))
        .args(args)
        .output()
        .expect("crv runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A CSV file as rows of named cells, by the first column.
fn read_csv(path: &Path) -> BTreeMap<u64, BTreeMap<String, f64>> {
    let content = std::fs::read_to_string(path).unwrap();
    let mut lines = content.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            let row = header[1..]
                .iter()
                .zip(&cells[1..])
                .map(|(name, cell)| (name.to_string(), cell.parse::<f64>().unwrap()))
                .collect();
            (cells[0].parse().unwrap(), row)
        })
        .collect()
}

/// Checks every expected cell within `tolerance` (frequencies exactly).
fn assert_matches(
    got: &BTreeMap<u64, BTreeMap<String, f64>>,
    expected: &BTreeMap<u64, BTreeMap<String, f64>>,
    tolerance: f64,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, row) in expected {
        for (name, want) in row {
            let have = got[id][name];
            let tolerance = if name.starts_with("frequency") {
                0.0
            } else {
                tolerance
            };
            assert!(
                (have - want).abs() <= tolerance,
                "customer {id}, {name}: {have} != {want}"
            );
        }
    }
}

const CDNOW_FLAGS: &[&str] = &[
    "--period",
    "day",
    "--time-unit",
    "week",
    "--calibration-end",
    "1997-09-30",
    "--observation-end",
    "1998-06-30",
];

fn run_cdnow(log: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("rfm.csv");
    let mut args = vec!["rfm", log.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(CDNOW_FLAGS);
    let output = crv(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    out
}

#[test]
fn cdnow_reproduces_the_published_summary_and_lifetimes_holdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cdnow(&data("cdnow_transactions.csv"), dir.path());
    let got = read_csv(&out);
    assert_eq!(got.len(), 2357);
    // The published summary has two decimals: recency, age and monetary value to them.
    assert_matches(&got, &read_csv(&data("cdnow_summary.csv")), 0.005 + 1e-9);
    // lifetimes' calibration_and_holdout_data, written with six decimals.
    assert_matches(&got, &read_csv(&data("cdnow_holdout.csv")), 1e-6);
    // The output imports as it is.
    let store = dir.path().join("rfm.crv");
    let import = crv(&[
        "import",
        out.to_str().unwrap(),
        "-o",
        store.to_str().unwrap(),
        "--json",
    ]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    assert!(text(&import.stdout).contains("\"rows\":2357"));
}

#[test]
fn unsorted_cdnow_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sorted = std::fs::read(run_cdnow(&data("cdnow_transactions.csv"), dir.path())).unwrap();
    let log = std::fs::read_to_string(data("cdnow_transactions.csv")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    // A fixed shuffle of the purchases (the header stays first).
    let mut state = 7u64;
    for i in (2..lines.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = 1 + (state >> 33) as usize % i;
        lines.swap(i, j);
    }
    assert_ne!(lines.join("\n"), log.trim_end());
    let shuffled = dir.path().join("shuffled.csv");
    std::fs::write(&shuffled, lines.join("\r\n")).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let unsorted = std::fs::read(run_cdnow(&shuffled, &other)).unwrap();
    assert!(sorted == unsorted, "shuffled log gives other rows");
}

#[test]
fn customers_first_seen_after_the_calibration_end_are_left_out_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.csv");
    std::fs::write(
        &log,
        "customer_id,date,amount\n1,2020-01-01,5\n2,2020-01-03,7\n1,2020-01-04,3\n",
    )
    .unwrap();
    let out = dir.path().join("rfm.csv");
    let output = crv(&[
        "rfm",
        log.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--calibration-end",
        "2020-01-02",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("left out 1 customer whose first purchase is after"),
        "{}",
        text(&output.stderr)
    );
    let json = text(&output.stdout);
    let last = json.lines().last().unwrap();
    assert!(
        last.contains("\"excluded\":1") && last.contains("\"customers\":1"),
        "{last}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "customer_id,frequency,recency,age,monetary_value,frequency_holdout,\
         monetary_value_holdout,duration_holdout\n1,0,0,1,0,1,3,2\n"
    );
}

/// Runs `crv rfm` on `log` with `flags`; expects failure, no output file, and returns stderr.
fn rfm_error(log: &str, flags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, log).unwrap();
    let out = dir.path().join("rfm.csv");
    let mut args = vec!["rfm", path.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(flags);
    let output = crv(&args);
    assert!(!output.status.success(), "{log:?} was accepted");
    assert!(!out.exists(), "an output was written for {log:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{}: ", path.display())),
        "{stderr}"
    );
    stderr
}

#[test]
fn bad_lines_name_file_line_and_column() {
    let head = "customer_id,date,amount\n1,1997-01-01,1\n\n";
    for (line, column, message) in [
        ("2,1997-02-30,1", "date", "no such day"),
        ("2,01/02/1997,1", "date", "not an ISO 8601 date"),
        ("2,1997-01-02,abc", "amount", "not a number"),
        ("2,1997-01-02,-3", "amount", "negative amount"),
        ("2,1997-01-02,inf", "amount", "not a finite amount"),
        ("2,1997-01-02,NaN", "amount", "not a finite amount"),
        ("2,1997-01-02,", "amount", "missing amount"),
        (",1997-01-02,1", "customer_id", "missing customer id"),
        ("x7,1997-01-02,1", "customer_id", "not a customer id"),
        ("2,1997-01-02", "amount", "missing"),
    ] {
        let stderr = rfm_error(&format!("{head}{line}\n5,1997-01-03,1\n"), &[]);
        assert!(
            stderr.contains(&format!(": line 4, column `{column}`: ")) && stderr.contains(message),
            "{line}: {stderr}"
        );
    }
}

#[test]
fn a_missing_named_column_and_an_empty_log_are_refused() {
    let stderr = rfm_error("customer_id,day,amount\n1,1997-01-01,1\n", &[]);
    assert!(
        stderr.contains("line 1, column `date`: no such column"),
        "{stderr}"
    );
    let stderr = rfm_error(
        "customer_id,date,amount\n1,1997-01-01,1\n",
        &["--amount-col", "value"],
    );
    assert!(stderr.contains("line 1, column `value`"), "{stderr}");
    assert!(rfm_error("", &[]).contains("empty log: no header"));
    assert!(rfm_error("customer_id,date,amount\n\n", &[]).contains("empty log: no purchases"));
}

#[test]
fn a_purchase_after_the_observation_end_is_an_error_or_dropped_and_counted() {
    let log = "customer_id,date,amount\n1,1997-01-01,1\n1,1997-03-01T00:00:00Z,2\n\
               2,1997-02-28T23:59:59,3\n";
    let stderr = rfm_error(log, &["--observation-end", "1997-02-28"]);
    assert!(
        stderr.contains("line 3, column `date`: after the observation end"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, log).unwrap();
    let out = dir.path().join("rfm.csv");
    let output = crv(&[
        "rfm",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--observation-end",
        "1997-02-28",
        "--drop-after-end",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("dropped 1 purchase after the observation end"));
    assert!(text(&output.stdout).contains("\"dropped\":1"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "customer_id,frequency,recency,age,monetary_value\n1,0,0,58,0\n2,0,0,0,0\n"
    );
}

#[test]
fn an_error_in_a_later_block_counts_the_lines_before_it() {
    // More than one 16 MiB read block of lines, then a bad one.
    let mut log = Vec::new();
    crv::synthetic::purchases::write_purchases_csv(&mut log, 1_000_000, 1000, 3).unwrap();
    assert!(log.len() > 17 << 20);
    log.extend_from_slice(b"1,1999-12-31,oops\n");
    let error = summarize(&log[..], "big.csv", None, &Options::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "big.csv: line 1000002, column `amount`: `oops`: not a number"
    );
}

/// One random purchase: customer, day (from 1997-01-01), seconds into the day, cents.
type Purchase = (u64, i64, i64, u64);

/// The log's text, with dates or timestamps.
fn log_text(purchases: &[Purchase]) -> String {
    let mut text = String::from("amount,customer_id,date\n");
    for &(customer, day, second, cents) in purchases {
        let (y, m, d) = crv::rfm::date::civil_from_days(9862 + day);
        let when = if second == 0 {
            format!("{y:04}-{m:02}-{d:02}")
        } else {
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
                second / 3600,
                second / 60 % 60,
                second % 60
            )
        };
        text.push_str(&format!(
            "{}.{:02},{customer},{when}\n",
            cents / 100,
            cents % 100
        ));
    }
    text
}

/// The plain reference: every purchase in a map by customer and period.
fn reference(
    purchases: &[Purchase],
    period: Period,
    unit: Period,
    calibration_day: Option<i64>,
) -> (Vec<RfmRow>, u64) {
    type Periods = BTreeMap<i64, f64>;
    let mut customers: BTreeMap<u64, (Periods, Periods)> = BTreeMap::new();
    let end_day = 9862 + purchases.iter().map(|p| p.1).max().unwrap();
    for &(customer, day, _, cents) in purchases {
        let day = 9862 + day;
        let entry = customers.entry(customer).or_default();
        let side = if calibration_day.is_some_and(|c| day > c) {
            &mut entry.1
        } else {
            &mut entry.0
        };
        *side.entry(period.of_day(day)).or_default() += cents as f64 / 100.0;
    }
    let end = period.of_day(calibration_day.unwrap_or(end_day));
    let mut rows = Vec::new();
    let mut excluded = 0;
    for (customer, (calibration, holdout)) in customers {
        let Some((&first, _)) = calibration.first_key_value() else {
            excluded += 1;
            continue;
        };
        let (&last, _) = calibration.last_key_value().unwrap();
        let repeats: Vec<f64> = calibration.values().skip(1).copied().collect();
        let mean = |values: &[f64]| {
            if values.is_empty() {
                0.0
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        };
        let holdout: Vec<f64> = holdout.values().copied().collect();
        rows.push(RfmRow {
            customer_id: customer,
            frequency: repeats.len() as u64,
            recency: period.elapsed(unit, first, last),
            age: period.elapsed(unit, first, end),
            monetary_value: mean(&repeats),
            frequency_holdout: holdout.len() as u64,
            monetary_value_holdout: mean(&holdout),
        });
    }
    (rows, excluded)
}

fn periods() -> impl Strategy<Value = Period> {
    prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month)]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_logs_match_the_in_memory_reference(
        purchases in prop::collection::vec(
            (0u64..12, 0i64..400, prop_oneof![Just(0i64), 1i64..86_400], 0u64..100_000),
            1..80,
        ),
        period in periods(),
        unit in prop::option::of(periods()),
        calibration in prop::option::of(0i64..399),
        // All partitions spilled, some (the budget below the records), or none.
        budget in prop_oneof![Just(0usize), 0usize..2_000, Just(1usize << 30)],
    ) {
        let last_day = purchases.iter().map(|p| p.1).max().unwrap();
        let calibration = calibration.filter(|&c| c < last_day);
        let options = Options {
            period,
            time_unit: unit,
            calibration_end: calibration.map(|c| Moment {
                micros: (9862 + c) * crv::rfm::date::MICROS_PER_DAY,
                date_only: true,
            }),
            memory_budget: budget,
            ..Options::default()
        };
        let log = log_text(&purchases);
        let summary: Summary = summarize(log.as_bytes(), "<log>", None, &options).unwrap();
        let records_bytes = purchases.len() * size_of::<crv::rfm::Record>();
        prop_assert_eq!(summary.spilled, records_bytes > budget);
        let (rows, excluded) =
            reference(&purchases, period, unit.unwrap_or(period), calibration.map(|c| 9862 + c));
        prop_assert_eq!(summary.excluded, excluded);
        prop_assert_eq!(summary.rows.len(), rows.len());
        for (got, want) in summary.rows.iter().zip(&rows) {
            prop_assert_eq!(
                (got.customer_id, got.frequency, got.frequency_holdout),
                (want.customer_id, want.frequency, want.frequency_holdout)
            );
            prop_assert!(close(got.recency, want.recency), "{:?} {:?}", got, want);
            prop_assert!(close(got.age, want.age), "{:?} {:?}", got, want);
            prop_assert!(close(got.monetary_value, want.monetary_value), "{:?} {:?}", got, want);
            prop_assert!(
                close(got.monetary_value_holdout, want.monetary_value_holdout),
                "{:?} {:?}", got, want
            );
        }
    }
}

/// The log of [`log_text`] with every field written so that the parser's fast path refuses it
/// (spaces and quotes around fields, a `+00:00` offset instead of `Z`, amounts as `1234e-2`):
/// the general parsers then read every field.
fn decorated_log_text(purchases: &[Purchase]) -> String {
    let mut text = String::from("amount,customer_id,date\n");
    for &(customer, day, second, cents) in purchases {
        let (y, m, d) = crv::rfm::date::civil_from_days(9862 + day);
        let when = if second == 0 {
            format!("\"{y:04}-{m:02}-{d:02}\"")
        } else {
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
                second / 3600,
                second / 60 % 60,
                second % 60
            )
        };
        text.push_str(&format!(" {cents}e-2 ,\"{customer}\", {when}\r\n"));
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn the_fast_path_gives_the_general_parsers_bits(
        purchases in prop::collection::vec(
            (0u64..12, 0i64..400, prop_oneof![Just(0i64), 1i64..86_400], 0u64..100_000),
            1..80,
        ),
        spill in any::<bool>(),
    ) {
        let options = Options {
            memory_budget: if spill { 0 } else { 1 << 30 },
            ..Options::default()
        };
        let fast = summarize(log_text(&purchases).as_bytes(), "<log>", None, &options).unwrap();
        let general =
            summarize(decorated_log_text(&purchases).as_bytes(), "<log>", None, &options)
                .unwrap();
        prop_assert_eq!(fast.rows.len(), general.rows.len());
        for (a, b) in fast.rows.iter().zip(&general.rows) {
            prop_assert_eq!(
                (a.customer_id, a.frequency, a.recency.to_bits(), a.age.to_bits()),
                (b.customer_id, b.frequency, b.recency.to_bits(), b.age.to_bits())
            );
            prop_assert_eq!(a.monetary_value.to_bits(), b.monetary_value.to_bits());
        }
    }
}

#[test]
fn cdnow_by_week_matches_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("weeks.csv");
    let output = crv(&[
        "rfm",
        data("cdnow_transactions.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--period",
        "week",
        "--observation-end",
        "1998-06-30",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_matches(&read_csv(&out), &read_csv(&data("cdnow_weeks.csv")), 1e-6);
}
