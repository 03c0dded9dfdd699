//! Realistic synthetic customers for `crv gen`, benches and tests: [`generate`] draws row `i`
//! from `(seed, i)` alone, so any row, range or order of rows gives the same customers.
//!
//! The distributions follow the model of docs/model.md at its defaults (discount 0.10, 5 periods of a
//! year): lognormal margins, so the top fifth of customers holds about 70% of the positive CRV;
//! Beta retention averaging 0.75; about 10% of customers with negative CRV; RFM columns (in weeks)
//! consistent with the margin. Every value is rounded to the decimals the CSV writes, so
//! in-memory customers equal the ones read back from the file.

mod columnar;
pub mod demo;
pub mod events;
pub mod purchases;
pub mod rng;
mod writer;

use std::fmt;

use crate::model::CustomerId;
use crate::store::schema;

pub use columnar::write_customers_parquet;
pub use rng::RowRng;
pub use writer::write_customers_csv;

/// The text attributes `crv gen` writes after the known columns.
pub const ATTRIBUTES: &[&str] = &["segment", "region"];

/// The CSV header, in column order: the id, every column of the schema
/// ([`crate::store::schema::KNOWN_COLUMNS`], in its order), then the [`ATTRIBUTES`].
pub fn columns() -> Vec<&'static str> {
    std::iter::once(schema::CUSTOMER_ID)
        .chain(schema::KNOWN_COLUMNS.iter().map(|column| column.name))
        .chain(ATTRIBUTES.iter().copied())
        .collect()
}

/// Rows per seed: customer ids are a permutation of a 40-bit range, so rows from 2^40 on
/// would repeat ids.
pub const MAX_CUSTOMERS: u64 = 1 << ID_BITS;

/// Width of the id permutation's domain.
const ID_BITS: u32 = 40;

/// Added to every permuted row number so that all ids have 13 digits (and stay below 2^53,
/// exact in JSON numbers).
const ID_OFFSET: u64 = 1_000_000_000_000;

/// Median margin per period (a year), in currency units.
const MARGIN_MEDIAN: f64 = 120.0;
/// Log-scale spread of margins; sets how concentrated value is (Pareto's 80/20 near 1.3).
const MARGIN_LOG_SD: f64 = 1.1;
/// Share of customers whose retention is exactly 0 (one-off buyers) or exactly 1 (contracts).
const RETENTION_EXACT_SHARE: f64 = 0.002;
/// Share of rows that are prospects: positive acquisition cost, no purchase history yet.
const PROSPECT_SHARE: f64 = 0.05;
/// Bounds of the contact cost, in currency units.
const COST_MIN: f64 = 1.0;
const COST_MAX: f64 = 50.0;
/// Weeks per period: RFM columns count weeks, margins are per year.
const WEEKS_PER_PERIOD: f64 = 52.0;
/// Oldest customer relationship, in weeks (20 years).
const AGE_MAX_WEEKS: f64 = 1040.0;

/// A marketer's value segment, assigned from a noisy view of the margin: correlated with CRV,
/// but not a copy of it (about 10% gold, 20% silver, 30% bronze, 40% basic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The top tenth by estimated value.
    Gold,
    /// The next fifth.
    Silver,
    /// The next three tenths.
    Bronze,
    /// The rest.
    Basic,
}

impl Segment {
    /// The segment's name as written in the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Gold => "gold",
            Segment::Silver => "silver",
            Segment::Bronze => "bronze",
            Segment::Basic => "basic",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sales region, independent of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// 22% of customers.
    North,
    /// 18% of customers.
    South,
    /// 20% of customers.
    East,
    /// 15% of customers.
    West,
    /// 25% of customers.
    Central,
}

impl Region {
    /// The region's name as written in the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::North => "north",
            Region::South => "south",
            Region::East => "east",
            Region::West => "west",
            Region::Central => "central",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One synthetic customer: a row of the CSV, with the column meanings of docs/model.md.
///
/// Money is rounded to cents and retention to 4 decimals, as written; every float is finite,
/// every cost >= 0, `retention` in [0, 1], `recency <= age`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    /// Unique within a seed's first [`MAX_CUSTOMERS`] rows; 13 digits, not sequential.
    pub customer_id: CustomerId,
    /// Contribution margin per period, > 0 (lognormal).
    pub margin: f64,
    /// Probability of keeping the customer one more period, in [0, 1].
    pub retention: f64,
    /// Cost per period to serve and retain, >= 0; above the margin for some customers.
    pub retention_cost: f64,
    /// One-off development spend (present value), >= 0; zero for most customers.
    pub development_cost: f64,
    /// One-off cost to win a prospect (present value), >= 0; zero for customers already won.
    pub acquisition_cost: f64,
    /// Value of the customer's recommendations (present value), >= 0.
    pub referral_value: f64,
    /// What the firm learns from the customer (present value), >= 0.
    pub competence_value: f64,
    /// Campaign contact cost, in [1, 50] currency units.
    pub cost: f64,
    /// Repeat purchases since the first one.
    pub frequency: u32,
    /// Weeks from the first purchase to the last one; 0 when `frequency` is 0.
    pub recency: u32,
    /// Weeks from the first purchase to the end of observation; 0 for prospects.
    pub age: u32,
    /// Mean spend per repeat purchase, > 0 when `frequency` > 0, else 0.
    pub monetary_value: f64,
    /// Marketing value segment.
    pub segment: Segment,
    /// Sales region.
    pub region: Region,
}

impl Customer {
    /// How many known columns there are ([`schema::KNOWN_COLUMNS`]).
    pub const KNOWN_VALUES: usize = 12;

    /// The customer's values of the known columns, in [`schema::KNOWN_COLUMNS`] order.
    pub fn known_values(&self) -> [f64; Self::KNOWN_VALUES] {
        [
            self.margin,
            self.retention,
            self.retention_cost,
            self.development_cost,
            self.acquisition_cost,
            self.referral_value,
            self.competence_value,
            self.cost,
            f64::from(self.frequency),
            f64::from(self.recency),
            f64::from(self.age),
            self.monetary_value,
        ]
    }
}

const _: () = assert!(Customer::KNOWN_VALUES == schema::KNOWN_COLUMNS.len());

/// Row `row` of the data set for `seed`; depends on nothing else.
///
/// Rows from [`MAX_CUSTOMERS`] on are still customers, but their ids repeat earlier ones.
pub fn generate(seed: u64, row: u64) -> Customer {
    let mut rng = RowRng::new(seed, row);
    let (z_margin, z_segment) = rng.normal_pair();
    let (z_service, z_contact) = rng.normal_pair();
    let (z_purchases, z_frequency) = rng.normal_pair();
    let (z_development, z_acquisition) = rng.normal_pair();

    let margin = MARGIN_MEDIAN * (MARGIN_LOG_SD * z_margin).exp();
    let retention = draw_retention(&mut rng, z_margin);
    // Serving cost: a share of the margin plus a fixed part, so that small customers cost
    // more than they bring.
    let retention_cost = margin * 0.25 * (0.35 * z_service).exp() + 12.0 * rng.exponential();
    let development_cost = if rng.chance(0.03) {
        // A big push that does not pay back within the horizon.
        margin * (2.0 + 3.0 * rng.exponential())
    } else if rng.chance(0.20) {
        margin * 0.3 * (0.5 * z_development).exp()
    } else {
        0.0
    };
    let prospect = rng.chance(PROSPECT_SHARE);
    let acquisition_cost = if prospect {
        150.0 * (0.6 * z_acquisition).exp()
    } else {
        0.0
    };
    let referral_value = if rng.chance(0.35) {
        margin * 0.15 * rng.exponential()
    } else {
        0.0
    };
    let competence_value = if rng.chance(0.12) {
        25.0 * rng.exponential()
    } else {
        0.0
    };
    // Log-logit-normal between the bounds: heavy on the log scale, mildly tied to value.
    let contact_logit = -0.4 + 0.35 * z_margin + 0.9 * z_contact;
    let cost = COST_MIN * (COST_MAX / COST_MIN).powf(1.0 / (1.0 + (-contact_logit).exp()));

    let purchases_per_period = 4.0 * (0.4 * z_margin + 0.5 * z_purchases).exp();
    let (frequency, recency, age) = if prospect {
        (0, 0, 0)
    } else {
        draw_rfm(&mut rng, retention, purchases_per_period, z_frequency)
    };
    let monetary_value = if frequency > 0 {
        // Margin is 20-40% of spend.
        margin / (purchases_per_period * (0.2 + 0.2 * rng.uniform()))
    } else {
        0.0
    };

    Customer {
        customer_id: CustomerId(permute_id(seed, row)),
        margin: to_cents(margin),
        retention: (retention * 1e4).round() / 1e4,
        retention_cost: to_cents(retention_cost),
        development_cost: to_cents(development_cost),
        acquisition_cost: to_cents(acquisition_cost),
        referral_value: to_cents(referral_value),
        competence_value: to_cents(competence_value),
        cost: to_cents(cost),
        frequency,
        recency,
        age,
        monetary_value: to_cents(monetary_value),
        segment: segment_of(z_margin + 0.5 * z_segment),
        region: draw_region(&mut rng),
    }
}

/// Beta(a, 2) retention, more loyal for bigger margins (a = 5, 6, 7 by margin tercile: means
/// 0.71, 0.75, 0.78), with rare exact 0s and 1s.
fn draw_retention(rng: &mut RowRng, z_margin: f64) -> f64 {
    let exact = rng.uniform();
    if exact < RETENTION_EXACT_SHARE {
        return 0.0;
    }
    if exact < 2.0 * RETENTION_EXACT_SHARE {
        return 1.0;
    }
    // ±0.4307 cut a standard normal in thirds.
    let a = if z_margin < -0.4307 {
        5
    } else if z_margin > 0.4307 {
        7
    } else {
        6
    };
    rng.beta_whole_a_2(a)
}

/// Frequency, recency and age in weeks for a customer already won.
fn draw_rfm(
    rng: &mut RowRng,
    retention: f64,
    purchases_per_period: f64,
    z_frequency: f64,
) -> (u32, u32, u32) {
    // Loyal customers have been around longer: mean age 1.5 years at retention 0, 3 at 1.
    let age_weeks = (WEEKS_PER_PERIOD * 1.5 * (1.0 + retention) * rng.exponential())
        .clamp(1.0, AGE_MAX_WEEKS)
        .round();
    // Lapsed customers (more often the disloyal) stopped buying at some point of their age.
    let active_weeks = if rng.chance(retention) {
        age_weeks
    } else {
        age_weeks * rng.uniform()
    };
    let expected = purchases_per_period * active_weeks / WEEKS_PER_PERIOD;
    let frequency = (expected * (0.25 * z_frequency).exp() + rng.uniform()).floor();
    // The last of `frequency` purchases spread uniformly over the active weeks.
    let recency = if frequency > 0.0 {
        (active_weeks * rng.uniform_open0().powf(1.0 / frequency)).floor()
    } else {
        0.0
    };
    (frequency as u32, recency as u32, age_weeks as u32)
}

/// The segment for a standard-normal value estimate: cuts at its 90th, 70th and 40th
/// percentiles (the estimate's standard deviation is sqrt(1.25)).
fn segment_of(estimate: f64) -> Segment {
    if estimate > 1.433 {
        Segment::Gold
    } else if estimate > 0.586 {
        Segment::Silver
    } else if estimate > -0.283 {
        Segment::Bronze
    } else {
        Segment::Basic
    }
}

fn draw_region(rng: &mut RowRng) -> Region {
    match rng.uniform() {
        u if u < 0.22 => Region::North,
        u if u < 0.40 => Region::South,
        u if u < 0.60 => Region::East,
        u if u < 0.75 => Region::West,
        _ => Region::Central,
    }
}

/// Rounds to whole cents, as the CSV writes it.
fn to_cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A keyed bijection of the 40-bit row range (xor-multiply-xorshift rounds, each invertible
/// modulo 2^40), shifted to 13-digit ids: unique and non-sequential.
fn permute_id(seed: u64, row: u64) -> u64 {
    const MASK: u64 = MAX_CUSTOMERS - 1;
    let key = rng::mix64(seed ^ 0x6a09_e667_f3bc_c909) & MASK;
    let mut x = (row ^ key) & MASK;
    x = x.wrapping_mul(0x9e37_79b9_7f4b) & MASK;
    x ^= x >> 20;
    x = x.wrapping_mul(0xbf58_476d_1ce5) & MASK;
    x ^= x >> 19;
    x = x.wrapping_mul(0x94d0_49bb_1333) & MASK;
    x ^= x >> 21;
    ID_OFFSET + x
}

/// The customers of one seed in row order, from row 0 up to [`MAX_CUSTOMERS`]; `take(n)` for
/// the first `n` rows, as `crv gen` writes them.
#[derive(Debug, Clone)]
pub struct CustomerGenerator {
    seed: u64,
    next_row: u64,
}

impl CustomerGenerator {
    /// Starts at row 0 of `seed`'s data set.
    pub fn new(seed: u64) -> Self {
        CustomerGenerator { seed, next_row: 0 }
    }
}

impl Iterator for CustomerGenerator {
    type Item = Customer;

    fn next(&mut self) -> Option<Customer> {
        if self.next_row >= MAX_CUSTOMERS {
            return None;
        }
        let customer = generate(self.seed, self.next_row);
        self.next_row += 1;
        Some(customer)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(MAX_CUSTOMERS - self.next_row);
        (remaining.unwrap_or(usize::MAX), remaining.ok())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// CRV at the model's defaults (discount 0.10, 5 periods), through the kernel's scalar
    /// specification of the annuity.
    fn crv_at_default_params(c: &Customer) -> f64 {
        let annuity = crate::kernel::annuity_factor(c.retention, &crate::ScoreParams::default());
        (c.margin - c.retention_cost) * annuity + c.referral_value + c.competence_value
            - c.development_cost
            - c.acquisition_cost
    }

    /// The marketing statistics the module doc promises, over the first `rows` rows.
    struct Profile {
        top_fifth_share: f64,
        negative_share: f64,
        mean_retention: f64,
        prospect_share: f64,
        cost_range: (f64, f64),
    }

    fn profile(seed: u64, rows: usize) -> Profile {
        let customers: Vec<Customer> = CustomerGenerator::new(seed).take(rows).collect();
        let mut crv: Vec<f64> = customers.iter().map(crv_at_default_params).collect();
        crv.sort_by(|a, b| b.total_cmp(a));
        let positive: f64 = crv.iter().filter(|&&v| v > 0.0).sum();
        let top: f64 = crv[..rows / 5].iter().filter(|&&v| v > 0.0).sum();
        let n = rows as f64;
        Profile {
            top_fifth_share: top / positive,
            negative_share: crv.iter().filter(|&&v| v < 0.0).count() as f64 / n,
            mean_retention: customers.iter().map(|c| c.retention).sum::<f64>() / n,
            prospect_share: customers
                .iter()
                .filter(|c| c.acquisition_cost > 0.0)
                .count() as f64
                / n,
            cost_range: customers.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| {
                (lo.min(c.cost), hi.max(c.cost))
            }),
        }
    }

    #[test]
    fn a_row_depends_only_on_seed_and_row_number() {
        let from_iterator = CustomerGenerator::new(9)
            .nth(1234)
            .expect("rows up to 2^40");
        assert_eq!(generate(9, 1234), from_iterator);
        assert_ne!(generate(9, 1234), generate(10, 1234));
    }

    #[test]
    fn customer_ids_are_unique_and_not_sequential() {
        let ids: Vec<u64> = CustomerGenerator::new(1)
            .take(200_000)
            .map(|c| c.customer_id.0)
            .collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert!(
            ids.iter()
                .all(|id| (ID_OFFSET..ID_OFFSET + MAX_CUSTOMERS).contains(id))
        );
        let steps_of_one = ids.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(steps_of_one < 10, "{steps_of_one} sequential ids");
    }

    #[test]
    fn generator_stops_after_the_last_unique_id() {
        let mut last = CustomerGenerator {
            seed: 3,
            next_row: MAX_CUSTOMERS - 1,
        };
        assert_eq!(last.size_hint(), (1, Some(1)));
        assert!(last.next().is_some());
        assert!(last.next().is_none());
    }

    #[test]
    fn values_stay_in_their_domains() {
        let mut exact_retention = (0, 0);
        for c in CustomerGenerator::new(5).take(100_000) {
            let money = [
                c.margin,
                c.retention_cost,
                c.development_cost,
                c.acquisition_cost,
                c.referral_value,
                c.competence_value,
                c.cost,
                c.monetary_value,
            ];
            for value in money {
                assert!(value.is_finite() && value >= 0.0, "{c:?}");
                assert_eq!(value, to_cents(value), "{c:?}");
            }
            assert!(c.margin > 0.0, "{c:?}");
            assert!((0.0..=1.0).contains(&c.retention), "{c:?}");
            assert!((COST_MIN..=COST_MAX).contains(&c.cost), "{c:?}");
            assert!(c.recency <= c.age, "{c:?}");
            assert_eq!(c.frequency > 0, c.monetary_value > 0.0, "{c:?}");
            if c.frequency == 0 {
                assert_eq!(c.recency, 0, "{c:?}");
            }
            if c.acquisition_cost > 0.0 {
                assert_eq!(
                    (c.frequency, c.age),
                    (0, 0),
                    "prospects have no history: {c:?}"
                );
            }
            exact_retention.0 += usize::from(c.retention == 0.0);
            exact_retention.1 += usize::from(c.retention == 1.0);
        }
        // 0.2% each, about 200 in 100k rows: present but rare.
        assert!(
            (100..400).contains(&exact_retention.0),
            "{exact_retention:?}"
        );
        assert!(
            (100..400).contains(&exact_retention.1),
            "{exact_retention:?}"
        );
    }

    #[test]
    fn value_is_concentrated_and_some_customers_destroy_it() {
        for seed in [42, 2024] {
            let p = profile(seed, 100_000);
            assert!(
                (0.6..=0.8).contains(&p.top_fifth_share),
                "{}",
                p.top_fifth_share
            );
            assert!(
                (0.05..=0.15).contains(&p.negative_share),
                "{}",
                p.negative_share
            );
            assert!(
                (0.70..=0.80).contains(&p.mean_retention),
                "{}",
                p.mean_retention
            );
            assert!(
                (0.04..=0.06).contains(&p.prospect_share),
                "{}",
                p.prospect_share
            );
            let (lowest, highest) = p.cost_range;
            assert!(
                lowest >= COST_MIN && highest <= COST_MAX,
                "{lowest}..{highest}"
            );
            assert!(highest > 20.0 * lowest, "heavy tail: {lowest}..{highest}");
        }
    }

    #[test]
    fn segments_rank_customers_by_value() {
        let segments = [
            Segment::Gold,
            Segment::Silver,
            Segment::Bronze,
            Segment::Basic,
        ];
        let mut sums = [(0.0, 0usize); 4];
        for c in CustomerGenerator::new(8).take(100_000) {
            let slot = segments
                .iter()
                .position(|&s| s == c.segment)
                .expect("a segment");
            sums[slot].0 += crv_at_default_params(&c);
            sums[slot].1 += 1;
        }
        let means: Vec<f64> = sums.iter().map(|&(sum, n)| sum / n as f64).collect();
        assert!(means.windows(2).all(|w| w[0] > w[1]), "{means:?}");
        let gold_share = sums[0].1 as f64 / 100_000.0;
        assert!((0.08..=0.12).contains(&gold_share), "{gold_share}");
    }
}
