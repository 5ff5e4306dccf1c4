//! Push figures: pushing 1000 leads to a local webhook receiver through the real
//! server, beside one POST of an equally large body straight to that receiver; and the
//! server's peak memory beside its idle baseline.

use std::time::Instant;

use crate::server::{Server, median, post_json, sink};
use crate::table::Row;

const AREA: &str = "push";
const RUNS: usize = 10;

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let http = reqwest::Client::new();
    let server = Server::start(&[])?;
    let idle_rss = server.rss_mb();
    let tenant = server.tenant(&http).await?;
    let ids = server.ingest(&http, &tenant, "push-bench", 1000).await?;
    let receiver = sink().await?;
    let url = format!("{}/api/v1/leads/push", server.base);
    let body = serde_json::json!({"lead_ids": ids, "destination": "webhook_url", "webhook_url": receiver});

    let mut ours = Vec::new();
    for run in 0..=RUNS {
        let started = Instant::now();
        let (status, answer) = post_json(&http, &url, &tenant.api_key, &body).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(status == 200 && answer["data"]["lead_count"] == 1000, "push answered {status}: {answer}");
        if run > 0 {
            ours.push(elapsed); // run 0 warms connections and caches
        }
    }
    // Floor: what the receiver sees, without us: one POST of the leads as JSON.
    let leads: Vec<serde_json::Value> = (0..1000)
        .map(|i| serde_json::json!({"id": format!("req_x_{i:04}"), "name": format!("Lead {i}"), "email": format!("lead{i}@example.com"),
            "company": "Example Corp", "position": "Head of Growth", "linkedin": format!("https://www.linkedin.com/in/lead-{i}"),
            "score": i % 100, "signal_type": "hiring", "custom_fields": {"industry": "software"}, "status": "new"}))
        .collect();
    let payload = serde_json::to_vec(&serde_json::json!({"leads": leads}))?;
    let mut floor = Vec::new();
    for _ in 0..=RUNS {
        let started = Instant::now();
        let response =
            http.post(&receiver).header("content-type", "application/json").body(payload.clone()).send().await?;
        anyhow::ensure!(response.status() == 200);
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    floor.remove(0);
    let (ours, floor) = (median(&mut ours), median(&mut floor));
    Ok(vec![
        Row::time(
            AREA,
            "push 1000 leads to a webhook_url receiver",
            ours,
            floor,
            format!("median of {RUNS}; our own time {:.0} ms; floor: one POST of the same leads", ours - floor),
        ),
        Row::count(
            AREA,
            "server peak RSS (ingest + 11 pushes of 1000)",
            server.peak_rss_mb(),
            idle_rss,
            "MB",
            "floor: the same server idle after start",
        ),
    ])
}
