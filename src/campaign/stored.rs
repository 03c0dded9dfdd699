//! A solved campaign that owns the table version it was solved on: what the server keeps under
//! a plan id, so that asking whether a customer is in the plan, with which offer and why, is a
//! lookup in the plan and never a new solve. The plan borrows its table's columns (values and
//! uses read in place); [`StoredPlan`] holds both, the table shared.

use std::sync::Arc;
use std::time::Instant;

use super::contacts::ContactHistory;
use super::definition::CampaignDefinition;
use super::optimise::CampaignPlan;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::table::Table;

self_cell::self_cell!(
    /// A [`CampaignPlan`] with the table it was solved on.
    pub struct StoredPlan {
        owner: Arc<Table>,
        #[covariant]
        dependent: CampaignPlan,
    }
);

impl StoredPlan {
    /// Binds `definition` to `table` (contact rules over `history` as of the definition's
    /// `as_of`, else `now_micros`) and solves it. Errors name the definition's field.
    pub fn solve(
        table: Arc<Table>,
        definition: CampaignDefinition,
        history: &ContactHistory,
        now_micros: i64,
        cancel: Cancel,
    ) -> Result<StoredPlan> {
        StoredPlan::try_new(table, |table| {
            let started = Instant::now();
            let bound = definition.bind(table, history, now_micros, &cancel)?;
            Ok(bound.solve(started.elapsed(), cancel))
        })
    }

    /// The plan.
    pub fn plan(&self) -> &CampaignPlan<'_> {
        self.borrow_dependent()
    }
}

impl std::fmt::Debug for StoredPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPlan")
            .field("customers", &self.borrow_owner().rows())
            .finish_non_exhaustive()
    }
}
