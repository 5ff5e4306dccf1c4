//! Bulk verification jobs: up to [`MAX_ADDRESSES`] addresses, split into chunks of
//! [`CHUNK`] that run as dispatcher tasks. Within a chunk, addresses are grouped by domain:
//! one MX lookup and one SMTP session per domain (catch-all and MX cached across chunks,
//! per-host connection bounds in the engine).
//!
//! One partition per job, `W#{ws}#VJOB#{id}`: the job (`VJOB`), its inputs
//! (`IN#{chunk}`), one result per address (`OUT#{index}`, in input order), the progress
//! counters (`PROGRESS`), a marker per finished chunk (`DONE#{chunk}`, written with the
//! counters in one transaction so a redelivered task counts once) and `FINAL`, which
//! makes completion (and its callbacks) happen exactly once.
//!
//! A chunk keeps to the invocation's deadline (`support::deadline`): each domain's results
//! are stored as soon as they are known, no domain starts without time for its first steps,
//! an SMTP session stops asking before the deadline, and what is left goes to a new task
//! for the same chunk. The chunk's counters are written once, from the stored results,
//! when every address has one.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EnrichError;
use super::verify::{self, Verification};
use crate::context::AppContext;
use crate::queue::Task;
use crate::repo::{keys, metering, update_versioned};
use crate::store::{Condition, Cursor, Item, Key, Query, StoreError, WriteOp};
use crate::support::deadline;
use crate::support::time::Timestamp;

pub const MAX_ADDRESSES: usize = 10_000;
/// Addresses per task (and per callback page).
pub const CHUNK: usize = 100;
/// Domains of one chunk verified at once.
const DOMAINS_AT_ONCE: usize = 8;
/// Jobs and their results are kept this long.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
pub const ID_PREFIX: &str = "vjob";
const KIND: &str = "VJOB";
pub const CALLBACK_EVENT: &str = "email_verifier.bulk";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub total: usize,
    pub chunks: usize,
    pub completed: bool,
    pub webhook_url: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// One address's result, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    /// Position in the submitted list (0-based).
    pub index: usize,
    pub verification: Verification,
}

/// Counts by status so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub processed: u64,
    pub valid: u64,
    pub invalid: u64,
    pub accept_all: u64,
    pub webmail: u64,
    pub disposable: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub total: usize,
    pub progress: Progress,
    pub webhook_url: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// This page of results, in input order.
    pub results: Vec<JobResult>,
    /// Pass as `cursor` for the next page of results; null on the last.
    pub next_cursor: Option<String>,
}

fn pk(workspace_id: &str, job_id: &str) -> String {
    keys::item_pk(workspace_id, KIND, job_id)
}

fn job_key(workspace_id: &str, job_id: &str) -> Key {
    Key::new(pk(workspace_id, job_id), KIND)
}

fn job_item(workspace_id: &str, job: &Job) -> Result<Item, StoreError> {
    Ok(Item::new(job_key(workspace_id, &job.id), job)?.with_expiry(job.created_at.plus(RETENTION).unix_seconds()))
}

fn child(workspace_id: &str, job: &Job, sk: String, value: &impl Serialize) -> Result<Item, StoreError> {
    Ok(Item::new(Key::new(pk(workspace_id, &job.id), sk), value)?
        .with_expiry(job.created_at.plus(RETENTION).unix_seconds()))
}

/// One chunk's addresses with their positions in the submitted list.
#[derive(Debug, Serialize, Deserialize)]
struct Input {
    indexes: Vec<usize>,
    addresses: Vec<String>,
}

/// Checks the submitted list: 1 to [`MAX_ADDRESSES`] non-empty strings of at most 254
/// characters (anything else is a 400 naming the entry; bad syntax is a result, not an error).
pub fn validate_addresses(addresses: &[String]) -> Result<(), EnrichError> {
    if addresses.is_empty() || addresses.len() > MAX_ADDRESSES {
        return Err(EnrichError::invalid(
            "emails",
            format!("must hold 1 to {MAX_ADDRESSES} addresses, got {}", addresses.len()),
        ));
    }
    for (i, address) in addresses.iter().enumerate() {
        let chars = address.trim().chars().count();
        if chars == 0 || chars > 254 {
            return Err(EnrichError::invalid(
                format!("emails[{i}]"),
                "must be a non-empty string of at most 254 characters",
            ));
        }
    }
    Ok(())
}

/// Stores the job and queues one task per chunk.
pub async fn create(
    ctx: &AppContext,
    workspace_id: &str,
    addresses: Vec<String>,
    webhook_url: Option<String>,
) -> Result<Job, EnrichError> {
    validate_addresses(&addresses)?;
    let now = ctx.now();
    let day = now.unix_seconds().div_euclid(86_400);
    let cap = ctx.meter.policy(&*ctx.store, workspace_id, now.unix_seconds()).await?.max_queued_bulk_addresses;
    let adding = addresses.len() as i64;
    let today = metering::add_queued(&*ctx.store, workspace_id, day, adding).await?;
    let queued = today + metering::queued(&*ctx.store, workspace_id, day - 1).await?.max(0);
    if u64::try_from(queued).unwrap_or(0) > cap {
        metering::add_queued(&*ctx.store, workspace_id, day, -adding).await?;
        return Err(EnrichError::BulkQueueFull {
            queued: u64::try_from(queued - adding).unwrap_or(0),
            adding: adding as u64,
            cap,
        });
    }
    let job = Job {
        id: crate::support::ids::new_id(ID_PREFIX),
        total: addresses.len(),
        chunks: addresses.len().div_ceil(CHUNK),
        completed: false,
        webhook_url,
        created_at: now,
        completed_at: None,
    };
    // Chunks follow the domains (sorted), so a chunk holds one or two domains and each
    // domain is probed over as few SMTP sessions as possible.
    let mut order: Vec<(String, usize)> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| (a.trim().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default(), i))
        .collect();
    order.sort();
    let mut items = Vec::with_capacity(job.chunks);
    for (n, chunk) in order.chunks(CHUNK).enumerate() {
        let input = Input {
            indexes: chunk.iter().map(|(_, i)| *i).collect(),
            addresses: chunk.iter().map(|(_, i)| addresses[*i].trim().to_owned()).collect(),
        };
        items.push(child(workspace_id, &job, format!("IN#{n:04}"), &input)?);
    }
    ctx.store.batch_put(items).await?;
    ctx.store.put(job_item(workspace_id, &job)?, Condition::NotExists).await?;
    let tasks = (0..job.chunks)
        .map(|chunk| {
            Task::VerifyChunk { workspace_id: workspace_id.to_owned(), job_id: job.id.clone(), chunk }.message()
        })
        .collect();
    ctx.queue.send(tasks).await?;
    tracing::info!(workspace_id, job_id = job.id, total = job.total, chunks = job.chunks, "bulk verification queued");
    Ok(job)
}

pub async fn get(ctx: &AppContext, workspace_id: &str, job_id: &str) -> Result<Option<Job>, StoreError> {
    if !crate::support::ids::has_prefix(job_id, ID_PREFIX) {
        return Ok(None);
    }
    ctx.store.get(&job_key(workspace_id, job_id)).await?.map(|i| i.parse()).transpose()
}

/// The job's counts, the chunks done and the chunks started.
async fn progress(ctx: &AppContext, workspace_id: &str, job_id: &str) -> Result<(Progress, u64, u64), StoreError> {
    let Some(item) = ctx.store.get(&Key::new(pk(workspace_id, job_id), "PROGRESS")).await? else {
        return Ok((Progress::default(), 0, 0));
    };
    let n = |name: &str| item.counter(name).max(0) as u64;
    let progress = Progress {
        processed: n("processed"),
        valid: n("valid"),
        invalid: n("invalid"),
        accept_all: n("accept_all"),
        webmail: n("webmail"),
        disposable: n("disposable"),
        unknown: n("unknown"),
    };
    Ok((progress, n("chunks_done"), n("chunks_started")))
}

/// A page of results (in input order) with the job's progress.
pub async fn view(
    ctx: &AppContext,
    workspace_id: &str,
    job: Job,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<JobView, StoreError> {
    let (progress, _, started) = progress(ctx, workspace_id, &job.id).await?;
    let page =
        ctx.store.query(&Query::table(pk(workspace_id, &job.id)).prefix("OUT#").limit(limit).after(cursor)).await?;
    let results = page.items.iter().map(Item::parse).collect::<Result<Vec<JobResult>, _>>()?;
    let status = if job.completed {
        JobStatus::Completed
    } else if progress.processed > 0 || started > 0 {
        JobStatus::Running
    } else {
        JobStatus::Queued
    };
    Ok(JobView {
        id: job.id,
        status,
        total: job.total,
        progress,
        webhook_url: job.webhook_url,
        created_at: job.created_at,
        completed_at: job.completed_at,
        results,
        next_cursor: page.next.map(|c| c.encode()),
    })
}

fn status_counter(v: &Verification) -> &'static str {
    match v.status {
        verify::Status::Valid => "valid",
        verify::Status::Invalid => "invalid",
        verify::Status::AcceptAll => "accept_all",
        verify::Status::Webmail => "webmail",
        verify::Status::Disposable => "disposable",
        verify::Status::Unknown => "unknown",
    }
}

fn out_key(workspace_id: &str, job_id: &str, index: usize) -> Key {
    Key::new(pk(workspace_id, job_id), format!("OUT#{index:05}"))
}

/// The least time one domain needs to make progress: its MX lookup, a connection and a
/// greeting. A domain is not started with less left before the invocation's deadline.
fn domain_budget(ctx: &AppContext) -> Duration {
    ctx.config.enrich.dns_timeout + ctx.config.enrich.smtp_timeout * 2
}

/// The task of one chunk: verify each domain's addresses and store their results as they
/// come; at the invocation's deadline, queue a continuation for the addresses left (a
/// chunk's results are never all-or-nothing, so a slow chunk still finishes over several
/// invocations). Once every address has its result, count the chunk once and finish the
/// job when it was the last.
pub async fn run_chunk(ctx: &AppContext, workspace_id: &str, job_id: &str, chunk: usize) -> Result<(), EnrichError> {
    let Some(job) = get(ctx, workspace_id, job_id).await? else { return Ok(()) };
    let store = &*ctx.store;
    let done_key = Key::new(pk(workspace_id, job_id), format!("DONE#{chunk:04}"));
    if store.get(&done_key).await?.is_some() {
        return Ok(());
    }
    let Some(input) = store.get(&Key::new(pk(workspace_id, job_id), format!("IN#{chunk:04}"))).await? else {
        return Ok(());
    };
    let input: Input = input.parse()?;
    // Results an earlier run of this chunk stored before its deadline are not redone.
    let keys: Vec<Key> = input.indexes.iter().map(|&i| out_key(workspace_id, job_id, i)).collect();
    let mut stored: Vec<JobResult> = store.batch_get(&keys).await?.iter().map(Item::parse).collect::<Result<_, _>>()?;
    if stored.is_empty() {
        // The job is `running` from its first chunk's start, not its first chunk's end.
        store.increment(&Key::new(pk(workspace_id, job_id), "PROGRESS"), &[("chunks_started".into(), 1)]).await?;
    }
    let done: std::collections::HashSet<usize> = stored.iter().map(|r| r.index).collect();
    let pending: Vec<usize> = (0..input.addresses.len()).filter(|&p| !done.contains(&input.indexes[p])).collect();
    let addresses: Vec<String> = pending.iter().map(|&p| input.addresses[p].clone()).collect();
    let groups = verify::by_domain(&addresses);
    let (job_ref, input_ref, pending_ref) = (&job, &input, &pending);
    let outcomes: Vec<Result<(Vec<JobResult>, bool), EnrichError>> = stream::iter(groups)
        .map(|(domain, members)| async move {
            if !deadline::allows(domain_budget(ctx)) {
                return Ok((Vec::new(), false));
            }
            let (positions, checked): (Vec<usize>, Vec<verify::Offline>) = members.into_iter().unzip();
            // Addresses with bad syntax share the empty domain and need no network.
            let results = verify::verify_domain_within(ctx, workspace_id, &domain, &checked).await;
            let mut finished = Vec::new();
            let mut complete = true;
            for (position, result) in positions.into_iter().zip(results) {
                if result.cut_short {
                    complete = false;
                    continue;
                }
                let index = input_ref.indexes[pending_ref[position]];
                finished.push(JobResult { index, verification: result.verification });
            }
            let items = finished
                .iter()
                .map(|r| child(workspace_id, job_ref, format!("OUT#{:05}", r.index), r))
                .collect::<Result<Vec<_>, _>>()?;
            store.batch_put(items).await?;
            Ok((finished, complete))
        })
        .buffer_unordered(DOMAINS_AT_ONCE)
        .collect()
        .await;
    for outcome in outcomes {
        stored.extend(outcome?.0);
    }
    if stored.len() < input.addresses.len() {
        tracing::info!(
            workspace_id,
            job_id,
            chunk,
            left = input.addresses.len() - stored.len(),
            "chunk continues in a new task: the invocation's deadline is near"
        );
        let next = Task::VerifyChunk { workspace_id: workspace_id.to_owned(), job_id: job_id.to_owned(), chunk };
        ctx.queue.send(vec![next.message()]).await?;
        return Ok(());
    }
    let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
    for result in &stored {
        *counts.entry(status_counter(&result.verification)).or_default() += 1;
    }
    let mut counters: Vec<(String, i64)> = counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    counters.push(("processed".into(), input.addresses.len() as i64));
    counters.push(("chunks_done".into(), 1));
    let marker = child(workspace_id, &job, format!("DONE#{chunk:04}"), &serde_json::json!({ "at": ctx.now() }))?;
    let day = job.created_at.unix_seconds().div_euclid(86_400);
    let ops = vec![
        WriteOp::Put { item: marker, condition: Condition::NotExists },
        WriteOp::Increment { key: Key::new(pk(workspace_id, job_id), "PROGRESS"), counters },
        // These addresses no longer wait (see `metering::add_queued`).
        WriteOp::Increment {
            key: metering::queued_key(workspace_id, day),
            counters: vec![("n".into(), -(input.addresses.len() as i64))],
        },
    ];
    match store.transact_write(ops).await {
        Ok(()) => {}
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => return Ok(()), // counted already
        Err(e) => return Err(e.into()),
    }
    let (_, chunks_done, _) = progress(ctx, workspace_id, job_id).await?;
    if chunks_done as usize >= job.chunks {
        finish(ctx, workspace_id, job).await?;
    }
    Ok(())
}

/// Marks the job completed and sends its results to `webhook_url`, exactly once.
async fn finish(ctx: &AppContext, workspace_id: &str, job: Job) -> Result<(), EnrichError> {
    let marker = child(workspace_id, &job, "FINAL".into(), &serde_json::json!({ "at": ctx.now() }))?;
    match ctx.store.put(marker, Condition::NotExists).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let now = ctx.now();
    let job = update_versioned(
        &*ctx.store,
        &job_key(workspace_id, &job.id),
        |j: &mut Job| {
            j.completed = true;
            j.completed_at = Some(now);
            Ok::<(), ()>(())
        },
        |j| job_item(workspace_id, j),
    )
    .await
    .map_err(|e| EnrichError::Other(format!("completing job: {e}")))?;
    tracing::info!(workspace_id, job_id = job.id, total = job.total, "bulk verification completed");
    let Some(url) = job.webhook_url.clone() else { return Ok(()) };
    // One callback per page of results: each delivery stays far below the item size limit.
    let pages = job.chunks;
    let mut cursor = None;
    for page_number in 1..=pages {
        let view = view(ctx, workspace_id, job.clone(), CHUNK, cursor).await?;
        let data = serde_json::json!({
            "id": view.id,
            "status": view.status,
            "total": view.total,
            "progress": view.progress,
            "page": page_number,
            "pages": pages,
            "results": view.results,
        });
        crate::webhooks::queue_callback(ctx, workspace_id, &url, CALLBACK_EVENT, &data).await?;
        let Some(next) = view.next_cursor else { break };
        cursor = Some(Cursor::decode(&next)?);
    }
    Ok(())
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::testing::mail::{dns_server, mail_context, smtp_server};

    /// Each RCPT takes 150 ms and each invocation has 2 s, so a chunk of 40 addresses at two
    /// domains cannot be verified in one. As on Lambda, a task still running at its deadline
    /// is abandoned (the dispatcher's backstop): the job must still complete, over
    /// continuations, with each address asked once and its result stored once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_chunk_finishes_across_invocations_with_each_result_stored_once() {
        let dns = dns_server("slow.test").await;
        let (port, log) = smtp_server(Duration::from_millis(150), |address, _| {
            if address.starts_with("user") { "250 2.1.5 OK" } else { "550 5.1.1 no such user" }.to_owned()
        })
        .await;
        let (ctx, _dir) =
            mail_context(dns, port, &[("LEADPUSH_SMTP_TIMEOUT_MS", "400"), ("LEADPUSH_DNS_TIMEOUT_MS", "500")]);
        let emails: Vec<String> =
            (0..40).map(|n| format!("user{n}@{}.slow.test", if n % 2 == 0 { "a" } else { "b" })).collect();
        let job = create(&ctx, "ws_slow", emails.clone(), None).await.unwrap();
        assert_eq!(job.chunks, 1);
        let mut runs = 0;
        while !get(&ctx, "ws_slow", &job.id).await.unwrap().unwrap().completed {
            runs += 1;
            assert!(runs <= 20, "the job did not complete in 20 invocations");
            let at = Instant::now() + Duration::from_secs(2);
            let run = deadline::within_reserving(at, Duration::ZERO, run_chunk(&ctx, "ws_slow", &job.id, 0));
            let _ = tokio::time::timeout_at(at.into(), run).await;
        }
        assert!(runs > 1, "one invocation was enough: nothing here needed a continuation");
        let job = get(&ctx, "ws_slow", &job.id).await.unwrap().unwrap();
        let view = view(&ctx, "ws_slow", job, 100, None).await.unwrap();
        let indexes: Vec<usize> = view.results.iter().map(|r| r.index).collect();
        assert_eq!(indexes, (0..40).collect::<Vec<_>>(), "one result per address");
        for r in &view.results {
            assert_eq!(r.verification.email, emails[r.index]);
            assert_eq!(r.verification.status, verify::Status::Valid, "{:?}", r.verification);
        }
        assert_eq!((view.progress.processed, view.progress.valid), (40, 40), "{:?}", view.progress);
        let asked = log.counts();
        for email in &emails {
            assert_eq!(asked.get(email.as_str()), Some(&1), "{email} was asked {:?} times", asked.get(email.as_str()));
        }
        // One catch-all probe per domain: its verdict is cached for the continuations.
        assert_eq!(asked.keys().filter(|a| !a.starts_with("user")).count(), 2, "{asked:?}");
    }
}
