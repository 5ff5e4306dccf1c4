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

/// Every kind of secret, given through the API, is sealed in the embedded store's files (a
/// backup or a copied disk reveals none), the key file is private, and after a restart the
/// secrets still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_given_through_the_api_are_never_readable_in_the_data_files() {
    let server = crate::harness::Server::start(Backend::Embedded);
    let (api, ws) = (server.api(), server.workspace());
    let header_token = "Bearer at-rest-header-token-4c2e";
    let request_token = "Bearer at-rest-request-token-9d1f";
    let r = put(&api, &ws.api_key, "heyreach", &json!({"api_key": HEYREACH_SECRET, "list_id": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = json!({"name": "Sealed", "url": "https://hooks.example.com/sealed", "headers": {"Authorization": header_token}});
    let r = api.post("/api/v1/webhooks", &ws.api_key, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let signing = r.data()["secret"].as_str().expect("the secret, shown once").to_owned();
    let body = json!({"name": "Sealed", "method": "GET", "url": "https://api.example.com/x", "headers": {"Authorization": request_token}});
    let r = api.post("/api/v1/api-requests", &ws.api_key, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // A graceful stop moves the WAL into the database file; read every file as it is.
    let server = server.restart();
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !path.ends_with("server.log") {
            raw.extend(std::fs::read(&path).unwrap());
        }
    }
    for secret in [HEYREACH_SECRET, signing.as_str(), header_token, request_token] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is readable in the data files");
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir().join("secrets.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    }
    // Opened again after the restart: the mask is the key's last four characters.
    let api = server.api();
    let list = api.get("/api/v1/integrations", &ws.api_key).await;
    assert_eq!(list.data()[0]["api_key_masked"], json!("****ABCD"), "{}", list.text);
}
