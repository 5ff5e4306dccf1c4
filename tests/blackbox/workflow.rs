//! API requests and campaign workflows (the API Requests specification) against a real
//! local JSON API: every method, templated URL/query/headers/body with hostile lead values,
//! the default Content-Type, typed errors (non-JSON, oversized, slow, status, template),
//! workspace limits, the test endpoint (saved and unsaved), caching, and workflows run by
//! ingest, activation and reruns, with retries after a 503.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::receiver::{Receiver, Recorded, Reply};
use crate::harness::{Api, Auth, Backend, Server, Workspace, eventually, shared};

const SETTLE: Duration = Duration::from_secs(60);
const SECRET: &str = "Bearer sk_live_0123456789abcdef";

/// A JSON API: `/customers/{email}` answers the customer's plan (pro for alice@...),
/// everything else echoes what it received.
async fn json_api() -> Receiver {
    Receiver::start_fn(|req: &Recorded| {
        if let Some(email) = req.path.strip_prefix("/customers/") {
            let email = decode(email);
            let plan = if email.starts_with("alice") { "pro" } else { "free" };
            return Reply::status(200, &json!({"plan": plan, "email": email, "seats": 5}).to_string());
        }
        Reply::status(200, &json!({"method": req.method, "path": req.path}).to_string())
    })
    .await
}

/// Percent-decoding, as the remote API's router would do.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn create_request(api: &Api, key: &str, body: &Value) -> String {
    let r = api.post("/api/v1/api-requests", key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.data()["id"].as_str().unwrap().to_owned()
}

/// A draft webhook campaign and its leads, stored through ingest.
async fn draft_with_leads(server: &Server, ws: &Workspace, leads: Vec<Value>) -> Vec<String> {
    let api = server.api();
    let token = server.webhook_token(ws);
    let campaign = api.campaign(&ws.api_key, "Workflow", "webhook").await;
    ingest(&api, &token, &campaign, leads).await
}

async fn ingest(api: &Api, token: &str, campaign: &str, leads: Vec<Value>) -> Vec<String> {
    let leads: Vec<Value> = leads
        .into_iter()
        .map(|mut lead| {
            lead["campaign_id"] = json!(campaign);
            lead
        })
        .collect();
    let key = format!("wf-{}", ulid_like());
    let r = api.ingest(token, &json!({"idempotency_key": key, "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// An active webhook campaign running `doc` (saved first, then activated), and the
/// workspace's ingest token.
async fn running(server: &Server, ws: &Workspace, name: &str, doc: &Value) -> (String, String) {
    let (api, key) = (server.api(), ws.api_key.as_str());
    let campaign = api.campaign(key, name, "webhook").await;
    let r = api.send("PUT", &format!("/api/v1/campaigns/{campaign}/workflow"), Auth::Key(key), Some(doc)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api.act(&format!("/api/v1/campaigns/{campaign}/activate"), key).await.status, 200);
    (campaign, server.webhook_token(ws))
}

fn ulid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{nanos}")
}

async fn test_saved(api: &Api, key: &str, id: &str, body: &Value) -> Value {
    let r = api.post(&format!("/api/v1/api-requests/{id}/test"), key, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().clone()
}

const HOSTILE_NAME: &str = "O\"Brien {{ 7*7 }} ../etc Zoë 東京";

async fn every_method_renders_templates_safely_and_defaults_to_json(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let remote = json_api().await;
    let ids = draft_with_leads(
        server,
        &ws,
        vec![json!({"name": HOSTILE_NAME, "email": "alice+x@example.com", "company": "../../admin",
                    "custom_fields": {"tier": "A&B=C"}})],
    )
    .await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let mut config = json!({
            "name": format!("Echo {method}"), "method": method,
            "url": format!("{}/u/{{{{ contact.company }}}}/{{{{ contact.name }}}}", remote.url),
            "headers": {"Authorization": SECRET, "X-Lead": "{{ contact.email }}"},
            "query": {"tier": "{{ contact.custom_fields.tier }}", "n": "{{ contact.name }}"},
        });
        if method != "GET" {
            config["body"] = json!(
                r#"{"name": "{{ contact.name }}", "tier": "{{ contact.custom_fields.tier }}", "score": {{ contact.score | tojson }}}"#
            );
        }
        let id = create_request(&api, &ws.api_key, &config).await;
        let result = test_saved(&api, &ws.api_key, &id, &json!({"lead_id": ids[0]})).await;
        assert_eq!(result["ok"], true, "{method}: {result}");
        assert_eq!(result["status"], 200);
        assert_eq!(result["response"]["method"], method);
        assert_eq!(result["request"]["headers"]["Authorization"], "****cdef", "secrets masked in the test answer");
        let seen = remote.requests().pop().unwrap();
        assert_eq!(seen.method, method);
        // Values in the path are percent-encoded: `../` cannot climb, quotes and braces are data.
        assert_eq!(
            seen.path,
            "/u/..%2F..%2Fadmin/O%22Brien%20%7B%7B%207%2A7%20%7D%7D%20..%2Fetc%20Zo%C3%AB%20%E6%9D%B1%E4%BA%AC"
        );
        let query: Vec<(String, String)> = url_pairs(seen.query.as_deref().unwrap_or_default());
        assert!(query.contains(&("tier".into(), "A&B=C".into())), "{query:?}");
        assert!(query.contains(&("n".into(), HOSTILE_NAME.into())), "{query:?}");
        assert_eq!(seen.header("authorization"), Some(SECRET), "the real secret is sent");
        assert_eq!(seen.header("x-lead"), Some("alice+x@example.com"));
        if method == "GET" {
            assert!(seen.body.is_empty());
        } else {
            assert_eq!(seen.header("content-type"), Some("application/json"), "the workflow document's default");
            assert_eq!(seen.json(), json!({"name": HOSTILE_NAME, "tier": "A&B=C", "score": null}));
        }
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x.test/?{query}")).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

async fn api_requests_crud_masks_secrets_and_enforces_workspace_limits(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let remote = json_api().await;
    let key = ws.api_key.as_str();
    let config = json!({"name": "Profile", "method": "GET", "url": format!("{}/customers/{{{{ contact.email }}}}", remote.url),
                        "headers": {"Authorization": SECRET, "Accept": "application/json"}, "cache_ttl_s": 60});
    let id = create_request(&api, key, &config).await;
    let r = api.get(&format!("/api/v1/api-requests/{id}"), key).await;
    assert_eq!(r.data()["headers"], json!({"Accept": "application/json", "Authorization": "****cdef"}));
    assert_eq!((r.data()["timeout_ms"].as_u64(), r.data()["enabled"].as_bool()), (Some(10_000), Some(true)));
    assert!(!r.text.contains("sk_live"), "{}", r.text);
    let r = api
        .post("/api/v1/api-requests", key, &json!({"name": "profile", "method": "GET", "url": "http://x.test/"}))
        .await;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_name"));

    // PATCH without the Authorization header keeps it; the rename frees the old name.
    let path = format!("/api/v1/api-requests/{id}");
    let r = api
        .send("PATCH", &path, Auth::Key(key), Some(&json!({"name": "Profile v2", "headers": {"Accept": "*/*"}})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.data()["headers"], json!({"Accept": "*/*", "Authorization": "****cdef"}));
    let vars = json!({"variables": {"contact": {"email": "bob@example.com"}}});
    let result = test_saved(&api, key, &id, &vars).await;
    assert_eq!((result["ok"].as_bool(), result["response"]["plan"].as_str()), (Some(true), Some("free")));
    assert_eq!(remote.requests().last().unwrap().header("authorization"), Some(SECRET));
    let other = create_request(&api, key, &json!({"name": "Profile", "method": "GET", "url": "http://x.test/"})).await;
    assert!(other.starts_with("apr_"));

    // Bad input: each a 400 naming the field.
    for (body, field) in [
        (json!({"name": "a", "method": "GET", "url": "http://x.test/", "timeout_ms": 20000}), "timeout_ms"),
        (json!({"name": "b", "method": "POST", "url": "http://x.test/", "cache_ttl_s": 60}), "cache_ttl_s"),
        (json!({"name": "c", "method": "TRACE", "url": "http://x.test/"}), "method"),
        (json!({"name": "d", "method": "GET", "url": "http://x.test/{{ contact.name"}), "url"),
        (
            json!({"name": "e", "method": "GET", "url": "http://x.test/", "retry": {"attempts": 50, "backoff_ms": 100}}),
            "retry.attempts",
        ),
        (
            json!({"name": "f", "method": "GET", "url": "http://x.test/", "headers": {"Bad Header": "x"}}),
            "headers.Bad Header",
        ),
    ] {
        let r = api.post("/api/v1/api-requests", key, &body).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{}", r.text);
    }
    let slow_request = json!({"name": "a", "method": "GET", "url": "http://x.test/", "timeout_ms": 20000});
    let r = api.post("/api/v1/api-requests", key, &slow_request).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("api_request_max_timeout_ms = 10000"), "{}", r.text);

    // Workspace settings: defaults, ceilings refused, a raised limit admits the timeout.
    let r = api.get("/api/v1/workspace/settings", key).await;
    assert_eq!(
        r.data().clone(),
        json!({"api_request_max_timeout_ms": 10000, "api_request_max_response_bytes": 262144,
               "ceilings": {"api_request_max_timeout_ms": 25000, "api_request_max_response_bytes": 327680}})
    );
    let api = &api;
    let max_timeout = |ms: u64| {
        let body = json!({"api_request_max_timeout_ms": ms});
        async move { api.send("PATCH", "/api/v1/workspace/settings", Auth::Key(key), Some(&body)).await }
    };
    let r = max_timeout(60000).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("api_request_max_timeout_ms")));
    let r = max_timeout(25000).await;
    assert_eq!((r.status, r.data()["api_request_max_timeout_ms"].as_u64()), (200, Some(25000)));
    let r = api.post("/api/v1/api-requests", key, &slow_request).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Listing, another workspace, delete.
    let r = api.get("/api/v1/api-requests?limit=2", key).await;
    assert_eq!((r.data().as_array().unwrap().len(), r.body["next_cursor"].is_string()), (2, true));
    let theirs = server.workspace();
    assert_eq!(api.get(&path, &theirs.api_key).await.error_code(), "api_request_not_found");
    let r = api.send("DELETE", &path, Auth::Key(key), None).await;
    assert_eq!((r.status, r.data()["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(api.get(&path, key).await.status, 404);
}

async fn failures_are_typed_errors_never_truncated(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    // A dozen test calls back to back: over the default 10 a second (metering has its own test).
    let args =
        ["admin", "workspace", "limits", "--workspace", ws.id.as_str(), "--set", "api_request_test.per_second=100"];
    server.admin(&args);
    let remote = Receiver::start_fn(|req: &Recorded| match req.path.as_str() {
        "/text" => Reply::status(200, "plain words"),
        "/scalar" => Reply::status(200, "42"),
        "/big" => Reply::status(200, &json!({"blob": "x".repeat(4000)}).to_string()),
        "/slow" => Reply::ok().after(Duration::from_millis(1500)),
        "/missing" => Reply::status(404, r#"{"error":"no such customer"}"#),
        "/redirect" => Reply::status(302, "").header("location", "http://127.0.0.1:9/"),
        _ => Reply::ok(),
    })
    .await;
    let r = api
        .send(
            "PATCH",
            "/api/v1/workspace/settings",
            Auth::Key(key),
            Some(&json!({"api_request_max_response_bytes": 2048})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let unsaved = |path: &str, extra: Value| {
        let mut request = json!({"method": "GET", "url": format!("{}{path}", remote.url)});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        json!({"request": request})
    };
    let cases = [
        ("/text", json!({}), "response_not_json"),
        ("/scalar", json!({}), "response_not_json"),
        ("/big", json!({}), "response_too_large"),
        ("/slow", json!({"timeout_ms": 300}), "timeout"),
        ("/missing", json!({}), "http_status"),
        ("/redirect", json!({}), "http_status"),
    ];
    for (path, extra, code) in cases {
        let r = api.post("/api/v1/api-requests/test", key, &unsaved(path, extra)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.data();
        assert_eq!((d["ok"].as_bool(), d["error"]["code"].as_str()), (Some(false), Some(code)), "{path}: {d}");
        assert!(d["response"].is_null(), "{path}: never a partial answer");
    }
    let r = api.post("/api/v1/api-requests/test", key, &unsaved("/missing", json!({}))).await;
    assert_eq!((r.data()["status"].as_u64(), r.data()["error"]["status"].as_u64()), (Some(404), Some(404)));
    assert!(r.data()["error"]["message"].as_str().unwrap().contains("no such customer"), "{}", r.text);
    let r = api.post("/api/v1/api-requests/test", key, &unsaved("/big", json!({}))).await;
    assert!(r.data()["error"]["message"].as_str().unwrap().contains("2048"), "{}", r.text);

    // An undefined variable names itself and its field; nothing is sent.
    let before = remote.requests().len();
    let body = json!({"request": {"method": "POST", "url": format!("{}/ok", remote.url),
                                  "body": r#"{"plan": "{{ workflow.profile.plan }}"}"#},
                      "variables": {"workflow": {}}});
    let r = api.post("/api/v1/api-requests/test", key, &body).await;
    let e = &r.data()["error"];
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str(), e["variable"].as_str()),
        (Some("template_error"), Some("body"), Some("workflow.profile")),
        "{}",
        r.text
    );
    // A JSON body must render to JSON.
    let body = json!({"request": {"method": "POST", "url": format!("{}/ok", remote.url), "body": "{\"n\": {{ contact.name }}}"},
                      "variables": {"contact": {"name": "not json"}}});
    let r = api.post("/api/v1/api-requests/test", key, &body).await;
    assert_eq!(r.data()["error"]["code"], "template_error", "{}", r.text);
    assert_eq!(remote.requests().len(), before, "nothing sent for a template error");
    // An unsaved configuration is validated like a saved one.
    let r = api.post("/api/v1/api-requests/test", key, &json!({"request": {"method": "GET"}})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("request.url")), "{}", r.text);
    let r = api.post("/api/v1/api-requests/test", key, &json!({"request": {"method": "GET", "url": "ftp://x/"}})).await;
    assert_eq!(r.data()["error"]["code"], "url_not_allowed", "{}", r.text);
}

fn three_nodes(api_request_id: &str) -> Value {
    json!({"nodes": [
        {"id": "profile", "type": "fetch_api_data", "api_request_id": api_request_id, "output_key": "customer_profile", "on_error": "fail"},
        {"id": "is_pro", "type": "condition", "if": "workflow.customer_profile.plan == \"pro\""},
        {"id": "opener", "type": "render_message", "template": "{{ contact.first_name }} on {{ workflow.customer_profile.plan }}", "output_key": "opener"}
    ]})
}

async fn runs_of(api: &Api, key: &str, lead: &str) -> Vec<Value> {
    let r = api.get(&format!("/api/v1/leads/{lead}/workflow-runs"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().as_array().unwrap().clone()
}

/// Waits until the lead's newest run has ended.
async fn finished_run(api: &Api, key: &str, lead: &str) -> Value {
    eventually(SETTLE, || async {
        let runs = runs_of(api, key, lead).await;
        runs.first().filter(|r| ["succeeded", "failed", "stopped"].contains(&r["status"].as_str().unwrap())).cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no finished run for {lead} within {SETTLE:?}"))
}

async fn a_three_node_workflow_runs_for_leads_ingested_into_an_active_campaign(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let remote = json_api().await;
    let profile = create_request(
        &api,
        key,
        &json!({"name": "Customer profile", "method": "GET", "url": format!("{}/customers/{{{{ contact.email }}}}", remote.url)}),
    )
    .await;
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(key, "Pro openers", "webhook").await;
    let path = format!("/api/v1/campaigns/{campaign}/workflow");

    // Validation on save names the node.
    let bad = [
        (
            json!({"nodes": [{"id": "p", "type": "fetch_api_data", "api_request_id": "apr_NOPE", "output_key": "x"}]}),
            "node \"p\"",
            "does not exist",
        ),
        (
            json!({"nodes": [{"id": "a", "type": "render_message", "template": "x", "output_key": "k"},
                          {"id": "b", "type": "render_message", "template": "y", "output_key": "k"}]}),
            "node \"b\"",
            "earlier node",
        ),
        (
            json!({"nodes": [{"id": "early", "type": "render_message", "template": "{{ workflow.customer_profile.plan }}", "output_key": "m"},
                          {"id": "profile", "type": "fetch_api_data", "api_request_id": profile, "output_key": "customer_profile"}]}),
            "node \"early\"",
            "workflow.customer_profile",
        ),
        (
            json!({"nodes": [{"id": "v", "type": "find_email", "output_key": "f", "domain": "{{ contact.website"}]}),
            "node \"v\"",
            "domain",
        ),
        (json!({"nodes": [{"id": "c", "type": "condition", "if": "contact.name =="}]}), "node \"c\"", "if"),
    ];
    for (doc, node, words) in bad {
        let r = api.send("PUT", &path, Auth::Key(key), Some(&doc)).await;
        assert_eq!((r.status, r.error_code()), (400, "validation_error"), "{}", r.text);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(node) && message.contains(words), "{message}");
    }
    assert_eq!(api.get(&path, key).await.error_code(), "workflow_not_found");
    let r = api.send("PUT", &path, Auth::Key(key), Some(&three_nodes(&profile))).await;
    assert_eq!((r.status, r.data()["workflow_version"].as_u64()), (200, Some(1)), "{}", r.text);
    assert_eq!(api.get(&path, key).await.data()["nodes"][1]["if"], "workflow.customer_profile.plan == \"pro\"");

    // Draft: ingest starts nothing; activation starts runs for the leads without one.
    let early =
        ingest(&api, &token, &campaign, vec![json!({"first_name": "Alice", "email": "alice@example.com"})]).await;
    assert!(runs_of(&api, key, &early[0]).await.is_empty());
    assert_eq!(api.act(&format!("/api/v1/campaigns/{campaign}/activate"), key).await.status, 200);
    let run = finished_run(&api, key, &early[0]).await;
    assert_eq!((run["status"].as_str(), run["trigger"].as_str()), (Some("succeeded"), Some("activation")), "{run}");

    // Active: ingest runs the workflow by itself.
    let ids = ingest(
        &api,
        &token,
        &campaign,
        vec![
            json!({"first_name": "Alicia", "email": "alice.b@example.com"}),
            json!({"first_name": "Bob", "email": "bob@example.com"}),
        ],
    )
    .await;
    let pro = finished_run(&api, key, &ids[0]).await;
    assert_eq!(pro["status"], "succeeded", "{pro}");
    assert_eq!(pro["outputs"]["opener"], "Alicia on pro");
    assert_eq!(pro["outputs"]["customer_profile"], json!({"plan": "pro", "email": "alice.b@example.com", "seats": 5}));
    let statuses: Vec<(&str, &str, u64)> = pro["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["status"].as_str().unwrap(), n["attempts"].as_u64().unwrap()))
        .collect();
    assert_eq!(statuses, [("profile", "succeeded", 1), ("is_pro", "succeeded", 1), ("opener", "succeeded", 1)]);
    let free = finished_run(&api, key, &ids[1]).await;
    assert_eq!(free["status"], "stopped", "{free}");
    assert_eq!(
        (free["nodes"][1]["result"].as_bool(), free["nodes"][2]["status"].as_str()),
        (Some(false), Some("skipped"))
    );

    // The run by id, and the preview with each lead's latest run and message.
    let r = api.get(&format!("/api/v1/workflow-runs/{}", pro["id"].as_str().unwrap()), key).await;
    assert_eq!(r.data(), &pro);
    assert_eq!(
        api.get(&format!("/api/v1/workflow-runs/{}", pro["id"].as_str().unwrap()), &server.workspace().api_key)
            .await
            .status,
        404
    );
    let r = api.get(&format!("/api/v1/campaigns/{campaign}/leads"), key).await;
    let preview: Vec<(String, Value, Value)> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_owned(),
                l["workflow_run"]["status"].clone(),
                l["workflow_run"]["message"].clone(),
            )
        })
        .collect();
    assert!(preview.contains(&(ids[0].clone(), json!("succeeded"), json!("Alicia on pro"))), "{preview:?}");
    assert!(preview.contains(&(ids[1].clone(), json!("stopped"), Value::Null)), "{preview:?}");
    // Each lead's API call happened once.
    assert_eq!(remote.requests().iter().filter(|q| decode(&q.path) == "/customers/alice.b@example.com").count(), 1);

    // A rerun is a new run with the current version.
    let r = api.act(&format!("/api/v1/leads/{}/workflow-runs", ids[1]), key).await;
    assert_eq!((r.status, r.data()["trigger"].as_str()), (202, Some("manual")), "{}", r.text);
    let rerun_id = r.data()["id"].as_str().unwrap().to_owned();
    let run = finished_run(&api, key, &ids[1]).await;
    assert_eq!((run["id"].as_str(), run["status"].as_str()), (Some(rerun_id.as_str()), Some("stopped")));
    assert_eq!(runs_of(&api, key, &ids[1]).await.len(), 2);
}

async fn a_run_is_retried_after_a_503_and_get_answers_are_cached(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let remote = json_api().await;
    remote.script(vec![Reply::status(503, r#"{"error":"busy"}"#).header("retry-after", "1")]);
    let profile = create_request(
        &api,
        key,
        &json!({"name": "Cached profile", "method": "GET", "url": format!("{}/customers/{{{{ contact.email }}}}", remote.url),
                "cache_ttl_s": 300, "retry": {"attempts": 3, "backoff_ms": 100}}),
    )
    .await;
    let (campaign, token) = running(server, &ws, "Cached", &three_nodes(&profile)).await;
    let ids = ingest(&api, &token, &campaign, vec![json!({"first_name": "Al", "email": "alice@example.com"})]).await;
    let run = finished_run(&api, key, &ids[0]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["nodes"][0]["attempts"], 2, "one 503, then success: {run}");
    assert_eq!(run["outputs"]["opener"], "Al on pro");
    let calls = || remote.requests().iter().filter(|q| decode(&q.path) == "/customers/alice@example.com").count();
    assert_eq!(calls(), 2);
    // Within the TTL the same GET is answered from the cache: no request.
    let r = api.act(&format!("/api/v1/leads/{}/workflow-runs", ids[0]), key).await;
    let rerun = r.data()["id"].as_str().unwrap().to_owned();
    let run = finished_run(&api, key, &ids[0]).await;
    assert_eq!((run["id"].as_str(), run["status"].as_str()), (Some(rerun.as_str()), Some("succeeded")));
    assert_eq!(run["nodes"][0]["cached"], true, "{run}");
    assert_eq!(calls(), 2, "the second run made no request");
}

async fn set_fields_and_push_nodes_change_and_send_the_lead(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let remote = Receiver::start_fn(|req: &Recorded| match req.path.as_str() {
        "/company" => Reply::status(200, r#"{"company": "Acme \"Rockets\"", "tier": "gold"}"#),
        _ => Reply::status(404, r#"{"error":"nope"}"#),
    })
    .await;
    let hook = Receiver::start(Reply::ok()).await;
    let company = create_request(
        &api,
        key,
        &json!({"name": "Company", "method": "POST", "url": format!("{}/company", remote.url),
                "body": r#"{"email": "{{ contact.email }}"}"#, "retry": {"attempts": 1, "backoff_ms": 100}}),
    )
    .await;
    let missing = create_request(
        &api,
        key,
        &json!({"name": "Missing", "method": "GET", "url": format!("{}/missing", remote.url), "retry": {"attempts": 1, "backoff_ms": 100}}),
    )
    .await;
    let doc = json!({"nodes": [
        {"id": "extra", "type": "fetch_api_data", "api_request_id": missing, "output_key": "extra", "on_error": "continue"},
        {"id": "firm", "type": "fetch_api_data", "api_request_id": company, "output_key": "firm", "on_error": "skip_lead"},
        {"id": "fill", "type": "set_fields", "fields": {"company": "{{ workflow.firm.company }}", "custom_fields.tier": "{{ workflow.firm.tier }}"}},
        {"id": "gold", "type": "condition", "if": "contact.custom_fields.tier == 'silver'", "else": "send"},
        {"id": "never", "type": "render_message", "template": "not for gold", "output_key": "skipped_text"},
        {"id": "send", "type": "push", "destination": "webhook_url", "webhook_url": format!("{}/leads", hook.url)}
    ]});
    let (campaign, token) = running(server, &ws, "Enrich and push", &doc).await;
    let ids = ingest(&api, &token, &campaign, vec![json!({"name": "Grace", "email": "grace@example.com"})]).await;
    let run = finished_run(&api, key, &ids[0]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let nodes: Vec<(&str, &str)> = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("extra", "failed"),
            ("firm", "succeeded"),
            ("fill", "succeeded"),
            ("gold", "succeeded"),
            ("never", "skipped"),
            ("send", "succeeded")
        ]
    );
    assert_eq!(
        (run["nodes"][0]["error"]["code"].as_str(), run["nodes"][0]["error"]["status"].as_u64()),
        (Some("http_status"), Some(404))
    );
    assert_eq!(run["nodes"][3]["result"], false);
    let push_id = run["nodes"][5]["push_id"].as_str().unwrap();
    // The lead was changed, then pushed with its new fields.
    let lead = api.get(&format!("/api/v1/leads/{}", ids[0]), key).await;
    assert_eq!(
        (lead.data()["company"].as_str(), lead.data()["custom_fields"]["tier"].as_str()),
        (Some("Acme \"Rockets\""), Some("gold"))
    );
    let sent = hook.wait_for(1, SETTLE).await;
    let body = sent[0].json();
    assert_eq!(body["push_id"], push_id);
    assert_eq!(body["leads"][0]["company"], "Acme \"Rockets\"", "{body}");
    assert_eq!(
        remote.requests().iter().find(|q| q.path == "/company").unwrap().json(),
        json!({"email": "grace@example.com"})
    );
}

async fn verify_email_nodes_store_the_verifiers_verdict(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    // No network here: a lead without an email, then one whose email fails the syntax check.
    let doc = json!({"nodes": [
        {"id": "check_none", "type": "verify_email", "output_key": "none_check", "on_error": "continue"},
        {"id": "typo", "type": "set_fields", "fields": {"email": "grace@@example..com"}},
        {"id": "check", "type": "verify_email", "output_key": "email_check"},
        {"id": "say", "type": "render_message", "output_key": "m", "template": "{{ workflow.email_check.status }}"}
    ]});
    let (campaign, token) = running(server, &ws, "Verify", &doc).await;
    let ids = ingest(&api, &token, &campaign, vec![json!({"name": "Grace"})]).await;
    let run = finished_run(&api, key, &ids[0]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["nodes"][0]["error"]["code"], "no_email", "{run}");
    let verdict = &run["outputs"]["email_check"];
    assert_eq!(
        (verdict["email"].as_str(), verdict["regexp"].as_bool()),
        (Some("grace@@example..com"), Some(false)),
        "{run}"
    );
    assert_eq!(run["outputs"]["m"], verdict["status"]);
}

/// `find_email` against the local DNS/SMTP fakes (normal.test: its mail server accepts
/// alice, bob and user<N> only): a lead's own address, a verified pattern learnt from the
/// workspace's leads, no candidate left, and per-node errors under `on_error: continue`.
async fn find_email_nodes_store_the_finders_answer(backend: Backend) {
    let server = crate::harness::mail::shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let doc = json!({"nodes": [
        {"id": "find", "type": "find_email", "output_key": "found", "on_error": "continue",
         "domain": "{{ contact.custom_fields.mail_domain | default('') }}"},
        {"id": "say", "type": "render_message", "output_key": "m",
         "template": "{% if workflow.found is defined %}{{ workflow.found.email }} {{ workflow.found.method }}{% else %}none{% endif %}"}
    ]});
    let (campaign, token) = running(server, &ws, "Find", &doc).await;
    let on = |name: &str, extra: Value| {
        let mut lead = json!({"name": name, "custom_fields": {"mail_domain": "normal.test"}});
        lead.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        lead
    };
    let ids = ingest(
        &api,
        &token,
        &campaign,
        vec![
            on("Bob Jones", json!({"email": "bob@normal.test"})),
            on("Alice Doe", json!({})),
            json!({"name": "Dan Brown", "website": "https://www.normal.test/about"}),
            on("Carol", json!({})),
            json!({"name": "Eve Stone", "custom_fields": {"mail_domain": "not a domain"}}),
        ],
    )
    .await;
    let runs = futures_util::future::join_all(ids.iter().map(|id| finished_run(&api, key, id))).await;
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    // Bob is a lead of the workspace: his own address.
    let bob = &runs[0]["outputs"]["found"];
    assert_eq!(
        (bob["email"].as_str(), bob["method"].as_str(), bob["score"].as_u64()),
        (Some("bob@normal.test"), Some("workspace_lead"), Some(95)),
        "{bob}"
    );
    assert_eq!(runs[0]["outputs"]["m"], "bob@normal.test workspace_lead");
    // Alice follows Bob's `{first}` pattern, confirmed by the mail server.
    let alice = &runs[1]["outputs"]["found"];
    assert_eq!(
        (
            alice["email"].as_str(),
            alice["pattern"].as_str(),
            alice["method"].as_str(),
            alice["verification"]["status"].as_str()
        ),
        (Some("alice@normal.test"), Some("{first}"), Some("pattern"), Some("valid")),
        "{alice}"
    );
    assert_eq!(
        (alice["first_name"].as_str(), alice["last_name"].as_str(), alice["accept_all"].as_bool()),
        (Some("Alice"), Some("Doe"), Some(false))
    );
    // Dan: the domain comes from his website; the server rejects every candidate (dan@
    // first, by the pattern), so there is no address, and the answer says why.
    let dan = &runs[2]["outputs"]["found"];
    assert_eq!((dan["domain"].as_str(), dan["method"].as_str()), (Some("normal.test"), Some("none")), "{dan}");
    assert!(dan["email"].is_null() && dan["score"] == 0, "{dan}");
    assert!(dan["reason"].as_str().unwrap().contains("rejected every candidate"), "{dan}");
    // Per-node errors, and the run goes on (`on_error: continue`).
    for (run, code) in [(&runs[3], "no_name"), (&runs[4], "invalid_domain")] {
        assert_eq!(
            (run["nodes"][0]["status"].as_str(), run["nodes"][0]["error"]["code"].as_str()),
            (Some("failed"), Some(code)),
            "{run}"
        );
        assert_eq!(run["outputs"]["m"], "none", "{run}");
    }
}

/// Templates that would overflow the parser's stack (aborting every workspace's service)
/// or take gigabytes are refused with a 4xx or a typed `template_error`, and the
/// service keeps answering.
async fn hostile_templates_are_refused_and_the_service_keeps_answering(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let crash_url = format!("https://example.com/{{{{ {}1 }}}}", "-".repeat(3000));
    // A request whose URL would overflow the parser's stack, unsaved and saved.
    let r = api
        .post("/api/v1/api-requests/test", key, &json!({"request": {"name": "t", "method": "GET", "url": crash_url}}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        (r.body["error"]["code"].as_str(), r.body["error"]["field"].as_str()),
        (Some("validation_error"), Some("url")),
        "{}",
        r.text
    );
    assert!(r.text.contains("nests too deeply"), "{}", r.text);
    let r = api.post("/api/v1/api-requests", key, &json!({"name": "deep", "method": "GET", "url": crash_url})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("nests too deeply"), "{}", r.text);
    // Workflow conditions and messages, on save.
    let campaign = api.campaign(key, "hostile templates", "webhook").await;
    let path = format!("/api/v1/campaigns/{campaign}/workflow");
    for condition in
        [format!("{}1", "-".repeat(2400)), format!("{}b", "a.".repeat(4000)), format!("{}y", "x|".repeat(4000))]
    {
        let doc = json!({"nodes": [{"id": "c", "type": "condition", "if": condition}]});
        let r = api.send("PUT", &path, Auth::Key(key), Some(&doc)).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("nests too deeply"), "{}", r.text);
        let doc = json!({"nodes": [{"id": "m", "type": "render_message", "template": format!("{{{{ {condition} }}}}"), "output_key": "m"}]});
        let r = api.send("PUT", &path, Auth::Key(key), Some(&doc)).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("nests too deeply"), "{}", r.text);
    }
    // The memory bomb stops at once with a typed error; nothing is sent.
    let r = api
        .post(
            "/api/v1/api-requests/test",
            key,
            &json!({"request": {"method": "GET", "url": "https://example.com/{{ [1] * 100000000 }}"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.data()["error"]["code"], "template_error", "{}", r.text);
    assert!(r.data()["error"]["message"].as_str().unwrap().contains("fuel"), "{}", r.text);
    let r = api.send("GET", "/healthz", Auth::None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api.get("/api/v1/api-requests", key).await.status, 200);
}

/// API Gateway waits 30 s at most, so no call may be allowed to wait longer than 25 s: the
/// settings refuse a limit over that ceiling (the old ceiling, 30000, included) with a 400
/// that names it, and an API request cannot ask for more either.
async fn settings_refuse_a_timeout_over_the_25_second_ceiling_and_name_it(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let r = api.get("/api/v1/workspace/settings", key).await;
    assert_eq!(r.data()["ceilings"]["api_request_max_timeout_ms"], 25000, "{}", r.text);
    for ms in [25001, 30000] {
        let body = json!({"api_request_max_timeout_ms": ms});
        let r = api.send("PATCH", "/api/v1/workspace/settings", Auth::Key(key), Some(&body)).await;
        assert_eq!((r.status, r.error_code()), (400, "validation_error"), "{}", r.text);
        assert_eq!(r.body["error"]["field"], "api_request_max_timeout_ms", "{}", r.text);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("hard ceiling 25000 ms") && message.contains(&format!("got {ms}")), "{message}");
    }
    let r = api.get("/api/v1/workspace/settings", key).await;
    assert_eq!(r.data()["api_request_max_timeout_ms"], 10000, "a refused PATCH changes nothing: {}", r.text);
    let body = json!({"api_request_max_timeout_ms": 25000});
    let r = api.send("PATCH", "/api/v1/workspace/settings", Auth::Key(key), Some(&body)).await;
    assert_eq!((r.status, r.data()["api_request_max_timeout_ms"].as_u64()), (200, Some(25000)), "{}", r.text);
    let request = json!({"name": "slow", "method": "GET", "url": "http://x.test/", "timeout_ms": 25001});
    let r = api.post("/api/v1/api-requests", key, &request).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("timeout_ms")), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("api_request_max_timeout_ms = 25000"), "{}", r.text);
    let request = json!({"name": "slow", "method": "GET", "url": "http://x.test/", "timeout_ms": 25000});
    assert_eq!(api.post("/api/v1/api-requests", key, &request).await.status, 201);
}

/// The preview's page budget (4 MiB, as every listing's) counts each lead's latest run too:
/// 100 leads of about 38 KB fit it alone, but not with their 8 KB messages. The page ends
/// early with a cursor, and following it shows every lead once, each page within budget.
async fn the_campaign_preview_counts_run_messages_in_its_page_budget(backend: Backend) {
    const BUDGET: usize = 4 * 1024 * 1024;
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(key, "Long openers", "webhook").await;
    let doc = json!({"nodes": [
        {"id": "opener", "type": "render_message", "template": "{{ contact.notes }}", "output_key": "opener"}]});
    let r = api.send("PUT", &format!("/api/v1/campaigns/{campaign}/workflow"), Auth::Key(key), Some(&doc)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api.act(&format!("/api/v1/campaigns/{campaign}/activate"), key).await.status, 200);
    let notes = "n".repeat(8000);
    let blob = "b".repeat(30_000);
    let leads: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("Lead {i}"), "notes": notes, "custom_fields": {"blob": blob}}))
        .collect();
    let ids = ingest(&api, &token, &campaign, leads).await;
    assert_eq!(ids.len(), 100);
    // Every page of the preview, following the cursor (bounded).
    let pages = || async {
        let (mut pages, mut cursor) = (Vec::new(), None::<String>);
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/campaigns/{campaign}/leads?limit=100&cursor={c}"),
                None => format!("/api/v1/campaigns/{campaign}/leads?limit=100"),
            };
            let r = api.get(&path, key).await;
            assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
            cursor = r.body["next_cursor"].as_str().map(str::to_owned);
            pages.push(r);
            if cursor.is_none() {
                return pages;
            }
        }
        panic!("the preview did not end within 20 pages");
    };
    let messaged = |pages: &[crate::harness::Resp]| {
        pages
            .iter()
            .flat_map(|p| p.data().as_array().unwrap().iter())
            .filter(|l| l["workflow_run"]["message"].as_str().is_some_and(|m| m.len() == 8000))
            .count()
    };
    let pages = eventually(SETTLE * 2, || async {
        let pages = pages().await;
        (messaged(&pages) == 100).then_some(pages)
    })
    .await
    .expect("every lead's run rendered its message");
    assert!(pages.len() >= 2, "100 leads with their messages do not fit one page");
    assert!(pages[0].data().as_array().unwrap().len() < 100);
    let mut seen: Vec<String> = Vec::new();
    for page in &pages {
        // The budget counts escaped bytes; the envelope and field names add a little.
        assert!(page.text.len() <= BUDGET + 32 * 1024, "a page of {} bytes", page.text.len());
        seen.extend(page.data().as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected, "every lead once");
}

both_backends!(
    the_campaign_preview_counts_run_messages_in_its_page_budget,
    settings_refuse_a_timeout_over_the_25_second_ceiling_and_name_it,
    hostile_templates_are_refused_and_the_service_keeps_answering,
    every_method_renders_templates_safely_and_defaults_to_json,
    api_requests_crud_masks_secrets_and_enforces_workspace_limits,
    failures_are_typed_errors_never_truncated,
    a_three_node_workflow_runs_for_leads_ingested_into_an_active_campaign,
    a_run_is_retried_after_a_503_and_get_answers_are_cached,
    set_fields_and_push_nodes_change_and_send_the_lead,
    verify_email_nodes_store_the_verifiers_verdict,
    find_email_nodes_store_the_finders_answer,
);
