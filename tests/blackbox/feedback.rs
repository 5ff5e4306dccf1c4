//! Outcome events (the feedback-event specification): each event type, each error, ordering
//! and precedence, retries, concurrency, the event log, and the Instantly / HeyReach
//! webhooks.

use std::collections::BTreeSet;
use std::time::Duration;

use leadpush::support::time::Timestamp;
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Api, Auth, Backend, Resp, Server, Workspace, fakes, shared};

const EVENTS: &str = "/api/v1/feedback/events";
const INSTANTLY: &str = "/api/v1/feedback/providers/instantly";
const NOT_FOUND: &str = "Lead not found for this Public API workspace.";

struct Setup {
    api: Api,
    ws: Workspace,
    token: String,
    campaign: String,
    leads: Vec<String>,
}

/// A workspace with a webhook token, a campaign and these leads (campaign id added).
async fn setup(server: &Server, leads: Vec<Value>) -> Setup {
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Outcomes", "webhook").await;
    let leads: Vec<Value> = leads
        .into_iter()
        .map(|mut l| {
            l["campaign_id"] = json!(campaign);
            l
        })
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "feedback-setup", "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let leads = r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    Setup { api, ws, token, campaign, leads }
}

fn named(n: usize) -> Vec<Value> {
    (0..n).map(|i| json!({"name": format!("Lead {i}")})).collect()
}

impl Setup {
    async fn event(&self, body: Value) -> Resp {
        self.api.post(EVENTS, &self.ws.api_key, &body).await
    }

    async fn lead(&self, id: &str) -> Value {
        let r = self.api.get(&format!("/api/v1/leads/{id}"), &self.ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.data().clone()
    }

    /// Every entry of a lead's event log, following cursors.
    async fn log(&self, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = format!("/api/v1/leads/{id}/events?limit=100");
        loop {
            let r = self.api.get(&path, &self.ws.api_key).await;
            assert_eq!(r.status, 200, "{}", r.text);
            out.extend(r.data().as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/leads/{id}/events?limit=100&cursor={c}"),
                None => return out,
            }
        }
    }
}

/// A provider webhook delivery, with the webhook token as `Authorization: Bearer` if given.
async fn provider(api: &Api, path: &str, token: Option<&str>, body: &Value) -> Resp {
    api.send("POST", path, token.map_or(Auth::None, Auth::Bearer), Some(body)).await
}

/// The response without its free-form note (checked separately).
fn without_note(data: &Value) -> Value {
    let mut data = data.clone();
    let note = data.as_object_mut().unwrap().remove("note").expect("a note");
    assert!(note.as_str().is_some_and(|n| n.len() > 10), "note: {note}");
    data
}

async fn each_event_type_updates_the_lead_as_documented(backend: Backend) {
    let s = setup(shared(backend), named(6)).await;
    let at = "2026-05-02T12:00:00.000Z";
    let lead = |i: usize| s.leads[i].clone();
    let snapshot = |id: &str, status: &str, replied: Value, meeting: Value, feedback: Value, reason: Value| {
        json!({"id": id, "status": status, "replied_at": replied, "meeting_booked_at": meeting,
               "feedback": feedback, "feedback_reason": reason})
    };
    let expect = |event: &str, source: &str, id: &str, mutated: bool, lead: Value| {
        json!({"accepted": true, "event_type": event, "source": source, "lead_id": id,
               "mutated_lead": mutated, "stored_event": true, "lead": lead})
    };

    // The feedback-event specification's example: positive reply.
    let r = s
        .event(json!({"lead_id": lead(0), "event_type": "positive_reply", "source": "webhook",
                      "content": "Interested, send me more details.", "occurred_at": at}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let snap = snapshot(
        &lead(0),
        "replied",
        json!(at),
        Value::Null,
        json!("positive"),
        json!("Interested, send me more details."),
    );
    assert_eq!(without_note(r.data()), expect("positive_reply", "webhook", &lead(0), true, snap));

    let r = s.event(json!({"lead_id": lead(1), "event_type": "open", "source": "instantly", "occurred_at": at})).await;
    let snap = snapshot(&lead(1), "new", Value::Null, Value::Null, Value::Null, Value::Null);
    assert_eq!(without_note(r.data()), expect("open", "instantly", &lead(1), false, snap.clone()));
    assert!(r.data()["note"].as_str().unwrap().contains("do not change the lead"), "{}", r.text);
    let r = s.event(json!({"lead_id": lead(1), "event_type": "click", "source": "heyreach", "occurred_at": at})).await;
    assert_eq!(without_note(r.data()), expect("click", "heyreach", &lead(1), false, snap));

    let r = s.event(json!({"lead_id": lead(2), "event_type": "reply", "source": "manual", "content": "Tell me more", "occurred_at": at})).await;
    let snap = snapshot(&lead(2), "replied", json!(at), Value::Null, Value::Null, Value::Null);
    assert_eq!(without_note(r.data()), expect("reply", "manual", &lead(2), true, snap));
    assert_eq!(s.lead(&lead(2)).await["reply_content"], "Tell me more");

    let r = s.event(json!({"lead_id": lead(3), "event_type": "bounce", "content": "550 mailbox unavailable", "occurred_at": at})).await;
    let snap =
        snapshot(&lead(3), "skipped", Value::Null, Value::Null, json!("negative"), json!("550 mailbox unavailable"));
    assert_eq!(without_note(r.data()), expect("bounce", "custom", &lead(3), true, snap));

    // The feedback-event specification's second example: meeting booked.
    let r = s
        .event(json!({"lead_id": lead(4), "event_type": "meeting_booked", "source": "webhook",
                      "meeting_url": "https://meet.google.com/example", "content": "Meeting booked from outbound campaign.",
                      "occurred_at": "2026-05-02T14:00:00+02:00"}))
        .await;
    let snap = snapshot(
        &lead(4),
        "meeting_booked",
        Value::Null,
        json!(at),
        json!("positive"),
        json!("Meeting booked from outbound campaign."),
    );
    assert_eq!(without_note(r.data()), expect("meeting_booked", "webhook", &lead(4), true, snap));
    let stored = s.lead(&lead(4)).await;
    assert_eq!(
        (stored["status"].as_str(), stored["meeting_url"].as_str()),
        (Some("meeting_booked"), Some("https://meet.google.com/example"))
    );

    // Every accepted event is in its lead's log, as sent.
    let log = s.log(&lead(1)).await;
    let kinds: BTreeSet<&str> = log.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["click", "open"].into());
    let log = s.log(&lead(4)).await;
    assert_eq!(log.len(), 1);
    let e = &log[0];
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        (e["occurred_at"].as_str(), e["lead_status"].as_str(), e["mutated_lead"].as_bool()),
        (Some(at), Some("meeting_booked"), Some(true))
    );
    assert_eq!(e["meeting_url"], "https://meet.google.com/example");
    assert!(s.log(&lead(5)).await.is_empty());
}

async fn source_defaults_to_custom_and_occurred_at_to_now(backend: Backend) {
    let s = setup(shared(backend), named(1)).await;
    let before = Timestamp::now();
    let metadata = json!({"crm_id": 42, "deep": (2..20).fold(json!([1e125]), |inner, _| json!({"k": inner}))});
    let r = s.event(json!({"lead_id": s.leads[0], "event_type": "reply", "metadata": metadata})).await;
    let after = Timestamp::now().plus(Duration::from_secs(1));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.data()["source"], "custom");
    let replied = r.data()["lead"]["replied_at"].as_str().unwrap();
    assert!(replied.ends_with('Z') && replied.len() == 24, "millisecond UTC timestamp: {replied}");
    let replied = Timestamp::parse(replied).unwrap();
    assert!(replied >= before && replied <= after, "{replied} not between {before} and {after}");
    assert_eq!(s.log(&s.leads[0]).await[0]["metadata"], metadata, "20 levels and 1e125 are stored");
}

async fn bad_input_is_a_clear_4xx(backend: Backend) {
    let server = shared(backend);
    let s = setup(server, named(1)).await;
    let theirs = setup(server, named(1)).await;
    let lead = s.leads[0].clone();
    let not_found = json!({"error": {"code": "lead_not_found", "message": NOT_FOUND}});

    let r = s.event(json!({"lead_id": "req_01NOPE_0001", "event_type": "reply"})).await;
    assert_eq!((r.status, &r.body), (404, &not_found));
    let r = s.event(json!({"lead_id": theirs.leads[0], "event_type": "reply"})).await;
    assert_eq!((r.status, &r.body), (404, &not_found), "another workspace's lead is not found");
    let r = s.api.get(&format!("/api/v1/leads/{}/events", theirs.leads[0]), &s.ws.api_key).await;
    assert_eq!((r.status, &r.body), (404, &not_found));
    assert_eq!(theirs.lead(&theirs.leads[0]).await["status"], "new", "nothing happened to it");

    // `metadata` itself is the first of at most 20 levels.
    let nested = |levels: usize| (1..levels).fold(json!({"leaf": 1}), |inner, _| json!({"k": inner}));
    let deepest = format!("metadata{}", ".k".repeat(20));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"lead_id": lead, "event_type": "opened"}), "event_type", "positive_reply"),
        (json!({"lead_id": lead, "event_type": 5}), "event_type", "string"),
        (json!({"lead_id": lead}), "event_type", "required"),
        (json!({"event_type": "reply"}), "lead_id", "required"),
        (json!({"lead_id": "", "event_type": "reply"}), "lead_id", "empty"),
        (json!({"lead_id": lead, "event_type": "reply", "source": "zapier"}), "source", "heyreach"),
        (json!({"lead_id": lead, "event_type": "reply", "occurred_at": "yesterday"}), "occurred_at", "RFC 3339"),
        (
            json!({"lead_id": lead, "event_type": "reply", "occurred_at": "2099-01-01T00:00:00Z"}),
            "occurred_at",
            "future",
        ),
        (json!({"lead_id": lead, "event_type": "reply", "metadata": [1, 2]}), "metadata", "object"),
        (json!({"lead_id": lead, "event_type": "reply", "metadata": "x"}), "metadata", "object"),
        (json!({"lead_id": lead, "event_type": "reply", "metadata": {"n": [1e300]}}), "metadata.n[0]", "1e+300"),
        (json!({"lead_id": lead, "event_type": "reply", "metadata": nested(21)}), &deepest, "20 levels"),
        (json!({"lead_id": lead, "event_type": "reply", "content": "x".repeat(10_001)}), "content", "10000"),
        (json!({"lead_id": lead, "event_type": "meeting_booked", "meeting_url": "not a url"}), "meeting_url", "URL"),
        (json!({"lead_id": lead, "event_type": "reply", "event_id": ""}), "event_id", "empty"),
    ];
    for (body, field, words) in cases {
        let r = s.event(body.clone()).await;
        assert_eq!((r.status, r.error_code()), (400, "validation_error"), "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(words), "{body}: {}", r.text);
    }
    let r = s
        .api
        .raw(
            "POST",
            EVENTS,
            Auth::Key(&s.ws.api_key),
            &[("content-type", "application/json".into())],
            Some(b"{\"lead_id\": ".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (400, "validation_error"));
    let r = s
        .api
        .raw("POST", EVENTS, Auth::Key(&s.ws.api_key), &[("content-type", "text/plain".into())], Some(b"{}".to_vec()))
        .await;
    assert_eq!(r.status, 415);
    let r = s.api.send("POST", EVENTS, Auth::None, Some(&json!({"lead_id": lead, "event_type": "reply"}))).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    let r = s
        .api
        .raw(
            "POST",
            EVENTS,
            Auth::Key(&s.ws.api_key),
            &[("content-type", "application/json".into())],
            Some(vec![b' '; 200 * 1024]),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));
    // None of it touched the lead or its log.
    assert_eq!(s.lead(&lead).await["status"], "new");
    assert!(s.log(&lead).await.is_empty());
}

async fn outcomes_never_go_backwards_and_apply_in_time_order(backend: Backend) {
    let s = setup(shared(backend), named(4)).await;
    let (a, b, c, d) = (s.leads[0].clone(), s.leads[1].clone(), s.leads[2].clone(), s.leads[3].clone());

    // A late reply does not undo a meeting.
    s.event(json!({"lead_id": a, "event_type": "meeting_booked", "occurred_at": "2026-05-02T10:00:00Z", "meeting_url": "https://meet.example/a"})).await;
    let r = s.event(json!({"lead_id": a, "event_type": "reply", "content": "See you then", "occurred_at": "2026-05-02T11:00:00Z"})).await;
    assert_eq!(r.data()["lead"]["status"], "meeting_booked", "{}", r.text);
    assert_eq!(r.data()["lead"]["feedback"], "positive");
    assert!(
        r.data()["note"].as_str().unwrap().contains("Status stays meeting_booked because outcomes never go backwards"),
        "{}",
        r.text
    );

    // A bounce after a reply is logged but does not mark the lead skipped.
    s.event(json!({"lead_id": b, "event_type": "reply", "content": "hi", "occurred_at": "2026-05-02T10:00:00Z"})).await;
    let r = s
        .event(
            json!({"lead_id": b, "event_type": "bounce", "content": "bounced", "occurred_at": "2026-05-02T11:00:00Z"}),
        )
        .await;
    assert_eq!(
        (r.status, r.data()["mutated_lead"].as_bool(), r.data()["stored_event"].as_bool()),
        (200, Some(false), Some(true))
    );
    assert_eq!((r.data()["lead"]["status"].as_str(), &r.data()["lead"]["feedback"]), (Some("replied"), &Value::Null));
    assert!(r.data()["note"].as_str().unwrap().contains("outcomes never go backwards"), "{}", r.text);
    assert_eq!(s.log(&b).await.len(), 2);

    // An older reply arriving late does not overwrite the newer one.
    s.event(json!({"lead_id": c, "event_type": "reply", "content": "newer", "occurred_at": "2026-05-02T12:00:00Z"}))
        .await;
    let r = s
        .event(json!({"lead_id": c, "event_type": "reply", "content": "older", "occurred_at": "2026-05-02T09:00:00Z"}))
        .await;
    assert_eq!(r.data()["mutated_lead"], false);
    assert!(r.data()["note"].as_str().unwrap().contains("newer reply of 2026-05-02T12:00:00.000Z"), "{}", r.text);
    let stored = s.lead(&c).await;
    assert_eq!(
        (stored["reply_content"].as_str(), stored["replied_at"].as_str()),
        (Some("newer"), Some("2026-05-02T12:00:00.000Z"))
    );
    // The log is in event time order, newest first, whatever the arrival order.
    let times: Vec<String> = s.log(&c).await.iter().map(|e| e["occurred_at"].as_str().unwrap().to_owned()).collect();
    assert_eq!(times, ["2026-05-02T12:00:00.000Z", "2026-05-02T09:00:00.000Z"]);

    // Out of order: a meeting (10:00), a bounce (13:00) and a positive reply (11:00) end
    // where they would in time order.
    for (event, at) in [
        ("bounce", "2026-05-02T13:00:00Z"),
        ("positive_reply", "2026-05-02T11:00:00Z"),
        ("meeting_booked", "2026-05-02T10:00:00Z"),
    ] {
        let r = s.event(json!({"lead_id": d, "event_type": event, "content": event, "occurred_at": at})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let stored = s.lead(&d).await;
    assert_eq!(
        (stored["status"].as_str(), stored["feedback"].as_str(), stored["feedback_reason"].as_str()),
        (Some("meeting_booked"), Some("positive"), Some("meeting_booked"))
    );
    assert_eq!(
        (stored["replied_at"].as_str(), stored["reply_content"].as_str()),
        (Some("2026-05-02T11:00:00.000Z"), Some("positive_reply"))
    );
    assert_eq!(stored["meeting_booked_at"], "2026-05-02T10:00:00.000Z");
}

async fn retried_deliveries_are_applied_once_with_the_same_answer(backend: Backend) {
    let s = setup(shared(backend), named(2)).await;
    let body = json!({"lead_id": s.leads[0], "event_type": "reply", "content": "Yes", "event_id": "crm-evt-1"});
    let first = s.event(body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.data()["mutated_lead"], true);
    for _ in 0..2 {
        let again = s.event(body.clone()).await;
        assert_eq!((again.status, &again.body), (200, &first.body), "a retry gets the first answer");
    }
    assert_eq!(s.log(&s.leads[0]).await.len(), 1);

    // The same id for another event is refused, not silently merged.
    let mut other = body.clone();
    other["content"] = json!("No");
    let r = s.event(other).await;
    assert_eq!((r.status, r.error_code()), (409, "duplicate_idempotency_key"));

    // Idempotency-Key does the same; concurrent deliveries of one event still apply once.
    let body = json!({"lead_id": s.leads[1], "event_type": "bounce", "content": "full"});
    let headers = [("content-type", "application/json".to_owned()), ("idempotency-key", "delivery-77".to_owned())];
    let sends = (0..8).map(|_| {
        s.api.raw("POST", EVENTS, Auth::Key(&s.ws.api_key), &headers, Some(serde_json::to_vec(&body).unwrap()))
    });
    let answers = futures_util::future::join_all(sends).await;
    for r in &answers {
        assert_eq!((r.status, &r.body), (200, &answers[0].body), "{}", r.text);
    }
    assert_eq!(answers[0].data()["lead"]["status"], "skipped");
    assert_eq!(s.log(&s.leads[1]).await.len(), 1);

    // `event_id` wins over the header, but a header longer than an id may be is refused
    // either way, as the API document states it.
    let body = json!({"lead_id": s.leads[1], "event_type": "open", "event_id": "crm-evt-2"});
    let headers = [("content-type", "application/json".to_owned()), ("idempotency-key", "k".repeat(256))];
    let r =
        s.api.raw("POST", EVENTS, Auth::Key(&s.ws.api_key), &headers, Some(serde_json::to_vec(&body).unwrap())).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("Idempotency-Key")), "{}", r.text);
}

async fn fifty_concurrent_events_on_one_lead_lose_nothing(backend: Backend) {
    // Its own server (and table): moto copies the whole table on every transaction, so a
    // burst of contended writes on the shared, large table would slow every other test.
    let server = Server::start(backend);
    let s = setup(&server, named(1)).await;
    let lead = s.leads[0].clone();
    // 40 replies at distinct minutes (sent in a scrambled order), 5 opens, 5 clicks.
    let mut bodies: Vec<Value> = (0..40)
        .map(|i| {
            let minute = (i * 17) % 40;
            json!({"lead_id": lead, "event_type": "reply", "content": format!("reply {minute:02}"),
                   "occurred_at": format!("2026-05-02T10:{minute:02}:00Z")})
        })
        .collect();
    bodies
        .extend((0..5).map(|_| json!({"lead_id": lead, "event_type": "open", "occurred_at": "2026-05-02T09:00:00Z"})));
    bodies
        .extend((0..5).map(|_| json!({"lead_id": lead, "event_type": "click", "occurred_at": "2026-05-02T09:30:00Z"})));
    let answers = futures_util::future::join_all(bodies.iter().map(|b| s.event(b.clone()))).await;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let stored = s.lead(&lead).await;
    assert_eq!(
        (stored["status"].as_str(), stored["replied_at"].as_str(), stored["reply_content"].as_str()),
        (Some("replied"), Some("2026-05-02T10:39:00.000Z"), Some("reply 39"))
    );
    let log = s.log(&lead).await;
    assert_eq!(log.len(), 50, "every event is in the log");
    let ids: BTreeSet<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 50);
    // The newest reply in time has the last word, whatever the arrival order.
    assert!(log.iter().any(|e| e["content"] == "reply 39" && e["lead_status"] == "replied"));
    // Each kind counted once for the lead.
    let r = s.api.get("/api/v1/insights?group_by=campaign", &s.ws.api_key).await;
    let group = &r.data()[0];
    assert_eq!(group["key"], s.campaign.as_str());
    assert_eq!(
        (group["replied"].as_i64(), group["opened"].as_i64(), group["clicked"].as_i64()),
        (Some(1), Some(1), Some(1))
    );
}

async fn lead_events_page_newest_first(backend: Backend) {
    let s = setup(shared(backend), named(1)).await;
    let lead = s.leads[0].clone();
    for hour in [11, 9, 13, 10, 12] {
        let r = s
            .event(
                json!({"lead_id": lead, "event_type": "open", "occurred_at": format!("2026-05-02T{hour:02}:00:00Z")}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let mut hours = Vec::new();
    let mut path = format!("/api/v1/leads/{lead}/events?limit=2");
    for _ in 0..5 {
        let r = s.api.get(&path, &s.ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.data().as_array().unwrap().len() <= 2);
        hours
            .extend(r.data().as_array().unwrap().iter().map(|e| e["occurred_at"].as_str().unwrap()[11..13].to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/leads/{lead}/events?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(hours, ["13", "12", "11", "10", "09"]);
    let r = s.api.get(&format!("/api/v1/leads/{lead}/events?limit=0"), &s.ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("limit")));
}

fn instantly(event_type: &str, email: &str, at: &str) -> Value {
    json!({
        "timestamp": at, "event_type": event_type, "workspace": "0b4c7c1e-9d1f-4c3a-8f7e-1a2b3c4d5e6f",
        "campaign_id": "5f0e7f4a-2c3b-4d5e-9f8a-7b6c5d4e3f2a", "campaign_name": "Q3", "lead_email": email,
        "email_account": "sdr@example.com", "step": 1, "variant": 1, "reply_text": "Sounds good", "reply_text_snippet": "Sounds"
    })
}

async fn instantly_webhooks_are_mapped_and_find_leads_by_email(backend: Backend) {
    let server = shared(backend);
    let s = setup(
        server,
        vec![json!({"name": "Jane", "email": "jane@acme.com"}), json!({"name": "Bob", "email": "bob@acme.com"})],
    )
    .await;
    let token = Some(s.token.as_str());
    let r =
        provider(&s.api, INSTANTLY, token, &instantly("reply_received", "Jane@ACME.com", "2026-05-02T10:00:00.000Z"))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.data();
    assert_eq!(
        (d["provider_event"].as_str(), d["event_type"].as_str(), d["source"].as_str()),
        (Some("reply_received"), Some("reply"), Some("instantly"))
    );
    assert_eq!((d["lead_id"].as_str(), d["lead"]["status"].as_str()), (Some(s.leads[0].as_str()), Some("replied")));
    assert_eq!(s.lead(&s.leads[0]).await["reply_content"], "Sounds good");
    // Instantly retries a delivery: same answer, applied once.
    let again =
        provider(&s.api, INSTANTLY, token, &instantly("reply_received", "Jane@ACME.com", "2026-05-02T10:00:00.000Z"))
            .await;
    assert_eq!(again.body, r.body);
    assert_eq!(s.log(&s.leads[0]).await.len(), 1);
    let entry = &s.log(&s.leads[0]).await[0];
    assert_eq!(entry["metadata"]["provider_event"], "reply_received");
    assert_eq!(entry["metadata"]["campaign_name"], "Q3");

    let r =
        provider(&s.api, INSTANTLY, token, &instantly("lead_interested", "jane@acme.com", "2026-05-02T10:05:00.000Z"))
            .await;
    assert_eq!(
        (r.data()["event_type"].as_str(), r.data()["lead"]["feedback"].as_str()),
        (Some("positive_reply"), Some("positive"))
    );
    let r = provider(&s.api, INSTANTLY, token, &instantly("email_bounced", "bob@acme.com", "2026-05-02T10:00:00.000Z"))
        .await;
    assert_eq!(r.data()["lead"]["status"], "skipped");
    let r = provider(&s.api, INSTANTLY, token, &instantly("email_opened", "bob@acme.com", "2026-05-02T09:00:00.000Z"))
        .await;
    assert_eq!((r.data()["event_type"].as_str(), r.data()["mutated_lead"].as_bool()), (Some("open"), Some(false)));
    // `leadpush_id` (a custom variable set by our push) wins over the email.
    let mut by_id = instantly("lead_meeting_booked", "jane@acme.com", "2026-05-02T11:00:00.000Z");
    by_id["leadpush_id"] = json!(s.leads[1]);
    let r = provider(&s.api, INSTANTLY, token, &by_id).await;
    assert_eq!(
        (r.data()["lead_id"].as_str(), r.data()["lead"]["status"].as_str()),
        (Some(s.leads[1].as_str()), Some("meeting_booked"))
    );

    // Known but untracked events are acknowledged so Instantly keeps the webhook enabled.
    let r =
        provider(&s.api, INSTANTLY, token, &instantly("email_sent", "jane@acme.com", "2026-05-02T09:00:00.000Z")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.data()["accepted"].as_bool(), r.data()["stored_event"].as_bool(), r.data()["provider_event"].as_str()),
        (Some(false), Some(false), Some("email_sent"))
    );
    // Only a body that is not Instantly's at all is a 400.
    let r = provider(&s.api, INSTANTLY, token, &json!({"hello": "world"})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("event_type")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("Instantly"), "{}", r.text);
    // Routine misses are 200 `accepted: false` with the reason, so Instantly keeps the webhook.
    let not_accepted = |r: &Resp, reason: &str| {
        assert_eq!(r.status, 200, "{}", r.text);
        let d = r.data();
        assert_eq!(
            (d["accepted"].as_bool(), d["reason"].as_str(), d["stored_event"].as_bool()),
            (Some(false), Some(reason), Some(false)),
            "{}",
            r.text
        );
        d["note"].as_str().unwrap().to_owned()
    };
    let r =
        provider(&s.api, INSTANTLY, token, &instantly("lead_maybe_later", "jane@acme.com", "2026-05-02T09:00:00.000Z"))
            .await;
    assert!(not_accepted(&r, "unknown_event").contains("reply_received"), "{}", r.text);
    let mut no_email = instantly("reply_received", "x@y.z", "2026-05-02T09:00:00.000Z");
    no_email.as_object_mut().unwrap().remove("lead_email");
    let r = provider(&s.api, INSTANTLY, token, &no_email).await;
    assert!(not_accepted(&r, "unusable_payload").contains("lead_email"), "{}", r.text);
    let r =
        provider(&s.api, INSTANTLY, token, &instantly("reply_received", "nobody@acme.com", "2026-05-02T09:00:00.000Z"))
            .await;
    let note = not_accepted(&r, "lead_not_found");
    assert!(!note.contains("nobody@acme.com"), "no lead PII in the answer: {note}");
    // Without the token, or with another credential: 401 explaining the setup.
    let r =
        provider(&s.api, INSTANTLY, None, &instantly("reply_received", "jane@acme.com", "2026-05-02T09:00:00.000Z"))
            .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("custom header"), "{}", r.text);
    let key = Some(s.ws.api_key.as_str());
    let r = provider(&s.api, INSTANTLY, key, &instantly("reply_received", "jane@acme.com", "2026-05-02T09:00:00.000Z"))
        .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    // Another workspace's token cannot reach these leads.
    let other = setup(server, named(1)).await;
    let other_token = Some(other.token.as_str());
    let r = provider(
        &s.api,
        INSTANTLY,
        other_token,
        &instantly("reply_received", "bob@acme.com", "2026-05-02T12:00:00.000Z"),
    )
    .await;
    not_accepted(&r, "lead_not_found");
    assert_eq!(s.lead(&s.leads[1]).await["status"], "meeting_booked", "untouched by the other workspace");
}

fn heyreach(profile_url: &str, message: &str, at: &str) -> Value {
    json!({
        "event_type": "message_reply_received", "timestamp": at, "correlation_id": format!("corr-{at}"),
        "conversation_id": "2-OTE3", "is_inmail": false,
        "recent_messages": [
            {"creation_time": at, "message": "Hi there", "is_reply": false},
            {"creation_time": at, "message": message, "is_reply": true}
        ],
        "campaign": {"id": 456, "name": "LinkedIn Q1"},
        "lead": {"id": "918418165", "profile_url": profile_url, "first_name": "Jane", "email_address": null}
    })
}

async fn heyreach_webhooks_take_a_url_token_and_find_leads_by_linkedin(backend: Backend) {
    let server = shared(backend);
    let s = setup(
        server,
        vec![
            json!({"name": "Jane (old)", "linkedin": "https://www.linkedin.com/in/jane-doe"}),
            json!({"name": "Jane (new)", "linkedin_url": "linkedin.com/in/Jane-Doe/"}),
            json!({"name": "Ann", "email": "ann@acme.com"}),
        ],
    )
    .await;
    let path = format!("/api/v1/feedback/providers/heyreach?token={}", s.token);

    // Two leads share the profile: the newest is chosen (neither was pushed).
    let r = provider(
        &s.api,
        &path,
        None,
        &heyreach("https://de.linkedin.com/in/jane-doe?x=1", "Happy to chat", "2026-05-02T10:00:00Z"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.data();
    assert_eq!(
        (d["lead_id"].as_str(), d["source"].as_str(), d["event_type"].as_str()),
        (Some(s.leads[1].as_str()), Some("heyreach"), Some("reply"))
    );
    assert_eq!(d["provider_event"], "message_reply_received");
    let stored = s.lead(&s.leads[1]).await;
    assert_eq!((stored["status"].as_str(), stored["reply_content"].as_str()), (Some("replied"), Some("Happy to chat")));
    assert_eq!(s.lead(&s.leads[0]).await["status"], "new");

    // Upper-case event names, camelCase keys, email fallback.
    let body = json!({"eventType": "INMAIL_REPLY_RECEIVED", "timestamp": "2026-05-02T11:00:00Z",
                      "lead": {"profileUrl": "https://www.linkedin.com/in/someone-else", "emailAddress": "ANN@acme.com"},
                      "recentMessages": [{"message": "Yes", "isReply": true}]});
    let r = provider(&s.api, &path, None, &body).await;
    assert_eq!((r.status, r.data()["lead_id"].as_str()), (200, Some(s.leads[2].as_str())), "{}", r.text);

    let r = provider(&s.api, &path, None, &json!({"event_type": "CONNECTION_REQUEST_SENT", "lead": {}})).await;
    assert_eq!(
        (r.status, r.data()["accepted"].as_bool(), r.data()["reason"].as_str()),
        (200, Some(false), Some("untracked_event"))
    );
    let r = provider(
        &s.api,
        &path,
        None,
        &json!({"event_type": "MESSAGE_REPLY_RECEIVED", "lead": {"profile_url": "https://example.com/x"}}),
    )
    .await;
    assert_eq!((r.status, r.data()["reason"].as_str()), (200, Some("unusable_payload")), "{}", r.text);
    let r = provider(&s.api, &path, None, &heyreach("https://www.linkedin.com/in/nobody", "?", "2026-05-02T10:00:00Z"))
        .await;
    assert_eq!((r.status, r.data()["reason"].as_str()), (200, Some("lead_not_found")), "{}", r.text);
    // Not HeyReach's shape at all (no event type in the body or the URL): 400 saying how to fix it.
    let r =
        provider(&s.api, &path, None, &json!({"lead": {"profile_url": "https://www.linkedin.com/in/jane-doe"}})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("event_type")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("&event="), "{}", r.text);

    let r = provider(
        &s.api,
        "/api/v1/feedback/providers/heyreach",
        None,
        &heyreach("https://www.linkedin.com/in/jane-doe", "x", "2026-05-02T10:00:00Z"),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("?token="), "{}", r.text);
    let r = provider(
        &s.api,
        "/api/v1/feedback/providers/heyreach?token=lp_wht_wrong",
        None,
        &heyreach("https://www.linkedin.com/in/jane-doe", "x", "2026-05-02T10:00:00Z"),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
    assert!(!r.text.contains("lp_wht_wrong"), "the token is never echoed");
}

async fn provider_webhook_misses_are_answered_200_and_counted_where_users_see_them(backend: Backend) {
    let server = shared(backend);
    let s = setup(
        server,
        vec![json!({"name": "Jane Doe", "email": "jane@acme.com", "linkedin": "https://www.linkedin.com/in/jane-doe"})],
    )
    .await;
    for (provider, body) in [
        ("instantly", json!({"api_key": "in-key-1234", "campaign_id": "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a"})),
        ("heyreach", json!({"api_key": "hr-key-1234", "list_id": 7})),
    ] {
        let r =
            s.api.send("PUT", &format!("/api/v1/integrations/{provider}"), Auth::Key(&s.ws.api_key), Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.data()["webhook_activity"],
            json!({"received": 0, "recorded": 0, "not_accepted": {}, "latest_not_accepted": []})
        );
    }
    let token = Some(s.token.as_str());
    // The lead as Instantly holds it after our push: its custom variables come back merged in.
    let held = json!({"email": "jane@acme.com", "campaign": "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a", "first_name": "Jane",
                      "job_title": "CTO", "custom_variables": {"leadpush_id": s.leads[0], "custom_event_type": "vip"}});
    let label = fakes::instantly_webhook(&held, "Interested - Q3 follow up", "2026-05-02T09:00:00.000Z");
    let r = provider(&s.api, INSTANTLY, token, &label).await;
    assert_eq!((r.status, r.data()["reason"].as_str()), (200, Some("unknown_event")), "{}", r.text);
    assert_eq!(r.data()["provider_event"], "Interested - Q3 follow up");
    let stranger = json!({"email": "stranger@acme.com", "campaign": held["campaign"]});
    let r = provider(
        &s.api,
        INSTANTLY,
        token,
        &fakes::instantly_webhook(&stranger, "reply_received", "2026-05-02T09:01:00.000Z"),
    )
    .await;
    assert_eq!((r.status, r.data()["reason"].as_str()), (200, Some("lead_not_found")), "{}", r.text);
    let r = provider(
        &s.api,
        INSTANTLY,
        token,
        &fakes::instantly_webhook(&held, "reply_received", "2026-05-02T09:02:00.000Z"),
    )
    .await;
    assert_eq!((r.status, r.data()["lead_id"].as_str()), (200, Some(s.leads[0].as_str())), "{}", r.text);

    // HeyReach payloads without `event_type` take the event named in the webhook URL.
    let hr_held = json!({"profileUrl": "https://www.linkedin.com/in/jane-doe", "firstName": "Jane", "lastName": "Doe",
                         "customUserFields": [{"name": "leadpush_id", "value": s.leads[0]}]});
    let nameless = fakes::heyreach_webhook(&hr_held, None, "Happy to chat", "2026-05-02T09:03:00Z");
    let base = format!("/api/v1/feedback/providers/heyreach?token={}", s.token);
    let r = provider(&s.api, &base, None, &nameless).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("event_type")), "{}", r.text);
    let r = provider(&s.api, &format!("{base}&event=MESSAGE_REPLY_RECEIVED"), None, &nameless).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.data()["lead_id"].as_str(), r.data()["event_type"].as_str(), r.data()["provider_event"].as_str()),
        (Some(s.leads[0].as_str()), Some("reply"), Some("message_reply_received"))
    );
    assert_eq!(s.lead(&s.leads[0]).await["reply_content"], "Happy to chat");

    let r = s.api.get("/api/v1/integrations", &s.ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let activity = |name: &str| {
        r.data().as_array().unwrap().iter().find(|i| i["provider"] == name).unwrap()["webhook_activity"].clone()
    };
    let instantly_activity = activity("instantly");
    assert_eq!(
        (&instantly_activity["received"], &instantly_activity["recorded"], &instantly_activity["not_accepted"]),
        (&json!(3), &json!(1), &json!({"unknown_event": 1, "lead_not_found": 1})),
        "{instantly_activity}"
    );
    let latest: BTreeSet<(String, String)> = instantly_activity["latest_not_accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["reason"].as_str().unwrap().to_owned(), e["provider_event"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        latest,
        BTreeSet::from([
            ("lead_not_found".to_owned(), "reply_received".to_owned()),
            ("unknown_event".to_owned(), "Interested - Q3 follow up".to_owned())
        ])
    );
    assert!(!instantly_activity.to_string().contains("stranger@acme.com"), "no lead PII: {instantly_activity}");
    let heyreach_activity = activity("heyreach");
    assert_eq!(
        (&heyreach_activity["received"], &heyreach_activity["recorded"], &heyreach_activity["not_accepted"]),
        (&json!(1), &json!(1), &json!({})),
        "the 400 is not a delivery we acknowledged: {heyreach_activity}"
    );
}

both_backends!(
    each_event_type_updates_the_lead_as_documented,
    source_defaults_to_custom_and_occurred_at_to_now,
    bad_input_is_a_clear_4xx,
    outcomes_never_go_backwards_and_apply_in_time_order,
    retried_deliveries_are_applied_once_with_the_same_answer,
    fifty_concurrent_events_on_one_lead_lose_nothing,
    lead_events_page_newest_first,
    instantly_webhooks_are_mapped_and_find_leads_by_email,
    heyreach_webhooks_take_a_url_token_and_find_leads_by_linkedin,
    provider_webhook_misses_are_answered_200_and_counted_where_users_see_them,
);
