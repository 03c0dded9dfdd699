//! `crv score`: every customer's CRV and tier, the 80/20 picture at a glance, and optionally one
//! row per customer.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crv::atomic_file::check_output;
use crv::error::Result;
use crv::kernel::{TierScheme, TierSummary};
use crv::{Table, Tier};
use serde_json::json;

use super::{
    amount, count, millis, open_store, stdout_error, summary_writer, valuation, valuation_line,
    warn_about_discount,
};
use crate::cli::ScoreCommand;

/// Runs `crv score`.
pub fn score(args: &ScoreCommand) -> Result<()> {
    let started = Instant::now();
    let params = args.score.params();
    let scheme = args.score.scheme();
    params.validate()?;
    scheme.validate()?;
    warn_about_discount(params.discount);
    if let Some(path) = &args.output {
        check_output(path, &[&args.store], args.force)?;
    }
    let valuation = valuation(&args.score.valuation)?;
    let store = open_store(&args.store, args.verify)?;
    let open_time = started.elapsed();
    let table = Table::valued(Arc::new(store), params, scheme, valuation)?;
    // Ranks and percentiles (the full sort) only for the per-customer file; the summary needs
    // the cut points alone.
    let write_time = match &args.output {
        Some(path) => {
            table.tiers();
            let started = Instant::now();
            crv::score_file::write(path, &table)?;
            Some(started.elapsed())
        }
        None => None,
    };
    let summary = *table.tier_summary();

    let mut stdout = summary_writer(args.output.as_deref());
    let totals = table.totals();
    let mut lines = vec![
        format!(
            "scored {} (discount {}, horizon {}) in {:.1} ms, tiers in {:.1} ms",
            count(totals.customers, "customer"),
            params.discount,
            params.horizon,
            millis(table.score_time()),
            millis(table.tier_time())
        ),
        format!(
            "total CRV {}: positive {} from {}, zero or negative {} from {}",
            amount(totals.crv_sum()),
            amount(totals.positive_crv),
            count(totals.positive_customers, "customer"),
            amount(totals.non_positive_crv),
            count(totals.non_positive_customers, "customer")
        ),
    ];
    lines.extend(valuation_line(table.valuation()));
    if let Some(outlook) = table.outlook() {
        let mean = |column: &[f32]| {
            column.iter().map(|&v| f64::from(v)).sum::<f64>() / column.len().max(1) as f64
        };
        lines.push(format!(
            "mean P(alive) {:.3}, expected purchases over the horizon {} in all ({:.2} per \
             customer), mean expected spend per purchase {}",
            mean(&outlook.p_alive),
            amount(mean(&outlook.expected_purchases) * outlook.p_alive.len() as f64),
            mean(&outlook.expected_purchases),
            amount(mean(&outlook.expected_spend))
        ));
    }
    lines.extend(tier_table(&summary));
    if let (Some(path), Some(time)) = (&args.output, write_time) {
        lines.push(format!(
            "wrote {} to {} in {:.2?}",
            count(totals.customers, "row"),
            path.display(),
            time
        ));
    }
    for line in lines {
        writeln!(stdout, "{line}").map_err(stdout_error)?;
    }
    if args.json {
        let mut summary = crv::campaign::report::score_summary(&table);
        summary["time_ms"] = json!({
            "open": millis(open_time),
            "score": millis(table.score_time()),
            "tiers": millis(table.tier_time()),
            "write": write_time.map(millis),
            "total": millis(started.elapsed()),
        });
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    Ok(())
}

/// The per-tier table: count, share of customers, sum of CRV, share of value, lowest CRV.
pub fn tier_table(summary: &TierSummary) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<5} {:>10} {:>8} {:>18} {:>11} {:>12}",
        "tier", "customers", "share", "CRV", "value share", "lowest CRV"
    )];
    for tier in Tier::ALL {
        let stats = summary.get(tier);
        lines.push(format!(
            "{:<5} {:>10} {:>7.1}% {:>18} {:>10.1}% {:>12}",
            tier.as_str(),
            stats.count,
            100.0 * stats.customer_share,
            amount(stats.crv_sum),
            100.0 * stats.value_share,
            stats
                .lowest_crv
                .map_or_else(|| "-".to_string(), |v| amount(f64::from(v)))
        ));
    }
    lines.push(match summary.scheme {
        TierScheme::CumulativeValue { a, b } => format!(
            "tiers by share of positive value: A to {:.0}%, B to {:.0}%, C the rest; N has CRV <= 0 (its value share is the loss)",
            100.0 * a,
            100.0 * b
        ),
        TierScheme::Quantile { a, b } => format!(
            "tiers by count of positive customers: A the top {:.0}%, B to {:.0}%, C the rest; N has CRV <= 0",
            100.0 * a,
            100.0 * b
        ),
    });
    lines
}
