//! The campaign report: a plan's predicted value, per offer, against the contacts and responses
//! recorded for its campaign (`GET /v1/campaigns/{id}/report` on a server taking events).
//!
//! A contact or response belongs to the plan when its `campaign` is the definition's `name`.
//! It counts for an offer when the customer holds that offer in the plan and the event names
//! it (or names no offer: it then counts for the customer's own offer); every other event of
//! the campaign (a customer the plan left out, another offer than theirs, a customer not in
//! the plan's table) is counted apart, under `outside_plan`. Only what happened after the
//! plan counts: an event at or before the plan's `as_of` (the definition's, else the moment
//! it was solved) is earlier history, not the plan's outcome (it may be what the contact rules
//! read), and is counted apart under `before_plan`. A campaign run again under the same name
//! mixes the runs after both plans' moments, so name each run.
//!
//! Per offer: `assigned` (customers holding it), `predicted_value` (the plan's value of
//! them), `contacted` (those with a contact), `responders` (those with a response),
//! `responses` (response events) and `response_value` (their summed `value`), then
//! `response_rate = responders / contacted` and `realised_ratio = response_value /
//! predicted_value` (`null` when the denominator is 0). `total` adds the offers up.
//!
//! Cost: one pass over the customers in the history (ascending id, so sums do not depend on
//! the order events were recorded in across customers), one index probe each.

use serde_json::{Map, Value, json};

use super::contacts::ContactHistory;
use super::optimise::CampaignPlan;
use crate::model::CustomerId;

/// What one offer (or the total) realised.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    assigned: u64,
    predicted_value: f64,
    contacted: u64,
    responders: u64,
    responses: u64,
    response_value: f64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.assigned += other.assigned;
        self.predicted_value += other.predicted_value;
        self.contacted += other.contacted;
        self.responders += other.responders;
        self.responses += other.responses;
        self.response_value += other.response_value;
    }

    fn json(&self) -> Value {
        let ratio = |numerator: f64, denominator: f64| {
            (denominator != 0.0).then(|| numerator / denominator)
        };
        json!({
            "assigned": self.assigned,
            "predicted_value": self.predicted_value,
            "contacted": self.contacted,
            "responders": self.responders,
            "responses": self.responses,
            "response_value": self.response_value,
            "response_rate": ratio(self.responders as f64, self.contacted as f64),
            "realised_ratio": ratio(self.response_value, self.predicted_value),
        })
    }
}

/// Events of the campaign counted apart from the offers' tallies.
#[derive(Debug, Clone, Copy, Default)]
struct Apart {
    contacts: u64,
    responses: u64,
    response_value: f64,
}

impl Apart {
    fn json(&self) -> Value {
        json!({
            "contacts": self.contacts,
            "responses": self.responses,
            "response_value": self.response_value,
        })
    }
}

impl CampaignPlan<'_> {
    /// The report of this plan against `history`, for the events whose campaign is
    /// `campaign` (see the module doc): `campaign`, `offers` (name -> tally), `total`,
    /// `outside_plan` (`contacts`, `responses`, `response_value`). `None` for an infeasible
    /// campaign, which has no plan to report on.
    pub fn realised(&self, campaign: &str, history: &ContactHistory) -> Option<Value> {
        let plan = self.plan()?;
        let definition = self.bound.definition();
        let mut tallies: Vec<Tally> = definition
            .offers
            .iter()
            .enumerate()
            .map(|(o, _)| Tally {
                assigned: plan.counts[o],
                predicted_value: plan.offer_values[o],
                ..Tally::default()
            })
            .collect();
        let planned_at = self.bound.as_of_micros();
        let (mut outside, mut before) = (Apart::default(), Apart::default());
        if let Some(campaign) = history.code(campaign) {
            let offer_codes: Vec<Option<u32>> = definition
                .offers
                .iter()
                .map(|offer| history.code(&offer.name))
                .collect();
            let unnamed = history.code("");
            let store = self.bound.table().store();
            for id in history.customers() {
                let held = store
                    .row_of(CustomerId(id))
                    .and_then(|row| plan.offer_of(row));
                // Whether an event of the campaign naming `offer` counts for the held offer.
                let counts = |offer: u32| {
                    held.is_some_and(|o| Some(offer) == offer_codes[o] || Some(offer) == unnamed)
                };
                let (mut contacted, mut responses, mut value) = (false, 0u64, 0.0);
                for contact in history.contacts(id) {
                    if contact.campaign != campaign {
                        continue;
                    }
                    if contact.time_micros <= planned_at {
                        before.contacts += 1;
                    } else if counts(contact.offer) {
                        contacted = true;
                    } else {
                        outside.contacts += 1;
                    }
                }
                for response in history.responses(id) {
                    if response.campaign != campaign {
                        continue;
                    }
                    let apart = if response.time_micros <= planned_at {
                        &mut before
                    } else if counts(response.offer) {
                        responses += 1;
                        value += response.value;
                        continue;
                    } else {
                        &mut outside
                    };
                    apart.responses += 1;
                    apart.response_value += response.value;
                }
                if let Some(o) = held {
                    let tally = &mut tallies[o];
                    tally.contacted += u64::from(contacted);
                    tally.responders += u64::from(responses > 0);
                    tally.responses += responses;
                    tally.response_value += value;
                }
            }
        }
        let mut total = Tally::default();
        tallies.iter().for_each(|tally| total.add(tally));
        let offers: Map<String, Value> = definition
            .offers
            .iter()
            .zip(&tallies)
            .map(|(offer, tally)| (offer.name.clone(), tally.json()))
            .collect();
        Some(json!({
            "campaign": campaign,
            "offers": offers,
            "total": total.json(),
            "outside_plan": outside.json(),
            "before_plan": before.json(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::campaign::definition::CampaignDefinition;
    use crate::campaign::stored::StoredPlan;
    use crate::cancel::Cancel;
    use crate::kernel::TierScheme;
    use crate::model::ScoreParams;
    use crate::store::Store;
    use crate::store::csv::read_csv;
    use crate::store::writer;
    use crate::table::Table;

    /// Six customers; `gold` goes to customers 1-3 (value 10 each), `mail` to 4-5 (value 2
    /// each); customer 6 is eligible for nothing.
    fn plan() -> StoredPlan {
        let csv = "customer_id,margin,retention,cost,segment\n\
             1,10,0.5,1,a\n2,10,0.5,1,a\n3,10,0.5,1,a\n4,10,0.5,1,b\n5,10,0.5,1,b\n6,10,0.5,1,c\n";
        let parsed = read_csv(csv.as_bytes(), "t.csv", &mut |_| {}).unwrap();
        let mut bytes = Vec::new();
        writer::encode(&parsed.table, &parsed.id_slots, &mut bytes).unwrap();
        let store = Arc::new(Store::from_bytes(&bytes).unwrap());
        let table =
            Arc::new(Table::score(store, ScoreParams::default(), TierScheme::default()).unwrap());
        let definition = CampaignDefinition::parse(
            br#"{"name": "spring", "resources": {"budget": 100},
                 "offers": [{"name": "gold", "value": 10, "eligible": "segment = a", "uses": {"budget": 1}},
                            {"name": "mail", "value": 2, "eligible": "segment = b", "uses": {"budget": 1}}]}"#,
            "test",
        )
        .unwrap();
        StoredPlan::solve(
            table,
            definition,
            &ContactHistory::default(),
            0,
            Cancel::default(),
        )
        .unwrap()
    }

    #[test]
    fn responses_are_counted_for_the_offer_each_customer_holds() {
        // The plan is made as of time 0: the campaign's events come after it.
        let stored = plan();
        let mut history = ContactHistory::default();
        for id in [1, 2, 4] {
            let offer = if id < 4 { "gold" } else { "mail" };
            history.add_contact(id, 1, "email", "spring", offer);
        }
        // Another campaign never counts.
        history.add_contact(3, 1, "email", "autumn", "gold");
        history.add_response(3, 1, "autumn", "gold", 99.0);
        history.add_response(1, 2, "spring", "gold", 4.0);
        history.add_response(1, 3, "spring", "", 1.5);
        history.add_response(4, 2, "spring", "mail", 3.0);
        // Outside the plan: another offer than the customer's, a customer left out, a customer
        // the store does not have.
        history.add_response(2, 2, "spring", "mail", 7.0);
        history.add_contact(6, 1, "email", "spring", "gold");
        history.add_response(6, 2, "spring", "gold", 1.0);
        history.add_response(42, 2, "spring", "gold", 2.0);
        // Before the plan (at or before its moment): history, not its outcome.
        history.add_contact(5, 0, "email", "spring", "mail");
        history.add_response(5, -5, "spring", "mail", 50.0);
        history.add_response(1, 0, "spring", "gold", 20.0);
        let report = stored.plan().realised("spring", &history).unwrap();
        assert_eq!(
            report["offers"]["gold"],
            json!({"assigned": 3, "predicted_value": 30.0, "contacted": 2, "responders": 1,
                   "responses": 2, "response_value": 5.5, "response_rate": 0.5,
                   "realised_ratio": 5.5 / 30.0})
        );
        assert_eq!(
            report["offers"]["mail"],
            json!({"assigned": 2, "predicted_value": 4.0, "contacted": 1, "responders": 1,
                   "responses": 1, "response_value": 3.0, "response_rate": 1.0,
                   "realised_ratio": 0.75})
        );
        assert_eq!(report["total"]["assigned"], 5);
        assert_eq!(report["total"]["responses"], 3);
        assert_eq!(report["total"]["response_value"], 8.5);
        assert_eq!(report["total"]["realised_ratio"], 8.5 / 34.0);
        assert_eq!(
            report["outside_plan"],
            json!({"contacts": 1, "responses": 3, "response_value": 10.0})
        );
        assert_eq!(
            report["before_plan"],
            json!({"contacts": 1, "responses": 2, "response_value": 70.0})
        );
        // A campaign nobody recorded: the plan's numbers, nothing realised.
        let none = stored.plan().realised("winter", &history).unwrap();
        assert_eq!(none["total"]["contacted"], 0);
        assert_eq!(none["total"]["response_rate"], Value::Null);
        assert_eq!(none["total"]["realised_ratio"], 0.0);
    }
}
