//! The CRV formula of docs/model.md: [`crv_scalar`] is the plain f64 specification, [`score_lanes`]
//! the `wide` lanes path (f32x8, or f32x16 with AVX-512) that must agree with it within [`TOLERANCE_RELATIVE`] of the terms'
//! magnitude plus [`TOLERANCE_ABSOLUTE`].

/// The lane type: `f32x16` where the build enables AVX-512 (`-C target-cpu=native` on such a
/// CPU), `f32x8` (AVX2) otherwise. `wide` emulates a wider type with two halves when the build
/// lacks the instructions, so the width follows the build's target features.
#[cfg(target_feature = "avx512f")]
pub(crate) type Lane = wide::f32x16;
/// The lane type: `f32x8` (AVX2) on builds without AVX-512.
#[cfg(not(target_feature = "avx512f"))]
pub(crate) type Lane = wide::f32x8;

use crate::error::{Error, Result};
use crate::model::{Horizon, ScoreParams};
use crate::store::{Store, schema};

/// Rows per chunk: the unit of work for rayon and of the fixed-order reduction of totals.
/// 16 Ki rows of 7 input columns and one output column are 512 KiB, about one L2 cache.
pub(crate) const CHUNK_ROWS: usize = 16 * 1024;

/// Lanes per vector: 8 with AVX2, 16 with AVX-512.
pub(crate) const LANES: usize = size_of::<Lane>() / size_of::<f32>();

/// Agreement of [`score_lanes`] with [`crv_scalar`]: `|lanes - scalar| <= TOLERANCE_RELATIVE *
/// magnitude + TOLERANCE_ABSOLUTE`, where `magnitude` is `(|margin| + |retention_cost|) *
/// annuity` plus the absolute one-off terms. The bound is relative to the terms, not to the CRV
/// itself: f32 cannot resolve a CRV that cancels to near zero better than its terms' rounding.
pub const TOLERANCE_RELATIVE: f64 = 1e-5;

/// Absolute slack in currency units, for results near zero; see [`TOLERANCE_RELATIVE`].
pub const TOLERANCE_ABSOLUTE: f64 = 1e-3;

/// The columns the CRV formula reads, one entry per customer; all present columns have the
/// same length (checked by [`CrvInputs::validate`]). A missing optional column counts as zero.
///
/// Values are expected in their domains (finite, `retention` in [0, 1], costs >= 0), which the
/// store checks at import; the kernel does not re-check them.
#[derive(Debug, Clone, Copy)]
pub struct CrvInputs<'a> {
    /// Expected contribution margin per period.
    pub margin: &'a [f32],
    /// Probability in [0, 1] of keeping the customer one more period.
    pub retention: &'a [f32],
    /// Cost per period to serve and retain, >= 0.
    pub retention_cost: Option<&'a [f32]>,
    /// One-off value of the customer's recommendations, present value.
    pub referral_value: Option<&'a [f32]>,
    /// One-off value of what the firm learns from the customer, present value.
    pub competence_value: Option<&'a [f32]>,
    /// One-off spend to grow the relationship, present value, >= 0.
    pub development_cost: Option<&'a [f32]>,
    /// One-off cost to win a prospect (zero for customers already won), present value, >= 0.
    pub acquisition_cost: Option<&'a [f32]>,
}

impl<'a> CrvInputs<'a> {
    /// The two required columns, with every optional column missing (zero). Set the optional
    /// fields with struct update syntax, then call [`CrvInputs::validate`].
    pub fn new(margin: &'a [f32], retention: &'a [f32]) -> Self {
        CrvInputs {
            margin,
            retention,
            retention_cost: None,
            referral_value: None,
            competence_value: None,
            development_cost: None,
            acquisition_cost: None,
        }
    }

    /// The CRV columns of `store`, read in place. `margin` and `retention` are required to
    /// score; a missing optional column counts as zero; a text column of one of these names
    /// is an error.
    pub fn from_store(store: &'a Store) -> Result<CrvInputs<'a>> {
        let required = |name: &str| {
            store.optional_numeric(name)?.ok_or_else(|| Error::Column {
                name: name.to_owned(),
                message: "is required to score and is not in the store".to_owned(),
            })
        };
        let inputs = CrvInputs {
            retention_cost: store.optional_numeric(schema::RETENTION_COST)?,
            referral_value: store.optional_numeric(schema::REFERRAL_VALUE)?,
            competence_value: store.optional_numeric(schema::COMPETENCE_VALUE)?,
            development_cost: store.optional_numeric(schema::DEVELOPMENT_COST)?,
            acquisition_cost: store.optional_numeric(schema::ACQUISITION_COST)?,
            ..CrvInputs::new(required(schema::MARGIN)?, required(schema::RETENTION)?)
        };
        inputs.validate()?;
        Ok(inputs)
    }

    /// Number of customers (the length of `margin`).
    pub fn len(&self) -> usize {
        self.margin.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.margin.is_empty()
    }

    /// Checks that every present column has as many rows as `margin`; the error names the
    /// first column that does not.
    pub fn validate(&self) -> Result<()> {
        let rows = self.len();
        let mut columns = vec![(schema::RETENTION, Some(self.retention))];
        columns.extend(self.optional_columns());
        for (name, column) in columns {
            if let Some(column) = column
                && column.len() != rows
            {
                return Err(Error::Column {
                    name: name.to_owned(),
                    message: format!("has {} rows but `margin` has {rows}", column.len()),
                });
            }
        }
        Ok(())
    }

    /// The rows `start..start + len` of every column.
    pub(crate) fn slice(&self, start: usize, len: usize) -> CrvInputs<'a> {
        let range = start..start + len;
        let part = |column: Option<&'a [f32]>| column.map(|c| &c[range.clone()]);
        CrvInputs {
            margin: &self.margin[range.clone()],
            retention: &self.retention[range.clone()],
            retention_cost: part(self.retention_cost),
            referral_value: part(self.referral_value),
            competence_value: part(self.competence_value),
            development_cost: part(self.development_cost),
            acquisition_cost: part(self.acquisition_cost),
        }
    }

    fn optional_columns(&self) -> [(&'static str, Option<&'a [f32]>); 5] {
        [
            (schema::RETENTION_COST, self.retention_cost),
            (schema::REFERRAL_VALUE, self.referral_value),
            (schema::COMPETENCE_VALUE, self.competence_value),
            (schema::DEVELOPMENT_COST, self.development_cost),
            (schema::ACQUISITION_COST, self.acquisition_cost),
        ]
    }

    /// Panics with the validation message when the columns or `out` disagree in length.
    pub(crate) fn expect_rows(&self, out: &[f32]) {
        if let Err(error) = self.validate() {
            panic!("CRV inputs not validated: {error}");
        }
        assert_eq!(out.len(), self.len(), "CRV output length != input rows");
    }
}

/// Sums over all scored customers, in f64. Totals are reduced chunk by chunk in row order, so
/// they are bit-identical for any thread count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreTotals {
    /// Customers scored.
    pub customers: u64,
    /// Customers with CRV > 0.
    pub positive_customers: u64,
    /// Sum of CRV over customers with CRV > 0.
    pub positive_crv: f64,
    /// Customers with CRV <= 0.
    pub non_positive_customers: u64,
    /// Sum of CRV over customers with CRV <= 0 (zero or negative).
    pub non_positive_crv: f64,
    /// Customers whose CRV is infinite or NaN (an f32 overflow, or a perpetuity at `q = 1`):
    /// the sums above are meaningless then, and [`crate::kernel::check_finite`] turns the count
    /// into an error naming the first such customer.
    pub non_finite: u64,
}

impl ScoreTotals {
    /// Sum of CRV over all customers.
    pub fn crv_sum(&self) -> f64 {
        self.positive_crv + self.non_positive_crv
    }

    /// Totals of `self`'s rows followed by `next`'s rows.
    pub fn merge(self, next: ScoreTotals) -> ScoreTotals {
        ScoreTotals {
            customers: self.customers + next.customers,
            positive_customers: self.positive_customers + next.positive_customers,
            positive_crv: self.positive_crv + next.positive_crv,
            non_positive_customers: self.non_positive_customers + next.non_positive_customers,
            non_positive_crv: self.non_positive_crv + next.non_positive_crv,
            non_finite: self.non_finite + next.non_finite,
        }
    }

    pub(crate) fn add(&mut self, crv: f64) {
        self.customers += 1;
        self.non_finite += u64::from(!crv.is_finite());
        if crv > 0.0 {
            self.positive_customers += 1;
            self.positive_crv += crv;
        } else {
            self.non_positive_customers += 1;
            self.non_positive_crv += crv;
        }
    }
}

/// `PV = (margin - retention_cost) * annuity_factor(retention)` in f64: the periodic part of the
/// CRV. A net margin of exactly zero is worth zero, even where the annuity factor is infinite.
pub fn present_value(
    margin: f32,
    retention_cost: f64,
    retention: f32,
    params: &ScoreParams,
) -> f64 {
    let net_margin = f64::from(margin) - retention_cost;
    if net_margin == 0.0 {
        0.0
    } else {
        net_margin * annuity_factor(f64::from(retention), params)
    }
}

/// The annuity factor `sum_{t=1..T} q^t` with `q = retention / (1 + discount)`: what one unit of
/// net margin per period is worth today.
///
/// Edge cases: `q = 1` (retention 1, discount 0) gives `T`, and `+inf` for an infinite horizon;
/// retention 0 gives 0; an infinite horizon with `q < 1` gives `q / (1 - q)`.
pub fn annuity_factor(retention: f64, params: &ScoreParams) -> f64 {
    let q = retention / (1.0 + params.discount);
    match params.horizon {
        Horizon::Periods(periods) if q == 1.0 => f64::from(periods),
        Horizon::Periods(periods) => q * (1.0 - q.powf(f64::from(periods))) / (1.0 - q),
        Horizon::Infinite if q == 1.0 => f64::INFINITY,
        Horizon::Infinite => q / (1.0 - q),
    }
}

/// The specification: every customer's CRV in plain f64, rounded to f32 into `out`, with the
/// totals of the rounded values summed in row order.
///
/// `PV = (margin - retention_cost) * annuity_factor(retention)` (see [`annuity_factor`] for
/// `q = 1`, retention 0 and infinite horizons); a net margin of exactly zero gives `PV = 0`
/// even when the annuity factor is infinite; a negative net margin gives a negative PV.
/// `CRV = PV + referral_value + competence_value - development_cost - acquisition_cost`,
/// missing columns counting as zero. `params` must be validated ([`ScoreParams::validate`]).
///
/// # Panics
///
/// If the columns' lengths differ ([`CrvInputs::validate`]) or `out.len()` differs from them.
pub fn crv_scalar(inputs: &CrvInputs<'_>, params: &ScoreParams, out: &mut [f32]) -> ScoreTotals {
    inputs.expect_rows(out);
    let column = |column: Option<&[f32]>, row: usize| column.map_or(0.0, |c| f64::from(c[row]));
    let mut totals = ScoreTotals::default();
    for (row, crv_out) in out.iter_mut().enumerate() {
        let present_value = present_value(
            inputs.margin[row],
            column(inputs.retention_cost, row),
            inputs.retention[row],
            params,
        );
        let crv = present_value
            + column(inputs.referral_value, row)
            + column(inputs.competence_value, row)
            - column(inputs.development_cost, row)
            - column(inputs.acquisition_cost, row);
        *crv_out = crv as f32;
        totals.add(f64::from(*crv_out));
    }
    totals
}

/// Every customer's CRV with SIMD lanes on the calling thread, into `out`; the same values
/// and bit-identical totals as [`crate::kernel::score`], which runs the same chunks on rayon.
///
/// Agrees with [`crv_scalar`] within [`TOLERANCE_RELATIVE`] and [`TOLERANCE_ABSOLUTE`].
/// `params` must be validated ([`ScoreParams::validate`]).
///
/// # Panics
///
/// If the columns' lengths differ ([`CrvInputs::validate`]) or `out.len()` differs from them,
/// or the horizon is zero periods (unvalidated `params`).
pub fn score_lanes(inputs: &CrvInputs<'_>, params: &ScoreParams, out: &mut [f32]) -> ScoreTotals {
    inputs.expect_rows(out);
    let lanes = Lanes::new(params);
    out.chunks_mut(CHUNK_ROWS)
        .enumerate()
        .map(|(chunk, out)| lanes.score_chunk(&inputs.slice(chunk * CHUNK_ROWS, out.len()), out))
        .fold(ScoreTotals::default(), ScoreTotals::merge)
}

/// The parameters broadcast to lanes once per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lanes {
    discount: Lane,
    /// `1 / (1 + discount)`.
    inverse_growth: Lane,
    horizon: LaneHorizon,
}

/// How [`Lanes::annuity_factor`] evaluates `sum_{t=1..T} q^t` for this call's horizon.
#[derive(Debug, Clone, Copy)]
enum LaneHorizon {
    /// `T <= DOUBLING_MAX_PERIODS`: the sum by doubling, about `2 * log2(T)` multiply-adds.
    Doubling(u32),
    /// Longer horizons: closed form through `ln1p` and `expm1`, `T` as f32.
    ClosedForm(Lane),
    /// `T = infinity`.
    Infinite,
}

/// Horizons up to this use doubling. Its error grows with T: a rounding of q by one ulp moves
/// the sum by up to T/2 ulps, so T = 32 stays within 16 * 2^-24 + rounding, far inside
/// [`TOLERANCE_RELATIVE`]. Measured 2.2-2.7x faster than the closed form on one thread at
/// 10M customers (benches/README.md).
const DOUBLING_MAX_PERIODS: u32 = 32;

impl Lanes {
    pub(crate) fn new(params: &ScoreParams) -> Self {
        let horizon = match params.horizon {
            Horizon::Periods(periods) if periods <= DOUBLING_MAX_PERIODS => {
                LaneHorizon::Doubling(periods)
            }
            Horizon::Periods(periods) => LaneHorizon::ClosedForm(Lane::splat(periods as f32)),
            Horizon::Infinite => LaneHorizon::Infinite,
        };
        Lanes {
            discount: Lane::splat(params.discount as f32),
            inverse_growth: Lane::splat((1.0 / (1.0 + params.discount)) as f32),
            horizon,
        }
    }

    /// Scores one chunk (at most [`CHUNK_ROWS`] rows) and returns its totals, lanes summed in
    /// a fixed order.
    pub(crate) fn score_chunk(&self, inputs: &CrvInputs<'_>, out: &mut [f32]) -> ScoreTotals {
        // One copy of the loop per kind of horizon, each with the horizon's kind known, so the
        // loop neither branches on it nor keeps the other kinds' constants in registers.
        match self.horizon {
            LaneHorizon::Doubling(periods) => self
                .with_horizon(LaneHorizon::Doubling(periods))
                .score_vectors(inputs, out),
            LaneHorizon::ClosedForm(periods) => self
                .with_horizon(LaneHorizon::ClosedForm(periods))
                .score_vectors(inputs, out),
            LaneHorizon::Infinite => self
                .with_horizon(LaneHorizon::Infinite)
                .score_vectors(inputs, out),
        }
    }

    #[inline(always)]
    fn with_horizon(&self, horizon: LaneHorizon) -> Lanes {
        Lanes { horizon, ..*self }
    }

    /// [`Lanes::score_chunk`]'s loop.
    #[inline(always)]
    fn score_vectors(&self, inputs: &CrvInputs<'_>, out: &mut [f32]) -> ScoreTotals {
        let mut sums = LaneSums::default();
        let (out_vectors, out_tail) = out.as_chunks_mut::<LANES>();
        let vectors = Vectors::new(inputs, out_vectors.len());
        let _fence = streaming::Fence;
        for (index, out) in out_vectors.iter_mut().enumerate() {
            let crv = self.crv(&vectors.rows(index));
            store(out, crv);
            sums.add(crv);
        }
        if !out_tail.is_empty() {
            // Padding lanes have zero margin and retention: CRV 0, which adds nothing to the
            // sums and is not counted as positive.
            let crv = self.crv(&Rows::tail(inputs, out_vectors.len() * LANES));
            out_tail.copy_from_slice(&crv.to_array()[..out_tail.len()]);
            sums.add(crv);
        }
        sums.into_totals(out.len())
    }

    #[inline(always)]
    fn crv(&self, rows: &Rows) -> Lane {
        self.present_value(rows.margin, rows.retention_cost, rows.retention) + rows.one_off()
    }

    /// `(margin - retention_cost) * annuity_factor(retention)`: the periodic part of the CRV,
    /// the one formula both the plain and the scenario paths evaluate.
    #[inline(always)]
    pub(crate) fn present_value(
        &self,
        margin: Lane,
        retention_cost: Lane,
        retention: Lane,
    ) -> Lane {
        let net_margin = margin - retention_cost;
        let present_value = net_margin * self.annuity_factor(retention);
        if let LaneHorizon::Infinite = self.horizon {
            // q = 1 makes the perpetuity infinite; zero times infinity is no cash flow, not NaN.
            net_margin
                .simd_eq(Lane::ZERO)
                .select(Lane::ZERO, present_value)
        } else {
            present_value
        }
    }

    /// `sum_{t=1..T} q^t`, `q = r / (1 + d)`, with no NaN at `q = 1` or `r = 0`.
    ///
    /// Short horizons double `G_k = sum_{t=1..k} q^t` with `P_k = q^k`: `G_2k = G_k (1 + P_k)`,
    /// `G_k+1 = G_k + P_k+1`, all terms non-negative; `q = 1` gives exactly `T`.
    ///
    /// Long and infinite horizons keep full relative precision near `q = 1`: with
    /// `u = (1 - r) + d` (two non-negative terms, so no cancellation), `1 - q = u / (1 + d)` and
    /// `q / (1 - q) = r / u`, so the factor is `r / u` (T infinite) or
    /// `r * (1 - q^T) / u = -r * expm1(T * ln1p(-(1 - q))) / u`; `u = 0` gives `T`.
    /// The direct `q * (1 - q^T) / (1 - q)` in f32 loses up to `T` ulps of `q` near `q = 1`.
    #[inline(always)]
    fn annuity_factor(&self, retention: Lane) -> Lane {
        let u = || (Lane::ONE - retention) + self.discount;
        match self.horizon {
            LaneHorizon::Doubling(periods) => {
                let q = retention * self.inverse_growth;
                let (mut sum, mut power) = (q, q);
                for bit in (0..periods.ilog2()).rev() {
                    sum = sum.mul_add(power, sum);
                    power *= power;
                    if periods >> bit & 1 == 1 {
                        power *= q;
                        sum += power;
                    }
                }
                sum
            }
            LaneHorizon::ClosedForm(periods) => {
                let u = u();
                // min: retention 0 can round 1 - q just above 1, where ln1p is NaN.
                let one_minus_q = (u * self.inverse_growth).fast_min(Lane::ONE);
                let one_minus_q_pow = -(periods * (-one_minus_q).ln_1p()).exp_m1();
                let factor = retention * one_minus_q_pow / u;
                u.simd_eq(Lane::ZERO).select(periods, factor)
            }
            LaneHorizon::Infinite => retention / u(),
        }
    }
}

/// Stores `value` into `out`, streaming it past the caches (a non-temporal store) where the
/// build has the instruction and `out` is aligned to a whole vector, with a plain store
/// otherwise: the same bytes either way. Callers keep a [`streaming::Fence`] alive over their
/// stores.
///
/// A streamed store skips the read of the line it fills (a plain store first reads the line
/// from memory: 4 more bytes of traffic per 4-byte result) and does not evict the inputs from
/// the cache; the output is not in the cache afterwards.
#[inline(always)]
fn store(out: &mut [f32; LANES], value: Lane) {
    match streaming::lane_of(out) {
        Some(out) => streaming::store(out, value),
        None => *out = value.to_array(),
    }
}

/// Non-temporal stores of whole lanes: `_mm512_stream_ps` with AVX-512, `_mm256_stream_ps` with
/// AVX, none (plain stores) on other builds.
#[allow(unsafe_code)]
mod streaming {
    use super::{LANES, Lane};

    /// Whether this build streams its stores.
    pub(crate) const STREAMS: bool = cfg!(all(target_arch = "x86_64", target_feature = "avx"));

    /// `out` as a lane, when this build streams and `out` is aligned as a lane (64 bytes with
    /// AVX-512, 32 with AVX); `None` otherwise.
    #[inline(always)]
    pub(crate) fn lane_of(out: &mut [f32; LANES]) -> Option<&mut Lane> {
        if STREAMS {
            bytemuck::try_cast_mut(out).ok()
        } else {
            None
        }
    }

    /// Stores `value` into `out` past the caches.
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    #[inline(always)]
    pub(crate) fn store(out: &mut Lane, value: Lane) {
        use std::arch::x86_64::{__m512, _mm512_stream_ps};
        // SAFETY: `Lane` is `f32x16`, 64 plain bytes like `__m512`, so the transmute is a copy;
        // `out` is a live, exclusive `&mut Lane`, aligned to 64 bytes as the intrinsic requires,
        // and the build enables AVX-512F. `Fence` orders the store before `out` is read again.
        unsafe {
            _mm512_stream_ps(
                std::ptr::from_mut(out).cast(),
                std::mem::transmute::<Lane, __m512>(value),
            );
        }
    }

    /// Stores `value` into `out` past the caches.
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx",
        not(target_feature = "avx512f")
    ))]
    #[inline(always)]
    pub(crate) fn store(out: &mut Lane, value: Lane) {
        use std::arch::x86_64::{__m256, _mm256_stream_ps};
        // SAFETY: `Lane` is `f32x8`, 32 plain bytes like `__m256`, so the transmute is a copy;
        // `out` is a live, exclusive `&mut Lane`, aligned to 32 bytes as the intrinsic requires,
        // and the build enables AVX. `Fence` orders the store before `out` is read again.
        unsafe {
            _mm256_stream_ps(
                std::ptr::from_mut(out).cast(),
                std::mem::transmute::<Lane, __m256>(value),
            );
        }
    }

    /// Plain store: this build has no streaming stores ([`lane_of`] never hands out a lane).
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx")))]
    #[inline(always)]
    pub(crate) fn store(out: &mut Lane, value: Lane) {
        *out = value;
    }

    /// Dropped after the streamed stores (also when unwinding): an `sfence`, so that they are
    /// ordered before any later access to the memory, from this thread or another one, as
    /// streaming stores require.
    pub(crate) struct Fence;

    impl Drop for Fence {
        #[inline(always)]
        fn drop(&mut self) {
            #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
            // SAFETY: `sfence` only orders stores; SSE is part of every x86_64 build.
            unsafe {
                std::arch::x86_64::_mm_sfence();
            }
        }
    }
}

/// The full vector of `column[start..start + LANES]`.
#[inline(always)]
pub(crate) fn load(column: &[f32], start: usize) -> Lane {
    let lanes: [f32; LANES] = column[start..start + LANES]
        .try_into()
        .expect("a range of LANES rows has LANES elements");
    Lane::new(lanes)
}

/// `column[start..]` (fewer than `LANES` rows), zero-padded.
pub(crate) fn load_tail(column: &[f32], start: usize) -> Lane {
    Lane::from(&column[start..])
}

/// Zero vectors standing in for a missing column in [`Vectors`]: one chunk's worth.
static ZERO_VECTORS: [[f32; LANES]; CHUNK_ROWS / LANES] = [[0.0; LANES]; CHUNK_ROWS / LANES];

/// The first `count` whole vectors of every column, each cut to exactly `count` (a missing
/// column reads zeros), so that [`Vectors::rows`] below `count` needs no bounds checks.
struct Vectors<'a> {
    margin: &'a [[f32; LANES]],
    retention: &'a [[f32; LANES]],
    retention_cost: &'a [[f32; LANES]],
    referral_value: &'a [[f32; LANES]],
    competence_value: &'a [[f32; LANES]],
    development_cost: &'a [[f32; LANES]],
    acquisition_cost: &'a [[f32; LANES]],
}

impl<'a> Vectors<'a> {
    /// The first `count` vectors of `inputs`' columns.
    ///
    /// # Panics
    ///
    /// If a present column has fewer than `count * LANES` rows, or `count` is more than a
    /// chunk's vectors ([`CHUNK_ROWS`]` / LANES`).
    #[inline(always)]
    fn new(inputs: &CrvInputs<'a>, count: usize) -> Self {
        let vectors = |column: &'a [f32]| &column.as_chunks::<LANES>().0[..count];
        let optional = |column: Option<&'a [f32]>| column.map_or(&ZERO_VECTORS[..count], vectors);
        Vectors {
            margin: vectors(inputs.margin),
            retention: vectors(inputs.retention),
            retention_cost: optional(inputs.retention_cost),
            referral_value: optional(inputs.referral_value),
            competence_value: optional(inputs.competence_value),
            development_cost: optional(inputs.development_cost),
            acquisition_cost: optional(inputs.acquisition_cost),
        }
    }

    /// The rows of vector `index`, the same as [`Rows::new`] at `index * LANES`.
    #[inline(always)]
    fn rows(&self, index: usize) -> Rows {
        Rows {
            margin: Lane::new(self.margin[index]),
            retention: Lane::new(self.retention[index]),
            retention_cost: Lane::new(self.retention_cost[index]),
            referral_value: Lane::new(self.referral_value[index]),
            competence_value: Lane::new(self.competence_value[index]),
            development_cost: Lane::new(self.development_cost[index]),
            acquisition_cost: Lane::new(self.acquisition_cost[index]),
        }
    }
}

/// One vector of rows from every column; missing columns are zero.
pub(crate) struct Rows {
    pub(crate) margin: Lane,
    pub(crate) retention: Lane,
    pub(crate) retention_cost: Lane,
    referral_value: Lane,
    competence_value: Lane,
    development_cost: Lane,
    acquisition_cost: Lane,
}

impl Rows {
    /// The full vector of rows `start..start + LANES`.
    #[inline(always)]
    pub(crate) fn new(inputs: &CrvInputs<'_>, start: usize) -> Self {
        Rows::gather(inputs, |column| load(column, start))
    }

    /// The rows from `start` to the end (fewer than `LANES`), zero-padded.
    pub(crate) fn tail(inputs: &CrvInputs<'_>, start: usize) -> Self {
        Rows::gather(inputs, |column| load_tail(column, start))
    }

    /// The one-off terms: `referral + competence - development - acquisition`.
    #[inline(always)]
    pub(crate) fn one_off(&self) -> Lane {
        (self.referral_value + self.competence_value)
            - (self.development_cost + self.acquisition_cost)
    }

    /// One vector from every column through `load`; a missing column is zero.
    #[inline(always)]
    fn gather(inputs: &CrvInputs<'_>, load: impl Fn(&[f32]) -> Lane) -> Self {
        let optional = |column: Option<&[f32]>| column.map_or(Lane::ZERO, &load);
        Rows {
            margin: load(inputs.margin),
            retention: load(inputs.retention),
            retention_cost: optional(inputs.retention_cost),
            referral_value: optional(inputs.referral_value),
            competence_value: optional(inputs.competence_value),
            development_cost: optional(inputs.development_cost),
            acquisition_cost: optional(inputs.acquisition_cost),
        }
    }
}

/// Half a lane's values in f64: `f64x8` with AVX-512 lanes, `f64x4` otherwise.
#[cfg(target_feature = "avx512f")]
type HalfLaneF64 = wide::f64x8;
/// Half a lane's values in f64: `f64x4` with `f32x8` lanes.
#[cfg(not(target_feature = "avx512f"))]
type HalfLaneF64 = wide::f64x4;

/// One f64 sum per lane, folded lane 0..LANES at the end: a fixed order. The sums are kept as
/// two f64 vectors (lanes `0..LANES / 2` and the rest) so that adding a vector is a few vector
/// conversions and adds whatever the surrounding code.
#[derive(Default)]
pub(crate) struct LaneTotal([HalfLaneF64; 2]);

impl LaneTotal {
    #[inline(always)]
    pub(crate) fn add(&mut self, values: Lane) {
        let values = values.to_array();
        for (half, sum) in values.chunks_exact(LANES / 2).zip(&mut self.0) {
            *sum += HalfLaneF64::new(std::array::from_fn(|lane| f64::from(half[lane])));
        }
    }

    pub(crate) fn total(&self) -> f64 {
        self.0.iter().flat_map(|half| half.to_array()).sum()
    }
}

/// How many lanes of `values` are infinite or NaN: `!(|v| < inf)` is true for both.
#[inline(always)]
pub(crate) fn count_non_finite(values: Lane) -> u64 {
    let finite = values.abs().simd_lt(Lane::splat(f32::INFINITY));
    (LANES - finite.to_bitmask().count_ones() as usize) as u64
}

/// Per-lane f64 sums of one chunk, split at zero, and the counts of positive and of non-finite
/// values.
#[derive(Default)]
pub(crate) struct LaneSums {
    positive_crv: LaneTotal,
    non_positive_crv: LaneTotal,
    positive_customers: u64,
    non_finite: u64,
}

impl LaneSums {
    #[inline(always)]
    pub(crate) fn add(&mut self, crv: Lane) {
        self.positive_crv.add(crv.fast_max(Lane::ZERO));
        self.non_positive_crv.add(crv.fast_min(Lane::ZERO));
        self.positive_customers += u64::from(crv.simd_gt(Lane::ZERO).to_bitmask().count_ones());
        self.non_finite += count_non_finite(crv);
    }

    pub(crate) fn into_totals(self, customers: usize) -> ScoreTotals {
        let customers = customers as u64;
        ScoreTotals {
            customers,
            positive_customers: self.positive_customers,
            positive_crv: self.positive_crv.total(),
            non_positive_customers: customers - self.positive_customers,
            non_positive_crv: self.non_positive_crv.total(),
            non_finite: self.non_finite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(discount: f64, horizon: Horizon) -> ScoreParams {
        ScoreParams { discount, horizon }
    }

    fn both(inputs: &CrvInputs<'_>, params: &ScoreParams) -> (Vec<f32>, Vec<f32>) {
        let mut scalar = vec![0.0; inputs.len()];
        let mut lanes = vec![0.0; inputs.len()];
        crv_scalar(inputs, params, &mut scalar);
        score_lanes(inputs, params, &mut lanes);
        (scalar, lanes)
    }

    fn assert_close(scalar: &[f32], lanes: &[f32]) {
        for (row, (&s, &l)) in scalar.iter().zip(lanes).enumerate() {
            let tolerance = TOLERANCE_RELATIVE * f64::from(s.abs()) + TOLERANCE_ABSOLUTE;
            assert!(
                (f64::from(s) - f64::from(l)).abs() <= tolerance,
                "row {row}: scalar {s} lanes {l}"
            );
        }
    }

    #[test]
    fn annuity_factor_matches_the_sum_of_discounted_retention() {
        let params = params(0.1, Horizon::Periods(3));
        let q: f64 = 0.8 / 1.1;
        let expected = q + q * q + q * q * q;
        assert!((annuity_factor(0.8, &params) - expected).abs() < 1e-12);
    }

    #[test]
    fn retention_one_without_discount_counts_every_period() {
        let margin = [10.0; 9];
        let retention = [1.0; 9];
        let inputs = CrvInputs::new(&margin, &retention);
        let (scalar, lanes) = both(&inputs, &params(0.0, Horizon::Periods(5)));
        assert_eq!(scalar, vec![50.0; 9]);
        assert_eq!(lanes, vec![50.0; 9]);
    }

    #[test]
    fn infinite_horizon_at_q_one_is_infinite_or_zero_never_nan() {
        let margin = [10.0, 0.0, -1.0, 5.0];
        let retention = [1.0, 1.0, 1.0, 0.5];
        let cost = [0.0; 4];
        let inputs = CrvInputs {
            retention_cost: Some(&cost),
            ..CrvInputs::new(&margin, &retention)
        };
        let (scalar, lanes) = both(&inputs, &params(0.0, Horizon::Infinite));
        let expected = [f32::INFINITY, 0.0, f32::NEG_INFINITY, 5.0];
        assert_eq!(scalar, expected);
        assert_eq!(lanes, expected);
    }

    #[test]
    fn zero_retention_leaves_only_one_off_terms() {
        let margin = [100.0; 11];
        let retention = [0.0; 11];
        let referral = [3.0; 11];
        let acquisition = [5.0; 11];
        let inputs = CrvInputs {
            referral_value: Some(&referral),
            acquisition_cost: Some(&acquisition),
            ..CrvInputs::new(&margin, &retention)
        };
        for horizon in [Horizon::Periods(1), Horizon::Periods(40), Horizon::Infinite] {
            let (scalar, lanes) = both(&inputs, &params(0.1, horizon));
            assert_eq!(scalar, vec![-2.0; 11]);
            assert_eq!(lanes, vec![-2.0; 11]);
        }
    }

    #[test]
    fn lanes_keep_precision_when_retention_is_just_below_one() {
        let margin = [1.0; 8];
        let retention = [0.999_999, 0.9999, 0.999, 0.99, 0.9, 0.5, 1.0, 0.999_999_9];
        let inputs = CrvInputs::new(&margin, &retention);
        for horizon in [
            Horizon::Periods(1),
            Horizon::Periods(1000),
            Horizon::Infinite,
        ] {
            let (scalar, lanes) = both(&inputs, &params(0.0, horizon));
            let finite: Vec<usize> = (0..8).filter(|&i| scalar[i].is_finite()).collect();
            for i in finite {
                let relative = (f64::from(lanes[i]) / f64::from(scalar[i]) - 1.0).abs();
                assert!(
                    relative < TOLERANCE_RELATIVE,
                    "{horizon} r={}",
                    retention[i]
                );
            }
        }
    }

    #[test]
    fn negative_net_margin_gives_negative_value() {
        let margin = [1.0; 3];
        let retention = [0.7; 3];
        let cost = [4.0; 3];
        let inputs = CrvInputs {
            retention_cost: Some(&cost),
            ..CrvInputs::new(&margin, &retention)
        };
        let (scalar, lanes) = both(&inputs, &params(0.1, Horizon::Periods(5)));
        assert!(scalar.iter().all(|&v| v < 0.0));
        assert_close(&scalar, &lanes);
    }

    #[test]
    fn totals_split_positive_and_non_positive_customers() {
        let margin = [10.0, -10.0, 0.0, 20.0, 1.0];
        let retention = [0.5; 5];
        let inputs = CrvInputs::new(&margin, &retention);
        let mut out = [0.0; 5];
        let totals = score_lanes(&inputs, &params(0.0, Horizon::Periods(1)), &mut out);
        assert_eq!(out, [5.0, -5.0, 0.0, 10.0, 0.5]);
        assert_eq!(totals.customers, 5);
        assert_eq!(totals.positive_customers, 3);
        assert_eq!(totals.positive_crv, 15.5);
        assert_eq!(totals.non_positive_customers, 2);
        assert_eq!(totals.non_positive_crv, -5.0);
        assert_eq!(totals.crv_sum(), 10.5);
    }

    #[test]
    fn validate_names_the_column_with_the_wrong_length() {
        let margin = [1.0; 4];
        let retention = [0.5; 4];
        let short = [0.0; 3];
        let inputs = CrvInputs {
            development_cost: Some(&short),
            ..CrvInputs::new(&margin, &retention)
        };
        let message = inputs.validate().unwrap_err().to_string();
        assert!(message.contains("`development_cost`"), "{message}");
        assert!(message.contains("3 rows"), "{message}");
        let message = CrvInputs::new(&margin, &short)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(message.contains("`retention`"), "{message}");
        assert!(CrvInputs::new(&margin, &retention).validate().is_ok());
    }

    #[test]
    #[should_panic(expected = "not validated")]
    fn scoring_unvalidated_inputs_panics() {
        let margin = [1.0; 4];
        let retention = [0.5; 3];
        crv_scalar(
            &CrvInputs::new(&margin, &retention),
            &ScoreParams::default(),
            &mut [0.0; 4],
        );
    }

    /// Seven columns of `rows` varied customers (some with a negative CRV), and the same with
    /// `referral_value` and `acquisition_cost` missing.
    fn varied_columns(rows: usize) -> [Vec<f32>; 7] {
        let value = |row: usize, column: usize| {
            let x = ((row * 7 + column) as f32 * 0.618_034).fract();
            match column {
                0 => 100.0 * x - 20.0,
                1 => x,
                _ => 10.0 * x,
            }
        };
        std::array::from_fn(|column| (0..rows).map(|row| value(row, column)).collect())
    }

    fn all_and_some(columns: &[Vec<f32>; 7]) -> [CrvInputs<'_>; 2] {
        let all = CrvInputs {
            retention_cost: Some(&columns[2]),
            referral_value: Some(&columns[3]),
            competence_value: Some(&columns[4]),
            development_cost: Some(&columns[5]),
            acquisition_cost: Some(&columns[6]),
            ..CrvInputs::new(&columns[0], &columns[1])
        };
        let some = CrvInputs {
            referral_value: None,
            acquisition_cost: None,
            ..all
        };
        [all, some]
    }

    /// The horizons of every lane path: doubling (odd and even T), closed form, infinite.
    fn every_path() -> [ScoreParams; 5] {
        [
            params(0.1, Horizon::Periods(1)),
            params(0.1, Horizon::Periods(6)),
            params(0.1, Horizon::Periods(7)),
            params(0.1, Horizon::Periods(33)),
            params(0.05, Horizon::Infinite),
        ]
    }

    #[test]
    fn streamed_and_plain_stores_write_the_same_values_and_totals() {
        // Two chunks and a partial vector.
        let rows = CHUNK_ROWS + 3 * LANES + 5;
        let columns = varied_columns(rows);
        let mut aligned = vec![Lane::ZERO; rows.div_ceil(LANES)];
        let aligned: &mut [f32] = &mut bytemuck::cast_slice_mut(&mut aligned)[..rows];
        let mut shifted = vec![0.0f32; rows + 1];
        let shifted = &mut shifted[1..];
        // The aligned output takes the streaming stores where the build has them, the shifted
        // one (4 bytes off a lane's alignment) the plain ones.
        let first = |out: &mut [f32]| streaming::lane_of(&mut out.as_chunks_mut().0[0]).is_some();
        assert_eq!(first(aligned), streaming::STREAMS);
        assert!(!first(shifted));
        for inputs in all_and_some(&columns) {
            for params in every_path() {
                let streamed = score_lanes(&inputs, &params, aligned);
                let plain = score_lanes(&inputs, &params, shifted);
                let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(aligned), bits(shifted), "{}", params.horizon);
                assert_eq!(streamed, plain, "{}", params.horizon);
                assert!(streamed.positive_customers > 0 && streamed.non_positive_customers > 0);
            }
        }
    }

    #[test]
    fn chunk_vectors_load_the_rows_that_rows_new_loads() {
        let rows = 5 * LANES;
        let columns = varied_columns(rows);
        let parts = |rows: &Rows| {
            [
                rows.margin,
                rows.retention,
                rows.retention_cost,
                rows.referral_value,
                rows.competence_value,
                rows.development_cost,
                rows.acquisition_cost,
            ]
            .map(Lane::to_array)
        };
        for inputs in all_and_some(&columns) {
            let vectors = Vectors::new(&inputs, rows / LANES);
            for index in 0..rows / LANES {
                assert_eq!(
                    parts(&vectors.rows(index)),
                    parts(&Rows::new(&inputs, index * LANES)),
                    "vector {index}"
                );
            }
        }
    }

    #[test]
    fn lane_totals_sum_each_lane_in_row_order_then_the_lanes_in_order() {
        // 1 + 2^53 rounds to 2^53 in f64: summed in order, [1, 2^53, 1, -2^53] is 0, summed in
        // another order it is not. Rows 0..4 repeat it in every lane (the order of rows), row 4
        // spreads it over the lanes (the order of lanes).
        let big = 2f32.powi(53);
        let pattern = [1.0, big, 1.0, -big];
        let values: Vec<f32> = (0..5 * LANES)
            .map(|i| {
                let (row, lane) = (i / LANES, i % LANES);
                pattern[if row < 4 { row } else { lane % 4 }]
            })
            .collect();
        let mut lanes = [0.0f64; LANES];
        let mut total = LaneTotal::default();
        for vector in values.as_chunks::<LANES>().0 {
            for (sum, &value) in lanes.iter_mut().zip(vector) {
                *sum += f64::from(value);
            }
            total.add(Lane::new(*vector));
        }
        let expected: f64 = lanes.iter().sum();
        assert_eq!(total.total().to_bits(), expected.to_bits());
    }
}
