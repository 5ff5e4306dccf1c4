//! Cost per operation on DynamoDB: the write and read units each operation consumes,
//! computed by DynamoDB's published rules from the items our code really writes and reads
//! (`leadpush::store::capacity`, a meter under the context's store, on moto), beside a
//! floor: the same feature's minimal writes (a conditional put per new record, one write per
//! changed record, the index entries its queries need), priced by the same rules on the same
//! items. What a customer pays on demand is mostly these units; `docs/benchmarks.md` turns
//! the rows into a cost per million.

use std::sync::Arc;
use std::time::Duration;

use leadpush::api::{self, Function};
use leadpush::domain::campaign::{Campaign, LeadSource};
use leadpush::domain::workspace::CredentialKind;
use leadpush::repo::{campaigns, leads, workspaces};
use leadpush::store::capacity::{CapacityMeter, Units, write_cost};
use leadpush::store::{Item, Key, Query, Store};
use leadpush::support::time::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::aws_counter::{CallCounter, clients, moto_context_with, summary};
use crate::server::ingest_body;
use crate::table::Row;

const AREA: &str = "cost";
/// Operations measured per figure (the first of each kind warms caches and is left out).
const ROUNDS: usize = 5;
const BULK: usize = 1000;
/// save_lead deliveries measured, one lead each.
const DELIVERIES: usize = 5;

struct Bench {
    ctx: leadpush::context::AppContext,
    meter: Arc<CapacityMeter>,
    counter: CallCounter,
    ws: String,
    api_key: String,
    token: String,
    campaign: String,
}

impl Bench {
    async fn send(&self, function: Function, request: http::Request<axum::body::Body>) -> anyhow::Result<(u16, Value)> {
        let response = api::app(self.ctx.clone(), &[function]).oneshot(request).await?;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn ingest(&self, tag: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let request = http::Request::post("/api/v1/webhook/leads")
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(ingest_body(&self.campaign, tag, n)))?;
        let (status, body) = self.send(Function::IngestLeads, request).await?;
        anyhow::ensure!(status == 202, "ingest answered {status}: {body}");
        let ids = body["data"]["lead_ids"].as_array().cloned().unwrap_or_default();
        let ids: Vec<String> = ids.iter().filter_map(|id| id.as_str().map(str::to_owned)).collect();
        anyhow::ensure!(ids.len() == n, "ingest answered {} lead ids for {n} leads: {body}", ids.len());
        Ok(ids)
    }

    async fn reply(&self, lead_id: &str) -> anyhow::Result<()> {
        let event = json!({"lead_id": lead_id, "event_type": "reply", "source": "instantly", "content": "Sounds good"});
        let request = http::Request::post("/api/v1/feedback/events")
            .header("x-satellyte-api-key", &self.api_key)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(event.to_string()))?;
        let (status, body) = self.send(Function::FeedbackEvents, request).await?;
        anyhow::ensure!(status == 200 && body["data"]["mutated_lead"] == true, "feedback answered {status}: {body}");
        Ok(())
    }

    /// The stored item at `key`, read past the meter.
    async fn stored(&self, key: &Key) -> anyhow::Result<Item> {
        self.meter.unmetered().get(key).await?.ok_or_else(|| anyhow::anyhow!("{key:?} not stored"))
    }
}

/// Units and calls of `rounds` operations, each figure per operation.
struct Measured {
    units: Units,
    calls: String,
}

fn rows(what: &str, ours: &Measured, floor: &Units, floor_note: &str) -> Vec<Row> {
    vec![
        Row::count(
            AREA,
            format!("write units per {what}"),
            ours.units.write,
            floor.write,
            "WCU",
            format!(
                "ours: {}; floor: {} ({floor_note}); calls: {}",
                ours.units.breakdown(),
                floor.breakdown(),
                ours.calls
            ),
        ),
        Row::count(
            AREA,
            format!("read units per {what}"),
            ours.units.read,
            floor.read,
            "RCU",
            "floor: the credential lookup and the records the operation must read, eventually consistent",
        ),
    ]
}

pub async fn run(moto: &str) -> anyhow::Result<Vec<Row>> {
    let counter = CallCounter::default();
    let mut meter = None;
    // The meter sizes writes by reading what they replace through a client not counted.
    let (plain, _) = clients(moto, &CallCounter::default()).await;
    // The table `moto_context_with` creates for the name "bench-cost".
    let table = format!("bench-cost-{}", std::process::id());
    let shadow: Arc<dyn Store> = Arc::new(leadpush::store::dynamodb::DynamoStore::new(plain, &table));
    let wrap = |store: Arc<dyn Store>| -> Arc<dyn Store> {
        let metered = Arc::new(CapacityMeter::with_shadow(store, shadow));
        meter = Some(metered.clone());
        metered
    };
    let moto_ctx =
        moto_context_with(moto, &counter, "bench-cost", &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "1")], wrap).await?;
    let meter = meter.ok_or_else(|| anyhow::anyhow!("the meter was not installed"))?;
    let (ctx, sqs, queue_url) = (moto_ctx.ctx, moto_ctx.sqs, moto_ctx.queue_url);
    let now = Timestamp::now();
    let ws = workspaces::create_workspace(&*ctx.store, "bench", now).await?;
    let (_, token) = workspaces::issue_credential(&*ctx.store, &ws.id, CredentialKind::WebhookToken, now).await?;
    let (_, api_key) = workspaces::issue_credential(&*ctx.store, &ws.id, CredentialKind::ApiKey, now).await?;
    let campaign = Campaign::new(leadpush::support::ids::new_id("cmp"), "bench", LeadSource::Webhook, None, now)?;
    campaigns::create(&*ctx.store, &ws.id, &campaign).await?;
    let bench = Bench { ctx, meter, counter, ws: ws.id, api_key, token, campaign: campaign.id };
    let mut out = Vec::new();

    // Single-lead ingest, the usual webhook sender.
    bench.ingest("warm", 1).await?;
    let (single, ids) = measure(&bench, ROUNDS, |i| {
        let bench = &bench;
        async move { bench.ingest(&format!("single-{i}"), 1).await }
    })
    .await?;
    let lead = bench.stored(&leads::key(&bench.ws, &ids[0])).await?;
    let mut floor = idempotency_floor(&bench.ws);
    floor.add(&write_cost(None, Some(&lead), 1.0, true));
    // The credential and the campaign, eventually consistent.
    floor.read += 1.0;
    out.extend(rows(
        "single-lead ingest",
        &single,
        &floor,
        "a conditional put of the idempotency key, the lead and its index entries",
    ));

    // Each lead of a 1000-lead ingest.
    let (bulk, ids) = measure(&bench, 1, |_| {
        let bench = &bench;
        async move { bench.ingest("bulk", BULK).await }
    })
    .await?;
    let mut floor = idempotency_floor(&bench.ws);
    for id in &ids {
        floor.add(&write_cost(None, Some(&bench.stored(&leads::key(&bench.ws, id)).await?), 1.0, true));
    }
    floor.read += 1.0;
    let bulk = Measured { units: bulk.units.per(BULK), calls: bulk.calls };
    out.extend(rows(
        "lead of a 1000-lead ingest",
        &bulk,
        &floor.per(BULK),
        "the leads and their index entries, batched",
    ));

    // A feedback event that changes the lead (a reply on a new lead).
    let targets: Vec<String> = ids.iter().take(ROUNDS + 1).cloned().collect();
    bench.reply(&targets[0]).await?;
    let mut before = Vec::new();
    for id in &targets[1..] {
        before.push(bench.stored(&leads::key(&bench.ws, id)).await?);
    }
    let (feedback, _) = measure(&bench, ROUNDS, |i| {
        let (bench, id) = (&bench, targets[i + 1].clone());
        async move { bench.reply(&id).await }
    })
    .await?;
    let mut floor = Units::default();
    for (old, id) in before.iter().zip(&targets[1..]) {
        let new = bench.stored(&leads::key(&bench.ws, id)).await?;
        let events =
            bench.meter.unmetered().query(&Query::table(leads::partition(&bench.ws, id)).prefix("FEVT#")).await?;
        let event = events.items.first().ok_or_else(|| anyhow::anyhow!("no event stored for {id}"))?;
        floor.add(&write_cost(None, Some(event), 1.0, true));
        floor.add(&write_cost(Some(old), Some(&new), 1.0, true));
        floor.read += 1.0;
    }
    out.extend(rows(
        "feedback event that changes the lead",
        &feedback,
        &floor.per(ROUNDS),
        "the event put and the lead's update, its index entries, counters aggregated apart",
    ));

    // One save_lead delivery: the fan-out, the attempt and its outcome, through the
    // dispatcher's worker loop, to a local receiver. The ingests above queued their own
    // announcements: dropped first, so that only the measured leads are delivered.
    sqs.purge_queue().queue_url(&queue_url).send().await?;
    let receiver = crate::delivery::receiver(Duration::ZERO, DELIVERIES).await?;
    let endpoint = json!({"name": "cost", "url": receiver.url, "events": ["save_lead"]});
    let request = http::Request::post("/api/v1/webhooks")
        .header("x-satellyte-api-key", &bench.api_key)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(endpoint.to_string()))?;
    let (status, body) = bench.send(Function::Webhooks, request).await?;
    anyhow::ensure!(status == 201, "creating the endpoint answered {status}: {body}");
    let webhook_id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
    let (delivery, settled) = measure(&bench, 1, |_| {
        let (bench, ids, webhook_id, receiver) = (&bench, &ids, &webhook_id, &receiver);
        async move {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let workers = leadpush::dispatch::worker::spawn(bench.ctx.clone(), 2, stop_rx);
            for id in ids.iter().take(DELIVERIES) {
                leadpush::queue::emit_leads_saved(&*bench.ctx.queue, &bench.ws, std::slice::from_ref(id)).await?;
            }
            tokio::time::timeout(Duration::from_secs(120), receiver.done.notified()).await?;
            // Until every outcome is recorded.
            let mut settled = Vec::new();
            for _ in 0..1200 {
                let listed =
                    leadpush::repo::deliveries::list(bench.meter.unmetered(), &bench.ws, webhook_id, 100, None).await?;
                settled = listed
                    .items
                    .into_iter()
                    .filter(|i| i.data.get("status").and_then(Value::as_str) == Some("delivered"))
                    .collect();
                if settled.len() >= DELIVERIES {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stop_tx.send(true);
            for worker in workers {
                let _ = worker.await;
            }
            anyhow::ensure!(settled.len() == DELIVERIES, "{} of {DELIVERIES} deliveries settled", settled.len());
            Ok(settled)
        }
    })
    .await?;
    let mut floor = Units::default();
    for item in &settled {
        floor.add(&write_cost(None, Some(item), 1.0, true));
        floor.read += 0.5;
    }
    let delivery = Measured { units: delivery.units.per(DELIVERIES), calls: delivery.calls };
    out.extend(rows(
        "save_lead delivery",
        &delivery,
        &floor.per(DELIVERIES),
        "one write of the settled delivery record and its listing entry",
    ));
    Ok(out)
}

/// A conditional put of a small idempotency record (key hash, request id, expiry).
fn idempotency_floor(ws: &str) -> Units {
    let hash = "0".repeat(64);
    let record = Item::new(
        Key::new(format!("W#{ws}#IDEM#{hash}"), "IDEM"),
        &json!({"hash": hash, "request_id": "req_0000000000000000"}),
    )
    .map(|item| item.with_expiry(2_000_000_000));
    record.map(|item| write_cost(None, Some(&item), 1.0, true)).unwrap_or_default()
}

/// Runs `op` `rounds` times and returns the units and calls per operation, and the last
/// result.
async fn measure<T, F, Fut>(bench: &Bench, rounds: usize, op: F) -> anyhow::Result<(Measured, T)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    // Let background writes of earlier steps settle before counting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    bench.meter.take();
    bench.counter.take();
    let mut last = None;
    for i in 0..rounds {
        last = Some(op(i).await?);
    }
    let units = bench.meter.take().per(rounds);
    let calls = bench.counter.take();
    let last = last.ok_or_else(|| anyhow::anyhow!("no rounds"))?;
    Ok((Measured { units, calls: summary(&calls, rounds as f64) }, last))
}
