//! Outbound webhook endpoints (the outbound-webhooks specification): configuration, secret
//! rotation, a test send, the delivery log and manual redelivery.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Accepted, Created, Data, Json, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, MAX_MANUAL_ATTEMPTS, Reopen};
use crate::domain::webhook::{
    EventType, MAX_HEADER_VALUE_CHARS, MAX_HEADERS, RESERVED_HEADERS, SigningSecret, Webhook, WebhookMethod,
    check_events, check_headers, check_name, mask_value,
};
use crate::repo::webhooks::{self, MAX_WEBHOOKS, SaveError};
use crate::repo::{UpdateError, deliveries, update_versioned};
use crate::support::ids;
use crate::support::secrets;
use crate::support::time::Timestamp;

/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWebhook {
    /// Unique within the workspace (1 to 200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: String,
    /// https; private and internal addresses are refused.
    #[schema(schema_with = super::docs::url)]
    url: String,
    /// POST (default), PUT or PATCH.
    method: Option<WebhookMethod>,
    /// Extra headers sent with every delivery, e.g. `Authorization`. Values are masked on reads.
    /// At most 20; names are HTTP tokens other than those Leadpush sets itself
    /// (`Content-Type`, `Webhook-Signature`, ...); values at most 2048 characters, no
    /// control characters.
    #[serde(default)]
    #[schema(schema_with = webhook_headers)]
    headers: BTreeMap<String, String>,
    /// Default true.
    enabled: Option<bool>,
    /// Default `["save_lead"]`.
    #[schema(min_items = 1)]
    events: Option<Vec<EventType>>,
}

/// Configured delivery headers (`domain::webhook::check_headers`).
fn webhook_headers() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_HEADER_VALUE_CHARS))
        .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"));
    let reserved = RESERVED_HEADERS.map(super::docs::any_case).join("|");
    let mut name =
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")).build();
    name.extensions
        .get_or_insert_with(Default::default)
        .insert("not".into(), serde_json::json!({ "pattern": format!("^({reserved})$") }));
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(value.build().into())))
        .max_properties(Some(MAX_HEADERS))
        .build();
    schema.property_names = Some(Box::new(name.into()));
    schema
}

fn webhook_headers_or_null() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = webhook_headers();
    schema.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    schema
}

/// Every field optional; `headers` replaces all headers.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateWebhook {
    #[schema(schema_with = super::docs::name_200_or_null)]
    name: Option<String>,
    #[schema(schema_with = super::docs::url_or_null)]
    url: Option<String>,
    method: Option<WebhookMethod>,
    /// As on create.
    #[schema(schema_with = webhook_headers_or_null)]
    headers: Option<BTreeMap<String, String>>,
    /// `true` re-enables an endpoint that was disabled automatically.
    enabled: Option<bool>,
    #[schema(min_items = 1)]
    events: Option<Vec<EventType>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    id: String,
    name: String,
    url: String,
    method: WebhookMethod,
    /// Values masked: only their last four characters show.
    headers: BTreeMap<String, String>,
    enabled: bool,
    events: Vec<EventType>,
    /// Why the endpoint was switched off automatically, if it was.
    disabled_reason: Option<String>,
    /// Deliveries in a row that failed every retry.
    failure_streak: u32,
    failing_since: Option<Timestamp>,
    /// The signing secret, masked.
    secret_hint: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.clone(),
            name: w.name.clone(),
            url: w.url.clone(),
            method: w.method,
            headers: w.headers.iter().map(|(k, v)| (k.clone(), mask_value(v))).collect(),
            enabled: w.enabled,
            events: w.events.clone(),
            disabled_reason: w.disabled_reason.clone(),
            failure_streak: w.failure_streak,
            failing_since: w.failing_since,
            secret_hint: secrets::mask(&w.signing.secret),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// Creation and rotation answers: the only times the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_...`: verify deliveries with it (Standard Webhooks). Shown only now.
    secret: String,
}

fn not_found() -> ApiError {
    ApiError::not_found("webhook_not_found", "Webhook not found in this workspace.")
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict("conflict", format!("A webhook named \"{name}\" already exists in this workspace."))
}

/// Checks a webhook URL, resolving its host now (see `Outbound::check_url_resolved`).
async fn check_url(ctx: &AppContext, url: &str) -> Result<String, ApiError> {
    let checked = ctx.outbound.check_url_resolved(url).await;
    checked.map(|u| u.to_string()).map_err(|e| ApiError::validation("url", e.to_string()))
}

async fn load(ctx: &AppContext, workspace_id: &str, id: &str) -> Result<(Webhook, u64), ApiError> {
    if !ids::has_prefix(id, ids::WEBHOOK) {
        return Err(not_found());
    }
    webhooks::get(&*ctx.store, workspace_id, id).await?.ok_or_else(not_found)
}

/// Create an endpoint. The answer carries its signing secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("api_key" = [])),
    request_body = CreateWebhook,
    responses((status = 201, body = DataOf<WebhookWithSecret>), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`conflict`: the name is taken")))]
async fn create_webhook(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Json(body): Json<CreateWebhook>,
) -> Result<Created<WebhookWithSecret>, ApiError> {
    let name = check_name(&body.name)?;
    let url = check_url(&ctx, &body.url).await?;
    check_headers(&body.headers)?;
    let events = check_events(&body.events.unwrap_or_else(|| vec![EventType::SaveLead]))?;
    let now = ctx.now();
    let webhook = Webhook {
        id: ids::new_id(ids::WEBHOOK),
        name,
        url,
        method: body.method.unwrap_or(WebhookMethod::Post),
        headers: body.headers,
        enabled: body.enabled.unwrap_or(true),
        events,
        signing: SigningSecret::new(secrets::generate_signing_secret()),
        failure_streak: 0,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    webhooks::create(&*ctx.store, &caller.workspace_id, &webhook).await.map_err(|e| match e {
        SaveError::NameTaken => name_taken(&webhook.name),
        SaveError::LimitReached => {
            ApiError::conflict("limit_reached", format!("A workspace can have at most {MAX_WEBHOOKS} webhooks."))
        }
        SaveError::Store(e) => e.into(),
        SaveError::Conflict | SaveError::Missing => {
            ApiError::conflict("conflict", "Webhooks are being created concurrently; retry.")
        }
    })?;
    tracing::info!(webhook_id = webhook.id, "webhook created");
    Ok(Created(WebhookWithSecret { webhook: WebhookView::from(&webhook), secret: webhook.signing.secret.clone() }))
}

/// List endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("api_key" = [])), params(Pagination),
    responses((status = 200, body = ListOf<WebhookView>), (status = 401, body = ErrorBody)))]
async fn list_webhooks(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(page): Params<Pagination>,
) -> Result<List<WebhookView>, ApiError> {
    let result = webhooks::list(&*ctx.store, &caller.workspace_id, page.limit()?, page.cursor()?).await?;
    List::from_page(result, |item| item.parse::<Webhook>().map(|w| WebhookView::from(&w)))
}

/// Get one endpoint (secret and header values masked).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DataOf<WebhookView>), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<WebhookView>, ApiError> {
    let (webhook, _) = load(&ctx, &caller.workspace_id, &id).await?;
    Ok(Data(WebhookView::from(&webhook)))
}

/// Change an endpoint. `enabled: true` re-enables one that was disabled automatically.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")), request_body = UpdateWebhook,
    responses((status = 200, body = DataOf<WebhookView>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn update_webhook(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Json(body): Json<UpdateWebhook>,
) -> Result<Data<WebhookView>, ApiError> {
    let name = body.name.as_deref().map(check_name).transpose()?;
    let url = match body.url.as_deref() {
        Some(u) => Some(check_url(&ctx, u).await?),
        None => None,
    };
    if let Some(headers) = &body.headers {
        check_headers(headers)?;
    }
    let events = body.events.as_deref().map(check_events).transpose()?;
    for _ in 0..10 {
        let (mut webhook, version) = load(&ctx, &caller.workspace_id, &id).await?;
        let old_name = webhook.name.clone();
        let now = ctx.now();
        if let Some(name) = &name {
            webhook.name = name.clone();
        }
        if let Some(url) = &url {
            webhook.url = url.clone();
        }
        if let Some(method) = body.method {
            webhook.method = method;
        }
        if let Some(headers) = &body.headers {
            webhook.headers = headers.clone();
        }
        if let Some(events) = &events {
            webhook.events = events.clone();
        }
        if let Some(enabled) = body.enabled {
            webhook.set_enabled(enabled, now);
        }
        webhook.updated_at = now;
        match webhooks::save(&*ctx.store, &caller.workspace_id, &webhook, &old_name, version).await {
            Ok(()) => return Ok(Data(WebhookView::from(&webhook))),
            // `save` never creates, so never meets the cap.
            Err(SaveError::Conflict | SaveError::LimitReached) => continue,
            Err(SaveError::NameTaken) => return Err(name_taken(&webhook.name)),
            Err(SaveError::Missing) => return Err(not_found()),
            Err(SaveError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The webhook is being changed concurrently; retry."))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    id: String,
    deleted: bool,
}

/// Delete an endpoint. Deliveries still queued for it are recorded as failed.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DataOf<Deleted>), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Deleted>, ApiError> {
    if !ids::has_prefix(&id, ids::WEBHOOK) || !webhooks::delete(&*ctx.store, &caller.workspace_id, &id).await? {
        return Err(not_found());
    }
    tracing::info!(webhook_id = id, "webhook deleted");
    Ok(Data(Deleted { id, deleted: true }))
}

/// Replace the signing secret. The old one also signs for 24 hours, so receivers can
/// switch over; the new one is shown only now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DataOf<WebhookWithSecret>), (status = 404, body = ErrorBody)))]
async fn rotate_secret(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<WebhookWithSecret>, ApiError> {
    if !ids::has_prefix(&id, ids::WEBHOOK) {
        return Err(not_found());
    }
    let now = ctx.now();
    let key = webhooks::key(&caller.workspace_id, &id);
    let rotated = update_versioned(
        &*ctx.store,
        &key,
        |w: &mut Webhook| {
            w.rotate_secret(secrets::generate_signing_secret(), ROTATION_GRACE, now);
            Ok::<_, std::convert::Infallible>(())
        },
        |w| webhooks::item(&caller.workspace_id, w),
    )
    .await
    .map_err(|e| match e {
        UpdateError::NotFound => not_found(),
        UpdateError::Store(e) => e.into(),
        UpdateError::Rejected(never) => match never {},
    })?;
    tracing::info!(webhook_id = id, "webhook secret rotated");
    Ok(Data(WebhookWithSecret { webhook: WebhookView::from(&rotated), secret: rotated.signing.secret.clone() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    delivered: bool,
    status_code: Option<u16>,
    duration_ms: u64,
    /// The start of the receiver's answer (at most 1 KB).
    response: Option<String>,
    error: Option<String>,
    /// The sample payload that was sent.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

/// Send a sample `save_lead` now, signed as a real delivery, and report the receiver's
/// answer. Works on disabled endpoints too (to check a fix); not logged as a delivery.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DataOf<TestResult>), (status = 404, body = ErrorBody)))]
async fn test_webhook(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<TestResult>, ApiError> {
    let (webhook, _) = load(&ctx, &caller.workspace_id, &id).await?;
    let (result, payload) =
        crate::webhooks::sample::send_sample(&ctx.outbound, &webhook, ctx.now()).await.map_err(ApiError::internal)?;
    Ok(Data(TestResult {
        delivered: result.delivered,
        status_code: result.status_code,
        duration_ms: result.duration.as_millis() as u64,
        response: result.response,
        error: result.error,
        payload,
    }))
}

/// A delivery as the log shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    id: String,
    webhook_id: String,
    event: String,
    /// The `webhook-id` header, the same on every attempt.
    message_id: String,
    lead_id: Option<String>,
    /// For callbacks: where it goes.
    target_url: Option<String>,
    status: DeliveryStatus,
    /// Attempts made so far.
    attempt_count: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    next_attempt_at: Option<Timestamp>,
    attempts: Vec<Attempt>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let last = d.attempts.last();
        DeliveryView {
            attempt_count: d.attempts_made(),
            last_status_code: last.and_then(|a| a.status_code),
            last_error: last.and_then(|a| a.error.clone()),
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event,
            message_id: d.message_id,
            lead_id: d.lead_id,
            target_url: d.target_url,
            status: d.status,
            next_attempt_at: d.next_attempt_at,
            attempts: d.attempts,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// Lists one endpoint's (or the callbacks') deliveries, newest first.
pub(crate) async fn delivery_log(
    ctx: &AppContext,
    workspace_id: &str,
    webhook_id: &str,
    page: &Pagination,
) -> Result<List<DeliveryView>, ApiError> {
    let result = deliveries::list(&*ctx.store, workspace_id, webhook_id, page.limit()?, page.cursor()?).await?;
    // Past retention a record is gone, even while DynamoDB's TTL has not removed it yet.
    let now = ctx.now();
    let list = List::from_page(result, |item| item.parse::<Delivery>())?;
    let data = list.data.into_iter().filter(|d| !d.is_expired(now)).map(DeliveryView::from).collect();
    Ok(List { data, next_cursor: list.next_cursor })
}

/// The delivery log: event, attempts with status code, duration, response and error, and
/// the next scheduled attempt. Kept 30 days.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id"), Pagination),
    responses((status = 200, body = ListOf<DeliveryView>), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Params(page): Params<Pagination>,
) -> Result<List<DeliveryView>, ApiError> {
    load(&ctx, &caller.workspace_id, &id).await?;
    delivery_log(&ctx, &caller.workspace_id, &id, &page).await
}

/// Redeliver a settled delivery now: one attempt, recorded in its log. A delivery may be
/// redelivered by hand at most 20 times; records past their 30-day retention are gone (404).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Webhook id"), ("delivery_id" = String, Path, description = "Delivery id")),
    responses((status = 202, body = DataOf<DeliveryView>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`delivery_pending` (still being retried automatically), `webhook_disabled`, or `redelivery_limit_reached` (20 manual redeliveries per delivery)")))]
async fn retry_delivery(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Accepted<DeliveryView>, ApiError> {
    let (webhook, _) = load(&ctx, &caller.workspace_id, &id).await?;
    if !webhook.enabled {
        return Err(ApiError::conflict(
            "webhook_disabled",
            "This webhook is disabled; enable it (PATCH enabled: true) before redelivering.",
        ));
    }
    let missing = || ApiError::not_found("delivery_not_found", "Delivery not found for this webhook.");
    if !ids::has_prefix(&delivery_id, ids::DELIVERY) {
        return Err(missing());
    }
    let key = deliveries::key(&caller.workspace_id, &id, &delivery_id);
    let now = ctx.now();
    let reopened = update_versioned(
        &*ctx.store,
        &key,
        |d: &mut Delivery| {
            d.reopen(now).map_err(|why| match why {
                Reopen::Gone => missing(),
                Reopen::Pending => ApiError::conflict(
                    "delivery_pending",
                    "This delivery is still being retried automatically; wait for it to settle.",
                ),
                Reopen::LimitReached => ApiError::conflict(
                    "redelivery_limit_reached",
                    format!(
                        "This delivery was redelivered by hand {MAX_MANUAL_ATTEMPTS} times already, the most one \
                         delivery may be; fix the endpoint, then send the lead again with a push."
                    ),
                ),
            })
        },
        |d| deliveries::item(&caller.workspace_id, d),
    )
    .await
    .map_err(|e| match e {
        UpdateError::NotFound => missing(),
        UpdateError::Rejected(e) => e,
        UpdateError::Store(e) => e.into(),
    })?;
    crate::webhooks::enqueue(&ctx, &caller.workspace_id, std::slice::from_ref(&reopened), true)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(webhook_id = id, delivery_id, "manual redelivery queued");
    Ok(Accepted(DeliveryView::from(reopened)))
}
