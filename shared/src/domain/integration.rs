//! Provider integrations: a workspace's HeyReach or Instantly API key and where pushed leads
//! go (a HeyReach list, an Instantly campaign). The key is needed in clear to call the
//! provider, so it is stored as given; it is never returned or logged, only its mask.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ValidationError;
use super::lead::json_type;
use crate::support::time::Timestamp;

pub const MAX_API_KEY_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Heyreach,
    Instantly,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Heyreach, Provider::Instantly];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Heyreach => "heyreach",
            Provider::Instantly => "instantly",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Heyreach => "HeyReach",
            Provider::Instantly => "Instantly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// What a PUT body must hold, for error messages.
    pub fn required_body(self) -> &'static str {
        match self {
            Provider::Heyreach => r#"{"api_key": "...", "list_id": <HeyReach list id>}"#,
            Provider::Instantly => r#"{"api_key": "...", "campaign_id": "<Instantly campaign UUID>"}"#,
        }
    }
}

/// A provider API key. Serialises as itself (for the store) but never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderKey(String);

impl ProviderKey {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        crate::support::secrets::mask(&self.0)
    }
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderKey({})", self.masked())
    }
}

/// A configured integration, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    pub provider: Provider,
    pub api_key: ProviderKey,
    /// HeyReach: the lead list pushed leads are added to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<i64>,
    /// Instantly: the campaign pushed leads are added to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The body of `PUT /api/v1/integrations/{provider}`, before validation. Loosely typed so
/// that a wrong type gets a message naming the field and what it should be.
#[derive(Debug, Default, Deserialize)]
pub struct IntegrationInput {
    pub api_key: Option<Value>,
    pub list_id: Option<Value>,
    pub campaign_id: Option<Value>,
}

fn api_key(value: Option<&Value>) -> Result<ProviderKey, ValidationError> {
    let text = match value {
        None | Some(Value::Null) => return Err(ValidationError::new("api_key", "is required")),
        Some(Value::String(s)) => s.trim(),
        Some(other) => {
            return Err(ValidationError::new("api_key", format!("must be a string, got {}", json_type(other))));
        }
    };
    if text.is_empty() {
        return Err(ValidationError::new("api_key", "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_API_KEY_CHARS {
        return Err(ValidationError::new("api_key", format!("must be at most {MAX_API_KEY_CHARS} characters")));
    }
    // It travels in an HTTP header: printable ASCII without spaces.
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new("api_key", "may contain only printable ASCII characters without spaces"));
    }
    Ok(ProviderKey(text.to_owned()))
}

fn list_id(value: Option<&Value>) -> Result<i64, ValidationError> {
    match value {
        None | Some(Value::Null) => Err(ValidationError::new("list_id", "is required (the HeyReach lead list id)")),
        // `614694.0` is an integer too, as JSON Schema counts it (and as a lead's `score` is read).
        Some(Value::Number(n)) => {
            match n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)) {
                Some(id) if id > 0 => Ok(id),
                _ => Err(ValidationError::new("list_id", format!("must be a positive integer, got {n}"))),
            }
        }
        Some(other) => Err(ValidationError::new(
            "list_id",
            format!("must be an integer (the HeyReach lead list id), got {}", json_type(other)),
        )),
    }
}

/// `8-4-4-4-12` hexadecimal digits, as Instantly's ids are.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn campaign_id(value: Option<&Value>) -> Result<String, ValidationError> {
    match value {
        None | Some(Value::Null) => {
            Err(ValidationError::new("campaign_id", "is required (the Instantly campaign UUID)"))
        }
        Some(Value::String(s)) if is_uuid(s.trim()) => Ok(s.trim().to_ascii_lowercase()),
        Some(Value::String(s)) => Err(ValidationError::new(
            "campaign_id",
            format!(
                "`{}` is not a UUID (e.g. 0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a)",
                s.chars().take(60).collect::<String>()
            ),
        )),
        Some(other) => {
            Err(ValidationError::new("campaign_id", format!("must be a UUID string, got {}", json_type(other))))
        }
    }
}

impl Integration {
    /// Validates a PUT body into an integration; `existing` keeps its creation time.
    pub fn configure(
        provider: Provider,
        input: &IntegrationInput,
        existing: Option<&Integration>,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let api_key = api_key(input.api_key.as_ref())?;
        // The other provider's field is not used, but it is checked when given: each field
        // has one format whichever the provider, as the API document states it.
        let given = |value: &Option<Value>| value.as_ref().is_some_and(|v| !v.is_null());
        match provider {
            Provider::Heyreach if given(&input.campaign_id) => {
                campaign_id(input.campaign_id.as_ref())?;
            }
            Provider::Instantly if given(&input.list_id) => {
                list_id(input.list_id.as_ref())?;
            }
            _ => {}
        }
        let (list_id, campaign_id) = match provider {
            Provider::Heyreach => (Some(list_id(input.list_id.as_ref())?), None),
            Provider::Instantly => (None, Some(campaign_id(input.campaign_id.as_ref())?)),
        };
        Ok(Integration {
            provider,
            api_key,
            list_id,
            campaign_id,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(value: Value) -> IntegrationInput {
        serde_json::from_value(value).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-05-02T12:00:00Z").unwrap()
    }

    #[test]
    fn heyreach_needs_a_key_and_an_integer_list_id() {
        let ok = Integration::configure(
            Provider::Heyreach,
            &input(json!({"api_key": " hr-key-123456789 ", "list_id": 614694})),
            None,
            now(),
        )
        .unwrap();
        assert_eq!((ok.api_key.expose(), ok.list_id, ok.campaign_id), ("hr-key-123456789", Some(614694), None));
        let whole = Integration::configure(
            Provider::Heyreach,
            &input(json!({"api_key": "k", "list_id": 614694.0})),
            None,
            now(),
        );
        assert_eq!(whole.unwrap().list_id, Some(614694), "a whole number written with a fraction is an integer");
        for (body, field) in [
            (json!({"list_id": 1}), "api_key"),
            (json!({"api_key": "", "list_id": 1}), "api_key"),
            (json!({"api_key": "a b", "list_id": 1}), "api_key"),
            (json!({"api_key": 7, "list_id": 1}), "api_key"),
            (json!({"api_key": "k"}), "list_id"),
            (json!({"api_key": "k", "list_id": "614694"}), "list_id"),
            (json!({"api_key": "k", "list_id": 1.5}), "list_id"),
            (json!({"api_key": "k", "list_id": 0.0}), "list_id"),
            (json!({"api_key": "k", "list_id": -3}), "list_id"),
        ] {
            let e = Integration::configure(Provider::Heyreach, &input(body.clone()), None, now()).unwrap_err();
            assert_eq!(e.field, field, "{body}");
        }
    }

    #[test]
    fn the_other_providers_field_is_checked_when_given_and_not_stored() {
        let heyreach = json!({"api_key": "k", "list_id": 1, "campaign_id": "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a"});
        let ok = Integration::configure(Provider::Heyreach, &input(heyreach), None, now()).unwrap();
        assert_eq!((ok.list_id, ok.campaign_id), (Some(1), None));
        let ok = Integration::configure(
            Provider::Heyreach,
            &input(json!({"api_key": "k", "list_id": 1, "campaign_id": null})),
            None,
            now(),
        );
        assert!(ok.is_ok());
        let e = Integration::configure(
            Provider::Heyreach,
            &input(json!({"api_key": "k", "list_id": 1, "campaign_id": "x"})),
            None,
            now(),
        )
        .unwrap_err();
        assert_eq!(e.field, "campaign_id");
        let instantly = json!({"api_key": "k", "campaign_id": "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a", "list_id": 0});
        let e = Integration::configure(Provider::Instantly, &input(instantly), None, now()).unwrap_err();
        assert_eq!(e.field, "list_id");
    }

    #[test]
    fn instantly_needs_a_campaign_uuid() {
        let body = json!({"api_key": "k", "campaign_id": "0195E2A4-6F1C-7B1E-9C55-3F2A8D1E4B7A"});
        let ok = Integration::configure(Provider::Instantly, &input(body), None, now()).unwrap();
        assert_eq!(ok.campaign_id.as_deref(), Some("0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a"));
        for body in [
            json!({"api_key": "k"}),
            json!({"api_key": "k", "campaign_id": "camp-1"}),
            json!({"api_key": "k", "campaign_id": 5}),
        ] {
            let e = Integration::configure(Provider::Instantly, &input(body.clone()), None, now()).unwrap_err();
            assert_eq!(e.field, "campaign_id", "{body}");
        }
    }

    #[test]
    fn keys_never_print() {
        let key = ProviderKey("secret-key-abcdef-WXYZ".into());
        assert_eq!(format!("{key:?}"), "ProviderKey(****WXYZ)");
        assert_eq!(serde_json::to_value(&key).unwrap(), json!("secret-key-abcdef-WXYZ"));
    }
}
