//! Health, auth, the error shape for bad input, the admin CLI beside a running server,
//! the demo bootstrap and graceful shutdown.

use serde_json::json;

use crate::both_backends;
use crate::harness::{Auth, Backend, Server, shared};

async fn health_reports_the_store_and_queue_in_use(backend: Backend) {
    let server = shared(backend);
    let r = server.api().send("GET", "/healthz", Auth::None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (store, queue) = match backend {
        Backend::Embedded => ("sqlite", "embedded"),
        Backend::Aws => ("dynamodb", "sqs"),
    };
    assert_eq!(r.data()["status"], "ok");
    assert_eq!((r.data()["store"].as_str(), r.data()["queue"].as_str()), (Some(store), Some(queue)));
    assert!(r.headers.get("x-request-id").unwrap().to_str().unwrap().starts_with("req_"));
}

async fn missing_or_wrong_api_keys_get_401_in_the_error_shape(backend: Backend) {
    let api = shared(backend).api();
    let r = api.send("GET", "/api/v1/campaigns", Auth::None, None).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("X-Satellyte-API-Key"), "{}", r.text);
    let r = api.get("/api/v1/campaigns", "lp_key_not-a-real-key").await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    // A webhook token is not an API key.
    let server = shared(backend);
    let ws = server.workspace();
    let token = server.webhook_token(&ws);
    let r = api.get("/api/v1/campaigns", &token).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
}

async fn admin_creates_a_workspace_while_the_server_runs_and_its_key_works_at_once(backend: Backend) {
    let server = shared(backend);
    let api = server.api();
    let ws = server.workspace();
    let r = api.get("/api/v1/workspace", &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.data()["id"], ws.id.as_str());
    assert_eq!(r.data()["name"], "Test workspace");

    // A second key works too; revoking the first locks it out at once.
    let second = server.admin(&["admin", "api-key", "create", "--workspace", &ws.id]);
    let second_key = second["api_key"].as_str().unwrap();
    assert_eq!(api.get("/api/v1/workspace", second_key).await.status, 200);
    let keys = server.admin(&["admin", "api-key", "list", "--workspace", &ws.id]);
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(second_key), "listing must not reveal keys");
    let first_id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .find(|id| *id != second["id"])
        .unwrap();
    server.admin(&["admin", "api-key", "revoke", "--workspace", &ws.id, "--id", first_id]);
    assert_eq!(api.get("/api/v1/workspace", &ws.api_key).await.status, 401);
    assert_eq!(api.get("/api/v1/workspace", second_key).await.status, 200);

    let out = server.cli(&["admin", "webhook-token", "create", "--workspace", "ws_does_not_exist"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    // Redrive reaches the dead-letter queue (`--max 0`: other tests' dead letters stay put).
    match backend {
        Backend::Embedded => assert_eq!(server.admin(&["admin", "redrive", "--max", "0"]), json!({"moved": 0})),
        Backend::Aws => {
            let out = server.cli(&["admin", "redrive"]);
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("--dlq-url is required"), "{out:?}");
        }
    }
}

async fn bad_input_gets_a_clear_4xx_never_a_5xx(backend: Backend) {
    let server = shared(backend);
    let api = server.api();
    let ws = server.workspace();
    let key = |k: &str| ("x-satellyte-api-key", k.to_owned());
    let json_type = ("content-type", "application/json".to_owned());

    let r = api
        .raw(
            "POST",
            "/api/v1/campaigns",
            Auth::None,
            &[key(&ws.api_key), json_type.clone()],
            Some(b"{\"name\": ".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "validation_error"));
    assert_eq!(r.body["error"]["field"], "body");

    let r = api
        .raw(
            "POST",
            "/api/v1/campaigns",
            Auth::None,
            &[key(&ws.api_key), ("content-type", "text/plain".into())],
            Some(b"name=x".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (415, "unsupported_media_type"));

    let r = api.raw("POST", "/api/v1/campaigns", Auth::None, &[key(&ws.api_key)], Some(b"{}".to_vec())).await;
    assert_eq!(r.status, 415, "a body without a content type is refused: {}", r.text);

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let r = api
        .raw("POST", "/api/v1/campaigns", Auth::None, &[key(&ws.api_key), json_type.clone()], Some(huge.into_bytes()))
        .await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));

    let r = api.post("/api/v1/campaigns", &ws.api_key, &json!({"name": 5, "lead_source": "webhook"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("name")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("expected a string"), "{}", r.text);

    let r = api.post("/api/v1/campaigns", &ws.api_key, &json!({"name": "x", "lead_source": "carrier-pigeon"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("lead_source")));
    assert!(r.text.contains("webhook") && r.text.contains("manual"), "{}", r.text);

    let r = api.get("/api/v1/campaigns?limit=banana", &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (400, "validation_error"));
    let r = api.get("/api/v1/campaigns?limit=1000", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("limit")));
    let r = api.get("/api/v1/campaigns?cursor=garbage", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("cursor")));

    let r = api.get("/api/v1/nothing-here", &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (404, "route_not_found"));
    let r = api.send("DELETE", "/api/v1/campaigns", Auth::Key(&ws.api_key), None).await;
    assert_eq!((r.status, r.error_code()), (405, "method_not_allowed"));
}

async fn the_openapi_document_is_served_with_security_schemes(backend: Backend) {
    let r = shared(backend).api().send("GET", "/openapi.json", Auth::None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(r.body["paths"]["/api/v1/webhook/leads"]["post"].is_object());
    assert_eq!(r.body["components"]["securitySchemes"]["api_key"]["name"], "X-Satellyte-API-Key");
}

both_backends!(
    health_reports_the_store_and_queue_in_use,
    missing_or_wrong_api_keys_get_401_in_the_error_shape,
    admin_creates_a_workspace_while_the_server_runs_and_its_key_works_at_once,
    bad_input_gets_a_clear_4xx_never_a_5xx,
    the_openapi_document_is_served_with_security_schemes,
);

#[tokio::test]
async fn first_start_prints_a_demo_workspace_whose_keys_work() {
    let server = Server::start_with(Backend::Embedded, &[], true);
    let field = |label: &str| {
        server
            .banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().split(' ').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("banner lacks {label}:\n{}", server.banner))
    };
    let (key, token, campaign) = (field("API key"), field("webhook token"), field("campaign"));
    let api = server.api();
    let r = api.get("/api/v1/campaigns", &key).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()[0]["id"], campaign.as_str());
    assert!(server.banner.contains("curl"), "the banner shows a ready-to-paste cURL");
    let r = api
        .ingest(&token, &json!({"idempotency_key": "demo", "leads": [{"name": "Alice", "campaign_id": campaign}]}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_leaving_an_empty_wal() {
    let mut server = Server::start(Backend::Embedded);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "WAL", "webhook").await;
    let leads: Vec<_> = (0..200).map(|i| json!({"name": format!("L{i}"), "campaign_id": campaign})).collect();
    assert_eq!(api.ingest(&token, &json!({"idempotency_key": "wal", "leads": leads})).await.status, 202);
    let wal = server.data_dir().join("leadpush.db-wal");
    assert!(std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0), "the ingest went through the WAL");
    let pid = server.pid();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let status = server.stop();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "the WAL is checkpointed and truncated at shutdown");
}
