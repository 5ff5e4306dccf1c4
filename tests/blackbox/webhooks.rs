//! Outbound webhooks (the outbound-webhooks specification) against real local receivers:
//! signing, retries, Retry-After, redirects, the SSRF guard, auto-disable, manual
//! redelivery, test sends and rotation.

use std::time::Duration;

use leadpush::webhooks::signing;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::receiver::{ClosingPort, Receiver, Reply};
use crate::harness::{Api, Auth, Backend, Server, Workspace, eventually, shared, signature_verifies};

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    api: Api,
    ws: Workspace,
    token: String,
    campaign: String,
}

async fn setup(server: &Server) -> Setup {
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Hooks", "webhook").await;
    Setup { api, ws, token, campaign }
}

impl Setup {
    async fn webhook(&self, url: &str, extra: Value) -> Value {
        let mut body = json!({"name": format!("hook {}", url), "url": url});
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        let r = self.api.post("/api/v1/webhooks", &self.ws.api_key, &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.data().clone()
    }

    async fn ingest(&self, n: usize) -> Vec<String> {
        let leads: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("Lead {i}"), "email": format!("l{i}@example.com"), "score": i, "campaign_id": self.campaign}))
            .collect();
        let key =
            format!("k-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        let r = self.api.ingest(&self.token, &json!({"idempotency_key": key, "leads": leads})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    async fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        let r = self.api.get(&format!("/api/v1/webhooks/{webhook_id}/deliveries"), &self.ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.data().as_array().unwrap().clone()
    }

    /// Waits until the endpoint's only delivery has settled, and returns it.
    async fn settled(&self, webhook_id: &str) -> Value {
        eventually(WAIT, || async {
            let list = self.deliveries(webhook_id).await;
            list.first().filter(|d| d["status"] != "pending").cloned()
        })
        .await
        .unwrap_or_else(|| panic!("the delivery to {webhook_id} did not settle within {WAIT:?}"))
    }
}

async fn save_lead_deliveries_are_signed_and_carry_the_seed_payload(backend: Backend) {
    let s = setup(shared(backend)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    let hook = s
        .webhook(
            &format!("{}/hooks/leads", receiver.url),
            json!({"headers": {"Authorization": "Bearer receiver-secret-token"}}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = hook["id"].as_str().unwrap();

    let read = s.api.get(&format!("/api/v1/webhooks/{id}"), &s.ws.api_key).await;
    assert!(!read.text.contains(&secret) && !read.text.contains("receiver-secret-token"), "{}", read.text);
    assert_eq!(read.data()["headers"]["Authorization"], "****oken");

    let lead_ids = s.ingest(2).await;
    let requests = receiver.wait_for(2, WAIT).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hooks/leads"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer receiver-secret-token"));
        assert!(request.header("webhook-id").unwrap().starts_with("msg_"));
        let ts: i64 = request.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((now - ts).abs() < 300, "timestamp within the 5-minute tolerance");
        assert!(signature_verifies(&secret, request), "signature must verify with the endpoint secret");
        // The helper customers may use agrees, and refuses the same delivery replayed 6 minutes later.
        let (msg, sig) = (request.header("webhook-id").unwrap(), request.header("webhook-signature").unwrap());
        assert_eq!(signing::verify(&secret, msg, ts, &request.body, sig, now), Ok(()));
        assert_eq!(signing::verify(&secret, msg, ts, &request.body, sig, ts + 360), Err(signing::VerifyError::TooOld));
        let body = request.json();
        assert_eq!(body["event"], "save_lead");
        assert!(lead_ids.contains(&body["lead_id"].as_str().unwrap().to_owned()));
        for field in [
            "email",
            "website",
            "company",
            "first_name",
            "last_name",
            "phone",
            "position",
            "twitter",
            "linkedin",
            "notes",
            "score",
        ] {
            assert!(body.get(field).is_some(), "payload lacks {field}: {body}");
        }
        assert_eq!((body["campaign_id"].as_str(), body["status"].as_str()), (Some(s.campaign.as_str()), Some("new")));
    }
    let mut emails: Vec<String> = requests.iter().map(|r| r.json()["email"].as_str().unwrap().to_owned()).collect();
    emails.sort();
    assert_eq!(emails, ["l0@example.com", "l1@example.com"]);

    let log = eventually(WAIT, || async {
        let log = s.deliveries(id).await;
        (log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")).then_some(log)
    })
    .await
    .expect("both deliveries logged as delivered");
    for d in &log {
        assert_eq!((d["attempt_count"].as_u64(), d["last_status_code"].as_u64()), (Some(1), Some(200)));
        assert_eq!(d["event"], "save_lead");
        assert!(d["attempts"][0]["duration_ms"].is_u64());
    }
}

async fn a_failing_receiver_is_retried_until_it_accepts(backend: Backend) {
    let s = setup(shared(backend)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    receiver.script(vec![Reply::status(500, "boom"), Reply::status(500, "boom again")]);
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    s.ingest(1).await;
    let d = s.settled(id).await;
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("delivered"), Some(3)), "{d}");
    let codes: Vec<u64> =
        d["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].as_u64().unwrap()).collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(d["attempts"][0]["response"], "boom");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let ids: Vec<&str> = requests.iter().map(|r| r.header("webhook-id").unwrap()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "the same webhook-id on every attempt, so receivers can dedupe");
}

async fn a_receiver_that_is_down_is_recorded_as_failed_after_four_attempts(backend: Backend) {
    let s = setup(shared(backend)).await;
    // Connections are accepted and closed unanswered, on a port no other test can take.
    let down = ClosingPort::start().await;
    let hook = s.webhook(&down.url("/down"), json!({})).await;
    let id = hook["id"].as_str().unwrap();
    s.ingest(1).await;
    let d = s.settled(id).await;
    assert_eq!(
        (d["status"].as_str(), d["attempt_count"].as_u64()),
        (Some("failed"), Some(4)),
        "1 try + 3 retries: {d}"
    );
    for attempt in d["attempts"].as_array().unwrap() {
        assert!(attempt["status_code"].is_null());
        assert!(attempt["error"].as_str().unwrap().starts_with("request failed: "), "{attempt}");
    }
    assert!(d["next_attempt_at"].is_null());
    assert!(down.accepted() >= 4, "{} connections for 4 attempts", down.accepted());
}

async fn webhook_configuration_is_validated_and_names_are_unique(backend: Backend) {
    let s = setup(shared(backend)).await;
    let api = &s.api;
    let key = &s.ws.api_key;
    let r = api
        .post("/api/v1/webhooks", key, &json!({"name": "Lead Tracking", "url": "https://hooks.example.com/a"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((r.data()["method"].as_str(), r.data()["events"].clone()), (Some("POST"), json!(["save_lead"])));
    let first = r.data()["id"].as_str().unwrap().to_owned();
    let r = api
        .post("/api/v1/webhooks", key, &json!({"name": "lead tracking", "url": "https://hooks.example.com/b"}))
        .await;
    assert_eq!((r.status, r.error_code()), (409, "conflict"));
    let r = api
        .post("/api/v1/webhooks", key, &json!({"name": "Other", "url": "https://hooks.example.com/b", "method": "PUT"}))
        .await;
    assert_eq!(r.status, 201);
    let second = r.data()["id"].as_str().unwrap().to_owned();
    let r = api
        .send("PATCH", &format!("/api/v1/webhooks/{second}"), Auth::Key(key), Some(&json!({"name": "LEAD TRACKING"})))
        .await;
    assert_eq!((r.status, r.error_code()), (409, "conflict"));
    let r = api
        .send(
            "PATCH",
            &format!("/api/v1/webhooks/{second}"),
            Auth::Key(key),
            Some(&json!({"name": "Renamed", "enabled": false})),
        )
        .await;
    assert_eq!(
        (r.status, r.data()["name"].as_str(), r.data()["enabled"].as_bool()),
        (200, Some("Renamed"), Some(false))
    );
    // The old name is free again.
    let r = api.post("/api/v1/webhooks", key, &json!({"name": "Other", "url": "https://hooks.example.com/c"})).await;
    assert_eq!(r.status, 201, "{}", r.text);

    for (body, field) in [
        (json!({"name": "x", "url": "not a url"}), "url"),
        (json!({"name": "x", "url": "ftp://example.com"}), "url"),
        (json!({"name": "", "url": "https://example.com"}), "name"),
        (
            json!({"name": "x", "url": "https://example.com", "headers": {"webhook-signature": "forged"}}),
            "headers.webhook-signature",
        ),
        (
            json!({"name": "x", "url": "https://example.com", "headers": {"Content-Type": "text/plain"}}),
            "headers.Content-Type",
        ),
        (json!({"name": "x", "url": "https://example.com", "events": []}), "events"),
        (json!({"name": "x", "url": "https://example.com", "events": ["lead_deleted"]}), "events[0]"),
        (json!({"name": "x", "url": "https://example.com", "method": "GET"}), "method"),
    ] {
        let r = api.post("/api/v1/webhooks", key, &body).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{body}: {}", r.text);
    }
    let r = api.get("/api/v1/webhooks", key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 3);
    let r = api.send("DELETE", &format!("/api/v1/webhooks/{first}"), Auth::Key(key), None).await;
    assert_eq!(r.status, 200);
    let r = api.get(&format!("/api/v1/webhooks/{first}"), key).await;
    assert_eq!((r.status, r.error_code()), (404, "webhook_not_found"));
    let other = shared(backend).workspace();
    let r = s.api.get(&format!("/api/v1/webhooks/{second}"), &other.api_key).await;
    assert_eq!(r.status, 404, "another workspace's webhook is not found");
}

async fn a_test_send_reports_the_receivers_answer(backend: Backend) {
    let s = setup(shared(backend)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    receiver.script(vec![Reply::status(418, "teapot")]);
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    let r = s.api.act(&format!("/api/v1/webhooks/{id}/test"), &s.ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.data()["delivered"].as_bool(), r.data()["status_code"].as_u64()), (Some(false), Some(418)));
    assert_eq!(r.data()["response"], "teapot");
    let r = s.api.act(&format!("/api/v1/webhooks/{id}/test"), &s.ws.api_key).await;
    assert_eq!((r.data()["delivered"].as_bool(), r.data()["status_code"].as_u64()), (Some(true), Some(200)));
    let sent = receiver.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].json()["event"], "save_lead");
    assert!(signature_verifies(hook["secret"].as_str().unwrap(), &sent[1]));
    assert!(s.deliveries(id).await.is_empty(), "test sends are not logged as deliveries");
}

async fn a_failed_delivery_can_be_redelivered_by_hand(backend: Backend) {
    let s = setup(shared(backend)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    receiver.script(vec![
        Reply::status(500, "1"),
        Reply::status(500, "2"),
        Reply::status(500, "3"),
        Reply::status(500, "4"),
    ]);
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    s.ingest(1).await;
    let failed = s.settled(id).await;
    assert_eq!(failed["status"], "failed");
    let delivery_id = failed["id"].as_str().unwrap();
    let r = s.api.act(&format!("/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry"), &s.ws.api_key).await;
    assert_eq!((r.status, r.data()["status"].as_str()), (202, Some("pending")), "{}", r.text);
    let done = eventually(WAIT, || async {
        let d = s.deliveries(id).await.into_iter().next()?;
        (d["status"] == "delivered").then_some(d)
    })
    .await
    .expect("redelivered");
    assert_eq!(done["attempt_count"], 5);
    assert_eq!(done["attempts"][4]["manual"], true);
    let r = s
        .api
        .act(&format!("/api/v1/webhooks/{id}/deliveries/dlv_01NOSUCHDELIVERY00000000000/retry"), &s.ws.api_key)
        .await;
    assert_eq!((r.status, r.error_code()), (404, "delivery_not_found"));
}

both_backends!(
    save_lead_deliveries_are_signed_and_carry_the_seed_payload,
    a_failing_receiver_is_retried_until_it_accepts,
    a_receiver_that_is_down_is_recorded_as_failed_after_four_attempts,
    webhook_configuration_is_validated_and_names_are_unique,
    a_test_send_reports_the_receivers_answer,
    a_failed_delivery_can_be_redelivered_by_hand,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_a_429_is_honoured() {
    let s = setup(shared(Backend::Embedded)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    receiver.script(vec![Reply::status(429, "slow down").header("retry-after", "2")]);
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    s.ingest(1).await;
    let d = s.settled(id).await;
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("delivered"), Some(2)), "{d}");
    let at = |i: usize| chrono_ms(d["attempts"][i]["at"].as_str().unwrap());
    // The schedule alone would retry after ~50 ms; the receiver asked for 2 s.
    assert!(at(1) - at(0) >= 2000, "second attempt {} ms after the first", at(1) - at(0));
}

fn chrono_ms(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Same day in practice; days only need to be consistent.
    (((d[2] * 24 + t[0]) * 60 + t[1]) * 60 + t[2]) * 1000 + ms.parse::<i64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let s = setup(shared(Backend::Embedded)).await;
    let elsewhere = Receiver::start(Reply::ok()).await;
    let redirector = Receiver::start(Reply::status(302, "").header("location", &elsewhere.url)).await;
    let hook = s.webhook(&redirector.url, json!({})).await;
    s.ingest(1).await;
    let d = s.settled(hook["id"].as_str().unwrap()).await;
    assert_eq!(d["status"], "failed");
    assert_eq!(d["last_status_code"], 302);
    assert!(d["last_error"].as_str().unwrap().contains("redirect"), "{d}");
    assert!(elsewhere.requests().is_empty(), "the redirect target was never called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_plain_http_targets_are_refused_when_the_guard_is_on() {
    let server = Server::start_with(Backend::Embedded, &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "0")], false);
    let (api, ws) = (server.api(), server.workspace());
    for (url, says) in [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/x", "private"),
        ("https://10.1.2.3/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::1]/x", "private"),
        ("https://localhost/x", "private"),
        ("https://hooks.example.com:8443/x", "port"),
    ] {
        let r = api.post("/api/v1/webhooks", &ws.api_key, &json!({"name": url, "url": url})).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("url")), "{url}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(says), "{url}: {}", r.text);
    }
    // Names are resolved at configuration time, on create and on PATCH.
    let inside = format!("https://{}/hook", internal_host_name());
    let r = api.post("/api/v1/webhooks", &ws.api_key, &json!({"name": "in", "url": inside})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("url")), "{}", r.text);
    assert!(r.text.contains("private, loopback or otherwise internal"), "{}", r.text);
    let r = api
        .post("/api/v1/webhooks", &ws.api_key, &json!({"name": "nx", "url": "https://no-such-host.invalid/x"}))
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("url")), "{}", r.text);
    assert!(r.text.contains("does not resolve"), "{}", r.text);
    // A public address passes (nothing is sent at creation).
    let r = api.post("/api/v1/webhooks", &ws.api_key, &json!({"name": "ok", "url": "https://8.8.8.8/x"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let patch = api
        .send("PATCH", &format!("/api/v1/webhooks/{id}"), Auth::Key(&ws.api_key), Some(&json!({"url": inside})))
        .await;
    assert_eq!((patch.status, patch.body["error"]["field"].as_str()), (400, Some("url")), "{}", patch.text);
    let r = api.get(&format!("/api/v1/webhooks/{id}"), &ws.api_key).await;
    assert_eq!(r.data()["url"], "https://8.8.8.8/x", "the refused PATCH changed nothing");
}

/// This machine's host name, which resolves to an internal address (as it does in any
/// container or VM): the test asserts that first, so it cannot pass vacuously.
fn internal_host_name() -> String {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name").trim().to_owned();
    let addrs: Vec<_> = (name.as_str(), 443).to_socket_addrs().expect("the host name resolves").collect();
    assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() || is_private(a.ip())), "{name}: {addrs:?}");
    name
}

fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_keeps_failing_is_disabled_and_can_be_re_enabled() {
    let env = [("LEADPUSH_WEBHOOK_DISABLE_AFTER_FAILURES", "2"), ("LEADPUSH_WEBHOOK_RETRY_SCHEDULE", "10ms")];
    let server = Server::start_with(Backend::Embedded, &env, false);
    let s = setup(&server).await;
    let receiver = Receiver::start(Reply::status(500, "down")).await;
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    s.ingest(2).await;
    let disabled = eventually(WAIT, || async {
        let r = s.api.get(&format!("/api/v1/webhooks/{id}"), &s.ws.api_key).await;
        (r.data()["enabled"] == false).then(|| r.data().clone())
    })
    .await
    .expect("endpoint disabled after two deliveries failed every retry");
    assert!(disabled["disabled_reason"].as_str().unwrap().contains("Disabled automatically"), "{disabled}");
    assert_eq!(disabled["failure_streak"], 2);
    let sent = receiver.requests().len();
    assert_eq!(sent, 4, "two deliveries, two attempts each");
    // Disabled endpoints get nothing new; a healthy one proves the fan-out ran.
    let healthy = Receiver::start(Reply::ok()).await;
    s.webhook(&healthy.url, json!({})).await;
    let lead = s.ingest(1).await;
    let got = healthy.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["lead_id"], lead[0].as_str());
    let r = s
        .api
        .act(
            &format!("/api/v1/webhooks/{id}/deliveries/{}/retry", s.deliveries(id).await[0]["id"].as_str().unwrap()),
            &s.ws.api_key,
        )
        .await;
    assert_eq!((r.status, r.error_code()), (409, "webhook_disabled"));
    let r = s
        .api
        .send("PATCH", &format!("/api/v1/webhooks/{id}"), Auth::Key(&s.ws.api_key), Some(&json!({"enabled": true})))
        .await;
    assert_eq!((r.data()["enabled"].as_bool(), r.data()["failure_streak"].as_u64()), (Some(true), Some(0)));
    assert!(r.data()["disabled_reason"].is_null());
    assert_eq!(receiver.requests().len(), sent, "nothing was sent while disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_alongside_the_new_one_for_a_day() {
    let s = setup(shared(Backend::Embedded)).await;
    let receiver = Receiver::start(Reply::ok()).await;
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap();
    let r = s.api.act(&format!("/api/v1/webhooks/{id}/rotate-secret"), &s.ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.data()["secret"].as_str().unwrap();
    assert_ne!(old, new);
    assert!(r.data()["secret_hint"].as_str().unwrap().ends_with(&new[new.len() - 4..]));
    s.api.act(&format!("/api/v1/webhooks/{id}/test"), &s.ws.api_key).await;
    let sent = receiver.wait_for(1, WAIT).await;
    assert_eq!(sent[0].header("webhook-signature").unwrap().split(' ').count(), 2);
    assert!(signature_verifies(old, &sent[0]) && signature_verifies(new, &sent[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waits_for_in_flight_deliveries_and_records_them() {
    let server = Server::start(Backend::Embedded);
    let s = setup(&server).await;
    let receiver = Receiver::start(Reply::ok().after(Duration::from_millis(1500))).await;
    let hook = s.webhook(&receiver.url, json!({})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    s.ingest(1).await;
    receiver.wait_for(1, WAIT).await;
    // The attempt is in flight (the receiver answers in 1.5 s) when the server is told to stop.
    let server = server.restart();
    let api = server.api();
    let r = api.get(&format!("/api/v1/webhooks/{id}/deliveries"), &s.ws.api_key).await;
    let d = &r.data()[0];
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("delivered"), Some(1)), "{d}");
    assert_eq!(receiver.requests().len(), 1);
}
