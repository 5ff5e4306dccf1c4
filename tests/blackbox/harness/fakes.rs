//! Fake HeyReach and Instantly APIs on real local receivers. Like the real ones they check
//! the auth header, the path and the body's shape, and answer in the provider's format
//! (docs/provider-research.md); a test can still script failures (429, 500, slow) first.

use serde_json::{Value, json};

use super::receiver::{Receiver, Recorded, Reply};

pub const HEYREACH_KEY: &str = "hr-test-key-4f2a9c0e71d8";
pub const INSTANTLY_KEY: &str = "in-test-key-b83e5d17aa02";
pub const INSTANTLY_CAMPAIGN: &str = "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a";
/// Instantly answers as if addresses at this domain were on the blocklist.
pub const BLOCKED_DOMAIN: &str = "@blocked.example";

/// A running fake: the receiver (requests, scripts) and the base URL to configure.
pub struct Fake {
    pub receiver: Receiver,
    pub base_url: String,
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

/// What HeyReach's `AddLeadsToListV2` checks, as far as its public clients show.
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

fn heyreach_reply(r: &Recorded) -> Reply {
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
    Reply::status(
        200,
        &json!({"addedLeadsCount": leads.len(), "updatedLeadsCount": 0, "failedLeadsCount": 0}).to_string(),
    )
}

fn instantly_reply(r: &Recorded) -> Reply {
    if r.method != "POST" || r.path != "/api/v2/leads/add" {
        return instantly_error(404, "Not Found", "Route not found");
    }
    if r.header("authorization") != Some(&format!("Bearer {INSTANTLY_KEY}")) {
        return instantly_error(401, "Unauthorized", "Invalid API key");
    }
    let body = r.json();
    if !is_json(r) || body["campaign_id"].as_str() != Some(INSTANTLY_CAMPAIGN) || body.get("list_id").is_some() {
        return instantly_error(400, "Bad Request", "body/campaign_id must be the campaign's UUID (and no list_id)");
    }
    let Some(leads) = body["leads"].as_array().filter(|l| (1..=1000).contains(&l.len())) else {
        return instantly_error(400, "Bad Request", "body/leads must NOT have fewer than 1 or more than 1000 items");
    };
    let mut created = Vec::new();
    let mut blocked = 0;
    for (index, lead) in leads.iter().enumerate() {
        let Some(email) = lead["email"].as_str() else {
            return instantly_error(
                400,
                "Bad Request",
                &format!("body/leads/{index} must have required property 'email'"),
            );
        };
        let flat = lead
            .get("custom_variables")
            .is_none_or(|v| v.as_object().is_some_and(|vars| vars.values().all(|x| !x.is_object() && !x.is_array())));
        if !flat {
            return instantly_error(400, "Bad Request", &format!("body/leads/{index}/custom_variables must be flat"));
        }
        if email.ends_with(BLOCKED_DOMAIN) {
            blocked += 1;
        } else {
            created.push(json!({"id": format!("in-lead-{index}"), "email": email, "index": index}));
        }
    }
    let answer = json!({
        "status": "success", "total_sent": leads.len(), "leads_uploaded": created.len(), "in_blocklist": blocked,
        "duplicated_leads": 0, "skipped_count": 0, "invalid_email_count": 0, "incomplete_count": 0,
        "duplicate_email_count": 0, "remaining_in_plan": 9000, "created_leads": created,
    });
    Reply::status(200, &answer.to_string())
}

pub async fn heyreach() -> Fake {
    let receiver = Receiver::start_fn(heyreach_reply).await;
    let base_url = format!("{}/api/public", receiver.url);
    Fake { receiver, base_url }
}

pub async fn instantly() -> Fake {
    let receiver = Receiver::start_fn(instantly_reply).await;
    let base_url = format!("{}/api/v2", receiver.url);
    Fake { receiver, base_url }
}
