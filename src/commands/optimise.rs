//! `crv optimise`: the plan of a campaign with several resources and offers, with its
//! certificate (an upper bound and the gap), the resources' shadow prices, the assignment and
//! one customer's explanation.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crv::campaign::contacts::ContactHistory;
use crv::campaign::definition::CampaignDefinition;
use crv::campaign::optimise::CampaignPlan;
use crv::error::{Error, Result};
use crv::limits::MAX_CAMPAIGN_BYTES;
use crv::rfm::date::now_micros;
use crv::select::lagrange::Outcome;
use crv::store::Store;

use super::{amount, count, millis, planning_table, stdout_error, summary_writer};
use crate::cli::OptimiseCommand;

/// Runs `crv optimise`.
pub fn optimise(args: &OptimiseCommand) -> Result<()> {
    let started = Instant::now();
    let definition = read_definition(&args.campaign)?;
    let mut inputs = vec![args.campaign.as_path()];
    inputs.extend(args.contacts.as_deref());
    let (table, _) = planning_table(&args.input, &args.report, &inputs)?;
    let history = read_contacts(args.contacts.as_deref(), table.store())?;
    let prepare = Instant::now();
    let cancel = crv::cancel::Cancel::default();
    let bound = definition.bind(&table, &history, now_micros(), &cancel)?;
    let plan = bound.solve(prepare.elapsed(), cancel);
    if let (Some(path), Some(solved)) = (&args.report.output, plan.plan()) {
        write_assignment(path, &plan, solved, table.rows())?;
    }
    let mut stdout = summary_writer(args.report.output.as_deref());
    for line in summary_lines(&plan) {
        writeln!(stdout, "{line}").map_err(stdout_error)?;
    }
    if let Some(id) = &args.explain {
        let explanation = plan.explain(id).ok_or_else(|| {
            Error::invalid("explain", format!("customer {id} is not in the store"))
        })?;
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&explanation).expect("JSON values print")
        )
        .map_err(stdout_error)?;
    }
    if args.report.json {
        let mut summary = plan.summary();
        summary["time_ms"] = serde_json::json!(millis(started.elapsed()));
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    match &plan.outcome {
        Outcome::Plan(_) => Ok(()),
        Outcome::Infeasible(conflict) => Err(Error::invalid(
            "campaign",
            format!("infeasible: {}", plan.summary()["infeasible"]).replace('\n', " ")
                + if conflict.proven { "" } else { " (not proven)" },
        )),
    }
}

/// The contact history of `--contacts` for the customers of `store` (empty without it).
pub(super) fn read_contacts(path: Option<&Path>, store: &Store) -> Result<ContactHistory> {
    path.map_or_else(
        || Ok(ContactHistory::default()),
        |path| ContactHistory::read(path, store),
    )
}

/// Reads `campaign.json`.
pub(super) fn read_definition(path: &Path) -> Result<CampaignDefinition> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_CAMPAIGN_BYTES as u64 {
        return Err(Error::Campaign {
            file: path.display().to_string(),
            field: String::new(),
            message: format!("{} bytes, at most {MAX_CAMPAIGN_BYTES}", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    CampaignDefinition::parse(&bytes, &path.display().to_string())
}

fn summary_lines(plan: &CampaignPlan<'_>) -> Vec<String> {
    let Some(solved) = plan.plan() else {
        return vec![format!("infeasible   {}", plan.summary()["infeasible"])];
    };
    let definition = plan.bound.definition();
    let mut lines = vec![
        format!(
            "assigned     {}",
            count(solved.counts.iter().sum::<u64>(), "customer")
        ),
        format!("objective    {}", amount(solved.objective)),
        format!("upper bound  {}", amount(solved.upper_bound)),
        format!(
            "gap          {:.3e}  {}",
            solved.gap,
            if solved.optimal {
                "optimal: the bound proves no plan is worth more"
            } else {
                "certified: no plan is worth more than the bound"
            }
        ),
    ];
    for (k, (name, limit)) in definition.resources.iter().enumerate() {
        lines.push(format!(
            "resource     {name}: {} of {}, shadow price {:.6}",
            amount(solved.used[k]),
            amount(*limit),
            solved.resource_prices[k]
        ));
    }
    for (o, offer) in definition.offers.iter().enumerate() {
        lines.push(format!(
            "offer        {}: {}, value {}",
            offer.name,
            count(solved.counts[o], "customer"),
            amount(solved.offer_values[o])
        ));
    }
    lines.push(format!(
        "time         prepare {:.1} ms, solve {:.1} ms ({} pricing passes)",
        millis(plan.prepare_time),
        millis(plan.solve_time),
        solved.passes
    ));
    lines
}

/// The assignment: `customer_id,offer,value`, one column per resource, `reason`; customers
/// with an offer, in store order.
fn write_assignment(
    path: &Path,
    plan: &CampaignPlan<'_>,
    solved: &crv::select::lagrange::Plan,
    rows: usize,
) -> Result<()> {
    crv::atomic_file::write_atomically(path, |out| {
        let mut csv = csv::Writer::from_writer(out);
        let io = |e: csv::Error| Error::io(path, std::io::Error::other(e.to_string()));
        csv.write_record(plan.assignment_header()).map_err(io)?;
        for i in 0..rows {
            if let Some(row) = plan.assignment_row(solved, i) {
                csv.write_record(row).map_err(io)?;
            }
        }
        csv.flush().map_err(|e| Error::io(path, e))?;
        Ok(())
    })
}
