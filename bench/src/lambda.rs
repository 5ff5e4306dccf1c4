//! Lambda figures: the real bootstraps (built for this machine) run through the local
//! Runtime API (`runtime_api`) with DynamoDB and SQS on moto, the SDK clients built at
//! init as on Lambda. Init time and memory sit beside `lambda-floor` (the same runtime
//! and clients doing no work); warm invokes beside the moto round trips the work needs;
//! sizes beside the floor's. Also `leadpush-bench invoke`, behind `make invoke`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use leadpush::repo::leads;
use serde_json::{Value, json};

use crate::aws_counter::{CallCounter, MotoContext, moto_context};
use crate::runtime_api::{Instance, Outcome};
use crate::server::{ingest_body, median};
use crate::table::Row;

const AREA: &str = "lambda";
/// Cold starts per function (each a new process) and warm invokes per figure.
const STARTS: usize = 5;
const INVOKES: usize = 30;

/// A table and queue on moto with one workspace, for the sample events' placeholders.
pub struct Fixture {
    pub env: Vec<(String, String)>,
    /// What the sample events' placeholders name.
    pub seeded: leadpush::testing::samples::Seeded,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_url: String,
}

impl Fixture {
    pub async fn new(moto: &str, name: &str) -> anyhow::Result<Fixture> {
        let MotoContext { ctx, dynamo, sqs, table, queue_url } =
            moto_context(moto, &CallCounter::default(), name, &[]).await?;
        let seeded = leadpush::testing::samples::seed(&*ctx.store, "Lambda").await?;
        let env = [
            ("AWS_ENDPOINT_URL", moto),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("AWS_SESSION_TOKEN", "bench"),
            ("LEADPUSH_STORE", "dynamodb"),
            ("LEADPUSH_TABLE", &table),
            ("LEADPUSH_QUEUE_URL", &queue_url),
            ("LEADPUSH_LOG", "info"),
        ];
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        // `make invoke` passes the caller's own settings (log level, retry schedules ...).
        env.extend(std::env::vars().filter(|(k, _)| k.starts_with("LEADPUSH_") && !k.starts_with("LEADPUSH_TEST")));
        Ok(Fixture { env, seeded, dynamo, sqs, table, queue_url })
    }

    /// A sample event from `events/` with its placeholders filled.
    pub fn event(&self, path: &Path) -> anyhow::Result<Value> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let text = self.seeded.fill(&text);
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    }
}

/// The directory holding this binary and, built beside it, the function bootstraps.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("the bench binary has no directory")?.to_owned())
}

fn bootstrap(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    anyhow::ensure!(path.exists(), "{} is missing: `make bench` builds it", path.display());
    Ok(path)
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Checks an API Gateway answer and returns its parsed body.
fn http_answer(outcome: Outcome, want: u16) -> anyhow::Result<Value> {
    let response = match outcome {
        Outcome::Response(v) => v,
        Outcome::Error(e) => anyhow::bail!("the function reported an error: {e}"),
    };
    let status = response["statusCode"].as_u64().unwrap_or_default();
    let body: Value = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    anyhow::ensure!(status == u64::from(want), "answered {status}: {body}");
    Ok(body)
}

struct Cold {
    init_ms: f64,
    rss_mb: f64,
}

/// Starts `name` `STARTS` times; the median init time and RSS after init.
async fn cold(name: &str, fixture: &Fixture, logs: &Path) -> anyhow::Result<Cold> {
    let path = bootstrap(name)?;
    let (mut inits, mut rss) = (Vec::new(), Vec::new());
    for i in 0..STARTS {
        let instance = Instance::start(&path, name, &fixture.env, &logs.join(format!("{name}-{i}.log"))).await?;
        inits.push(instance.init.as_secs_f64() * 1000.0);
        rss.push(instance.rss_mb()?);
    }
    Ok(Cold { init_ms: median(&mut inits), rss_mb: median(&mut rss) })
}

/// Stripped size of a bootstrap, in MB (a stripped copy, as `make build` ships it).
fn stripped_mb(path: &Path, dir: &Path) -> anyhow::Result<f64> {
    let copy = dir.join(format!("{}.stripped", path.file_name().and_then(|n| n.to_str()).unwrap_or("bin")));
    let status = std::process::Command::new("strip").arg("-o").arg(&copy).arg(path).status()?;
    anyhow::ensure!(status.success(), "strip failed on {}", path.display());
    Ok(std::fs::metadata(&copy)?.len() as f64 / 1_048_576.0)
}

/// The shipped arm64 bootstraps, when `make build` has made them.
fn arm64_sizes() -> Vec<(String, f64)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lambda");
    let mut sizes: Vec<(String, f64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let size = std::fs::metadata(e.path().join("bootstrap")).ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), size as f64 / 1_048_576.0))
        })
        .collect();
    sizes.sort_by(|a, b| b.1.total_cmp(&a.1));
    sizes
}

pub async fn run(moto: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let fixture = Fixture::new(moto, "bench-lambda").await?;
    let logs = tempfile::tempdir()?;

    let floor = cold("lambda-floor", &fixture, logs.path()).await?;
    for name in ["leads", "ingest-leads"] {
        let ours = cold(name, &fixture, logs.path()).await?;
        rows.push(Row::time(
            AREA,
            format!("init: process start -> first /next poll ({name})"),
            ours.init_ms,
            floor.init_ms,
            format!("median of {STARTS} starts; floor: lambda-floor (same runtime + SDK clients, no work)"),
        ));
        rows.push(Row::count(
            AREA,
            format!("RSS after init ({name})"),
            ours.rss_mb,
            floor.rss_mb,
            "MB",
            "VmRSS at the first poll; floor: lambda-floor",
        ));
    }

    // Warm invokes: one lead read, one 100-lead ingest, each beside the moto calls it needs.
    let mut leads_fn =
        Instance::start(&bootstrap("leads")?, "leads", &fixture.env, &logs.path().join("leads.log")).await?;
    let read = fixture.event(&events_dir().join("leads.get.json"))?;
    http_answer(leads_fn.invoke(&read).await?, 200)?;
    let mut ours = Vec::new();
    for _ in 0..INVOKES {
        let started = Instant::now();
        let body = http_answer(leads_fn.invoke(&read).await?, 200)?;
        ours.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(body["data"]["id"] == json!(fixture.seeded.lead_id), "read the wrong lead: {body}");
    }
    let mut floor_ms = Vec::new();
    let (pk, sk) = lead_key(&fixture).await?;
    for _ in 0..INVOKES {
        let started = Instant::now();
        let item = fixture
            .dynamo
            .get_item()
            .table_name(&fixture.table)
            .key("pk", pk.clone())
            .key("sk", sk.clone())
            .send()
            .await?;
        floor_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(item.item.is_some(), "floor read found no lead");
    }
    rows.push(Row::time(
        AREA,
        "warm invoke: GET one lead (leads fn, DynamoDB on moto)",
        median(&mut ours),
        median(&mut floor_ms),
        format!("median of {INVOKES}; floor: one GetItem round trip to moto"),
    ));
    drop(leads_fn);

    let mut ingest_fn =
        Instance::start(&bootstrap("ingest-leads")?, "ingest-leads", &fixture.env, &logs.path().join("ingest.log"))
            .await?;
    let template = fixture.event(&events_dir().join("ingest-leads.ingest.json"))?;
    let campaign = fixture.seeded.campaign_id.clone();
    let mut ours = Vec::new();
    for i in 0..=INVOKES {
        let mut event = template.clone();
        event["body"] = Value::String(String::from_utf8(ingest_body(&campaign, &format!("lambda-{i}"), 100))?);
        let started = Instant::now();
        let body = http_answer(ingest_fn.invoke(&event).await?, 202)?;
        // The first invoke warms connections, as the floor's first call does below.
        if i > 0 {
            ours.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        anyhow::ensure!(body["data"]["accepted"] == json!(100), "ingest did not accept 100 leads: {body}");
    }
    drop(ingest_fn);
    let mut floor_ms = Vec::new();
    for i in 0..=INVOKES {
        let started = Instant::now();
        floor_ingest(&fixture, i).await?;
        if i > 0 {
            floor_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    rows.push(Row::time(
        AREA,
        "warm invoke: POST a 100-lead ingest (ingest-leads fn, moto)",
        median(&mut ours),
        median(&mut floor_ms),
        format!("median of {INVOKES}; floor: the same 8 calls to moto with the bare SDK (2 of them transactions)"),
    ));

    // Sizes: this machine's optimised builds, stripped, beside the floor's.
    let floor_mb = stripped_mb(&bootstrap("lambda-floor")?, logs.path())?;
    for name in ["leads", "ingest-leads"] {
        rows.push(Row::count(
            AREA,
            format!("bootstrap size, {} perf build, stripped ({name})", std::env::consts::ARCH),
            stripped_mb(&bootstrap(name)?, logs.path())?,
            floor_mb,
            "MB",
            "floor: lambda-floor, same profile",
        ));
    }
    // The shipped arm64 release bootstraps, when `make build` has run (it builds for 15+ min).
    match arm64_sizes().first() {
        Some((name, mb)) => rows.push(Row::count(
            AREA,
            format!("bootstrap size, arm64 release, largest ({name})"),
            *mb,
            6.0,
            "MB",
            "from target/lambda (make build); floor column: the 6 MB target",
        )),
        None => eprintln!("bench: no target/lambda/*/bootstrap; run `make build` for the arm64 size row"),
    }
    Ok(rows)
}

/// The stored lead's key, found as the store writes it (the floor reads it directly).
async fn lead_key(fixture: &Fixture) -> anyhow::Result<(AttributeValue, AttributeValue)> {
    let key = leads::key(&fixture.seeded.workspace_id, &fixture.seeded.lead_id);
    Ok((AttributeValue::S(key.pk), AttributeValue::S(key.sk)))
}

/// The floor of a 100-lead ingest: the calls our ingest makes (token read, campaign read,
/// claim + 25 leads in a transaction, 3 batches of 25, one queue message, completion in a
/// transaction), made with the bare SDK on items of the same size, without our code.
async fn floor_ingest(fixture: &Fixture, round: usize) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem};
    let (dynamo, table) = (&fixture.dynamo, fixture.table.as_str());
    let s = |v: String| AttributeValue::S(v);
    let key = |pk: String| [("pk".to_owned(), s(pk)), ("sk".to_owned(), s("F".into()))].into_iter().collect();
    dynamo.get_item().table_name(table).set_key(Some(key(format!("FLOOR#TOKEN#{round}")))).send().await?;
    let campaign = KeysAndAttributes::builder().keys(key(format!("FLOOR#CMP#{round}"))).build()?;
    dynamo.batch_get_item().request_items(table, campaign).send().await?;
    let body: Value = serde_json::from_slice(&ingest_body("cmp_floor", "floor", 100))?;
    let leads = body["leads"].as_array().cloned().unwrap_or_default();
    let lead_item = |i: usize, lead: &Value| {
        let mut item = key(format!("FLOOR#{round}#{i}"));
        item.insert("data".to_owned(), s(lead.to_string()));
        item
    };
    let put = |item| -> anyhow::Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder().put(Put::builder().table_name(table).set_item(Some(item)).build()?).build())
    };
    let (first, rest) = leads.split_at(25);
    let mut claim = vec![put(key(format!("FLOOR#IDEM#{round}")))?];
    for (i, lead) in first.iter().enumerate() {
        claim.push(put(lead_item(i, lead))?);
    }
    dynamo.transact_write_items().set_transact_items(Some(claim)).send().await?;
    for (chunk_no, chunk) in rest.chunks(25).enumerate() {
        let writes = chunk
            .iter()
            .enumerate()
            .map(|(i, lead)| {
                let put = PutRequest::builder().set_item(Some(lead_item(25 + chunk_no * 25 + i, lead))).build()?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = dynamo.batch_write_item().request_items(table, writes).send().await?;
        anyhow::ensure!(out.unprocessed_items.is_none_or(|u| u.is_empty()), "moto left items unprocessed");
    }
    fixture.sqs.send_message().queue_url(&fixture.queue_url).message_body("{}").send().await?;
    let completion = vec![put(key(format!("FLOOR#IDEM#{round}")))?, put(key(format!("FLOOR#COUNT#{round}")))?];
    dynamo.transact_write_items().set_transact_items(Some(completion)).send().await?;
    Ok(())
}

/// `make invoke FN=<function> EVENT=<file>`: one sample event through the real bootstrap.
pub async fn invoke(moto: &str, function: &str, event_file: &Path) -> anyhow::Result<()> {
    let fixture = Fixture::new(moto, "invoke").await?;
    let event = fixture.event(event_file)?;
    let logs = tempfile::tempdir()?;
    let log = logs.path().join("function.log");
    let mut instance = Instance::start(&bootstrap(function)?, function, &fixture.env, &log).await?;
    eprintln!("{function}: init {:.1} ms, RSS {:.1} MB", instance.init.as_secs_f64() * 1000.0, instance.rss_mb()?);
    let started = Instant::now();
    let outcome = instance.invoke(&event).await?;
    eprintln!("{function}: invoke {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    drop(instance);
    eprintln!("--- function log ---\n{}", std::fs::read_to_string(&log).unwrap_or_default().trim_end());
    let printed = match outcome {
        // Show an API Gateway answer's JSON body parsed, for reading.
        Outcome::Response(mut v) => {
            if let Some(body) = v["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
                v["body"] = body;
            }
            v
        }
        Outcome::Error(e) => {
            println!("{}", serde_json::to_string_pretty(&e)?);
            anyhow::bail!("{function} reported an error");
        }
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(())
}
