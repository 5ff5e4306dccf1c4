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

/// 70 leads of 62 KB are 4.3 MB: one page of `limit=100` would not fit through Lambda, so
/// the page ends at 4 MiB with a cursor. The byte cap lives in the repository layer, the
/// same on both stores (its unit test runs on both); one backend shows it end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_large_leads_ends_early_within_four_mib() {
    let server = shared(Backend::Embedded);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Big", "webhook").await;
    for batch in 0..2 {
        let leads: Vec<_> = (0..35)
            .map(|i| json!({"name": format!("l{batch}-{i}"), "campaign_id": campaign, "blob": "x".repeat(62_000)}))
            .collect();
        let r = api.ingest(&token, &json!({"idempotency_key": format!("big-{batch}"), "leads": leads})).await;
        assert_eq!(r.status, 202, "{}", &r.text[..r.text.len().min(300)]);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/leads?limit=100".to_owned();
    for page in 0..5 {
        let r = api.get(&path, &ws.api_key).await;
        assert_eq!(r.status, 200);
        assert!(r.text.len() <= 4 * 1024 * 1024 + 64 * 1024, "page {page} is {} bytes", r.text.len());
        let data = r.data().as_array().unwrap();
        seen.extend(data.iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert!(data.len() < 70 && !data.is_empty(), "a short page: {}", data.len());
                path = format!("/api/v1/leads?limit=100&cursor={c}");
            }
            None => break,
        }
    }
    assert!(seen.len() == 70, "{} leads", seen.len());
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 70, "each lead once");
}

both_backends!(leads_list_filters_by_campaign_and_status_and_pages, another_workspaces_lead_is_not_found);
