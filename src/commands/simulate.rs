//! `crv simulate`: many what-if scenarios over one store in one batch (one result row each),
//! and the frontier of one of them as CSV and as an SVG chart.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crv::atomic_file::check_output;
use crv::campaign::simulate::{self, FrontierSpec, ScenarioSet, SimulateOptions, Simulation};
use crv::error::{Error, Result};
use crv::kernel::TierScheme;
use crv::{ScoreParams, Table};
use serde_json::json;

use super::{amount, count, millis, open_store, stdout_error, summary_writer};
use crate::cli::SimulateCommand;

/// Runs `crv simulate`.
pub fn simulate(args: &SimulateCommand) -> Result<()> {
    let started = Instant::now();
    let limits = crv::select::SolveLimits::within_seconds(args.time_limit)?;
    let text =
        std::fs::read_to_string(&args.scenarios).map_err(|e| Error::io(&args.scenarios, e))?;
    let set = ScenarioSet::parse(&text, &args.scenarios.display().to_string())?;
    let wants_frontier =
        args.frontier.is_some() || args.plot.is_some() || args.frontier_scenario.is_some();
    let options = SimulateOptions {
        frontier: wants_frontier.then(|| FrontierSpec {
            scenario: args.frontier_scenario.clone(),
            points: args.frontier_points,
        }),
        limits,
    };
    let outputs = [&args.output, &args.frontier, &args.plot];
    for path in outputs.into_iter().flatten() {
        check_output(path, &[&args.store, &args.scenarios], args.force)?;
    }
    let store = open_store(&args.store, args.verify)?;
    // The customers as a table (scored with the default parameters, a pass of tens of
    // milliseconds at 1e7 customers): each scenario derives its own values from them.
    let table = Table::valued(
        Arc::new(store),
        ScoreParams::default(),
        TierScheme::default(),
        super::valuation(&args.valuation)?,
    )?;
    // The batch is one library call: a spinner with the elapsed time shows it is working.
    let spinner = super::store::progress_bar(0, "{spinner} {msg} {elapsed}");
    spinner.set_message(format!(
        "simulating {} over {}",
        count(set.scenarios.len() as u64, "scenario"),
        count(table.rows() as u64, "customer")
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let simulation = simulate::simulate(&table, &set, &options);
    spinner.finish_and_clear();
    let simulation = simulation?;
    write_outputs(args, &simulation)?;

    let mut stdout = summary_writer(args.output.as_deref());
    let results = &simulation.results;
    let optimal = results.iter().filter(|row| row.optimal).count();
    match &args.output {
        None => simulate::write_results(&mut stdout, results).map_err(stdout_error)?,
        Some(path) => {
            let mut lines = vec![
                format!(
                    "simulated    {} over {} (fused scoring pass {:.1} ms)",
                    count(results.len() as u64, "scenario"),
                    count(table.rows() as u64, "customer"),
                    millis(simulation.scoring_time)
                ),
                format!(
                    "optimal      {optimal} of {} selections proven optimal",
                    results.len()
                ),
                format!("wrote        {}", path.display()),
            ];
            lines.extend(super::valuation_line(table.valuation()));
            if let Some(frontier) = &simulation.frontier {
                lines.push(format!(
                    "frontier     `{}`, {}{}",
                    frontier.scenario,
                    count(frontier.points.len() as u64, "budget"),
                    frontier.knee.map_or(String::new(), |knee| {
                        let point = frontier.points[knee];
                        format!(
                            "; knee at budget {} (value {}, spend {})",
                            amount(point.budget),
                            amount(point.objective),
                            amount(point.spend)
                        )
                    })
                ));
            }
            lines.push(format!("time         {:.1} ms", millis(started.elapsed())));
            for line in lines {
                writeln!(stdout, "{line}").map_err(stdout_error)?;
            }
        }
    }
    if args.json {
        let frontier = simulation.frontier.as_ref().map(|frontier| {
            json!({
                "scenario": frontier.scenario,
                "points": frontier.points.len(),
                "knee": frontier.knee.map(|knee| frontier.points[knee]),
            })
        });
        let summary = json!({
            "scenarios": results.len(),
            "customers": table.rows(),
            "optimal": optimal,
            "frontier": frontier,
            "scoring_ms": millis(simulation.scoring_time),
            "time_ms": millis(started.elapsed()),
        });
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    Ok(())
}

/// Writes the results, frontier and chart files asked for, each atomically.
fn write_outputs(args: &SimulateCommand, simulation: &Simulation) -> Result<()> {
    let write = |path: &Path, write: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        crv::atomic_file::write_atomically(path, |out| write(out).map_err(|e| Error::io(path, e)))
    };
    if let Some(path) = &args.output {
        write(path, &|out| {
            simulate::write_results(out, &simulation.results)
        })?;
    }
    if let Some(frontier) = &simulation.frontier {
        if let Some(path) = &args.frontier {
            write(path, &|out| {
                simulate::frontier::write_frontier(out, frontier)
            })?;
        }
        if let Some(path) = &args.plot {
            let scenario_budget = simulation
                .results
                .iter()
                .find(|result| result.name == frontier.scenario)
                .and_then(|result| result.budget);
            let svg = simulate::plot::frontier_svg(frontier, scenario_budget, &args.currency);
            write(path, &|out| out.write_all(svg.as_bytes()))?;
        }
    }
    Ok(())
}
