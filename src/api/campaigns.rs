//! The campaign endpoints (README.md, "Campaign optimisation"): `POST /v1/campaigns/optimise`
//! solves a campaign definition on the heavy pool behind the admission queue and keeps the
//! plan under a new id; `GET /v1/campaigns/{id}` answers its summary and `GET
//! /v1/campaigns/{id}/customers/{cid}` whether a customer is in it, with which offer and why:
//! lookups in the kept plan, never a new solve; `GET /v1/campaigns/{id}/report` compares the
//! kept plan's predicted value with the contacts and responses the server recorded for its
//! campaign ([`crate::campaign::realised`]). The last [`MAX_STORED_PLANS`] plans are kept, the
//! oldest dropped first; each holds the table version it was solved on. Contact rules read the
//! contact history of the server's event log (`--wal`), as of the campaign's `as_of`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::body::Body;
use super::request_head::{Field, Headers};
use super::wire::{ApiError, JSON, RequestBody, json_response, names_media_type, read_body};
use crate::campaign::contacts::ContactHistory;
use crate::campaign::definition::CampaignDefinition;
use crate::campaign::stored::StoredPlan;
use crate::cancel::Cancel;
use crate::limits::{MAX_STORED_PLANS, MAX_TIME_LIMIT_MS};
use crate::live::Live;
use crate::rfm::date::now_micros;

/// The plans kept, oldest first, each under its id.
#[derive(Debug, Default)]
pub struct Plans {
    kept: Mutex<KeptPlans>,
}

#[derive(Debug, Default)]
struct KeptPlans {
    /// The id of the last plan kept (ids start at 1).
    last_id: u64,
    plans: VecDeque<(u64, Arc<KeptPlan>)>,
}

/// A plan and its summary, computed once.
#[derive(Debug)]
struct KeptPlan {
    plan: StoredPlan,
    summary: Value,
}

impl Plans {
    /// Keeps `plan` under a new id, dropping the oldest beyond [`MAX_STORED_PLANS`].
    fn keep(&self, plan: Arc<KeptPlan>) -> u64 {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.last_id += 1;
        let id = kept.last_id;
        kept.plans.push_back((id, plan));
        while kept.plans.len() > MAX_STORED_PLANS {
            kept.plans.pop_front();
        }
        id
    }

    /// How many plans are kept.
    pub fn count(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plans
            .len()
    }

    /// The ids of the plans kept, oldest first, and the newest plan.
    fn newest(&self) -> (Vec<u64>, Option<(u64, Arc<KeptPlan>)>) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let ids = kept.plans.iter().map(|(id, _)| *id).collect();
        let newest = kept.plans.back().map(|(id, plan)| (*id, Arc::clone(plan)));
        (ids, newest)
    }

    /// The plan kept under `id`, and the id as a number; 404 when there is none (never made,
    /// or dropped).
    fn get(&self, id: &str) -> Result<(u64, Arc<KeptPlan>), ApiError> {
        let not_found = || {
            ApiError::not_found(format!(
                "no campaign plan `{id}` (the last {MAX_STORED_PLANS} plans are kept)"
            ))
        };
        let id: u64 = id.parse().map_err(|_| not_found())?;
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.plans
            .iter()
            .find(|(kept_id, _)| *kept_id == id)
            .map(|(id, plan)| (*id, Arc::clone(plan)))
            .ok_or_else(not_found)
    }
}

/// The summary as answered: the plan's summary with its id.
fn answer(id: u64, kept: &KeptPlan) -> Response<Body> {
    json_response(StatusCode::OK, &with_id(id, kept))
}

fn with_id(id: u64, kept: &KeptPlan) -> Value {
    let mut summary = kept.summary.clone();
    summary["plan_id"] = json!(id.to_string());
    summary
}

/// `GET /v1/campaigns`: `{"plan_ids": [..], "latest": {..} or null}`, the ids of the plans
/// kept (oldest first) and the newest plan's summary: the dashboard's current plan.
pub fn plans(state: &AppState) -> Result<Response<Body>, ApiError> {
    let (ids, newest) = state.plans().newest();
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let latest = newest.map_or(Value::Null, |(id, kept)| with_id(id, &kept));
    Ok(json_response(
        StatusCode::OK,
        &json!({"plan_ids": ids, "latest": latest}),
    ))
}

/// Where a campaign's contact rules read the contact history on the server: the contacts of
/// its event log (`--wal`). Made before the campaign is queued, so that a definition whose
/// rules the server cannot evaluate is a 400 at once; read on the heavy pool.
pub(super) struct RuleContacts(Option<Arc<Live>>);

impl RuleContacts {
    /// The contacts the rules of `definition` read: none without rules; the event log's with
    /// them, a 400 `no_contact_history` on a server without one.
    pub(super) fn of(
        state: &AppState,
        definition: &CampaignDefinition,
    ) -> Result<RuleContacts, ApiError> {
        if definition.contact_rules.is_empty() {
            return Ok(RuleContacts(None));
        }
        match state.live() {
            Some(live) => Ok(RuleContacts(Some(Arc::clone(live)))),
            None => Err(ApiError::bad_request(
                "no_contact_history",
                "field `contact_rules`: the server has no contact history (start it with --wal \
                 DIR, or give the contacts to the command line: `--contacts contacts.csv`)",
            )),
        }
    }

    /// The history (on the heavy pool: it reads every customer with events).
    pub(super) fn history(&self) -> ContactHistory {
        self.0
            .as_ref()
            .map_or_else(ContactHistory::default, |live| live.contact_history(None))
    }
}

/// `POST /v1/campaigns/optimise`: the body is a campaign definition (as `crv optimise
/// --campaign` reads it), bound to the table version current when the request came, solved on
/// the heavy pool; the answer is the plan's summary (`objective`, `upper_bound`, `gap`,
/// `resources` with their shadow prices, `offers`) with its `plan_id`. An infeasible campaign
/// is a plan too: its summary names the conflict under `infeasible`. Contact rules read the
/// contacts of the server's event log ([`RuleContacts`]).
pub async fn optimise(
    state: &Arc<AppState>,
    headers: Headers<'_>,
    body: &mut RequestBody,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    if !names_media_type(headers, Field::ContentType, JSON) {
        return Err(ApiError::unsupported_media_type("`application/json`"));
    }
    let bytes = read_body(body, state.config().max_body_bytes).await?;
    let definition = CampaignDefinition::parse(&bytes, "request body")?;
    let contacts = RuleContacts::of(state, &definition)?;
    let cancel = definition_cancel(started, &definition)?;
    // Dropped with this future: when the client goes away, the solve stops.
    let _cancel_on_drop = cancel.cancel_on_drop();
    let table = state.table();
    let job_cancel = cancel.clone();
    let kept = state
        .admission()
        .run(&cancel, move || -> crate::Result<KeptPlan> {
            let plan = StoredPlan::solve(
                table,
                definition,
                &contacts.history(),
                now_micros(),
                job_cancel,
            )?;
            let mut summary = plan.plan().summary();
            summary["time_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
            Ok(KeptPlan { plan, summary })
        })
        .await??;
    let kept = Arc::new(kept);
    let id = state.plans().keep(Arc::clone(&kept));
    Ok(answer(id, &kept))
}

/// The stop token of a request that solves `definition`, started at `started`: its
/// `time_limit_ms` (at most [`MAX_TIME_LIMIT_MS`] on the server, which is also the default).
fn definition_cancel(
    started: Instant,
    definition: &CampaignDefinition,
) -> Result<Cancel, ApiError> {
    let time_limit_ms = definition.time_limit_ms.unwrap_or(MAX_TIME_LIMIT_MS);
    if time_limit_ms > MAX_TIME_LIMIT_MS {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "field `time_limit_ms`: {time_limit_ms}, at most {MAX_TIME_LIMIT_MS} on the server"
            ),
        ));
    }
    Ok(Cancel::with_time_limit(
        started,
        Duration::from_millis(time_limit_ms),
    ))
}

/// `GET /v1/campaigns/{id}`: the kept plan's summary, as `POST /v1/campaigns/optimise`
/// answered it.
pub fn summary(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let (id, kept) = state.plans().get(id)?;
    Ok(answer(id, &kept))
}

/// `GET /v1/campaigns/{id}/customers/{cid}`: whether customer `cid` is in the kept plan
/// (`in_plan`), with which `offer`, and why: the `reason` (value against the resources'
/// shadow prices, the binding limit, or the rule that excluded them) and, per offer, the
/// customer's value, uses, price of the uses and reduced value. 404 for an unknown plan or a
/// customer not in the plan's table.
pub fn customer(state: &AppState, id: &str, customer: &str) -> Result<Response<Body>, ApiError> {
    let (id, kept) = state.plans().get(id)?;
    let customer = state.path_id(customer)?.external.to_string();
    let mut explanation =
        kept.plan.plan().explain(&customer).ok_or_else(|| {
            ApiError::not_found(format!("customer {customer} is not in the store"))
        })?;
    explanation["in_plan"] = Value::Bool(!explanation["offer"].is_null());
    explanation["plan_id"] = json!(id.to_string());
    Ok(json_response(StatusCode::OK, &explanation))
}

/// `GET /v1/campaigns/{id}/report`: the kept plan's predicted value per offer against the
/// contacts and responses the server's event log holds for its campaign (events whose
/// `campaign` is the definition's `name`): per offer `assigned`, `predicted_value`,
/// `contacted`, `responders`, `responses`, `response_value`, `response_rate`,
/// `realised_ratio`; `total`; `outside_plan`, `before_plan` ([`crate::campaign::realised`]); `last_sequence`,
/// the log sequence up to which every event is counted. Read on the
/// heavy pool (it reads every customer with events of the campaign). 404 for an unknown plan or
/// on a server without `--wal`; 400 `no_campaign_name` for a definition without `name`, 400
/// `infeasible_plan` for a campaign that has no plan.
pub async fn report(state: &AppState, id: &str) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let (id, kept) = state.plans().get(id)?;
    let live = Arc::clone(state.live().ok_or_else(|| {
        ApiError::not_found(
            "the server takes no events: no responses to report on (start it with --wal DIR)",
        )
    })?);
    let Some(name) = kept.plan.plan().bound.definition().name.clone() else {
        return Err(ApiError::bad_request(
            "no_campaign_name",
            format!(
                "plan {id}: its campaign definition has no `name`, which the events' `campaign` \
                 must carry for their responses to be matched to it"
            ),
        ));
    };
    if kept.plan.plan().plan().is_none() {
        return Err(ApiError::bad_request(
            "infeasible_plan",
            format!("plan {id}: the campaign is infeasible, there is no plan to report on"),
        ));
    }
    let cancel = Cancel::with_time_limit(started, Duration::from_millis(MAX_TIME_LIMIT_MS));
    let _cancel_on_drop = cancel.cancel_on_drop();
    let mut report = state
        .admission()
        .run(&cancel, move || {
            // Every event up to this one is in the history (events are applied in order).
            let sequence = live.last_sequence();
            let history = live.contact_history(Some(&name));
            let mut report = kept
                .plan
                .plan()
                .realised(&name, &history)
                .expect("a feasible campaign has a plan");
            report["last_sequence"] = json!(sequence);
            report
        })
        .await?;
    report["plan_id"] = json!(id.to_string());
    report["time_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    Ok(json_response(StatusCode::OK, &report))
}
