//! `?webhook_url=` callbacks (the outbound-webhooks specification): a route that supports
//! them answers as usual, and the same response body is POSTed to the URL asynchronously,
//! signed with the workspace's callback secret, SSRF-checked and retried like any delivery.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use super::webhooks::{DeliveryView, ROTATION_GRACE, delivery_log};
use crate::api::error::ApiError;
use crate::api::json::{Data, List, Pagination, Params};
use crate::context::AppContext;
use crate::repo::webhooks;
use crate::support::time::Timestamp;
use crate::webhooks::{CALLBACK, queue_callback};

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(issue_secret)).routes(routes!(list_callback_deliveries))
}

/// The query parameter, for the OpenAPI document of routes that support it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// https URL that also receives this response, asynchronously (signed, retried).
    #[param(inline, value_type = Option<super::docs::OptionalUrlParam>)]
    pub webhook_url: Option<String>,
}

/// A checked callback URL, or none. Refuses a bad URL with 400 before the route does work.
#[derive(Debug, Clone, Default)]
pub struct Callback(pub Option<String>);

impl FromRequestParts<AppContext> for Callback {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        let Params(query) = Params::<CallbackQuery>::from_request_parts(parts, ctx).await?;
        let Some(url) = query.webhook_url.filter(|u| !u.is_empty()) else { return Ok(Callback(None)) };
        let checked = ctx.outbound.check_url(&url).map_err(|e| ApiError::validation("webhook_url", e.to_string()))?;
        Ok(Callback(Some(checked.to_string())))
    }
}

impl Callback {
    /// Queues `{"data": data}` for the callback URL, if one was given. Runs after the route's
    /// work succeeded, so a failure to queue is logged rather than turned into an error.
    pub async fn send(&self, ctx: &AppContext, workspace_id: &str, event: &str, data: &impl Serialize) {
        let Some(url) = &self.0 else { return };
        if let Err(e) = queue_callback(ctx, workspace_id, url, event, data).await {
            tracing::error!(workspace_id, event, error = %e, "callback could not be queued");
        }
    }

    /// The checked URL, for work that finishes later and sends the callback itself.
    pub fn url(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackSecretView {
    /// `whsec_...`: verify callbacks with it (Standard Webhooks). Shown only now.
    secret: String,
    /// The previous secret also signs until then.
    previous_valid_until: Option<Timestamp>,
}

/// Issue a new signing secret for `?webhook_url=` callbacks; the previous one keeps signing
/// for 24 hours. Call it once to learn the secret before relying on callbacks.
#[utoipa::path(post, path = "/api/v1/callbacks/secret", tag = "webhooks", security(("api_key" = [])),
    responses((status = 200, body = DataOf<CallbackSecretView>), (status = 401, body = ErrorBody)))]
async fn issue_secret(State(ctx): State<AppContext>, caller: ApiCaller) -> Result<Data<CallbackSecretView>, ApiError> {
    let rotated =
        webhooks::rotate_callback_secret(&*ctx.store, &caller.workspace_id, ROTATION_GRACE, ctx.now()).await?;
    tracing::info!("callback secret issued");
    Ok(Data(CallbackSecretView {
        secret: rotated.signing.secret,
        previous_valid_until: rotated.signing.previous_secret_until,
    }))
}

/// The log of `?webhook_url=` callbacks, newest first (kept 30 days).
#[utoipa::path(get, path = "/api/v1/callbacks/deliveries", tag = "webhooks", security(("api_key" = [])),
    params(Pagination), responses((status = 200, body = ListOf<DeliveryView>), (status = 401, body = ErrorBody)))]
async fn list_callback_deliveries(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(page): Params<Pagination>,
) -> Result<List<DeliveryView>, ApiError> {
    delivery_log(&ctx, &caller.workspace_id, CALLBACK, &page).await
}
