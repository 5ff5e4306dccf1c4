//! What the Hunter-compatible routes (`enrich`, `finders`) share: each route served and
//! documented at `/api/v1/...` and at Hunter's `/v2/...` by one handler, the common query
//! parameters (`max_duration`, `webhook_url`, `api_key`), the checks of text parameters and
//! the answer shape (`{"data", "meta": {"params", ...}}`, or 202 with the pending id).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::api::error::ApiError;
use crate::context::AppContext;
use crate::enrich::results::Answer;

/// Serves and documents a `/api/v1/{name}` route at `/v2/{name}` too, with the same handler
/// (one method router routed at both paths); the alias's operation id ends in `_v2`.
pub fn with_v2_alias(mut route: UtoipaMethodRouter<AppContext>) -> UtoipaMethodRouter<AppContext> {
    let paths = &mut route.1.paths;
    let aliases: Vec<_> = paths
        .iter()
        .filter_map(|(path, item)| {
            let name = path.strip_prefix("/api/v1/")?;
            let mut item = item.clone();
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                operation.operation_id = operation.operation_id.take().map(|id| format!("{id}_v2"));
                operation.description = Some(format!("The same as `{path}`, at Hunter's path."));
            }
            Some((format!("/v2/{name}"), item))
        })
        .collect();
    paths.extend(aliases);
    route
}

/// `max_duration`, for the routes that may answer 202.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Seconds to wait for the result, 3 to 20 (default 10); then 202 with an id.
    #[param(inline, value_type = Option<MaxDuration>)]
    max_duration: Option<String>,
}

impl Wait {
    pub fn duration(&self) -> Result<Duration, ApiError> {
        max_duration(self.max_duration.as_deref())
    }
}

/// A whole number in a range, or empty (the default): what `number`-like parameters take
/// (trimmed), as a pattern.
pub fn whole_number(pattern: &str) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(r"^[\t-\r ]*({pattern})?[\t-\r ]*$")))
        .build()
}

super::docs::schema_type!(
    /// 3 to 20.
    pub MaxDuration = whole_number("0*([3-9]|1[0-9]|20)")
);

/// Parameters of every Hunter route, read by extractors; here for the API document.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Delivery {
    /// https URL that also receives the result (signed, retried). Read by `Callback`.
    #[param(inline, value_type = Option<super::docs::OptionalUrlParam>)]
    webhook_url: Option<String>,
    /// Hunter-style API key (instead of a header). Never logged. Read by `HunterCaller`.
    api_key: Option<String>,
}

/// The API key parameter alone, for Hunter routes that send no callback.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct KeyParam {
    /// Hunter-style API key (instead of a header). Never logged. Read by `HunterCaller`.
    api_key: Option<String>,
}

/// Hunter's `max_duration`: 3 to 20 seconds, default 10.
pub fn max_duration(value: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text(value) else { return Ok(Duration::from_secs(10)) };
    match text.parse::<u64>() {
        Ok(n) if (3..=20).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(ApiError::validation(
            "max_duration",
            format!(
                "must be a whole number of seconds from 3 to 20, got `{}`",
                crate::support::text::truncate(text, 32)
            ),
        )),
    }
}

/// A text parameter, trimmed; `None` when absent or blank.
pub fn text(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// An optional text parameter of at most `max` characters, counted before trimming as the
/// API document's `maxLength` counts them.
pub fn bounded(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    let chars = value.map_or(0, |v| v.chars().count());
    let Some(value) = text(value) else { return Ok(None) };
    if chars > max {
        return Err(ApiError::validation(field, format!("must be at most {max} characters, got {chars}")));
    }
    Ok(Some(value.to_owned()))
}

/// A required text parameter of at most `max` characters.
pub fn required(field: &str, value: Option<&str>, max: usize) -> Result<String, ApiError> {
    bounded(field, value, max)?.ok_or_else(|| ApiError::validation(field, "is required"))
}

/// 200 `{"data", "meta": {"params", ...}}` (the work's own `meta`, e.g. a domain search's
/// `results`/`limit`/`offset`, joins the top-level `meta`), or 202 with the pending id.
pub fn respond(answer: Answer, params: Value) -> Response {
    match answer {
        Answer::Ready { mut data, .. } => {
            let mut meta = json!({ "params": params });
            if let (Some(Value::Object(extra)), Some(meta)) =
                (data.as_object_mut().and_then(|d| d.remove("meta")), meta.as_object_mut())
            {
                meta.extend(extra);
            }
            ready(data, meta)
        }
        Answer::Pending { id } => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "data": { "id": id, "status": "pending" }, "meta": { "params": params } })),
        )
            .into_response(),
    }
}

/// 200 `{"data", "meta"}`.
pub fn ready(data: impl Serialize, meta: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({ "data": data, "meta": meta }))).into_response()
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Meta {
    /// The parameters the answer is for (never the API key).
    #[schema(value_type = Object)]
    params: Value,
}

#[derive(Serialize, ToSchema)]
pub struct PendingView {
    /// Read it at `GET /api/v1/enrichments/{id}`, or repeat the call.
    id: String,
    /// Always `pending`.
    status: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PendingAnswer {
    data: PendingView,
    meta: Meta,
}
