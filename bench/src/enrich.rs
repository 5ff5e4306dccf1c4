//! Enrichment figures: phone validations and syntax-only email verifications per second
//! in-process, each beside the bare crate call; and a 1000-address bulk verification job
//! through the real server against the local DNS/SMTP servers (`scripts/enrich_fakes.py`),
//! its wall time and DNS/SMTP counts beside the least work the same answers need.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::server::{Server, post_json};
use crate::table::Row;

const AREA: &str = "enrich";
const PHONES: [&str; 6] = ["+44 7400 123456", "(415) 555-2671", "+49 30 901820", "+33 1 42 68 53 00", "12", "hello"];

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn phone_rows() -> Row {
    let us = leadpush::enrich::phone::parse_country("US").ok();
    let util = &*rlibphonenumber::PHONE_NUMBER_UTIL;
    let n = 60_000;
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(leadpush::enrich::phone::validate(PHONES[i % PHONES.len()], us));
    }
    let ours = per_second(n, started.elapsed());
    // Floor: the crate's parse and validity check alone (no formats, errors, country name).
    let started = Instant::now();
    for i in 0..n {
        if let Ok(number) = util.parse(PHONES[i % PHONES.len()], us) {
            std::hint::black_box(util.is_valid_number(&number));
        }
    }
    let floor = per_second(n, started.elapsed());
    Row::rate(
        AREA,
        "phone validations, in-process",
        ours,
        floor,
        "/s",
        "floor: rlibphonenumber parse + is_valid_number only",
    )
}

fn syntax_rows() -> Row {
    let emails: Vec<String> = (0..1000)
        .map(|i| match i % 4 {
            0 => format!("first.last{i}@company{i}.com"),
            1 => format!("info{i}@gmial.com"),
            2 => format!("x{i}@mailinator.com"),
            _ => format!("not an address {i}"),
        })
        .collect();
    let n = 100_000;
    let now = leadpush::support::time::Timestamp::now();
    let started = Instant::now();
    for i in 0..n {
        let checked = leadpush::enrich::verify::offline(&emails[i % emails.len()]);
        let verdict = leadpush::enrich::verify::decide(
            &checked,
            &leadpush::enrich::verify::MxOutcome::NotChecked,
            &leadpush::enrich::verify::SmtpOutcome::NotChecked("syntax only".into()),
            "off",
            now,
        );
        std::hint::black_box(verdict);
    }
    let ours = per_second(n, started.elapsed());
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(email_address::EmailAddress::parse_with_options(
            &emails[i % emails.len()],
            email_address::Options::default().with_required_tld(),
        ))
        .ok();
    }
    let floor = per_second(n, started.elapsed());
    Row::rate(
        AREA,
        "email verifications, syntax and lists only",
        ours,
        floor,
        "/s",
        "ours: syntax, gibberish, disposable, webmail, role, typo, verdict; floor: email_address parse only",
    )
}

struct Fakes {
    _child: std::process::Child,
    info: Value,
}

impl Fakes {
    fn start() -> anyhow::Result<Fakes> {
        let python = std::env::var("LEADPUSH_TEST_PYTHON").context("LEADPUSH_TEST_PYTHON (run `make bench`)")?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/enrich_fakes.py");
        let mut child = Command::new(python).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        Ok(Fakes { info: serde_json::from_str(&line).context("the DNS/SMTP fakes did not start")?, _child: child })
    }

    async fn stats(&self) -> anyhow::Result<Value> {
        let url = format!("{}/stats", self.info["control"].as_str().unwrap_or_default());
        Ok(serde_json::from_str(&reqwest::get(url).await?.text().await?)?)
    }

    async fn reset(&self) -> anyhow::Result<()> {
        reqwest::Client::new()
            .post(format!("{}/reset", self.info["control"].as_str().unwrap_or_default()))
            .send()
            .await?;
        Ok(())
    }
}

fn sum(v: &Value) -> f64 {
    v.as_object().map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum())
}

/// The floor of the bulk job: one bare SMTP session per domain asking every address, no
/// store, no queue (the MX host's address is known).
async fn bare_sessions(port: u16, domains: &[String], emails: &[String]) -> anyhow::Result<()> {
    for domain in domains {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut stream = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        let mut reply = async |stream: &mut tokio::io::BufReader<tokio::net::TcpStream>| -> anyhow::Result<()> {
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(());
                }
            }
        };
        reply(&mut stream).await?;
        for command in ["EHLO bench.test".to_owned(), "MAIL FROM:<>".to_owned()] {
            stream.get_mut().write_all(format!("{command}\r\n").as_bytes()).await?;
            reply(&mut stream).await?;
        }
        for (n, email) in emails.iter().filter(|e| e.ends_with(&format!("@{domain}"))).enumerate() {
            if n > 0 && n % 50 == 0 {
                for command in ["RSET", "MAIL FROM:<>"] {
                    stream.get_mut().write_all(format!("{command}\r\n").as_bytes()).await?;
                    reply(&mut stream).await?;
                }
            }
            stream.get_mut().write_all(format!("RCPT TO:<{email}>\r\n").as_bytes()).await?;
            reply(&mut stream).await?;
        }
        stream.get_mut().write_all(b"QUIT\r\n").await?;
    }
    Ok(())
}

async fn bulk_rows() -> anyhow::Result<Vec<Row>> {
    let fakes = Fakes::start()?;
    let port = fakes.info["smtp_port"].as_u64().context("smtp port")? as u16;
    let dns = fakes.info["dns"].as_str().context("dns")?.to_owned();
    let port_text = port.to_string();
    let server = Server::start(&[
        ("LEADPUSH_DNS_SERVERS", dns.as_str()),
        ("LEADPUSH_SMTP_PORT", port_text.as_str()),
        ("LEADPUSH_SMTP_PROBE", "direct"),
        ("LEADPUSH_DNS_TIMEOUT_MS", "10000"),
    ])?;
    let http = reqwest::Client::new();
    let tenant = server.tenant(&http).await?;
    let domains: Vec<String> = (1..=5).map(|n| format!("bench{n}.bulk.test")).collect();
    let emails: Vec<String> =
        (0..1000)
            .map(|i| {
                if i % 10 == 9 {
                    format!("nobody{i}@{}", domains[i % 5])
                } else {
                    format!("user{i}@{}", domains[i % 5])
                }
            })
            .collect();
    fakes.reset().await?;
    let started = Instant::now();
    let url = format!("{}/api/v1/email-verifier/bulk", server.base);
    let (status, answer) = post_json(&http, &url, &tenant.api_key, &json!({"emails": emails})).await?;
    anyhow::ensure!(status == 202, "bulk answered {status}: {answer}");
    let job = answer["data"]["id"].as_str().context("job id")?.to_owned();
    let mut done = false;
    for _ in 0..6000 {
        let r = http
            .get(format!("{}/api/v1/email-verifier/bulk/{job}?limit=1", server.base))
            .header("X-Satellyte-API-Key", &tenant.api_key)
            .send()
            .await?;
        let body: Value = serde_json::from_str(&r.text().await?)?;
        if body["data"]["status"] == "completed" {
            anyhow::ensure!(body["data"]["progress"]["valid"] == 900, "unexpected verdicts: {body}");
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(done, "the bulk job did not complete within 2 minutes");
    let ours_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = fakes.stats().await?;
    let (dns_queries, smtp) = (stats["dns_queries"].as_f64().unwrap_or(0.0), sum(&stats["smtp_connections"]));
    fakes.reset().await?;
    let started = Instant::now();
    bare_sessions(port, &domains, &emails).await?;
    let floor_ms = started.elapsed().as_secs_f64() * 1000.0;
    let floor_smtp = sum(&fakes.stats().await?["smtp_connections"]);
    Ok(vec![
        Row::time(
            AREA,
            "bulk job, 1000 addresses at 5 local domains",
            ours_ms,
            floor_ms,
            "POST to completed; floor: 5 bare SMTP sessions asking the same 1000 RCPTs",
        ),
        Row::count(AREA, "DNS queries for that job", dns_queries, 10.0, "", "floor: one MX and one A per domain"),
        Row::count(AREA, "SMTP connections for that job", smtp, floor_smtp, "", "floor: one session per domain"),
    ])
}

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = vec![phone_rows(), syntax_rows()];
    rows.extend(bulk_rows().await?);
    Ok(rows)
}
