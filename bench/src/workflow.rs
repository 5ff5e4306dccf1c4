//! Workflow figures: template renders per second beside building the same text
//! by hand; workflow runs per second for 1000 leads ingested into an active campaign whose
//! workflow fetches from a local API answering in 20 ms, beside the same 1000 calls made
//! directly at the dispatcher's concurrency; and store operations per run node, counted
//! through the real run code, beside the minimum (one read of the run, one write per node).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use leadpush::store::{Condition, Item, Key, Page, Query, Store, StoreError, WriteOp};
use serde_json::{Value, json};

use crate::server::{Server, post_json};
use crate::table::Row;

const AREA: &str = "workflow";
const LEADS: usize = 1000;
const API_DELAY: Duration = Duration::from_millis(20);
/// The embedded dispatcher: 8 receive loops of up to 10 messages.
const DISPATCH_IN_FLIGHT: usize = 80;

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = vec![renders()?];
    rows.push(runs().await?);
    rows.push(store_ops().await?);
    Ok(rows)
}

const OPENER: &str = "Hi {{ contact.first_name }}, {{ contact.company }} on {{ workflow.profile.plan }} with \
                      {{ workflow.profile.seats }} seats{% if contact.custom_fields.tier == 'A' %} (tier A){% endif %}.";

fn renders() -> anyhow::Result<Row> {
    let vars = json!({"contact": {"first_name": "Ada", "company": "Example Corp", "custom_fields": {"tier": "A"}},
                      "workflow": {"profile": {"plan": "pro", "seats": 12}}});
    const N: usize = 20_000;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..N {
        bytes += leadpush::workflow::template::render(
            "template",
            OPENER,
            leadpush::workflow::template::Mode::Text,
            &vars,
            8192,
        )?
        .len();
    }
    let ours = N as f64 / started.elapsed().as_secs_f64();
    // Floor: the same text built by hand from the same JSON.
    let started = Instant::now();
    let mut floor_bytes = 0;
    for _ in 0..N {
        let c = &vars["contact"];
        let p = &vars["workflow"]["profile"];
        let tier = if c["custom_fields"]["tier"] == "A" { " (tier A)" } else { "" };
        let text = format!(
            "Hi {}, {} on {} with {} seats{}.",
            c["first_name"].as_str().unwrap_or_default(),
            c["company"].as_str().unwrap_or_default(),
            p["plan"].as_str().unwrap_or_default(),
            p["seats"],
            tier
        );
        floor_bytes += text.len();
    }
    let floor = N as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(bytes == floor_bytes, "the template and the hand-built text differ");
    Ok(Row::rate(
        AREA,
        "template renders (opener, 5 variables, an if)",
        ours,
        floor,
        "renders/s",
        "compiled once, then a strict render with fuel; floor: format! of the same text",
    ))
}

/// A JSON API answering after 20 ms; counts calls.
async fn slow_api() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(API_DELAY).await;
            axum::Json(json!({"plan": "pro", "seats": 12}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/profile", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, calls))
}

fn workflow_doc(api_request_id: &str) -> Value {
    json!({"nodes": [
        {"id": "profile", "type": "fetch_api_data", "api_request_id": api_request_id, "output_key": "profile"},
        {"id": "is_pro", "type": "condition", "if": "workflow.profile.plan == 'pro'"},
        {"id": "opener", "type": "render_message", "output_key": "opener",
         "template": "{{ contact.name }} on {{ workflow.profile.plan }}"}
    ]})
}

async fn runs() -> anyhow::Result<Row> {
    let http = reqwest::Client::new();
    let server = Server::start(&[])?;
    let tenant = server.tenant(&http).await?;
    let (url, calls) = slow_api().await?;
    let base = &server.base;
    let (status, created) = post_json(
        &http,
        &format!("{base}/api/v1/api-requests"),
        &tenant.api_key,
        &json!({"name": "profile", "method": "GET", "url": format!("{url}/{{{{ contact.email }}}}")}),
    )
    .await?;
    anyhow::ensure!(status == 201, "api request: {created}");
    let api_request_id = created["data"]["id"].as_str().context("api request id")?;
    let workflow = http
        .put(format!("{base}/api/v1/campaigns/{}/workflow", tenant.campaign_id))
        .header("x-satellyte-api-key", &tenant.api_key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&workflow_doc(api_request_id))?)
        .send()
        .await?;
    anyhow::ensure!(workflow.status() == 200, "workflow save: {}", workflow.status());
    let (status, _) = post_json(
        &http,
        &format!("{base}/api/v1/campaigns/{}/activate", tenant.campaign_id),
        &tenant.api_key,
        &json!({}),
    )
    .await?;
    anyhow::ensure!(status == 200, "activate: {status}");

    let started = Instant::now();
    server.ingest(&http, &tenant, "workflow-bench", LEADS).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        anyhow::ensure!(Instant::now() < deadline, "runs did not finish within 300 s");
        if finished(&http, base, &tenant.api_key, &tenant.campaign_id).await? >= LEADS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ours = LEADS as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(calls.load(Ordering::Relaxed) == LEADS as u64, "one API call per lead");

    // Floor: the same 1000 calls, straight to the API at the dispatcher's concurrency.
    let started = Instant::now();
    stream::iter(0..LEADS)
        .map(|i| {
            let http = http.clone();
            let url = format!("{url}/lead{i}%40example.com");
            async move { http.get(url).send().await.map(|r| r.status()) }
        })
        .buffer_unordered(DISPATCH_IN_FLIGHT)
        .for_each(|_| async {})
        .await;
    let floor = LEADS as f64 / started.elapsed().as_secs_f64();
    Ok(Row::rate(
        AREA,
        "workflow runs, 1000 leads, fetch from a 20 ms API (embedded)",
        ours,
        floor,
        "runs/s",
        "ingest to last run finished; 3 nodes; floor: the 1000 API calls alone, 80 in flight",
    ))
}

/// How many of the campaign's leads have a finished run (from the preview).
async fn finished(http: &reqwest::Client, base: &str, key: &str, campaign: &str) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut url = format!("{base}/api/v1/campaigns/{campaign}/leads?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let bytes = http.get(url).header("x-satellyte-api-key", key).send().await?.bytes().await?;
        let body: Value = serde_json::from_slice(&bytes)?;
        for lead in body["data"].as_array().into_iter().flatten() {
            if matches!(lead["workflow_run"]["status"].as_str(), Some("succeeded" | "failed" | "stopped")) {
                count += 1;
            }
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(count)
}

/// Counts every store call.
struct Counting {
    inner: Arc<dyn Store>,
    ops: AtomicU64,
}

impl Counting {
    fn tick(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.tick();
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.tick();
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.tick();
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.tick();
        self.inner.delete(key, condition).await
    }
    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        self.tick();
        self.inner.increment(key, counters).await
    }
    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        self.tick();
        self.inner.add_and_read(key, counter, by, expires_at).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.tick();
        self.inner.query(query).await
    }
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.tick();
        self.inner.transact_write(ops).await
    }
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.tick();
        self.inner.batch_put(items).await
    }
    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        self.tick();
        self.inner.batch_delete(keys).await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// Runs 100 leads' workflows through the real task code on a counting store.
async fn store_ops() -> anyhow::Result<Row> {
    const N: usize = 100;
    const NODES: usize = 3;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().display().to_string();
    let config = leadpush::config::Config::from_lookup(|name| match name {
        "LEADPUSH_DATA_DIR" => Some(data_dir.clone()),
        "LEADPUSH_ALLOW_PRIVATE_TARGETS" => Some("1".into()),
        _ => None,
    })?;
    let mut ctx = leadpush::context::AppContext::from_config(config).await?;
    let store = &*ctx.store;
    let now = ctx.now();
    let ws = leadpush::repo::workspaces::create_workspace(store, "bench", now).await?.id;
    let campaign = leadpush::domain::campaign::Campaign::new(
        "cmp_BENCH".into(),
        "bench",
        leadpush::domain::campaign::LeadSource::Webhook,
        None,
        now,
    )?;
    leadpush::repo::campaigns::create(store, &ws, &campaign).await?;
    let leads: Vec<leadpush::domain::lead::Lead> = (0..N)
        .map(|i| {
            let fields = leadpush::domain::lead::LeadFields {
                name: Some(format!("Lead {i}")),
                email: Some(format!("lead{i}@example.com")),
                ..Default::default()
            };
            leadpush::domain::lead::Lead::new(format!("req_BENCH_{i:04}"), campaign.id.clone(), None, fields, now)
        })
        .collect();
    leadpush::repo::leads::put_many(store, &ws, &leads).await?;
    let (url, _) = slow_api().await?;
    let input = serde_json::from_value(json!({"name": "profile", "method": "GET", "url": url}))?;
    let settings = leadpush::domain::api_request::WorkspaceSettings::default();
    let request = leadpush::domain::api_request::ApiRequest::new("apr_BENCH".into(), input, &settings, now)?;
    leadpush::repo::api_requests::create(store, &ws, &request).await?;
    let workflow = leadpush::workflow::save::save(&ctx, &ws, &campaign.id, &workflow_doc("apr_BENCH")).await?;

    let counting = Arc::new(Counting { inner: ctx.store.clone(), ops: AtomicU64::new(0) });
    ctx.store = counting.clone();
    let ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
    leadpush::workflow::trigger::start_runs(
        &ctx,
        &ws,
        &campaign.id,
        workflow.workflow_version,
        &ids,
        leadpush::domain::workflow::RunTrigger::Ingest,
    )
    .await?;
    let created = counting.ops.load(Ordering::Relaxed);
    for lead in &ids {
        let page = leadpush::repo::workflows::list_runs(&*counting.inner, &ws, lead, 1, None).await?;
        let run: leadpush::domain::workflow::Run = page.items.first().context("run created")?.parse()?;
        leadpush::workflow::run::execute(&ctx, &ws, lead, &run.id).await?;
    }
    let total = counting.ops.load(Ordering::Relaxed);
    let per_node = total as f64 / (N * NODES) as f64;
    // Floor: read the run once, write each node's result once.
    let floor = (1 + NODES) as f64 / NODES as f64;
    Ok(Row::count(
        AREA,
        "store operations per run node (3-node run)",
        per_node,
        floor,
        "ops",
        format!(
            "creating a run {:.1} ops, executing it {:.1}; floor: one read of the run + one write per node",
            created as f64 / N as f64,
            (total - created) as f64 / N as f64
        ),
    ))
}
