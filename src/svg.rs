//! What the SVG charts share (the frontier of `crv simulate`, the model diagnostics of
//! `crv fit`), so that every chart crv writes follows one set of conventions:
//!
//! - **Round ticks**: an axis runs between multiples of a step of 1, 2 or 5 x 10^k chosen for
//!   about five ticks ([`Axis::nice`]), and a value axis starts at 0 unless its data are far
//!   from it; tick labels carry only the digits the step needs (`1.4M`, `250k`, `0.5`).
//! - **Units**: money axes name the currency (`--currency`, default [`DEFAULT_CURRENCY`]);
//!   shares and returns are percents.
//! - **Legends** for every line, and colours from the Okabe-Ito palette, told apart by readers
//!   with any common colour-vision deficiency; lines differ in dash as well as in colour.
//!
//! Charts are written by hand rather than with a plotting crate: polylines, rectangles, axes
//! and a few labels are a few lines of SVG text, and they cost no dependency or build time. The
//! dashboard's script (`src/api/dashboard/page.html`) draws by the same rules.

use crate::error::{Error, Result};

/// The currency CRV and costs are labelled in when none is given (`--currency`).
pub const DEFAULT_CURRENCY: &str = "EUR";
/// Longest currency label, in characters (`EUR`, `$`, `CHF`, `kEUR`).
pub const MAX_CURRENCY_CHARS: usize = 8;

/// Okabe-Ito blue: the first series.
pub const BLUE: &str = "#0072b2";
/// Okabe-Ito vermillion: the second series.
pub const VERMILLION: &str = "#d55e00";
/// Okabe-Ito bluish green: a third series.
pub const GREEN: &str = "#009e73";
/// Okabe-Ito orange: a marker (the scenario's budget).
pub const ORANGE: &str = "#e69f00";
/// Light grey of grid lines.
const GRID: &str = "#e3e3e3";

/// Checks a currency label: 1 to [`MAX_CURRENCY_CHARS`] visible characters, none of them
/// markup (`<`, `>`, `&`, `"`).
pub fn check_currency(currency: &str) -> Result<()> {
    let chars = currency.chars().count();
    let visible = currency
        .chars()
        .all(|c| !c.is_control() && !c.is_whitespace() && !"<>&\"".contains(c));
    if (1..=MAX_CURRENCY_CHARS).contains(&chars) && visible {
        Ok(())
    } else {
        Err(Error::invalid(
            "currency",
            format!(
                "`{currency}`: give 1 to {MAX_CURRENCY_CHARS} visible characters without <, >, & or \" (e.g. EUR, USD, $)"
            ),
        ))
    }
}

/// The round step for about `ticks` intervals over `span`: 1, 2 or 5 x 10^k.
pub fn nice_step(span: f64, ticks: usize) -> f64 {
    let raw = span.abs() / ticks.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let round = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    round * power
}

/// One axis: its ends, both multiples of its round step, and its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The lower end (the first tick).
    pub lo: f64,
    /// The upper end (the last tick).
    pub hi: f64,
    /// The distance between ticks: 1, 2 or 5 x 10^k.
    pub step: f64,
}

impl Axis {
    /// The axis over `(lo, hi)` with about `ticks` intervals, widened to multiples of its
    /// step; an empty range (`lo > hi`, from [`range`] of nothing) becomes 0 to 1, a flat one
    /// is widened around its value.
    pub fn nice((lo, hi): (f64, f64), ticks: usize) -> Axis {
        let (lo, hi) = if lo > hi || !lo.is_finite() || !hi.is_finite() {
            (0.0, 1.0)
        } else if lo == hi {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - pad, hi + pad)
        } else {
            (lo, hi)
        };
        let step = nice_step(hi - lo, ticks);
        Axis {
            // The tolerance keeps an end already on a tick (0, 8e6) where it is.
            lo: (lo / step + 1e-9).floor() * step,
            hi: (hi / step - 1e-9).ceil() * step,
            step,
        }
    }

    /// [`Axis::nice`] over `(lo, hi)` stretched to include 0: value axes start at zero.
    pub fn from_zero((lo, hi): (f64, f64), ticks: usize) -> Axis {
        if lo > hi {
            return Axis::nice((lo, hi), ticks);
        }
        Axis::nice((lo.min(0.0), hi.max(0.0)), ticks)
    }

    /// The tick values, `lo` to `hi` by `step`.
    pub fn ticks(&self) -> Vec<f64> {
        let count = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=count)
            .map(|k| {
                // A whole number of steps; a step under 1 divides by its (whole) inverse, so
                // 3 x 0.2 is 0.6 and not 0.6000000000000001.
                let steps = (self.lo / self.step).round() + k as f64;
                let value = if self.step < 1.0 {
                    steps / (1.0 / self.step).round()
                } else {
                    steps * self.step
                };
                if value == 0.0 { 0.0 } else { value }
            })
            .collect()
    }

    /// Where `value` lies on the axis, 0 (`lo`) to 1 (`hi`).
    pub fn fraction(&self, value: f64) -> f64 {
        fraction(value, (self.lo, self.hi))
    }

    /// The label of the tick `value`: [`tick_label`] with this axis's step.
    pub fn label(&self, value: f64, unit: Unit) -> String {
        tick_label(value, self.step, unit)
    }
}

/// What an axis's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Plain numbers: counts, money (the currency goes in the axis title), probabilities.
    Number,
    /// Percents: the values are already multiplied by 100; labels end in `%`.
    Percent,
}

/// `value` as a tick label on an axis of step `step`: thousands, millions and billions as
/// `k`, `M`, `G` (chosen by the value's own size), with as many decimals as the step needs and
/// no more: `1.4M`, `250k`, `0.25`, `120%`.
pub fn tick_label(value: f64, step: f64, unit: Unit) -> String {
    if value == 0.0 {
        return if unit == Unit::Percent { "0%" } else { "0" }.to_string();
    }
    let magnitude = value.abs().max(step.abs());
    let (scale, suffix) = match unit {
        Unit::Percent => (1.0, "%"),
        Unit::Number if magnitude >= 1e9 => (1e9, "G"),
        Unit::Number if magnitude >= 1e6 => (1e6, "M"),
        Unit::Number if magnitude >= 1e4 => (1e3, "k"),
        Unit::Number => (1.0, ""),
    };
    let scaled_step = step.abs() / scale;
    let decimals = if scaled_step > 0.0 && scaled_step < 1.0 {
        (-scaled_step.log10() - 1e-9).ceil().clamp(0.0, 9.0) as usize
    } else {
        0
    };
    let value = value / scale;
    format!("{value:.decimals$}{suffix}")
}

/// A value for a sentence rather than a tick: 4 significant digits with `k`/`M`/`G`
/// (`1.395M`, `35.2k`, `0.4213` as `0.4213`).
pub fn short(value: f64) -> String {
    let magnitude = value.abs();
    let (scale, suffix) = match magnitude {
        m if m >= 1e9 => (1e9, "G"),
        m if m >= 1e6 => (1e6, "M"),
        m if m >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let scaled = value / scale;
    let digits = if scaled == 0.0 || !scaled.is_finite() {
        1
    } else {
        scaled.abs().log10().floor() as i32 + 1
    };
    let decimals = (4 - digits).clamp(0, 6) as usize;
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    text + suffix
}

/// A line (or marker) of a legend.
#[derive(Debug, Clone, Copy)]
pub struct LegendEntry<'a> {
    /// Its colour.
    pub colour: &'a str,
    /// Its `stroke-dasharray`, empty for a solid line.
    pub dash: &'a str,
    /// What it shows.
    pub label: &'a str,
}

/// A chart's plot area with its two axes: maps data to the page and draws frame, grid, ticks,
/// axis titles and legends.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Left edge of the plot area.
    pub left: f64,
    /// Top edge of the plot area.
    pub top: f64,
    /// Width of the plot area.
    pub width: f64,
    /// Height of the plot area.
    pub height: f64,
    /// The horizontal axis.
    pub x: Axis,
    /// The (left) vertical axis.
    pub y: Axis,
}

impl Plot {
    /// The page x of `value` on the horizontal axis.
    pub fn px(&self, value: f64) -> f64 {
        self.left + self.width * self.x.fraction(value)
    }

    /// The page y of `value` on the left axis.
    pub fn py(&self, value: f64) -> f64 {
        self.y_on(&self.y, value)
    }

    /// The page y of `value` on `axis` (a right-hand axis).
    pub fn y_on(&self, axis: &Axis, value: f64) -> f64 {
        self.top + self.height * (1.0 - axis.fraction(value))
    }

    /// Grid lines at every tick of both axes and the frame around the plot area.
    pub fn grid(&self, svg: &mut Document) {
        let (left, top, right, bottom) = (
            self.left,
            self.top,
            self.left + self.width,
            self.top + self.height,
        );
        for tick in self.x.ticks() {
            let px = self.px(tick);
            svg.line(format!(
                r#"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{bottom}" stroke="{GRID}"/>"#
            ));
        }
        for tick in self.y.ticks() {
            let py = self.py(tick);
            svg.line(format!(
                r#"<line x1="{left}" y1="{py:.1}" x2="{right}" y2="{py:.1}" stroke="{GRID}"/>"#
            ));
        }
        svg.line(format!(
            r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#555"/>"##,
            self.width, self.height
        ));
    }

    /// The horizontal axis's tick labels and its `title` below them.
    pub fn x_axis(&self, svg: &mut Document, unit: Unit, title: &str) {
        let bottom = self.top + self.height;
        for tick in self.x.ticks() {
            svg.line(format!(
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                self.px(tick),
                bottom + 18.0,
                self.x.label(tick, unit)
            ));
        }
        svg.line(format!(
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            self.left + self.width / 2.0,
            bottom + 40.0,
            escape(title)
        ));
    }

    /// The left axis's tick labels and its `title`, rotated, in `colour`.
    pub fn y_axis(&self, svg: &mut Document, unit: Unit, title: &str, colour: &str) {
        self.vertical_axis(svg, &self.y, unit, title, colour, false);
    }

    /// A right-hand axis `axis` (its values placed by [`Plot::y_on`]) with its `title`.
    pub fn right_axis(
        &self,
        svg: &mut Document,
        axis: &Axis,
        unit: Unit,
        title: &str,
        colour: &str,
    ) {
        self.vertical_axis(svg, axis, unit, title, colour, true);
    }

    fn vertical_axis(
        &self,
        svg: &mut Document,
        axis: &Axis,
        unit: Unit,
        title: &str,
        colour: &str,
        right: bool,
    ) {
        let (label_x, anchor, title_x, turn) = if right {
            let edge = self.left + self.width;
            (edge + 6.0, "start", edge + 62.0, 90)
        } else {
            (self.left - 6.0, "end", self.left - 62.0, -90)
        };
        for tick in axis.ticks() {
            svg.line(format!(
                r#"<text x="{label_x}" y="{:.1}" text-anchor="{anchor}" fill="{colour}">{}</text>"#,
                self.y_on(axis, tick) + 4.0,
                axis.label(tick, unit)
            ));
        }
        let middle = self.top + self.height / 2.0;
        svg.line(format!(
            r#"<text x="{title_x}" y="{middle}" fill="{colour}" transform="rotate({turn} {title_x} {middle})" text-anchor="middle">{}</text>"#,
            escape(title)
        ));
    }

    /// A legend box in the plot area's top-left corner, one row per entry.
    pub fn legend(&self, svg: &mut Document, entries: &[LegendEntry<'_>]) {
        let widest = entries
            .iter()
            .map(|e| e.label.chars().count())
            .max()
            .unwrap_or(0);
        let (x, y) = (self.left + 10.0, self.top + 10.0);
        svg.line(format!(
            r##"<rect x="{x}" y="{y}" width="{:.0}" height="{}" fill="white" fill-opacity="0.9" stroke="#999"/>"##,
            44.0 + widest as f64 * 6.6,
            8.0 + 20.0 * entries.len() as f64
        ));
        for (k, entry) in entries.iter().enumerate() {
            let row = y + 14.0 + 20.0 * k as f64;
            let dash = if entry.dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{}""#, entry.dash)
            };
            svg.line(format!(
                r#"<line x1="{}" y1="{row}" x2="{}" y2="{row}" stroke="{}" stroke-width="2.5"{dash}/><text x="{}" y="{}">{}</text>"#,
                x + 8.0,
                x + 32.0,
                entry.colour,
                x + 38.0,
                row + 4.0,
                escape(entry.label)
            ));
        }
    }
}

/// Smallest and largest finite value; `(inf, -inf)` when there is none.
pub fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// Where `value` lies in `range`, 0 to 1; the middle for an empty or flat range.
pub fn fraction(value: f64, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        (value - lo) / (hi - lo)
    } else {
        0.5
    }
}

/// `text` safe inside SVG text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG document being written, one element per line.
#[derive(Debug)]
pub struct Document {
    text: String,
}

impl Document {
    /// A `width` x `height` document on a white background, with `title` centred on top.
    pub fn new(width: f64, height: f64, title: &str) -> Document {
        let mut document = Document {
            text: String::new(),
        };
        document.line(format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        ));
        document.line(format!(
            r#"<rect width="{width}" height="{height}" fill="white"/>"#
        ));
        document.line(format!(
            r#"<text x="{}" y="28" text-anchor="middle" font-size="15">{}</text>"#,
            width / 2.0,
            escape(title)
        ));
        document
    }

    /// Appends one element.
    pub fn line(&mut self, element: String) {
        self.text.push_str(&element);
        self.text.push('\n');
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.text.push_str("</svg>\n");
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_ranges_and_escapes() {
        assert_eq!(short(1_234_567.0), "1.235M");
        assert_eq!(short(35_000.0), "35k");
        assert_eq!(short(0.4213), "0.4213");
        assert_eq!(short(12.5), "12.5");
        assert_eq!(range([3.0, f64::NAN, -1.0].into_iter()), (-1.0, 3.0));
        assert_eq!(fraction(2.0, (1.0, 3.0)), 0.5);
        assert_eq!(fraction(7.0, (1.0, 1.0)), 0.5);
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
        let svg = Document::new(10.0, 10.0, "x>y").finish();
        assert!(svg.starts_with("<svg") && svg.contains("x&gt;y") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn axes_run_between_round_ticks() {
        // The complaint: 0 to 6.97M in fifths gave 1.395M, 2.868M...
        let axis = Axis::from_zero((0.0, 6_974_000.0), 5);
        assert_eq!((axis.lo, axis.hi, axis.step), (0.0, 8e6, 2e6));
        let labels: Vec<String> = axis
            .ticks()
            .iter()
            .map(|&t| axis.label(t, Unit::Number))
            .collect();
        assert_eq!(labels, ["0", "2M", "4M", "6M", "8M"]);
        let axis = Axis::nice((113.0, 412.0), 5);
        assert_eq!((axis.lo, axis.hi, axis.step), (100.0, 500.0, 100.0));
        assert_eq!(axis.label(300.0, Unit::Percent), "300%");
        let axis = Axis::nice((0.0, 1.4e6), 5);
        assert_eq!(axis.step, 5e5);
        assert_eq!(axis.label(1.5e6, Unit::Number), "1.5M");
        let axis = Axis::nice((0.0, 0.93), 5);
        assert_eq!(axis.ticks(), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(axis.label(0.6, Unit::Number), "0.6");
        assert_eq!(
            Axis::nice((-3.0, 7.0), 5).ticks(),
            [-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]
        );
        let flat = Axis::nice((5.0, 5.0), 5);
        assert!(flat.lo < 5.0 && flat.hi > 5.0, "{flat:?}");
        assert_eq!(Axis::nice((f64::INFINITY, f64::NEG_INFINITY), 5).hi, 1.0);
        for step in [1e-3, 0.02, 5.0, 2e4, 1e7] {
            let found = nice_step(step * 5.0, 5);
            assert!((found - step).abs() <= step * 1e-9, "{found} for {step}");
        }
        assert_eq!(tick_label(250_000.0, 50_000.0, Unit::Number), "250k");
    }

    #[test]
    fn currencies_are_short_visible_labels() {
        assert!(check_currency("EUR").is_ok() && check_currency("$").is_ok());
        assert!(check_currency("").is_err() && check_currency("<b>").is_err());
        assert!(check_currency("a b").is_err() && check_currency("ABCDEFGHI").is_err());
    }
}
