//! How a workspace's write load spreads over partition keys (DynamoDB allows each
//! partition key 1,000 WCU/s): a 10,000-lead ingest into one campaign, through the real
//! route on the embedded store, with every partition key written (table and index entries
//! alike) recorded by a store wrapper.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use leadpush::api::{self, Function};
use leadpush::config::Config;
use leadpush::context::AppContext;
use leadpush::domain::campaign::{Campaign, LeadSource};
use leadpush::domain::workspace::CredentialKind;
use leadpush::repo::keys::LIST_SHARDS;
use leadpush::repo::{campaigns, workspaces};
use leadpush::store::{Condition, Item, Key, Page, Query, Store, StoreError, WriteOp};
use leadpush::support::time::Timestamp;
use tower::ServiceExt;

use crate::server::ingest_body;
use crate::table::Row;

const AREA: &str = "scale";
const REQUESTS: usize = 10;
const LEADS: usize = 1000;

/// Delegates to a store and counts writes per partition key (table and index partitions).
struct Recording {
    inner: Arc<dyn Store>,
    writes: Mutex<HashMap<String, u64>>,
}

impl Recording {
    fn item(&self, item: &Item) {
        let mut writes = self.writes.lock().unwrap();
        *writes.entry(item.key.pk.clone()).or_default() += 1;
        for index in item.indexes.iter().flatten() {
            *writes.entry(format!("index {}", index.pk)).or_default() += 1;
        }
    }

    fn key(&self, key: &Key) {
        *self.writes.lock().unwrap().entry(key.pk.clone()).or_default() += 1;
    }
}

#[async_trait]
impl Store for Recording {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.item(&item);
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.key(key);
        self.inner.delete(key, condition).await
    }
    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        self.key(key);
        self.inner.increment(key, counters).await
    }
    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        self.key(key);
        self.inner.add_and_read(key, counter, by, expires_at).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        for op in &ops {
            match op {
                WriteOp::Put { item, .. } => self.item(item),
                WriteOp::Check { .. } => {}
                other => self.key(other.key()),
            }
        }
        self.inner.transact_write(ops).await
    }
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        items.iter().for_each(|item| self.item(item));
        self.inner.batch_put(items).await
    }
    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        keys.iter().for_each(|key| self.key(key));
        self.inner.batch_delete(keys).await
    }
    fn kind(&self) -> &'static str {
        "recording"
    }
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().display().to_string();
    let config = Config::from_lookup(|name| (name == "LEADPUSH_DATA_DIR").then(|| data_dir.clone()))?;
    let mut ctx = AppContext::from_config(config).await?;
    let recording = Arc::new(Recording { inner: ctx.store.clone(), writes: Mutex::new(HashMap::new()) });
    ctx.store = recording.clone();
    let now = Timestamp::now();
    let ws = workspaces::create_workspace(&*ctx.store, "partitions", now).await?;
    let (_, token) = workspaces::issue_credential(&*ctx.store, &ws.id, CredentialKind::WebhookToken, now).await?;
    let campaign = Campaign::new(leadpush::support::ids::new_id("cmp"), "one", LeadSource::Webhook, None, now)?;
    campaigns::create(&*ctx.store, &ws.id, &campaign).await?;
    recording.writes.lock().unwrap().clear();
    let app = api::app(ctx, &[Function::IngestLeads]);
    for i in 0..REQUESTS {
        let request = http::Request::post("/api/v1/webhook/leads")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(ingest_body(&campaign.id, &format!("part-{i}"), LEADS)))?;
        let response = app.clone().oneshot(request).await?;
        anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
    }
    let writes = recording.writes.lock().unwrap().clone();
    let leads = (REQUESTS * LEADS) as f64;
    let (busiest, most) = writes.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (k.clone(), *n)).unwrap_or_default();
    let total: u64 = writes.values().sum();
    Ok(vec![
        Row::rate(
            AREA,
            "partition keys written by a 10,000-lead ingest into one campaign",
            writes.len() as f64,
            leads,
            "keys",
            format!("floor: one per lead; {total} writes in all (table and index entries)"),
        ),
        Row::count(
            AREA,
            "partition: largest share of those leads written to one partition key",
            most as f64 / leads * 100.0,
            100.0 / f64::from(LIST_SHARDS),
            "%",
            format!(
                "floor: one listing shard of {LIST_SHARDS}; busiest: {busiest} ({most} writes); before the re-key: 100% (W#{{ws}})"
            ),
        ),
    ])
}
