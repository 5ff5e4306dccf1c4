//! The API's error type and its one mapping to HTTP: `{"error": {"code", "message", ...}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::queue::QueueError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation_error`; the message names the field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Another 400 with its own code (e.g. `integration_not_configured`).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// 409, with extra fields merged into the error object (e.g. the original `request_id`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String, extra: Map<String, Value> },
    /// 409 `request_in_progress` with `Retry-After`: the same request is still being
    /// processed; unlike the other 409s, not final.
    #[error("{message}")]
    InProgress { message: String, extra: Map<String, Value>, retry_after_secs: u64 },
    /// 413; see [`ApiError::body_too_large`].
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("Content-Type must be application/json.")]
    UnsupportedMediaType,
    /// 429 `rate_limited` (a rate limit) or `quota_exceeded` (a monthly quota), with
    /// `Retry-After`, and `X-RateLimit-*` when a rate limit refused it.
    #[error("{message}")]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
        allowance: Option<crate::metering::Allowance>,
    },
    /// 408: the body did not arrive in time; the connection is closed.
    #[error("The request body was not received within {0} seconds.")]
    RequestTimeout(u64),
    /// 503 with `Retry-After`: the store is throttling or contended; nothing was committed
    /// that a retry of the same request would not complete.
    #[error("The service is busy. Retry the same request after the Retry-After delay.")]
    Unavailable { retry_after_secs: u64 },
    /// 500. The cause is logged; the client only sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into(), extra: Map::new() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn body_too_large(limit: usize) -> Self {
        ApiError::PayloadTooLarge(format!("Request body exceeds the {limit}-byte limit for this endpoint."))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::InProgress { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_error",
            ApiError::BadRequest { code, .. } | ApiError::NotFound { code, .. } | ApiError::Conflict { code, .. } => {
                code
            }
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InProgress { .. } => "request_in_progress",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { code, .. } => code,
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The JSON body: `{"error": {"code", "message", ...}}`.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code()));
        let message = match self {
            ApiError::Internal(_) => "An internal error occurred. It has been logged; please retry later.".to_owned(),
            other => other.to_string(),
        };
        error.insert("message".into(), json!(message));
        match self {
            ApiError::Validation { field, .. } => {
                error.insert("field".into(), json!(field));
            }
            ApiError::Conflict { extra, .. } | ApiError::InProgress { extra, .. } => error.extend(extra.clone()),
            _ => {}
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // The only place internals are written down: the log, never the response.
            tracing::error!(error = %cause, "internal error");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after_secs, .. }
        | ApiError::Unavailable { retry_after_secs }
        | ApiError::InProgress { retry_after_secs, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let ApiError::RateLimited { allowance: Some(allowance), .. } = &self {
            crate::api::metering::insert_headers(response.headers_mut(), allowance);
        }
        if let ApiError::RequestTimeout(_) = self {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<crate::domain::ValidationError> for ApiError {
    fn from(e: crate::domain::ValidationError) -> Self {
        ApiError::Validation { field: e.field, message: e.message }
    }
}

impl From<crate::workflow::trigger::TriggerError> for ApiError {
    fn from(e: crate::workflow::trigger::TriggerError) -> Self {
        ApiError::internal(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::InvalidCursor => {
                ApiError::validation("cursor", "is not a cursor returned by this listing; start again without it")
            }
            StoreError::Busy(_) | StoreError::TransactionCanceled { failed_op: None } => {
                tracing::warn!(error = %e, "store busy");
                ApiError::Unavailable { retry_after_secs: BUSY_RETRY_AFTER_SECS }
            }
            // A timeout or an outage of the store is not the request's fault: the writes that
            // depend on it undo what they may have done, so the same request can be retried.
            StoreError::Backend(_) => {
                tracing::error!(error = %e, "store unavailable");
                ApiError::Unavailable { retry_after_secs: BUSY_RETRY_AFTER_SECS }
            }
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// Seconds a client waits before retrying after a 503: long enough for DynamoDB's adaptive
/// capacity to react to a hot partition, short enough not to stall an import.
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::push::PushError> for ApiError {
    fn from(e: crate::push::PushError) -> Self {
        use crate::push::PushError;
        match e {
            PushError::Invalid(e) => e.into(),
            PushError::NotConfigured(provider) => ApiError::bad_request(
                "integration_not_configured",
                format!(
                    "{} is not configured for this workspace. Configure it first: PUT /api/v1/integrations/{} with {}.",
                    provider.label(),
                    provider.as_str(),
                    provider.required_body()
                ),
            ),
            PushError::Store(e) => e.into(),
            PushError::Queue(e) => e.into(),
            PushError::KeyReused(_) => ApiError::conflict("duplicate_idempotency_key", e.to_string()),
            PushError::KeyInUse(_) => ApiError::conflict("conflict", e.to_string()),
        }
    }
}

impl From<crate::repo::api_requests::SaveError> for ApiError {
    fn from(e: crate::repo::api_requests::SaveError) -> Self {
        use crate::repo::api_requests::SaveError;
        match e {
            SaveError::NameTaken => {
                ApiError::conflict("duplicate_name", "name: another API request of this workspace has this name")
            }
            SaveError::Conflict => ApiError::conflict(
                "conflict",
                "The API request was changed or deleted by another request meanwhile; read it again and retry.",
            ),
            SaveError::Store(e) => e.into(),
        }
    }
}

impl From<crate::ingest::IngestError> for ApiError {
    fn from(e: crate::ingest::IngestError) -> Self {
        use crate::ingest::IngestError;
        use crate::repo::idempotency::IdempotencyState;
        match e {
            IngestError::Invalid(e) => e.into(),
            IngestError::TooManyLeads(_) => ApiError::PayloadTooLarge(e.to_string()),
            IngestError::InProgress { record, retry_after_secs } => {
                let message = format!(
                    "The request with idempotency key \"{}\" (request {}) is still being processed. This is not \
                     final: retry the same request after {retry_after_secs} s (Retry-After), and you get its result; \
                     if it failed, your retry completes it.",
                    record.key, record.request_id
                );
                let mut extra = Map::new();
                extra.insert("request_id".into(), json!(record.request_id));
                extra.insert("idempotency_key".into(), json!(record.key));
                extra.insert("first_seen_at".into(), json!(record.created_at));
                ApiError::InProgress { message, extra, retry_after_secs }
            }
            IngestError::DuplicateKey { record, window } => {
                let message = match record.state {
                    IdempotencyState::InProgress => format!(
                        "Idempotency key \"{}\" is in use by a request with a different body, still being processed \
                         (request {}). Use a unique key for each batch.",
                        record.key, record.request_id
                    ),
                    IdempotencyState::Completed => format!(
                        "Idempotency key \"{}\" was already used within the last {} (request {}); those leads were \
                         accepted then. Use a unique key for each batch.",
                        record.key,
                        crate::support::time::human_duration(window),
                        record.request_id
                    ),
                };
                let mut extra = Map::new();
                extra.insert("request_id".into(), json!(record.request_id));
                extra.insert("idempotency_key".into(), json!(record.key));
                extra.insert("first_seen_at".into(), json!(record.created_at));
                ApiError::Conflict { code: "duplicate_idempotency_key", message, extra }
            }
            IngestError::Store(e) => e.into(),
            IngestError::Queue(e) => e.into(),
        }
    }
}

impl From<crate::workflow::save::SaveError> for ApiError {
    fn from(e: crate::workflow::save::SaveError) -> Self {
        use crate::workflow::save::SaveError;
        match e {
            SaveError::Invalid(e) => e.into(),
            SaveError::Conflict => ApiError::conflict(
                "conflict",
                "The workflow was saved by another request meanwhile; read it again and retry.",
            ),
            SaveError::Store(e) => e.into(),
        }
    }
}

impl From<crate::workflow::template::TemplateError> for ApiError {
    fn from(e: crate::workflow::template::TemplateError) -> Self {
        ApiError::Validation { field: e.field, message: format!("template error: {}", e.message) }
    }
}

impl From<crate::metering::MeterError> for ApiError {
    fn from(e: crate::metering::MeterError) -> Self {
        use crate::metering::MeterError;
        let message = e.to_string();
        match e {
            MeterError::RateLimited { retry_after_secs, allowance, .. } => {
                ApiError::RateLimited { code: "rate_limited", message, retry_after_secs, allowance: Some(allowance) }
            }
            MeterError::QuotaExceeded { retry_after_secs, .. } => {
                ApiError::RateLimited { code: "quota_exceeded", message, retry_after_secs, allowance: None }
            }
            MeterError::Store(e) => e.into(),
        }
    }
}

impl From<crate::feedback::FeedbackError> for ApiError {
    fn from(e: crate::feedback::FeedbackError) -> Self {
        use crate::feedback::FeedbackError;
        match e {
            FeedbackError::LeadNotFound => crate::api::leads::lead_not_found(),
            FeedbackError::ReusedEventId(_) => ApiError::conflict("duplicate_idempotency_key", e.to_string()),
            FeedbackError::Internal(cause) => ApiError::Internal(cause),
            FeedbackError::Store(e) => e.into(),
            FeedbackError::Queue(e) => e.into(),
        }
    }
}

impl From<crate::enrich::EnrichError> for ApiError {
    fn from(e: crate::enrich::EnrichError) -> Self {
        use crate::enrich::EnrichError;
        match e {
            EnrichError::Invalid { field, message } => ApiError::validation(field, message),
            EnrichError::NotFound => {
                ApiError::not_found("enrichment_not_found", "Enrichment not found in this workspace.")
            }
            EnrichError::BulkQueueFull { .. } => ApiError::RateLimited {
                code: "bulk_queue_full",
                message: e.to_string(),
                retry_after_secs: 60,
                allowance: None,
            },
            EnrichError::Store(e) => e.into(),
            EnrichError::Queue(e) => e.into(),
            EnrichError::Other(cause) => ApiError::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_store_answers_503_with_retry_after() {
        for cause in [StoreError::Busy("throttled".into()), StoreError::TransactionCanceled { failed_op: None }] {
            let response = ApiError::from(cause).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], BUSY_RETRY_AFTER_SECS.to_string().as_str());
        }
        let body = ApiError::from(StoreError::Busy("secret internals".into())).body();
        assert_eq!(body["error"]["code"], "service_unavailable");
        assert!(!body.to_string().contains("secret internals"), "{body}");
    }

    #[test]
    fn refused_and_failed_writes_stay_internal_errors() {
        for cause in [StoreError::Refused("too big".into()), StoreError::TransactionCanceled { failed_op: Some(0) }] {
            assert_eq!(ApiError::from(cause).status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}
