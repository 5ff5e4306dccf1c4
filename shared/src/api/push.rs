//! Pushing leads out (the push-leads specification): `POST /api/v1/leads/push` to a webhook
//! URL, HeyReach or Instantly, and `GET /api/v1/pushes/{push_id}` to follow retries and
//! per-lead outcomes.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::callbacks::{Callback, CallbackQuery};
use super::docs::{DataOf, ErrorBody};
use super::metering::Metered;
use crate::api::error::ApiError;
use crate::api::json::{Data, Json, Path};
use crate::context::AppContext;
use crate::domain::push::{Destination, MAX_LEAD_IDS, Push, PushSummary, distinct_lead_ids};
use crate::metering::Work;
use crate::push;
use crate::repo::pushes;
use crate::repo::ranked::{self, RankError};
use crate::support::ids;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(push_leads)).routes(routes!(get_push)).routes(routes!(push_top))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushRequest {
    /// 1 to 1000 lead ids of this workspace; a repeated id is pushed once. Ids that are not
    /// this workspace's leads come back in `missing_lead_ids`.
    #[schema(min_items = 1, max_items = 1000)]
    lead_ids: Vec<String>,
    /// `webhook_url`, `heyreach` or `instantly` (the last two need `PUT /api/v1/integrations/{provider}`).
    destination: Destination,
    /// Required when `destination` is `webhook_url` (`oneOf`), and ignored otherwise: an
    /// https URL on a public address (ports 443/80). It receives one JSON POST with every
    /// stored field of the leads.
    webhook_url: Option<String>,
}

/// [`PushRequest`] with its rule across fields (`oneOf`): `destination: webhook_url` needs
/// a `webhook_url` the SSRF guard takes; `heyreach` and `instantly` ignore it.
/// A request type with `destination` and `webhook_url`, documented as the type itself and
/// either a `webhook_url` destination with its URL or a provider.
macro_rules! with_destination {
    ($body:ident, $request:ty) => {
        struct $body;

        impl utoipa::PartialSchema for $body {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
                let destination =
                    |names: &[&str]| ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.to_vec()));
                let to_url = ObjectBuilder::new()
                    .property("destination", destination(&["webhook_url"]))
                    .property("webhook_url", super::docs::url())
                    .required("webhook_url");
                let to_provider = ObjectBuilder::new().property("destination", destination(&["heyreach", "instantly"]));
                AllOfBuilder::new()
                    .item(utoipa::openapi::Ref::from_schema_name(<$request as ToSchema>::name()))
                    .item(OneOfBuilder::new().item(to_url).item(to_provider))
                    .into()
            }
        }

        impl ToSchema for $body {
            fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                schemas
                    .push((<$request as ToSchema>::name().into_owned(), <$request as utoipa::PartialSchema>::schema()));
                <$request as ToSchema>::schemas(schemas);
            }
        }
    };
}

with_destination!(PushBody, PushRequest);
with_destination!(PushTopBody, PushTopRequest);

#[utoipa::path(post, path = "/api/v1/leads/push", tag = "push", security(("api_key" = [])),
    params(CallbackQuery,
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$", description = "1 to 255 characters; the same key and body replay the first answer (kept for `LEADPUSH_IDEMPOTENCY_TTL_SECS`)")),
    request_body = PushBody,
    responses(
        (status = 200, body = DataOf<PushSummary>, description = "`dispatched` or `dispatch_failed`"),
        (status = 400, body = ErrorBody, description = "`validation_error` naming the field, or `integration_not_configured`"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_idempotency_key`: the key was used with another body; `conflict`: its first push is still running"),
        (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "`service_unavailable`: storage is busy; retry after `Retry-After`")))]
async fn push_leads(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    meter: Metered,
    callback: Callback,
    headers: HeaderMap,
    Json(body): Json<PushRequest>,
) -> Result<Data<PushSummary>, ApiError> {
    let lead_ids = distinct_lead_ids(&body.lead_ids)?;
    let fingerprint = serde_json::json!([lead_ids, body.destination.as_str(), body.webhook_url]).to_string();
    let pushed = Pushed { fingerprint, lead_ids, destination: body.destination, webhook_url: body.webhook_url };
    dispatch(&ctx, &caller.workspace_id, &meter, &callback, &headers, pushed).await
}

/// What a push route sends, and what identifies its request for `Idempotency-Key`.
struct Pushed {
    fingerprint: String,
    lead_ids: Vec<String>,
    destination: Destination,
    webhook_url: Option<String>,
}

/// The common end of the push routes: the idempotency key, the meter, the push (once per
/// key and body) and the `?webhook_url=` callback.
async fn dispatch(
    ctx: &AppContext,
    ws: &str,
    meter: &Metered,
    callback: &Callback,
    headers: &HeaderMap,
    pushed: Pushed,
) -> Result<Data<PushSummary>, ApiError> {
    let key = headers.get("idempotency-key").map(|v| v.to_str().map(str::trim));
    let key = key.transpose().map_err(|_| ApiError::validation("Idempotency-Key", "must be visible ASCII"))?;
    meter.admit(ctx, ws, Work::Push, 1).await?;
    let (summary, replayed) = push::once(ctx, ws, key, &pushed.fingerprint, || async {
        let target = push::resolve_target(ctx, ws, pushed.destination, pushed.webhook_url.as_deref()).await?;
        push::start(ctx, ws, target, pushed.lead_ids.clone()).await
    })
    .await?;
    if !replayed {
        callback.send(ctx, ws, "leads.push", &summary).await;
    }
    Ok(Data(summary))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushTopRequest {
    /// How many of the campaign's best-scored new leads to push.
    #[schema(minimum = 1, maximum = 1000)]
    top: usize,
    destination: Destination,
    webhook_url: Option<String>,
}

/// Push the `top` leads of a campaign with the highest learned `predicted_score` among
/// those not pushed yet (status `new`), as `POST /api/v1/leads/push` would push them by id.
/// Leads without a score are never picked; a campaign with none scored is refused with 400
/// naming `top`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/push-top", tag = "push", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id"), CallbackQuery,
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$", description = "As for `POST /api/v1/leads/push`")),
    request_body = PushTopBody,
    responses(
        (status = 200, body = DataOf<PushSummary>, description = "`dispatched` or `dispatch_failed`"),
        (status = 400, body = ErrorBody, description = "`validation_error` naming the field, or `integration_not_configured`"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`campaign_not_found`"),
        (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn push_top(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    meter: Metered,
    callback: Callback,
    headers: HeaderMap,
    Path(campaign_id): Path<String>,
    Json(body): Json<PushTopRequest>,
) -> Result<Data<PushSummary>, ApiError> {
    let ws = caller.workspace_id.as_str();
    super::campaigns::load(&ctx, ws, &campaign_id).await?;
    if !(1..=MAX_LEAD_IDS).contains(&body.top) {
        return Err(ApiError::validation("top", format!("must be between 1 and {MAX_LEAD_IDS}, got {}", body.top)));
    }
    let lead_ids = ranked::top_new(&*ctx.store, ws, &campaign_id, body.top).await.map_err(|e| match e {
        RankError::TooMany => ApiError::validation("top", e.to_string()),
        RankError::Store(e) => e.into(),
    })?;
    if lead_ids.is_empty() {
        return Err(ApiError::validation(
            "top",
            "no new lead of this campaign has a predicted_score yet; see GET /api/v1/insights/model",
        ));
    }
    let fingerprint =
        serde_json::json!(["top", campaign_id, body.top, body.destination.as_str(), body.webhook_url]).to_string();
    let pushed = Pushed { fingerprint, lead_ids, destination: body.destination, webhook_url: body.webhook_url };
    dispatch(&ctx, ws, &meter, &callback, &headers, pushed).await
}

fn push_not_found() -> ApiError {
    ApiError::not_found("push_not_found", "Push not found in this workspace.")
}

/// Get a push: its status (`retrying` until it ends), every attempt, and each lead's outcome.
#[utoipa::path(get, path = "/api/v1/pushes/{push_id}", tag = "push", security(("api_key" = [])),
    params(("push_id" = String, Path, description = "The `push_id` of a push")),
    responses((status = 200, body = DataOf<Push>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_push(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(push_id): Path<String>,
) -> Result<Data<Push>, ApiError> {
    if !ids::has_prefix(&push_id, ids::PUSH) {
        return Err(push_not_found());
    }
    let push = pushes::get(&*ctx.store, &caller.workspace_id, &push_id).await?.ok_or_else(push_not_found)?;
    Ok(Data(push))
}
