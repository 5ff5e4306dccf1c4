//! Pushing leads (the push-leads specification) against real local receivers and fake
//! providers: the specification's answers, missing and foreign ids, validation, timeouts
//! and retries, HeyReach batches, Instantly per-lead outcomes, and the push record at
//! `GET /api/v1/pushes/{id}`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::fakes::{self, BLOCKED_DOMAIN, HEYREACH_KEY, INSTANTLY_CAMPAIGN, INSTANTLY_KEY};
use crate::harness::receiver::{ClosingPort, Gate, Receiver, Reply};
use crate::harness::{Api, Auth, Backend, Resp, Server, Workspace, eventually, shared};

const PUSH: &str = "/api/v1/leads/push";
/// Bounds for background retries (SQS rounds delays up to whole seconds).
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Stores `leads` in a new webhook campaign of `ws`; their ids, in order.
async fn ingest(server: &Server, ws: &Workspace, leads: Vec<Value>) -> Vec<String> {
    let api = server.api();
    let token = server.webhook_token(ws);
    let campaign = api.campaign(&ws.api_key, "Outbound", "webhook").await;
    let leads: Vec<Value> = leads
        .into_iter()
        .map(|mut lead| {
            lead["campaign_id"] = json!(campaign);
            lead
        })
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": format!("push-{campaign}"), "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.data()["lead_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect()
}

/// The answer's `data` without `push_id` (the one field the push-leads specification's
/// examples do not show).
fn seed_fields(r: &Resp) -> (Value, String) {
    assert_eq!(r.status, 200, "{}", r.text);
    let mut data = r.data().clone();
    let push_id = data.as_object_mut().unwrap().remove("push_id").and_then(|v| v.as_str().map(str::to_owned));
    let push_id = push_id.unwrap_or_else(|| panic!("no push_id: {}", r.text));
    assert!(push_id.starts_with("push_"), "{push_id}");
    (data, push_id)
}

async fn record(api: &Api, key: &str, push_id: &str) -> Value {
    let r = api.get(&format!("/api/v1/pushes/{push_id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().clone()
}

/// Waits until a lead is marked `pushed`: the push record settles first, the leads follow.
async fn becomes_pushed(api: &Api, key: &str, id: &str) {
    let marked =
        eventually(SETTLE_LIMIT, || async { (lead(api, key, id).await["status"] == "pushed").then_some(()) }).await;
    assert!(marked.is_some(), "lead {id} never marked pushed");
}

/// Waits until the push has ended (no longer `retrying`).
async fn settled(api: &Api, key: &str, push_id: &str) -> Value {
    eventually(SETTLE_LIMIT, || async {
        let push = record(api, key, push_id).await;
        (push["status"] != "retrying").then_some(push)
    })
    .await
    .unwrap_or_else(|| panic!("push {push_id} still retrying after {SETTLE_LIMIT:?}"))
}

async fn lead(api: &Api, key: &str, id: &str) -> Value {
    let r = api.get(&format!("/api/v1/leads/{id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().clone()
}

fn outcomes(push: &Value) -> Vec<(String, String)> {
    push["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["lead_id"].as_str().unwrap().to_owned(), l["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

async fn webhook_push_delivers_every_field_and_marks_leads_pushed(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let receiver = Receiver::start(Reply::ok()).await;
    let ids = ingest(
        server,
        &ws,
        vec![
            json!({"name": "Alice", "email": "alice@example.com", "score": 7, "industry": "fintech",
                   "custom_fields": {"tier": "A", "tags": ["x", "y"]}}),
            json!({"first_name": "Bob", "linkedin": "https://www.linkedin.com/in/bob"}),
        ],
    )
    .await;
    let stored = [lead(&api, &ws.api_key, &ids[0]).await, lead(&api, &ws.api_key, &ids[1]).await];
    let url = format!("{}/hooks/leads?source=leadpush", receiver.url);
    let body = json!({"lead_ids": [ids[0], ids[1], ids[0]], "destination": "webhook_url", "webhook_url": url});
    let r = api.post(PUSH, &ws.api_key, &body).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        data,
        json!({
            "status": "dispatched", "destination": "webhook_url", "lead_count": 2, "requested_lead_count": 2,
            "missing_lead_ids": [], "dispatched": true, "provider_status_code": 200, "provider_response": "{\"ok\":true}"
        })
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one POST; the repeated id is pushed once");
    let hook = &requests[0];
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str(), hook.query.as_deref()),
        ("POST", "/hooks/leads", Some("source=leadpush"))
    );
    assert_eq!(hook.header("content-type"), Some("application/json"));
    assert_eq!(hook.header("idempotency-key"), Some(push_id.as_str()));
    let sent = hook.json();
    assert_eq!((&sent["push_id"], &sent["lead_count"], &sent["attempt"]), (&json!(push_id), &json!(2), &json!(1)));
    assert_eq!(sent["leads"], json!(stored), "every stored field, custom fields included");
    assert_eq!(sent["leads"][0]["custom_fields"], json!({"industry": "fintech", "tier": "A", "tags": ["x", "y"]}));

    for id in &ids {
        // Marking runs in the push's follow-up task, after the answer.
        becomes_pushed(&api, &ws.api_key, id).await;
        let now = lead(&api, &ws.api_key, id).await;
        assert_eq!(now["status"], "pushed", "{now}");
        assert!(now["pushed_at"].is_string(), "{now}");
    }
    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!((&push["id"], &push["status"], &push["attempts"]), (&json!(push_id), &json!("dispatched"), &json!(1)));
    assert_eq!(push["webhook_url"], url);
    assert_eq!(outcomes(&push), vec![(ids[0].clone(), "pushed".into()), (ids[1].clone(), "pushed".into())]);
    assert_eq!(push["attempt_log"][0]["calls"][0]["status_code"], 200);
    assert!(push["completed_at"].is_string() && push["next_attempt_at"].is_null(), "{push}");
}

async fn a_501_receiver_gets_exactly_the_seed_dispatch_failed_answer(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let unsupported = Reply {
        headers: vec![("content-type".into(), "text/plain".into())],
        ..Reply::status(501, "Unsupported method")
    };
    let receiver = Receiver::start(unsupported).await;
    let ids = ingest(server, &ws, vec![json!({"name": "Lead 1"}), json!({"name": "Lead 2"})]).await;
    let body =
        json!({"lead_ids": ids, "destination": "webhook_url", "webhook_url": format!("{}/webhook", receiver.url)});
    let r = api.post(PUSH, &ws.api_key, &body).await;
    let (data, push_id) = seed_fields(&r);
    // The push-leads specification's "Response (200): dispatch failed", with this
    // workspace's lead ids.
    assert_eq!(
        data,
        json!({
            "status": "dispatch_failed",
            "destination": "webhook_url",
            "lead_count": 0,
            "requested_lead_count": 2,
            "missing_lead_ids": [ids[0], ids[1]],
            "dispatched": false,
            "provider_status_code": 501,
            "provider_response": "Unsupported method"
        })
    );
    assert_eq!(receiver.requests().len(), 1);
    for id in &ids {
        let now = lead(&api, &ws.api_key, id).await;
        assert_eq!((&now["status"], &now["pushed_at"]), (&json!("new"), &Value::Null), "{now}");
    }
    // 501 will not change by waiting: the push ends at once, nothing is retried.
    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!(
        (&push["status"], &push["failed_count"], &push["next_attempt_at"]),
        (&json!("dispatch_failed"), &json!(2), &Value::Null)
    );
    assert!(push["leads"][0]["reason"].as_str().unwrap().contains("501"), "{push}");
}

async fn unknown_and_foreign_ids_are_reported_missing_not_errors(backend: Backend) {
    let server = shared(backend);
    let (api, mine, theirs) = (server.api(), server.workspace(), server.workspace());
    let receiver = Receiver::start(Reply::ok()).await;
    let my_ids = ingest(server, &mine, vec![json!({"name": "Mine"})]).await;
    let their_ids = ingest(server, &theirs, vec![json!({"name": "Theirs"})]).await;
    let unknown = "req_01JUNKNOWN00000000000000000_0001";
    let url = format!("{}/hook", receiver.url);
    let body =
        json!({"lead_ids": [their_ids[0], my_ids[0], unknown, ""], "destination": "webhook_url", "webhook_url": url});
    let r = api.post(PUSH, &mine.api_key, &body).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        (&data["status"], &data["dispatched"], &data["lead_count"]),
        (&json!("dispatched"), &json!(true), &json!(1))
    );
    assert_eq!(data["requested_lead_count"], 4);
    assert_eq!(data["missing_lead_ids"], json!([their_ids[0], unknown, ""]));
    let sent = receiver.requests()[0].json();
    let sent_ids: Vec<&str> = sent["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(sent_ids, [my_ids[0].as_str()], "another workspace's lead is never sent");
    assert_eq!(lead(&api, &theirs.api_key, &their_ids[0]).await["status"], "new");

    // Nothing that exists: no call at all, and an answer that says why.
    let r = api
        .post(PUSH, &mine.api_key, &json!({"lead_ids": [unknown], "destination": "webhook_url", "webhook_url": url}))
        .await;
    let (data, _) = seed_fields(&r);
    assert_eq!(
        data,
        json!({
            "status": "dispatch_failed", "destination": "webhook_url", "lead_count": 0, "requested_lead_count": 1,
            "missing_lead_ids": [unknown], "dispatched": false, "provider_status_code": null,
            "provider_response": "Nothing was sent to the webhook URL: 1 lead not found in this workspace."
        })
    );
    assert_eq!(receiver.requests().len(), 1);
    // A push is as private as its leads.
    let r = api.get(&format!("/api/v1/pushes/{push_id}"), &theirs.api_key).await;
    assert_eq!((r.status, r.error_code()), (404, "push_not_found"));
}

async fn an_idempotency_key_makes_a_retried_push_safe(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let receiver = Receiver::start(Reply::ok()).await;
    let ids = ingest(server, &ws, vec![json!({"name": "Idem", "email": "idem@example.com"})]).await;
    let url = format!("{}/hooks/idem", receiver.url);
    let push = |body: Value, key: &'static str| {
        let api = &api;
        let api_key = ws.api_key.clone();
        async move {
            let headers = [("content-type", "application/json".to_owned()), ("idempotency-key", key.to_owned())];
            let bytes = Some(serde_json::to_vec(&body).unwrap());
            api.raw("POST", PUSH, Auth::Key(&api_key), &headers, bytes).await
        }
    };
    let body = json!({"lead_ids": [ids[0]], "destination": "webhook_url", "webhook_url": url});
    let first = push(body.clone(), "retry-me-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = push(body.clone(), "retry-me-1").await;
    assert_eq!((again.status, again.data()), (200, first.data()), "the first answer again, same push_id");
    assert_eq!(receiver.requests().len(), 1, "the receiver got one POST");

    let other = json!({"lead_ids": [ids[0], "req_other"], "destination": "webhook_url", "webhook_url": url});
    let r = push(other, "retry-me-1").await;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_idempotency_key"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("retry-me-1"), "{}", r.text);
    // A refused push does not use up its key.
    let bad = json!({"lead_ids": [ids[0]], "destination": "heyreach"});
    assert_eq!(push(bad, "retry-me-2").await.status, 400);
    assert_eq!(push(body, "retry-me-2").await.status, 200);
    assert_eq!(receiver.requests().len(), 2);
}

async fn push_requests_are_validated(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let url = "http://127.0.0.1:9/hook";
    let too_many: Vec<String> = (0..1001).map(|i| format!("req_X_{i:04}")).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"destination": "webhook_url", "webhook_url": url}), "lead_ids"),
        (json!({"lead_ids": [], "destination": "webhook_url", "webhook_url": url}), "lead_ids"),
        (json!({"lead_ids": too_many, "destination": "webhook_url", "webhook_url": url}), "lead_ids"),
        (json!({"lead_ids": "req_1", "destination": "webhook_url", "webhook_url": url}), "lead_ids"),
        (json!({"lead_ids": [1], "destination": "webhook_url", "webhook_url": url}), "lead_ids[0]"),
        (
            json!({"lead_ids": ["req_1", "x".repeat(129)], "destination": "webhook_url", "webhook_url": url}),
            "lead_ids[1]",
        ),
        (json!({"lead_ids": ["req_1"]}), "destination"),
        (json!({"lead_ids": ["req_1"], "destination": "salesforce"}), "destination"),
        (json!({"lead_ids": ["req_1"], "destination": "webhook_url"}), "webhook_url"),
        (json!({"lead_ids": ["req_1"], "destination": "webhook_url", "webhook_url": " "}), "webhook_url"),
        (
            json!({"lead_ids": ["req_1"], "destination": "webhook_url", "webhook_url": "ftp://example.com/x"}),
            "webhook_url",
        ),
        (json!({"lead_ids": ["req_1"], "destination": "webhook_url", "webhook_url": "not a url"}), "webhook_url"),
        (
            json!({"lead_ids": ["req_1"], "destination": "webhook_url", "webhook_url": "https://u:p@example.com/"}),
            "webhook_url",
        ),
    ];
    for (body, field) in &cases {
        let r = api.post(PUSH, &ws.api_key, body).await;
        assert_eq!((r.status, r.error_code()), (400, "validation_error"), "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], *field, "{}", r.text);
    }
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ["req_1"], "destination": "salesforce"})).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("heyreach"), "{}", r.text);

    for (destination, needs) in [("heyreach", "list_id"), ("instantly", "campaign_id")] {
        let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ["req_1"], "destination": destination})).await;
        assert_eq!((r.status, r.error_code()), (400, "integration_not_configured"), "{}", r.text);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("PUT /api/v1/integrations/{destination}")) && message.contains(needs),
            "{message}"
        );
    }
    let r = api.send("POST", PUSH, Auth::None, Some(&json!({"lead_ids": ["req_1"], "destination": "heyreach"}))).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    for id in ["push_01NOSUCHPUSH0000000000000000", "not-a-push"] {
        let r = api.get(&format!("/api/v1/pushes/{id}"), &ws.api_key).await;
        assert_eq!((r.status, r.error_code()), (404, "push_not_found"), "{}", r.text);
    }
}

/// Timeouts and connections closed unanswered answer `dispatch_failed` at once, then are
/// retried from the queue: the slow receiver gets the leads on the second attempt; the dead
/// one is given up after the attempt limit.
async fn slow_and_unreachable_destinations_are_retried_then_given_up(backend: Backend) {
    // The timeout is long enough for a loopback answer on a loaded machine (the retry must
    // succeed at once); the first answer is held until after the push answered, so it can
    // only time out.
    let server = Server::start_with(
        backend,
        &[("LEADPUSH_OUTBOUND_TIMEOUT_MS", "2000"), ("LEADPUSH_PUSH_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms")],
        false,
    );
    let (api, ws) = (server.api(), server.workspace());
    let ids = ingest(&server, &ws, vec![json!({"name": "Slow"}), json!({"name": "Dead"})]).await;

    let receiver = Receiver::start(Reply::ok()).await;
    let first_answer = Gate::default();
    receiver.script(vec![Reply::ok().held_by(&first_answer)]);
    let body =
        json!({"lead_ids": [ids[0]], "destination": "webhook_url", "webhook_url": format!("{}/slow", receiver.url)});
    let (data, push_id) = seed_fields(&api.post(PUSH, &ws.api_key, &body).await);
    first_answer.open();
    assert_eq!(
        (&data["status"], &data["dispatched"], &data["lead_count"]),
        (&json!("dispatch_failed"), &json!(false), &json!(0))
    );
    assert_eq!((&data["missing_lead_ids"], &data["provider_status_code"]), (&json!([ids[0]]), &Value::Null));
    assert_eq!(data["provider_response"], "No answer from the webhook URL within 2 s (timed out).");
    let push = settled(&api, &ws.api_key, &push_id).await;
    assert_eq!(
        (&push["status"], &push["attempts"], &push["lead_count"]),
        (&json!("dispatched"), &json!(2), &json!(1)),
        "{push}"
    );
    assert_eq!(push["attempt_log"][0]["calls"][0]["status_code"], Value::Null);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some(push_id.as_str())), "same key on the retry");
    assert_eq!((requests[0].json()["attempt"].as_u64(), requests[1].json()["attempt"].as_u64()), (Some(1), Some(2)));
    becomes_pushed(&api, &ws.api_key, &ids[0]).await;

    let dead = ClosingPort::start().await;
    let body = json!({"lead_ids": [ids[1]], "destination": "webhook_url", "webhook_url": dead.url("/gone")});
    let (data, push_id) = seed_fields(&api.post(PUSH, &ws.api_key, &body).await);
    assert_eq!((&data["status"], &data["provider_status_code"]), (&json!("dispatch_failed"), &Value::Null));
    let response = data["provider_response"].as_str().unwrap();
    assert!(response.starts_with("The request to the webhook URL failed: "), "{data}");
    let push = settled(&api, &ws.api_key, &push_id).await;
    assert_eq!(
        (&push["status"], &push["attempts"], &push["max_attempts"]),
        (&json!("dispatch_failed"), &json!(5), &json!(5)),
        "{push}"
    );
    assert_eq!(push["leads"][0]["reason"], "the request to the webhook URL failed; gave up after 5 attempts");
    assert!(dead.accepted() >= 5, "{} connections for 5 attempts", dead.accepted());
    assert_eq!(lead(&api, &ws.api_key, &ids[1]).await["status"], "new");
}

async fn configure(api: &Api, key: &str, provider: &str, body: Value) {
    let r = api.send("PUT", &format!("/api/v1/integrations/{provider}"), Auth::Key(key), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn heyreach_gets_batches_of_100_with_mapped_fields(backend: Backend) {
    let heyreach = fakes::heyreach().await;
    let server = Server::start_with(backend, &[("LEADPUSH_HEYREACH_BASE_URL", heyreach.base_url.as_str())], false);
    let (api, ws) = (server.api(), server.workspace());
    configure(&api, &ws.api_key, "heyreach", json!({"api_key": HEYREACH_KEY, "list_id": 614694})).await;
    let mut leads: Vec<Value> = (0..250)
        .map(|i| {
            json!({"first_name": format!("Ada{i}"), "last_name": "Lovelace", "email": format!("ada{i}@example.com"),
                   "company": "Acme", "title": "CTO", "linkedin": format!("linkedin.com/in/ada-{i}/"),
                   "score": i, "location": "London", "ice breaker": "Loved your talk"})
        })
        .collect();
    leads.push(json!({"name": "No Profile", "email": "np@example.com"}));
    let ids = ingest(&server, &ws, leads).await;

    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ids, "destination": "heyreach"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        (&data["status"], &data["dispatched"], &data["lead_count"]),
        (&json!("dispatched"), &json!(true), &json!(250)),
        "{data}"
    );
    assert_eq!((&data["requested_lead_count"], &data["missing_lead_ids"]), (&json!(251), &json!([ids[250]])));
    assert_eq!(data["provider_status_code"], 200);

    let calls = heyreach.receiver.requests();
    let mut sizes: Vec<usize> = calls.iter().map(|c| c.json()["leads"].as_array().unwrap().len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100, 100], "250 leads in 3 calls of at most 100");
    assert!(calls.iter().all(|c| c.json()["listId"] == 614694 && c.header("x-api-key") == Some(HEYREACH_KEY)));
    let sent: Vec<Value> = calls.iter().flat_map(|c| c.json()["leads"].as_array().unwrap().clone()).collect();
    let first = sent.iter().find(|l| l["profileUrl"] == "https://www.linkedin.com/in/ada-0").expect("lead 0 sent");
    assert_eq!(
        *first,
        json!({
            "firstName": "Ada0", "lastName": "Lovelace", "profileUrl": "https://www.linkedin.com/in/ada-0",
            "companyName": "Acme", "position": "CTO", "emailAddress": "ada0@example.com", "location": "London",
            "customUserFields": [
                {"name": "leadpush_id", "value": ids[0]},
                {"name": "score", "value": "0"},
                {"name": "ice_breaker", "value": "Loved your talk"},
            ]
        })
    );
    let mut pushed_ids: Vec<&str> = sent.iter().map(|l| l["customUserFields"][0]["value"].as_str().unwrap()).collect();
    pushed_ids.sort();
    pushed_ids.dedup();
    assert_eq!(pushed_ids.len(), 250, "each lead exactly once");

    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!(
        (&push["status"], &push["lead_count"], &push["skipped_count"]),
        (&json!("dispatched"), &json!(250), &json!(1))
    );
    assert_eq!(push["list_id"], 614694);
    let skipped = &push["leads"][250];
    assert_eq!((&skipped["lead_id"], &skipped["outcome"]), (&json!(ids[250]), &json!("skipped")));
    assert!(skipped["reason"].as_str().unwrap().contains("LinkedIn"), "{skipped}");
    assert_eq!(push["attempt_log"][0]["calls"].as_array().unwrap().len(), 3);
    becomes_pushed(&api, &ws.api_key, &ids[249]).await;
    assert_eq!(lead(&api, &ws.api_key, &ids[250]).await["status"], "new");
}

async fn heyreach_429_500_and_timeouts_are_retried_until_the_push_record_shows_success(backend: Backend) {
    let heyreach = fakes::heyreach().await;
    let server = Server::start_with(
        backend,
        &[
            ("LEADPUSH_HEYREACH_BASE_URL", heyreach.base_url.as_str()),
            ("LEADPUSH_PUSH_RETRY_SCHEDULE", "100ms,100ms"),
            ("LEADPUSH_OUTBOUND_TIMEOUT_MS", "1000"),
        ],
        false,
    );
    let (api, ws) = (server.api(), server.workspace());
    configure(&api, &ws.api_key, "heyreach", json!({"api_key": HEYREACH_KEY, "list_id": 7})).await;
    let leads =
        (0..3).map(|i| json!({"name": format!("Lead {i}"), "linkedin": format!("https://www.linkedin.com/in/l{i}")}));
    let ids = ingest(&server, &ws, leads.collect()).await;
    let throttled = r#"{"errorMessage":"Too many requests"}"#;
    heyreach.receiver.script(vec![Reply::status(429, throttled).header("retry-after", "1")]);

    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ids, "destination": "heyreach"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        data,
        json!({
            "status": "dispatch_failed", "destination": "heyreach", "lead_count": 0, "requested_lead_count": 3,
            "missing_lead_ids": ids, "dispatched": false, "provider_status_code": 429, "provider_response": throttled
        })
    );
    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!((&push["status"], &push["pending_count"]), (&json!("retrying"), &json!(3)), "{push}");
    assert!(push["next_attempt_at"].is_string());

    let push = settled(&api, &ws.api_key, &push_id).await;
    assert_eq!(
        (&push["status"], &push["attempts"], &push["lead_count"]),
        (&json!("dispatched"), &json!(2), &json!(3)),
        "{push}"
    );
    assert!(outcomes(&push).iter().all(|(_, outcome)| outcome == "pushed"), "{push}");
    let log = push["attempt_log"].as_array().unwrap();
    assert_eq!((&log[0]["calls"][0]["status_code"], &log[1]["calls"][0]["status_code"]), (&json!(429), &json!(200)));
    // Retry-After (1 s) outweighs the 100 ms schedule.
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(log[i]["at"].as_str().unwrap()).unwrap();
    assert!((at(1) - at(0)).num_milliseconds() >= 900, "retried after {:?}", at(1) - at(0));
    let calls = heyreach.receiver.requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].json(), calls[1].json(), "the retry sends the same leads");
    for id in &ids {
        becomes_pushed(&api, &ws.api_key, id).await;
    }

    // A 500, then an answer too slow to wait for, then success on the third and last attempt.
    heyreach.receiver.script(vec![
        Reply::status(500, r#"{"errorMessage":"Internal error"}"#),
        Reply::status(200, "{}").after(Duration::from_secs(3)),
    ]);
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": [ids[0]], "destination": "heyreach"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!((&data["status"], &data["provider_status_code"]), (&json!("dispatch_failed"), &json!(500)));
    let push = settled(&api, &ws.api_key, &push_id).await;
    let statuses: Vec<&Value> =
        push["attempt_log"].as_array().unwrap().iter().map(|a| &a["calls"][0]["status_code"]).collect();
    assert_eq!(statuses, [&json!(500), &Value::Null, &json!(200)], "{push}");
    assert_eq!(
        (&push["status"], &push["attempts"], &push["max_attempts"]),
        (&json!("dispatched"), &json!(3), &json!(3))
    );
}

async fn instantly_gets_one_batch_and_reports_each_lead(backend: Backend) {
    let instantly = fakes::instantly().await;
    let server = Server::start_with(backend, &[("LEADPUSH_INSTANTLY_BASE_URL", instantly.base_url.as_str())], false);
    let (api, ws) = (server.api(), server.workspace());
    configure(&api, &ws.api_key, "instantly", json!({"api_key": INSTANTLY_KEY, "campaign_id": INSTANTLY_CAMPAIGN}))
        .await;
    let mut leads = vec![
        json!({"first_name": "Jane", "last_name": "Doe", "email": "jane@acme.com", "company": "Acme", "position": "CTO",
               "website": "https://acme.com", "personalization": "Loved your talk",
               "custom_fields": {"tier": 2, "vip": true, "address": {"city": "Berlin"}}}),
        json!({"name": "Blocked Bob", "email": format!("bob{BLOCKED_DOMAIN}")}),
        json!({"name": "No Email", "phone": "+1 555 0100"}),
    ];
    leads.extend((0..150).map(|i| json!({"name": format!("Lead {i}"), "email": format!("lead{i}@example.com")})));
    let ids = ingest(&server, &ws, leads).await;

    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ids, "destination": "instantly"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        (&data["status"], &data["dispatched"], &data["lead_count"]),
        (&json!("dispatched"), &json!(true), &json!(151)),
        "{data}"
    );
    assert_eq!((&data["requested_lead_count"], &data["missing_lead_ids"]), (&json!(153), &json!([ids[1], ids[2]])));

    let calls = instantly.receiver.requests();
    assert_eq!(calls.len(), 1, "up to 1000 leads go in one call");
    let body = calls[0].json();
    assert_eq!(calls[0].header("authorization"), Some(format!("Bearer {INSTANTLY_KEY}").as_str()));
    assert_eq!(body["leads"].as_array().unwrap().len(), 152, "the lead without email is not sent");
    assert_eq!(
        (&body["campaign_id"], &body["skip_if_in_workspace"], &body["skip_if_in_campaign"]),
        (&json!(INSTANTLY_CAMPAIGN), &json!(false), &json!(false))
    );
    assert_eq!(
        body["leads"][0],
        json!({
            "email": "jane@acme.com", "first_name": "Jane", "last_name": "Doe", "company_name": "Acme",
            "job_title": "CTO", "website": "https://acme.com", "personalization": "Loved your talk",
            "custom_variables": {"tier": 2, "vip": true, "address": "{\"city\":\"Berlin\"}", "leadpush_id": ids[0]}
        })
    );

    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!((&push["status"], &push["campaign_id"]), (&json!("partially_dispatched"), &json!(INSTANTLY_CAMPAIGN)));
    let leads = push["leads"].as_array().unwrap();
    assert_eq!((&leads[0]["outcome"], &leads[0]["provider_lead_id"]), (&json!("pushed"), &json!("in-lead-0")));
    assert_eq!(leads[1]["outcome"], "failed");
    assert_eq!(leads[1]["reason"], "not created by Instantly (in_blocklist: 1)");
    assert_eq!(
        (&leads[2]["outcome"], &leads[2]["reason"]),
        (&json!("skipped"), &json!("no email (Instantly campaigns need one)"))
    );
    assert_eq!(
        (&push["lead_count"], &push["failed_count"], &push["skipped_count"]),
        (&json!(151), &json!(1), &json!(1))
    );
    becomes_pushed(&api, &ws.api_key, &ids[0]).await;
    assert_eq!(lead(&api, &ws.api_key, &ids[1]).await["status"], "new");

    // A key Instantly refuses: reported at once with Instantly's own words, not retried.
    configure(&api, &ws.api_key, "instantly", json!({"api_key": "in-revoked-key", "campaign_id": INSTANTLY_CAMPAIGN}))
        .await;
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": [ids[3]], "destination": "instantly"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!((&data["status"], &data["provider_status_code"]), (&json!("dispatch_failed"), &json!(401)));
    assert_eq!(data["provider_response"], r#"{"error":"Unauthorized","message":"Invalid API key","statusCode":401}"#);
    assert_eq!(record(&api, &ws.api_key, &push_id).await["status"], "dispatch_failed");
}

async fn heyreach_leads_without_both_names_are_skipped_not_silently_lost(backend: Backend) {
    let heyreach = fakes::heyreach().await;
    let server = Server::start_with(backend, &[("LEADPUSH_HEYREACH_BASE_URL", heyreach.base_url.as_str())], false);
    let (api, ws) = (server.api(), server.workspace());
    configure(&api, &ws.api_key, "heyreach", json!({"api_key": HEYREACH_KEY, "list_id": 7})).await;
    let profile = |slug: &str| format!("https://www.linkedin.com/in/{slug}");
    let ids = ingest(
        &server,
        &ws,
        vec![
            json!({"name": "Ada King Lovelace", "linkedin": profile("ada")}),
            json!({"first_name": "Grace", "last_name": "Hopper", "linkedin": profile("grace")}),
            json!({"name": "Cher", "linkedin": profile("cher")}),
            json!({"first_name": "Alan", "linkedin": profile("alan")}),
            json!({"email": "anon@example.com", "linkedin": profile("anon")}),
        ],
    )
    .await;

    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": ids, "destination": "heyreach"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        (&data["status"], &data["lead_count"], &data["missing_lead_ids"]),
        (&json!("dispatched"), &json!(2), &json!([ids[2], ids[3], ids[4]])),
        "{data}"
    );
    let sent = heyreach.receiver.requests()[0].json();
    assert_eq!(sent["leads"].as_array().unwrap().len(), 2, "nameless leads are never sent");
    assert_eq!(
        (&sent["leads"][0]["firstName"], &sent["leads"][0]["lastName"]),
        (&json!("Ada"), &json!("King Lovelace"))
    );
    // What HeyReach holds is what the push record says was pushed.
    let held: Vec<Value> = heyreach.leads().iter().map(|l| l["profileUrl"].clone()).collect();
    assert_eq!(held, [json!(profile("ada")), json!(profile("grace"))]);

    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!((&push["lead_count"], &push["skipped_count"]), (&json!(2), &json!(3)), "{push}");
    let reason = |i: usize| push["leads"][i]["reason"].as_str().unwrap().to_owned();
    assert!(reason(2).starts_with("no last name: `name` \"Cher\" is one word"), "{}", reason(2));
    assert!(reason(3).starts_with("no last name (") && reason(3).contains("silently drops"), "{}", reason(3));
    assert!(reason(4).starts_with("no name ("), "{}", reason(4));
    for (i, status) in [(0, "pushed"), (1, "pushed"), (2, "new"), (3, "new"), (4, "new")] {
        if status == "pushed" {
            becomes_pushed(&api, &ws.api_key, &ids[i]).await;
        } else {
            assert_eq!(lead(&api, &ws.api_key, &ids[i]).await["status"], status);
        }
    }

    // Pushed again: HeyReach updates what it holds and counts it as updated.
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": [ids[0]], "destination": "heyreach"})).await;
    let (data, _) = seed_fields(&r);
    assert_eq!(data["provider_response"], r#"{"addedLeadsCount":0,"failedLeadsCount":0,"updatedLeadsCount":1}"#);
    assert_eq!((&data["status"], &data["lead_count"]), (&json!("dispatched"), &json!(1)));
    assert_eq!(heyreach.leads().len(), 2);
}

async fn instantly_repush_updates_the_lead_in_the_campaign_and_attributes_each_lead(backend: Backend) {
    let instantly = fakes::instantly().await;
    let server = Server::start_with(backend, &[("LEADPUSH_INSTANTLY_BASE_URL", instantly.base_url.as_str())], false);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    configure(&api, &ws.api_key, "instantly", json!({"api_key": INSTANTLY_KEY, "campaign_id": INSTANTLY_CAMPAIGN}))
        .await;
    // Custom fields named like Instantly's webhook keys must not break our reading of its events.
    let first = ingest(
        &server,
        &ws,
        vec![json!({"name": "Dee Old", "email": "dee@acme.com", "position": "CTO",
                    "custom_fields": {"event_type": "vip", "timestamp": "last week", "lead_email": "other@acme.com"}})],
    )
    .await;
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": first, "destination": "instantly"})).await;
    assert_eq!(seed_fields(&r).0["lead_count"], 1);
    let held = instantly.lead("dee@acme.com");
    assert_eq!(held["job_title"], "CTO");
    assert_eq!(
        (&held["custom_variables"]["custom_event_type"], &held["custom_variables"]["leadpush_id"]),
        (&json!("vip"), &json!(first[0]))
    );

    let later = ingest(
        &server,
        &ws,
        vec![
            json!({"name": "Dee New", "email": "DEE@acme.com", "position": "VP Sales"}),
            json!({"name": "Blocked", "email": format!("b{BLOCKED_DOMAIN}")}),
            json!({"name": "Typo", "email": "typo@acme.invalid"}),
            json!({"name": "Fresh", "email": "fresh@acme.com"}),
        ],
    )
    .await;
    let r = api.post(PUSH, &ws.api_key, &json!({"lead_ids": later, "destination": "instantly"})).await;
    let (data, push_id) = seed_fields(&r);
    assert_eq!(
        (&data["status"], &data["lead_count"], &data["missing_lead_ids"]),
        (&json!("dispatched"), &json!(2), &json!([later[1], later[2]])),
        "{data}"
    );
    let calls: Vec<(String, String)> =
        instantly.receiver.requests().iter().map(|c| (c.method.clone(), c.path.clone())).collect();
    assert_eq!(
        calls[1..],
        [
            ("POST".to_owned(), "/api/v2/leads/add".to_owned()),
            ("POST".to_owned(), "/api/v2/leads/list".to_owned()),
            ("PATCH".to_owned(), "/api/v2/leads/in-lead-0".to_owned()),
        ]
    );
    let push = record(&api, &ws.api_key, &push_id).await;
    assert_eq!(push["status"], "partially_dispatched");
    let leads = push["leads"].as_array().unwrap();
    assert_eq!((&leads[0]["outcome"], &leads[0]["provider_lead_id"]), (&json!("pushed"), &json!("in-lead-0")));
    assert!(leads[0]["reason"].as_str().unwrap().contains("already in the Instantly campaign: updated"), "{push}");
    for i in [1, 2] {
        assert_eq!(
            (&leads[i]["outcome"], &leads[i]["reason"]),
            (&json!("failed"), &json!("not created by Instantly (in_blocklist: 1, invalid_email_count: 1)")),
            "{push}"
        );
    }
    assert_eq!((&leads[3]["outcome"], &leads[3]["provider_lead_id"]), (&json!("pushed"), &json!("in-lead-1")));
    // Instantly now holds the re-pushed lead's fields, so its events name that lead.
    let held = instantly.lead("dee@acme.com");
    assert_eq!((&held["job_title"], &held["last_name"]), (&json!("VP Sales"), &json!("New")));
    assert_eq!(held["custom_variables"]["leadpush_id"], json!(later[0]));
    becomes_pushed(&api, &ws.api_key, &later[0]).await;

    let event = fakes::instantly_webhook(&held, "reply_received", "2026-05-02T10:00:00.000Z");
    assert_eq!(event["custom_event_type"], "vip", "the old custom variable is still merged in");
    let r = api.send("POST", "/api/v1/feedback/providers/instantly", Auth::Bearer(&token), Some(&event)).await;
    assert_eq!((r.status, r.data()["lead_id"].as_str()), (200, Some(later[0].as_str())), "{}", r.text);
    assert_eq!(r.data()["event_type"], "reply");
}

both_backends!(
    webhook_push_delivers_every_field_and_marks_leads_pushed,
    a_501_receiver_gets_exactly_the_seed_dispatch_failed_answer,
    unknown_and_foreign_ids_are_reported_missing_not_errors,
    push_requests_are_validated,
    an_idempotency_key_makes_a_retried_push_safe,
    slow_and_unreachable_destinations_are_retried_then_given_up,
    heyreach_gets_batches_of_100_with_mapped_fields,
    heyreach_429_500_and_timeouts_are_retried_until_the_push_record_shows_success,
    instantly_gets_one_batch_and_reports_each_lead,
    heyreach_leads_without_both_names_are_skipped_not_silently_lost,
    instantly_repush_updates_the_lead_in_the_campaign_and_attributes_each_lead,
);

/// Without `LEADPUSH_ALLOW_PRIVATE_TARGETS` a webhook URL must be https on a public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_must_be_public_https() {
    let server = Server::start_with(Backend::Embedded, &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "0")], false);
    let (api, ws) = (server.api(), server.workspace());
    for (url, says) in [
        ("http://hooks.example.com/x", "must use https"),
        ("https://127.0.0.1/x", "private"),
        ("https://localhost/x", "private"),
        ("https://[::1]/x", "private"),
        ("https://hooks.example.com:8443/x", "port 443 or 80"),
    ] {
        let r = api
            .post(PUSH, &ws.api_key, &json!({"lead_ids": ["req_1"], "destination": "webhook_url", "webhook_url": url}))
            .await;
        assert_eq!(
            (r.status, r.error_code(), r.body["error"]["field"].as_str()),
            (400, "validation_error", Some("webhook_url")),
            "{url}"
        );
        assert!(r.body["error"]["message"].as_str().unwrap().contains(says), "{url}: {}", r.text);
    }
}
