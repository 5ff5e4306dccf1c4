//! Workspaces (organisations) and the credentials that map to them.

use serde::{Deserialize, Serialize};

use crate::support::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// What kind of credential a stored hash belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `X-Satellyte-API-Key`: the public API.
    ApiKey,
    /// `Authorization: Bearer`: the inbound campaign webhook only.
    WebhookToken,
}

impl CredentialKind {
    pub fn id_prefix(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => crate::support::ids::API_KEY,
            CredentialKind::WebhookToken => crate::support::ids::WEBHOOK_TOKEN,
        }
    }

    pub fn secret_prefix(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => crate::support::secrets::API_KEY_PREFIX,
            CredentialKind::WebhookToken => crate::support::secrets::WEBHOOK_TOKEN_PREFIX,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "API key",
            CredentialKind::WebhookToken => "webhook token",
        }
    }
}

/// A stored credential: never the secret itself, only its hash and a masked hint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub kind: CredentialKind,
    pub workspace_id: String,
    pub hash: String,
    /// The masked secret, e.g. `lp_wht_****abcd`.
    pub hint: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
}
