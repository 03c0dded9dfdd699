//! What the SVG charts share (the frontier of `crv simulate`, the model diagnostics of
//! `crv fit`): number ranges and labels, escaping, the document's frame. Charts are written by
//! hand rather than with a plotting crate: polylines, rectangles, axes and a few labels are a
//! few lines of SVG text, and they cost no dependency or build time.

use std::fmt::Write;

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

/// A compact label: `1.2M`, `35k`, `0.42`.
pub fn short(value: f64) -> String {
    let magnitude = value.abs();
    let mut text = String::new();
    let _ = match magnitude {
        m if m >= 1e9 => write!(text, "{:.3}G", value / 1e9),
        m if m >= 1e6 => write!(text, "{:.3}M", value / 1e6),
        m if m >= 1e4 => write!(text, "{:.1}k", value / 1e3),
        m if m >= 10.0 => write!(text, "{value:.0}"),
        _ => write!(text, "{value:.2}"),
    };
    text
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
        assert_eq!(short(35_000.0), "35.0k");
        assert_eq!(short(0.4213), "0.42");
        assert_eq!(range([3.0, f64::NAN, -1.0].into_iter()), (-1.0, 3.0));
        assert_eq!(fraction(2.0, (1.0, 3.0)), 0.5);
        assert_eq!(fraction(7.0, (1.0, 1.0)), 0.5);
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
        let svg = Document::new(10.0, 10.0, "x>y").finish();
        assert!(svg.starts_with("<svg") && svg.contains("x&gt;y") && svg.ends_with("</svg>\n"));
    }
}
