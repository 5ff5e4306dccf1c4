//! Instantly API v2: `POST {base}/leads/add` with `Authorization: Bearer <key>`, adding up
//! to 1000 leads to a campaign per call (docs/provider-research.md §2.1). Every lead needs an
//! email in campaign mode; leads without one are not sent.
//!
//! Field mapping (absent values are left out):
//! | Instantly | Leadpush |
//! |---|---|
//! | `email` | `email` (required) |
//! | `first_name`, `last_name` | `first_name`, `last_name`, else `name` split at its first space |
//! | `company_name`, `website`, `phone` | `company`, `website`, `phone` |
//! | `personalization` | the custom field `personalization` |
//! | `custom_variables` | other custom fields (nested values as JSON text), then `leadpush_id` (our id), `position`, `linkedin`, `twitter`, `score`, `signal_type` |
//!
//! `custom_variables` is a flat object of strings, numbers and booleans, as Instantly
//! requires. `notes` stays in Leadpush. Every `skip_if_*` flag is sent as `false` (the
//! caller chose this campaign) and `verify_leads_on_import` as `false`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::put;
use crate::delivery::OutboundRequest;
use crate::domain::integration::ProviderKey;
use crate::domain::lead::Lead;
use crate::domain::push::LeadResult;

pub const MAX_LEADS_PER_CALL: usize = 1000;
pub const PATH: &str = "/leads/add";
pub const NO_EMAIL: &str = "no email (Instantly campaigns need one)";

/// A custom field value as an Instantly variable: scalars as they are, nested values as
/// JSON text, `null` left out.
fn variable(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(Value::String(value.to_string())),
        scalar => Some(scalar.clone()),
    }
}

/// The lead as Instantly wants it, or why it cannot be sent.
pub fn lead(lead: &Lead) -> Result<Value, String> {
    let email = lead.email.clone().ok_or_else(|| NO_EMAIL.to_owned())?;
    let (first_name, last_name) = lead.name_parts();
    let mut out = Map::new();
    out.insert("email".into(), json!(email));
    put(&mut out, "first_name", first_name);
    put(&mut out, "last_name", last_name);
    put(&mut out, "company_name", lead.company.clone());
    put(&mut out, "website", lead.website.clone());
    put(&mut out, "phone", lead.phone.clone());
    put(&mut out, "personalization", lead.custom_fields.get("personalization").and_then(|v| v.as_str()));
    let mut variables = Map::new();
    for (name, value) in &lead.custom_fields {
        if name != "personalization"
            && let Some(value) = variable(value)
        {
            variables.insert(name.clone(), value);
        }
    }
    // Ours last, so a custom field cannot shadow the id feedback is matched on.
    variables.insert("leadpush_id".into(), json!(lead.id));
    put(&mut variables, "position", lead.position.clone());
    put(&mut variables, "linkedin", lead.linkedin.clone());
    put(&mut variables, "twitter", lead.twitter.clone());
    put(&mut variables, "score", lead.score);
    put(&mut variables, "signal_type", lead.signal_type.clone());
    out.insert("custom_variables".into(), Value::Object(variables));
    Ok(Value::Object(out))
}

pub fn request(base_url: &str, api_key: &ProviderKey, campaign_id: &str, leads: &[Value]) -> OutboundRequest {
    let body = json!({
        "campaign_id": campaign_id,
        "leads": leads,
        "skip_if_in_workspace": false,
        "skip_if_in_campaign": false,
        "skip_if_in_list": false,
        "verify_leads_on_import": false,
    });
    OutboundRequest::post_json(format!("{base_url}{PATH}"), body.to_string().into_bytes())
        .header("authorization", format!("Bearer {}", api_key.expose()))
        .header("accept", "application/json")
}

#[derive(Debug, Deserialize)]
struct Created {
    id: Option<String>,
    email: Option<String>,
    index: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    created_leads: Option<Vec<Created>>,
    leads_uploaded: Option<i64>,
    duplicated_leads: Option<i64>,
    in_blocklist: Option<i64>,
    skipped_count: Option<i64>,
    invalid_email_count: Option<i64>,
    incomplete_count: Option<i64>,
    duplicate_email_count: Option<i64>,
}

impl Answer {
    /// "not created by Instantly (in_blocklist: 1)": the counts that explain missing rows.
    fn reason(&self) -> String {
        let counts = [
            ("in_blocklist", self.in_blocklist),
            ("invalid_email_count", self.invalid_email_count),
            ("duplicate_email_count", self.duplicate_email_count),
            ("skipped_count", self.skipped_count),
            ("incomplete_count", self.incomplete_count),
        ];
        let named: Vec<String> =
            counts.iter().filter_map(|(name, n)| n.filter(|n| *n > 0).map(|n| format!("{name}: {n}"))).collect();
        if named.is_empty() {
            "not created by Instantly (no reason given)".to_owned()
        } else {
            format!("not created by Instantly ({})", named.join(", "))
        }
    }
}

/// Per-lead results of a 2xx answer to `sent` (the leads as sent, for their emails).
/// `created_leads[].index` (else its email) names the leads created; the others were not,
/// unless `duplicated_leads` says they are already in the campaign, which is what a push
/// wants. Without `created_leads`, the counts decide for the whole call.
pub fn accepted(sent: &[Value], body: &str) -> Vec<LeadResult> {
    let pushed = |id: Option<String>, note: Option<String>| LeadResult::Pushed { provider_lead_id: id, note };
    let Ok(answer) = serde_json::from_str::<Answer>(body) else {
        return vec![pushed(None, Some("Instantly's answer could not be read; assumed added".into())); sent.len()];
    };
    let duplicated = answer.duplicated_leads.unwrap_or(0).max(0) as usize;
    let Some(created) = &answer.created_leads else {
        let uploaded = answer.leads_uploaded.unwrap_or(sent.len() as i64).max(0) as usize;
        if uploaded + duplicated >= sent.len() {
            return vec![pushed(None, None); sent.len()];
        }
        if uploaded == 0 && duplicated == 0 {
            return vec![LeadResult::Rejected(answer.reason()); sent.len()];
        }
        let note = format!("Instantly created {uploaded} of {} leads in this batch without naming them", sent.len());
        return vec![pushed(None, Some(note)); sent.len()];
    };
    let position_of_email: HashMap<String, usize> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, lead)| Some((lead["email"].as_str()?.to_ascii_lowercase(), i)))
        .collect();
    let mut results: Vec<Option<LeadResult>> = vec![None; sent.len()];
    for item in created {
        let position = item
            .index
            .filter(|i| *i < sent.len())
            .or_else(|| item.email.as_ref().and_then(|e| position_of_email.get(&e.to_ascii_lowercase()).copied()));
        if let Some(i) = position {
            results[i] = Some(pushed(item.id.clone(), None));
        }
    }
    let not_created = results.iter().filter(|r| r.is_none()).count();
    let fallback = if not_created > 0 && not_created <= duplicated {
        pushed(None, Some("already in the Instantly campaign".into()))
    } else {
        LeadResult::Rejected(answer.reason())
    };
    results.into_iter().map(|r| r.unwrap_or_else(|| fallback.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::time::Timestamp;

    fn stored(fields: LeadFields) -> Lead {
        Lead::new("req_1_0001".into(), "cmp_1".into(), None, fields, Timestamp::parse("2026-05-02T12:00:00Z").unwrap())
    }

    #[test]
    fn leads_map_to_instantly_fields_with_flat_custom_variables() {
        let mut custom = Map::new();
        custom.insert("personalization".into(), json!("Loved your post"));
        custom.insert("tier".into(), json!(2));
        custom.insert("vip".into(), json!(true));
        custom.insert("address".into(), json!({"city": "Berlin"}));
        custom.insert("leadpush_id".into(), json!("spoofed"));
        let lead = stored(LeadFields {
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            email: Some("jane@acme.com".into()),
            company: Some("Acme".into()),
            position: Some("CTO".into()),
            score: Some(9),
            notes: Some("internal".into()),
            custom_fields: custom,
            ..LeadFields::default()
        });
        let mapped = super::lead(&lead).unwrap();
        assert_eq!(
            mapped,
            json!({
                "email": "jane@acme.com", "first_name": "Jane", "last_name": "Doe", "company_name": "Acme",
                "personalization": "Loved your post",
                "custom_variables": {
                    "tier": 2, "vip": true, "address": "{\"city\":\"Berlin\"}", "leadpush_id": "req_1_0001",
                    "position": "CTO", "score": 9
                }
            })
        );
        assert!(mapped["custom_variables"].as_object().unwrap().values().all(|v| !v.is_object() && !v.is_array()));
        let no_email = stored(LeadFields { name: Some("Bob".into()), ..LeadFields::default() });
        assert_eq!(super::lead(&no_email), Err(NO_EMAIL.to_owned()));
    }

    #[test]
    fn requests_add_to_the_campaign_with_a_bearer_key_and_explicit_flags() {
        let key: ProviderKey = serde_json::from_value(json!("in-key")).unwrap();
        let request = request(
            "http://127.0.0.1:9/api/v2",
            &key,
            "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a",
            &[json!({"email": "a@b.co"})],
        );
        assert_eq!(request.url, "http://127.0.0.1:9/api/v2/leads/add");
        assert!(request.headers.contains(&("authorization".into(), "Bearer in-key".into())));
        let body: Value = serde_json::from_slice(request.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["campaign_id"], "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a");
        assert_eq!(
            (body["skip_if_in_workspace"].as_bool(), body["verify_leads_on_import"].as_bool()),
            (Some(false), Some(false))
        );
        assert!(body.get("list_id").is_none(), "campaign or list, never both");
    }

    #[test]
    fn created_leads_name_who_was_added() {
        let sent = vec![json!({"email": "a@x.co"}), json!({"email": "b@x.co"}), json!({"email": "C@x.co"})];
        let body = r#"{"status":"success","total_sent":3,"leads_uploaded":2,"in_blocklist":1,
            "created_leads":[{"id":"l-1","email":"a@x.co","index":0},{"id":"l-3","email":"c@x.co"}]}"#;
        let results = accepted(&sent, body);
        assert_eq!(results[0], LeadResult::Pushed { provider_lead_id: Some("l-1".into()), note: None });
        assert_eq!(results[1], LeadResult::Rejected("not created by Instantly (in_blocklist: 1)".into()));
        assert_eq!(results[2], LeadResult::Pushed { provider_lead_id: Some("l-3".into()), note: None });
        let dup = accepted(&sent[..1], r#"{"leads_uploaded":0,"duplicated_leads":1,"created_leads":[]}"#);
        assert!(matches!(&dup[0], LeadResult::Pushed { note: Some(n), .. } if n.contains("already in")));
    }

    #[test]
    fn answers_without_created_leads_fall_back_to_counts() {
        let sent = vec![json!({"email": "a@x.co"}), json!({"email": "b@x.co"})];
        assert!(matches!(accepted(&sent, r#"{"leads_uploaded":2}"#)[1], LeadResult::Pushed { note: None, .. }));
        assert!(
            matches!(&accepted(&sent, r#"{"leads_uploaded":0,"invalid_email_count":2}"#)[0], LeadResult::Rejected(r) if r.contains("invalid_email_count: 2"))
        );
        assert!(matches!(&accepted(&sent, r#"{"leads_uploaded":1}"#)[0], LeadResult::Pushed { note: Some(_), .. }));
        assert!(matches!(&accepted(&sent, "not json")[0], LeadResult::Pushed { note: Some(_), .. }));
    }
}
