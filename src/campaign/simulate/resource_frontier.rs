//! The frontier of a campaign along one of its resources: a campaign definition of several
//! resources and offers ([`crate::campaign::definition`]) in place of a scenario's single
//! budget, solved at a grid of limits of one resource with every other limit as defined. Each
//! point is the plan's objective, its certified upper bound and gap, the resource's shadow
//! price and use, and the ROI `(objective - spend) / spend`, where the spend is the plan's use
//! of the money resource (`spend`, by default the resource traced): a planner sees what one
//! more call-centre hour, or one more unit of budget, buys at every size of the campaign.
//!
//! Shared work: the definition is bound once (values, uses, eligibility and contact rules
//! evaluated over the customers); each point solves that bound campaign with the one limit
//! changed, so a point is exactly `crv optimise` of the definition with that limit written in
//! it. Points are solved one after another (each solve is parallel inside), each first asking
//! the stop token whether to go on.
//!
//! Guarantee: every point is certified (its `upper_bound` is at least the optimum at its
//! limit). The optimum never falls as a limit is loosened; where the points are proven optimal
//! their objectives rise with the limit, and a point not proven optimal is within its gap of
//! its optimum. A limit at which the minimum counts cannot be met is reported infeasible (its
//! numbers empty). The default grid has `points` limits from 0 to the larger of the
//! definition's own limit and the most any plan can use of the resource, where it no longer
//! binds (each customer's largest use among the offers open to them, summed, and at most each
//! offer's `max` customers of largest use); when every use
//! of the resource is a whole number (calls, emails), the limits are rounded to whole numbers
//! (a fractional limit allows no more than its floor, and only loosens the bound), repeats
//! dropped.

use std::io::Write;

use serde::Serialize;

use super::frontier::{check_points, knee_of};
use crate::campaign::optimise::BoundCampaign;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::limits::MAX_FRONTIER_POINTS;
use crate::select::lagrange::{self, Outcome};

/// The limits a resource frontier is traced at.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitGrid {
    /// This many limits, evenly spaced from 0 to where the resource no longer binds.
    Points(usize),
    /// These limits (sorted ascending, repeats dropped).
    Limits(Vec<f64>),
}

/// Which frontier of a campaign to trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceFrontierSpec {
    /// The resource whose limit varies.
    pub resource: String,
    /// Its limits.
    pub grid: LimitGrid,
    /// The resource whose use is the spend of the ROI (`None`: `resource`).
    pub spend: Option<String>,
}

/// The plan at one limit of the resource.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResourcePoint {
    /// The resource's limit.
    pub limit: f64,
    /// Whether the campaign has a plan at this limit (its minimum counts can be met).
    pub feasible: bool,
    /// The plan's objective.
    pub objective: Option<f64>,
    /// The certified upper bound on the optimum.
    pub upper_bound: Option<f64>,
    /// The certified relative gap.
    pub gap: Option<f64>,
    /// Whether the plan is proven optimal.
    pub optimal: bool,
    /// The resource's shadow price: the value of one more unit of it.
    pub shadow_price: Option<f64>,
    /// The plan's use of the resource.
    pub used: Option<f64>,
    /// The plan's use of the spend resource.
    pub spend: Option<f64>,
    /// `(objective - spend) / spend`; `None` when nothing is spent.
    pub roi: Option<f64>,
}

/// A campaign's frontier along one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceFrontier {
    /// The resource traced.
    pub resource: String,
    /// The resource whose use is the spend.
    pub spend: String,
    /// The resource's limit in the definition.
    pub limit: f64,
    /// One point per limit, limits ascending.
    pub points: Vec<ResourcePoint>,
    /// The knee among the feasible points (as [`super::Frontier::knee`]), an index in
    /// `points`.
    pub knee: Option<usize>,
}

impl ResourceFrontierSpec {
    /// Checks the spec against the campaign's resources; `prefix` starts the names of its
    /// fields in errors (`frontier-` for the flags, `frontier.` for the JSON). Returns the
    /// indices of the resource traced and of the spend resource.
    pub fn check(&self, bound: &BoundCampaign<'_>, prefix: &str) -> Result<(usize, usize)> {
        let resources = &bound.definition().resources;
        let find = |name: &str, field: &str| {
            resources
                .iter()
                .position(|(resource, _)| resource == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = resources.iter().map(|(n, _)| n.as_str()).collect();
                    Error::invalid(
                        format!("{prefix}{field}"),
                        format!(
                            "`{name}` is not a resource of the campaign (resources: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })
        };
        let k = find(&self.resource, "resource")?;
        let spend = match &self.spend {
            Some(name) => find(name, "spend")?,
            None => k,
        };
        match &self.grid {
            LimitGrid::Points(points) => check_points(*points, &format!("{prefix}points"))?,
            LimitGrid::Limits(limits) => {
                let field = format!("{prefix}limits");
                if limits.is_empty() || limits.len() > MAX_FRONTIER_POINTS {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{} limits; a frontier has from 1 to {MAX_FRONTIER_POINTS}",
                            limits.len()
                        ),
                    ));
                }
                if let Some(bad) = limits.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
                    return Err(Error::invalid(
                        field,
                        format!("the limit {bad} is not a finite number >= 0"),
                    ));
                }
            }
        }
        Ok((k, spend))
    }
}

/// Traces `spec`'s frontier of the `bound` campaign (see the module doc); stops with
/// [`Error::Stopped`] once `cancel` says so. Errors name the spec's fields with `prefix`
/// ([`ResourceFrontierSpec::check`]).
pub fn trace_resource(
    bound: &BoundCampaign<'_>,
    spec: &ResourceFrontierSpec,
    prefix: &str,
    cancel: &Cancel,
) -> Result<ResourceFrontier> {
    let (k, spend_k) = spec.check(bound, prefix)?;
    let resources = &bound.definition().resources;
    let own_limit = resources[k].1;
    let limits = match &spec.grid {
        LimitGrid::Points(points) => {
            let top = bound.most_use(k).max(own_limit);
            let last = (*points - 1) as f64;
            let whole = bound.uses_are_whole(k);
            let mut limits: Vec<f64> = (0..*points)
                .map(|p| top * p as f64 / last)
                .map(|limit| if whole { limit.round() } else { limit })
                .collect();
            limits.dedup();
            limits
        }
        LimitGrid::Limits(limits) => {
            let mut limits = limits.clone();
            limits.sort_by(f64::total_cmp);
            limits.dedup();
            limits
        }
    };
    let mut problem = bound.problem();
    let mut points = Vec::with_capacity(limits.len());
    for limit in limits {
        cancel.check("the campaign frontier")?;
        problem.limits[k] = limit;
        let point = match lagrange::solve(&problem, &bound.options(cancel.clone())) {
            Outcome::Plan(plan) => {
                let spend = plan.used[spend_k];
                ResourcePoint {
                    limit,
                    feasible: true,
                    objective: Some(plan.objective),
                    upper_bound: Some(plan.upper_bound),
                    gap: Some(plan.gap),
                    optimal: plan.optimal,
                    shadow_price: Some(plan.resource_prices[k]),
                    used: Some(plan.used[k]),
                    spend: Some(spend),
                    roi: (spend > 0.0).then(|| (plan.objective - spend) / spend),
                }
            }
            Outcome::Infeasible(_) => ResourcePoint {
                limit,
                feasible: false,
                objective: None,
                upper_bound: None,
                gap: None,
                optimal: false,
                shadow_price: None,
                used: None,
                spend: None,
                roi: None,
            },
        };
        points.push(point);
    }
    let feasible: Vec<(usize, (f64, f64))> = points
        .iter()
        .enumerate()
        .filter_map(|(index, p)| p.objective.map(|objective| (index, (p.limit, objective))))
        .collect();
    let curve: Vec<(f64, f64)> = feasible.iter().map(|&(_, xy)| xy).collect();
    let knee = knee_of(&curve).map(|at| feasible[at].0);
    Ok(ResourceFrontier {
        resource: resources[k].0.clone(),
        spend: resources[spend_k].0.clone(),
        limit: own_limit,
        points,
        knee,
    })
}

/// Writes the frontier as CSV: `limit,feasible,objective,upper_bound,gap,optimal,
/// shadow_price,used,spend,roi` (empty fields where there is no plan or nothing is spent).
pub fn write_resource_frontier(
    out: impl Write,
    frontier: &ResourceFrontier,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for point in &frontier.points {
        writer.serialize(point)?;
    }
    writer.flush()
}

/// The chart of `frontier` ([`super::plot::curve_svg`]): the plan's value and ROI by the
/// resource's limit, the definition's own limit marked.
pub fn resource_frontier_svg(frontier: &ResourceFrontier, currency: &str) -> String {
    use crate::svg::short;
    let points: Vec<(f64, f64, Option<f64>)> = frontier
        .points
        .iter()
        .filter_map(|p| p.objective.map(|objective| (p.limit, objective, p.roi)))
        .collect();
    // The knee's index among the feasible points drawn.
    let knee = frontier.knee.map(|index| {
        frontier.points[..index]
            .iter()
            .filter(|p| p.objective.is_some())
            .count()
    });
    let resource = &frontier.resource;
    super::plot::curve_svg(
        &super::plot::Curve {
            title: format!("Campaign frontier along {resource}: plan value and ROI by its limit"),
            x_label: format!("limit of {resource}"),
            value_label: "plan value",
            points,
            knee,
            marker: Some((
                frontier.limit,
                format!("the campaign's limit: {} {resource}", short(frontier.limit)),
            )),
            knee_x: frontier.knee.map_or(String::new(), |index| {
                format!("{resource} {}", short(frontier.points[index].limit))
            }),
            x_noun: "limit",
            more_of: resource,
        },
        currency,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::campaign::contacts::ContactHistory;
    use crate::campaign::definition::CampaignDefinition;
    use crate::kernel::TierScheme;
    use crate::model::ScoreParams;
    use crate::store::Store;
    use crate::store::csv::read_csv;
    use crate::store::writer;
    use crate::table::Table;

    /// Eight customers worth 9, 8, ..., 2 for `call` (one call and 2 of budget each) and 1
    /// for `mail` (1 of budget); 4 calls in the definition.
    fn table() -> Table {
        let mut csv = String::from("customer_id,margin,retention,worth\n");
        for id in 1..=8 {
            csv += &format!("{id},10,0.5,{}\n", 10 - id);
        }
        let parsed = read_csv(csv.as_bytes(), "t.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        let store = Arc::new(Store::from_bytes(&bytes).unwrap());
        Table::score(store, ScoreParams::default(), TierScheme::default()).unwrap()
    }

    const CAMPAIGN: &[u8] = br#"{"resources": {"calls": 4, "budget": 100},
        "offers": [{"name": "call", "value": "worth", "uses": {"calls": 1, "budget": 2}},
                   {"name": "mail", "value": 1, "uses": {"budget": 1}}]}"#;

    fn trace(grid: LimitGrid, spend: Option<&str>) -> Result<ResourceFrontier> {
        let table = table();
        let definition = CampaignDefinition::parse(CAMPAIGN, "test").unwrap();
        let bound = definition
            .bind(&table, &ContactHistory::default(), 0, &Cancel::default())
            .unwrap();
        let spec = ResourceFrontierSpec {
            resource: "calls".into(),
            grid,
            spend: spend.map(str::to_string),
        };
        trace_resource(&bound, &spec, "frontier.", &Cancel::default())
    }

    #[test]
    fn each_call_buys_the_next_best_customer_over_a_mailing() {
        let frontier = trace(LimitGrid::Points(5), Some("budget")).unwrap();
        // Eight customers can take a call each: the grid runs from 0 to 8 calls.
        let limits: Vec<f64> = frontier.points.iter().map(|p| p.limit).collect();
        assert_eq!(limits, [0.0, 2.0, 4.0, 6.0, 8.0]);
        // k calls go to the k best customers (worth 9, 8, ...), the others get the mailing.
        let objectives: Vec<f64> = frontier
            .points
            .iter()
            .map(|p| p.objective.unwrap())
            .collect();
        assert_eq!(objectives, [8.0, 17.0 + 6.0, 30.0 + 4.0, 39.0 + 2.0, 44.0]);
        assert!(frontier.points.iter().all(|p| p.optimal && p.feasible));
        let first = frontier.points[0];
        // One more call takes the best customer from the mailing: worth at least 9 - 1.
        assert!(first.shadow_price.unwrap() >= 8.0 - 1e-9, "{first:?}");
        assert_eq!(first.used, Some(0.0));
        assert_eq!(first.spend, Some(8.0));
        assert_eq!(first.roi, Some(0.0));
        // With a call for everyone, calls no longer bind.
        let last = frontier.points[4];
        assert!(last.shadow_price.unwrap().abs() <= 1e-6, "{last:?}");
        assert_eq!(last.used, Some(8.0));
        assert_eq!(last.spend, Some(16.0));
        assert_eq!(last.roi, Some((44.0 - 16.0) / 16.0));
        assert_eq!(frontier.limit, 4.0);
        assert_eq!(
            (frontier.resource.as_str(), frontier.spend.as_str()),
            ("calls", "budget")
        );
        assert_eq!(frontier.knee, Some(2));
        let mut csv = Vec::new();
        write_resource_frontier(&mut csv, &frontier).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        assert!(
            csv.starts_with(
                "limit,feasible,objective,upper_bound,gap,optimal,shadow_price,used,spend,roi\n"
            ),
            "{csv}"
        );
        let svg = resource_frontier_svg(&frontier, "EUR");
        assert!(svg.contains("limit of calls"), "{svg}");
        assert!(
            svg.contains("the campaign&#39;s limit: 4 calls")
                || svg.contains("the campaign's limit: 4 calls"),
            "{svg}"
        );
        assert!(
            svg.contains("Knee (circled): calls 4, value 34 EUR"),
            "{svg}"
        );
    }

    #[test]
    fn given_limits_are_sorted_and_bad_specs_name_the_field() {
        let frontier = trace(LimitGrid::Limits(vec![3.0, 1.0, 3.0]), None).unwrap();
        let limits: Vec<f64> = frontier.points.iter().map(|p| p.limit).collect();
        assert_eq!(limits, [1.0, 3.0]);
        // The spend is the calls themselves by default.
        assert_eq!(frontier.points[0].spend, Some(1.0));
        assert_eq!(frontier.points[0].objective, Some(9.0 + 7.0));
        let error = |grid, spend| trace(grid, spend).unwrap_err().to_string();
        assert!(
            error(LimitGrid::Points(5), Some("money")).contains(
                "frontier.spend: `money` is not a resource of the campaign (resources: budget, calls)"
            ),
            "{}",
            error(LimitGrid::Points(5), Some("money"))
        );
        assert!(error(LimitGrid::Points(1), None).contains("frontier.points"));
        assert!(error(LimitGrid::Limits(vec![-1.0]), None).contains("frontier.limits"));
        assert!(error(LimitGrid::Limits(vec![]), None).contains("frontier.limits"));
    }
}
