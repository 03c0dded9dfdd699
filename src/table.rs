//! The customer table every decision reads: one version of the customers (the store's columns)
//! with the columns derived from them (CRV; tiers, ranks and percentiles), shared behind an
//! `Arc` so that a request can hold one version for its whole run while a newer one is
//! published (the server swaps its current table atomically: [`crate::api::AppState::publish`]).
//!
//! Derived columns cost what they are used for. The CRV is computed when the table is made
//! (every consumer needs it, and its errors belong to the scoring parameters). The tiers come
//! in two depths, each computed on first use and then kept: [`Table::tier_cuts`], the per-tier
//! summary and the cut points, in linear time without sorting (enough for a `tier` filter, the
//! tier of a chosen customer, the summary), and [`Table::tiers`], every customer's rank and
//! percentile from the full sort (for lookups and the per-customer score file). A selection that
//! does not look at tiers computes neither.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::btyd::value::ValueModel;
use crate::error::{Error, Result};
use crate::kernel::{self, CrvInputs, ScoreTotals, TierCuts, TierScheme, TierSummary, Tiers};
use crate::model::{ExternalId, ScoreParams, Tier};
use crate::store::Store;

/// How a table's CRV column is computed from the customers' columns (docs/model.md).
#[derive(Debug, Clone)]
pub enum Valuation {
    /// From known margins and retention ("The model").
    Retention,
    /// From purchase histories under a fitted model ("Relationship value from purchase
    /// histories", `--model model.json`).
    Purchases(Arc<ValueModel>),
}

/// What a purchase model expects of each customer, row by row (tables valued
/// [`Valuation::Purchases`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseOutlook {
    /// P(alive) at the end of observation.
    pub p_alive: Vec<f32>,
    /// Expected purchases over the horizon.
    pub expected_purchases: Vec<f32>,
    /// Expected spend per purchase.
    pub expected_spend: Vec<f32>,
}

/// One version of the customers with their derived columns. Immutable: a change to the
/// customers is a new table with the next version number ([`Table::successor`]).
#[derive(Debug)]
pub struct Table {
    version: u64,
    store: Arc<Store>,
    params: ScoreParams,
    scheme: TierScheme,
    valuation: Valuation,
    outlook: Option<PurchaseOutlook>,
    crv: Vec<f32>,
    totals: ScoreTotals,
    score_time: Duration,
    cuts: OnceLock<(TierCuts, Duration)>,
    tiers: OnceLock<(Tiers, Duration)>,
}

impl Table {
    /// Version 1 of `store`'s customers, scored with `params` (tiers by `scheme` when asked
    /// for). Validates the parameters, the scheme and the CRV columns, and fails when some
    /// customer's CRV is not finite (naming it).
    pub fn score(store: Arc<Store>, params: ScoreParams, scheme: TierScheme) -> Result<Table> {
        Table::valued(store, params, scheme, Valuation::Retention)
    }

    /// Version 1 of `store`'s customers, valued by `valuation` with `params`: [`Table::score`]
    /// for any valuation. A purchase model needs the history columns and a finite horizon.
    pub fn valued(
        store: Arc<Store>,
        params: ScoreParams,
        scheme: TierScheme,
        valuation: Valuation,
    ) -> Result<Table> {
        Table::scored_at(1, store, params, scheme, valuation)
    }

    /// The next version: `store` (the customers as they are now) scored with this table's
    /// parameters, scheme and valuation, numbered one more than this one.
    pub fn successor(&self, store: Arc<Store>) -> Result<Table> {
        Table::scored_at(
            self.version + 1,
            store,
            self.params,
            self.scheme,
            self.valuation.clone(),
        )
    }

    /// The same customers (same version) scored with other parameters: a view for one request
    /// that asks for its own discount or horizon; this table is left as it is.
    pub fn rescored(&self, params: ScoreParams) -> Result<Table> {
        Table::scored_at(
            self.version,
            Arc::clone(&self.store),
            params,
            self.scheme,
            self.valuation.clone(),
        )
    }

    /// The same customers (same version) with CRVs computed elsewhere (a what-if scenario's
    /// values: [`crate::campaign::simulate`]), one per row, each finite, with their totals.
    ///
    /// # Panics
    ///
    /// If `crv` does not have one value per row.
    pub fn with_values(
        &self,
        params: ScoreParams,
        scheme: TierScheme,
        crv: Vec<f32>,
        totals: ScoreTotals,
    ) -> Table {
        assert_eq!(crv.len(), self.rows(), "one CRV per customer");
        Table {
            version: self.version,
            store: Arc::clone(&self.store),
            params,
            scheme,
            valuation: self.valuation.clone(),
            outlook: None,
            crv,
            totals,
            score_time: Duration::ZERO,
            cuts: OnceLock::new(),
            tiers: OnceLock::new(),
        }
    }

    fn scored_at(
        version: u64,
        store: Arc<Store>,
        params: ScoreParams,
        scheme: TierScheme,
        valuation: Valuation,
    ) -> Result<Table> {
        params.validate()?;
        scheme.validate()?;
        let started = Instant::now();
        let (crv, totals, outlook) = match &valuation {
            Valuation::Retention => {
                let inputs = CrvInputs::from_store(&store)?;
                let mut crv = vec![0.0f32; inputs.len()];
                let totals = kernel::score(&inputs, &params, &mut crv);
                kernel::check_finite(&inputs, &store, &params, &crv, totals.non_finite)?;
                (crv, totals, None)
            }
            Valuation::Purchases(model) => {
                let values = model.score(&store, &params)?;
                if let Some(row) = kernel::first_non_finite(&values.crv) {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "customer {} has a CRV of {} (expected spend {}, expected purchases {}); \
                             every CRV must be finite: check the model's parameters",
                            store.customer_id(row),
                            values.crv[row],
                            values.expected_spend[row],
                            values.expected_purchases[row]
                        ),
                    ));
                }
                let outlook = PurchaseOutlook {
                    p_alive: values.p_alive,
                    expected_purchases: values.expected_purchases,
                    expected_spend: values.expected_spend,
                };
                (values.crv, values.totals, Some(outlook))
            }
        };
        let score_time = started.elapsed();
        Ok(Table {
            version,
            store,
            params,
            scheme,
            valuation,
            outlook,
            crv,
            totals,
            score_time,
            cuts: OnceLock::new(),
            tiers: OnceLock::new(),
        })
    }

    /// The version number: 1 for the first, one more for each successor.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The customers' own columns.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The customers' own columns, shared (for a table of the same customers).
    pub fn shared_store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Number of customers.
    pub fn rows(&self) -> usize {
        self.store.rows()
    }

    /// Internal customer ids, row by row ([`Store::ids`]): the order of ties.
    pub fn ids(&self) -> &[u64] {
        self.store.ids()
    }

    /// Row `row`'s customer id as imported.
    pub fn customer_id(&self, row: usize) -> ExternalId<'_> {
        self.store.customer_id(row)
    }

    /// The scoring parameters of the CRV column.
    pub fn params(&self) -> &ScoreParams {
        &self.params
    }

    /// How the CRV column is computed.
    pub fn valuation(&self) -> &Valuation {
        &self.valuation
    }

    /// What the purchase model expects of each customer: tables valued by one
    /// ([`Valuation::Purchases`]) and scored here, not scenario views.
    pub fn outlook(&self) -> Option<&PurchaseOutlook> {
        self.outlook.as_ref()
    }

    /// How the tiers split the positive customers.
    pub fn scheme(&self) -> &TierScheme {
        &self.scheme
    }

    /// Every customer's CRV, row by row.
    pub fn crv(&self) -> &[f32] {
        &self.crv
    }

    /// Sums over all customers' CRV.
    pub fn totals(&self) -> &ScoreTotals {
        &self.totals
    }

    /// Time the CRV kernel took.
    pub fn score_time(&self) -> Duration {
        self.score_time
    }

    /// The tier summary and cut points: computed on first use, in linear time (no sort).
    pub fn tier_cuts(&self) -> &TierCuts {
        &self
            .cuts
            .get_or_init(|| timed(|| kernel::tier_cuts(&self.crv, self.ids(), &self.scheme)))
            .0
    }

    /// Counts, value shares and cut points per tier.
    pub fn tier_summary(&self) -> &TierSummary {
        match self.tiers.get() {
            Some((tiers, _)) => &tiers.summary,
            None => &self.tier_cuts().summary,
        }
    }

    /// Every customer's tier: the full tiers' column when they are there already, else from
    /// the cut points (computed now if not yet).
    pub fn tier_column(&self) -> TierColumn<'_> {
        match self.tiers.get() {
            Some((tiers, _)) => TierColumn::Stored(&tiers.tier),
            None => TierColumn::FromCuts {
                cuts: self.tier_cuts(),
                crv: &self.crv,
                ids: self.ids(),
            },
        }
    }

    /// Every customer's tier, rank and percentile: the full sort, computed on first use (on
    /// the rayon pool) and kept.
    pub fn tiers(&self) -> &Tiers {
        &self
            .tiers
            .get_or_init(|| timed(|| kernel::tiers(&self.crv, self.ids(), &self.scheme)))
            .0
    }

    /// Time spent on derived tier columns so far (cut points and the full sort).
    pub fn tier_time(&self) -> Duration {
        let cuts = self.cuts.get().map_or(Duration::ZERO, |(_, time)| *time);
        let tiers = self.tiers.get().map_or(Duration::ZERO, |(_, time)| *time);
        cuts + tiers
    }
}

/// Every customer's tier, row by row, read from a stored column or worked out from the cut
/// points (two comparisons of the customer's CRV and id).
#[derive(Debug, Clone, Copy)]
pub enum TierColumn<'a> {
    /// One tier per row.
    Stored(&'a [Tier]),
    /// The tier of row `r` is `cuts.tier(crv[r], ids[r])`.
    FromCuts {
        /// The cut points.
        cuts: &'a TierCuts,
        /// CRV per row.
        crv: &'a [f32],
        /// Customer id per row.
        ids: &'a [u64],
    },
}

impl TierColumn<'_> {
    /// The tier of the customer in `row`.
    ///
    /// # Panics
    ///
    /// If `row` is not a row of the column.
    #[inline]
    pub fn get(&self, row: usize) -> Tier {
        match *self {
            TierColumn::Stored(tiers) => tiers[row],
            TierColumn::FromCuts { cuts, crv, ids } => cuts.tier(crv[row], ids[row]),
        }
    }
}

/// `compute`'s value and the time it took.
fn timed<T>(compute: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = compute();
    (value, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Horizon;
    use crate::store::{csv, writer};

    fn store(text: &str) -> Arc<Store> {
        let parsed = csv::read_csv(text.as_bytes(), "t.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        Arc::new(Store::from_bytes(&bytes).unwrap())
    }

    fn customers() -> Arc<Store> {
        let mut text = String::from("customer_id,margin,retention\n");
        for id in 0..500u64 {
            // Ties (margins repeat), zero and negative values, ids not in row order.
            let margin = (id * 37 % 23) as f64 - 4.0;
            text.push_str(&format!("{},{margin},0.{}\n", 1000 - id, 5 + id % 4));
        }
        store(&text)
    }

    #[test]
    fn derived_tiers_wait_for_their_first_use_and_agree_in_either_depth() {
        for scheme in [TierScheme::default(), TierScheme::QUANTILE_DEFAULT] {
            let table = Table::score(customers(), ScoreParams::default(), scheme).unwrap();
            assert_eq!(table.tier_time(), Duration::ZERO, "nothing tiered yet");
            assert!(table.cuts.get().is_none() && table.tiers.get().is_none());
            let from_cuts: Vec<Tier> = {
                let column = table.tier_column();
                (0..table.rows()).map(|row| column.get(row)).collect()
            };
            assert!(table.tiers.get().is_none(), "the cut points do not sort");
            let summary = *table.tier_summary();
            let tiers = table.tiers();
            assert_eq!(from_cuts, tiers.tier);
            assert_eq!(summary, tiers.summary);
            let stored: Vec<Tier> = {
                let column = table.tier_column();
                assert!(matches!(column, TierColumn::Stored(_)));
                (0..table.rows()).map(|row| column.get(row)).collect()
            };
            assert_eq!(stored, from_cuts);
        }
    }

    #[test]
    fn versions_move_forward_and_views_keep_theirs() {
        let table =
            Table::score(customers(), ScoreParams::default(), TierScheme::default()).unwrap();
        assert_eq!(table.version(), 1);
        let other = ScoreParams {
            discount: 0.2,
            horizon: Horizon::Periods(3),
        };
        let view = table.rescored(other).unwrap();
        assert_eq!(view.version(), 1);
        assert_eq!(view.params(), &other);
        assert_ne!(view.crv(), table.crv());
        let next = table
            .successor(store("customer_id,margin,retention\n7,10,0.5\n"))
            .unwrap();
        assert_eq!(next.version(), 2);
        assert_eq!(next.params(), table.params());
        assert_eq!(next.rows(), 1);
        assert_eq!(table.rows(), 500, "the older version is untouched");
        let error = table
            .rescored(ScoreParams {
                discount: -1.0,
                horizon: Horizon::Infinite,
            })
            .unwrap_err();
        assert!(error.to_string().contains("discount"), "{error}");
    }
}
