//! The frontier as an SVG chart: budget (or a campaign resource's limit) on x, the objective
//! (expected value) on the left axis, ROI as a percent on the right axis, the scenario's own
//! budget (or the campaign's own limit) and the knee marked, with a legend and a note that says
//! what the knee is. [`curve_svg`] draws any such [`Curve`]; [`frontier_svg`] is a scenario's. Axes, ticks, colours and legend follow
//! [`crate::svg`]'s conventions.

use super::frontier::Frontier;
use super::scenario::Objective;
use crate::svg::{
    Axis, BLUE, Document, LegendEntry, ORANGE, Plot, Unit, VERMILLION, escape, range, short,
};

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 520.0;
/// Plot area margins: left, right, top, bottom (the bottom holds the knee's note).
const MARGIN: (f64, f64, f64, f64) = (96.0, 96.0, 50.0, 96.0);
const TICKS: usize = 5;
const ROI_DASH: &str = "7 4";

/// A value curve as the charts draw it: a point per x (a budget, a resource's limit) with its
/// value and, where something was spent, its ROI; the knee; and one x marked (the scenario's
/// budget, the campaign's own limit).
pub struct Curve<'a> {
    /// The chart's title.
    pub title: String,
    /// The x axis' label.
    pub x_label: String,
    /// What the value is (the left axis and its line's legend), before the currency.
    pub value_label: &'a str,
    /// `(x, value, roi)` per point, x ascending.
    pub points: Vec<(f64, f64, Option<f64>)>,
    /// The knee's index in `points`.
    pub knee: Option<usize>,
    /// The x marked, and its legend entry.
    pub marker: Option<(f64, String)>,
    /// The knee's x as its note reads it (`budget 3.487M EUR`).
    pub knee_x: String,
    /// What the x is called in the knee's note (`budget`, `limit`)...
    pub x_noun: &'a str,
    /// ...and what more of it is (`budget`, `calls`).
    pub more_of: &'a str,
}

/// The SVG document of `frontier`, money in `currency`, with `scenario_budget` (the
/// scenario's own budget, if it has one) marked.
pub fn frontier_svg(frontier: &Frontier, scenario_budget: Option<f64>, currency: &str) -> String {
    let points = &frontier.points;
    let objective = match frontier.objective {
        Objective::Crv => "total CRV of the targets",
        Objective::Incremental => "expected incremental value",
    };
    curve_svg(
        &Curve {
            title: format!("Frontier of {}: value and ROI by budget", frontier.scenario),
            x_label: format!("budget ({currency})"),
            value_label: objective,
            points: points
                .iter()
                .map(|p| (p.budget, p.objective, p.roi))
                .collect(),
            knee: frontier.knee,
            marker: scenario_budget.map(|budget| {
                (
                    budget,
                    format!("the scenario's budget: {} {currency}", short(budget)),
                )
            }),
            knee_x: frontier.knee.map_or(String::new(), |knee| {
                format!("budget {} {currency}", short(points[knee].budget))
            }),
            x_noun: "budget",
            more_of: "budget",
        },
        currency,
    )
}

/// The SVG document of `curve`, money in `currency`: the value on the left axis, ROI as a
/// percent on the right axis, the marked x, the knee circled and explained, a legend.
pub fn curve_svg(curve: &Curve<'_>, currency: &str) -> String {
    let points = &curve.points;
    let (left, right, top, bottom) = MARGIN;
    let xs = range(
        points
            .iter()
            .map(|p| p.0)
            .chain(curve.marker.as_ref().map(|m| m.0)),
    );
    let plot = Plot {
        left,
        top,
        width: WIDTH - left - right,
        height: HEIGHT - top - bottom,
        x: Axis::from_zero(xs, TICKS),
        y: Axis::from_zero(range(points.iter().map(|p| p.1)), TICKS),
    };
    let roi_percent = |roi: f64| roi * 100.0;
    let roi_axis = Axis::from_zero(
        range(points.iter().filter_map(|p| p.2.map(roi_percent))),
        TICKS,
    );

    let mut svg = Document::new(WIDTH, HEIGHT, &curve.title);
    plot.grid(&mut svg);
    plot.x_axis(&mut svg, Unit::Number, &curve.x_label);
    plot.y_axis(
        &mut svg,
        Unit::Number,
        &format!("{} ({currency})", curve.value_label),
        BLUE,
    );
    plot.right_axis(
        &mut svg,
        &roi_axis,
        Unit::Percent,
        "ROI = (value - spend) / spend",
        VERMILLION,
    );
    let value_line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", plot.px(p.0), plot.py(p.1)))
        .collect();
    svg.line(format!(
        r#"<polyline points="{}" fill="none" stroke="{BLUE}" stroke-width="2.5"/>"#,
        value_line.join(" ")
    ));
    let roi_line: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.2.map(|roi| {
                let y = plot.y_on(&roi_axis, roi_percent(roi));
                format!("{:.1},{y:.1}", plot.px(p.0))
            })
        })
        .collect();
    svg.line(format!(
        r#"<polyline points="{}" fill="none" stroke="{VERMILLION}" stroke-width="2.5" stroke-dasharray="{ROI_DASH}"/>"#,
        roi_line.join(" ")
    ));
    let mut legend = vec![
        LegendEntry {
            colour: BLUE,
            dash: "",
            label: curve.value_label,
        },
        LegendEntry {
            colour: VERMILLION,
            dash: ROI_DASH,
            label: "ROI (right axis)",
        },
    ];
    if let Some((x, label)) = &curve.marker {
        let bx = plot.px(*x);
        svg.line(format!(
            r#"<line x1="{bx:.1}" y1="{top}" x2="{bx:.1}" y2="{}" stroke="{ORANGE}" stroke-width="2" stroke-dasharray="2 3"/>"#,
            top + plot.height
        ));
        legend.push(LegendEntry {
            colour: ORANGE,
            dash: "2 3",
            label,
        });
    }
    plot.legend(&mut svg, &legend);
    let note = match curve.knee.map(|index| points[index]) {
        Some((x, value, _)) => {
            let (kx, ky) = (plot.px(x), plot.py(value));
            svg.line(format!(
                r#"<circle cx="{kx:.1}" cy="{ky:.1}" r="6" fill="none" stroke="black" stroke-width="2"/><text x="{:.1}" y="{:.1}">knee</text>"#,
                kx + 9.0,
                ky + 17.0,
            ));
            format!(
                "Knee (circled): {}, value {} {currency}: the point farthest above the straight line from the first {} to the last, where more {} starts to buy less.",
                curve.knee_x,
                short(value),
                curve.x_noun,
                curve.more_of
            )
        }
        None => "No knee: the frontier is flat or straight.".to_string(),
    };
    svg.line(format!(
        r#"<text x="{left}" y="{}" font-size="11" fill="{}">{}</text>"#,
        HEIGHT - 14.0,
        "#333",
        escape(&note)
    ));
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::simulate::FrontierPoint;

    #[test]
    fn the_chart_has_both_lines_a_legend_the_budget_and_the_explained_knee() {
        let point = |budget: f64, objective: f64| FrontierPoint {
            budget,
            objective,
            spend: budget,
            roi: (budget > 0.0).then(|| (objective - budget) / budget),
            optimal: true,
            gap: 0.0,
        };
        let frontier = Frontier {
            scenario: "a<b".to_owned(),
            objective: Objective::Incremental,
            points: vec![
                point(0.0, 0.0),
                point(3_487_000.0, 9_100_000.0),
                point(6_974_000.0, 9_900_000.0),
            ],
            knee: Some(1),
        };
        let svg = frontier_svg(&frontier, Some(1_000_000.0), "EUR");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        // Round ticks: 0 to 8M by 2M, value 0 to 10M; ROI in percent from 0.
        for label in [">2M<", ">8M<", ">10M<", ">0%<", ">150%<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(!svg.contains("1.395M") && !svg.contains("cost units"));
        assert!(svg.contains("budget (EUR)"));
        assert!(
            svg.contains("the scenario&#39;s budget: 1M EUR")
                || svg.contains("the scenario's budget: 1M EUR")
        );
        assert!(
            svg.contains("Knee (circled): budget 3.487M EUR, value 9.1M EUR"),
            "{svg}"
        );
        assert!(svg.contains("ROI (right axis)"));
    }
}
