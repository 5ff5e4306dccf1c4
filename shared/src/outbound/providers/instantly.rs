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
//! | `job_title` (merge tag `{{jobTitle}}`) | `position` |
//! | `personalization` | the custom field `personalization` |
//! | `custom_variables` | `leadpush_id` (our id), `linkedin`, `twitter`, `score`, `signal_type`, then the other custom fields (nested values as JSON text) |
//!
//! `custom_variables` is a flat object of strings, numbers and booleans, as Instantly
//! requires. Instantly merges lead data into the top level of its webhook payloads, so a
//! custom field named like a payload key (`event_type`, `timestamp`, `lead_email`, ...), a
//! lead field or one of ours ([`RESERVED_NAMES`], any case) goes as `custom_<name>`.
//! `notes` stays in Leadpush. Every `skip_if_*` flag is sent as `false` (the caller chose
//! this campaign) and `verify_leads_on_import` as `false`.
//!
//! **Re-pushing a lead already in the campaign.** Instantly does not re-add it: it counts it
//! in `duplicated_leads`, leaves it out of `created_leads` and keeps its old fields, so its
//! webhooks would carry the first push's `leadpush_id`. When an answer counts duplicates,
//! [`resolve_duplicates`] looks the leads not created up in the campaign
//! (`POST /leads/list`), which also says per lead which were duplicates and which were
//! refused (blocklist, invalid email), and updates each duplicate with this lead's fields
//! (`PATCH /leads/{id}`), so later events name the lead pushed last.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{PROVIDER_MAX_RESPONSE_BYTES, is_retryable_status, put};
use crate::domain::integration::ProviderKey;
use crate::domain::lead::Lead;
use crate::domain::push::LeadResult;
use crate::outbound::{Outbound, OutboundRequest, OutboundResponse};

pub const MAX_LEADS_PER_CALL: usize = 1000;
pub const PATH: &str = "/leads/add";
pub const LIST_PATH: &str = "/leads/list";
pub const NO_EMAIL: &str = "no email (Instantly campaigns need one)";
/// Prefix for a custom field whose name is reserved.
pub const RENAMED_PREFIX: &str = "custom_";
/// Names a custom variable must not take: the keys of Instantly's webhook payloads (lead
/// data is merged into the same level), Instantly's own lead fields, and ours.
pub const RESERVED_NAMES: &[&str] = &[
    // Webhook payload keys (developer.instantly.ai/webhook-events).
    "timestamp",
    "event_type",
    "workspace",
    "campaign_id",
    "campaign_name",
    "lead_email",
    "email_account",
    "unibox_url",
    "step",
    "variant",
    "is_first",
    "email_id",
    "email_subject",
    "email_text",
    "email_html",
    "reply_text_snippet",
    "reply_subject",
    "reply_text",
    "reply_html",
    // Instantly's lead fields.
    "email",
    "first_name",
    "last_name",
    "company_name",
    "website",
    "phone",
    "job_title",
    "personalization",
    // Ours.
    "leadpush_id",
    "linkedin",
    "twitter",
    "score",
    "signal_type",
];
/// Duplicates updated after one add call (each is a `PATCH`); the rest are retried with the
/// next attempt, so a large re-push cannot hold a request past its time limit.
pub const MAX_UPDATES_PER_CALL: usize = 100;
/// Emails per `POST /leads/list` lookup.
pub const EMAILS_PER_LOOKUP: usize = 100;
/// Lookups and updates in flight at once.
const CONCURRENCY: usize = 5;

fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

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
    put(&mut out, "job_title", lead.position.clone());
    put(&mut out, "website", lead.website.clone());
    put(&mut out, "phone", lead.phone.clone());
    put(&mut out, "personalization", lead.custom_fields.get("personalization").and_then(|v| v.as_str()));
    let mut variables = Map::new();
    variables.insert("leadpush_id".into(), json!(lead.id));
    put(&mut variables, "linkedin", lead.linkedin.clone());
    put(&mut variables, "twitter", lead.twitter.clone());
    put(&mut variables, "score", lead.score);
    put(&mut variables, "signal_type", lead.signal_type.clone());
    // Fields with free names first, then the renamed ones, which never replace a field.
    let (free, reserved): (Vec<_>, Vec<_>) = lead
        .custom_fields
        .iter()
        .filter(|(name, _)| *name != "personalization")
        .partition(|(name, _)| !is_reserved(name));
    let renamed = reserved.into_iter().map(|(name, value)| (format!("{RENAMED_PREFIX}{name}"), value));
    for (name, value) in free.into_iter().map(|(n, v)| (n.clone(), v)).chain(renamed) {
        if let Some(value) = variable(value) {
            variables.entry(name).or_insert(value);
        }
    }
    out.insert("custom_variables".into(), Value::Object(variables));
    Ok(Value::Object(out))
}

fn bearer(request: OutboundRequest, api_key: &ProviderKey) -> OutboundRequest {
    request.header("authorization", format!("Bearer {}", api_key.expose())).header("accept", "application/json")
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
    bearer(OutboundRequest::post_json(format!("{base_url}{PATH}"), body.to_string().into_bytes()), api_key)
}

/// `POST /leads/list`: the campaign's leads with these emails.
pub fn lookup_request(base_url: &str, api_key: &ProviderKey, campaign_id: &str, emails: &[&str]) -> OutboundRequest {
    let body = json!({"campaign": campaign_id, "contacts": emails, "limit": emails.len().max(1)});
    bearer(OutboundRequest::post_json(format!("{base_url}{LIST_PATH}"), body.to_string().into_bytes()), api_key)
}

/// `PATCH /leads/{id}`: the lead's fields as pushed now (the email is the key, not changed).
pub fn update_request(base_url: &str, api_key: &ProviderKey, instantly_id: &str, lead: &Value) -> OutboundRequest {
    let mut fields = lead.as_object().cloned().unwrap_or_default();
    fields.remove("email");
    let id: String = url::form_urlencoded::byte_serialize(instantly_id.as_bytes()).collect();
    let mut request =
        OutboundRequest::post_json(format!("{base_url}/leads/{id}"), Value::Object(fields).to_string().into_bytes());
    request.method = reqwest::Method::PATCH;
    bearer(request, api_key)
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

/// What an add call's 2xx answer says per lead, before any lookup: `results[i]` is `None`
/// for a lead Instantly did not create when it also counted duplicates (only a lookup can
/// tell which of those are already in the campaign).
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub results: Vec<Option<LeadResult>>,
    /// `duplicated_leads`: already in the campaign.
    pub duplicated: usize,
    /// Why the others were not created, from the counts.
    pub reason: String,
    /// Instantly's ids of the leads this call created.
    created_ids: HashSet<String>,
}

impl Added {
    fn settled(results: Vec<LeadResult>) -> Self {
        Added {
            results: results.into_iter().map(Some).collect(),
            duplicated: 0,
            reason: String::new(),
            created_ids: HashSet::new(),
        }
    }

    /// Whether some leads need a lookup to be told apart.
    pub fn unresolved(&self) -> Vec<usize> {
        self.results.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect()
    }

    /// The results without a lookup: by count, saying so (`why` the lookup did not happen).
    pub fn by_count(self, why: &str) -> Vec<LeadResult> {
        let open = self.unresolved().len();
        let fallback = if open <= self.duplicated {
            LeadResult::Pushed {
                provider_lead_id: None,
                note: Some(format!(
                    "Instantly counted {} already in the campaign without naming them ({why}); taken to be this one",
                    self.duplicated
                )),
            }
        } else {
            LeadResult::Rejected(format!(
                "{}, or already in the campaign (duplicated_leads: {}): Instantly does not say which ({why})",
                self.reason, self.duplicated
            ))
        };
        self.results.into_iter().map(|r| r.unwrap_or_else(|| fallback.clone())).collect()
    }
}

/// Reads a 2xx answer to `sent` (the leads as sent, for their emails).
/// `created_leads[].index` (else its email) names the leads created; without
/// `created_leads`, the counts decide for the whole call.
pub fn read_added(sent: &[Value], body: &str) -> Added {
    let pushed = |id: Option<String>, note: Option<String>| LeadResult::Pushed { provider_lead_id: id, note };
    let Ok(answer) = serde_json::from_str::<Answer>(body) else {
        let note = "Instantly's answer could not be read; assumed added";
        return Added::settled(vec![pushed(None, Some(note.into())); sent.len()]);
    };
    let duplicated = answer.duplicated_leads.unwrap_or(0).max(0) as usize;
    let Some(created) = &answer.created_leads else {
        let uploaded = answer.leads_uploaded.unwrap_or(sent.len() as i64).max(0) as usize;
        if uploaded + duplicated >= sent.len() {
            return Added::settled(vec![pushed(None, None); sent.len()]);
        }
        if uploaded == 0 && duplicated == 0 {
            return Added::settled(vec![LeadResult::Rejected(answer.reason()); sent.len()]);
        }
        let note = format!("Instantly created {uploaded} of {} leads in this batch without naming them", sent.len());
        return Added::settled(vec![pushed(None, Some(note)); sent.len()]);
    };
    let position_of_email: HashMap<String, usize> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, lead)| Some((lead["email"].as_str()?.to_ascii_lowercase(), i)))
        .collect();
    let mut results: Vec<Option<LeadResult>> = vec![None; sent.len()];
    let mut created_ids = HashSet::new();
    for item in created {
        let position = item
            .index
            .filter(|i| *i < sent.len())
            .or_else(|| item.email.as_ref().and_then(|e| position_of_email.get(&e.to_ascii_lowercase()).copied()));
        if let Some(i) = position {
            results[i] = Some(pushed(item.id.clone(), None));
            created_ids.extend(item.id.clone());
        }
    }
    let reason = answer.reason();
    if duplicated == 0 {
        for result in results.iter_mut().filter(|r| r.is_none()) {
            *result = Some(LeadResult::Rejected(reason.clone()));
        }
    }
    Added { results, duplicated, reason, created_ids }
}

/// The campaign's leads in a `/leads/list` answer: lower-cased email -> Instantly id.
fn read_lookup(body: &str) -> Option<HashMap<String, String>> {
    #[derive(Deserialize)]
    struct Item {
        id: Option<String>,
        email: Option<String>,
    }
    #[derive(Deserialize)]
    struct Page {
        items: Vec<Item>,
    }
    let page: Page = serde_json::from_str(body).ok()?;
    Some(page.items.into_iter().filter_map(|i| Some((i.email?.to_ascii_lowercase(), i.id?))).collect())
}

fn failure(outcome: &Result<OutboundResponse, crate::outbound::OutboundError>) -> Option<(String, bool)> {
    match outcome {
        Ok(r) if r.is_success() => None,
        Ok(r) => Some((format!("HTTP {}", r.status), is_retryable_status(r.status))),
        Err(e) => Some((e.to_string(), true)),
    }
}

/// Where Instantly's API is and whose it is.
pub struct Account<'a> {
    pub outbound: &'a Outbound,
    pub base_url: &'a str,
    pub api_key: &'a ProviderKey,
    pub campaign_id: &'a str,
}

/// The campaign's leads among `emails`, or what went wrong (and whether it is worth retrying).
async fn lookup(account: &Account<'_>, emails: &[&str]) -> Result<HashMap<String, String>, (String, bool)> {
    let request = lookup_request(account.base_url, account.api_key, account.campaign_id, emails);
    let outcome = account.outbound.send_capped(request, PROVIDER_MAX_RESPONSE_BYTES).await;
    if let Some(failed) = failure(&outcome) {
        return Err(failed);
    }
    outcome
        .ok()
        .and_then(|r| read_lookup(&r.body))
        .ok_or_else(|| ("an answer that could not be read".to_owned(), false))
}

/// Updates the duplicate `id` with the fields of `lead` (sent as lead `i`).
async fn update(account: &Account<'_>, i: usize, id: String, lead: &Value) -> (usize, LeadResult) {
    let request = update_request(account.base_url, account.api_key, &id, lead);
    let outcome = account.outbound.send_capped(request, PROVIDER_MAX_RESPONSE_BYTES).await;
    let result = match failure(&outcome) {
        None => LeadResult::Pushed {
            provider_lead_id: Some(id),
            note: Some(
                "already in the Instantly campaign: updated with this lead's fields, so its events name this lead"
                    .into(),
            ),
        },
        Some((what, true)) => {
            LeadResult::Retry(format!("already in the Instantly campaign; updating it failed ({what})"))
        }
        Some((what, false)) => LeadResult::Pushed {
            provider_lead_id: Some(id),
            note: Some(format!(
                "already in the Instantly campaign, but updating it failed ({what}): its events may name the lead pushed there first"
            )),
        },
    };
    (i, result)
}

/// Settles the leads an add call left open: looks them up in the campaign (found: already
/// there, updated with this lead's fields; not found: refused for the reasons counted).
/// Lookup and update failures worth retrying leave those leads pending for the next attempt.
pub async fn resolve_duplicates(account: &Account<'_>, sent: &[Value], added: Added) -> Vec<LeadResult> {
    let open = added.unresolved();
    if open.is_empty() {
        return added.results.into_iter().flatten().collect();
    }
    // Each step is a call of up to the outbound timeout: one that might not end before the
    // deadline is not started, and its leads stay pending for the next attempt.
    let out_of_time = || !account.outbound.fits_deadline();
    let later = |what: &str| {
        LeadResult::Retry(format!("{what}: the time left for this attempt ran out; settled on the next attempt"))
    };
    if out_of_time() {
        let pending = later("Instantly did not create it and it was not looked up");
        return added.results.into_iter().map(|r| r.unwrap_or_else(|| pending.clone())).collect();
    }
    let emails: Vec<&str> = open.iter().filter_map(|i| sent[*i]["email"].as_str()).collect();
    let lookups: Vec<_> = emails.chunks(EMAILS_PER_LOOKUP).map(|chunk| lookup(account, chunk)).collect();
    let answers: Vec<_> = stream::iter(lookups).buffer_unordered(CONCURRENCY).collect().await;
    let mut in_campaign = HashMap::new();
    for answer in answers {
        match answer {
            Ok(found) => in_campaign.extend(found),
            Err((what, true)) => {
                tracing::warn!(failure = what, "Instantly lead lookup failed; leads left pending");
                let reason = format!("Instantly did not say whether it was a duplicate; looking it up failed ({what})");
                return added
                    .results
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| LeadResult::Retry(reason.clone())))
                    .collect();
            }
            Err((what, false)) => return added.by_count(&format!("looking them up failed: {what}")),
        }
    }
    let mut results = added.results.clone();
    let mut updates = Vec::new();
    for i in open {
        let email = sent[i]["email"].as_str().unwrap_or_default().to_ascii_lowercase();
        results[i] = match in_campaign.get(&email) {
            None => Some(LeadResult::Rejected(added.reason.clone())),
            Some(id) if added.created_ids.contains(id) => Some(LeadResult::Rejected(
                "not created by Instantly: another lead of this push has the same email".into(),
            )),
            Some(_) if updates.len() >= MAX_UPDATES_PER_CALL => Some(LeadResult::Retry(format!(
                "already in the Instantly campaign; updated on the next attempt (at most {MAX_UPDATES_PER_CALL} per call)"
            ))),
            Some(id) => {
                updates.push((i, id.clone()));
                None
            }
        };
    }
    if !updates.is_empty() && out_of_time() {
        for (i, _) in updates.drain(..) {
            results[i] = Some(later("already in the Instantly campaign, not yet updated"));
        }
    }
    let patches: Vec<_> = updates.into_iter().map(|(i, id)| update(account, i, id, &sent[i])).collect();
    for (i, result) in stream::iter(patches).buffer_unordered(CONCURRENCY).collect::<Vec<_>>().await {
        results[i] = Some(result);
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| LeadResult::Rejected(added.reason.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::support::time::Timestamp;

    fn stored(fields: LeadFields) -> Lead {
        Lead::new("req_1_0001".into(), "cmp_1".into(), None, fields, Timestamp::parse("2026-05-02T12:00:00Z").unwrap())
    }

    #[test]
    fn leads_map_to_instantly_fields_with_job_title_and_flat_custom_variables() {
        let mut custom = Map::new();
        custom.insert("personalization".into(), json!("Loved your post"));
        custom.insert("tier".into(), json!(2));
        custom.insert("vip".into(), json!(true));
        custom.insert("address".into(), json!({"city": "Berlin"}));
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
                "job_title": "CTO", "personalization": "Loved your post",
                "custom_variables": {
                    "tier": 2, "vip": true, "address": "{\"city\":\"Berlin\"}", "leadpush_id": "req_1_0001", "score": 9
                }
            })
        );
        assert!(mapped["custom_variables"].as_object().unwrap().values().all(|v| !v.is_object() && !v.is_array()));
        let no_email = stored(LeadFields { name: Some("Bob".into()), ..LeadFields::default() });
        assert_eq!(super::lead(&no_email), Err(NO_EMAIL.to_owned()));
    }

    #[test]
    fn custom_fields_named_like_webhook_keys_lead_fields_or_ours_are_prefixed() {
        let mut custom = Map::new();
        for name in ["event_type", "Timestamp", "lead_email", "leadpush_id", "score", "job_title", "custom_score"] {
            custom.insert(name.into(), json!(format!("custom {name}")));
        }
        let lead = stored(LeadFields {
            email: Some("a@b.co".into()),
            score: Some(1),
            custom_fields: custom,
            ..LeadFields::default()
        });
        let variables = super::lead(&lead).unwrap()["custom_variables"].clone();
        assert_eq!(
            variables,
            json!({
                "leadpush_id": "req_1_0001", "score": 1,
                "custom_event_type": "custom event_type", "custom_Timestamp": "custom Timestamp",
                "custom_lead_email": "custom lead_email", "custom_leadpush_id": "custom leadpush_id",
                "custom_job_title": "custom job_title",
                // A field already named `custom_score` keeps its name and value; the renamed `score` yields.
                "custom_score": "custom custom_score",
            })
        );
        for reserved in ["event_type", "timestamp", "lead_email", "campaign_id", "email", "leadpush_id"] {
            assert!(is_reserved(reserved), "{reserved}");
        }
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
        let update = update_request("http://x/api/v2", &key, "in-1", &json!({"email": "a@b.co", "job_title": "CTO"}));
        assert_eq!((update.method.as_str(), update.url.as_str()), ("PATCH", "http://x/api/v2/leads/in-1"));
        assert_eq!(
            serde_json::from_slice::<Value>(update.body.as_deref().unwrap()).unwrap(),
            json!({"job_title": "CTO"})
        );
        let lookup = lookup_request("http://x/api/v2", &key, "c-1", &["a@b.co"]);
        assert_eq!(
            serde_json::from_slice::<Value>(lookup.body.as_deref().unwrap()).unwrap(),
            json!({"campaign": "c-1", "contacts": ["a@b.co"], "limit": 1})
        );
    }

    #[test]
    fn created_leads_name_who_was_added() {
        let sent = vec![json!({"email": "a@x.co"}), json!({"email": "b@x.co"}), json!({"email": "C@x.co"})];
        let body = r#"{"status":"success","total_sent":3,"leads_uploaded":2,"in_blocklist":1,
            "created_leads":[{"id":"l-1","email":"a@x.co","index":0},{"id":"l-3","email":"c@x.co"}]}"#;
        let results: Vec<LeadResult> = read_added(&sent, body).results.into_iter().flatten().collect();
        assert_eq!(results[0], LeadResult::Pushed { provider_lead_id: Some("l-1".into()), note: None });
        assert_eq!(results[1], LeadResult::Rejected("not created by Instantly (in_blocklist: 1)".into()));
        assert_eq!(results[2], LeadResult::Pushed { provider_lead_id: Some("l-3".into()), note: None });
    }

    #[test]
    fn duplicates_stay_open_for_a_lookup_and_count_attribution_says_it_is_a_guess() {
        let sent = vec![json!({"email": "a@x.co"}), json!({"email": "dup@x.co"}), json!({"email": "bl@x.co"})];
        let body = r#"{"leads_uploaded":1,"duplicated_leads":1,"in_blocklist":1,
            "created_leads":[{"id":"l-1","email":"a@x.co","index":0}]}"#;
        let added = read_added(&sent, body);
        assert_eq!(added.unresolved(), vec![1, 2]);
        assert_eq!(added.duplicated, 1);
        // Without a lookup, two open leads and one duplicate: neither can be named.
        let guessed = added.clone().by_count("lookup failed: HTTP 404");
        assert!(
            matches!(&guessed[1], LeadResult::Rejected(r) if r.contains("in_blocklist: 1") && r.contains("does not say which")),
            "{guessed:?}"
        );
        let one_open = read_added(&sent[..2], r#"{"duplicated_leads":1,"created_leads":[{"id":"l-1","index":0}]}"#);
        assert!(
            matches!(&one_open.by_count("x")[1], LeadResult::Pushed { note: Some(n), .. } if n.contains("without naming"))
        );
    }

    #[test]
    fn answers_without_created_leads_fall_back_to_counts() {
        let sent = vec![json!({"email": "a@x.co"}), json!({"email": "b@x.co"})];
        let results =
            |body: &str| -> Vec<LeadResult> { read_added(&sent, body).results.into_iter().flatten().collect() };
        assert!(matches!(results(r#"{"leads_uploaded":2}"#)[1], LeadResult::Pushed { note: None, .. }));
        assert!(
            matches!(&results(r#"{"leads_uploaded":0,"invalid_email_count":2}"#)[0], LeadResult::Rejected(r) if r.contains("invalid_email_count: 2"))
        );
        assert!(matches!(&results(r#"{"leads_uploaded":1}"#)[0], LeadResult::Pushed { note: Some(_), .. }));
        assert!(matches!(&results("not json")[0], LeadResult::Pushed { note: Some(_), .. }));
    }
}
