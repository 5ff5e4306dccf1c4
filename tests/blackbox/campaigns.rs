//! Campaigns: lifecycle, validation, isolation, pagination and webhook setup (the
//! webhook-campaign setup guide).

use serde_json::json;

use crate::both_backends;
use crate::harness::{Backend, shared};

async fn campaigns_move_from_draft_to_active_to_paused(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let r = api
        .post(
            "/api/v1/campaigns",
            &ws.api_key,
            &json!({"name": " Q3 ", "type": "standard", "lead_source": "webhook", "description": "d"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = r.data().clone();
    assert_eq!(
        (c["name"].as_str(), c["status"].as_str(), c["type"].as_str()),
        (Some("Q3"), Some("draft"), Some("standard"))
    );
    assert_eq!(c["lead_count"], 0);
    assert!(c["id"].as_str().unwrap().starts_with("cmp_"));
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/v1/campaigns/{id}");

    let r = api
        .send(
            "PATCH",
            &path,
            crate::harness::Auth::Key(&ws.api_key),
            Some(&json!({"name": "Q4", "description": null, "lead_source": "manual"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.data()["name"].as_str(), r.data()["description"].is_null(), r.data()["lead_source"].as_str()),
        (Some("Q4"), true, Some("manual"))
    );

    let r = api.act(&format!("{path}/pause"), &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (409, "invalid_status_transition"));
    let r = api.act(&format!("{path}/activate"), &ws.api_key).await;
    assert_eq!((r.status, r.data()["status"].as_str()), (200, Some("active")));
    assert!(r.data()["activated_at"].is_string());
    let r = api.act(&format!("{path}/activate"), &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (409, "invalid_status_transition"));
    let r = api
        .send("PATCH", &path, crate::harness::Auth::Key(&ws.api_key), Some(&json!({"lead_source": "webhook"})))
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("lead_source")));
    let r = api.act(&format!("{path}/pause"), &ws.api_key).await;
    assert_eq!((r.status, r.data()["status"].as_str()), (200, Some("paused")));

    let r = api.get(&path, &ws.api_key).await;
    assert_eq!((r.status, r.data()["status"].as_str()), (200, Some("paused")));
    let r = api.send("DELETE", &path, crate::harness::Auth::Key(&ws.api_key), None).await;
    assert_eq!((r.status, r.data()["deleted"].as_bool()), (200, Some(true)));
    let r = api.get(&path, &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (404, "campaign_not_found"));
    let r = api.send("DELETE", &path, crate::harness::Auth::Key(&ws.api_key), None).await;
    assert_eq!(r.status, 404);
}

async fn another_workspaces_campaign_is_not_found(backend: Backend) {
    let server = shared(backend);
    let (api, mine, theirs) = (server.api(), server.workspace(), server.workspace());
    let id = api.campaign(&theirs.api_key, "Theirs", "webhook").await;
    for path in [
        format!("/api/v1/campaigns/{id}"),
        format!("/api/v1/campaigns/{id}/webhook-setup"),
        format!("/api/v1/campaigns/{id}/leads"),
    ] {
        let r = api.get(&path, &mine.api_key).await;
        assert_eq!((r.status, r.error_code()), (404, "campaign_not_found"), "{path}");
    }
    let r = api.act(&format!("/api/v1/campaigns/{id}/activate"), &mine.api_key).await;
    assert_eq!(r.status, 404);
    let r = api.get("/api/v1/campaigns", &mine.api_key).await;
    assert_eq!(r.data().as_array().unwrap().len(), 0);
}

async fn campaign_lists_page_with_cursors_newest_first(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(api.campaign(&ws.api_key, &format!("c{i}"), "manual").await);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/campaigns?limit=2".to_owned();
    for _ in 0..10 {
        let r = api.get(&path, &ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        seen.extend(r.data().as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/campaigns?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

async fn webhook_setup_shows_the_csm_message_until_a_token_exists(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    let id = api.campaign(&ws.api_key, "Inbound", "webhook").await;
    let setup = format!("/api/v1/campaigns/{id}/webhook-setup");
    let r = api.get(&setup, &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (409, "webhook_token_missing"));
    assert_eq!(r.body["error"]["message"], "Your organization doesn't have a webhook API key — contact CSM.");

    let token = server.webhook_token(&ws);
    let r = api.get(&setup, &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.data();
    let masked = d["token"]["masked"].as_str().unwrap();
    assert!(masked.ends_with(&token[token.len() - 4..]) && masked.contains("****"), "{masked}");
    assert!(!r.text.contains(&token), "the token itself is never shown again");
    assert!(d["ingest_url"].as_str().unwrap().ends_with("/api/v1/webhook/leads"));
    assert_eq!(d["example_body"]["leads"][0]["campaign_id"], id.as_str());
    let curl = d["example_curl"].as_str().unwrap();
    assert!(curl.contains(&id) && curl.contains("Authorization: Bearer") && curl.contains("idempotency_key"), "{curl}");

    let r = api.get(&format!("{setup}?reveal=true"), &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (400, "secret_not_retrievable"));

    let manual = api.campaign(&ws.api_key, "Manual", "manual").await;
    let r = api.get(&format!("/api/v1/campaigns/{manual}/webhook-setup"), &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (409, "not_a_webhook_campaign"));
}

both_backends!(
    campaigns_move_from_draft_to_active_to_paused,
    another_workspaces_campaign_is_not_found,
    campaign_lists_page_with_cursors_newest_first,
    webhook_setup_shows_the_csm_message_until_a_token_exists,
);

#[tokio::test]
async fn campaign_input_is_validated_field_by_field() {
    let server = shared(Backend::Embedded);
    let (api, ws) = (server.api(), server.workspace());
    for (body, field) in [
        (json!({"name": "  ", "lead_source": "webhook"}), "name"),
        (json!({"name": "x".repeat(201), "lead_source": "webhook"}), "name"),
        (json!({"lead_source": "webhook"}), "name"),
        (json!({"name": "x"}), "lead_source"),
        (json!({"name": "x", "lead_source": "webhook", "type": "abm"}), "type"),
    ] {
        let r = api.post("/api/v1/campaigns", &ws.api_key, &body).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{body}: {}", r.text);
    }
}
