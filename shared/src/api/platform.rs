//! Health, the OpenAPI document, and the calling workspace.

use axum::Json as AxumJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody};
use crate::api::error::ApiError;
use crate::api::json::Data;
use crate::context::AppContext;
use crate::domain::workspace::Workspace;
use crate::repo::workspaces;
use crate::store::Key;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(openapi_json)).routes(routes!(current_workspace))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    store: &'static str,
    queue: &'static str,
    version: &'static str,
}

/// Liveness and store reachability (checked at most every 5 s per instance); no authentication.
#[utoipa::path(get, path = "/healthz", tag = "platform",
    responses((status = 200, body = DataOf<Health>), (status = 503, body = ErrorBody)))]
async fn healthz(State(ctx): State<AppContext>) -> Response {
    let health =
        Health { status: "ok", store: ctx.store.kind(), queue: ctx.queue.kind(), version: env!("CARGO_PKG_VERSION") };
    if store_reachable(&ctx).await {
        Data(health).into_response()
    } else {
        let body = serde_json::json!({"error": {"code": "unavailable", "message": "The store is unreachable."}});
        (StatusCode::SERVICE_UNAVAILABLE, AxumJson(body)).into_response()
    }
}

/// How long one store check answers `/healthz` for. The route is unauthenticated: without
/// this, every call (a load balancer's, a flood's) would read one item, on DynamoDB the
/// same item (a strongly consistent read) from every instance.
const HEALTH_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The last store check of this process: when, and whether the store answered.
static LAST_CHECK: std::sync::Mutex<Option<(std::time::Instant, bool)>> = std::sync::Mutex::new(None);

async fn store_reachable(ctx: &AppContext) -> bool {
    let cached = *LAST_CHECK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, ok)) = cached.filter(|(at, _)| at.elapsed() < HEALTH_CHECK_EVERY) {
        return ok;
    }
    let ok = match ctx.store.get(&Key::new("HEALTH", "HEALTH")).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            false
        }
    };
    *LAST_CHECK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((std::time::Instant::now(), ok));
    ok
}

/// This document. With private targets allowed (local runs and tests), its URL rules say
/// what the server then takes: http too, and any host and port.
#[utoipa::path(get, path = "/openapi.json", tag = "platform", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json(State(ctx): State<AppContext>) -> Response {
    // The committed document (`docs::OPENAPI_DOCUMENT`), compacted once per process and mode.
    static GUARDED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static LOCAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let allow_private = ctx.config.allow_private_targets;
    let body =
        if allow_private { &LOCAL } else { &GUARDED }.get_or_init(|| super::docs::served_document(allow_private));
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

/// The workspace the API key belongs to.
#[utoipa::path(get, path = "/api/v1/workspace", tag = "platform", security(("api_key" = [])),
    responses((status = 200, body = DataOf<Workspace>), (status = 401, body = ErrorBody)))]
async fn current_workspace(State(ctx): State<AppContext>, caller: ApiCaller) -> Result<Data<Workspace>, ApiError> {
    let workspace = workspaces::get_workspace(&*ctx.store, &caller.workspace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace_not_found", "This API key's workspace no longer exists."))?;
    Ok(Data(workspace))
}
