//! The frontier as an SVG chart: budget on x, the objective (expected value) on the left axis,
//! ROI on the right axis, the knee marked (written by hand: [`crate::svg`]).

use super::frontier::Frontier;
use super::scenario::Objective;
use crate::svg::{Document, fraction, range, short};

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
/// Plot area margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (90.0, 90.0, 50.0, 60.0);
const TICKS: usize = 5;
const VALUE_COLOUR: &str = "#1f77b4";
const ROI_COLOUR: &str = "#d62728";

/// The SVG document of `frontier`.
pub fn frontier_svg(frontier: &Frontier) -> String {
    let points = &frontier.points;
    let x_range = range(points.iter().map(|p| p.budget));
    let value_range = range(points.iter().map(|p| p.objective));
    let roi_range = range(points.iter().filter_map(|p| p.roi));
    let (left, right, top, bottom) = MARGIN;
    let (plot_w, plot_h) = (WIDTH - left - right, HEIGHT - top - bottom);
    let x = |v: f64| left + plot_w * fraction(v, x_range);
    let y = |v: f64, range: (f64, f64)| top + plot_h * (1.0 - fraction(v, range));

    let objective = match frontier.objective {
        Objective::Crv => "total CRV of the targets",
        Objective::Incremental => "expected incremental value",
    };
    let mut svg = Document::new(
        WIDTH,
        HEIGHT,
        &format!(
            "Frontier of {}: {objective} and ROI by budget",
            frontier.scenario
        ),
    );
    let mut line = |text: String| svg.line(text);
    line(format!(
        r#"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    ));
    for tick in 0..=TICKS {
        let share = tick as f64 / TICKS as f64;
        let budget = x_range.0 + share * (x_range.1 - x_range.0);
        let value = value_range.0 + share * (value_range.1 - value_range.0);
        let px = x(budget);
        let py = top + plot_h * (1.0 - share);
        line(format!(
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{}" stroke="#ddd"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top + plot_h,
            top + plot_h + 18.0,
            short(budget)
        ));
        line(format!(
            r#"<text x="{}" y="{py:.1}" text-anchor="end" fill="{VALUE_COLOUR}">{}</text>"#,
            left - 6.0,
            short(value)
        ));
        if roi_range.0 <= roi_range.1 {
            let roi = roi_range.0 + share * (roi_range.1 - roi_range.0);
            line(format!(
                r#"<text x="{}" y="{py:.1}" fill="{ROI_COLOUR}">{}</text>"#,
                left + plot_w + 6.0,
                short(roi)
            ));
        }
    }
    line(format!(
        r#"<text x="{}" y="{}" text-anchor="middle">budget (cost units)</text>"#,
        left + plot_w / 2.0,
        HEIGHT - 15.0
    ));
    line(format!(
        r#"<text x="20" y="{}" fill="{VALUE_COLOUR}" transform="rotate(-90 20 {})" text-anchor="middle">{objective}</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    ));
    line(format!(
        r#"<text x="{}" y="{}" fill="{ROI_COLOUR}" transform="rotate(90 {} {})" text-anchor="middle">ROI = (value - spend) / spend</text>"#,
        WIDTH - 20.0,
        top + plot_h / 2.0,
        WIDTH - 20.0,
        top + plot_h / 2.0
    ));
    let value_line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.budget), y(p.objective, value_range)))
        .collect();
    line(format!(
        r#"<polyline points="{}" fill="none" stroke="{VALUE_COLOUR}" stroke-width="2"/>"#,
        value_line.join(" ")
    ));
    let roi_line: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.roi
                .map(|roi| format!("{:.1},{:.1}", x(p.budget), y(roi, roi_range)))
        })
        .collect();
    line(format!(
        r#"<polyline points="{}" fill="none" stroke="{ROI_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>"#,
        roi_line.join(" ")
    ));
    if let Some(knee) = frontier.knee.map(|index| points[index]) {
        let (kx, ky) = (x(knee.budget), y(knee.objective, value_range));
        line(format!(
            r#"<circle cx="{kx:.1}" cy="{ky:.1}" r="6" fill="none" stroke="black" stroke-width="2"/><text x="{:.1}" y="{:.1}">knee: budget {}, value {}</text>"#,
            kx + 10.0,
            ky + 18.0,
            short(knee.budget),
            short(knee.objective)
        ));
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::simulate::FrontierPoint;

    #[test]
    fn the_chart_has_both_lines_and_the_knee() {
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
            points: vec![point(0.0, 0.0), point(10.0, 50.0), point(20.0, 60.0)],
            knee: Some(1),
        };
        let svg = frontier_svg(&frontier);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("knee: budget 10, value 50"), "{svg}");
        assert!(svg.contains("a&lt;b"));
    }
}
