//! Outbound delivery figures: 1000 save_lead deliveries to a receiver that answers
//! after 50 ms, through the real server; beside the same 1000 POSTs sent straight from here
//! with the server's concurrency. And the DynamoDB/SQS calls one delivery costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use futures_util::{StreamExt, stream};
use leadpush::domain::campaign::{Campaign, LeadSource};
use leadpush::domain::lead::{Lead, LeadFields};
use leadpush::repo::{campaigns, leads, workspaces};
use leadpush::support::time::Timestamp;
use tokio::sync::Notify;

use crate::aws_counter::{CallCounter, clients, moto_context, summary};
use crate::server::{Server, ingest_body, post_json};
use crate::table::Row;

const AREA: &str = "delivery";
const N: usize = 1000;
const RECEIVER_DELAY: Duration = Duration::from_millis(50);
/// Deliveries the server has in flight at most: 8 worker loops x batches of 10.
const SERVER_CONCURRENCY: usize = 80;

pub struct Receiver {
    pub url: String,
    pub count: Arc<AtomicUsize>,
    pub done: Arc<Notify>,
}

pub async fn receiver(delay: Duration, target: usize) -> anyhow::Result<Receiver> {
    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let (c, d) = (count.clone(), done.clone());
    let app = axum::Router::new().fallback(move || {
        let (c, d) = (c.clone(), d.clone());
        async move {
            tokio::time::sleep(delay).await;
            if c.fetch_add(1, Ordering::SeqCst) + 1 == target {
                d.notify_one();
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Receiver { url, count, done })
}

pub async fn run(moto: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let http = reqwest::Client::new();

    let server = Server::start(&[])?;
    let tenant = server.tenant(&http).await?;
    let sink = receiver(RECEIVER_DELAY, N).await?;
    let webhook = serde_json::json!({"name": "bench", "url": sink.url});
    let (status, _) = post_json(&http, &format!("{}/api/v1/webhooks", server.base), &tenant.api_key, &webhook).await?;
    anyhow::ensure!(status == 201, "webhook create answered {status}");
    let response = http
        .post(format!("{}/api/v1/webhook/leads", server.base))
        .header("authorization", format!("Bearer {}", tenant.token))
        .header("content-type", "application/json")
        .body(ingest_body(&tenant.campaign_id, "deliveries", N))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(300), sink.done.notified()).await?;
    let ours = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(sink.count.load(Ordering::SeqCst) == N);

    // Floor: the same number of signed-size POSTs straight to a fresh receiver.
    let floor_sink = receiver(RECEIVER_DELAY, N).await?;
    let body = vec![b'x'; 420];
    let started = Instant::now();
    stream::iter(0..N)
        .map(|_| http.post(&floor_sink.url).header("content-type", "application/json").body(body.clone()).send())
        .buffer_unordered(SERVER_CONCURRENCY)
        .for_each(|r| async move {
            let _ = r;
        })
        .await;
    let floor = started.elapsed().as_secs_f64() * 1000.0;
    rows.push(Row::time(
        AREA,
        "1000 save_lead deliveries, receiver answers in 50 ms",
        ours,
        floor,
        "queued -> last received; floor: 1000 POSTs at the server's 80 in flight",
    ));

    // AWS: calls per delivery, in process against moto, with the dispatcher's worker loop.
    let counter = CallCounter::default();
    let moto_ctx = moto_context(moto, &counter, "bench-deliver", &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "1")]).await?;
    let (ctx, queue_url) = (moto_ctx.ctx, moto_ctx.queue_url);
    const M: usize = 100;
    let fast = receiver(Duration::ZERO, M).await?;
    let now = Timestamp::now();
    let ws = workspaces::create_workspace(&*ctx.store, "bench", now).await?;
    let campaign = Campaign::new(leadpush::support::ids::new_id("cmp"), "bench", LeadSource::Webhook, None, now)?;
    campaigns::create(&*ctx.store, &ws.id, &campaign).await?;
    let stored: Vec<Lead> = (0..M)
        .map(|i| {
            let fields = LeadFields { name: Some(format!("Lead {i}")), ..LeadFields::default() };
            Lead::new(leadpush::support::ids::lead_id("req_bench", i + 1), campaign.id.clone(), None, fields, now)
        })
        .collect();
    leads::put_many(&*ctx.store, &ws.id, &stored).await?;
    let endpoint = serde_json::json!({"name": "bench", "url": fast.url});
    let app = leadpush::api::app(ctx.clone(), &[leadpush::api::Function::Webhooks]);
    let (_, key) =
        workspaces::issue_credential(&*ctx.store, &ws.id, leadpush::domain::workspace::CredentialKind::ApiKey, now)
            .await?;
    let request = http::Request::post("/api/v1/webhooks")
        .header("x-satellyte-api-key", key)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(endpoint.to_string()))?;
    let response = tower::ServiceExt::oneshot(app, request).await?;
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    let webhook_id =
        serde_json::from_slice::<serde_json::Value>(&bytes)?["data"]["id"].as_str().unwrap_or_default().to_owned();
    counter.take();
    let ids: Vec<String> = stored.iter().map(|l| l.id.clone()).collect();
    leadpush::queue::emit_leads_saved(&*ctx.queue, &ws.id, &ids).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = leadpush::dispatch::worker::spawn(ctx.clone(), 8, stop_rx);
    tokio::time::timeout(Duration::from_secs(300), fast.done.notified()).await?;
    // Count the outcome writes too: wait until every delivery is recorded as delivered.
    for _ in 0..600 {
        let page = leadpush::repo::deliveries::list(&*ctx.store, &ws.id, &webhook_id, M, None).await?;
        let delivered =
            page.items.iter().filter(|i| i.data.get("status").and_then(|s| s.as_str()) == Some("delivered")).count();
        if delivered == M {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    let calls = counter.take();
    let total: u64 = calls.values().sum();
    rows.push(Row::count(
        AREA,
        "DynamoDB + SQS calls per delivery (moto)",
        total as f64 / M as f64,
        1.2,
        "calls",
        format!("floor: 1 write of the outcome + receive/delete in tens; ours: {}", summary(&calls, M as f64)),
    ));

    // The Lambda path: the SQS event source receives and deletes, so only the calls the
    // dispatcher makes itself count. Messages are fetched with a client that is not counted.
    let (_, plain_sqs) = clients(moto, &CallCounter::default()).await;
    leadpush::queue::emit_leads_saved(&*ctx.queue, &ws.id, &ids).await?;
    // Run the fan-out stages (not counted) until only Deliver messages are left.
    let mut deliver = Vec::new();
    for _ in 0..20 {
        let (attempts, other): (Vec<SqsMessage>, Vec<SqsMessage>) = receive(&plain_sqs, &queue_url, usize::MAX)
            .await?
            .records
            .into_iter()
            .partition(|m| m.body.as_deref().is_some_and(|b| b.contains("\"task\":\"deliver\"")));
        deliver.extend(attempts);
        if other.is_empty() {
            break;
        }
        leadpush::dispatch::lambda::handle(&ctx, leadpush::dispatch::Worker::CORE, event(other), None).await;
    }
    counter.take();
    let mut handled = 0;
    for batch in deliver.chunks(10) {
        handled += batch.len();
        let response =
            leadpush::dispatch::lambda::handle(&ctx, leadpush::dispatch::Worker::CORE, event(batch.to_vec()), None)
                .await;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "deliveries failed on the Lambda path");
    }
    anyhow::ensure!(handled == M, "the Lambda path handled {handled} of {M} deliveries");
    let calls = counter.take();
    let total: u64 = calls.values().sum();
    rows.push(Row::count(
        AREA,
        "DynamoDB + SQS calls per delivery, Lambda path (moto)",
        total as f64 / M as f64,
        1.0,
        "calls",
        format!("floor: 1 write of the outcome; ours: {}", summary(&calls, M as f64)),
    ));
    Ok(rows)
}

/// Up to `max` waiting messages (in receives of 10), as the SQS event source would hand
/// them to the dispatcher.
async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, max: usize) -> anyhow::Result<SqsEvent> {
    let mut records = Vec::new();
    while records.len() < max {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10.min(max - records.len()) as i32)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        records.extend(messages.into_iter().map(|m| {
            let mut message = SqsMessage::default();
            message.message_id = m.message_id;
            message.receipt_handle = m.receipt_handle;
            message.body = m.body;
            message
        }));
    }
    Ok(event(records))
}

fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}
