//! The frontier as an SVG chart: budget on x, the objective (expected value) on the left axis,
//! ROI as a percent on the right axis, the scenario's own budget and the knee marked, with a
//! legend and a note that says what the knee is. Axes, ticks, colours and legend follow
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

/// The SVG document of `frontier`, money in `currency`, with `scenario_budget` (the
/// scenario's own budget, if it has one) marked.
pub fn frontier_svg(frontier: &Frontier, scenario_budget: Option<f64>, currency: &str) -> String {
    let points = &frontier.points;
    let (left, right, top, bottom) = MARGIN;
    let budgets = range(points.iter().map(|p| p.budget).chain(scenario_budget));
    let plot = Plot {
        left,
        top,
        width: WIDTH - left - right,
        height: HEIGHT - top - bottom,
        x: Axis::from_zero(budgets, TICKS),
        y: Axis::from_zero(range(points.iter().map(|p| p.objective)), TICKS),
    };
    let roi_percent = |roi: f64| roi * 100.0;
    let roi_axis = Axis::from_zero(
        range(points.iter().filter_map(|p| p.roi.map(roi_percent))),
        TICKS,
    );

    let objective = match frontier.objective {
        Objective::Crv => "total CRV of the targets",
        Objective::Incremental => "expected incremental value",
    };
    let mut svg = Document::new(
        WIDTH,
        HEIGHT,
        &format!("Frontier of {}: value and ROI by budget", frontier.scenario),
    );
    plot.grid(&mut svg);
    plot.x_axis(&mut svg, Unit::Number, &format!("budget ({currency})"));
    plot.y_axis(
        &mut svg,
        Unit::Number,
        &format!("{objective} ({currency})"),
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
        .map(|p| format!("{:.1},{:.1}", plot.px(p.budget), plot.py(p.objective)))
        .collect();
    svg.line(format!(
        r#"<polyline points="{}" fill="none" stroke="{BLUE}" stroke-width="2.5"/>"#,
        value_line.join(" ")
    ));
    let roi_line: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.roi.map(|roi| {
                let y = plot.y_on(&roi_axis, roi_percent(roi));
                format!("{:.1},{y:.1}", plot.px(p.budget))
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
            label: objective,
        },
        LegendEntry {
            colour: VERMILLION,
            dash: ROI_DASH,
            label: "ROI (right axis)",
        },
    ];
    let budget_label;
    if let Some(budget) = scenario_budget {
        let bx = plot.px(budget);
        svg.line(format!(
            r#"<line x1="{bx:.1}" y1="{top}" x2="{bx:.1}" y2="{}" stroke="{ORANGE}" stroke-width="2" stroke-dasharray="2 3"/>"#,
            top + plot.height
        ));
        budget_label = format!("the scenario's budget: {} {currency}", short(budget));
        legend.push(LegendEntry {
            colour: ORANGE,
            dash: "2 3",
            label: &budget_label,
        });
    }
    plot.legend(&mut svg, &legend);
    let note = match frontier.knee.map(|index| points[index]) {
        Some(knee) => {
            let (kx, ky) = (plot.px(knee.budget), plot.py(knee.objective));
            svg.line(format!(
                r#"<circle cx="{kx:.1}" cy="{ky:.1}" r="6" fill="none" stroke="black" stroke-width="2"/><text x="{:.1}" y="{:.1}">knee</text>"#,
                kx + 9.0,
                ky + 17.0,
            ));
            format!(
                "Knee (circled): budget {} {currency}, value {} {currency}: the point farthest above the straight line from the first budget to the last, where more budget starts to buy less.",
                short(knee.budget),
                short(knee.objective)
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
