//! Fake HeyReach and Instantly APIs on real local receivers, behaving like the real ones as
//! far as their public material shows (docs/provider-research.md): they check the auth
//! header, the path and the body's shape, keep the leads they were given, and answer in the
//! provider's format, quirks included:
//!
//! - HeyReach answers 200 and silently drops a lead without `firstName` and `lastName`
//!   (counted nowhere); re-adding a profile updates it (`updatedLeadsCount`).
//! - Instantly counts a lead without a valid email in `invalid_email_count` (the batch still
//!   succeeds), a blocklisted one in `in_blocklist`, one already in the campaign in
//!   `duplicated_leads` (keeping its old fields), and lists only created leads in
//!   `created_leads`; `POST /leads/list` and `PATCH /leads/{id}` work on what it holds.
//! - Webhook payloads built from the stored leads: Instantly merges lead data (custom
//!   variables included) into the top level and sends custom labels as raw `event_type`;
//!   HeyReach's carry the lead under `lead`, and may lack `event_type`.
//!
//! A test can still script failures (429, 500, slow) first.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::receiver::{Receiver, Recorded, Reply};

pub const HEYREACH_KEY: &str = "hr-test-key-4f2a9c0e71d8";
pub const INSTANTLY_KEY: &str = "in-test-key-b83e5d17aa02";
pub const INSTANTLY_CAMPAIGN: &str = "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a";
/// Instantly answers as if addresses at this domain were on the blocklist.
pub const BLOCKED_DOMAIN: &str = "@blocked.example";
/// Instantly counts addresses under this reserved TLD as invalid (`invalid_email_count`).
pub const INVALID_DOMAIN: &str = ".invalid";

/// The leads a fake provider holds, in the order it took them.
type Held = Arc<Mutex<Vec<Value>>>;

/// A running fake: the receiver (requests, scripts), the base URL to configure, and the
/// leads it holds.
pub struct Fake {
    pub receiver: Receiver,
    pub base_url: String,
    held: Held,
}

impl Fake {
    /// Every lead the provider holds now.
    pub fn leads(&self) -> Vec<Value> {
        self.held.lock().unwrap().clone()
    }

    /// The lead held under this email (Instantly) or profile URL (HeyReach).
    pub fn lead(&self, key: &str) -> Value {
        let key = key.to_ascii_lowercase();
        self.leads()
            .into_iter()
            .find(|l| {
                [&l["email"], &l["profileUrl"]]
                    .iter()
                    .any(|v| v.as_str().map(str::to_ascii_lowercase) == Some(key.clone()))
            })
            .unwrap_or_else(|| panic!("the fake holds no lead {key}"))
    }
}

fn heyreach_error(status: u16, message: &str) -> Reply {
    Reply::status(status, &json!({"errorMessage": message}).to_string())
}

fn instantly_error(status: u16, error: &str, message: &str) -> Reply {
    Reply::status(status, &json!({"statusCode": status, "error": error, "message": message}).to_string())
}

fn is_json(r: &Recorded) -> bool {
    r.header("content-type").is_some_and(|c| c.starts_with("application/json"))
}

/// What HeyReach's `AddLeadsToListV2` refuses outright, as far as its public clients show.
fn heyreach_lead_problem(lead: &Value) -> Option<String> {
    let Some(object) = lead.as_object() else {
        return Some("each lead must be an object".to_owned());
    };
    let url = object.get("profileUrl").and_then(Value::as_str).unwrap_or_default();
    if !url.starts_with("https://www.linkedin.com/in/") {
        return Some(format!("profileUrl must be a LinkedIn profile URL, got {url:?}"));
    }
    for (name, value) in object {
        match (name.as_str(), value) {
            ("customUserFields", Value::Array(fields)) => {
                for field in fields {
                    let name = field["name"].as_str().unwrap_or_default();
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Some(format!("custom field name {name:?} is not alphanumeric"));
                    }
                    if !field["value"].is_string() {
                        return Some(format!("custom field {name} must have a string value"));
                    }
                }
            }
            (_, Value::String(_)) => {}
            (name, other) => return Some(format!("{name} must be a string, got {other}")),
        }
    }
    None
}

fn named(lead: &Value, field: &str) -> bool {
    lead[field].as_str().is_some_and(|s| !s.trim().is_empty())
}

fn heyreach_reply(held: &Held, r: &Recorded) -> Reply {
    if r.method != "POST" || r.path != "/api/public/list/AddLeadsToListV2" {
        return heyreach_error(404, "Not found");
    }
    if r.header("x-api-key") != Some(HEYREACH_KEY) {
        return heyreach_error(401, "Unauthorized");
    }
    let body = r.json();
    if !is_json(r) || !body["listId"].is_i64() {
        return heyreach_error(400, "listId must be an integer");
    }
    let Some(leads) = body["leads"].as_array().filter(|l| (1..=100).contains(&l.len())) else {
        return heyreach_error(400, "leads must hold 1 to 100 leads");
    };
    if let Some(problem) = leads.iter().find_map(heyreach_lead_problem) {
        return heyreach_error(400, &problem);
    }
    let (mut added, mut updated) = (0, 0);
    let mut held = held.lock().unwrap();
    for lead in leads {
        // The quirk: no names, no lead, and no count says so.
        if !named(lead, "firstName") || !named(lead, "lastName") {
            continue;
        }
        match held.iter_mut().find(|l| l["profileUrl"] == lead["profileUrl"]) {
            Some(existing) => {
                *existing = lead.clone();
                updated += 1;
            }
            None => {
                held.push(lead.clone());
                added += 1;
            }
        }
    }
    Reply::status(
        200,
        &json!({"addedLeadsCount": added, "updatedLeadsCount": updated, "failedLeadsCount": 0}).to_string(),
    )
}

fn in_campaign<'a>(held: &'a mut [Value], campaign: &str, email: &str) -> Option<&'a mut Value> {
    held.iter_mut().find(|l| l["campaign"] == campaign && l["email"].as_str() == Some(email))
}

fn instantly_add(held: &Held, body: &Value) -> Reply {
    let campaign = body["campaign_id"].as_str().unwrap_or_default();
    let Some(leads) = body["leads"].as_array().filter(|l| (1..=1000).contains(&l.len())) else {
        return instantly_error(400, "Bad Request", "body/leads must NOT have fewer than 1 or more than 1000 items");
    };
    let mut held = held.lock().unwrap();
    let (mut created, mut seen) = (Vec::new(), Vec::new());
    let (mut invalid, mut blocked, mut duplicated, mut repeated) = (0, 0, 0, 0);
    for (index, lead) in leads.iter().enumerate() {
        let flat = lead
            .get("custom_variables")
            .is_none_or(|v| v.as_object().is_some_and(|vars| vars.values().all(|x| !x.is_object() && !x.is_array())));
        if !flat {
            return instantly_error(400, "Bad Request", &format!("body/leads/{index}/custom_variables must be flat"));
        }
        let valid = |e: &&str| e.contains('@') && !e.ends_with(INVALID_DOMAIN);
        let Some(email) = lead["email"].as_str().filter(valid).map(str::to_ascii_lowercase) else {
            invalid += 1;
            continue;
        };
        if seen.contains(&email) {
            repeated += 1;
            continue;
        }
        seen.push(email.clone());
        if email.ends_with(BLOCKED_DOMAIN) {
            blocked += 1;
        } else if in_campaign(&mut held, campaign, &email).is_some() {
            // Not re-added, and its old fields (custom variables included) stay as they were.
            duplicated += 1;
        } else {
            let id = format!("in-lead-{}", held.len());
            let mut stored = lead.clone();
            stored["id"] = json!(id);
            stored["email"] = json!(email);
            stored["campaign"] = json!(campaign);
            held.push(stored);
            created.push(json!({"id": id, "email": email, "index": index}));
        }
    }
    let answer = json!({
        "status": "success", "total_sent": leads.len(), "leads_uploaded": created.len(), "in_blocklist": blocked,
        "blocklist_used": null, "duplicated_leads": duplicated, "skipped_count": 0, "invalid_email_count": invalid,
        "incomplete_count": 0, "duplicate_email_count": repeated, "remaining_in_plan": 9000, "created_leads": created,
    });
    Reply::status(200, &answer.to_string())
}

fn instantly_list(held: &Held, body: &Value) -> Reply {
    let campaign = body["campaign"].as_str().unwrap_or_default();
    let contacts: Vec<String> = body["contacts"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    let limit = body["limit"].as_u64().unwrap_or(100).min(100) as usize;
    let items: Vec<Value> = held
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["campaign"] == campaign)
        .filter(|l| contacts.is_empty() || l["email"].as_str().is_some_and(|e| contacts.iter().any(|c| c == e)))
        .take(limit)
        .cloned()
        .collect();
    Reply::status(200, &json!({"items": items}).to_string())
}

fn instantly_patch(held: &Held, id: &str, body: &Value) -> Reply {
    let mut held = held.lock().unwrap();
    let Some(lead) = held.iter_mut().find(|l| l["id"] == id) else {
        return instantly_error(404, "Not Found", "Lead not found");
    };
    for (name, value) in body.as_object().into_iter().flatten() {
        if name == "custom_variables" {
            let vars = lead["custom_variables"].as_object().cloned().unwrap_or_default();
            let mut vars: Map<String, Value> = vars;
            vars.extend(value.as_object().cloned().unwrap_or_default());
            lead["custom_variables"] = Value::Object(vars);
        } else {
            lead[name] = value.clone();
        }
    }
    Reply::status(200, &lead.to_string())
}

fn instantly_reply(held: &Held, r: &Recorded) -> Reply {
    if r.header("authorization") != Some(&format!("Bearer {INSTANTLY_KEY}")) {
        return instantly_error(401, "Unauthorized", "Invalid API key");
    }
    let body = r.json();
    if r.body.is_empty() || !is_json(r) || !body.is_object() {
        return instantly_error(400, "Bad Request", "body must be a JSON object");
    }
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/api/v2/leads/add") => {
            if body["campaign_id"].as_str() != Some(INSTANTLY_CAMPAIGN) || body.get("list_id").is_some() {
                return instantly_error(
                    400,
                    "Bad Request",
                    "body/campaign_id must be the campaign's UUID (and no list_id)",
                );
            }
            instantly_add(held, &body)
        }
        ("POST", "/api/v2/leads/list") => instantly_list(held, &body),
        ("PATCH", path) if path.starts_with("/api/v2/leads/") => {
            instantly_patch(held, path.trim_start_matches("/api/v2/leads/"), &body)
        }
        _ => instantly_error(404, "Not Found", "Route not found"),
    }
}

pub async fn heyreach() -> Fake {
    let held: Held = Arc::default();
    let state = held.clone();
    let receiver = Receiver::start_fn(move |r| heyreach_reply(&state, r)).await;
    let base_url = format!("{}/api/public", receiver.url);
    Fake { receiver, base_url, held }
}

pub async fn instantly() -> Fake {
    let held: Held = Arc::default();
    let state = held.clone();
    let receiver = Receiver::start_fn(move |r| instantly_reply(&state, r)).await;
    let base_url = format!("{}/api/v2", receiver.url);
    Fake { receiver, base_url, held }
}

/// The webhook Instantly sends about `lead` (as the fake holds it): the documented keys,
/// then the lead's data merged into the same level, its custom variables included, so a
/// custom variable named like a payload key overrides it. `event_type` may be a custom
/// label's raw text.
pub fn instantly_webhook(lead: &Value, event_type: &str, at: &str) -> Value {
    let mut payload = json!({
        "timestamp": at, "event_type": event_type, "workspace": "0b4c7c1e-9d1f-4c3a-8f7e-1a2b3c4d5e6f",
        "campaign_id": lead["campaign"], "campaign_name": "Fake campaign", "lead_email": lead["email"],
        "email_account": "sdr@example.com", "step": 1, "variant": 1, "is_first": true,
        "reply_text": "Sounds good", "reply_text_snippet": "Sounds good",
    });
    for (name, value) in lead.as_object().into_iter().flatten() {
        match name.as_str() {
            "custom_variables" => {
                for (var, v) in value.as_object().into_iter().flatten() {
                    payload[var] = v.clone();
                }
            }
            "id" | "campaign" | "email" => {}
            _ => payload[name] = value.clone(),
        }
    }
    payload
}

/// The webhook HeyReach sends about `lead` (as the fake holds it); `event_type: None` for
/// the payloads that arrive without one.
pub fn heyreach_webhook(lead: &Value, event_type: Option<&str>, message: &str, at: &str) -> Value {
    let custom: Map<String, Value> = lead["customUserFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["value"].clone())))
        .collect();
    let mut payload = json!({
        "timestamp": at, "correlation_id": format!("corr-{at}"), "conversation_id": "2-OTE3", "is_inmail": false,
        "recent_messages": [{"creation_time": at, "message": message, "is_reply": true}],
        "campaign": {"id": 456, "name": "Fake LinkedIn campaign"},
        "lead": {"id": "918418165", "profile_url": lead["profileUrl"], "first_name": lead["firstName"],
                 "last_name": lead["lastName"], "email_address": lead["emailAddress"],
                 "lists": [{"id": 1, "name": "Fake list", "custom_fields": custom}]}
    });
    if let Some(event_type) = event_type {
        payload["event_type"] = json!(event_type.to_ascii_lowercase());
    }
    payload
}
