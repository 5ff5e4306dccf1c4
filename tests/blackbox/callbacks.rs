//! `?webhook_url=` callbacks (the outbound-webhooks specification): the same response,
//! POSTed asynchronously, signed with the workspace's callback secret, logged; a bad URL is
//! refused before any work.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::{Backend, eventually, shared, signature_verifies};

const WAIT: Duration = Duration::from_secs(30);

async fn a_push_with_webhook_url_posts_the_same_response_back_signed(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Callbacks", "webhook").await;
    let r =
        api.ingest(&token, &json!({"idempotency_key": "cb", "leads": [{"name": "A", "campaign_id": campaign}]})).await;
    let lead = r.data()["lead_ids"][0].as_str().unwrap().to_owned();
    let destination = Receiver::start(Reply::ok()).await;
    let callback = Receiver::start(Reply::ok()).await;
    let secret = api.act("/api/v1/callbacks/secret", &ws.api_key).await;
    assert_eq!(secret.status, 200, "{}", secret.text);
    let secret = secret.data()["secret"].as_str().unwrap().to_owned();

    let push = json!({"lead_ids": [lead], "destination": "webhook_url", "webhook_url": destination.url});
    let answer = api.post(&format!("/api/v1/leads/push?webhook_url={}/done", callback.url), &ws.api_key, &push).await;
    assert_eq!((answer.status, answer.data()["status"].as_str()), (200, Some("dispatched")), "{}", answer.text);
    let got = callback.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/done");
    assert_eq!(got[0].json(), json!({"data": answer.data()}), "the callback carries exactly the response");
    assert!(signature_verifies(&secret, &got[0]), "signed with the callback secret");
    assert!(got[0].header("webhook-id").unwrap().starts_with("msg_"));

    let log = eventually(WAIT, || async {
        let r = api.get("/api/v1/callbacks/deliveries", &ws.api_key).await;
        r.data().as_array().unwrap().first().filter(|d| d["status"] == "delivered").cloned()
    })
    .await
    .expect("the callback is logged as delivered");
    assert_eq!(
        (log["event"].as_str(), log["target_url"].as_str()),
        (Some("leads.push"), Some(format!("{}/done", callback.url).as_str()))
    );

    // A bad callback URL is refused before the push happens.
    let before = destination.requests().len();
    let r = api.post("/api/v1/leads/push?webhook_url=not-a-url", &ws.api_key, &push).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook_url")), "{}", r.text);
    assert_eq!(destination.requests().len(), before, "nothing was pushed");
}

async fn a_feedback_event_with_webhook_url_posts_its_answer_back(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Feedback callbacks", "webhook").await;
    let r =
        api.ingest(&token, &json!({"idempotency_key": "fcb", "leads": [{"name": "A", "campaign_id": campaign}]})).await;
    let lead = r.data()["lead_ids"][0].as_str().unwrap().to_owned();
    let callback = Receiver::start(Reply::ok()).await;
    let body = json!({"lead_id": lead, "event_type": "positive_reply", "source": "webhook", "content": "Interested"});
    let answer =
        api.post(&format!("/api/v1/feedback/events?webhook_url={}/fb", callback.url), &ws.api_key, &body).await;
    assert_eq!((answer.status, answer.data()["mutated_lead"].as_bool()), (200, Some(true)), "{}", answer.text);
    let got = callback.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), json!({"data": answer.data()}));
    let r = api.post("/api/v1/feedback/events?webhook_url=ftp://x", &ws.api_key, &body).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook_url")), "{}", r.text);
}

both_backends!(
    a_push_with_webhook_url_posts_the_same_response_back_signed,
    a_feedback_event_with_webhook_url_posts_its_answer_back,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_must_be_https_when_the_guard_is_on() {
    let server =
        crate::harness::Server::start_with(Backend::Embedded, &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "0")], false);
    let (api, ws) = (server.api(), server.workspace());
    let push =
        json!({"lead_ids": ["req_x_0001"], "destination": "webhook_url", "webhook_url": "https://hooks.example.com/x"});
    for url in ["http://hooks.example.com/cb", "https://127.0.0.1/cb"] {
        let r = api.post(&format!("/api/v1/leads/push?webhook_url={url}"), &ws.api_key, &push).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook_url")), "{url}: {}", r.text);
    }
}
