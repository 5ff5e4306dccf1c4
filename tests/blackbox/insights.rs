//! Insights: outcome counts per position, company, signal type, source and campaign,
//! each lead counted once per kind, per workspace.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Api, Backend, Server, shared};

async fn groups(api: &Api, key: &str, group_by: &str) -> BTreeMap<String, Value> {
    let r = api.get(&format!("/api/v1/insights?group_by={group_by}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["next_cursor"].is_null());
    r.data().as_array().unwrap().iter().map(|g| (g["key"].as_str().unwrap_or("(none)").to_owned(), g.clone())).collect()
}

/// `[pushed, opened, clicked, replied, positive, negative, meetings]`.
fn counts(group: &Value) -> [i64; 7] {
    ["pushed", "opened", "clicked", "replied", "positive", "negative", "meetings"].map(|k| group[k].as_i64().unwrap())
}

async fn insights_count_each_lead_once_per_kind_and_group(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Insights", "webhook").await;
    let leads = json!([
        {"name": "A", "position": "CTO", "company": "Acme", "signal_type": "hiring", "campaign_id": campaign},
        {"name": "B", "title": "cto", "company": "Acme", "signal_type": "funding", "campaign_id": campaign},
        {"name": "C", "position": "VP Sales", "company": "Globex", "campaign_id": campaign},
    ]);
    let r = api.ingest(&token, &json!({"idempotency_key": "insights", "leads": leads})).await;
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let events = [
        (0, "reply", "instantly", "2026-05-02T10:00:00Z"),
        (0, "reply", "instantly", "2026-05-02T11:00:00Z"), // a second reply: not counted again
        (0, "meeting_booked", "instantly", "2026-05-02T12:00:00Z"),
        (1, "positive_reply", "heyreach", "2026-05-02T10:00:00Z"),
        (1, "open", "instantly", "2026-05-02T09:00:00Z"),
        (1, "open", "instantly", "2026-05-02T09:05:00Z"),
        (2, "bounce", "instantly", "2026-05-02T10:00:00Z"),
        (2, "click", "manual", "2026-05-02T09:00:00Z"),
    ];
    for (lead, event, source, at) in events {
        let body = json!({"lead_id": ids[lead], "event_type": event, "source": source, "occurred_at": at});
        let r = api.post("/api/v1/feedback/events", &ws.api_key, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    let by_position = groups(&api, &ws.api_key, "position").await;
    assert_eq!(by_position.keys().collect::<Vec<_>>(), ["cto", "vp sales"], "grouped case-insensitively");
    assert_eq!(counts(&by_position["cto"]), [0, 1, 0, 2, 2, 0, 1]);
    assert_eq!(counts(&by_position["vp sales"]), [0, 0, 1, 0, 0, 1, 0]);
    let cto = &by_position["cto"];
    assert!(cto["reply_rate"].is_null() && cto["meeting_rate"].is_null(), "no pushes yet: {cto}");
    assert!(cto["reply_rate_interval"].is_null() && cto["positive_rate_interval"].is_null(), "{cto}");
    assert_eq!((cto["sample_size"].as_i64(), cto["insufficient_data"].as_bool()), (Some(0), Some(true)));

    let by_company = groups(&api, &ws.api_key, "company").await;
    assert_eq!(counts(&by_company["acme"]), [0, 1, 0, 2, 2, 0, 1]);
    let by_signal = groups(&api, &ws.api_key, "signal_type").await;
    assert_eq!(by_signal.keys().collect::<Vec<_>>(), ["(none)", "funding", "hiring"]);
    assert_eq!(counts(&by_signal["hiring"]), [0, 0, 0, 1, 1, 0, 1]);
    assert_eq!(counts(&by_signal["(none)"]), [0, 0, 1, 0, 0, 1, 0]);
    let by_campaign = groups(&api, &ws.api_key, "campaign").await;
    assert_eq!(counts(&by_campaign[&campaign]), [0, 1, 1, 2, 2, 1, 1]);
    // Source is the event's source: a lead counts once per kind in each source.
    let by_source = groups(&api, &ws.api_key, "source").await;
    assert_eq!(counts(&by_source["instantly"]), [0, 1, 0, 1, 1, 1, 1]);
    assert_eq!(counts(&by_source["heyreach"]), [0, 0, 0, 1, 1, 0, 0]);
    assert_eq!(counts(&by_source["manual"]), [0, 0, 1, 0, 0, 0, 0]);

    // Pages follow the usual cursor.
    let r = api.get("/api/v1/insights?group_by=source&limit=2", &ws.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().expect("a second page").to_owned();
    let r = api.get(&format!("/api/v1/insights?group_by=source&limit=2&cursor={cursor}"), &ws.api_key).await;
    assert_eq!((r.data().as_array().unwrap().len(), &r.body["next_cursor"]), (1, &Value::Null));

    // Another workspace sees nothing of it; bad groupings are named.
    let other = server.workspace();
    assert!(groups(&api, &other.api_key, "position").await.is_empty());
    let r = api.get("/api/v1/insights?group_by=title", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("group_by")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("signal_type"), "{}", r.text);
    let r = api.get("/api/v1/insights", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("group_by")));
    let r = api.send("GET", "/api/v1/insights?group_by=position", crate::harness::Auth::None, None).await;
    assert_eq!(r.status, 401);
}

async fn concurrent_events_on_many_leads_count_exactly(backend: Backend) {
    // Its own server and table, like the feedback concurrency test (moto copies the table
    // on every transaction).
    let server = &Server::start(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Busy", "webhook").await;
    let leads: Vec<Value> =
        (0..25).map(|i| json!({"name": format!("L{i}"), "position": "Founder", "campaign_id": campaign})).collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "busy", "leads": leads})).await;
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    // Every lead replies twice and is opened once, all at the same time.
    let bodies: Vec<Value> = ids
        .iter()
        .flat_map(|id| {
            ["reply", "reply", "open"].into_iter().enumerate().map(move |(n, event)| {
                json!({"lead_id": id, "event_type": event, "occurred_at": format!("2026-05-02T10:0{n}:00Z")})
            })
        })
        .collect();
    let sends = bodies.iter().map(|body| api.post("/api/v1/feedback/events", &ws.api_key, body));
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let by_position = groups(&api, &ws.api_key, "position").await;
    assert_eq!(counts(&by_position["founder"]), [0, 25, 0, 25, 0, 0, 0]);
}

async fn pushes_feed_the_pushed_counter_and_the_rates(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Pushed", "webhook").await;
    let leads = json!([
        {"name": "A", "position": "CTO", "campaign_id": campaign},
        {"name": "B", "position": "CTO", "campaign_id": campaign},
    ]);
    let r = api.ingest(&token, &json!({"idempotency_key": "pushed", "leads": leads})).await;
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let receiver = crate::harness::receiver::Receiver::start(crate::harness::receiver::Reply::ok()).await;
    let push = json!({"lead_ids": ids, "destination": "webhook_url", "webhook_url": receiver.url});
    for _ in 0..2 {
        // A second push of the same leads counts nothing twice.
        let r = api.post("/api/v1/leads/push", &ws.api_key, &push).await;
        assert_eq!(r.data()["status"], "dispatched", "{}", r.text);
    }
    let body = json!({"lead_id": ids[0], "event_type": "reply", "source": "webhook"});
    assert_eq!(api.post("/api/v1/feedback/events", &ws.api_key, &body).await.status, 200);
    let cto = &groups(&api, &ws.api_key, "position").await["cto"];
    assert_eq!(counts(cto)[0], 2, "{cto}");
    assert_eq!(cto["reply_rate"].as_f64(), Some(0.5), "{cto}");
    let by_source = groups(&api, &ws.api_key, "source").await;
    assert_eq!(counts(&by_source["webhook"])[0], 2, "the push destination is the channel: {by_source:?}");
}

/// 30 CTOs pushed, 6 of them positive: enough to rank, with the Wilson interval of 6/30;
/// 2 CEOs pushed, 1 reply: marked too small, its interval wide.
async fn rates_carry_their_interval_and_sample_and_small_groups_are_marked(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Intervals", "webhook").await;
    let leads: Vec<Value> = (0..32)
        .map(|i| json!({"name": format!("L{i}"), "position": if i < 30 { "CTO" } else { "CEO" }, "campaign_id": campaign}))
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "intervals", "leads": leads})).await;
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let receiver = crate::harness::receiver::Receiver::start(crate::harness::receiver::Reply::ok()).await;
    let push = json!({"lead_ids": ids, "destination": "webhook_url", "webhook_url": receiver.url});
    assert_eq!(api.post("/api/v1/leads/push", &ws.api_key, &push).await.data()["status"], "dispatched");
    let outcomes = (0..6).map(|i| (i, "positive_reply")).chain([(30, "reply")]);
    for (lead, event) in outcomes {
        let body = json!({"lead_id": ids[lead], "event_type": event, "source": "webhook"});
        assert_eq!(api.post("/api/v1/feedback/events", &ws.api_key, &body).await.status, 200);
    }
    // Pushes are counted by the push's follow-up task.
    let by_position = crate::harness::eventually(std::time::Duration::from_secs(30), || async {
        let by_position = groups(&api, &ws.api_key, "position").await;
        (by_position["cto"]["pushed"] == 30 && by_position["ceo"]["pushed"] == 2).then_some(by_position)
    })
    .await
    .expect("the pushes are counted");
    let cto = &by_position["cto"];
    assert_eq!((cto["sample_size"].as_i64(), cto["insufficient_data"].as_bool()), (Some(30), Some(false)), "{cto}");
    assert_eq!(cto["positive_rate"].as_f64(), Some(0.2));
    assert_eq!(cto["positive_rate_interval"], json!({"low": 0.0951, "high": 0.3731}), "Wilson 95% of 6/30");
    assert_eq!(cto["reply_rate_interval"], json!({"low": 0.0951, "high": 0.3731}));
    assert_eq!(cto["meeting_rate_interval"], json!({"low": 0.0, "high": 0.1135}), "Wilson 95% of 0/30");
    let ceo = &by_position["ceo"];
    assert_eq!((ceo["sample_size"].as_i64(), ceo["insufficient_data"].as_bool()), (Some(2), Some(true)), "{ceo}");
    assert_eq!(ceo["reply_rate_interval"], json!({"low": 0.0945, "high": 0.9055}), "Wilson 95% of 1/2");
}

both_backends!(
    rates_carry_their_interval_and_sample_and_small_groups_are_marked,
    pushes_feed_the_pushed_counter_and_the_rates,
    insights_count_each_lead_once_per_kind_and_group,
    concurrent_events_on_many_leads_count_exactly
);
