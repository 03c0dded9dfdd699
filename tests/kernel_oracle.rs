//! Oracles for the kernel: the `wide` lanes agree with the scalar specification (plain CRV and
//! scenarios), the fused multi-scenario pass equals one pass per scenario, results do not depend
//! on the thread count, and tiers match a plain comparison sort by (CRV, id).

use crv::kernel::crv::{TOLERANCE_ABSOLUTE, TOLERANCE_RELATIVE};
use crv::kernel::scenario::delta_tolerance;
use crv::kernel::{
    self, CrvInputs, Response, ScenarioParams, ScoreTotals, TierScheme, Tiers, Uplift,
    annuity_factor, crv_scalar, scenario_scalar, score_lanes,
};
use crv::{Horizon, ScoreParams, Tier};
use proptest::prelude::*;

/// Owned columns for one test case; `None` is a missing optional column.
#[derive(Debug, Clone)]
struct Columns {
    margin: Vec<f32>,
    retention: Vec<f32>,
    optional: [Option<Vec<f32>>; 5],
}

impl Columns {
    fn inputs(&self) -> CrvInputs<'_> {
        let [
            retention_cost,
            referral,
            competence,
            development,
            acquisition,
        ] = self.optional.each_ref().map(Option::as_deref);
        CrvInputs {
            retention_cost,
            referral_value: referral,
            competence_value: competence,
            development_cost: development,
            acquisition_cost: acquisition,
            ..CrvInputs::new(&self.margin, &self.retention)
        }
    }

    /// The scale of the f32 rounding error of row `row`: see `TOLERANCE_RELATIVE`. A net margin
    /// of exactly zero is exactly zero on both sides (f32 and f64 subtract equal values to 0),
    /// so its periodic part adds nothing, even where the annuity factor is infinite.
    fn magnitude(&self, row: usize, params: &ScoreParams) -> f64 {
        let value = |column: &Option<Vec<f32>>| column.as_ref().map_or(0.0, |c| f64::from(c[row]));
        let (margin, cost) = (f64::from(self.margin[row]), value(&self.optional[0]));
        let periodic = if margin == cost {
            0.0
        } else {
            (margin.abs() + cost.abs()) * annuity_factor(f64::from(self.retention[row]), params)
        };
        periodic + self.one_off_magnitude(row)
    }

    /// The sum of the one-off terms' absolute values.
    fn one_off_magnitude(&self, row: usize) -> f64 {
        let value = |column: &Option<Vec<f32>>| column.as_ref().map_or(0.0, |c| f64::from(c[row]));
        self.optional[1..]
            .iter()
            .map(|c| value(c).abs())
            .sum::<f64>()
    }

    /// The largest absolute value an f32 intermediate of row `row` can reach: the terms'
    /// magnitude, or the net margin `margin - retention_cost` before it meets the annuity
    /// factor (which may be 0, or below 1), whichever is larger.
    fn reach(&self, row: usize, params: &ScoreParams) -> f64 {
        let cost = self.optional[0].as_ref().map_or(0.0, |c| f64::from(c[row]));
        let net = f64::from(self.margin[row]).abs() + cost.abs();
        self.magnitude(row, params)
            .max(net + self.one_off_magnitude(row))
    }
}

fn retention() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => 0.0f32..=1.0,
        1 => prop::sample::select(vec![0.0f32, -0.0, 1.0, 0.999_999, 0.9999, 0.5, 1e-40]),
    ]
}

/// Values a store can hold that stress f32: huge (the lanes may overflow where f64 does not),
/// subnormal, and both zeros.
const EXTREMES: [f32; 8] = [0.0, -0.0, 1e-40, -1e-40, 1e30, -1e30, f32::MAX, f32::MIN];

/// Mostly ordinary amounts in `range`, sometimes an extreme (kept non-negative when `range` is).
fn amount(range: std::ops::Range<f32>) -> impl Strategy<Value = f32> {
    let non_negative = range.start >= 0.0;
    let extremes: Vec<f32> = EXTREMES
        .into_iter()
        .filter(|v| !non_negative || v.is_sign_positive())
        .collect();
    prop_oneof![20 => range, 1 => prop::sample::select(extremes)]
}

fn columns(max_rows: usize) -> impl Strategy<Value = Columns> {
    (0..=max_rows).prop_flat_map(|rows| {
        let money = || prop::collection::vec(amount(-1000.0f32..10_000.0), rows);
        let cost = || prop::option::of(prop::collection::vec(amount(0.0f32..5_000.0), rows));
        let value = || prop::option::of(prop::collection::vec(amount(-100.0f32..1000.0), rows));
        (
            money(),
            prop::collection::vec(retention(), rows),
            (cost(), value(), value(), cost(), cost()),
        )
            .prop_map(|(margin, retention, (c, r, v, d, a))| Columns {
                margin,
                retention,
                optional: [c, r, v, d, a],
            })
    })
}

fn params() -> impl Strategy<Value = ScoreParams> {
    // Tiny discounts with retention near 1 put q next to 1, where f32 precision is hardest.
    let discount = prop_oneof![
        1 => prop::sample::select(vec![0.0, 1e-6, 1e-4, 1e-3]),
        2 => 0.0001f64..0.5,
    ];
    let horizon = prop_oneof![
        3 => (1u32..=40).prop_map(Horizon::Periods),
        2 => (1u32..=400).prop_map(Horizon::Periods),
        1 => Just(Horizon::Infinite),
        1 => prop::sample::select(vec![Horizon::Periods(100_000), Horizon::Periods(u32::MAX)]),
    ];
    (discount, horizon).prop_map(|(discount, horizon)| ScoreParams { discount, horizon })
}

/// Whether a lanes value `l` stands for the f64 reference `s`, whose terms have `magnitude`
/// (see `Columns::magnitude`) and whose f32 intermediates reach up to `reach` (see
/// `Columns::reach`): a finite `s` within `TOLERANCE_RELATIVE * magnitude +
/// TOLERANCE_ABSOLUTE`, or, only where `reach` is at the f32 range's limit, a non-finite `l`
/// (an f32 overflow the f64 reference does not have: the kernel counts it and every caller
/// refuses it). An infinite `s` is not finite in the lanes either (an overflow there may leave
/// `inf - inf`, NaN), or one of the largest f32s of its sign (the f64 value rounded up past
/// them); a NaN `s` only a NaN.
fn agree(s: f32, l: f32, magnitude: f64, reach: f64) -> bool {
    let near_f32_limit = |value: f64| value >= f64::from(f32::MAX) * (1.0 - TOLERANCE_RELATIVE);
    if s.is_nan() {
        l.is_nan()
    } else if s.is_infinite() {
        !l.is_finite() || (l.signum() == s.signum() && near_f32_limit(f64::from(l.abs())))
    } else if !l.is_finite() {
        near_f32_limit(2.0 * reach)
    } else {
        let tolerance = TOLERANCE_RELATIVE * magnitude + TOLERANCE_ABSOLUTE;
        assert!(
            tolerance.is_finite(),
            "tolerance {tolerance} for scalar {s}"
        );
        (f64::from(s) - f64::from(l)).abs() <= tolerance
    }
}

fn score_both(columns: &Columns, params: &ScoreParams) -> (Vec<f32>, Vec<f32>, ScoreTotals) {
    let inputs = columns.inputs();
    let mut scalar = vec![0.0; inputs.len()];
    let mut lanes = vec![0.0; inputs.len()];
    crv_scalar(&inputs, params, &mut scalar);
    let totals = score_lanes(&inputs, params, &mut lanes);
    (scalar, lanes, totals)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lanes_agree_with_scalar_within_the_stated_tolerance(
        columns in columns(70),
        params in params(),
    ) {
        let (scalar, lanes, totals) = score_both(&columns, &params);
        for row in 0..scalar.len() {
            let magnitude = columns.magnitude(row, &params);
            prop_assert!(
                agree(scalar[row], lanes[row], magnitude, columns.reach(row, &params)),
                "row {}: scalar {} lanes {} magnitude {}", row, scalar[row], lanes[row], magnitude
            );
        }
        // Whatever is not finite is counted, so the callers refuse it.
        let non_finite = lanes.iter().filter(|v| !v.is_finite()).count() as u64;
        prop_assert_eq!(totals.non_finite, non_finite);
    }

    #[test]
    fn lane_totals_are_the_sums_of_the_scores(columns in columns(300), params in params()) {
        let (_, lanes, totals) = score_both(&columns, &params);
        let positive: Vec<f64> = lanes.iter().filter(|&&v| v > 0.0).map(|&v| f64::from(v)).collect();
        let non_positive: f64 = lanes.iter().filter(|&&v| v <= 0.0).map(|&v| f64::from(v)).sum();
        prop_assert_eq!(totals.customers, lanes.len() as u64);
        prop_assert_eq!(totals.positive_customers, positive.len() as u64);
        prop_assert_eq!(totals.non_positive_customers, (lanes.len() - positive.len()) as u64);
        let positive: f64 = positive.iter().sum();
        if positive.is_finite() && non_positive.is_finite() {
            prop_assert!((totals.positive_crv - positive).abs() <= 1e-9 * positive.abs() + 1e-9);
            prop_assert!((totals.non_positive_crv - non_positive).abs() <= 1e-9 * non_positive.abs() + 1e-9);
        }
    }
}

/// The plain reference: a comparison sort by CRV descending, then id ascending.
fn tiers_reference(crv: &[f32], ids: &[u64], scheme: &TierScheme) -> Tiers {
    let n = crv.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| crv[y].total_cmp(&crv[x]).then(ids[x].cmp(&ids[y])));
    let positive = order.iter().filter(|&&row| crv[row] > 0.0).count();
    let total: f64 = order[..positive]
        .iter()
        .map(|&row| f64::from(crv[row]))
        .sum();
    let (a, b) = match *scheme {
        TierScheme::CumulativeValue { a, b } | TierScheme::Quantile { a, b } => (a, b),
    };
    let mut tiers = Tiers {
        tier: vec![Tier::N; n],
        rank: vec![0; n],
        percentile: vec![0.0; n],
        summary: kernel::tier::TierSummary {
            scheme: *scheme,
            customers: n as u64,
            positive_crv: total,
            tiers: [kernel::TierStats::default(); 4],
        },
    };
    let mut before = 0.0;
    for (index, &row) in order.iter().enumerate() {
        let share_before = match scheme {
            TierScheme::CumulativeValue { .. } => before / total,
            TierScheme::Quantile { .. } => index as f64 / positive as f64,
        };
        let tier = match () {
            _ if index >= positive => Tier::N,
            _ if share_before < a => Tier::A,
            _ if share_before < b => Tier::B,
            _ => Tier::C,
        };
        before += f64::from(crv[row]);
        tiers.tier[row] = tier;
        tiers.rank[row] = index as u32 + 1;
        tiers.percentile[row] = (100.0 * (n - index) as f64 / n as f64) as f32;
        let stats = &mut tiers.summary.tiers[tier as usize];
        stats.count += 1;
        stats.crv_sum += f64::from(crv[row]);
        stats.lowest_crv = Some(crv[row]);
    }
    for stats in &mut tiers.summary.tiers {
        stats.customer_share = if n == 0 {
            0.0
        } else {
            stats.count as f64 / n as f64
        };
        stats.value_share = if total == 0.0 {
            0.0
        } else {
            stats.crv_sum / total
        };
    }
    tiers
}

fn scheme() -> impl Strategy<Value = TierScheme> {
    (0.01f64..0.99, 0.0f64..1.0, any::<bool>()).prop_map(|(a, t, quantile)| {
        let b = a + (1.0 - a) * t.max(0.01);
        if quantile {
            TierScheme::Quantile { a, b }
        } else {
            TierScheme::CumulativeValue { a, b }
        }
    })
}

/// CRV values with many exact ties (a few distinct values) and unique, shuffled ids.
fn crv_and_ids(max_rows: usize) -> impl Strategy<Value = (Vec<f32>, Vec<u64>)> {
    (0..=max_rows).prop_flat_map(|rows| {
        let value = prop_oneof![
            2 => -1e6f32..1e6,
            1 => prop::sample::select(vec![0.0f32, -0.0, 1.0, 2.5, -3.0, 1e-30]),
        ];
        let ids = Just(
            (0..rows as u64)
                .map(|i| i * 7919 % 1_000_003)
                .collect::<Vec<_>>(),
        )
        .prop_shuffle();
        (prop::collection::vec(value, rows), ids)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tiers_match_a_sort_by_crv_then_id((crv, ids) in crv_and_ids(300), scheme in scheme()) {
        prop_assert_eq!(kernel::tiers(&crv, &ids, &scheme), tiers_reference(&crv, &ids, &scheme));
    }
}

/// Thousands of CRVs inside one quarter binade (one radix bucket), half of them tied, with ids
/// either shuffled or ascending with the row.
fn one_bucket_crv_and_ids() -> impl Strategy<Value = (Vec<f32>, Vec<u64>)> {
    (1000usize..5000, any::<bool>()).prop_flat_map(|(rows, ascending)| {
        let value = prop_oneof![1.0f32..1.25, prop::sample::select(vec![1.0f32, 1.125, 1.2])];
        let ids: Vec<u64> = (0..rows as u64).map(|i| i * 3 + 1).collect();
        let ids = if ascending {
            Just(ids).boxed()
        } else {
            Just(ids).prop_shuffle().boxed()
        };
        (prop::collection::vec(value, rows), ids)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn tiers_match_the_reference_inside_one_radix_bucket(
        (crv, ids) in one_bucket_crv_and_ids(),
        scheme in scheme(),
    ) {
        prop_assert_eq!(kernel::tiers(&crv, &ids, &scheme), tiers_reference(&crv, &ids, &scheme));
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool for the test")
}

/// Deterministic columns of `rows` customers spanning several chunks and a partial vector.
fn many_columns(rows: usize) -> Columns {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut column = |scale: f32, offset: f32| -> Vec<f32> {
        (0..rows).map(|_| uniform() * scale + offset).collect()
    };
    Columns {
        margin: column(200.0, -20.0),
        retention: column(1.0, 0.0),
        optional: [
            Some(column(50.0, 0.0)),
            Some(column(10.0, 0.0)),
            None,
            Some(column(20.0, 0.0)),
            Some(column(100.0, 0.0)),
        ],
    }
}

#[test]
fn score_is_identical_on_one_and_several_threads() {
    let columns = many_columns(100_003);
    let inputs = columns.inputs();
    let params = ScoreParams::default();
    let run = |threads: usize| {
        let mut out = vec![0.0f32; inputs.len()];
        let totals = pool(threads).install(|| kernel::score(&inputs, &params, &mut out));
        (out, totals)
    };
    let (one_out, one_totals) = run(1);
    for threads in [2, 3, 8] {
        let (out, totals) = run(threads);
        assert!(
            out.iter()
                .zip(&one_out)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_eq!(totals, one_totals, "{threads} threads");
    }
    let mut sequential = vec![0.0f32; inputs.len()];
    assert_eq!(score_lanes(&inputs, &params, &mut sequential), one_totals);
    assert_eq!(sequential, one_out);
}

#[test]
fn tiers_are_identical_on_one_and_several_threads_and_match_the_reference() {
    let columns = many_columns(60_001);
    let mut crv = vec![0.0f32; columns.margin.len()];
    kernel::score(&columns.inputs(), &ScoreParams::default(), &mut crv);
    // Rounding to whole units creates long runs of equal CRV.
    let crv: Vec<f32> = crv.iter().map(|v| v.round()).collect();
    let ids: Vec<u64> = (0..crv.len() as u64).map(|i| u64::MAX - i * 3).collect();
    let scheme = TierScheme::default();
    let one = pool(1).install(|| kernel::tiers(&crv, &ids, &scheme));
    let two = pool(2).install(|| kernel::tiers(&crv, &ids, &scheme));
    assert_eq!(one, two);
    assert_eq!(one, tiers_reference(&crv, &ids, &scheme));
    let value_share: f64 = [Tier::A, Tier::B, Tier::C]
        .map(|t| one.summary.get(t).value_share)
        .iter()
        .sum();
    assert!((value_share - 1.0).abs() < 1e-9);
}

/// A scenario over `columns`: adjustments, and an uplift whose response is a constant or a
/// column of probabilities.
#[derive(Debug, Clone)]
struct ScenarioCase {
    score: ScoreParams,
    margin_multiplier: f64,
    retention_shift: f64,
    uplift: Option<(f64, f64, Option<f64>)>,
    responses: Vec<f32>,
}

impl ScenarioCase {
    fn params(&self) -> ScenarioParams<'_> {
        ScenarioParams {
            score: self.score,
            margin_multiplier: self.margin_multiplier,
            retention_shift: self.retention_shift,
            uplift: self.uplift.map(|(retention, margin, constant)| Uplift {
                retention,
                margin,
                response: constant.map_or(Response::Column(&self.responses), Response::Constant),
            }),
        }
    }
}

fn scenario_case(rows: usize) -> impl Strategy<Value = ScenarioCase> {
    let uplift = prop::option::of((
        prop_oneof![2 => 0.0f64..=1.0, 1 => prop::sample::select(vec![0.0, 0.05, 1.0])],
        prop_oneof![2 => -0.9f64..2.0, 1 => Just(0.0)],
        prop::option::of(0.0f64..=1.0),
    ));
    (
        params(),
        prop_oneof![1 => Just(1.0f64), 2 => 0.0f64..3.0],
        prop_oneof![1 => Just(0.0f64), 2 => -1.0f64..=1.0],
        uplift,
        prop::collection::vec(0.0f32..=1.0, rows),
    )
        .prop_map(
            |(score, margin_multiplier, retention_shift, uplift, responses)| ScenarioCase {
                score,
                margin_multiplier,
                retention_shift,
                uplift,
                responses,
            },
        )
}

fn columns_and_scenarios(
    max_rows: usize,
    scenarios: usize,
) -> impl Strategy<Value = (Columns, Vec<ScenarioCase>)> {
    columns(max_rows).prop_flat_map(move |columns| {
        let rows = columns.margin.len();
        (
            Just(columns),
            prop::collection::vec(scenario_case(rows), 1..=scenarios),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// The scenario lanes agree with the f64 specification: the CRV within the plain kernel's
    /// bound of its adjusted terms, delta within `delta_tolerance`.
    #[test]
    fn scenario_lanes_agree_with_the_scalar_reference(
        (columns, cases) in columns_and_scenarios(70, 1),
    ) {
        let inputs = columns.inputs();
        let rows = inputs.len();
        let params = cases[0].params();
        let (mut crv, mut delta) = (vec![0.0; rows], vec![0.0; rows]);
        let (mut crv_ref, mut delta_ref) = (vec![0.0; rows], vec![0.0; rows]);
        let totals = kernel::score_scenario(&inputs, &params, &mut crv, Some(&mut delta));
        scenario_scalar(&inputs, &params, &mut crv_ref, &mut delta_ref);
        let adjusted = Columns {
            margin: columns.margin.iter().map(|m| m * params.margin_multiplier as f32).collect(),
            retention: columns
                .retention
                .iter()
                .map(|r| (r + params.retention_shift as f32).clamp(0.0, 1.0))
                .collect(),
            optional: columns.optional.clone(),
        };
        let cost = |row: usize| columns.optional[0].as_ref().map_or(0.0, |c| c[row]);
        for row in 0..rows {
            let (s, l) = (crv_ref[row], crv[row]);
            prop_assert!(agree(
                s, l, adjusted.magnitude(row, &params.score), adjusted.reach(row, &params.score),
            ),
                "row {}: crv scalar {} lanes {}", row, s, l);
            let (s, l) = (delta_ref[row], delta[row]);
            if s.is_finite() && l.is_finite() {
                let response = match params.uplift.map(|u| u.response) {
                    Some(Response::Constant(p)) => p,
                    Some(Response::Column(p)) => f64::from(p[row]),
                    None => 0.0,
                };
                let tolerance = delta_tolerance(
                    columns.margin[row], cost(row), columns.retention[row], &params, response,
                );
                prop_assert!(s == l || (f64::from(s) - f64::from(l)).abs() <= tolerance,
                    "row {}: delta scalar {} lanes {} tolerance {}", row, s, l, tolerance);
            } else if !s.is_finite() {
                prop_assert!(agree(s, l, f64::INFINITY, f64::INFINITY), "row {}: delta scalar {} lanes {}", row, s, l);
            } else {
                // A finite reference, an overflow in the lanes' f32: only at the f32 limit.
                let uplift = params.uplift.expect("a non-zero delta has an uplift");
                let retention = (adjusted.retention[row] + uplift.retention as f32).min(1.0);
                let magnitude = adjusted.magnitude(row, &params.score).max(
                    (f64::from(adjusted.margin[row]).abs() * (1.0 + uplift.margin.abs())
                        + f64::from(cost(row)))
                        * annuity_factor(f64::from(retention), &params.score),
                );
                prop_assert!(magnitude >= f64::from(f32::MAX) / 4.0,
                    "row {}: delta scalar {} lanes {} magnitude {}", row, s, l, magnitude);
            }
        }
        let count = |values: &[f32]| values.iter().filter(|v| !v.is_finite()).count() as u64;
        prop_assert_eq!(totals.crv.non_finite, count(&crv));
        prop_assert_eq!(totals.non_finite_delta, count(&delta));
    }

    /// The fused pass gives every scenario the totals of its own one-scenario pass, bit for bit,
    /// scenarios that share their CRV without uplift included.
    #[test]
    fn the_fused_pass_equals_one_pass_per_scenario(
        (columns, cases) in columns_and_scenarios(5000, 6),
    ) {
        let inputs = columns.inputs();
        let mut params: Vec<ScenarioParams<'_>> = cases.iter().map(ScenarioCase::params).collect();
        // Odd scenarios share the first one's CRV without uplift: the fused pass groups them.
        for index in (1..params.len()).step_by(2) {
            params[index] = ScenarioParams { uplift: params[index].uplift, ..params[0] };
        }
        let fused = kernel::score_scenarios(&inputs, &params);
        for (scenario, fused) in params.iter().zip(&fused) {
            let mut crv = vec![0.0; inputs.len()];
            let single = kernel::score_scenario(&inputs, scenario, &mut crv, None);
            prop_assert_eq!(format!("{single:?}"), format!("{fused:?}"));
        }
    }

    /// A scenario with neither adjustment nor uplift writes the plain kernel's CRV bit for bit.
    #[test]
    fn a_plain_scenario_writes_the_plain_kernels_crv(columns in columns(300), params in params()) {
        let inputs = columns.inputs();
        let mut plain = vec![0.0; inputs.len()];
        let mut scenario = vec![0.0; inputs.len()];
        let plain_totals = kernel::score(&inputs, &params, &mut plain);
        let totals = kernel::score_scenario(
            &inputs, &ScenarioParams::plain(params), &mut scenario, None,
        );
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&plain), bits(&scenario));
        prop_assert_eq!(format!("{plain_totals:?}"), format!("{:?}", totals.crv));
    }
}

#[test]
fn the_fused_pass_is_identical_on_one_and_several_threads() {
    let columns = many_columns(100_000);
    let inputs = columns.inputs();
    let responses: Vec<f32> = (0..100_000).map(|i| (i % 101) as f32 / 100.0).collect();
    let scenarios: Vec<ScenarioParams<'_>> = [0.05, 0.1, 0.2]
        .iter()
        .map(|&discount| ScenarioParams {
            uplift: Some(Uplift {
                retention: 0.05,
                margin: 0.1,
                response: Response::Column(&responses),
            }),
            ..ScenarioParams::plain(ScoreParams {
                discount,
                horizon: Horizon::Periods(7),
            })
        })
        .collect();
    let one = pool(1).install(|| kernel::score_scenarios(&inputs, &scenarios));
    let three = pool(3).install(|| kernel::score_scenarios(&inputs, &scenarios));
    assert_eq!(format!("{one:?}"), format!("{three:?}"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The f64 annuity factor against the direct sum `q + q^2 + ... + q^T` at every horizon up
    /// to 300 periods, and against the perpetuity limit `q / (1 - q)` for an infinite one.
    #[test]
    fn annuity_factor_is_the_sum_of_discounted_retention(
        retention in prop_oneof![3 => 0.0f64..=1.0, 1 => prop::sample::select(vec![0.0, 1.0, 0.999_999])],
        discount in prop_oneof![1 => Just(0.0f64), 3 => 0.0f64..0.5],
        periods in 1u32..=300,
    ) {
        let params = ScoreParams { discount, horizon: Horizon::Periods(periods) };
        let q = retention / (1.0 + discount);
        let direct: f64 = (1..=periods).map(|t| q.powi(t as i32)).sum();
        let factor = annuity_factor(retention, &params);
        prop_assert!((factor - direct).abs() <= 1e-9 * direct.max(1.0),
            "q {} T {}: {} vs the direct sum {}", q, periods, factor, direct);
        let perpetuity = annuity_factor(retention, &ScoreParams { discount, horizon: Horizon::Infinite });
        if q < 1.0 {
            prop_assert!((perpetuity - q / (1.0 - q)).abs() <= 1e-12 * perpetuity.max(1.0));
            prop_assert!(perpetuity >= factor);
        } else {
            prop_assert_eq!(perpetuity, f64::INFINITY);
        }
    }
}

/// `q = 1` with an infinite horizon, next to `-0.0`, subnormal and huge values: the scalar
/// reference and the lanes give the same values, a zero net margin is worth exactly zero (not
/// NaN), and every value that is not finite is counted.
#[test]
fn the_perpetuity_at_q_one_and_extreme_inputs_agree_and_count_what_is_not_finite() {
    let margin = [50.0, 0.0, -0.0, 1e-40, 7.0, 3e38, -3e38, 7.0, 1e30];
    let retention = [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 1e-40];
    let cost = [0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0];
    let inputs = CrvInputs {
        retention_cost: Some(&cost),
        ..CrvInputs::new(&margin, &retention)
    };
    let params = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Infinite,
    };
    let mut scalar = vec![0.0; margin.len()];
    let mut lanes = vec![0.0; margin.len()];
    let scalar_totals = crv_scalar(&inputs, &params, &mut scalar);
    let lanes_totals = score_lanes(&inputs, &params, &mut lanes);
    let expected = [
        f32::INFINITY,
        0.0,
        0.0,
        f32::INFINITY,
        0.0,
        3e38,
        -3e38,
        0.0,
    ];
    assert_eq!(scalar[..8], expected);
    assert_eq!(lanes[..8], expected);
    assert!((scalar[8] - 1e-10).abs() < 1e-15 && (lanes[8] - 1e-10).abs() < 1e-15);
    assert_eq!(scalar_totals.non_finite, 2);
    assert_eq!(lanes_totals.non_finite, 2);
    let params = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Periods(2),
    };
    let totals = kernel::score(&inputs, &params, &mut lanes);
    // 3e38 * (0.5 + 0.25) is finite; 50 * 2 and 1e-40 * 2 too: nothing overflows.
    assert_eq!(totals.non_finite, 0, "{lanes:?}");
    let params = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Periods(5),
    };
    let totals = kernel::score(&inputs, &params, &mut lanes);
    // 3e38 * (0.5 + ... + 0.03125) = 2.9e38 stays finite, so does its negative.
    assert_eq!(totals.non_finite, 0, "{lanes:?}");
    let margin = [3e38f32; 3];
    let retention = [1.0f32; 3];
    let totals = kernel::score(
        &CrvInputs::new(&margin, &retention),
        &params,
        &mut lanes[..3],
    );
    assert_eq!(totals.non_finite, 3, "5 periods of 3e38 overflow f32");
}

/// A store with one customer of retention 1: no discount and an infinite horizon give it an
/// infinite CRV, which is an error naming the customer and the parameters, not a value that
/// later drops out of the tiers or the selection.
#[test]
fn an_infinite_crv_is_an_error_naming_the_customer_and_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, path) = (dir.path().join("one.csv"), dir.path().join("one.crv"));
    std::fs::write(
        &csv,
        "customer_id,margin,retention,cost\n1,50,1,1\n2,40,0.8,1\n",
    )
    .unwrap();
    crv::store::import(&csv, &path, &mut |_| {}).unwrap();
    let store = std::sync::Arc::new(crv::Store::open(&path).unwrap());
    let infinite = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Infinite,
    };
    let message = crv::Table::score(store.clone(), infinite, TierScheme::default())
        .unwrap_err()
        .to_string();
    for fragment in [
        "customer 1 ",
        "margin 50",
        "retention 1",
        "discount 0",
        "horizon inf",
        "inf",
    ] {
        assert!(
            message.contains(fragment),
            "`{fragment}` not in `{message}`"
        );
    }
    let finite = ScoreParams {
        discount: 0.0,
        horizon: Horizon::Periods(10),
    };
    let scored = crv::Table::score(store, finite, TierScheme::default()).unwrap();
    assert_eq!(scored.crv()[0], 500.0);
    assert_eq!(scored.totals().non_finite, 0);
}
