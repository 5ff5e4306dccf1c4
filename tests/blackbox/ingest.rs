//! The inbound campaign webhook (the webhook-campaign setup guide): the whole flow,
//! validation, idempotency under concurrency, and the idempotency window.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Auth, Backend, Server, eventually, shared};

async fn webhook_campaign_flow_works_end_to_end(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    // Step 1: create two webhook campaigns; setup asks for a CSM.
    let first = api.campaign(&ws.api_key, "First", "webhook").await;
    let second = api.campaign(&ws.api_key, "Second", "webhook").await;
    let r = api.get(&format!("/api/v1/campaigns/{first}/webhook-setup"), &ws.api_key).await;
    assert_eq!(r.error_code(), "webhook_token_missing");
    // Step 2: the CSM creates the token; setup shows it (masked) and a cURL.
    let token = server.webhook_token(&ws);
    let r = api.get(&format!("/api/v1/campaigns/{first}/webhook-setup"), &ws.api_key).await;
    assert_eq!(r.status, 200);
    // Step 3: one request into two campaigns.
    let body = json!({"idempotency_key": "lead-batch-001", "leads": [
        {"name": "Alice", "email": "alice@example.com", "campaign_id": first, "score": 7, "industry": "fintech"},
        {"name": "Bob", "campaign_id": second, "position": "CTO", "custom_fields": {"tier": "A"}},
        {"first_name": "Carol", "last_name": "Diaz", "campaign_id": first},
    ]});
    let r = api.ingest(&token, &body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let d = r.data().clone();
    let request_id = d["request_id"].as_str().unwrap().to_owned();
    assert!(request_id.starts_with("req_"));
    assert_eq!(d["accepted"], 3);
    let lead_ids: Vec<String> =
        d["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(lead_ids.len(), 3);
    assert!(lead_ids.iter().all(|id| id.starts_with(&request_id)), "{lead_ids:?}");
    let mut counts: Vec<(String, u64)> = d["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["campaign_id"].as_str().unwrap().to_owned(), c["accepted"].as_u64().unwrap()))
        .collect();
    counts.sort();
    let mut expected = vec![(first.clone(), 2), (second.clone(), 1)];
    expected.sort();
    assert_eq!(counts, expected);

    // The same key again: 409 naming the original request.
    let r = api.ingest(&token, &body).await;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_idempotency_key"));
    assert_eq!(r.body["error"]["request_id"], request_id.as_str());
    assert!(r.body["error"]["message"].as_str().unwrap().contains("7 days"), "{}", r.text);

    // Step 4: the preview opens after activation and shows the leads, prefixed.
    let preview = format!("/api/v1/campaigns/{first}/leads");
    let r = api.get(&preview, &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (409, "campaign_not_active"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("activated"));
    assert_eq!(api.act(&format!("/api/v1/campaigns/{first}/activate"), &ws.api_key).await.status, 200);
    let r = api.get(&preview, &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let preview_ids: Vec<&str> = r.data().as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(preview_ids.len(), 2);
    assert!(preview_ids.iter().all(|id| id.starts_with(&request_id)));
    let r = api.get(&format!("/api/v1/campaigns/{second}/leads"), &ws.api_key).await;
    assert_eq!(r.error_code(), "campaign_not_active", "the second campaign is still a draft");

    // Stored leads keep every field; unknown ones land in custom_fields.
    let alice = api.get(&format!("/api/v1/leads/{}", lead_ids[0]), &ws.api_key).await;
    assert_eq!(alice.status, 200);
    let a = alice.data();
    assert_eq!((a["name"].as_str(), a["score"].as_i64(), a["status"].as_str()), (Some("Alice"), Some(7), Some("new")));
    assert_eq!(a["custom_fields"], json!({"industry": "fintech"}));
    assert_eq!(
        (a["request_id"].as_str(), a["campaign_id"].as_str()),
        (Some(request_id.as_str()), Some(first.as_str()))
    );
    assert!(a["feedback"].is_null() && a["replied_at"].is_null());
    let bob = api.get(&format!("/api/v1/leads/{}", lead_ids[1]), &ws.api_key).await;
    assert_eq!(bob.data()["position"], "CTO");
    assert_eq!(bob.data()["custom_fields"], json!({"tier": "A"}));
    let r = api.get(&format!("/api/v1/campaigns/{first}"), &ws.api_key).await;
    assert_eq!(r.data()["lead_count"], 2);
}

fn lead(campaign: &str) -> Value {
    json!({"name": "Lead", "campaign_id": campaign})
}

async fn invalid_batches_are_refused_whole_and_store_nothing(backend: Backend) {
    let server = shared(backend);
    let (api, ws, other) = (server.api(), server.workspace(), server.workspace());
    let token = server.webhook_token(&ws);
    let good = api.campaign(&ws.api_key, "Good", "webhook").await;
    let manual = api.campaign(&ws.api_key, "Manual", "manual").await;
    let foreign = api.campaign(&other.api_key, "Foreign", "webhook").await;
    let deepest = format!("leads[0].custom_fields.deep{}", ".k".repeat(20));
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"leads": [lead(&good)]}), 400, "idempotency_key"),
        (json!({"idempotency_key": "  ", "leads": [lead(&good)]}), 400, "idempotency_key"),
        (json!({"idempotency_key": "k".repeat(256), "leads": [lead(&good)]}), 400, "idempotency_key"),
        (json!({"idempotency_key": 42, "leads": [lead(&good)]}), 400, "idempotency_key"),
        (json!({"idempotency_key": "k", "leads": []}), 400, "leads"),
        (json!({"idempotency_key": "k"}), 400, "leads"),
        (json!({"idempotency_key": "k", "leads": [lead(&good), {"name": "No campaign"}]}), 400, "leads[1].campaign_id"),
        (
            json!({"idempotency_key": "k", "leads": [lead(&good), {"name": "x", "campaign_id": good, "score": "high"}]}),
            400,
            "leads[1].score",
        ),
        (
            json!({"idempotency_key": "k", "leads": [{"name": "x", "campaign_id": good, "email": "not-an-email"}]}),
            400,
            "leads[0].email",
        ),
        (json!({"idempotency_key": "k", "leads": [lead(&good), lead("cmp_01NOPE")]}), 400, "leads[1].campaign_id"),
        (json!({"idempotency_key": "k", "leads": [lead(&manual)]}), 400, "leads[0].campaign_id"),
        (
            json!({"idempotency_key": "k", "leads": [lead(&good), lead(&good), lead(&foreign)]}),
            400,
            "leads[2].campaign_id",
        ),
        (json!({"idempotency_key": "k", "leads": ["Alice"]}), 400, "leads[0]"),
        // Values DynamoDB could not store: too deep, or a number out of its range.
        (json!({"idempotency_key": "k", "leads": [with(&good, "deep", nested(21))]}), 400, &deepest),
        (
            json!({"idempotency_key": "k", "leads": [lead(&good), with(&good, "revenue", json!({"v": [1e300]}))]}),
            400,
            "leads[1].custom_fields.revenue.v[0]",
        ),
    ];
    for (body, status, field) in &cases {
        let r = api.ingest(&token, body).await;
        assert_eq!((r.status, r.error_code()), (*status, "validation_error"), "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], *field, "{}", r.text);
    }
    let too_many: Vec<Value> = (0..1001).map(|_| lead(&good)).collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "k", "leads": too_many})).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("1000"));
    let body =
        |notes: String| json!({"idempotency_key": "k", "leads": [{"name": "x", "campaign_id": good, "notes": notes}]});
    let r = api.ingest(&token, &body("n".repeat(4 * 1024 * 1024))).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
    // Just under 4 MiB passes the size checks (and meets the 64 KB per lead rule).
    let r = api.ingest(&token, &body("n".repeat(4 * 1024 * 1024 - 200))).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("leads[0]")), "{}", &r.text[..200]);
    // 3.5 MiB of quotes is 7 MiB inside a Lambda event: refused everywhere, naming why.
    let r = api.ingest(&token, &body("\"".repeat(1792 * 1024))).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("escaped"), "{}", r.text);
    let r = api.ingest("lp_wht_wrong", &json!({"idempotency_key": "k", "leads": [lead(&good)]})).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    let r = api
        .send(
            "POST",
            "/api/v1/webhook/leads",
            Auth::Key(&ws.api_key),
            Some(&json!({"idempotency_key": "k", "leads": [lead(&good)]})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"), "an API key is not a webhook token");

    // Nothing was stored, and the key "k" was never consumed.
    assert_eq!(api.get("/api/v1/leads", &ws.api_key).await.data().as_array().unwrap().len(), 0);
    // At the limits: 20 levels and 1e125 are stored as sent.
    let boundary = with(&good, "deep", json!({"n": nested(19), "big": 1e125, "small": -1e-129}));
    let r = api.ingest(&token, &json!({"idempotency_key": "k", "leads": [boundary.clone()]})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.data()["lead_ids"][0].as_str().unwrap().to_owned();
    let stored = api.get(&format!("/api/v1/leads/{id}"), &ws.api_key).await;
    assert_eq!(stored.data()["custom_fields"]["deep"], boundary["deep"]);
}

/// `levels` objects nested in each other.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({"leaf": 1}), |inner, _| json!({"k": inner}))
}

fn with(campaign: &str, field: &str, value: Value) -> Value {
    let mut lead = lead(campaign);
    lead[field] = value;
    lead
}

async fn twenty_concurrent_requests_with_one_key_store_one_batch(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Race", "webhook").await;
    let body = json!({"idempotency_key": "same-key", "leads": [lead(&campaign), lead(&campaign), lead(&campaign)]});
    let requests = (0..20).map(|_| {
        let (api, token, body) = (api.clone(), token.clone(), body.clone());
        tokio::spawn(async move { api.ingest(&token, &body).await })
    });
    let responses: Vec<_> = futures_util::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
    let accepted: Vec<_> = responses.iter().filter(|r| r.status == 202).collect();
    assert_eq!(accepted.len(), 1, "statuses: {:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    let winner = accepted[0].data()["request_id"].as_str().unwrap();
    // A loser that came while the winner was still writing is told to retry after the
    // lease (not final); one that came after it completed is told the key was used.
    for r in responses.iter().filter(|r| r.status != 202) {
        assert_eq!(r.status, 409, "{}", r.text);
        match r.error_code() {
            "request_in_progress" => assert!(r.headers.get("retry-after").is_some(), "{}", r.text),
            code => assert_eq!(code, "duplicate_idempotency_key", "{}", r.text),
        }
        assert_eq!(r.body["error"]["request_id"], winner);
    }
    let leads = api.get(&format!("/api/v1/leads?campaign_id={campaign}"), &ws.api_key).await;
    assert_eq!(leads.data().as_array().unwrap().len(), 3);
}

async fn a_full_batch_of_a_thousand_leads_is_accepted(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Big", "webhook").await;
    let leads: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("Lead {i}"), "email": format!("lead{i}@example.com"), "campaign_id": campaign}))
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "big", "leads": leads})).await;
    assert_eq!((r.status, r.data()["accepted"].as_u64()), (202, Some(1000)), "{}", r.text);
    let ids = r.data()["lead_ids"].as_array().unwrap();
    let last = api.get(&format!("/api/v1/leads/{}", ids[999].as_str().unwrap()), &ws.api_key).await;
    assert_eq!(last.data()["email"], "lead999@example.com");
    let r = api.get(&format!("/api/v1/campaigns/{campaign}"), &ws.api_key).await;
    assert_eq!(r.data()["lead_count"], 1000);
}

async fn the_token_also_works_in_its_own_header_and_stops_when_revoked(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let created = server.admin(&["admin", "webhook-token", "create", "--workspace", &ws.id]);
    let token = created["token"].as_str().unwrap();
    let campaign = api.campaign(&ws.api_key, "Headers", "webhook").await;
    let body = serde_json::to_vec(&json!({"idempotency_key": "h1", "leads": [lead(&campaign)]})).unwrap();
    let headers = [("x-satellyte-webhook-token", token.to_owned()), ("content-type", "application/json".to_owned())];
    let r = api.raw("POST", "/api/v1/webhook/leads", Auth::None, &headers, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    server.admin(&["admin", "webhook-token", "revoke", "--workspace", &ws.id, "--id", created["id"].as_str().unwrap()]);
    let r = api.ingest(token, &json!({"idempotency_key": "h2", "leads": [lead(&campaign)]})).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    let r = api.get(&format!("/api/v1/campaigns/{campaign}/webhook-setup"), &ws.api_key).await;
    assert_eq!(r.error_code(), "webhook_token_missing", "a revoked token no longer counts");
}

/// Ingest after failures, over HTTP, with a 2 s lease. (1) The key's completion is lost, so
/// it stays leased: a retry of the same body gets 409 `request_in_progress` with
/// `Retry-After` (not final), another body `duplicate_idempotency_key`, and once the lease
/// ends the retry gets the first request's result. (2) A request dies after writing its
/// first 25 of 30 leads, and its clean-up fails too: those leads and the leased key stay.
/// Another body under that key, once the lease ends, removes them and stores its own.
async fn retries_inside_the_lease_are_told_when_and_a_dead_requests_leads_do_not_outlive_it(backend: Backend) {
    let faults = [
        // The first completion of a key (the second IDEM write, after the claim) is lost.
        "put:IDEM=timeout*1+1",
        // The second body (the third batch of leads: the first request's, then its resumption
        // below): its leads are written but the answer is lost, and its undo (removing them,
        // releasing the key) fails as well, as if the process died.
        "batch_put:#LEAD#=timeout_after_write*1+2",
        "batch_delete:#LEAD#=timeout*1",
        "delete:IDEM=timeout*1",
    ]
    .join(";");
    let env = [("LEADPUSH_FAULTS", faults.as_str()), ("LEADPUSH_IDEMPOTENCY_LEASE_SECS", "2")];
    let server = Server::start_with(backend, &env, false);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Retries", "webhook").await;
    let batch = |key: &str, name: &str, n: usize| {
        let leads: Vec<Value> =
            (0..n).map(|i| json!({"name": format!("{name} {i}"), "campaign_id": campaign})).collect();
        json!({"idempotency_key": key, "leads": leads})
    };
    let stored = || async {
        let r = api.get(&format!("/api/v1/leads?campaign_id={campaign}&limit=100"), &ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let names: Vec<String> =
            r.data().as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_owned()).collect();
        names
    };

    // (1) Accepted, but the key was not marked completed: it stays leased.
    let first = batch("lost-completion", "First", 2);
    let r = api.ingest(&token, &first).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let request_id = r.data()["request_id"].as_str().unwrap().to_owned();
    let r = api.ingest(&token, &first).await;
    assert_eq!((r.status, r.error_code()), (409, "request_in_progress"), "{}", r.text);
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(r.body["error"]["request_id"], request_id.as_str());
    assert!(r.body["error"]["message"].as_str().unwrap().contains("retry the same request after"), "{}", r.text);
    let r = api.ingest(&token, &batch("lost-completion", "Other", 1)).await;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_idempotency_key"), "{}", r.text);
    // Retried as told until the lease is over: the first request's result, nothing twice.
    let done = eventually(Duration::from_secs(30), || async {
        let r = api.ingest(&token, &first).await;
        (r.status == 202).then_some(r)
    })
    .await
    .expect("the retry was never accepted");
    assert_eq!(done.data()["request_id"], request_id.as_str());
    assert_eq!(stored().await.len(), 2);

    // (2) 30 leads written, then the request failed and could not clean up.
    let r = api.ingest(&token, &batch("died", "Dead", 30)).await;
    assert_eq!((r.status, r.error_code()), (503, "service_unavailable"), "{}", r.text);
    let left = stored().await;
    assert_eq!(left.iter().filter(|n| n.starts_with("Dead ")).count(), 30, "{left:?}");
    // Another body under that key, once the lease is over, removes them.
    let replacement = batch("died", "Replacement", 3);
    let r = eventually(Duration::from_secs(30), || async {
        let r = api.ingest(&token, &replacement).await;
        (r.status == 202).then_some(r)
    })
    .await
    .expect("the key was never taken over");
    assert_eq!(r.data()["accepted"], 3, "{}", r.text);
    let mut names = stored().await;
    names.sort();
    assert_eq!(names, ["First 0", "First 1", "Replacement 0", "Replacement 1", "Replacement 2"]);
    let r = api.get(&format!("/api/v1/campaigns/{campaign}"), &ws.api_key).await;
    assert_eq!(r.data()["lead_count"], 5, "{}", r.text);
}

both_backends!(
    retries_inside_the_lease_are_told_when_and_a_dead_requests_leads_do_not_outlive_it,
    webhook_campaign_flow_works_end_to_end,
    invalid_batches_are_refused_whole_and_store_nothing,
    twenty_concurrent_requests_with_one_key_store_one_batch,
    a_full_batch_of_a_thousand_leads_is_accepted,
    the_token_also_works_in_its_own_header_and_stops_when_revoked,
);

#[tokio::test]
async fn a_key_is_accepted_again_once_its_window_has_passed() {
    // A short window stands in for the week; the rule is the same comparison. Expiry is
    // kept in whole seconds, so a window of N seconds lasts more than N - 1: anything
    // answered within that of sending the first request was decided inside the window.
    const WINDOW_SECS: u64 = 8;
    let inside = Duration::from_secs(WINDOW_SECS - 1);
    let window = WINDOW_SECS.to_string();
    let server = Server::start_with(Backend::Embedded, &[("LEADPUSH_IDEMPOTENCY_TTL_SECS", &window)], false);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Window", "webhook").await;
    let body = json!({"idempotency_key": "weekly", "leads": [lead(&campaign)]});
    let sent = std::time::Instant::now();
    let first = api.ingest(&token, &body).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let repeat = api.ingest(&token, &body).await;
    // Milliseconds on any machine; past the margin, the 409 below would prove nothing.
    assert!(sent.elapsed() < inside, "the repeat took {:?}, beyond the window's {inside:?}", sent.elapsed());
    assert_eq!(repeat.status, 409, "{}", repeat.text);
    assert_eq!(repeat.error_code(), "duplicate_idempotency_key");
    let again = eventually(Duration::from_secs(WINDOW_SECS + 30), || async {
        let r = api.ingest(&token, &body).await;
        if r.status != 202 {
            assert_eq!(r.status, 409, "{}", r.text);
        }
        (r.status == 202).then_some(r)
    })
    .await
    .expect("key accepted again after its window");
    // The first request reached the server after `sent`, and its key expired no sooner.
    assert!(sent.elapsed() >= inside, "accepted again after {:?}, inside the window", sent.elapsed());
    assert_ne!(again.data()["request_id"], first.data()["request_id"]);
}
