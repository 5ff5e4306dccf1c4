//! The OpenAPI document against the server: schemathesis (pinned in `.venv` by the
//! Makefile) runs every check, stateful links included, on every operation that
//! `/openapi.json` lists, so routes added later are covered without touching this file.
//! The seeded workspace below (the only place it is built) gives the run real leads,
//! events, webhooks, deliveries, callbacks and pushes, so responses are checked with data.
//!
//! Two depths. `make test` runs a seeded, derandomised subset on both stores and asserts
//! that it tested every operation the document lists (counted from the document) and
//! found nothing. `make conformance` runs the long one (ignored here): at least 50,000
//! cases on the embedded store, every phase, 0 failures.
//!
//! The finders look names up in DNS, probe mail servers and crawl sites. Here they use the
//! local DNS and SMTP fakes (`harness::mail`), which answer at once (every name outside
//! their `.test` zones is NXDOMAIN), so a lookup answers within any `max_duration` and its
//! 200 answer is checked too; the system resolver of a machine without DNS would make each
//! lookup wait for its timeouts and answer 202 after `max_duration` (10 s by default, as
//! Hunter's).

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::{Auth, Backend, Server, eventually, mail};

const SCHEMATHESIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/schemathesis");
/// The allowances for values no schema can describe (rules across fields, stored state).
const HOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/blackbox/conformance_hooks.py");
/// One seed for both depths: a failure reproduces with the same command.
const SEED: &str = "20261129";

/// How deep a run goes.
struct Depth {
    /// Schemathesis phases (`examples` is skipped: the document has no examples).
    phases: &'static str,
    /// Cases per operation and phase (`--max-examples`).
    examples: u32,
    /// `--generation-deterministic`: the same cases on every run.
    derandomize: bool,
    /// The run fails when it generated fewer cases than this.
    min_cases: u64,
}

/// `make test` on the embedded store: every phase, a few cases per operation, the same
/// every run.
const SUBSET: Depth =
    Depth { phases: "examples,coverage,fuzzing,stateful", examples: 5, derandomize: true, min_cases: 0 };
/// `make test` on DynamoDB (moto): the same without the coverage phase. That phase's
/// boundary cases (about 2,500, fixed by the document) check the document against the
/// validation, which no store takes part in; at moto's pace they alone take about ten
/// minutes. Fuzzing and stateful sequences reach every operation with stored data.
const SUBSET_DYNAMODB: Depth = Depth { phases: "examples,fuzzing,stateful", examples: 10, ..SUBSET };
/// `make conformance`: the long run (`--max-examples` is per operation and phase; some
/// operations have fewer distinct inputs, so the case count is asserted on its own).
const LONG: Depth =
    Depth { phases: "examples,coverage,fuzzing,stateful", examples: 1000, derandomize: false, min_cases: 50_000 };

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
    // Limits far above the run's pace, so that metered routes answer with their logic
    // rather than 429 (documented, and tested in metering.rs).
    let mut changes: Vec<String> = Vec::new();
    for work in ["verification", "search", "api_request_test", "push"] {
        changes.extend([format!("{work}.per_second=100000"), format!("{work}.per_minute=1000000")]);
    }
    changes.extend(
        ["verification.per_month=100000000", "search.per_month=100000000", "max_queued_bulk_addresses=100000000"]
            .map(String::from),
    );
    let mut limits = vec!["admin", "workspace", "limits", "--workspace", ws.id.as_str()];
    for change in &changes {
        limits.extend(["--set", change.as_str()]);
    }
    server.admin(&limits);
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
    ]
    .concat()
}

/// Operations the document lists (every method of every path).
fn documented_operations(doc: &Value) -> usize {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths.values().map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count()).sum()
}

/// Runs schemathesis at `depth` against a seeded `leadpush serve` on `backend` and checks
/// its JSON report: every documented operation tested, every phase run, no failure.
async fn conformance(backend: Backend, depth: Depth) {
    assert!(
        std::path::Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run `make test`, which installs the pinned schemathesis"
    );
    let receiver = Receiver::start(Reply::ok()).await;
    let fakes = mail::fakes().env();
    let mut env: Vec<(&str, &str)> = fakes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        // Lookups answer at once (see the module's note); quiet, as the other servers are.
        ("LEADPUSH_DNS_TIMEOUT_MS", "1000"),
        ("LEADPUSH_SMTP_TIMEOUT_MS", "1000"),
        ("LEADPUSH_OUTBOUND_TIMEOUT_MS", "2000"),
        ("LEADPUSH_CRAWL_BUDGET_MS", "2000"),
        ("LEADPUSH_LOG", "warn"),
    ]);
    let server = Server::start_with(backend, &env, false);
    let seeded = seed(&server, &receiver).await;
    let doc = server.api().send("GET", "/openapi.json", Auth::None, None).await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    let operations = documented_operations(&doc.body);
    let dir = tempfile::tempdir().unwrap();
    // From a file, not the URL: loaded from a URL, schemathesis leaves out the operation
    // that serves the document itself.
    let document = dir.path().join("openapi.json");
    std::fs::write(&document, &doc.text).unwrap();
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&seeded)).unwrap();
    // The report stays where LEADPUSH_SCHEMATHESIS_REPORT says (`make conformance` keeps it).
    let report = std::env::var_os("LEADPUSH_SCHEMATHESIS_REPORT")
        .map_or_else(|| dir.path().join("report.json"), std::path::PathBuf::from);
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking({
        let (base, dir, report) = (server.base.clone(), dir.path().to_owned(), report.clone());
        let (key, token) = (seeded.api_key.clone(), seeded.token.clone());
        move || {
            let mut command = std::process::Command::new(SCHEMATHESIS);
            command
                .current_dir(&dir)
                .env("HYPOTHESIS_STORAGE_DIRECTORY", dir.join("hypothesis"))
                .env("SCHEMATHESIS_HOOKS", HOOKS)
                .args(["--config-file", config_path.to_str().unwrap(), "run", document.to_str().unwrap()])
                .args(["--url", &base, "--phases", depth.phases])
                // `all`, with the two data checks replaced by the hooks' versions.
                .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection"])
                // Response times are measured in `make bench`, never asserted in tests: the
                // limit is above the request timeout, so only a hung request fails.
                .args(["--max-response-time", "60", "--request-timeout", "30"])
                .args(["--seed", SEED, "--max-examples", &depth.examples.to_string()])
                .args(["--workers", "1", "--no-color"])
                .args(["--report", "json", "--report-json-path", report.to_str().unwrap()])
                .args(["-H", &format!("X-Satellyte-API-Key: {key}"), "-H", &format!("Authorization: Bearer {token}")]);
            // Deterministic generation keeps no example database; a random one keeps none either.
            command.args(if depth.derandomize {
                ["--generation-deterministic"].as_slice()
            } else {
                ["--generation-database", "none"].as_slice()
            });
            // To reproduce one failure: e.g. LEADPUSH_SCHEMATHESIS_ARGS="--include-path /api/v1/leads".
            command.args(std::env::var("LEADPUSH_SCHEMATHESIS_ARGS").unwrap_or_default().split_whitespace());
            command.output().expect("run schemathesis")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = std::fs::read(&report)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("schemathesis wrote no report:\n{text}\n{stderr}"));
    assert!(output.status.success(), "schemathesis found failures:\n{text}\n{stderr}");
    assert_eq!(report["failures"], json!([]), "{text}");
    assert_eq!(report["errors"], json!([]), "{text}");
    let counts = &report["operations"];
    let tested = [&counts["total"], &counts["selected"], &counts["tested"], &counts["errored"], &counts["skipped"]];
    assert_eq!(
        tested.map(|n| n.as_u64()),
        [operations, operations, operations, 0, 0].map(|n| Some(n as u64)),
        "schemathesis did not test each of the {operations} operations the document lists once (total, \
         selected, tested, errored, skipped):\n{text}"
    );
    for phase in depth.phases.split(',').filter(|p| *p != "examples") {
        assert_eq!(report["phases"][phase]["status"], "success", "the {phase} phase:\n{text}");
    }
    let cases = report["test_cases"]["generated"].as_u64().unwrap_or(0);
    assert!(cases >= depth.min_cases, "{cases} cases, fewer than {}:\n{text}", depth.min_cases);
    // The summary (phases, operations, cases, time) for anyone running with --nocapture.
    println!("{text}\n{backend:?}: {operations} operations, {cases} cases in {:.0?}", started.elapsed());
}

async fn the_openapi_document_holds_for_every_operation_in_a_seeded_subset(backend: Backend) {
    conformance(backend, if backend == Backend::Aws { SUBSET_DYNAMODB } else { SUBSET }).await;
}

both_backends!(the_openapi_document_holds_for_every_operation_in_a_seeded_subset);

/// `make conformance`: the long run, on the embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the long run (10-30 minutes): `make conformance`"]
async fn the_openapi_document_holds_for_50_000_cases_on_the_embedded_store() {
    conformance(Backend::Embedded, LONG).await;
}
