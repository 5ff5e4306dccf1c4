//! Authentication: `X-Satellyte-API-Key` for the public API, the organisation's webhook
//! token (`Authorization: Bearer`, or `X-Satellyte-Webhook-Token`) for inbound leads.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::context::AppContext;
use crate::domain::workspace::{Credential, CredentialKind};
use crate::error::ApiError;
use crate::repo::workspaces;

pub const API_KEY_HEADER: &str = "x-satellyte-api-key";
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
        Ok(ApiCaller { workspace_id: credential.workspace_id, key_id: credential.id })
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
        Ok(WebhookCaller { workspace_id: credential.workspace_id, token_id: credential.id })
    }
}
