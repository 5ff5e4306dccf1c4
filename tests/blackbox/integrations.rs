//! Provider integrations: configure, validate, list (keys masked), replace and remove.

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Api, Auth, Backend, Resp, shared};

const HEYREACH_SECRET: &str = "hr-secret-key-0123456789-ABCD";
const INSTANTLY_SECRET: &str = "in-secret-key-9876543210-WXYZ";

async fn put(api: &Api, key: &str, provider: &str, body: &Value) -> Resp {
    api.send("PUT", &format!("/api/v1/integrations/{provider}"), Auth::Key(key), Some(body)).await
}

fn without_times(mut data: Value) -> Value {
    let object = data.as_object_mut().unwrap();
    assert!(object.remove("created_at").is_some_and(|t| t.is_string()) && object.remove("updated_at").is_some());
    // Provider webhook activity has its own tests (feedback.rs); here it must just be there.
    assert!(object.remove("webhook_activity").is_some_and(|a| a["received"].is_i64()));
    data
}

async fn integrations_are_validated_listed_masked_and_removed(backend: Backend) {
    let server = shared(backend);
    let (api, ws, other) = (server.api(), server.workspace(), server.workspace());
    let list = api.get("/api/v1/integrations", &ws.api_key).await;
    assert_eq!(list.body, json!({"data": [], "next_cursor": null}));

    let r = put(&api, &ws.api_key, "heyreach", &json!({"api_key": HEYREACH_SECRET, "list_id": 614694})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        without_times(r.data().clone()),
        json!({"provider": "heyreach", "api_key_masked": "****ABCD", "list_id": 614694})
    );
    let created_at = r.data()["created_at"].clone();
    let body = json!({"api_key": INSTANTLY_SECRET, "campaign_id": "0195E2A4-6F1C-7B1E-9C55-3F2A8D1E4B7A"});
    let r = put(&api, &ws.api_key, "instantly", &body).await;
    assert_eq!(
        without_times(r.data().clone()),
        json!({"provider": "instantly", "api_key_masked": "****WXYZ", "campaign_id": "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a"})
    );

    let list = api.get("/api/v1/integrations", &ws.api_key).await;
    let providers: Vec<&str> =
        list.data().as_array().unwrap().iter().map(|i| i["provider"].as_str().unwrap()).collect();
    assert_eq!(providers, ["heyreach", "instantly"]);
    assert!(!list.text.contains("secret-key"), "keys are only ever shown masked: {}", list.text);
    assert_eq!(api.get("/api/v1/integrations", &other.api_key).await.data(), &json!([]), "per workspace");

    // Replacing keeps the creation time and shows the new key's mask.
    let r = put(&api, &ws.api_key, "heyreach", &json!({"api_key": "hr-rotated-key-0000-EFGH", "list_id": 42})).await;
    assert_eq!(
        (&r.data()["api_key_masked"], &r.data()["list_id"], &r.data()["created_at"]),
        (&json!("****EFGH"), &json!(42), &created_at)
    );

    let invalid: Vec<(&str, Value, &str)> = vec![
        ("heyreach", json!({"api_key": "k"}), "list_id"),
        ("heyreach", json!({"api_key": "k", "list_id": "614694"}), "list_id"),
        ("heyreach", json!({"api_key": "k", "list_id": 1.5}), "list_id"),
        ("heyreach", json!({"list_id": 1}), "api_key"),
        ("heyreach", json!({"api_key": "  ", "list_id": 1}), "api_key"),
        ("heyreach", json!({"api_key": "two words", "list_id": 1}), "api_key"),
        ("instantly", json!({"api_key": "k", "campaign_id": "campaign-1"}), "campaign_id"),
        ("instantly", json!({"api_key": "k", "campaign_id": 12}), "campaign_id"),
        ("instantly", json!({"api_key": "k", "list_id": 5}), "campaign_id"),
        ("salesforce", json!({"api_key": "k"}), "provider"),
    ];
    for (provider, body, field) in &invalid {
        let r = put(&api, &ws.api_key, provider, body).await;
        assert_eq!((r.status, r.error_code()), (400, "validation_error"), "{provider} {body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], *field, "{}", r.text);
    }
    let r = api.raw("PUT", "/api/v1/integrations/heyreach", Auth::Key(&ws.api_key), &[], Some(b"{}".to_vec())).await;
    assert_eq!((r.status, r.error_code()), (415, "unsupported_media_type"));
    let r = api.send("GET", "/api/v1/integrations", Auth::None, None).await;
    assert_eq!(r.status, 401);

    let r = api.send("DELETE", "/api/v1/integrations/heyreach", Auth::Key(&ws.api_key), None).await;
    assert_eq!((r.status, r.data()), (200, &json!({"provider": "heyreach", "deleted": true})));
    let r = api.send("DELETE", "/api/v1/integrations/heyreach", Auth::Key(&ws.api_key), None).await;
    assert_eq!((r.status, r.error_code()), (404, "integration_not_found"));
    let r = api.send("DELETE", "/api/v1/integrations/instantly", Auth::Key(&other.api_key), None).await;
    assert_eq!(r.status, 404, "another workspace cannot remove it");
    let list = api.get("/api/v1/integrations", &ws.api_key).await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);
    // Once removed, pushing there asks for configuration again.
    let r =
        api.post("/api/v1/leads/push", &ws.api_key, &json!({"lead_ids": ["req_1"], "destination": "heyreach"})).await;
    assert_eq!((r.status, r.error_code()), (400, "integration_not_configured"));
}

both_backends!(integrations_are_validated_listed_masked_and_removed);
