//! `crv select`: the customers a campaign should serve under a budget, with the proof that no
//! other set of customers is worth more.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crv::Table;
use crv::campaign::report::{TARGETS_CSV_HEADER, TargetColumns};
use crv::campaign::{CampaignSpec, SelectionRequest, Targets};
use crv::error::{Error, Result};
use serde_json::json;

use super::{amount, count, millis, planning_table, stdout_error, summary_writer};
use crate::cli::SelectCommand;

/// Runs `crv select`.
pub fn select(args: &SelectCommand) -> Result<()> {
    let started = Instant::now();
    let request = SelectionRequest {
        campaign: CampaignSpec {
            budget: args.budget,
            cost_column: args.cost.clone(),
            resource_scale: args.resource_scale,
            filter: args.filter.clone(),
            limits: crv::select::SolveLimits::within_seconds(args.time_limit)?,
        },
        params: args.input.score.params(),
    };
    let (table, open_time) = planning_table(&args.input, &args.report, &[])?;
    let targets = request.bind(&table)?.select(&table)?;
    let write_time = match &args.report.output {
        Some(path) => {
            let started = Instant::now();
            write_targets(path, &table, &targets)?;
            Some(started.elapsed())
        }
        None => None,
    };

    let selection = &targets.selection;
    let stats = &selection.stats;
    let times = &stats.times;
    let solve_time = times.preprocess + times.split + times.reduce + times.search + times.output;
    let mut lines = vec![
        format!(
            "eligible     {} of {} ({} with positive CRV within budget)",
            stats.eligible_rows,
            count(table.rows() as u64, "customer"),
            stats.candidate_rows + stats.zero_cost_rows
        ),
        format!("selected     {}", selection.rows.len()),
        format!("total CRV    {}", amount(selection.objective)),
        format!(
            "total cost   {} of budget {} (`{}`), {} left",
            amount(targets.total_cost),
            amount(targets.budget),
            targets.cost_column,
            amount(targets.budget_left)
        ),
        format!("upper bound  {}", amount(selection.upper_bound)),
        format!(
            "rounding     costs up, budget down to {} units per cost unit: at most {:.2} CRV given up (real-cost bound {:.2})",
            args.resource_scale, targets.rounding_loss, targets.real_upper_bound
        ),
        format!(
            "gap          {:.3e}  {}",
            selection.gap,
            if selection.optimal {
                "optimal: the bound proves no other set is worth more"
            } else {
                "NOT proven optimal (stopped by a limit): the gap bounds the loss"
            }
        ),
        format!(
            "core         {} searched, {} states",
            count(stats.core_items as u64, "customer"),
            stats.states
        ),
        format!(
            "time         open {:.1} ms, score {:.1} ms, tiers {:.1} ms, filter+costs {:.1} ms, solve {:.1} ms",
            millis(open_time),
            millis(table.score_time()),
            millis(table.tier_time()),
            millis(targets.prepare_time),
            millis(solve_time)
        ),
    ];
    if let (Some(path), Some(time)) = (&args.report.output, write_time) {
        lines.push(format!(
            "wrote {} to {} in {:.2?}",
            count(selection.rows.len() as u64, "target"),
            path.display(),
            time
        ));
    }
    let mut stdout = summary_writer(args.report.output.as_deref());
    for line in lines {
        writeln!(stdout, "{line}").map_err(stdout_error)?;
    }
    if args.report.json {
        let mut summary = crv::campaign::report::selection_summary(&targets);
        summary["time_ms"] = json!(millis(started.elapsed()));
        summary["phases_ms"] = json!({
            "open": millis(open_time),
                "score": millis(table.score_time()),
                "tiers": millis(table.tier_time()),
                "prepare": millis(targets.prepare_time),
                "solve": millis(solve_time),
            "write": write_time.map(millis),
        });
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    Ok(())
}

/// The chosen customers in store order: `customer_id,crv,cost,tier`.
fn write_targets(path: &Path, table: &Table, targets: &Targets) -> Result<()> {
    let columns = TargetColumns::new(table, &targets.cost_column)?;
    crv::atomic_file::write_atomically(path, |out| {
        let io = |e| Error::io(path, e);
        out.write_all(TARGETS_CSV_HEADER.as_bytes()).map_err(io)?;
        for &row in &targets.selection.rows {
            columns.write_row(out, row).map_err(io)?;
        }
        Ok(())
    })
}
