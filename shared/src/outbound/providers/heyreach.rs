//! HeyReach: `POST {base}/list/AddLeadsToListV2` with `X-API-KEY`, at most 100 leads per
//! call, each identified by its LinkedIn profile URL (docs/provider-research.md §1.3).
//!
//! Field mapping (absent values are left out, never sent as null):
//! | HeyReach | Leadpush |
//! |---|---|
//! | `firstName`, `lastName` | `first_name`, `last_name`, else `name` split at its first space (both required) |
//! | `profileUrl` | `linkedin`, normalised to `https://www.linkedin.com/in/<slug>` |
//! | `companyName`, `position`, `emailAddress` | `company`, `position`, `email` |
//! | `location`, `summary`, `about` | custom fields of those names |
//! | `customUserFields` | `leadpush_id` (our id), `website`, `phone`, `twitter`, `score`, `signal_type`, other custom fields |
//!
//! Custom field names keep only letters, digits and `_` (others become `_`), the form
//! public clients use so they work as `{VARIABLE}`s in sequences. A custom field whose name
//! is one of ours (`leadpush_id`, `website`, ...) goes as `custom_<name>`. `notes` stays in
//! Leadpush.
//!
//! HeyReach answers 200 and silently drops a lead without both `firstName` and `lastName`
//! (not even counted as failed; docs/provider-research.md §1.3), so such leads are skipped
//! here with a reason instead of being reported pushed.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{as_text, put};
use crate::domain::integration::ProviderKey;
use crate::domain::lead::Lead;
use crate::domain::push::LeadResult;
use crate::outbound::OutboundRequest;

pub const MAX_LEADS_PER_CALL: usize = 100;
pub const PATH: &str = "/list/AddLeadsToListV2";
pub const NO_PROFILE_URL: &str = "no LinkedIn profile URL (`linkedin` must be a linkedin.com/in/... URL)";
pub const NO_NAME: &str = "no name (HeyReach silently drops leads without firstName and lastName: set `first_name` and `last_name`, or `name`)";
/// Prefix for a custom field whose name is taken by one of ours.
pub const RENAMED_PREFIX: &str = "custom_";
/// Custom fields that map to HeyReach's own lead fields.
const NATIVE_CUSTOM_FIELDS: [&str; 3] = ["location", "summary", "about"];

/// `https://www.linkedin.com/in/<slug>` for a LinkedIn profile URL in any common spelling
/// (no scheme, `http`, another subdomain, query, trailing slash); `None` for anything else.
pub fn profile_url(text: &str) -> Option<String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("https://") || lower.starts_with("http://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if host != "linkedin.com" && !host.ends_with(".linkedin.com") {
        return None;
    }
    let mut segments = url.path_segments()?;
    if segments.next()? != "in" {
        return None;
    }
    let slug = segments.next().filter(|s| !s.is_empty())?;
    Some(format!("https://www.linkedin.com/in/{slug}"))
}

/// Letters, digits and `_` only.
pub fn field_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The lead as HeyReach wants it, or why it cannot be sent.
pub fn lead(lead: &Lead) -> Result<Value, String> {
    let profile_url = lead.linkedin.as_deref().and_then(profile_url).ok_or_else(|| NO_PROFILE_URL.to_owned())?;
    let (first_name, last_name) = names(lead)?;
    let custom_text = |name: &str| lead.custom_fields.get(name).and_then(as_text);
    let mut out = Map::new();
    out.insert("firstName".into(), json!(first_name));
    out.insert("lastName".into(), json!(last_name));
    out.insert("profileUrl".into(), json!(profile_url));
    put(&mut out, "companyName", lead.company.clone());
    put(&mut out, "position", lead.position.clone());
    put(&mut out, "emailAddress", lead.email.clone());
    for name in NATIVE_CUSTOM_FIELDS {
        put(&mut out, name, custom_text(name));
    }
    let mut fields: Vec<(String, String)> = vec![("leadpush_id".into(), lead.id.clone())];
    let ours = [
        ("website", lead.website.clone()),
        ("phone", lead.phone.clone()),
        ("twitter", lead.twitter.clone()),
        ("score", lead.score.map(|s| s.to_string())),
        ("signal_type", lead.signal_type.clone()),
    ];
    fields.extend(ours.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    for (name, value) in &lead.custom_fields {
        if NATIVE_CUSTOM_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let mut name = field_name(name);
        if fields.iter().any(|(n, _)| *n == name) {
            name = format!("{RENAMED_PREFIX}{name}");
        }
        if let (false, Some(value)) = (name.is_empty() || fields.iter().any(|(n, _)| *n == name), as_text(value)) {
            fields.push((name, value));
        }
    }
    let custom: Vec<Value> = fields.into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    out.insert("customUserFields".into(), Value::Array(custom));
    Ok(Value::Object(out))
}

/// The first and last name HeyReach requires, or why the lead has none. A one-word `name`
/// ("Cher") gives no last name: it is refused rather than sent with an invented one, which
/// would show in messages that use `{LAST_NAME}`.
fn names(lead: &Lead) -> Result<(String, String), String> {
    const DROPS: &str = "HeyReach silently drops leads without firstName and lastName";
    match lead.name_parts() {
        (Some(first), Some(last)) => Ok((first, last)),
        (Some(_), None) => match lead.name.as_deref().filter(|n| !n.contains(' ')) {
            Some(one_word) => {
                Err(format!("no last name: `name` \"{one_word}\" is one word and {DROPS} (set `last_name`)"))
            }
            None => Err(format!("no last name ({DROPS}: set `last_name`)")),
        },
        (None, Some(_)) => Err(format!("no first name ({DROPS}: set `first_name`)")),
        (None, None) => Err(NO_NAME.to_owned()),
    }
}

pub fn request(base_url: &str, api_key: &ProviderKey, list_id: i64, leads: &[Value]) -> OutboundRequest {
    let body = json!({"listId": list_id, "leads": leads});
    OutboundRequest::post_json(format!("{base_url}{PATH}"), body.to_string().into_bytes())
        .header("X-API-KEY", api_key.expose())
        .header("accept", "application/json")
}

/// HeyReach's answer. Sources disagree on the names, so every count is optional and the
/// shorter spellings are accepted too.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    #[serde(alias = "addedCount")]
    added_leads_count: Option<i64>,
    #[serde(alias = "updatedCount")]
    updated_leads_count: Option<i64>,
    #[serde(alias = "failedCount")]
    failed_leads_count: Option<i64>,
}

/// Per-lead results of a 2xx answer to a call of `sent` leads. HeyReach gives counts, not
/// rows: all accepted, none accepted (the "0/0/0" answer, a silent refusal), or fewer
/// added or updated than sent without saying which (then every lead counts as pushed, with
/// a note saying so: the names check above removes the known cause of silent drops).
pub fn accepted(sent: usize, body: &str) -> Vec<LeadResult> {
    let pushed = |note: Option<String>| vec![LeadResult::Pushed { provider_lead_id: None, note }; sent];
    let counts = serde_json::from_str::<Counts>(body).unwrap_or_default();
    if counts.added_leads_count.is_none() && counts.updated_leads_count.is_none() && counts.failed_leads_count.is_none()
    {
        return pushed(Some("HeyReach answered without lead counts; assumed added".into()));
    }
    let added = counts.added_leads_count.unwrap_or(0) + counts.updated_leads_count.unwrap_or(0);
    let failed = counts.failed_leads_count.unwrap_or(0);
    if added <= 0 {
        let reason = format!(
            "HeyReach added none of this batch ({added} added or updated, {failed} failed): check the LinkedIn URLs and names"
        );
        return vec![LeadResult::Rejected(reason); sent];
    }
    if failed > 0 || (added as usize) < sent {
        return pushed(Some(format!(
            "HeyReach added or updated {added} of the {sent} leads in this batch ({failed} counted as failed) and does \
             not say which; the others were dropped"
        )));
    }
    pushed(None)
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
    fn profile_urls_are_normalised_and_non_profiles_refused() {
        for text in [
            "https://www.linkedin.com/in/jane-doe",
            "https://linkedin.com/in/jane-doe/",
            "linkedin.com/in/jane-doe?trk=x",
            "HTTP://de.linkedin.com/in/jane-doe",
            "www.linkedin.com/in/jane-doe/details",
        ] {
            assert_eq!(profile_url(text).as_deref(), Some("https://www.linkedin.com/in/jane-doe"), "{text}");
        }
        for text in [
            "jane-doe",
            "https://www.linkedin.com/company/acme",
            "https://evil.com/in/jane",
            "https://www.linkedin.com/in/",
            "",
        ] {
            assert_eq!(profile_url(text), None, "{text}");
        }
    }

    #[test]
    fn leads_map_to_heyreach_fields() {
        let mut custom = Map::new();
        custom.insert("location".into(), json!("Berlin"));
        custom.insert("ice breaker".into(), json!("Saw your talk"));
        custom.insert("tier".into(), json!(2));
        custom.insert("tags".into(), json!(["a", "b"]));
        custom.insert("empty".into(), Value::Null);
        let lead = stored(LeadFields {
            name: Some("Jane Doe".into()),
            email: Some("jane@acme.com".into()),
            company: Some("Acme".into()),
            position: Some("VP Sales".into()),
            linkedin: Some("linkedin.com/in/jane-doe/".into()),
            score: Some(7),
            notes: Some("internal".into()),
            custom_fields: custom,
            ..LeadFields::default()
        });
        let mapped = super::lead(&lead).unwrap();
        assert_eq!(
            mapped,
            json!({
                "firstName": "Jane", "lastName": "Doe", "profileUrl": "https://www.linkedin.com/in/jane-doe",
                "companyName": "Acme", "position": "VP Sales", "emailAddress": "jane@acme.com", "location": "Berlin",
                "customUserFields": [
                    {"name": "leadpush_id", "value": "req_1_0001"},
                    {"name": "score", "value": "7"},
                    {"name": "ice_breaker", "value": "Saw your talk"},
                    {"name": "tags", "value": "[\"a\",\"b\"]"},
                    {"name": "tier", "value": "2"},
                ]
            })
        );
        let no_url =
            stored(LeadFields { name: Some("Bob".into()), linkedin: Some("bob".into()), ..LeadFields::default() });
        assert_eq!(super::lead(&no_url), Err(NO_PROFILE_URL.to_owned()));
    }

    #[test]
    fn leads_without_a_first_and_last_name_are_refused_with_the_reason() {
        let with = |name: Option<&str>, first: Option<&str>, last: Option<&str>| {
            super::lead(&stored(LeadFields {
                name: name.map(str::to_owned),
                first_name: first.map(str::to_owned),
                last_name: last.map(str::to_owned),
                linkedin: Some("linkedin.com/in/x".into()),
                ..LeadFields::default()
            }))
        };
        let sent = with(Some("Mary Ann van Dyke"), None, None).unwrap();
        assert_eq!((&sent["firstName"], &sent["lastName"]), (&json!("Mary"), &json!("Ann van Dyke")));
        let sent = with(Some("Cher"), None, Some("Sarkisian")).unwrap();
        assert_eq!((&sent["firstName"], &sent["lastName"]), (&json!("Cher"), &json!("Sarkisian")));
        let one_word = with(Some("Cher"), None, None).unwrap_err();
        assert!(one_word.starts_with("no last name: `name` \"Cher\" is one word"), "{one_word}");
        assert!(with(None, Some("Jane"), None).unwrap_err().starts_with("no last name ("));
        assert!(with(None, None, Some("Doe")).unwrap_err().starts_with("no first name ("));
        assert_eq!(with(None, None, None), Err(NO_NAME.to_owned()));
    }

    #[test]
    fn custom_fields_named_like_ours_are_renamed_not_dropped() {
        let mut custom = Map::new();
        custom.insert("leadpush_id".into(), json!("spoofed"));
        custom.insert("score".into(), json!("A+"));
        let lead = stored(LeadFields {
            name: Some("Jane Doe".into()),
            linkedin: Some("linkedin.com/in/jane".into()),
            score: Some(3),
            custom_fields: custom,
            ..LeadFields::default()
        });
        assert_eq!(
            super::lead(&lead).unwrap()["customUserFields"],
            json!([
                {"name": "leadpush_id", "value": "req_1_0001"},
                {"name": "score", "value": "3"},
                {"name": "custom_leadpush_id", "value": "spoofed"},
                {"name": "custom_score", "value": "A+"},
            ])
        );
    }

    #[test]
    fn requests_go_to_the_list_endpoint_with_the_key_header() {
        let key: ProviderKey = serde_json::from_value(json!("hr-key")).unwrap();
        let request = request("http://127.0.0.1:9/api/public", &key, 614694, &[json!({"profileUrl": "x"})]);
        assert_eq!(request.url, "http://127.0.0.1:9/api/public/list/AddLeadsToListV2");
        assert!(request.headers.contains(&("X-API-KEY".into(), "hr-key".into())));
        let body: Value = serde_json::from_slice(request.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, json!({"listId": 614694, "leads": [{"profileUrl": "x"}]}));
    }

    #[test]
    fn answers_are_read_from_counts() {
        let pushed = LeadResult::Pushed { provider_lead_id: None, note: None };
        assert_eq!(
            accepted(2, r#"{"addedLeadsCount":1,"updatedLeadsCount":1,"failedLeadsCount":0}"#),
            vec![pushed.clone(); 2]
        );
        assert_eq!(accepted(2, r#"{"addedCount":2}"#), vec![pushed; 2]);
        assert!(
            matches!(&accepted(2, r#"{"addedLeadsCount":0,"updatedLeadsCount":0,"failedLeadsCount":0}"#)[1], LeadResult::Rejected(r) if r.contains("none of this batch"))
        );
        assert!(
            matches!(&accepted(3, r#"{"addedLeadsCount":2,"failedLeadsCount":1}"#)[0], LeadResult::Pushed { note: Some(n), .. } if n.contains("2 of the 3") && n.contains("1 counted as failed"))
        );
        assert!(matches!(&accepted(1, "12")[0], LeadResult::Pushed { note: Some(_), .. }));
    }
}
