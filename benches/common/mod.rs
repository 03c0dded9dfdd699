//! Seeded synthetic customer columns for the kernel benches; the one place their data is made,
//! so switching the benches to a generated store file later changes only this file.

/// The CRV input columns of `rows` customers.
pub struct CustomerColumns {
    /// Margin per period: lognormal around 20.
    pub margin: Vec<f32>,
    /// Retention around 0.75, clamped to [0, 1].
    pub retention: Vec<f32>,
    /// Cost per period: 10-50% of the margin.
    pub retention_cost: Vec<f32>,
    /// One-off referral value, 0-10.
    pub referral_value: Vec<f32>,
    /// One-off competence value, 0-5.
    pub competence_value: Vec<f32>,
    /// One-off development cost, 0-10.
    pub development_cost: Vec<f32>,
    /// Acquisition cost: zero for 80% (already won), else 10-50.
    pub acquisition_cost: Vec<f32>,
}

impl CustomerColumns {
    /// The kernel's view of the columns.
    pub fn inputs(&self) -> crv::kernel::CrvInputs<'_> {
        crv::kernel::CrvInputs {
            retention_cost: Some(&self.retention_cost),
            referral_value: Some(&self.referral_value),
            competence_value: Some(&self.competence_value),
            development_cost: Some(&self.development_cost),
            acquisition_cost: Some(&self.acquisition_cost),
            ..crv::kernel::CrvInputs::new(&self.margin, &self.retention)
        }
    }
}

/// Realistic-ish customers from a seeded PCG-style generator (about 10% with CRV <= 0 at the
/// default parameters).
pub fn customer_columns(rows: usize, seed: u64) -> CustomerColumns {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut columns = CustomerColumns {
        margin: Vec::with_capacity(rows),
        retention: Vec::with_capacity(rows),
        retention_cost: Vec::with_capacity(rows),
        referral_value: Vec::with_capacity(rows),
        competence_value: Vec::with_capacity(rows),
        development_cost: Vec::with_capacity(rows),
        acquisition_cost: Vec::with_capacity(rows),
    };
    for _ in 0..rows {
        // Irwin-Hall: four uniforms make a near-normal deviate with unit variance.
        let mut normal = || (uniform() + uniform() + uniform() + uniform() - 2.0) * 3f32.sqrt();
        let margin = (3.0 + 0.8 * normal()).exp();
        let retention = (0.75 + 0.15 * normal()).clamp(0.0, 1.0);
        columns.margin.push(margin);
        columns.retention.push(retention);
        columns
            .retention_cost
            .push(margin * (0.1 + 0.4 * uniform()));
        columns.referral_value.push(10.0 * uniform());
        columns.competence_value.push(5.0 * uniform());
        columns.development_cost.push(10.0 * uniform());
        let prospect = uniform() < 0.2;
        columns.acquisition_cost.push(if prospect {
            10.0 + 40.0 * uniform()
        } else {
            0.0
        });
    }
    columns
}
