//! Feedback figures: outcome events/s through the real server on the embedded
//! store, beside a bare endpoint that does the same storage work (read the lead, update it,
//! append the event) in one SQLite transaction.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use futures_util::{StreamExt, stream};

use crate::server::{Server, median};
use crate::table::Row;

const AREA: &str = "feedback";
/// Enough for a few seconds of load: at 2,000 (half a second) the ratio read anywhere from 1.8 to 3.3 between runs.
const EVENTS: usize = 10_000;
const SENDERS: usize = 4;
/// Rounds of each measurement, alternated, each figure the median of its rounds: single
/// rounds of the floor read 9,300-12,900 events/s on an idle machine.
const ROUNDS: usize = 3;

fn event(lead: &str, i: usize) -> Vec<u8> {
    let kind = ["open", "click", "reply", "positive_reply", "bounce", "meeting_booked"][i % 6];
    serde_json::to_vec(
        &serde_json::json!({"lead_id": lead, "event_type": kind, "source": "instantly", "content": "Sounds good"}),
    )
    .unwrap_or_default()
}

async fn drive(http: &reqwest::Client, url: &str, key: &str, leads: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..EVENTS)
        .map(|i| {
            let body = event(&leads[i % leads.len()], i / leads.len());
            async move {
                let r = http
                    .post(url)
                    .header("x-satellyte-api-key", key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "feedback answered {}", r.status());
                Ok(())
            }
        })
        .buffer_unordered(SENDERS)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(EVENTS as f64 / started.elapsed().as_secs_f64())
}

async fn floor_server(dir: &std::path::Path, leads: &[String]) -> anyhow::Result<String> {
    let conn = rusqlite::Connection::open(dir.join("floor.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE leads (id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE events (lead TEXT, at INTEGER, data TEXT NOT NULL);",
    )?;
    for id in leads {
        conn.execute("INSERT INTO leads VALUES (?1, ?2)", rusqlite::params![id, r#"{"status":"new"}"#])?;
    }
    let conn = Arc::new(Mutex::new(conn));
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let conn = conn.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let e: serde_json::Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
                let id = e["lead_id"].as_str().unwrap_or_default().to_owned();
                let mut conn = conn.lock().unwrap();
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                let data: String = tx
                    .query_row("SELECT data FROM leads WHERE id = ?1", [&id], |r| r.get(0))
                    .map_err(|_| StatusCode::NOT_FOUND)?;
                let mut lead: serde_json::Value =
                    serde_json::from_str(&data).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                lead["status"] = e["event_type"].clone();
                tx.execute("UPDATE leads SET data = ?2 WHERE id = ?1", rusqlite::params![id, lead.to_string()])
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                tx.execute("INSERT INTO events VALUES (?1, 0, ?2)", rusqlite::params![id, e.to_string()])
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                tx.commit().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok::<_, StatusCode>(axum::Json(lead))
            })
            .await
            .unwrap_or(Err(StatusCode::INTERNAL_SERVER_ERROR))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/feedback", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let http = reqwest::Client::new();
    let server = Server::start(&[])?;
    let tenant = server.tenant(&http).await?;
    let leads = server.ingest(&http, &tenant, "feedback-bench", 500).await?;
    let dir = tempfile::tempdir()?;
    let floor_url = floor_server(dir.path(), &leads).await?;
    let ours_url = format!("{}/api/v1/feedback/events", server.base);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(drive(&http, &ours_url, &tenant.api_key, &leads).await?);
        floor.push(drive(&http, &floor_url, "", &leads).await?);
    }
    let (ours, floor) = (median(&mut ours), median(&mut floor));
    Ok(vec![Row::rate(
        AREA,
        format!("embedded: outcome events over 500 leads, {SENDERS} senders"),
        ours,
        floor,
        "events/s",
        format!(
            "median of {ROUNDS} alternated rounds of {EVENTS} events; floor: bare endpoint, read + update lead + \
             append event in one SQLite transaction"
        ),
    )])
}
