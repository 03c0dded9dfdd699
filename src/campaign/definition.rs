//! The campaign definition (`campaign.json`, the body of `POST /v1/campaigns/optimise`): its
//! name (as contact and response events carry it), the resources and their limits, the offers (value, eligibility, resource uses, minimum and
//! maximum counts), at most how many offers a customer gets, the contact rules, the time limit
//! and the time the rules are evaluated at. Parsing checks everything that does not need the
//! customers (shapes, signs, names, expression syntax); every error names the field as a JSON
//! path (`offers[1].uses.calls`).

use serde_json::{Map, Value};

use super::expression::{Arithmetic, rename_field};
use super::filter::Filter;
use crate::error::{Error, Result, quote};
use crate::limits::{
    MAX_CAMPAIGN_BYTES, MAX_CAMPAIGN_RESOURCES, MAX_CONTACT_RULES, MAX_EVENT_TEXT_BYTES,
    MAX_TIME_LIMIT_SECS,
};
use crate::rfm::date::{MICROS_PER_DAY, parse_moment};
use crate::select::lagrange::MAX_OFFERS;

/// A `value` or `uses` entry: a number or an expression over columns (a column name is the
/// simplest expression).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// As written (a number is written back in JSON's form).
    pub text: String,
    /// Parsed.
    pub expression: Arithmetic,
}

/// One offer.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferDefinition {
    /// Unique within the campaign; the assignment's `offer` column.
    pub name: String,
    /// What giving it to a customer is worth.
    pub value: Entry,
    /// Who may get it (`--where` language; empty: everyone).
    pub eligible: Filter,
    /// The text of `eligible`, as written.
    pub eligible_text: String,
    /// Its use of each resource, in the order of [`CampaignDefinition::resources`] (0 for a
    /// resource it does not name).
    pub uses: Vec<Entry>,
    /// At least this many customers get it.
    pub min: u64,
    /// At most this many.
    pub max: Option<u64>,
}

/// A contact rule, evaluated against each customer's contact history as of
/// [`CampaignDefinition::as_of_micros`].
#[derive(Debug, Clone, PartialEq)]
pub enum ContactRule {
    /// `{"max_contacts": 2, "within_days": 30, "channel": "email"}`: a customer contacted
    /// `max_contacts` times or more in the last `within_days` days (on `channel`, or on any)
    /// gets no offer.
    MaxContacts {
        /// Contacts allowed in the window (0: none).
        max_contacts: u64,
        /// The window, in days (> 0).
        within_days: f64,
        /// Only contacts on this channel count.
        channel: Option<String>,
    },
    /// `{"offer": "B", "not_within_days": 14, "of_offer": "A"}`: a customer who got offer `A`
    /// (in any campaign) in the last 14 days does not get offer `B` now.
    Spacing {
        /// The offer of this campaign the rule restricts.
        offer: String,
        /// The window, in days (> 0).
        not_within_days: f64,
        /// The earlier offer, as recorded in the contact history.
        of_offer: String,
    },
}

/// A parsed, checked campaign definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDefinition {
    /// The campaign's name as contact and response events carry it (their `campaign`): what
    /// the campaign report matches the recorded responses by. `None` when not given.
    pub name: Option<String>,
    /// Resource names and limits (>= 0), in name order.
    pub resources: Vec<(String, f64)>,
    /// The offers, in the order written.
    pub offers: Vec<OfferDefinition>,
    /// At most this many offers per customer (1).
    pub max_offers_per_customer: u64,
    /// The contact rules.
    pub contact_rules: Vec<ContactRule>,
    /// The solver's time limit, in milliseconds.
    pub time_limit_ms: Option<u64>,
    /// The certified gap at which the solver stops (`None`: the solver's default, 1e-9; 0:
    /// search until the plan is proven optimal or the time limit passes).
    pub gap: Option<f64>,
    /// When the contact rules are evaluated, microseconds since 1970 UTC (`None`: now).
    pub as_of_micros: Option<i64>,
}

const FIELDS: [&str; 8] = [
    "name",
    "resources",
    "offers",
    "max_offers_per_customer",
    "contact_rules",
    "time_limit_ms",
    "gap",
    "as_of",
];

/// The largest `gap` a definition may ask for.
const MAX_GAP: f64 = 0.01;
const OFFER_FIELDS: [&str; 6] = ["name", "value", "eligible", "uses", "min", "max"];

/// Reads campaign definitions from one source (`file`: a path, or `request body`).
struct Reader<'f> {
    file: &'f str,
}

impl Reader<'_> {
    fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::Campaign {
            file: self.file.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn object<'v>(
        &self,
        value: &'v Value,
        field: &str,
        known: &[&str],
    ) -> Result<&'v Map<String, Value>> {
        let object = value
            .as_object()
            .ok_or_else(|| self.error(field, "expected an object"))?;
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            let inner = join(field, unknown);
            return Err(self.error(
                &inner,
                format!("unknown field (fields: {})", known.join(", ")),
            ));
        }
        Ok(object)
    }

    fn count(&self, value: &Value, field: &str) -> Result<u64> {
        match value.as_u64() {
            Some(n) => Ok(n),
            None if value.as_f64().is_some_and(|v| v < 0.0) => {
                Err(self.error(field, format!("{value} is negative")))
            }
            None => Err(self.error(
                field,
                format!("expected a whole number >= 0, found {value}"),
            )),
        }
    }

    fn days(&self, value: Option<&Value>, field: &str) -> Result<f64> {
        let value = value.ok_or_else(|| self.error(field, "missing: the rule's window in days"))?;
        match value.as_f64() {
            Some(days) if days.is_finite() && days > 0.0 && days <= 36_500.0 => Ok(days),
            Some(days) if days <= 0.0 => {
                Err(self.error(field, format!("the window is {days} days: it must be > 0")))
            }
            _ => Err(self.error(field, format!("expected days in (0, 36500], found {value}"))),
        }
    }

    fn text<'v>(&self, value: Option<&'v Value>, field: &str) -> Result<&'v str> {
        match value {
            Some(Value::String(text)) if !text.is_empty() => Ok(text),
            Some(Value::String(_)) => Err(self.error(field, "empty")),
            Some(other) => Err(self.error(field, format!("expected a string, found {other}"))),
            None => Err(self.error(field, "missing")),
        }
    }

    fn entry(&self, value: &Value, field: &str) -> Result<Entry> {
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.clone(),
            other => {
                return Err(self.error(
                    field,
                    format!("expected a number, a column or an expression, found {other}"),
                ));
            }
        };
        let expression = Arithmetic::parse(&text).map_err(|e| self.rename(e, field))?;
        Ok(Entry { text, expression })
    }

    /// A `where`-language error as this field's.
    fn rename(&self, error: Error, field: &str) -> Error {
        match rename_field(error, field) {
            Error::InvalidParameter { name, message } => Error::Campaign {
                file: self.file.to_string(),
                field: name,
                message,
            },
            other => other,
        }
    }

    fn resources(&self, value: Option<&Value>) -> Result<Vec<(String, f64)>> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let object = value
            .as_object()
            .ok_or_else(|| self.error("resources", "expected an object of limits"))?;
        if object.len() > MAX_CAMPAIGN_RESOURCES {
            return Err(self.error(
                "resources",
                format!(
                    "{} resources, at most {MAX_CAMPAIGN_RESOURCES}",
                    object.len()
                ),
            ));
        }
        object
            .iter()
            .map(|(name, limit)| {
                let field = join("resources", name);
                match limit.as_f64() {
                    Some(l) if l.is_finite() && l >= 0.0 => Ok((name.clone(), l)),
                    Some(l) if l < 0.0 => Err(self.error(
                        &field,
                        format!("the limit {} is negative", crate::error::number(l)),
                    )),
                    _ => Err(self.error(&field, format!("expected a limit >= 0, found {limit}"))),
                }
            })
            .collect()
    }

    fn offer(
        &self,
        value: &Value,
        at: usize,
        resources: &[(String, f64)],
    ) -> Result<OfferDefinition> {
        let field = format!("offers[{at}]");
        let object = self.object(value, &field, &OFFER_FIELDS)?;
        let name = self
            .text(object.get("name"), &format!("{field}.name"))?
            .to_string();
        let value_field = format!("{field}.value");
        let value = self.entry(
            object
                .get("value")
                .ok_or_else(|| self.error(&value_field, "missing: the offer has no value"))?,
            &value_field,
        )?;
        let eligible_field = format!("{field}.eligible");
        let eligible_text = match object.get("eligible") {
            None => String::new(),
            Some(_) => self
                .text(object.get("eligible"), &eligible_field)?
                .to_string(),
        };
        let eligible =
            Filter::parse(&eligible_text).map_err(|e| self.rename(e, &eligible_field))?;
        let mut uses: Vec<Entry> = resources
            .iter()
            .map(|_| Entry {
                text: "0".into(),
                expression: Arithmetic::Number(0.0),
            })
            .collect();
        if let Some(written) = object.get("uses") {
            let uses_field = format!("{field}.uses");
            let written = written
                .as_object()
                .ok_or_else(|| self.error(&uses_field, "expected an object: resource -> use"))?;
            for (resource, entry) in written {
                let entry_field = join(&uses_field, resource);
                let k = resources
                    .iter()
                    .position(|(name, _)| name == resource)
                    .ok_or_else(|| {
                        let known: Vec<&str> = resources.iter().map(|(n, _)| n.as_str()).collect();
                        self.error(
                            &entry_field,
                            format!("unknown resource (resources: {})", known.join(", ")),
                        )
                    })?;
                uses[k] = self.entry(entry, &entry_field)?;
                if let Some(n) = uses[k].expression.constant()
                    && n < 0.0
                {
                    return Err(self.error(
                        &entry_field,
                        format!("the use {} is negative", crate::error::number(n)),
                    ));
                }
            }
        }
        let min = match object.get("min") {
            Some(v) => self.count(v, &format!("{field}.min"))?,
            None => 0,
        };
        let max = match object.get("max") {
            Some(v) => Some(self.count(v, &format!("{field}.max"))?),
            None => None,
        };
        if let Some(max) = max
            && max < min
        {
            return Err(self.error(&format!("{field}.max"), format!("{max} is below min {min}")));
        }
        Ok(OfferDefinition {
            name,
            value,
            eligible,
            eligible_text,
            uses,
            min,
            max,
        })
    }

    fn rule(&self, value: &Value, at: usize, offers: &[OfferDefinition]) -> Result<ContactRule> {
        let field = format!("contact_rules[{at}]");
        let object = value
            .as_object()
            .ok_or_else(|| self.error(&field, "expected an object"))?;
        if object.contains_key("max_contacts") {
            self.object(value, &field, &["max_contacts", "within_days", "channel"])?;
            let max_contacts =
                self.count(&object["max_contacts"], &format!("{field}.max_contacts"))?;
            let within_days =
                self.days(object.get("within_days"), &format!("{field}.within_days"))?;
            let channel = match object.get("channel") {
                None => None,
                Some(_) => Some(
                    self.text(object.get("channel"), &format!("{field}.channel"))?
                        .to_string(),
                ),
            };
            return Ok(ContactRule::MaxContacts {
                max_contacts,
                within_days,
                channel,
            });
        }
        if object.contains_key("not_within_days") {
            self.object(value, &field, &["offer", "not_within_days", "of_offer"])?;
            let offer = self.text(object.get("offer"), &format!("{field}.offer"))?;
            if !offers.iter().any(|o| o.name == offer) {
                return Err(self.error(
                    &format!("{field}.offer"),
                    format!("{} is not an offer of this campaign", quote(offer)),
                ));
            }
            return Ok(ContactRule::Spacing {
                offer: offer.to_string(),
                not_within_days: self.days(
                    object.get("not_within_days"),
                    &format!("{field}.not_within_days"),
                )?,
                of_offer: self
                    .text(object.get("of_offer"), &format!("{field}.of_offer"))?
                    .to_string(),
            });
        }
        Err(self.error(
            &field,
            "expected {\"max_contacts\", \"within_days\"[, \"channel\"]} or {\"offer\", \"not_within_days\", \"of_offer\"}",
        ))
    }
}

/// `field.key`, or `field["key"]` when the key is not a plain name.
fn join(field: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{field}.{key}")
    } else {
        format!(
            "{field}[{}]",
            serde_json::to_string(&quote(key)).unwrap_or_default()
        )
    }
}

impl CampaignDefinition {
    /// Parses and checks a definition; `file` names the source in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<CampaignDefinition> {
        let reader = Reader { file };
        if bytes.len() > MAX_CAMPAIGN_BYTES {
            return Err(reader.error(
                "",
                format!("{} bytes, at most {MAX_CAMPAIGN_BYTES}", bytes.len()),
            ));
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| reader.error("", format!("not JSON: {e}")))?;
        let object = reader.object(&value, "", &FIELDS)?;
        let name = match object.get("name") {
            None => None,
            Some(name) => {
                let name = reader.text(Some(name), "name")?;
                if name.len() > MAX_EVENT_TEXT_BYTES {
                    return Err(reader.error(
                        "name",
                        format!(
                            "{} bytes, at most {MAX_EVENT_TEXT_BYTES} (an event's campaign)",
                            name.len()
                        ),
                    ));
                }
                Some(name.to_string())
            }
        };
        let resources = reader.resources(object.get("resources"))?;
        let offers_value = object
            .get("offers")
            .ok_or_else(|| reader.error("offers", "missing: a campaign has at least one offer"))?;
        let offers_array = offers_value
            .as_array()
            .ok_or_else(|| reader.error("offers", "expected an array of offers"))?;
        if offers_array.is_empty() || offers_array.len() > MAX_OFFERS {
            return Err(reader.error(
                "offers",
                format!("{} offers: between 1 and {MAX_OFFERS}", offers_array.len()),
            ));
        }
        let mut offers: Vec<OfferDefinition> = Vec::with_capacity(offers_array.len());
        for (at, offer) in offers_array.iter().enumerate() {
            let offer = reader.offer(offer, at, &resources)?;
            if offers.iter().any(|o| o.name == offer.name) {
                return Err(reader.error(
                    &format!("offers[{at}].name"),
                    format!("{} names two offers", quote(&offer.name)),
                ));
            }
            offers.push(offer);
        }
        let max_offers_per_customer = match object.get("max_offers_per_customer") {
            None => 1,
            Some(v) => match reader.count(v, "max_offers_per_customer")? {
                1 => 1,
                n => {
                    return Err(reader.error(
                        "max_offers_per_customer",
                        format!("{n}: this version plans at most 1 offer per customer"),
                    ));
                }
            },
        };
        let contact_rules = match object.get("contact_rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) if rules.len() <= MAX_CONTACT_RULES => rules
                .iter()
                .enumerate()
                .map(|(at, rule)| reader.rule(rule, at, &offers))
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(reader.error(
                    "contact_rules",
                    format!("expected an array of at most {MAX_CONTACT_RULES} rules"),
                ));
            }
        };
        let time_limit_ms = match object.get("time_limit_ms") {
            None => None,
            Some(v) => {
                let ms = reader.count(v, "time_limit_ms")?;
                if ms == 0 || ms as f64 > MAX_TIME_LIMIT_SECS * 1000.0 {
                    return Err(reader.error(
                        "time_limit_ms",
                        format!("{ms}: between 1 and {}", MAX_TIME_LIMIT_SECS * 1000.0),
                    ));
                }
                Some(ms)
            }
        };
        let gap = match object.get("gap") {
            None => None,
            Some(v) => match v.as_f64() {
                Some(gap) if (0.0..=MAX_GAP).contains(&gap) => Some(gap),
                _ => {
                    return Err(reader.error(
                        "gap",
                        format!("expected a relative gap in [0, {MAX_GAP}], found {v}"),
                    ));
                }
            },
        };
        let as_of_micros = match object.get("as_of") {
            None => None,
            Some(v) => {
                let text = reader.text(Some(v), "as_of")?;
                let moment = parse_moment(text.as_bytes())
                    .map_err(|why| reader.error("as_of", format!("{}: {why}", quote(text))))?;
                // A date alone means the end of that day: its contacts count.
                Some(if moment.date_only {
                    moment.micros + MICROS_PER_DAY - 1
                } else {
                    moment.micros
                })
            }
        };
        Ok(CampaignDefinition {
            name,
            resources,
            offers,
            max_offers_per_customer,
            contact_rules,
            time_limit_ms,
            gap,
            as_of_micros,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<CampaignDefinition> {
        CampaignDefinition::parse(json.as_bytes(), "campaign.json")
    }

    fn error(json: &str) -> String {
        parse(json).unwrap_err().to_string()
    }

    const EXAMPLE: &str = r#"{"name": "spring", "resources": {"budget": 100000, "calls": 2000, "emails": 500000},
     "offers": [{"name": "call_retention", "value": "crv_uplift_call", "eligible": "tier in (A, B)",
                 "uses": {"budget": "cost_call", "calls": 1}, "min": 0, "max": 1500},
                {"name": "email_coupon", "value": "0.05 * crv", "uses": {"budget": 0.3, "emails": 1}}],
     "max_offers_per_customer": 1,
     "contact_rules": [{"max_contacts": 2, "within_days": 30},
                       {"offer": "email_coupon", "not_within_days": 14, "of_offer": "call_retention"}],
     "time_limit_ms": 60000, "gap": 0, "as_of": "2026-12-01"}"#;

    #[test]
    fn the_design_example_parses() {
        let campaign = parse(EXAMPLE).unwrap();
        assert_eq!(campaign.name.as_deref(), Some("spring"));
        assert_eq!(
            campaign.resources,
            [
                ("budget".into(), 100000.0),
                ("calls".into(), 2000.0),
                ("emails".into(), 500000.0)
            ]
        );
        assert_eq!(campaign.offers.len(), 2);
        let call = &campaign.offers[0];
        assert_eq!(call.uses[0].text, "cost_call");
        assert_eq!(call.uses[2].expression, Arithmetic::Number(0.0));
        assert_eq!((call.min, call.max), (0, Some(1500)));
        assert_eq!(
            campaign.offers[1].uses[0].expression,
            Arithmetic::Number(0.3)
        );
        assert_eq!(campaign.contact_rules.len(), 2);
        assert_eq!(campaign.time_limit_ms, Some(60000));
        assert_eq!(campaign.gap, Some(0.0));
        assert!(campaign.as_of_micros.is_some());
    }

    #[test]
    fn bad_definitions_name_the_field() {
        let cases = [
            (
                r#"{"resources": {"budget": -5}, "offers": [{"name": "a", "value": 1}]}"#,
                "field `resources.budget`: the limit -5 is negative",
            ),
            (
                r#"{"offers": [{"name": "a"}]}"#,
                "field `offers[0].value`: missing: the offer has no value",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "contact_rules": [{"max_contacts": 2, "within_days": 0}]}"#,
                "field `contact_rules[0].within_days`: the window is 0 days",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "contact_rules": [{"offer": "a", "not_within_days": 0, "of_offer": "b"}]}"#,
                "field `contact_rules[0].not_within_days`: the window is 0 days",
            ),
            (
                r#"{"offers": [{"name": "a", "value": "crv *"}]}"#,
                "field `offers[0].value`: at position 6",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1, "uses": {"calls": 1}}]}"#,
                "field `offers[0].uses.calls`: unknown resource",
            ),
            (
                r#"{"resources": {"calls": 5}, "offers": [{"name": "a", "value": 1, "uses": {"calls": -1}}]}"#,
                "field `offers[0].uses.calls`: the use -1 is negative",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1, "min": -1}]}"#,
                "field `offers[0].min`: -1 is negative",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1, "min": 3, "max": 2}]}"#,
                "field `offers[0].max`: 2 is below min 3",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]}"#,
                "field `offers[1].name`",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1, "colour": 2}]}"#,
                "field `offers[0].colour`: unknown field",
            ),
            (r#"{"offers": []}"#, "field `offers`: 0 offers"),
            (
                r#"{"offers": [{"name": "a", "value": 1, "eligible": "tier in (A"}]}"#,
                "field `offers[0].eligible`: at position",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "as_of": "yesterday"}"#,
                "field `as_of`",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "max_offers_per_customer": 2}"#,
                "field `max_offers_per_customer`",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "time_limit_ms": 0}"#,
                "field `time_limit_ms`",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "gap": -0.5}"#,
                "field `gap`: expected a relative gap in [0, 0.01], found -0.5",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "gap": "tight"}"#,
                "field `gap`: expected a relative gap",
            ),
            (
                r#"{"offers": [{"name": "a", "value": 1}], "contact_rules": [{"offer": "z", "not_within_days": 3, "of_offer": "b"}]}"#,
                "field `contact_rules[0].offer`: `z` is not an offer",
            ),
            (
                r#"{"name": "", "offers": [{"name": "a", "value": 1}]}"#,
                "field `name`: empty",
            ),
            (
                r#"{"name": 7, "offers": [{"name": "a", "value": 1}]}"#,
                "field `name`: expected a string",
            ),
            ("[1]", "expected an object"),
            ("{", "not JSON"),
        ];
        for (json, expected) in cases {
            let message = error(json);
            assert!(message.starts_with("campaign.json: "), "{message}");
            assert!(
                message.contains(expected),
                "{json}\n{message}\nexpected {expected}"
            );
        }
    }
}
