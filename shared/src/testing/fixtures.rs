//! Test fixtures: a temporary embedded database, and AWS clients pointed at the moto server
//! that `make test` starts (its URL arrives in `LEADPUSH_TEST_MOTO_URL`).

use std::sync::Arc;

use aws_types::SdkConfig;

use crate::store::Store;
use crate::store::dynamodb::DynamoStore;

pub const MOTO_ENV: &str = "LEADPUSH_TEST_MOTO_URL";

/// A name no other test uses, for tables and queues on the shared moto server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn moto_config() -> SdkConfig {
    let url = std::env::var(MOTO_ENV).unwrap_or_else(|_| {
        panic!("{MOTO_ENV} is not set: run the suite with `make test`, which starts a moto server and sets it")
    });
    // The Lambda path: an environment of region, credentials and endpoint.
    crate::aws::sdk_config_from(|name| match name {
        "AWS_ENDPOINT_URL" => Some(url.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
        _ => None,
    })
    .expect("moto SDK config")
}

/// A fresh table on moto.
pub async fn dynamo_store() -> Arc<dyn Store> {
    let config = moto_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("contract");
    crate::aws::ensure_table(&client, &table).await.expect("create table on moto");
    Arc::new(DynamoStore::new(client, table))
}

/// A fresh embedded database; keep the directory alive as long as the store.
#[cfg(feature = "embedded")]
pub fn embedded_db() -> (crate::store::sqlite::EmbeddedDb, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = crate::store::sqlite::EmbeddedDb::open(dir.path()).expect("open embedded db");
    (db, dir)
}

/// An application context on a fresh embedded store (no network configured).
#[cfg(feature = "embedded")]
pub fn embedded_context() -> (crate::context::AppContext, tempfile::TempDir) {
    embedded_context_with(&[])
}

/// [`embedded_context`] with `extra` settings (variable, value) on top.
#[cfg(feature = "embedded")]
pub fn embedded_context_with(extra: &[(String, String)]) -> (crate::context::AppContext, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();
    let config = crate::config::Config::from_lookup(|name| match name {
        "LEADPUSH_DATA_DIR" => Some(data_dir.clone()),
        "LEADPUSH_ALLOW_PRIVATE_TARGETS" => Some("1".into()),
        _ => extra.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    })
    .expect("test config");
    // Its own thread and runtime, so that sync and async tests alike can call this.
    let ctx = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(crate::context::AppContext::from_config(config))
            })
            .join()
            .expect("embedded context thread")
    })
    .expect("embedded context");
    (ctx, dir)
}

/// [`embedded_context`] with its store on a fresh moto table (the queue stays embedded):
/// runs a store-level test against DynamoDB's semantics.
#[cfg(feature = "embedded")]
pub async fn dynamo_context() -> (crate::context::AppContext, tempfile::TempDir) {
    let (mut ctx, dir) = embedded_context();
    ctx.store = dynamo_store().await;
    (ctx, dir)
}

/// Receives every visible message of `ctx`'s queue (removing it) and returns the tasks:
/// lets a test run the dispatcher's work step by step.
pub async fn drain_tasks(ctx: &crate::context::AppContext) -> Vec<crate::queue::Task> {
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let batch = ctx.queue.receive(10, std::time::Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            ctx.queue.delete(&message.receipt).await.unwrap();
            tasks.push(serde_json::from_str(&message.body).unwrap());
        }
    }
    tasks
}

/// An enabled endpoint subscribed to `save_lead`, not stored.
pub fn save_lead_webhook(
    name: &str,
    url: &str,
    now: crate::support::time::Timestamp,
) -> crate::domain::webhook::Webhook {
    use crate::domain::webhook::{EventType, SigningSecret, Webhook, WebhookMethod};
    Webhook {
        id: crate::support::ids::new_id("wh"),
        name: name.into(),
        url: url.into(),
        method: WebhookMethod::Post,
        headers: Default::default(),
        enabled: true,
        events: vec![EventType::SaveLead],
        signing: SigningSecret::new("whsec_dGVzdHRlc3R0ZXN0dGVzdA==".into()),
        failure_streak: 0,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    }
}

/// Stores an enabled endpoint of `ws` subscribed to `save_lead`.
pub async fn save_lead_endpoint(
    ctx: &crate::context::AppContext,
    ws: &str,
    name: &str,
    url: &str,
) -> crate::domain::webhook::Webhook {
    let webhook = save_lead_webhook(name, url, ctx.now());
    crate::repo::webhooks::create(&*ctx.store, ws, &webhook).await.unwrap();
    webhook
}
