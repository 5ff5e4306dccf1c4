//! Hunter's error shape at Hunter's paths: every error answered under `/v2/...` (a route's
//! own, an extractor's, a fallback's or a panic's) is rewritten from ours,
//! `{"error": {"code", "message", ...}}`, to Hunter's,
//! `{"errors": [{"id", "code", "details"}]}` (`code` is the HTTP status), so Hunter clients
//! read it. `/api/v1/...` keeps ours. The status and headers are kept.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Error bodies are a few hundred bytes; anything larger is not one of ours.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Hunter's error answer: `{"errors": [{"id", "code", "details"}]}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HunterErrorBody {
    errors: Vec<HunterError>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HunterError {
    /// Hunter's `wrong_params` for a bad or missing parameter; otherwise our error code
    /// (`unauthorized`, `rate_limited`, `quota_exceeded`, `route_not_found`, ...).
    id: String,
    /// The HTTP status.
    code: u16,
    /// What went wrong, in plain words (a parameter's error starts with its name).
    details: String,
}

/// Our error body as Hunter's, for an answer with `status`.
pub fn hunter_body(status: StatusCode, error: &Value) -> Value {
    let id = match error["code"].as_str().unwrap_or("error") {
        "validation_error" => "wrong_params",
        other => other,
    };
    let details = error["message"].as_str().unwrap_or_default();
    json!({ "errors": [{ "id": id, "code": status.as_u16(), "details": details }] })
}

/// The middleware: rewrites error answers of requests to `/v2/...`.
pub async fn on_hunter_paths(req: Request, next: Next) -> Response {
    let hunter_path = req.uri().path().starts_with("/v2/");
    let response = next.run(req).await;
    let status = response.status();
    if !hunter_path || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(ours) if ours["error"].is_object() => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(hunter_body(status, &ours["error"]).to_string()))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// At Hunter's `/v2/` paths errors are in Hunter's shape (this module): every
/// error answer's `ErrorBody` becomes `HunterErrorBody`, and `validation_error` is
/// `wrong_params` there.
pub fn document_hunter_errors(responses: &mut utoipa::openapi::Responses) {
    use utoipa::openapi::{Ref, RefOr};
    for (status, response) in responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        response.description = response.description.replace("`validation_error`", "`wrong_params`");
        for content in response.content.values_mut() {
            if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody")) {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name("HunterErrorBody")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_error_becomes_hunters_wrong_params() {
        let ours = json!({"code": "validation_error", "message": "domain: is required", "field": "domain"});
        assert_eq!(
            hunter_body(StatusCode::BAD_REQUEST, &ours),
            json!({"errors": [{"id": "wrong_params", "code": 400, "details": "domain: is required"}]})
        );
        let ours = json!({"code": "unauthorized", "message": "Missing API key."});
        assert_eq!(hunter_body(StatusCode::UNAUTHORIZED, &ours)["errors"][0]["id"], "unauthorized");
    }
}
