//! Finder figures, in-process on the embedded store with the local sites, DNS and
//! SMTP servers of `scripts/finder_sites.py` (SMTP probe off, so figures are our own work):
//!
//! - email-finder calls/s answered from workspace data, beside the store's own lookup of
//!   one lead by email (one index query + one read);
//! - a domain search page of 10 on a domain with 10,000 known leads, beside reading one page
//!   of 10 leads (the least a page costs);
//! - the wall time of a crawl of the local site, beside GETting the same pages with a bare
//!   client (no robots.txt, no parsing).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use leadpush::config::Config;
use leadpush::context::AppContext;
use leadpush::domain::lead::{Lead, LeadFields};
use leadpush::enrich::find::{crawl, finders, names::MailName, web};
use leadpush::enrich::results::Params;
use leadpush::repo::{lead_lookup, leads};
use leadpush::store::Store;
use leadpush::support::time::Timestamp;

use crate::table::Row;

const AREA: &str = "finders";
const WORKSPACE: &str = "ws_bench";
const KNOWN: usize = 10_000;
const CALLS: usize = 2_000;

/// Lead `i` at `domain`, its address following `{f}{last}` (`First7 Last7` -> `flast7@`).
fn lead(i: usize, domain: &str) -> Lead {
    let fields = LeadFields {
        first_name: Some(format!("First{i}")),
        last_name: Some(format!("Last{i}")),
        email: Some(format!("flast{i}@{domain}")),
        position: Some(["CEO", "Software Engineer", "Sales Manager", "Marketing Intern"][i % 4].into()),
        company: Some("Bench Co".into()),
        ..LeadFields::default()
    };
    Lead::new(
        format!("req_BENCH{:06}_{:04}", i / 1000, i % 1000 + 1),
        "cmp_bench".into(),
        None,
        fields,
        Timestamp::now(),
    )
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut child = Command::new(format!("{root}/.venv/bin/python"))
        .arg(format!("{root}/scripts/finder_sites.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("start scripts/finder_sites.py (make .venv/.installed)")?;
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    stdout.read_line(&mut line)?;
    let ports: serde_json::Value = serde_json::from_str(&line).context("finder_sites.py ports")?;
    let dir = tempfile::tempdir()?;
    let http_port = ports["http_port"].to_string();
    let vars = [
        ("LEADPUSH_DATA_DIR", dir.path().display().to_string()),
        ("LEADPUSH_ALLOW_PRIVATE_TARGETS", "1".into()),
        ("LEADPUSH_DNS_SERVERS", ports["dns"].as_str().unwrap_or_default().to_owned()),
        ("LEADPUSH_SMTP_PROBE", "off".into()),
        ("LEADPUSH_CRAWL_HTTP_PORT", http_port.clone()),
    ];
    let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))?;
    let ctx = AppContext::from_config(config).await?;
    let store: Arc<dyn Store> = ctx.store.clone();

    // 10,000 leads at bench.test following `{f}{last}`.
    let known: Vec<Lead> = (0..KNOWN).map(|i| lead(i, "bench.test")).collect();
    leads::put_many(&*store, WORKSPACE, &known).await?;

    // Crawl wall time (fresh, not from cache), beside a bare client fetching the same pages.
    let outbound = web::client(&ctx)?;
    let limits = web::limits(&ctx);
    let mut crawl_ms = f64::MAX;
    let mut pages = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let site = crawl::crawl_site(&outbound, "bench.test", &limits).await;
        crawl_ms = crawl_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(site.emails.len() == 20 && site.complete, "bench.test crawl: {site:?}");
        pages = site.visits.iter().map(|v| v.url.replace("bench.test", "127.0.0.1")).collect();
    }
    let bare = reqwest::Client::new();
    let mut floor_ms = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        for url in &pages {
            bare.get(url).header("host", format!("bench.test:{http_port}")).send().await?.bytes().await?;
        }
        floor_ms = floor_ms.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut rows = vec![Row::time(
        AREA,
        format!("crawl of the local site ({} requests, robots.txt included)", pages.len()),
        crawl_ms,
        floor_ms,
        "best of 5; floor: the same GETs, bare client, no robots/parse",
    )];
    // Warm the crawl cache and the MX cache, as a second call would find them.
    web::site(&ctx, WORKSPACE, "bench.test").await?;

    // Email finder from workspace data.
    let started = Instant::now();
    for i in 0..CALLS {
        let n = (i * 7919) % KNOWN;
        let name = MailName::new(&format!("First{n}"), &format!("Last{n}")).context("name")?;
        let found = finders::find_email(&ctx, WORKSPACE, &name, "bench.test", None).await?;
        anyhow::ensure!(found.method == "workspace_lead", "call {i}: {found:?}");
    }
    let ours = CALLS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..CALLS {
        let n = (i * 7919) % KNOWN;
        let found = lead_lookup::leads_with_email(&*store, WORKSPACE, &format!("flast{n}@bench.test")).await?;
        anyhow::ensure!(found.len() == 1);
    }
    let floor = CALLS as f64 / started.elapsed().as_secs_f64();
    rows.push(Row::rate(
        AREA,
        "email-finder answered from workspace data",
        ours,
        floor,
        "calls/s",
        "domain of 10,000 leads; floor: one lead by email (index + read)",
    ));

    // Domain search: a page of 10 of 10,000, beside reading one page of 10 leads.
    let params = |offset: usize| -> Params {
        Params::from([
            ("domain".to_owned(), "bench.test".to_owned()),
            ("limit".to_owned(), "10".to_owned()),
            ("offset".to_owned(), offset.to_string()),
        ])
    };
    let mut search_ms = f64::MAX;
    for round in 0..5 {
        let started = Instant::now();
        let page = finders::domain_search(&ctx, WORKSPACE, &params(round * 1000)).await?;
        search_ms = search_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(page.data["emails"].as_array().map(Vec::len) == Some(10), "{}", page.data);
        anyhow::ensure!(page.data["meta"]["results"] == KNOWN + 20, "{}", page.data["meta"]);
    }
    let mut page_ms = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let filter = leads::LeadFilter { campaign_id: Some("cmp_bench".into()), status: None };
        let page = leads::list(&*store, WORKSPACE, &filter, 10, None).await?;
        anyhow::ensure!(page.items.len() == 10);
        page_ms = page_ms.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    rows.push(Row::time(
        AREA,
        "domain-search page of 10, domain with 10,000 leads",
        search_ms,
        page_ms,
        "reads the domain's index keys, leads of the page only; floor: one page of 10 leads",
    ));
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(rows)
}
