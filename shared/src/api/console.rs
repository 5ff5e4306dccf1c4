//! The web console and the API reference: static files embedded in the binary. Only
//! `router` reaches them, so the API Lambdas, which never call it, link none of them (LTO
//! drops unreferenced statics; `make build` prints every bootstrap's size). The console is a
//! single-page app that calls the public JSON API like any customer; nothing here reads
//! the store. Served at `/` (the app), `/docs` (Swagger UI over `/openapi.json`) and
//! `/console/...` (its modules, styles and vendored libraries).

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::error::ApiError;
use crate::api::json::Path;

/// The routes as `template.yaml` declares them for the console function.
pub const ROUTES: [(&str, &str); 3] = [("GET", "/"), ("GET", "/docs"), ("GET", "/console/{proxy+}")];

/// One embedded file: its path under `console/`, its media type and its bytes.
pub struct Asset {
    pub path: &'static str,
    pub media_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $media:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            media_type: $media,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../console/", $path)),
        }),*]
    };
}

const HTML: &str = "text/html; charset=utf-8";

/// Every file the console needs. A unit test checks this list against `console/`.
pub static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "docs.html" => "text/html; charset=utf-8",
    "docs.js" => "text/javascript; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "lib/api.js" => "text/javascript; charset=utf-8",
    "lib/ui.js" => "text/javascript; charset=utf-8",
    "lib/capabilities.js" => "text/javascript; charset=utf-8",
    "screens/campaigns.js" => "text/javascript; charset=utf-8",
    "screens/webhooks.js" => "text/javascript; charset=utf-8",
    "screens/integrations.js" => "text/javascript; charset=utf-8",
    "screens/push.js" => "text/javascript; charset=utf-8",
    "screens/insights.js" => "text/javascript; charset=utf-8",
    "screens/enrichment.js" => "text/javascript; charset=utf-8",
    "screens/api-requests.js" => "text/javascript; charset=utf-8",
    "screens/workflow.js" => "text/javascript; charset=utf-8",
    "vendor/preact.module.js" => "text/javascript; charset=utf-8",
    "vendor/hooks.module.js" => "text/javascript; charset=utf-8",
    "vendor/htm.module.js" => "text/javascript; charset=utf-8",
    "vendor/swagger-ui-bundle.js" => "text/javascript; charset=utf-8",
    "vendor/swagger-ui.css" => "text/css; charset=utf-8",
};

/// The router: `GET /`, `GET /docs`, `GET /console/{path}` (HEAD answered by axum). The
/// path goes through our `Path`, so `/console/%ff` is a JSON 400 like any other route's.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/docs", get(|headers: HeaderMap| async move { serve("docs.html", &headers) }))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
        .layer(axum::middleware::map_response(crate::api::json::nosniff))
}

pub fn find(path: &str) -> Option<(usize, &'static Asset)> {
    ASSETS.iter().enumerate().find(|(_, a)| a.path == path)
}

/// A strong ETag per asset (hash of its bytes), computed once.
fn etag(index: usize) -> &'static str {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = ETAGS.get_or_init(|| {
        ASSETS.iter().map(|a| format!("\"{}\"", crate::support::text::hex(&Sha256::digest(a.bytes)[..12]))).collect()
    });
    &tags[index]
}

/// The page's Content-Security-Policy. Scripts only from this origin, plus the one inline
/// import map of `index.html` by hash; API calls only to this origin.
fn content_security_policy(asset: &Asset) -> String {
    let mut script = "'self'".to_owned();
    if let Some(hash) = import_map_hash(asset.bytes) {
        script.push_str(&format!(" 'sha256-{hash}'"));
    }
    // Swagger UI sets inline styles; the console itself needs none.
    let style = if asset.path == "docs.html" { "'self' 'unsafe-inline'" } else { "'self'" };
    format!(
        "default-src 'self'; script-src {script}; style-src {style}; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )
}

/// The base64 SHA-256 of the page's `<script type="importmap">` body, if it has one.
fn import_map_hash(page: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(page).ok()?;
    let open = "<script type=\"importmap\">";
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find("</script>")?;
    Some(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&text.as_bytes()[start..end])))
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((index, asset)) = find(path) else {
        return ApiError::not_found("route_not_found", "No such console file.").into_response();
    };
    let tag = etag(index);
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == tag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.media_type)], asset.bytes).into_response()
    };
    let out = response.headers_mut();
    // Revalidate every time: a new build must never run against an old cached module.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(tag) {
        out.insert(header::ETAG, value);
    }
    if asset.media_type == HTML
        && let Ok(value) = HeaderValue::from_str(&content_security_policy(asset))
    {
        out.insert(header::CONTENT_SECURITY_POLICY, value);
        out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path as FsPath, PathBuf};

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";

    fn console_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../console")
    }

    fn files(dir: &FsPath, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}{name}");
            if entry.file_type().unwrap().is_dir() {
                files(&entry.path(), &format!("{path}/"), out);
            } else {
                out.insert(path);
            }
        }
    }

    #[test]
    fn every_console_file_is_embedded_and_nothing_else() {
        let mut on_disk = BTreeSet::new();
        for dir in ["lib", "screens", "vendor"] {
            files(&console_dir().join(dir), &format!("{dir}/"), &mut on_disk);
        }
        for entry in std::fs::read_dir(console_dir()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if [".html", ".js", ".css", ".svg"].iter().any(|ext| name.ends_with(ext)) {
                on_disk.insert(name);
            }
        }
        on_disk.retain(|p| !p.starts_with("vendor/licenses/"));
        let embedded: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        assert_eq!(on_disk, embedded, "console/ files vs console::ASSETS");
        for asset in ASSETS {
            let expected = match asset.path.rsplit('.').next() {
                Some("js") => JS,
                Some("css") => CSS,
                Some("html") => HTML,
                _ => asset.media_type,
            };
            assert_eq!(asset.media_type, expected, "{}", asset.path);
        }
    }

    async fn get(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = router().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 8 << 20).await.unwrap().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn the_console_page_allows_only_its_own_scripts_and_its_import_map() {
        let (status, headers, body) = get("/", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], HTML);
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        let hash = import_map_hash(&body).expect("index.html has an import map");
        assert!(csp.contains(&format!("script-src 'self' 'sha256-{hash}';")), "{csp}");
        assert!(csp.contains("style-src 'self';") && csp.contains("connect-src 'self'"), "{csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        // The import map names only vendored, embedded modules.
        let text = String::from_utf8(body).unwrap();
        for module in ["preact.module.js", "hooks.module.js", "htm.module.js"] {
            assert!(text.contains(&format!("/console/vendor/{module}")), "{module}");
        }
    }

    #[tokio::test]
    async fn assets_revalidate_by_etag_and_unknown_files_are_json_404s() {
        let (status, headers, body) = get("/console/vendor/swagger-ui-bundle.js", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], JS);
        assert_eq!(body.len(), find("vendor/swagger-ui-bundle.js").unwrap().1.bytes.len());
        let tag = headers[header::ETAG].to_str().unwrap().to_owned();
        let (status, _, body) = get("/console/vendor/swagger-ui-bundle.js", &[("if-none-match", &tag)]).await;
        assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
        let (status, _, body) = get("/console/../Cargo.toml", &[]).await;
        assert_eq!(status, 404);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "route_not_found");
    }

    #[tokio::test]
    async fn the_docs_page_renders_the_served_openapi_document_offline() {
        let (status, headers, body) = get("/docs", &[]).await;
        assert_eq!(status, 200);
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        let page = String::from_utf8(body).unwrap();
        assert!(page.contains("/console/vendor/swagger-ui-bundle.js") && page.contains("/console/docs.js"));
        let init = std::str::from_utf8(find("docs.js").unwrap().1.bytes).unwrap();
        assert!(init.contains("'/openapi.json'") && init.contains("validatorUrl: null"), "no call leaves the origin");
    }

    /// `template.yaml` routes exactly [`ROUTES`] to the console function.
    #[test]
    fn the_template_routes_the_console_paths_to_the_console_function() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let mut function = String::new();
        let mut routed = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("CodeUri: target/lambda/") {
                function = rest.trim_end_matches('/').to_owned();
            }
            if function == "console"
                && let (Some(m), Some(p)) = (line.find("Method: "), line.find("Path: "))
            {
                let method = line[m + 8..].split(',').next().unwrap().trim().to_owned();
                let path = line[p + 6..].trim_end_matches([' ', '}']).trim_matches('"').to_owned();
                routed.insert((method, path));
            }
        }
        let expected: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(routed, expected);
    }

    /// Every `events/console.*.json` sample, through the router as the Lambda runtime hands it.
    #[tokio::test]
    async fn every_console_sample_event_is_served() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("console.") {
                continue;
            }
            let request = lambda_http::request::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let response = router().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            assert!(response.headers().contains_key(header::ETAG), "{name}");
            seen += 1;
        }
        assert!(seen >= 2, "sample events for the console function");
    }
}
