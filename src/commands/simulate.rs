//! `crv simulate`: many what-if scenarios over one store in one batch (one result row each),
//! and the frontier of one of them as CSV and as an SVG chart; or, with `--campaign`, a
//! campaign's frontier along one of its resources.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crv::atomic_file::check_output;
use crv::campaign::simulate::resource_frontier::{resource_frontier_svg, write_resource_frontier};
use crv::campaign::simulate::{
    self, FrontierSpec, LimitGrid, ResourceFrontier, ResourceFrontierSpec, ScenarioSet,
    SimulateOptions, Simulation, trace_resource,
};
use crv::cancel::Cancel;
use crv::error::{Error, Result};
use crv::kernel::TierScheme;
use crv::rfm::date::now_micros;
use crv::{ScoreParams, Table};
use serde_json::json;

use super::{amount, count, millis, open_store, stdout_error, summary_writer};
use crate::cli::SimulateCommand;

/// Runs `crv simulate`.
pub fn simulate(args: &SimulateCommand) -> Result<()> {
    if let Some(campaign) = &args.campaign {
        return campaign_frontier(args, campaign);
    }
    let started = Instant::now();
    let limits = crv::select::SolveLimits::within_seconds(args.time_limit)?;
    let scenarios = args
        .scenarios
        .as_deref()
        .expect("the flags require --scenarios without --campaign");
    let text = std::fs::read_to_string(scenarios).map_err(|e| Error::io(scenarios, e))?;
    let set = ScenarioSet::parse(&text, &scenarios.display().to_string())?;
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
        check_output(path, &[&args.store, scenarios], args.force)?;
    }
    // Each scenario derives its own values from the customers.
    let table = customers(args)?;
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

/// The store as a table, scored with the default parameters (a pass of tens of milliseconds
/// at 1e7 customers), or valued by `--model`.
fn customers(args: &SimulateCommand) -> Result<Table> {
    let store = open_store(&args.store, args.verify)?;
    Table::valued(
        Arc::new(store),
        ScoreParams::default(),
        TierScheme::default(),
        super::valuation(&args.valuation)?,
    )
}

/// `crv simulate --campaign`: the campaign's frontier along `--frontier-resource`, as CSV
/// (`--frontier`, else stdout) and as a chart (`--plot`). The customers are valued as `crv
/// optimise` values them by default, so each point is `crv optimise` with that limit.
fn campaign_frontier(args: &SimulateCommand, campaign: &Path) -> Result<()> {
    let started = Instant::now();
    let definition = super::optimise::read_definition(campaign)?;
    let spec = ResourceFrontierSpec {
        resource: args
            .frontier_resource
            .clone()
            .expect("the flags require --frontier-resource with --campaign"),
        grid: match &args.frontier_limits {
            Some(limits) => LimitGrid::Limits(limits.clone()),
            None => LimitGrid::Points(args.frontier_points),
        },
        spend: args.frontier_spend.clone(),
    };
    let mut inputs = vec![args.store.as_path(), campaign];
    inputs.extend(args.contacts.as_deref());
    for path in [&args.frontier, &args.plot].into_iter().flatten() {
        check_output(path, &inputs, args.force)?;
    }
    let table = customers(args)?;
    let history = super::optimise::read_contacts(args.contacts.as_deref(), table.store())?;
    let cancel = Cancel::default();
    let bound = definition.bind(&table, &history, now_micros(), &cancel)?;
    let frontier = trace_resource(&bound, &spec, "frontier-", &cancel)?;
    let write = |path: &Path, write: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        crv::atomic_file::write_atomically(path, |out| write(out).map_err(|e| Error::io(path, e)))
    };
    if let Some(path) = &args.frontier {
        write(path, &|out| write_resource_frontier(out, &frontier))?;
    }
    if let Some(path) = &args.plot {
        let svg = resource_frontier_svg(&frontier, &args.currency);
        write(path, &|out| out.write_all(svg.as_bytes()))?;
    }
    let mut stdout = summary_writer(args.frontier.as_deref());
    match &args.frontier {
        None => write_resource_frontier(&mut stdout, &frontier).map_err(stdout_error)?,
        Some(path) => {
            for line in frontier_lines(&frontier, table.rows(), path) {
                writeln!(stdout, "{line}").map_err(stdout_error)?;
            }
            writeln!(stdout, "time         {:.1} ms", millis(started.elapsed()))
                .map_err(stdout_error)?;
        }
    }
    if args.json {
        let summary = json!({
            "resource": frontier.resource,
            "spend": frontier.spend,
            "limit": frontier.limit,
            "customers": table.rows(),
            "points": frontier.points.len(),
            "feasible": frontier.points.iter().filter(|p| p.feasible).count(),
            "optimal": frontier.points.iter().filter(|p| p.optimal).count(),
            "knee": frontier.knee.map(|knee| frontier.points[knee]),
            "time_ms": millis(started.elapsed()),
        });
        writeln!(stdout, "{summary}").map_err(stdout_error)?;
    }
    Ok(())
}

/// The human summary of a campaign frontier written to `path`.
fn frontier_lines(frontier: &ResourceFrontier, customers: usize, path: &Path) -> Vec<String> {
    let points = &frontier.points;
    let mut lines = vec![
        format!(
            "frontier     `{}` at {} over {} (spend: `{}`)",
            frontier.resource,
            count(points.len() as u64, "limit"),
            count(customers as u64, "customer"),
            frontier.spend
        ),
        format!(
            "optimal      {} of {} plans proven optimal, {} infeasible",
            points.iter().filter(|p| p.optimal).count(),
            points.len(),
            points.iter().filter(|p| !p.feasible).count()
        ),
    ];
    if let Some(knee) = frontier.knee.map(|knee| points[knee]) {
        lines.push(format!(
            "knee         limit {} (value {}, shadow price {:.6})",
            amount(knee.limit),
            amount(knee.objective.unwrap_or_default()),
            knee.shadow_price.unwrap_or_default()
        ));
    }
    lines.push(format!("wrote        {}", path.display()));
    lines
}
