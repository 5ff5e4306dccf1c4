//! The HTTP API: one module per route group. Each Lambda serves one group; `leadpush serve`
//! serves them all. Routes and the OpenAPI document come from the same declarations
//! (utoipa-axum), so the spec cannot drift from what is served.

// Both `routes!` below are in scope in every route module declared after them.

/// `utoipa_axum::routes!`, in builds with the `openapi` feature (the CLI, the tests): the
/// method router and each operation's document and schemas.
#[cfg(feature = "openapi")]
macro_rules! routes {
    ($($tt:tt)*) => { utoipa_axum::routes!($($tt)*) };
}

/// In the Lambdas (no `openapi` feature): the same method router at the same paths, with
/// empty operations and no schemas. Building each operation's document, only to drop it,
/// linked every request and response type's schema code into every bootstrap; the
/// platform function serves the committed document (`docs::OPENAPI_DOCUMENT`) instead.
#[cfg(not(feature = "openapi"))]
macro_rules! routes {
    ($( $($segment:ident)::+ ),+ $(,)?) => {{
        use utoipa_axum::PathItemExt as _;
        let mut paths = utoipa::openapi::path::Paths::new();
        let mut router = axum::routing::MethodRouter::new();
        $(
            let path: String = utoipa_axum::routes!(@path [path()] of $($segment)::+);
            let methods = utoipa_axum::routes!(@path [methods()] of $($segment)::+);
            router = methods.iter().fold(router, |router, method| router.on(method.to_method_filter(), $($segment)::+));
            paths.add_path_operation(&path, methods, utoipa::openapi::path::Operation::new());
        )+
        (Vec::new(), paths, router)
    }};
}

pub mod api_requests;
pub mod auth;
pub mod callbacks;
pub mod campaigns;
pub mod console;
pub mod docs;
pub mod email_count;
pub mod enrich;
pub mod error;
pub mod feedback;
pub mod finders;
pub mod hunter_errors;
pub mod hunter_routes;
pub mod ingest;
pub mod insights;
pub mod integrations;
pub mod json;
pub mod leads;
pub mod metering;
pub mod phone;
pub mod platform;
pub mod push;
pub mod webhooks;
pub mod workflows;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;

use crate::api::error::ApiError;
use crate::context::AppContext;
use crate::support::ids;

/// The Lambda functions, one per route group (see `template.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Platform,
    Campaigns,
    IngestLeads,
    Leads,
    PushLeads,
    Integrations,
    Webhooks,
    FeedbackEvents,
    Insights,
    /// Hunter-compatible email verifier, enrichment results and bulk verification jobs.
    Enrich,
    /// Hunter-compatible finders (email, domain, author, phone) and the phone validator.
    Finders,
    ApiRequests,
    Workflows,
}

impl Function {
    pub const ALL: [Function; 13] = [
        Function::Platform,
        Function::Campaigns,
        Function::IngestLeads,
        Function::Leads,
        Function::PushLeads,
        Function::Integrations,
        Function::Webhooks,
        Function::FeedbackEvents,
        Function::Insights,
        Function::Enrich,
        Function::Finders,
        Function::ApiRequests,
        Function::Workflows,
    ];

    /// The crate and binary name under `functions/`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Platform => "platform",
            Function::Campaigns => "campaigns",
            Function::IngestLeads => "ingest-leads",
            Function::Leads => "leads",
            Function::PushLeads => "push-leads",
            Function::Integrations => "integrations",
            Function::Webhooks => "webhooks",
            Function::FeedbackEvents => "feedback-events",
            Function::Insights => "insights",
            Function::Enrich => "enrich",
            Function::Finders => "finders",
            Function::ApiRequests => "api-requests",
            Function::Workflows => "workflows",
        }
    }

    pub fn routes(self) -> OpenApiRouter<AppContext> {
        match self {
            Function::Platform => platform::routes(),
            Function::Campaigns => campaigns::routes(),
            Function::IngestLeads => ingest::routes(),
            Function::Leads => leads::routes(),
            Function::PushLeads => push::routes(),
            Function::Integrations => integrations::routes(),
            Function::Webhooks => webhooks_and_callbacks(),
            Function::FeedbackEvents => feedback::routes(),
            Function::Insights => insights::routes(),
            Function::Enrich => enrich::routes(),
            Function::Finders => finding(),
            Function::ApiRequests => api_requests::routes(),
            Function::Workflows => workflows::routes(),
        }
    }
}

/// The webhooks function's routes: the endpoints and their delivery log.
pub fn webhooks_and_callbacks() -> OpenApiRouter<AppContext> {
    webhooks::routes().merge(callbacks::routes())
}

/// The finders function's routes: the finders, the email count and the phone validator
/// (the routes that need the phone metadata and the regex engine, kept out of the
/// `enrich` function).
pub fn finding() -> OpenApiRouter<AppContext> {
    finders::routes().merge(phone::routes()).merge(email_count::routes())
}

/// The id of this HTTP request (`req_...`), also used as the ingest request id.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The OpenAPI document of the whole public API (as `docs/openapi.json` holds it).
#[cfg(feature = "openapi")]
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut router = OpenApiRouter::with_openapi(docs::ApiDoc::openapi());
    for function in Function::ALL {
        router = router.merge(function.routes());
    }
    let mut doc = router.split_for_parts().1;
    docs::document_shared_errors(&mut doc);
    doc
}

/// The router for some functions, with the middleware every route shares.
pub fn app(ctx: AppContext, functions: &[Function]) -> Router {
    let mut router = OpenApiRouter::new();
    for function in functions {
        router = router.merge(function.routes());
    }
    app_with(ctx, router)
}

/// The router for one set of routes, with the middleware every route shares. A Lambda
/// passes its own routes' function, so its bootstrap links no other group's handlers.
pub fn app_with(ctx: AppContext, routes: OpenApiRouter<AppContext>) -> Router {
    let (router, _) = routes.split_for_parts();
    router
        .fallback(|| async {
            ApiError::not_found("route_not_found", "No such route. The API is described at /openapi.json.")
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(ctx)
        .layer(axum::middleware::from_fn(metering::headers))
        .layer(axum::middleware::from_fn(within_gateway_time))
        .layer(axum::middleware::from_fn(observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        // Outside the panic catcher, so that every error under `/v2/` is in Hunter's shape.
        .layer(axum::middleware::from_fn(hunter_errors::on_hunter_paths))
        // Outermost, so that panics, fallbacks and extractor rejections get it too.
        .layer(axum::middleware::map_response(crate::api::json::nosniff))
}

/// How long a request may take: API Gateway's HTTP API gives up after 30 s (not
/// raisable), so the functions behind it time out at 29 s.
pub const REQUEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(29);

/// Runs the request within [`REQUEST_BUDGET`] (`support::deadline`), so that work that could
/// outlast the gateway (a push's later provider calls) is left to a retry instead of being
/// answered by the gateway's 503. `leadpush serve` keeps the same limit.
async fn within_gateway_time(req: Request, next: Next) -> Response {
    crate::support::deadline::within(Some(Instant::now() + REQUEST_BUDGET), next.run(req)).await
}

/// Gives each request an id, a log span (workspace id recorded by auth), and one
/// completion log line with status and latency. Headers and bodies are never logged.
async fn observe(mut req: Request, next: Next) -> Response {
    let request_id = ids::new_id(ids::REQUEST);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let path = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %path,
        workspace_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, latency_ms, "request failed");
        } else {
            tracing::info!(status, latency_ms, "request completed");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Routes = BTreeSet<(String, String)>;

    fn operations(api: &utoipa::openapi::OpenApi) -> Routes {
        let mut out = BTreeSet::new();
        for (path, item) in &api.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    /// `(function, method, path)` of every HttpApi event in template.yaml.
    fn template_routes() -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let mut function = String::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("CodeUri: target/lambda/") {
                function = rest.trim_end_matches('/').to_owned();
            }
            if let (Some(m), Some(p)) = (line.find("Method: "), line.find("Path: ")) {
                let method = line[m + 8..].split(',').next().unwrap().trim().to_owned();
                let path = line[p + 6..].trim_end_matches([' ', '}']).trim_matches('"').to_owned();
                out.push((function.clone(), method, path));
            }
        }
        out
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn template_routers_and_openapi_list_the_same_routes() {
        // The console's static files are not API routes (console::tests checks them).
        let template: Vec<_> = template_routes().into_iter().filter(|(f, _, _)| f != "console").collect();
        let mut all = Routes::new();
        for function in Function::ALL {
            let (_, api) = function.routes().split_for_parts();
            let served = operations(&api);
            let declared: Routes = template
                .iter()
                .filter(|(f, _, _)| f == function.name())
                .map(|(_, m, p)| (m.clone(), p.clone()))
                .collect();
            assert_eq!(served, declared, "routes of `{}`: router vs template.yaml", function.name());
            all.extend(served);
        }
        assert_eq!(operations(&openapi()), all, "the OpenAPI document lists exactly the served routes");
        assert_eq!(template.len(), all.len(), "template.yaml routes a path twice");
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn the_document_says_what_the_server_does() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        // Feedback events and outbound webhooks each have their own event types.
        let feedback: Vec<&str> =
            schemas["FeedbackEventType"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(feedback, ["open", "click", "reply", "positive_reply", "bounce", "meeting_booked"]);
        assert_eq!(schemas["EventType"]["enum"], serde_json::json!(["save_lead"]));
        let request = &schemas["FeedbackRequest"]["properties"]["event_type"]["$ref"];
        assert_eq!(request, "#/components/schemas/FeedbackEventType");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = &op["responses"];
                let secured = op.get("security").and_then(|s| s.as_array()).is_some_and(|s| !s.is_empty());
                assert!(!secured || responses.get("401").is_some(), "{method} {path}: 401 undocumented");
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(responses.get(status).is_some(), "{method} {path}: {status} undocumented");
                    }
                }
                for p in op.get("parameters").and_then(|p| p.as_array()).into_iter().flatten() {
                    assert!(responses.get("400").is_some(), "{method} {path}: 400 undocumented");
                    if p["name"] == "limit" {
                        // An integer from 1, or (Hunter's text parameters) a pattern of its range.
                        let (min, max) = (p["schema"]["minimum"].as_u64(), p["schema"]["maximum"].as_u64());
                        let pattern = p["schema"]["pattern"].as_str().unwrap_or_default();
                        assert!(
                            (min == Some(1) && max.is_some()) || pattern.contains("[1-9]"),
                            "{method} {path}: limit bounds {min:?}..{max:?}"
                        );
                    }
                }
            }
        }
    }

    /// `docs/openapi.json`, which `/openapi.json` serves, is the document the routes
    /// generate (with every capability). `LEADPUSH_WRITE_OPENAPI=1` (or `make openapi`)
    /// rewrites it.
    #[cfg(feature = "openapi")]
    #[test]
    fn the_served_openapi_document_is_the_one_the_routes_generate() {
        let generated = serde_json::to_string_pretty(&openapi()).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        if std::env::var_os("LEADPUSH_WRITE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if committed != generated {
            let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b);
            let at = line.map_or("its end".to_owned(), |n| format!("line {}", n + 1));
            panic!(
                "docs/openapi.json is out of date (first difference at {at}): the routes changed. \
                 Run `make openapi` (or `LEADPUSH_WRITE_OPENAPI=1 cargo test -p leadpush --lib \
                 the_served_openapi_document`) and commit it."
            );
        }
        // Served compacted: the bytes `Json(openapi())` gave before it was committed.
        assert_eq!(docs::compact_json(docs::OPENAPI_DOCUMENT), serde_json::to_string(&openapi()).unwrap());
    }

    /// The router every Lambda serves (`app_with`, through `app`) marks every answer
    /// `nosniff`: a success, a 4xx from an extractor, a 404 from the fallback, a 405.
    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn every_api_answer_says_nosniff_success_4xx_and_404_alike() {
        use axum::body::Body;
        use tower::ServiceExt;
        let (ctx, _dir) = crate::testing::embedded_context();
        let app = app(ctx, &Function::ALL);
        let cases = [
            ("GET", "/openapi.json", 200, None),
            ("GET", "/api/v1/workspace", 401, Some("unauthorized")),
            ("GET", "/api/v1/campaigns/%ff", 401, Some("unauthorized")),
            ("GET", "/api/v1/no-such-route", 404, Some("route_not_found")),
            ("DELETE", "/healthz", 405, Some("method_not_allowed")),
        ];
        for (method, path, status, code) in cases {
            let request = axum::http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{method} {path}");
            assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{method} {path}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            match code {
                Some(code) => assert_eq!(body["error"]["code"], code, "{method} {path}: {body}"),
                None => assert!(body["openapi"].is_string(), "{method} {path}: {body}"),
            }
        }
    }

    #[test]
    fn compact_json_removes_only_the_whitespace_outside_strings() {
        let value = serde_json::json!({"a b": [1, {"c": "x \" \\\" y\n", "d": null}], "e": "\\", "f": " "});
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert_eq!(docs::compact_json(&pretty), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn every_function_crate_is_known_and_deployed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
        let mut crates: BTreeSet<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(crates.remove("leadpush"), "the CLI crate");
        for worker in crate::queue::Lane::ALL.map(|lane| lane.function()) {
            assert!(crates.remove(worker), "the {worker} crate (an SQS worker)");
        }
        assert!(crates.remove("console"), "the console crate (static files, not API routes)");
        let known: BTreeSet<String> = Function::ALL.iter().map(|f| f.name().to_owned()).collect();
        assert_eq!(crates, known, "functions/ and api::Function must agree");
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let workers = crate::queue::Lane::ALL.map(|lane| lane.function().to_owned());
        for name in known.iter().chain(workers.iter()).chain(["console".to_owned()].iter()) {
            assert!(template.contains(&format!("CodeUri: target/lambda/{name}/")), "{name} is not in template.yaml");
        }
    }
}
