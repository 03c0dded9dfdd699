//! A campaign definition bound to a table and solved: every `value` and `uses` entry evaluated
//! over the customers, each offer's eligibility (its `--where` filter, then the contact rules
//! as of the campaign's `as_of`), the multi-resource solver ([`crate::select::lagrange`]), and
//! what the answer is reported as: the JSON summary, the assignment (CSV rows, or one Arrow
//! record batch), and one customer's explanation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::Array;
use arrow_array::types::UInt16Type;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, RecordBatch, StringArray, UInt16Array};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Map, Value, json};

use super::contacts::{ContactHistory, RuleVerdict, verdict};
use super::definition::{CampaignDefinition, ContactRule};
use super::expression::Values;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::score_file::id_array;
use crate::select::lagrange::{
    self, Conflict, Offer, Options, Outcome, PROOF_CORE_NODES, Plan, Problem,
};
use crate::table::Table;

/// A campaign's inputs over a table's customers.
pub struct BoundCampaign<'t> {
    definition: CampaignDefinition,
    values: Vec<Values<'t>>,
    /// `uses[o][k]`.
    uses: Vec<Vec<Values<'t>>>,
    /// `eligible[o][i]`: the offer's filter and the contact rules.
    eligible: Vec<Vec<bool>>,
    /// Per customer: the contact rule excluding them from every offer (rule index + 1; 0 none).
    excluded_by: Vec<u8>,
    table: &'t Table,
    as_of_micros: i64,
}

/// One customer's place in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The offer, an index into the definition's offers.
    pub offer: usize,
    /// Its value for the customer.
    pub value: f64,
    /// Its use of each resource, in the definition's order.
    pub uses: Vec<f64>,
    /// Why the customer holds it: their value against the resources' shadow prices.
    pub reason: String,
}

/// A solved campaign.
pub struct CampaignPlan<'t> {
    /// The campaign's inputs.
    pub bound: BoundCampaign<'t>,
    /// The solver's answer.
    pub outcome: Outcome,
    /// Time to evaluate values, uses and eligibility.
    pub prepare_time: Duration,
    /// Time to solve.
    pub solve_time: Duration,
}

impl CampaignDefinition {
    /// Evaluates the definition over `table` with the contact `history` (rules as of the
    /// definition's `as_of`, else `now_micros`). Errors name the field.
    pub fn bind<'t>(
        self,
        table: &'t Table,
        history: &ContactHistory,
        now_micros: i64,
        cancel: &Cancel,
    ) -> Result<BoundCampaign<'t>> {
        let mut values = Vec::with_capacity(self.offers.len());
        let mut uses = Vec::with_capacity(self.offers.len());
        let mut eligible = Vec::with_capacity(self.offers.len());
        for (o, offer) in self.offers.iter().enumerate() {
            let field = format!("offers[{o}]");
            values.push(
                offer
                    .value
                    .expression
                    .values(table, &format!("{field}.value"))?,
            );
            let mut offer_uses = Vec::with_capacity(self.resources.len());
            for (k, (resource, _)) in self.resources.iter().enumerate() {
                let entry_field = format!("{field}.uses.{resource}");
                let values = offer.uses[k].expression.values(table, &entry_field)?;
                if let Some(i) = (0..table.rows()).find(|&i| values.get(i) < 0.0) {
                    return Err(crate::error::Error::invalid(
                        entry_field,
                        format!(
                            "the use is {} for customer {}: uses must be >= 0",
                            values.get(i),
                            table.store().customer_id(i)
                        ),
                    ));
                }
                offer_uses.push(values);
            }
            uses.push(offer_uses);
            let mask = offer
                .eligible
                .eligible_in(table, cancel)
                .map_err(|e| super::expression::rename_field(e, &format!("{field}.eligible")))?;
            eligible.push(mask);
        }
        let as_of_micros = self.as_of_micros.unwrap_or(now_micros);
        let mut excluded_by = vec![0u8; table.rows()];
        if !self.contact_rules.is_empty() {
            let names: Vec<&str> = self.offers.iter().map(|o| o.name.as_str()).collect();
            for id in history.customers() {
                let Some(row) = table.store().row_of(crate::model::CustomerId(id)) else {
                    continue;
                };
                let RuleVerdict {
                    excluded_by: all,
                    offer_excluded_by,
                } = verdict(&self.contact_rules, &names, history, id, as_of_micros);
                if let Some(rule) = all {
                    excluded_by[row] = rule as u8 + 1;
                    eligible.iter_mut().for_each(|mask| mask[row] = false);
                }
                for (o, rule) in offer_excluded_by.iter().enumerate() {
                    if rule.is_some() {
                        eligible[o][row] = false;
                    }
                }
            }
        }
        Ok(BoundCampaign {
            definition: self,
            values,
            uses,
            eligible,
            excluded_by,
            table,
            as_of_micros,
        })
    }
}

impl<'t> BoundCampaign<'t> {
    /// The moment the plan is made as of (the definition's `as_of`, else when it was bound),
    /// microseconds since 1970 UTC.
    pub fn as_of_micros(&self) -> i64 {
        self.as_of_micros
    }

    /// The definition.
    pub fn definition(&self) -> &CampaignDefinition {
        &self.definition
    }

    /// The customers the campaign is bound to.
    pub fn table(&self) -> &'t Table {
        self.table
    }

    /// The solver's view of the campaign.
    pub(crate) fn problem(&self) -> Problem<'_> {
        Problem {
            ids: self.table.ids(),
            limits: self.definition.resources.iter().map(|(_, l)| *l).collect(),
            offers: self
                .definition
                .offers
                .iter()
                .enumerate()
                .map(|(o, offer)| Offer {
                    value: self.values[o].coefficients(),
                    uses: self.uses[o].iter().map(Values::coefficients).collect(),
                    eligible: Some(&self.eligible[o]),
                    min: offer.min,
                    max: offer.max,
                })
                .collect(),
        }
    }

    /// The solver's options: the definition's time limit and gap, and `cancel`.
    pub(crate) fn options(&self, cancel: Cancel) -> Options {
        let defaults = Options::default();
        let target_gap = self.definition.gap.unwrap_or(defaults.target_gap);
        Options {
            time_limit: self.definition.time_limit_ms.map(Duration::from_millis),
            target_gap,
            // Asked for a proven optimum: the search may take longer to finish.
            core_nodes: if target_gap == 0.0 {
                PROOF_CORE_NODES
            } else {
                defaults.core_nodes
            },
            cancel,
            ..defaults
        }
    }

    /// The most of resource `k` any plan can use (beyond this limit the resource never binds):
    /// each customer's largest use of it among the offers open to them, summed, and at most,
    /// over the offers, the sum of each offer's largest uses by as many customers as its `max`.
    pub(crate) fn most_use(&self, k: usize) -> f64 {
        let offers = &self.definition.offers;
        let by_customer: f64 = (0..self.table.rows())
            .map(|i| {
                (0..offers.len())
                    .filter(|&o| self.eligible[o][i])
                    .map(|o| self.uses[o][k].get(i))
                    .fold(0.0, f64::max)
            })
            .sum();
        let by_offer: f64 = offers
            .iter()
            .enumerate()
            .map(|(o, offer)| {
                let mut uses: Vec<f64> = (0..self.table.rows())
                    .filter(|&i| self.eligible[o][i])
                    .map(|i| self.uses[o][k].get(i))
                    .collect();
                let most = offer.max.map_or(uses.len(), |max| {
                    usize::try_from(max).unwrap_or(usize::MAX).min(uses.len())
                });
                if most < uses.len() {
                    uses.select_nth_unstable_by(most, |a, b| b.total_cmp(a));
                }
                uses[..most].iter().sum::<f64>()
            })
            .sum();
        by_customer.min(by_offer)
    }

    /// Whether every use of resource `k` by a customer open to an offer is a whole number
    /// (calls, emails): then a limit `b` allows exactly what `floor(b)` allows.
    pub(crate) fn uses_are_whole(&self, k: usize) -> bool {
        (0..self.definition.offers.len()).all(|o| match &self.uses[o][k] {
            Values::Constant(value) => value.fract() == 0.0,
            values => {
                (0..self.table.rows()).all(|i| !self.eligible[o][i] || values.get(i).fract() == 0.0)
            }
        })
    }

    /// Solves the campaign.
    pub fn solve(self, prepare_time: Duration, cancel: Cancel) -> CampaignPlan<'t> {
        let started = Instant::now();
        let outcome = lagrange::solve(&self.problem(), &self.options(cancel));
        CampaignPlan {
            bound: self,
            outcome,
            prepare_time,
            solve_time: started.elapsed(),
        }
    }
}

impl CampaignPlan<'_> {
    fn names(&self) -> (Vec<&str>, Vec<&str>) {
        let d = &self.bound.definition;
        (
            d.resources.iter().map(|(n, _)| n.as_str()).collect(),
            d.offers.iter().map(|o| o.name.as_str()).collect(),
        )
    }

    /// The JSON summary: `name` (the definition's, or null), `objective`, `upper_bound`, `gap`, `optimal`, `assigned`, `resources`
    /// (name -> `used`, `limit`, `shadow_price`), `offers` (name -> `count`, `value`,
    /// `price`), `time_ms`; or, when infeasible, `infeasible` with the conflict.
    pub fn summary(&self) -> Value {
        let d = &self.bound.definition;
        let (resources, offers) = self.names();
        let time_ms = (self.prepare_time + self.solve_time).as_secs_f64() * 1e3;
        match &self.outcome {
            Outcome::Infeasible(conflict) => json!({
                "name": d.name,
                "infeasible": conflict_json(conflict, &resources, &offers),
                "time_ms": time_ms,
            }),
            Outcome::Plan(plan) => {
                let resources: Map<String, Value> = d
                    .resources
                    .iter()
                    .enumerate()
                    .map(|(k, (name, limit))| {
                        (
                            name.clone(),
                            json!({
                                "used": plan.used[k],
                                "limit": limit,
                                "shadow_price": plan.resource_prices[k],
                            }),
                        )
                    })
                    .collect();
                let offers: Map<String, Value> = offers
                    .iter()
                    .enumerate()
                    .map(|(o, name)| {
                        (
                            name.to_string(),
                            json!({
                                "count": plan.counts[o],
                                "value": plan.offer_values[o],
                                "price": plan.offer_prices[o],
                            }),
                        )
                    })
                    .collect();
                json!({
                    "name": d.name,
                    "objective": plan.objective,
                    "upper_bound": plan.upper_bound,
                    "gap": plan.gap,
                    "optimal": plan.optimal,
                    "assigned": plan.counts.iter().sum::<u64>(),
                    "customers": self.bound.table.rows(),
                    "resources": resources,
                    "offers": offers,
                    "passes": plan.passes,
                    "stopped_by_limit": plan.stopped,
                    "time_ms": time_ms,
                })
            }
        }
    }

    /// The plan, if feasible.
    pub fn plan(&self) -> Option<&Plan> {
        match &self.outcome {
            Outcome::Plan(plan) => Some(plan),
            Outcome::Infeasible(_) => None,
        }
    }

    /// The header of the assignment CSV: `customer_id,offer,value`, one column per resource,
    /// `reason`.
    pub fn assignment_header(&self) -> Vec<String> {
        let mut header: Vec<String> = ["customer_id", "offer", "value"].map(String::from).to_vec();
        header.extend(
            self.bound
                .definition
                .resources
                .iter()
                .map(|(n, _)| n.clone()),
        );
        header.push("reason".into());
        header
    }

    /// Row `i`'s reduced value for offer `o` at the plan's prices, and the price of its uses.
    fn reduced(&self, plan: &Plan, i: usize, o: usize) -> (f64, f64) {
        let b = &self.bound;
        let priced: f64 = b.uses[o]
            .iter()
            .zip(&plan.resource_prices)
            .map(|(u, p)| u.get(i) * p)
            .sum();
        (b.values[o].get(i) - priced - plan.offer_prices[o], priced)
    }

    /// Why customer row `i` holds offer `o`: their value against the resources' prices.
    fn chosen_reason(&self, plan: &Plan, i: usize, o: usize) -> String {
        let (reduced, priced) = self.reduced(plan, i, o);
        if reduced > 0.0 {
            format!(
                "best offer: value {:.4} - resources at shadow prices {:.4} = {:.4} > 0",
                self.bound.values[o].get(i),
                priced + plan.offer_prices[o],
                reduced
            )
        } else {
            format!(
                "added to use what the limits leave (or meet a minimum): value {:.4}, resources at shadow prices {:.4}",
                self.bound.values[o].get(i),
                priced + plan.offer_prices[o]
            )
        }
    }

    /// Why customer row `i` holds no offer.
    fn left_out_reason(&self, plan: &Plan, i: usize) -> String {
        let b = &self.bound;
        let d = &b.definition;
        if let Some(rule) = b.excluded_by[i].checked_sub(1) {
            return format!(
                "excluded by contact rule {}: {}",
                rule,
                rule_text(&d.contact_rules[usize::from(rule)])
            );
        }
        let best = (0..d.offers.len())
            .filter(|&o| b.eligible[o][i])
            .map(|o| (o, self.reduced(plan, i, o).0))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            None => "eligible for no offer (filters and contact rules)".to_string(),
            Some((o, r)) if r <= 0.0 => format!(
                "no offer is worth its resources at their shadow prices (best: {}, reduced value {r:.4})",
                d.offers[o].name
            ),
            Some((o, r)) => {
                let binding: Vec<&str> = d
                    .resources
                    .iter()
                    .enumerate()
                    .filter(|(k, (_, limit))| {
                        b.uses[o][*k].get(i) > 0.0 && plan.used[*k] + b.uses[o][*k].get(i) > *limit
                    })
                    .map(|(_, (n, _))| n.as_str())
                    .collect();
                format!(
                    "{} has reduced value {r:.4} but does not fit: binding limit {}",
                    d.offers[o].name,
                    if binding.is_empty() {
                        "the offer's maximum".to_string()
                    } else {
                        binding.join(", ")
                    }
                )
            }
        }
    }

    /// Customer row `i`'s offer in `plan`, its value, its uses of each resource and why (None
    /// when they hold no offer).
    pub fn assignment(&self, plan: &Plan, i: usize) -> Option<Assignment> {
        let o = plan.offer_of(i)?;
        let b = &self.bound;
        Some(Assignment {
            offer: o,
            value: b.values[o].get(i),
            uses: b.uses[o].iter().map(|u| u.get(i)).collect(),
            reason: self.chosen_reason(plan, i, o),
        })
    }

    /// The offers' names, in the definition's order ([`Assignment::offer`] indexes them).
    pub fn offer_names(&self) -> Vec<&str> {
        self.names().1
    }

    /// The assignment as one Arrow record batch, the customers with an offer in store order:
    /// `customer_id` (`UInt64`, or `Utf8` for text ids), `offer` (dictionary-encoded `Utf8`),
    /// `value` and one `Float64` column per resource, `reason` (`Utf8`): the CSV's columns.
    pub fn assignment_batch(&self, plan: &Plan) -> RecordBatch {
        let table = self.bound.table;
        let assigned: Vec<(usize, Assignment)> = (0..table.rows())
            .filter_map(|i| self.assignment(plan, i).map(|a| (i, a)))
            .collect();
        let ids = id_array(table, assigned.iter().map(|(i, _)| *i));
        let offer_names = StringArray::from_iter_values(self.offer_names());
        let offer_codes = UInt16Array::from_iter_values(
            assigned
                .iter()
                .map(|(_, a)| u16::try_from(a.offer).expect("at most MAX_OFFERS offers")),
        );
        let offers = DictionaryArray::<UInt16Type>::try_new(offer_codes, Arc::new(offer_names))
            .expect("every code names an offer");
        let header = self.assignment_header();
        let mut fields = vec![
            Field::new(&header[0], ids.data_type().clone(), false),
            Field::new(&header[1], offers.data_type().clone(), false),
            Field::new(&header[2], DataType::Float64, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            ids,
            Arc::new(offers),
            Arc::new(Float64Array::from_iter_values(
                assigned.iter().map(|(_, a)| a.value),
            )),
        ];
        for (k, name) in header[3..header.len() - 1].iter().enumerate() {
            fields.push(Field::new(name, DataType::Float64, false));
            columns.push(Arc::new(Float64Array::from_iter_values(
                assigned.iter().map(|(_, a)| a.uses[k]),
            )));
        }
        fields.push(Field::new("reason", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            assigned.iter().map(|(_, a)| a.reason.as_str()),
        )));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("the columns match the fields, each one row per assigned customer")
    }

    /// The assignment row of customer row `i` (None when they hold no offer).
    pub fn assignment_row(&self, plan: &Plan, i: usize) -> Option<Vec<String>> {
        let assignment = self.assignment(plan, i)?;
        let mut row = vec![
            self.bound.table.store().customer_id(i).to_string(),
            self.bound.definition.offers[assignment.offer].name.clone(),
            assignment.value.to_string(),
        ];
        row.extend(assignment.uses.iter().map(f64::to_string));
        row.push(assignment.reason);
        Some(row)
    }

    /// One customer's explanation: their offer (or none) and why, every offer's value, uses,
    /// price of the uses and reduced value, and the rules that exclude them. `id` is the id as
    /// the customer file wrote it (a whole number, or text in a store of text ids); `None` for
    /// an unknown id.
    pub fn explain(&self, id: &str) -> Option<Value> {
        let b = &self.bound;
        let d = &b.definition;
        let i = b.table.store().row_of_external(id.trim())?;
        let id = b.table.store().customer_id(i);
        let names: Vec<&str> = d.offers.iter().map(|o| o.name.as_str()).collect();
        let Outcome::Plan(plan) = &self.outcome else {
            return Some(
                json!({"customer_id": id, "offer": null, "reason": "the campaign is infeasible"}),
            );
        };
        let offers: Vec<Value> = d
            .offers
            .iter()
            .enumerate()
            .map(|(o, offer)| {
                let uses: Map<String, Value> = d
                    .resources
                    .iter()
                    .enumerate()
                    .map(|(k, (name, _))| (name.clone(), json!(b.uses[o][k].get(i))))
                    .collect();
                let (reduced, priced) = self.reduced(plan, i, o);
                json!({
                    "offer": offer.name,
                    "eligible": b.eligible[o][i],
                    "value": b.values[o].get(i),
                    "uses": uses,
                    "price_of_uses": priced + plan.offer_prices[o],
                    "reduced_value": reduced,
                })
            })
            .collect();
        let (offer, reason) = match plan.offer_of(i) {
            Some(o) => (json!(names[o]), self.chosen_reason(plan, i, o)),
            None => (Value::Null, self.left_out_reason(plan, i)),
        };
        let binding: Vec<&str> = d
            .resources
            .iter()
            .enumerate()
            .filter(|(k, _)| plan.resource_prices[*k] > 0.0)
            .map(|(_, (n, _))| n.as_str())
            .collect();
        let rule_exclusions: Vec<Value> = b.excluded_by[i]
            .checked_sub(1)
            .map(|r| json!({"rule": r, "text": rule_text(&d.contact_rules[usize::from(r)])}))
            .into_iter()
            .collect();
        Some(json!({
            "customer_id": id,
            "offer": offer,
            "value": plan.offer_of(i).map(|o| b.values[o].get(i)),
            "reason": reason,
            "offers": offers,
            "binding_limits": binding,
            "contact_rules": rule_exclusions,
            "as_of_micros": b.as_of_micros,
        }))
    }
}

fn rule_text(rule: &ContactRule) -> String {
    match rule {
        ContactRule::MaxContacts {
            max_contacts,
            within_days,
            channel,
        } => format!(
            "at most {max_contacts} contacts{} within {within_days} days",
            channel
                .as_ref()
                .map(|c| format!(" by {c}"))
                .unwrap_or_default()
        ),
        ContactRule::Spacing {
            offer,
            not_within_days,
            of_offer,
        } => {
            format!("not {offer} within {not_within_days} days of {of_offer}")
        }
    }
}

/// A conflict as JSON: the resources and offers by name, the reason, whether it is proven.
pub fn conflict_json(conflict: &Conflict, resources: &[&str], offers: &[&str]) -> Value {
    json!({
        "resources": conflict.resources.iter().map(|&k| resources[k]).collect::<Vec<_>>(),
        "offers": conflict.offers.iter().map(|&o| offers[o]).collect::<Vec<_>>(),
        "reason": conflict.reason,
        "proven": conflict.proven,
    })
}
