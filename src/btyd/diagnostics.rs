//! The two charts analysts look at before they trust a purchase model (`crv fit --holdout`):
//! predicted against actual purchases in a holdout period, by calibration frequency, and the
//! P(alive) matrix over frequency and recency.

use super::{History, PurchaseModel};
use crate::error::Result;
use crate::store::Store;
use crate::store::schema::{DURATION_HOLDOUT, FREQUENCY_HOLDOUT};
use crate::svg::{Axis, BLUE, Document, LegendEntry, Plot, Unit, VERMILLION, range, short};

/// Calibration frequencies shown one by one; higher ones share the last bucket (`7+`).
pub const HOLDOUT_BUCKETS: usize = 8;

/// Most cells along each axis of the P(alive) matrix; wider ranges are sampled evenly.
pub const MAX_MATRIX_CELLS: usize = 100;

/// Customers with the same calibration frequency (the last bucket: that frequency or more),
/// and their mean purchases in the holdout period, actual and predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldoutBucket {
    /// The bucket's calibration frequency (the lowest, for the last bucket).
    pub frequency: u32,
    /// Whether the bucket holds every frequency from `frequency` up.
    pub open_ended: bool,
    /// Customers in the bucket.
    pub customers: u64,
    /// Mean purchases in the holdout period.
    pub actual: f64,
    /// Mean of the model's expected purchases over each customer's holdout duration.
    pub predicted: f64,
}

impl HoldoutBucket {
    /// The bucket's label: `3`, or `7+` for the last.
    pub fn label(&self) -> String {
        if self.open_ended {
            format!("{}+", self.frequency)
        } else {
            self.frequency.to_string()
        }
    }
}

/// One customer's calibration history and what they did in the holdout period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holdout {
    /// The history over the calibration period.
    pub history: History,
    /// Purchases in the holdout period.
    pub frequency: f64,
    /// Length of the holdout period, in the model's time unit.
    pub duration: f64,
}

/// The store's holdout columns, `frequency_holdout` and `duration_holdout` (`crv rfm
/// --calibration-end` writes them), `None` when it lacks either.
pub fn holdout_columns(store: &Store) -> Result<Option<(&[f32], &[f32])>> {
    Ok(store
        .optional_numeric(FREQUENCY_HOLDOUT)?
        .zip(store.optional_numeric(DURATION_HOLDOUT)?))
}

/// Every customer's calibration history (`histories`, in row order) with their holdout
/// purchases and duration ([`holdout_columns`]).
pub fn holdouts(histories: &[History], (frequency, duration): (&[f32], &[f32])) -> Vec<Holdout> {
    histories
        .iter()
        .zip(frequency.iter().zip(duration))
        .map(|(&history, (&frequency, &duration))| Holdout {
            history,
            frequency: f64::from(frequency),
            duration: f64::from(duration),
        })
        .collect()
}

/// Mean actual and predicted holdout purchases per calibration frequency, 0 to
/// `HOLDOUT_BUCKETS - 1`, the last bucket open-ended. Buckets without customers are left out.
pub fn holdout_buckets<M: PurchaseModel>(model: &M, customers: &[Holdout]) -> Vec<HoldoutBucket> {
    let last = HOLDOUT_BUCKETS - 1;
    let mut sums = [(0u64, 0.0f64, 0.0f64); HOLDOUT_BUCKETS];
    for customer in customers {
        let bucket = (customer.history.frequency.max(0.0) as usize).min(last);
        let predicted = model.expected_purchases(customer.history, customer.duration);
        let (count, actual, expected) = &mut sums[bucket];
        *count += 1;
        *actual += customer.frequency;
        *expected += predicted;
    }
    sums.iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(bucket, &(count, actual, predicted))| HoldoutBucket {
            frequency: bucket as u32,
            open_ended: bucket == last,
            customers: count,
            actual: actual / count as f64,
            predicted: predicted / count as f64,
        })
        .collect()
}

/// P(alive) of a customer of age `age` for each frequency and recency on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct PAliveMatrix {
    /// The customers' age (the end of observation), in the model's time unit.
    pub age: f64,
    /// Frequencies of the columns, ascending from 0.
    pub frequencies: Vec<f64>,
    /// Recencies of the rows, ascending from 0 to `age`.
    pub recencies: Vec<f64>,
    /// `p_alive[row][column]`.
    pub p_alive: Vec<Vec<f64>>,
}

/// The P(alive) matrix of customers of age `age`, frequencies 0 to `max_frequency` and
/// recencies 0 to `age` (whole units, sampled evenly to at most `max_cells` per axis: the
/// chart of `crv fit` takes [`MAX_MATRIX_CELLS`], the dashboard fewer). A customer without
/// repeat purchases has recency 0 whatever the row: their column is constant.
pub fn p_alive_matrix<M: PurchaseModel>(
    model: &M,
    age: f64,
    max_frequency: f64,
    max_cells: usize,
) -> PAliveMatrix {
    let axis = |max: f64| -> Vec<f64> {
        let max = max.max(0.0).floor();
        let cells = (max as usize + 1).min(max_cells.max(2));
        if cells == 1 {
            return vec![0.0];
        }
        (0..cells)
            .map(|k| (max * k as f64 / (cells - 1) as f64).round())
            .collect()
    };
    let frequencies = axis(max_frequency);
    let mut recencies = axis(age);
    if let Some(last) = recencies.last_mut() {
        *last = last.min(age);
    }
    let p_alive = recencies
        .iter()
        .map(|&recency| {
            frequencies
                .iter()
                .map(|&frequency| {
                    let recency = if frequency == 0.0 { 0.0 } else { recency };
                    model.p_alive(History {
                        frequency,
                        recency,
                        age,
                    })
                })
                .collect()
        })
        .collect();
    PAliveMatrix {
        age,
        frequencies,
        recencies,
        p_alive,
    }
}

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 520.0;
/// Plot area margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (80.0, 130.0, 50.0, 60.0);
const ACTUAL_COLOUR: &str = BLUE;
const PREDICTED_COLOUR: &str = VERMILLION;
const PREDICTED_DASH: &str = "7 4";

/// The holdout chart: mean purchases in the holdout period by calibration frequency, actual
/// (solid) and predicted by `model_name` (dashed).
pub fn holdout_svg(buckets: &[HoldoutBucket], model_name: &str) -> String {
    let (left, right, top, bottom) = MARGIN;
    let (plot_w, plot_h) = (WIDTH - left - right, HEIGHT - top - bottom);
    let means = range(buckets.iter().flat_map(|b| [b.actual, b.predicted]));
    let slots = buckets.len().max(1) as f64;
    let plot = Plot {
        left,
        top,
        width: plot_w,
        height: plot_h,
        // The x axis is categorical (one slot per bucket); only its frame is drawn from here.
        x: Axis::nice((0.0, slots), 1),
        y: Axis::from_zero(means, 5),
    };
    let x = |k: usize| left + plot_w * (k as f64 + 0.5) / slots;
    let y = |v: f64| plot.py(v);
    let mut svg = Document::new(
        WIDTH,
        HEIGHT,
        &format!("Holdout purchases by calibration frequency: actual and {model_name}"),
    );
    plot.grid(&mut svg);
    plot.y_axis(
        &mut svg,
        Unit::Number,
        "mean purchases per customer in the holdout period",
        "black",
    );
    for (k, bucket) in buckets.iter().enumerate() {
        svg.line(format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{:.1}" y="{}" text-anchor="middle" fill="gray" font-size="10">n={}</text>"#,
            x(k),
            top + plot_h + 18.0,
            bucket.label(),
            x(k),
            top + plot_h + 32.0,
            bucket.customers
        ));
    }
    for (colour, dash, value) in [
        (
            ACTUAL_COLOUR,
            "",
            (|b: &HoldoutBucket| b.actual) as fn(&HoldoutBucket) -> f64,
        ),
        (PREDICTED_COLOUR, r#" stroke-dasharray="7 4""#, |b| {
            b.predicted
        }),
    ] {
        let points: Vec<String> = buckets
            .iter()
            .enumerate()
            .map(|(k, b)| format!("{:.1},{:.1}", x(k), y(value(b))))
            .collect();
        svg.line(format!(
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        ));
        for (k, b) in buckets.iter().enumerate() {
            svg.line(format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"#,
                x(k),
                y(value(b))
            ));
        }
    }
    plot.legend(
        &mut svg,
        &[
            LegendEntry {
                colour: ACTUAL_COLOUR,
                dash: "",
                label: "actual",
            },
            LegendEntry {
                colour: PREDICTED_COLOUR,
                dash: PREDICTED_DASH,
                label: &format!("predicted ({model_name})"),
            },
        ],
    );
    svg.line(format!(
        r#"<text x="{}" y="{}" text-anchor="middle">repeat purchases in the calibration period</text>"#,
        left + plot_w / 2.0,
        HEIGHT - 12.0
    ));
    svg.finish()
}

/// The P(alive) matrix as a heatmap: frequency across, recency down from the most recent
/// (recency = age, at the top) to the least, colour from dark (0) to yellow (1).
pub fn p_alive_svg(matrix: &PAliveMatrix, model_name: &str) -> String {
    let (left, right, top, bottom) = MARGIN;
    let (plot_w, plot_h) = (WIDTH - left - right, HEIGHT - top - bottom);
    let columns = matrix.frequencies.len().max(1);
    let rows = matrix.recencies.len().max(1);
    let (cell_w, cell_h) = (plot_w / columns as f64, plot_h / rows as f64);
    let mut svg = Document::new(
        WIDTH,
        HEIGHT,
        &format!(
            "P(alive) by frequency and recency, customers of age {}: {model_name}",
            short(matrix.age)
        ),
    );
    for (row, values) in matrix.p_alive.iter().enumerate() {
        // The most recent purchases on top.
        let py = top + plot_h - (row + 1) as f64 * cell_h;
        for (column, &p) in values.iter().enumerate() {
            svg.line(format!(
                r#"<rect x="{:.2}" y="{py:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                left + column as f64 * cell_w,
                cell_w + 0.3,
                cell_h + 0.3,
                colour(p)
            ));
        }
    }
    svg.line(format!(
        r#"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    ));
    let ticks = |values: &[f64]| -> Vec<usize> {
        let step = values.len().div_ceil(6).max(1);
        (0..values.len())
            .step_by(step)
            .chain([values.len().saturating_sub(1)])
            .collect()
    };
    for column in ticks(&matrix.frequencies) {
        svg.line(format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            left + (column as f64 + 0.5) * cell_w,
            top + plot_h + 18.0,
            matrix.frequencies[column]
        ));
    }
    for row in ticks(&matrix.recencies) {
        svg.line(format!(
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            top + plot_h - (row as f64 + 0.5) * cell_h + 4.0,
            matrix.recencies[row]
        ));
    }
    // The colour scale.
    let (bar_x, bar_w) = (left + plot_w + 30.0, 18.0);
    for step in 0..50 {
        let p = f64::from(step) / 49.0;
        svg.line(format!(
            r#"<rect x="{bar_x}" y="{:.2}" width="{bar_w}" height="{:.2}" fill="{}"/>"#,
            top + plot_h * (1.0 - p) - plot_h / 50.0,
            plot_h / 50.0 + 0.5,
            colour(p)
        ));
    }
    let scale = Axis::nice((0.0, 100.0), 4);
    for tick in scale.ticks() {
        svg.line(format!(
            r#"<text x="{}" y="{:.1}">{}</text>"#,
            bar_x + bar_w + 6.0,
            top + plot_h * (1.0 - tick / 100.0) + 4.0,
            scale.label(tick, Unit::Percent)
        ));
    }
    svg.line(format!(
        r#"<text x="{bar_x}" y="{}">P(alive)</text>"#,
        top - 8.0
    ));
    svg.line(format!(
        r#"<text x="{}" y="{}" text-anchor="middle">frequency (repeat purchases)</text>"#,
        left + plot_w / 2.0,
        HEIGHT - 12.0
    ));
    svg.line(format!(
        r#"<text x="22" y="{0}" transform="rotate(-90 22 {0})" text-anchor="middle">recency (time of the last purchase)</text>"#,
        top + plot_h / 2.0
    ));
    svg.finish()
}

/// A colour for `p` in [0, 1]: dark blue through teal and green to yellow (viridis' stops).
fn colour(p: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let scaled = p * (STOPS.len() - 1) as f64;
    let k = (scaled.floor() as usize).min(STOPS.len() - 2);
    let t = scaled - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btyd::bgnbd::BgNbd;

    const CDNOW: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    fn holdout(frequency: f64, recency: f64, age: f64, purchases: f64) -> Holdout {
        Holdout {
            history: History {
                frequency,
                recency,
                age,
            },
            frequency: purchases,
            duration: 39.0,
        }
    }

    #[test]
    fn buckets_average_actual_and_predicted_purchases_by_frequency() {
        let customers = [
            holdout(0.0, 0.0, 38.0, 0.0),
            holdout(0.0, 0.0, 30.0, 2.0),
            holdout(2.0, 20.0, 38.0, 1.0),
            holdout(9.0, 35.0, 38.0, 5.0),
            holdout(30.0, 37.0, 38.0, 11.0),
        ];
        let buckets = holdout_buckets(&CDNOW, &customers);
        let labels: Vec<String> = buckets.iter().map(HoldoutBucket::label).collect();
        assert_eq!(labels, ["0", "2", "7+"]);
        assert_eq!(buckets[0].customers, 2);
        assert_eq!(buckets[0].actual, 1.0);
        let predicted = (CDNOW.expected_purchases(customers[0].history, 39.0)
            + CDNOW.expected_purchases(customers[1].history, 39.0))
            / 2.0;
        assert!((buckets[0].predicted - predicted).abs() < 1e-12);
        assert_eq!((buckets[2].customers, buckets[2].actual), (2, 8.0));
        let svg = holdout_svg(&buckets, "bgnbd");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">7+</text>") && svg.contains("n=2"), "{svg}");
    }

    #[test]
    fn the_matrix_is_a_grid_of_probabilities_sampled_to_its_cap() {
        let matrix = p_alive_matrix(&CDNOW, 250.0, 40.0, MAX_MATRIX_CELLS);
        assert_eq!(matrix.frequencies.len(), 41);
        assert_eq!(matrix.recencies.len(), MAX_MATRIX_CELLS);
        assert_eq!(matrix.recencies.last(), Some(&250.0));
        for row in &matrix.p_alive {
            assert_eq!(row.len(), 41);
            assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
            // Without a repeat purchase a customer is alive (BG/NBD).
            assert_eq!(row[0], 1.0);
        }
        // A recent purchase makes a frequent buyer likelier to be alive.
        let top = &matrix.p_alive[matrix.recencies.len() - 1];
        assert!(top[40] > matrix.p_alive[0][40]);
        let svg = p_alive_svg(&matrix, "bgnbd");
        assert_eq!(svg.matches("<rect").count(), 41 * 100 + 50 + 2);
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#fde725");
    }
}
