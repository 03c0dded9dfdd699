//! What-if scenarios over the CRV columns: a scenario adjusts every customer's margin and
//! retention, and a campaign's uplift gives each customer an expected incremental value
//! `delta = p * (PV(with uplift) - PV(without))` (the one-off terms cancel). [`scenario_scalar`]
//! is the f64 specification. On SIMD lanes, `BaseLanes` gives the CRV without uplift and
//! `UpliftLanes` the delta on top of it, both through the same `Lanes::present_value` as the
//! plain CRV; `ScenarioLanes` (one scenario, values written) and `FusedScenarios` (many
//! scenarios grouped by their CRV without uplift, totals only) put them together for the passes
//! that `kernel/mod.rs` runs on rayon.
//!
//! Adjusted columns are rounded to f32 before the formula, as if the store held them: the lanes
//! and the scalar reference see the same adjusted inputs, and they agree within
//! [`TOLERANCE_RELATIVE`] of the terms' magnitude plus [`TOLERANCE_ABSOLUTE`].

use super::crv::{
    CrvInputs, LANES, Lane, LaneSums, LaneTotal, Lanes, Rows, ScoreTotals, TOLERANCE_ABSOLUTE,
    TOLERANCE_RELATIVE, annuity_factor, count_non_finite, load, load_tail, present_value,
};
use crate::model::ScoreParams;

/// Rows per block of the fused pass: every scenario runs over one block while its columns sit
/// in cache. 1024 rows of up to 8 columns are 32 KiB, plus 20 KiB of per-group scratch.
pub(crate) const BLOCK_ROWS: usize = 1024;

/// One scenario's parameters as the kernel takes them, validated at the edge (domains below;
/// a response column has one probability in [0, 1] per customer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioParams<'a> {
    /// Discount rate and horizon.
    pub score: ScoreParams,
    /// Factor on every customer's margin, finite and >= 0 (1: as stored).
    pub margin_multiplier: f64,
    /// Added to every customer's retention, the sum clamped to [0, 1]; in [-1, 1] (0: as stored).
    pub retention_shift: f64,
    /// The campaign's effect on a responder; `None`: no uplift, every delta is zero.
    pub uplift: Option<Uplift<'a>>,
}

impl ScenarioParams<'_> {
    /// The plain scoring of `score`: no adjustment, no uplift.
    pub fn plain(score: ScoreParams) -> Self {
        ScenarioParams {
            score,
            margin_multiplier: 1.0,
            retention_shift: 0.0,
            uplift: None,
        }
    }
}

/// What a contacted customer who responds gains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uplift<'a> {
    /// Added to the responder's (adjusted) retention, capped at 1; in [0, 1].
    pub retention: f64,
    /// Relative increase of the responder's margin (0.1: +10%); finite and > -1.
    pub margin: f64,
    /// The probability that a contacted customer responds.
    pub response: Response<'a>,
}

/// A response probability: one for everyone, or a column with one per customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Response<'a> {
    /// The same probability in [0, 1] for every customer.
    Constant(f64),
    /// One probability in [0, 1] per customer, row by row.
    Column(&'a [f32]),
}

/// Sums of one scenario over the customers scored.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScenarioTotals {
    /// The CRV without uplift (after the scenario's adjustments).
    pub crv: ScoreTotals,
    /// Sum of the positive expected incremental values `max(delta, 0)`: what contacting every
    /// customer worth contacting would add.
    pub positive_delta: f64,
    /// Customers whose expected incremental value is infinite or NaN (an uplift into a
    /// perpetuity at `q = 1`, or an f32 overflow); `positive_delta` is meaningless then.
    pub non_finite_delta: u64,
}

impl ScenarioTotals {
    /// Totals of `self`'s rows followed by `next`'s rows.
    pub fn merge(self, next: ScenarioTotals) -> ScenarioTotals {
        ScenarioTotals {
            crv: self.crv.merge(next.crv),
            positive_delta: self.positive_delta + next.positive_delta,
            non_finite_delta: self.non_finite_delta + next.non_finite_delta,
        }
    }
}

/// The f64 specification of a scenario: every customer's CRV without uplift into `crv_out` and
/// expected incremental value into `delta_out` (both rounded to f32), with their totals.
///
/// `margin' = f32(margin * margin_multiplier)`, `retention' = f32(clamp(retention +
/// retention_shift, 0, 1))`, `CRV = PV(margin', retention') + one-off terms`; with an uplift,
/// `margin'' = f32(margin' * (1 + margin_uplift))`, `retention'' = f32(min(retention' +
/// retention_uplift, 1))` and `delta = p * (PV(margin'', retention'') - PV(margin', retention'))`
/// in f64. Edge cases as [`super::crv_scalar`]; an infinite PV on both sides makes delta NaN.
///
/// # Panics
///
/// If the columns' lengths differ, or the outputs or a response column differ from them.
pub fn scenario_scalar(
    inputs: &CrvInputs<'_>,
    scenario: &ScenarioParams<'_>,
    crv_out: &mut [f32],
    delta_out: &mut [f32],
) -> ScenarioTotals {
    expect_rows(inputs, scenario);
    inputs.expect_rows(crv_out);
    inputs.expect_rows(delta_out);
    let column = |column: Option<&[f32]>, row: usize| column.map_or(0.0, |c| f64::from(c[row]));
    let params = &scenario.score;
    let mut totals = ScenarioTotals::default();
    for row in 0..inputs.len() {
        let retention_cost = column(inputs.retention_cost, row);
        let margin = inputs.margin[row] * scenario.margin_multiplier as f32;
        let retention = (inputs.retention[row] + scenario.retention_shift as f32).clamp(0.0, 1.0);
        let base = present_value(margin, retention_cost, retention, params);
        let crv = base + column(inputs.referral_value, row) + column(inputs.competence_value, row)
            - column(inputs.development_cost, row)
            - column(inputs.acquisition_cost, row);
        let delta = scenario.uplift.map_or(0.0, |uplift| {
            let margin = margin * (1.0 + uplift.margin) as f32;
            let retention = (retention + uplift.retention as f32).min(1.0);
            let response = match uplift.response {
                Response::Constant(p) => p,
                Response::Column(p) => f64::from(p[row]),
            };
            response * (present_value(margin, retention_cost, retention, params) - base)
        });
        crv_out[row] = crv as f32;
        delta_out[row] = delta as f32;
        totals.crv.add(f64::from(crv_out[row]));
        totals.positive_delta += f64::from(delta_out[row]).max(0.0);
        totals.non_finite_delta += u64::from(!delta_out[row].is_finite());
    }
    totals
}

/// The bound the lanes keep to against [`scenario_scalar`] for one customer's delta:
/// `TOLERANCE_RELATIVE * p * (magnitude with uplift + magnitude without) + TOLERANCE_ABSOLUTE`,
/// a magnitude being `(|margin| + |retention_cost|) * annuity_factor(retention)` of the
/// adjusted inputs. The CRV itself keeps to the plain kernel's bound.
pub fn delta_tolerance(
    margin: f32,
    retention_cost: f32,
    retention: f32,
    scenario: &ScenarioParams<'_>,
    response: f64,
) -> f64 {
    let params = &scenario.score;
    let margin = margin * scenario.margin_multiplier as f32;
    let retention = (retention + scenario.retention_shift as f32).clamp(0.0, 1.0);
    let magnitude = |margin: f32, retention: f32| {
        let per_period = f64::from(margin).abs() + f64::from(retention_cost).abs();
        // Nothing per period is worth nothing, even over an infinite annuity.
        if per_period == 0.0 {
            0.0
        } else {
            per_period * annuity_factor(f64::from(retention), params)
        }
    };
    let uplifted = scenario.uplift.map_or(0.0, |uplift| {
        magnitude(
            margin * (1.0 + uplift.margin) as f32,
            (retention + uplift.retention as f32).min(1.0),
        )
    });
    let magnitude = uplifted + magnitude(margin, retention);
    if response == 0.0 {
        TOLERANCE_ABSOLUTE
    } else {
        TOLERANCE_RELATIVE * response * magnitude + TOLERANCE_ABSOLUTE
    }
}

/// Panics unless the columns and any response column have the same rows.
pub(crate) fn expect_rows(inputs: &CrvInputs<'_>, scenario: &ScenarioParams<'_>) {
    if let Err(error) = inputs.validate() {
        panic!("CRV inputs not validated: {error}");
    }
    if let Some(Uplift {
        response: Response::Column(response),
        ..
    }) = scenario.uplift
    {
        assert_eq!(
            response.len(),
            inputs.len(),
            "one response rate per customer"
        );
    }
}

/// A scenario broadcast to lanes once per call.
pub(crate) struct ScenarioLanes<'a> {
    base: BaseLanes,
    uplift: Option<UpliftLanes<'a>>,
}

/// What gives a scenario's CRV without uplift: its scoring parameters and adjustments.
#[derive(Clone, Copy)]
struct BaseLanes {
    lanes: Lanes,
    /// Margin factor and retention shift; `None` when both are neutral, so a plain scenario
    /// computes exactly what the plain kernel computes.
    adjust: Option<(Lane, Lane)>,
}

struct UpliftLanes<'a> {
    retention: Lane,
    /// `1 + margin uplift`.
    margin_factor: Lane,
    response: ResponseLanes<'a>,
}

enum ResponseLanes<'a> {
    Constant(Lane),
    Column(&'a [f32]),
}

/// One vector of customers without uplift: the adjusted inputs, their present value and CRV.
#[derive(Clone, Copy)]
struct Base {
    margin: Lane,
    retention: Lane,
    retention_cost: Lane,
    present_value: Lane,
    crv: Lane,
}

impl BaseLanes {
    fn new(scenario: &ScenarioParams<'_>) -> Self {
        let neutral = scenario.margin_multiplier == 1.0 && scenario.retention_shift == 0.0;
        BaseLanes {
            lanes: Lanes::new(&scenario.score),
            adjust: (!neutral).then(|| {
                (
                    Lane::splat(scenario.margin_multiplier as f32),
                    Lane::splat(scenario.retention_shift as f32),
                )
            }),
        }
    }

    #[inline(always)]
    fn evaluate(&self, rows: &Rows) -> Base {
        let (margin, retention) = match self.adjust {
            None => (rows.margin, rows.retention),
            Some((factor, shift)) => (
                rows.margin * factor,
                (rows.retention + shift)
                    .fast_max(Lane::ZERO)
                    .fast_min(Lane::ONE),
            ),
        };
        let present_value = self
            .lanes
            .present_value(margin, rows.retention_cost, retention);
        Base {
            margin,
            retention,
            retention_cost: rows.retention_cost,
            present_value,
            crv: present_value + rows.one_off(),
        }
    }
}

impl<'a> UpliftLanes<'a> {
    fn new(scenario: &ScenarioParams<'a>) -> Option<Self> {
        scenario.uplift.map(|uplift| UpliftLanes {
            retention: Lane::splat(uplift.retention as f32),
            margin_factor: Lane::splat((1.0 + uplift.margin) as f32),
            response: match uplift.response {
                Response::Constant(p) => ResponseLanes::Constant(Lane::splat(p as f32)),
                Response::Column(column) => ResponseLanes::Column(column),
            },
        })
    }

    /// The delta of one vector on its `base`; `response` loads the vector of a response column
    /// at the same rows.
    #[inline(always)]
    fn delta(&self, lanes: &Lanes, base: &Base, response: impl Fn(&[f32]) -> Lane) -> Lane {
        let uplifted = lanes.present_value(
            base.margin * self.margin_factor,
            base.retention_cost,
            (base.retention + self.retention).fast_min(Lane::ONE),
        );
        let p = match self.response {
            ResponseLanes::Constant(p) => p,
            ResponseLanes::Column(column) => response(column),
        };
        p * (uplifted - base.present_value)
    }
}

/// The vector of `column` at `start` in a block of `len` rows that starts at store row `first`
/// (zero-padded past the block's last row).
#[inline(always)]
fn load_at(column: &[f32], first: usize, start: usize, len: usize) -> Lane {
    if start + LANES <= len {
        load(column, first + start)
    } else {
        load_tail(&column[..first + len], first + start)
    }
}

impl<'a> ScenarioLanes<'a> {
    /// Broadcasts the parameters; the caller checks the rows ([`expect_rows`]).
    pub(crate) fn new(scenario: &ScenarioParams<'a>) -> Self {
        ScenarioLanes {
            base: BaseLanes::new(scenario),
            uplift: UpliftLanes::new(scenario),
        }
    }

    /// Writes one chunk's CRV (and delta when `delta_out` is given) and returns its totals,
    /// summed in the same order as the fused pass ([`FusedScenarios::totals_chunk`]).
    pub(crate) fn values_chunk(
        &self,
        inputs: &CrvInputs<'_>,
        first: usize,
        crv_out: &mut [f32],
        mut delta_out: Option<&mut [f32]>,
    ) -> ScenarioTotals {
        let mut sums = ScenarioSums::default();
        let len = inputs.len();
        for start in (0..len).step_by(LANES) {
            let count = LANES.min(len - start);
            let rows = if count == LANES {
                Rows::new(inputs, start)
            } else {
                Rows::tail(inputs, start)
            };
            let base = self.base.evaluate(&rows);
            let delta = self.uplift.as_ref().map_or(Lane::ZERO, |uplift| {
                uplift.delta(&self.base.lanes, &base, |column| {
                    load_at(column, first, start, len)
                })
            });
            crv_out[start..start + count].copy_from_slice(&base.crv.to_array()[..count]);
            if let Some(delta_out) = delta_out.as_deref_mut() {
                delta_out[start..start + count].copy_from_slice(&delta.to_array()[..count]);
            }
            sums.crv.add(base.crv);
            sums.delta.add(delta);
        }
        sums.into_totals(len)
    }
}

/// Per-lane sums of one scenario over one chunk.
#[derive(Default)]
pub(crate) struct ScenarioSums {
    crv: LaneSums,
    delta: DeltaSums,
}

impl ScenarioSums {
    fn into_totals(self, customers: usize) -> ScenarioTotals {
        ScenarioTotals {
            crv: self.crv.into_totals(customers),
            positive_delta: self.delta.positive.total(),
            non_finite_delta: self.delta.non_finite,
        }
    }
}

/// Per-lane sums of the positive deltas, and the count of non-finite ones.
#[derive(Default)]
struct DeltaSums {
    positive: LaneTotal,
    non_finite: u64,
}

impl DeltaSums {
    #[inline(always)]
    fn add(&mut self, delta: Lane) {
        self.positive.add(delta.fast_max(Lane::ZERO));
        self.non_finite += count_non_finite(delta);
    }
}

/// The scenarios of a fused pass, grouped by their CRV without uplift (same discount, horizon,
/// margin multiplier and retention shift): each group's CRV is evaluated once per vector and
/// each member's uplift on top of it. A sweep of discount x horizon x uplift has one group per
/// (discount, horizon).
pub(crate) struct FusedScenarios<'a> {
    groups: Vec<Group<'a>>,
    scenarios: usize,
}

struct Group<'a> {
    key: (ScoreParams, f64, f64),
    base: BaseLanes,
    /// Each member's index among the scenarios and its uplift.
    members: Vec<(usize, Option<UpliftLanes<'a>>)>,
}

impl<'a> FusedScenarios<'a> {
    /// Groups `scenarios`; the caller checks the rows ([`expect_rows`]).
    pub(crate) fn new(scenarios: &[ScenarioParams<'a>]) -> Self {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for (index, scenario) in scenarios.iter().enumerate() {
            let key = (
                scenario.score,
                scenario.margin_multiplier,
                scenario.retention_shift,
            );
            let member = (index, UpliftLanes::new(scenario));
            match groups.iter_mut().find(|group| group.key == key) {
                Some(group) => group.members.push(member),
                None => groups.push(Group {
                    key,
                    base: BaseLanes::new(scenario),
                    members: vec![member],
                }),
            }
        }
        FusedScenarios {
            groups,
            scenarios: scenarios.len(),
        }
    }

    /// The fused pass over one chunk (rows `first..first + inputs.len()`): block by block, each
    /// group evaluates its CRV over the block (kept in a block-sized scratch), then each member
    /// its delta, while the block is in cache. Every scenario's vectors are summed in row order
    /// with the same operations as [`ScenarioLanes::values_chunk`], so its totals equal a
    /// one-scenario pass bit for bit.
    pub(crate) fn totals_chunk(&self, inputs: &CrvInputs<'_>, first: usize) -> Vec<ScenarioTotals> {
        let mut crv_sums: Vec<LaneSums> = self.groups.iter().map(|_| LaneSums::default()).collect();
        let mut delta_sums: Vec<DeltaSums> =
            (0..self.scenarios).map(|_| DeltaSums::default()).collect();
        let mut bases: Vec<Base> = Vec::with_capacity(BLOCK_ROWS / LANES);
        for block_start in (0..inputs.len()).step_by(BLOCK_ROWS) {
            let len = BLOCK_ROWS.min(inputs.len() - block_start);
            let block = inputs.slice(block_start, len);
            let block_first = first + block_start;
            for (group, crv_sums) in self.groups.iter().zip(&mut crv_sums) {
                // Local copies keep the accumulators in registers over the block (measured: a
                // quarter of the pass went to storing them every vector); same order of sums.
                let mut sums = std::mem::take(crv_sums);
                bases.clear();
                for start in (0..len).step_by(LANES) {
                    let rows = if start + LANES <= len {
                        Rows::new(&block, start)
                    } else {
                        Rows::tail(&block, start)
                    };
                    let base = group.base.evaluate(&rows);
                    sums.add(base.crv);
                    bases.push(base);
                }
                *crv_sums = sums;
                for (index, uplift) in &group.members {
                    // Without uplift every delta is zero: the sums stay at their defaults.
                    let Some(uplift) = uplift else { continue };
                    let mut sums = std::mem::take(&mut delta_sums[*index]);
                    for (vector, base) in bases.iter().enumerate() {
                        let delta = uplift.delta(&group.base.lanes, base, |column| {
                            load_at(column, block_first, vector * LANES, len)
                        });
                        sums.add(delta);
                    }
                    delta_sums[*index] = sums;
                }
            }
        }
        let mut totals = vec![ScenarioTotals::default(); self.scenarios];
        for (group, crv_sums) in self.groups.iter().zip(crv_sums) {
            let crv = crv_sums.into_totals(inputs.len());
            for (index, _) in &group.members {
                totals[*index].crv = crv;
            }
        }
        for (totals, delta) in totals.iter_mut().zip(delta_sums) {
            totals.positive_delta = delta.positive.total();
            totals.non_finite_delta = delta.non_finite;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::crv_scalar;
    use crate::model::Horizon;

    #[test]
    fn a_plain_scenario_is_the_plain_crv_with_zero_delta() {
        let margin = [10.0, -3.0, 0.0, 250.5, 7.0];
        let retention = [0.8, 0.5, 1.0, 0.99, 0.0];
        let inputs = CrvInputs::new(&margin, &retention);
        let params = ScoreParams::default();
        let mut plain = [0.0; 5];
        crv_scalar(&inputs, &params, &mut plain);
        let (mut crv, mut delta) = ([0.0; 5], [1.0; 5]);
        scenario_scalar(
            &inputs,
            &ScenarioParams::plain(params),
            &mut crv,
            &mut delta,
        );
        assert_eq!(crv, plain);
        assert_eq!(delta, [0.0; 5]);
    }

    #[test]
    fn uplift_caps_retention_at_one_and_scales_by_the_response_rate() {
        let margin = [10.0];
        let retention = [0.95];
        let inputs = CrvInputs::new(&margin, &retention);
        let scenario = ScenarioParams {
            score: ScoreParams {
                discount: 0.0,
                horizon: Horizon::Periods(2),
            },
            uplift: Some(Uplift {
                retention: 0.5,
                margin: 1.0,
                response: Response::Constant(0.5),
            }),
            ..ScenarioParams::plain(ScoreParams::default())
        };
        let (mut crv, mut delta) = ([0.0], [0.0]);
        scenario_scalar(&inputs, &scenario, &mut crv, &mut delta);
        // Without: 10 * (0.95 + 0.95^2); with: 20 * (1 + 1) = 40.
        let base = 10.0 * (0.95f64 + 0.95 * 0.95);
        assert!((f64::from(crv[0]) - base).abs() < 1e-4);
        assert!((f64::from(delta[0]) - 0.5 * (40.0 - base)).abs() < 1e-4);
    }
}
