//! Inbound ingest figures: leads/s through the real server on the embedded store,
//! beside a bare HTTP endpoint that parses the same body and inserts the rows into SQLite;
//! and the DynamoDB/SQS calls one 1000-lead request costs.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use futures_util::future::join_all;
use leadpush::api::{self, Function};
use leadpush::domain::campaign::{Campaign, LeadSource};
use leadpush::domain::workspace::CredentialKind;
use leadpush::repo::{campaigns, workspaces};
use leadpush::support::time::Timestamp;
use tower::ServiceExt;

use crate::aws_counter::{CallCounter, moto_context, summary};
use crate::server::{Server, ingest_body};
use crate::table::Row;

const AREA: &str = "ingest";
const REQUESTS: usize = 20;
const LEADS: usize = 1000;

/// Sends `REQUESTS` 1000-lead bodies from `clients` concurrent senders; returns leads/s.
async fn drive(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    campaign: &str,
    senders: usize,
    tag: &str,
) -> anyhow::Result<f64> {
    let bodies: Vec<Vec<u8>> = (0..REQUESTS).map(|i| ingest_body(campaign, &format!("{tag}-{i}"), LEADS)).collect();
    let started = Instant::now();
    let chunks: Vec<Vec<Vec<u8>>> = bodies.chunks(REQUESTS / senders).map(<[Vec<u8>]>::to_vec).collect();
    let results = join_all(chunks.into_iter().map(|chunk| async move {
        for body in chunk {
            let response = http
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
        }
        Ok::<_, anyhow::Error>(())
    }))
    .await;
    for result in results {
        result?;
    }
    Ok((REQUESTS * LEADS) as f64 / started.elapsed().as_secs_f64())
}

/// What a floor stores per lead.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// One row keyed by lead id, no index.
    Bare,
    /// Our table layout (`leadpush::store::sqlite::SCHEMA`) and keys: the lead row with its
    /// campaign and workspace listings (sharded) and its email and LinkedIn lookups.
    SameIndexes,
}

/// The row of one lead in our table layout, keyed as `repo::leads` keys it.
fn indexed_row(id: &str, lead: &serde_json::Value) -> Vec<rusqlite::types::Value> {
    use leadpush::repo::keys::sharded;
    use leadpush::store::sqlite::partition_hash;
    use rusqlite::types::Value as V;
    let text = |s: &str| V::Text(s.to_owned());
    let mut row = vec![text(&format!("W#ws#LEAD#{id}")), text("LEAD")];
    let sort = format!("LEAD#{id}");
    let campaign = sharded(&format!("W#ws#CMP#{}", lead["campaign_id"].as_str().unwrap_or_default()), id);
    let email = lead["email"].as_str().unwrap_or_default().to_lowercase();
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let by_email = sharded(&format!("W#ws#D#{domain}"), &email);
    let linkedin = lead["linkedin"].as_str().unwrap_or_default().trim_start_matches("https://www.");
    let by_linkedin = format!("W#ws#L#{linkedin}");
    let listing = sharded("W#ws#LEADS", id);
    for (pk, sk) in
        [(campaign, sort.clone()), (by_email, format!("{email}#{sort}")), (by_linkedin, sort.clone()), (listing, sort)]
    {
        row.extend([V::Integer(partition_hash(&pk)), V::Text(pk), V::Text(sk)]);
    }
    row.extend([V::Null, V::Integer(1), V::Text(lead.to_string())]);
    row
}

/// The floor: parse the JSON body and insert every lead in one SQLite transaction.
async fn floor_server(dir: &std::path::Path, floor: Floor) -> anyhow::Result<String> {
    let name = if floor == Floor::Bare { "floor.db" } else { "floor-indexed.db" };
    let conn = rusqlite::Connection::open(dir.join(name))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    match floor {
        Floor::Bare => {
            conn.execute_batch("CREATE TABLE leads (id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;")?
        }
        Floor::SameIndexes => conn.execute_batch(leadpush::store::sqlite::SCHEMA)?,
    }
    let conn = Arc::new(std::sync::Mutex::new(conn));
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |body: Bytes| {
            let conn = conn.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let parsed: serde_json::Value =
                        serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
                    let key = parsed["idempotency_key"].as_str().unwrap_or_default().to_owned();
                    let mut conn = conn.lock().unwrap();
                    let tx = conn.transaction().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                    for (i, lead) in parsed["leads"].as_array().into_iter().flatten().enumerate() {
                        let id = format!("{key}_{i}");
                        let inserted = match floor {
                            Floor::Bare => tx
                                .prepare_cached("INSERT INTO leads VALUES (?1, ?2)")
                                .and_then(|mut s| s.execute(rusqlite::params![id, lead.to_string()])),
                            Floor::SameIndexes => tx
                                .prepare_cached(
                                    "INSERT INTO items (pk, sk, gsi1h, gsi1pk, gsi1sk, gsi2h, gsi2pk, gsi2sk, gsi3h, gsi3pk,
                                     gsi3sk, gsi4h, gsi4pk, gsi4sk, expires_at, version, data)
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                                )
                                .and_then(|mut s| s.execute(rusqlite::params_from_iter(indexed_row(&id, lead)))),
                        };
                        inserted.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                    }
                    tx.commit().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                    Ok::<_, StatusCode>(StatusCode::ACCEPTED)
                })
                .await
                .unwrap_or(Err(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ingest", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

pub async fn run(moto: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let http = reqwest::Client::new();
    let mut by_senders = Vec::new();
    // Each sender count starts from the same state (a new server, new floor files, 20 warm
    // requests): the layout's cost grows with the table, so a run on the table the previous
    // run left behind is slower whatever its senders (1 then 4 read 0.74; 4 then 1, 1.30).
    for senders in [1, 4] {
        let server = Server::start(&[])?;
        let tenant = server.tenant(&http).await?;
        let ours_url = format!("{}/api/v1/webhook/leads", server.base);
        let dir = tempfile::tempdir()?;
        let floor_url = floor_server(dir.path(), Floor::Bare).await?;
        let indexed_url = floor_server(dir.path(), Floor::SameIndexes).await?;
        // Warm them up (connections, caches, SQLite pages).
        drive(&http, &ours_url, &tenant.token, &tenant.campaign_id, 1, "warm").await?;
        drive(&http, &floor_url, "", "c", 1, "warm").await?;
        drive(&http, &indexed_url, "", "c", 1, "warm").await?;
        let ours =
            drive(&http, &ours_url, &tenant.token, &tenant.campaign_id, senders, &format!("run{senders}")).await?;
        let floor = drive(&http, &floor_url, "", "c", senders, &format!("run{senders}")).await?;
        let indexed = drive(&http, &indexed_url, "", "c", senders, &format!("run{senders}")).await?;
        rows.push(Row::rate(
            AREA,
            format!("embedded: 1000-lead requests, {senders} sender(s)"),
            ours,
            floor,
            "leads/s",
            "floor: bare endpoint, parse + one SQLite transaction into one keyed table",
        ));
        by_senders.push((senders, ours, indexed));
    }
    // The same ours beside a floor that stores each lead as we do (one row, five indexes):
    // what is left is our code; the rest of the gap above is the layout itself.
    for (senders, ours, indexed) in by_senders {
        rows.push(Row::rate(
            AREA,
            format!("embedded: 1000-lead requests, {senders} sender(s), same indexes"),
            ours,
            indexed,
            "leads/s",
            "floor: bare endpoint, parse + one transaction into our table layout and keys",
        ));
    }

    // AWS: count the calls of one 1000-lead request, in process, against moto.
    let counter = CallCounter::default();
    let ctx = moto_context(moto, &counter, "bench-ingest", &[]).await?.ctx;
    let now = Timestamp::now();
    let ws = workspaces::create_workspace(&*ctx.store, "bench", now).await?;
    let (_, token) = workspaces::issue_credential(&*ctx.store, &ws.id, CredentialKind::WebhookToken, now).await?;
    let campaign = Campaign::new(leadpush::support::ids::new_id("cmp"), "bench", LeadSource::Webhook, None, now)?;
    campaigns::create(&*ctx.store, &ws.id, &campaign).await?;
    counter.take();
    let request = http::Request::post("/api/v1/webhook/leads")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(ingest_body(&campaign.id, "aws", LEADS)))?;
    let response = api::app(ctx, &[Function::IngestLeads]).oneshot(request).await?;
    anyhow::ensure!(response.status() == 202, "ingest on moto answered {}", response.status());
    let calls = counter.take();
    let dynamo_calls: u64 = calls.iter().filter(|(op, _)| !op.contains("Message")).map(|(_, n)| n).sum();
    let sqs_calls: u64 = calls.iter().filter(|(op, _)| op.contains("Message")).map(|(_, n)| n).sum();
    rows.push(Row::count(
        AREA,
        "DynamoDB calls per 1000-lead request",
        dynamo_calls as f64,
        LEADS.div_ceil(25) as f64,
        "calls",
        format!("floor: ceil(1000/25) BatchWriteItem; ours: {}", summary(&calls, 1.0)),
    ));
    rows.push(Row::count(
        AREA,
        "SQS calls per 1000-lead request",
        sqs_calls as f64,
        1.0,
        "calls",
        "floor: one SendMessageBatch",
    ));
    Ok(rows)
}
