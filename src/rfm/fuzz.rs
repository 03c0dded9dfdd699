//! The body of the `transaction_log` fuzz target, compiled only with the `fuzzing` feature (as
//! `store::fuzz`), so `fuzz/` and the test that replays the committed corpus run the same code.

use super::{Options, Summary, summarize};

/// Arbitrary bytes as a purchase log: summarise it; when it is accepted, check the rows
/// (ascending ids, `recency <= age`, finite values >= 0), that the same lines in reverse order
/// give the same summary, and that spilling every partition to files (a zero memory budget)
/// gives it too. Returns the number of customers, or `None` when the log is refused.
///
/// # Panics
///
/// When a property fails: that is the fuzzer's finding.
pub fn transaction_log(bytes: &[u8]) -> Option<usize> {
    let options = Options::default();
    let summary = summarize(bytes, "<fuzz>", Some(bytes.len() as u64), &options).ok()?;
    for pair in summary.rows.windows(2) {
        assert!(
            pair[0].customer_id < pair[1].customer_id,
            "ids not ascending"
        );
    }
    for row in &summary.rows {
        assert!(row.recency >= 0.0 && row.recency <= row.age, "{row:?}");
        assert!(row.monetary_value >= 0.0, "{row:?}");
    }
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.len() > 1 {
        lines[1..].reverse();
        let reversed = lines.join(&b'\n');
        let again = summarize(&reversed[..], "<fuzz>", None, &options)
            .expect("the same lines in another order are accepted");
        assert_same(&summary, &again);
    }
    let spilled = Options {
        memory_budget: 0,
        ..options
    };
    let again = summarize(bytes, "<fuzz>", None, &spilled).expect("spilling accepts it too");
    assert!(again.spilled);
    assert_same(&summary, &again);
    Some(summary.rows.len())
}

/// The rows and counts agree (amounts summed in another order may differ in the last bits).
fn assert_same(a: &Summary, b: &Summary) {
    assert_eq!(a.rows.len(), b.rows.len());
    assert_eq!(a.observation_end_day, b.observation_end_day);
    for (x, y) in a.rows.iter().zip(&b.rows) {
        assert_eq!(
            (x.customer_id, x.frequency, x.recency, x.age),
            (y.customer_id, y.frequency, y.recency, y.age)
        );
        let close = |p: f64, q: f64| p == q || (p - q).abs() <= 1e-9 * p.abs().max(q.abs());
        assert!(close(x.monetary_value, y.monetary_value), "{x:?} {y:?}");
    }
}
