//! Learned lead scores end to end: outcomes arrive, a queued recomputation scores the
//! workspace's leads, and they are listed by score; the model's summary before and after.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Api, Backend, Server, eventually};

const WAIT: Duration = Duration::from_secs(60);

async fn lead(api: &Api, key: &str, id: &str) -> Value {
    let r = api.get(&format!("/api/v1/leads/{id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.data().clone()
}

/// 20 VP Sales at Acme and 20 junior accountants at Globex are pushed; 8 VPs and 1 junior
/// answer positively, 5 juniors bounce. The unpushed VP then scores above the unpushed
/// junior, with reasons; `sort=predicted_score` lists the VPs first, and `push-top` pushes
/// the best new lead first.
async fn outcomes_score_leads_that_then_list_and_push_by_score(backend: Backend) {
    // No debounce: the recomputation runs as soon as the first outcome is queued.
    let server = &Server::start_with(backend, &[("LEADPUSH_RESCORE_DEBOUNCE_SECS", "0")], false);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Scored", "webhook").await;
    let leads: Vec<Value> = (0..42)
        .map(|i| {
            let (position, company) = if i % 2 == 0 { ("VP Sales", "Acme") } else { ("Junior Accountant", "Globex") };
            json!({"name": format!("L{i}"), "position": position, "company": company, "campaign_id": campaign})
        })
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "scored", "leads": leads})).await;
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let (vps, juniors): (Vec<usize>, Vec<usize>) = (0..40).partition(|i| i % 2 == 0);

    let r = api.get("/api/v1/insights/model", &ws.api_key).await;
    assert_eq!((r.status, &r.data()["status"], &r.data()["updated_at"]), (200, &json!("no_model"), &Value::Null));
    assert!(r.data()["reason"].as_str().unwrap().contains("no outcomes yet"), "{}", r.text);
    assert!(lead(&api, &ws.api_key, &ids[40]).await["predicted_score"].is_null());

    let receiver = crate::harness::receiver::Receiver::start(crate::harness::receiver::Reply::ok()).await;
    let push = json!({"lead_ids": ids[..40], "destination": "webhook_url", "webhook_url": receiver.url});
    assert_eq!(api.post("/api/v1/leads/push", &ws.api_key, &push).await.data()["status"], "dispatched");
    eventually(WAIT, || async { lead(&api, &ws.api_key, &ids[39]).await["pushed_at"].is_string().then_some(()) })
        .await
        .expect("the push marks its leads");
    // Bounces first, positives last: a model with all 9 positives has seen every outcome, so
    // a recomputation after it fits the same model and rewrites no score.
    let outcomes = juniors[1..6]
        .iter()
        .map(|i| (*i, "bounce"))
        .chain([(juniors[0], "positive_reply")])
        .chain(vps[..8].iter().map(|i| (*i, "positive_reply")));
    for (i, event) in outcomes {
        let body = json!({"lead_id": ids[i], "event_type": event, "source": "webhook"});
        assert_eq!(api.post("/api/v1/feedback/events", &ws.api_key, &body).await.status, 200);
    }
    let model = eventually(WAIT, || async {
        let m = api.get("/api/v1/insights/model", &ws.api_key).await.data().clone();
        (m["status"] == "ready" && m["positive"] == 9).then_some(m)
    })
    .await
    .expect("the model is fitted on every outcome");
    assert_eq!((&model["status"], &model["positive"]), (&json!("ready"), &json!(9)), "{model}");
    assert_eq!((&model["exposed"], &model["leads_read"], &model["complete"]), (&json!(40), &json!(42), &json!(true)));
    assert!(model["updated_at"].is_string() && model["backtest"]["train_size"] == 32, "{model}");

    let (vp, junior) = (lead(&api, &ws.api_key, &ids[40]).await, lead(&api, &ws.api_key, &ids[41]).await);
    let (vp_score, junior_score) =
        (vp["predicted_score"].as_f64().unwrap(), junior["predicted_score"].as_f64().unwrap());
    assert!(vp_score > junior_score, "vp {vp}, junior {junior}");
    assert!(vp["score"].is_null(), "the sender's own score is untouched");
    let reasons = vp["score_reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["factor"] == "seniority" && r["group"] == "executive" && r["effect"].as_f64() > Some(0.0)),
        "{vp}"
    );

    // The weekly trend of each title: this week's 20 VPs, 8 of them replied (positively).
    let r = api.get("/api/v1/insights/trends?group_by=position", &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.data()["updated_at"].is_string() && r.data()["complete"] == true, "{}", r.text);
    let vp_trend = r.data()["groups"].as_array().unwrap().iter().find(|g| g["key"] == "vp sales").cloned();
    let vp_trend = vp_trend.unwrap_or_else(|| panic!("vp sales in the trends: {}", r.text));
    let week = &vp_trend["weeks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((&week["exposed"], &week["replied"], &week["positive"]), (&json!(20), &json!(8), &json!(8)), "{week}");
    assert_eq!((&week["reply_rate"], week["reply_rate_interval"]["low"].is_f64()), (&json!(0.4), true), "{week}");
    // By channel: all 40 went through the webhook_url push.
    let r = api.get("/api/v1/insights/trends?group_by=source", &ws.api_key).await;
    let channels: Vec<(&str, i64)> = r.data()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["exposed"].as_i64().unwrap()))
        .collect();
    assert_eq!(channels, [("webhook", 40)], "{}", r.text);
    assert_eq!(lead(&api, &ws.api_key, &ids[0]).await["pushed_via"], "webhook");
    let r = api.get("/api/v1/insights/trends?group_by=title", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("group_by")), "{}", r.text);

    // The campaign's leads by score: every VP before every junior, over several pages.
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let path = format!("/api/v1/leads?campaign_id={campaign}&sort=predicted_score&limit=15&cursor={cursor}");
        let r = api.get(&path, &ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        listed.extend(r.data().as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed.len(), 42);
    let scores: Vec<f64> = listed.iter().map(|l| l["predicted_score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(listed[..21].iter().all(|l| l["position"] == "VP Sales"), "the VPs first");

    // Push the campaign's best new lead: the unpushed VP, then (all VPs pushed) the junior.
    let top = |n: usize| json!({"top": n, "destination": "webhook_url", "webhook_url": receiver.url});
    let pushed_before = receiver.requests().len();
    let r = api.post(&format!("/api/v1/campaigns/{campaign}/push-top"), &ws.api_key, &top(1)).await;
    assert_eq!(
        (r.status, &r.data()["status"], &r.data()["lead_count"]),
        (200, &json!("dispatched"), &json!(1)),
        "{}",
        r.text
    );
    let sent = &receiver.requests()[pushed_before];
    let sent = String::from_utf8_lossy(&sent.body);
    assert!(sent.contains(&ids[40]) && !sent.contains(&ids[41]), "{sent}");
    eventually(WAIT, || async { lead(&api, &ws.api_key, &ids[40]).await["pushed_at"].is_string().then_some(()) })
        .await
        .expect("the push marks its lead");
    let r = api.post(&format!("/api/v1/campaigns/{campaign}/push-top"), &ws.api_key, &top(5)).await;
    assert_eq!((r.status, &r.data()["lead_count"]), (200, &json!(1)), "only one new lead is left: {}", r.text);
    let sent = String::from_utf8_lossy(&receiver.requests().last().unwrap().body).into_owned();
    assert!(sent.contains(&ids[41]), "{sent}");
    let other = api.campaign(&ws.api_key, "Unscored", "webhook").await;
    let r = api.post(&format!("/api/v1/campaigns/{other}/push-top"), &ws.api_key, &top(5)).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("top")), "{}", r.text);
    let r = api.post("/api/v1/campaigns/cmp_nope/push-top", &ws.api_key, &top(5)).await;
    assert_eq!(r.status, 404);

    // Newest first stays the default; unknown orders and foreign cursors are refused.
    let r = api.get("/api/v1/leads?sort=score", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("sort")));
    let newest = api.get(&format!("/api/v1/leads?campaign_id={campaign}&limit=15"), &ws.api_key).await;
    let foreign = newest.body["next_cursor"].as_str().unwrap();
    let r = api
        .get(&format!("/api/v1/leads?campaign_id={campaign}&sort=predicted_score&cursor={foreign}"), &ws.api_key)
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("cursor")));
}

both_backends!(outcomes_score_leads_that_then_list_and_push_by_score);
