//! Hardening figures: how long hostile templates take to refuse, how long
//! `/healthz` takes under one key's flood of slow bodies, and what a rate-limited call
//! costs, each beside the same work without our code in the way.

use std::time::{Duration, Instant};

use anyhow::Context;
use leadpush::workflow::template::{self, Mode};
use tokio::io::AsyncWriteExt;

use crate::server::Server;
use crate::table::Row;

const AREA: &str = "hardening";
const ROUNDS: u32 = 200;

fn per_call_ms(started: Instant, n: u32) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

/// Refusing templates that would overflow the parser's stack or take gigabytes; floor:
/// rendering a one-tag template.
fn bombs() -> anyhow::Result<Vec<Row>> {
    let vars = serde_json::json!({"contact": {"first_name": "Ada"}});
    let started = Instant::now();
    for _ in 0..ROUNDS {
        template::render("t", "Hi {{ contact.first_name }}", Mode::Text, &vars, 1024)?;
    }
    let floor = per_call_ms(started, ROUNDS);
    let mut rows = Vec::new();
    let crash = format!("https://example.com/{{{{ {}1 }}}}", "-".repeat(3000));
    for (figure, source, mode) in [
        ("refuse the 3,000-level unary-minus template", crash.as_str(), Mode::Url),
        ("refuse {{ [1] * 100000000 }}", "https://x.test/{{ [1] * 100000000 }}", Mode::Url),
        (
            "refuse a namespace-doubling loop (60 doublings)",
            "{% set ns = namespace(s='aaaaaaaaaaaaaaaa') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            Mode::Text,
        ),
    ] {
        let started = Instant::now();
        for _ in 0..ROUNDS {
            anyhow::ensure!(template::render("t", source, mode, &vars, 2048).is_err(), "{figure}: not refused");
        }
        rows.push(Row::time(AREA, figure, per_call_ms(started, ROUNDS), floor, "floor: a one-tag render"));
    }
    Ok(rows)
}

/// `/healthz` while 3 caps' worth of one key's requests hold their bodies open; floor:
/// `/healthz` on the idle server.
async fn health_under_flood() -> anyhow::Result<Vec<Row>> {
    let server = Server::start(&[("LEADPUSH_MAX_CONNECTIONS", "256"), ("LEADPUSH_BODY_TIMEOUT_MS", "60000")])?;
    let http = reqwest::Client::new();
    let tenant = server.tenant(&http).await?;
    let health = format!("{}/healthz", server.base);
    let time_health = || async {
        let started = Instant::now();
        for _ in 0..50 {
            let r = reqwest::Client::new().get(&health).send().await?;
            anyhow::ensure!(r.status() == 200, "healthz answered {}", r.status());
        }
        Ok::<f64, anyhow::Error>(per_call_ms(started, 50))
    };
    let idle = time_health().await?;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/api-requests HTTP/1.1\r\nHost: x\r\nX-Satellyte-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
        tenant.api_key
    );
    let mut flood = Vec::new();
    for _ in 0..768 {
        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else { continue };
        if s.write_all(head.as_bytes()).await.is_ok() {
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let the server read the heads
    let flooded = time_health().await.context("healthz under the flood")?;
    drop(flood);
    Ok(vec![Row::time(
        AREA,
        "/healthz under 768 slow authenticated bodies of one key (cap 256)",
        flooded,
        idle,
        "floor: /healthz on the idle server; each call on a new connection",
    )])
}

/// A call refused by its rate limit (429 with headers); floor: the same route admitted.
async fn rate_limited() -> anyhow::Result<Vec<Row>> {
    let server = Server::start(&[])?;
    let http = reqwest::Client::new();
    let tenant = server.tenant(&http).await?;
    let url = format!("{}/api/v1/phone-validator?phone=%2B14155552671", server.base);
    let call = |expect: u16| {
        let (http, url, key) = (http.clone(), url.clone(), tenant.api_key.clone());
        async move {
            let started = Instant::now();
            for _ in 0..ROUNDS {
                let r = http.get(&url).header("x-satellyte-api-key", &key).send().await?;
                anyhow::ensure!(r.status() == expect, "answered {}, not {expect}", r.status());
                r.bytes().await?;
            }
            Ok::<f64, anyhow::Error>(per_call_ms(started, ROUNDS))
        }
    };
    // Admitted: limits far above the rounds; then refused: one a minute, used up.
    set_search_limits(&server, &["search.per_second=100000", "search.per_minute=100000", "search.per_month=1000000"])?;
    let admitted = call(200).await?;
    let other = Server::start(&[])?;
    let other_tenant = other.tenant(&http).await?;
    set_search_limits(&other, &["search.per_second=1", "search.per_minute=1"])?;
    let url = format!("{}/api/v1/phone-validator?phone=%2B14155552671", other.base);
    http.get(&url).header("x-satellyte-api-key", &other_tenant.api_key).send().await?;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let r = http.get(&url).header("x-satellyte-api-key", &other_tenant.api_key).send().await?;
        anyhow::ensure!(r.status() == 429, "answered {}, not 429", r.status());
        r.bytes().await?;
    }
    let refused = per_call_ms(started, ROUNDS);
    Ok(vec![Row::time(
        AREA,
        "phone-validator call over its rate limit (429)",
        refused,
        admitted,
        "floor: the same call admitted (counted, validated, answered); a refusal this process already counted writes nothing",
    )])
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = bombs()?;
    rows.extend(health_under_flood().await?);
    rows.extend(rate_limited().await?);
    Ok(rows)
}

/// Sets the first workspace's search limits (`key=value` each) through the admin CLI.
fn set_search_limits(server: &Server, limits: &[&str]) -> anyhow::Result<()> {
    let ws = server.admin(&["admin", "workspace", "list"])?;
    let id = ws["data"][0]["id"].as_str().context("workspace id")?.to_owned();
    let mut args = vec!["admin", "workspace", "limits", "--workspace", &id];
    for limit in limits {
        args.extend(["--set", limit]);
    }
    server.admin(&args)?;
    Ok(())
}
