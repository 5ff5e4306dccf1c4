//! The OpenAPI document against the server: schemathesis (pinned in `.venv` by the
//! Makefile) runs every check, stateful links included, on every operation that
//! `/openapi.json` lists, so routes added later are covered without touching this file.
//! The seeded workspace below (the only place it is built) gives the run real leads,
//! events, webhooks, deliveries, callbacks and pushes, so responses are checked with data.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::receiver::{Receiver, Reply};
use crate::harness::{Backend, Server, eventually};

const SCHEMATHESIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/schemathesis");
/// The allowances for values no schema can describe (opaque cursors, rules across fields).
const HOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/blackbox/conformance_hooks.py");

/// Ids of the seeded data, handed to schemathesis for the path parameters they fill.
struct Seeded {
    api_key: String,
    token: String,
    lead: String,
    webhook: String,
    delivery: String,
    push: String,
}

async fn seed(server: &Server, receiver: &Receiver) -> Seeded {
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Conformance", "webhook").await;
    api.campaign(&ws.api_key, "Manual", "manual").await;
    assert_eq!(api.act(&format!("/api/v1/campaigns/{campaign}/activate"), &ws.api_key).await.status, 200);
    let r = api.post("/api/v1/webhooks", &ws.api_key, &json!({"name": "sink", "url": receiver.url})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let webhook = r.data()["id"].as_str().unwrap().to_owned();
    let leads: Vec<Value> = (0..5)
        .map(|i| {
            json!({"name": format!("Ada {i}"), "email": format!("ada{i}@example.com"), "campaign_id": campaign,
                   "linkedin": format!("linkedin.com/in/ada-{i}"), "position": "CTO", "company": "Acme",
                   "signal_type": "hiring", "score": i})
        })
        .collect();
    let r = api.ingest(&token, &json!({"idempotency_key": "conformance", "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ids: Vec<String> =
        r.data()["lead_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    for (i, event) in ["reply", "meeting_booked", "open"].iter().enumerate() {
        let body = json!({"lead_id": ids[i], "event_type": event, "content": "Sounds good",
                          "meeting_url": "https://meet.example/abc"});
        let r = api.post(&format!("/api/v1/feedback/events?webhook_url={}/cb", receiver.url), &ws.api_key, &body).await;
        assert!(r.status == 200 || r.status == 201, "{}", r.text);
    }
    let push = json!({"lead_ids": [ids[0], ids[1]], "destination": "webhook_url", "webhook_url": receiver.url});
    let r = api.post("/api/v1/leads/push", &ws.api_key, &push).await;
    assert!(r.status < 300, "{}", r.text);
    let push = r.data()["push_id"].as_str().or_else(|| r.data()["id"].as_str()).expect("push id").to_owned();
    let deliveries = format!("/api/v1/webhooks/{webhook}/deliveries");
    let delivery = eventually(Duration::from_secs(30), || async {
        let r = api.get(&deliveries, &ws.api_key).await;
        r.data().as_array().and_then(|d| d.first()).and_then(|d| d["id"].as_str()).map(str::to_owned)
    })
    .await
    .expect("a save_lead delivery");
    Seeded { api_key: ws.api_key, token, lead: ids[0].clone(), webhook, delivery, push }
}

/// Path parameters per path prefix; anything not listed is generated or follows a link.
/// Campaigns and webhooks can be deleted (a DELETE may follow a link from a listing to the
/// seeded one), so only ids nothing deletes are pinned: a pinned id overrides the id a
/// stateful link carries, and a deleted one would fail its "created resource" check.
fn config(s: &Seeded) -> String {
    let op = |regex: &str, params: &[(&str, &str)]| {
        let params: Vec<String> = params.iter().map(|(k, v)| format!("\"{k}\" = \"{v}\"")).collect();
        format!(
            "[[operations]]\ninclude-path-regex = \"{regex}\"\nexclude-method = \"DELETE\"\nparameters = {{ {} }}\n\n",
            params.join(", ")
        )
    };
    [
        op("^/api/v1/leads/\\\\{", &[("id", &s.lead)]),
        op("^/api/v1/webhooks/.*delivery_id", &[("id", &s.webhook), ("delivery_id", &s.delivery)]),
        op("^/api/v1/pushes/", &[("push_id", &s.push)]),
        // Lookups that wait for their result: the shortest wait keeps the run's budget.
        op(
            "^/(api/v1|v2)/(email-verifier|email-finder|domain-search|author-finder|phone-finder)$",
            &[("max_duration", "3")],
        ),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_server_under_schemathesis() {
    assert!(
        std::path::Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run `make test`, which installs the pinned schemathesis"
    );
    let receiver = Receiver::start(Reply::ok()).await;
    // Lookups finish fast here (nothing outside loopback answers), so they answer 200
    // within any `max_duration` and their answers are checked too.
    let fast = [
        ("LEADPUSH_OUTBOUND_TIMEOUT_MS", "1000"),
        ("LEADPUSH_DNS_TIMEOUT_MS", "200"),
        ("LEADPUSH_SMTP_TIMEOUT_MS", "200"),
    ];
    let server = Server::start_with(Backend::Embedded, &fast, false);
    let seeded = seed(&server, &receiver).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&seeded)).unwrap();
    let output = tokio::task::spawn_blocking({
        let (base, dir) = (server.base.clone(), dir.path().to_owned());
        let (key, token) = (seeded.api_key.clone(), seeded.token.clone());
        move || {
            std::process::Command::new(SCHEMATHESIS)
                .current_dir(&dir)
                .env("HYPOTHESIS_STORAGE_DIRECTORY", dir.join("hypothesis"))
                .env("SCHEMATHESIS_HOOKS", HOOKS)
                .args(["--config-file", config_path.to_str().unwrap(), "run", &format!("{base}/openapi.json")])
                // Response times are measured in `make bench`, never asserted in tests: the
                // limit is above the request timeout, so only a hung request fails.
                .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection"])
                .args(["--max-response-time", "60"])
                // A fixed seed and a time budget: how many cases fit depends on the machine.
                .args(["--seed", "20261129", "--max-examples", "10", "--max-time", "45"])
                // To reproduce one failure: e.g. LEADPUSH_SCHEMATHESIS_ARGS="--include-path /api/v1/leads".
                .args(std::env::var("LEADPUSH_SCHEMATHESIS_ARGS").unwrap_or_default().split_whitespace())
                .args(["--workers", "1", "--no-color", "--generation-database", "none", "--request-timeout", "30"])
                .args(["-H", &format!("X-Satellyte-API-Key: {key}"), "-H", &format!("Authorization: Bearer {token}")])
                .output()
                .expect("run schemathesis")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("Tested:"), "schemathesis ran no operations:\n{text}");
    // The summary (phases, operations, test cases) for anyone running with --nocapture.
    println!("{text}");
}
