//! Reading leads: detail, filters, pagination and workspace isolation.

use serde_json::json;

use crate::both_backends;
use crate::harness::{Backend, shared};

async fn leads_list_filters_by_campaign_and_status_and_pages(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let a = api.campaign(&ws.api_key, "A", "webhook").await;
    let b = api.campaign(&ws.api_key, "B", "webhook").await;
    let mut leads: Vec<_> = (0..5).map(|i| json!({"name": format!("a{i}"), "campaign_id": a})).collect();
    leads.extend((0..2).map(|i| json!({"name": format!("b{i}"), "campaign_id": b})));
    let r = api.ingest(&token, &json!({"idempotency_key": "list", "leads": leads})).await;
    assert_eq!(r.status, 202);

    let all = api.get("/api/v1/leads", &ws.api_key).await;
    let names: Vec<&str> = all.data().as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b1", "b0", "a4", "a3", "a2", "a1", "a0"], "newest first");
    let r = api.get(&format!("/api/v1/leads?campaign_id={b}"), &ws.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    let r = api.get("/api/v1/leads?status=new", &ws.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 7);
    let r = api.get(&format!("/api/v1/leads?status=replied&campaign_id={a}"), &ws.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 0);
    let r = api.get("/api/v1/leads?status=bogus", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("status")));
    assert!(r.text.contains("meeting_booked"));

    let mut seen = Vec::new();
    let mut path = "/api/v1/leads?limit=3".to_owned();
    for _ in 0..10 {
        let r = api.get(&path, &ws.api_key).await;
        seen.extend(r.data().as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/leads?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    seen.dedup();
    assert_eq!(seen.len(), 7);
}

async fn another_workspaces_lead_is_not_found(backend: Backend) {
    let server = shared(backend);
    let (api, mine, theirs) = (server.api(), server.workspace(), server.workspace());
    let token = server.webhook_token(&theirs);
    let campaign = api.campaign(&theirs.api_key, "Theirs", "webhook").await;
    let r = api
        .ingest(&token, &json!({"idempotency_key": "x", "leads": [{"name": "Secret", "campaign_id": campaign}]}))
        .await;
    let id = r.data()["lead_ids"][0].as_str().unwrap().to_owned();
    let r = api.get(&format!("/api/v1/leads/{id}"), &mine.api_key).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error": {"code": "lead_not_found", "message": "Lead not found for this Public API workspace."}})
    );
    assert_eq!(api.get(&format!("/api/v1/leads/{id}"), &theirs.api_key).await.status, 200);
    let r = api.get(&format!("/api/v1/leads?campaign_id={campaign}"), &mine.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 0);
}

both_backends!(leads_list_filters_by_campaign_and_status_and_pages, another_workspaces_lead_is_not_found);
