//! OpenAPI scaffolding: document info, security schemes and the shared envelope schemas.
//! The operations themselves are declared beside their handlers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Leadpush API",
        version = "1.0.0",
        description = "Push leads in through campaign webhooks, push them out to outreach tools, learn from outcomes."
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "platform", description = "Health, the API document and the calling workspace."),
        (name = "campaigns", description = "Campaigns and their webhook setup."),
        (name = "ingest", description = "The inbound campaign webhook."),
        (name = "leads", description = "Stored leads."),
        (name = "webhooks", description = "Outbound webhooks (save_lead), their deliveries, and `?webhook_url=` callbacks."),
        (name = "push", description = "Pushing leads to a webhook URL, HeyReach or Instantly, and following each push."),
        (name = "integrations", description = "HeyReach and Instantly keys and targets (keys shown masked)."),
        (name = "feedback", description = "Outcome events (opens, replies, bounces, meetings) and provider webhooks."),
        (name = "insights", description = "Which positions, companies, signal types, sources and campaigns produce outcomes."),
        (name = "enrichment", description = "Hunter-compatible email verifier and phone validator (also under /v2), async results, bulk jobs."),
        (name = "api-requests", description = "Reusable HTTP requests workflows run to fetch JSON, their test endpoint, and the workspace limits."),
        (name = "workflows", description = "Campaign workflows (fetch, condition, set fields, render, push) and their per-lead runs."),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Satellyte-API-Key"))),
        );
        components
            .add_security_scheme("hunter_key", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))));
        components.add_security_scheme(
            "webhook_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// snake_case, stable: `validation_error`, `unauthorized`, `lead_not_found`, ...
    code: String,
    message: String,
    /// The offending field, on `validation_error`.
    field: Option<String>,
}

/// `{"data": T}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DataOf<T: ToSchema> {
    data: T,
}

/// `{"data": [T], "next_cursor": ...}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ListOf<T: ToSchema> {
    data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}
