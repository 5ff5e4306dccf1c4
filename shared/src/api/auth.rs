//! Authentication: `X-Satellyte-API-Key` for the public API, the organisation's webhook
//! token (`Authorization: Bearer`, or `X-Satellyte-Webhook-Token`) for inbound leads.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::api::error::ApiError;
use crate::context::AppContext;
use crate::domain::workspace::{Credential, CredentialKind};
use crate::repo::workspaces;

pub const API_KEY_HEADER: &str = "x-satellyte-api-key";

/// A request extension `leadpush serve`'s listener sets: told which workspace the request
/// authenticated as, so that the connection is protected from shedding only once its
/// credential is known to be real, and only up to that workspace's share.
#[derive(Clone)]
pub struct OnAuthenticated(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

fn authenticated(parts: &Parts, workspace_id: &str) {
    if let Some(hook) = parts.extensions.get::<OnAuthenticated>() {
        (hook.0)(workspace_id);
    }
}
pub const WEBHOOK_TOKEN_HEADER: &str = "x-satellyte-webhook-token";

/// The authenticated caller of a public API route.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub workspace_id: String,
    pub key_id: String,
}

/// The organisation behind an inbound webhook token.
#[derive(Debug, Clone)]
pub struct WebhookCaller {
    pub workspace_id: String,
    pub token_id: String,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

async fn authenticate(ctx: &AppContext, kind: CredentialKind, secret: &str) -> Result<Credential, ApiError> {
    let credential = workspaces::authenticate(&*ctx.store, kind, secret).await?;
    let credential = credential.ok_or(ApiError::Unauthorized(match kind {
        CredentialKind::ApiKey => "Invalid or revoked API key.",
        CredentialKind::WebhookToken => "Invalid or revoked webhook token.",
    }))?;
    tracing::Span::current().record("workspace_id", credential.workspace_id.as_str());
    Ok(credential)
}

impl FromRequestParts<AppContext> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        let key = header_text(&parts.headers, API_KEY_HEADER)
            .ok_or(ApiError::Unauthorized("Missing X-Satellyte-API-Key header."))?;
        let credential = authenticate(ctx, CredentialKind::ApiKey, key).await?;
        authenticated(parts, &credential.workspace_id);
        Ok(ApiCaller { workspace_id: credential.workspace_id, key_id: credential.id })
    }
}

/// The caller of a Hunter-compatible route (`/email-verifier`, `/phone-validator`, ...):
/// `X-Satellyte-API-Key` as everywhere, or Hunter's `X-API-KEY` header, `Authorization:
/// Bearer <key>` or `?api_key=` query parameter. The request log never records the query
/// string, so a key sent there is not written down; responses never echo it.
#[derive(Debug, Clone)]
pub struct HunterCaller {
    pub workspace_id: String,
    pub key_id: String,
}

pub const HUNTER_KEY_HEADER: &str = "x-api-key";
pub const HUNTER_KEY_PARAM: &str = "api_key";

/// The `api_key` query parameter, if any.
pub fn query_api_key(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == HUNTER_KEY_PARAM)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<AppContext> for HunterCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        let bearer = header_text(&parts.headers, header::AUTHORIZATION.as_str()).and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        });
        let key = header_text(&parts.headers, API_KEY_HEADER)
            .or_else(|| header_text(&parts.headers, HUNTER_KEY_HEADER))
            .map(str::to_owned)
            .or(bearer)
            .or_else(|| query_api_key(parts))
            .ok_or(ApiError::Unauthorized(
                "Missing API key: send X-Satellyte-API-Key (or X-API-KEY, or the api_key query parameter).",
            ))?;
        let credential = authenticate(ctx, CredentialKind::ApiKey, &key).await?;
        authenticated(parts, &credential.workspace_id);
        Ok(HunterCaller { workspace_id: credential.workspace_id, key_id: credential.id })
    }
}

impl FromRequestParts<AppContext> for WebhookCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        let bearer = header_text(&parts.headers, header::AUTHORIZATION.as_str()).and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let token =
            bearer.or_else(|| header_text(&parts.headers, WEBHOOK_TOKEN_HEADER)).ok_or(ApiError::Unauthorized(
                "Missing webhook token: send `Authorization: Bearer <token>` (ask your CSM for a token).",
            ))?;
        let credential = authenticate(ctx, CredentialKind::WebhookToken, token).await?;
        authenticated(parts, &credential.workspace_id);
        Ok(WebhookCaller { workspace_id: credential.workspace_id, token_id: credential.id })
    }
}
