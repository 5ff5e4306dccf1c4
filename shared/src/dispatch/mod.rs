//! Asynchronous work: typed tasks on the queue, and the handlers the dispatcher runs.
//! Messages carry ids of stored records, never large payloads. The same `process_batch`
//! serves the SQS-triggered Lambdas and the embedded worker of `leadpush serve`.
//!
//! On AWS each task kind travels on its [`Lane`]'s queue and runs in that lane's function
//! (`dispatcher`, `enrich-worker`, `finder-worker`, `workflow-worker`), so that the delivery
//! path links no enrichment or template code and verification no finder code;
//! `leadpush serve` has one queue and one worker for all.

pub mod lambda;
pub mod worker;

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};

use crate::context::AppContext;
use crate::queue::{Lane, ReceivedMessage, TASK_CONCURRENCY, Task, TaskError};
use crate::support::deadline;

/// Runs a task of any lane (`leadpush serve`, the tests).
pub async fn run(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    match task.lane() {
        Lane::Core => run_core(ctx, task).await,
        Lane::Enrich => run_enrich(ctx, task).await,
        Lane::Find => run_find(ctx, task).await,
        Lane::Workflow => run_workflows(ctx, task).await,
    }
}

/// The core lane's tasks (the `dispatcher` function). Each lane has its own `run_*`, so a
/// worker links only its own tasks' code (see [`Worker`]); another lane's task fails.
pub async fn run_core(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    match task {
        Task::LeadsSaved { workspace_id, lead_ids, event_id, occurred_at, webhook_id } => {
            let event =
                crate::webhooks::SaveLeadEvent { workspace_id: &workspace_id, event_id: &event_id, occurred_at };
            crate::webhooks::fan_out_save_lead(ctx, event, &lead_ids, webhook_id.as_deref()).await
        }
        Task::Deliver { workspace_id, webhook_id, delivery_id, manual, attempt } => {
            crate::webhooks::deliver(ctx, &workspace_id, &webhook_id, &delivery_id, manual, attempt).await
        }
        Task::PushRetry { workspace_id, push_id, attempt } => {
            Ok(crate::push::retry(ctx, &workspace_id, &push_id, attempt).await?)
        }
        Task::PushFollowUp { workspace_id, push_id, attempt } => {
            Ok(crate::push::follow_up(ctx, &workspace_id, &push_id, attempt).await?)
        }
        Task::Sweep => {
            let pushes = crate::push::sweep(ctx, ctx.now()).await?;
            let deliveries =
                if pushes.finished { crate::webhooks::sweep(ctx, ctx.now()).await? } else { Default::default() };
            let finished = pushes.finished && deliveries.finished;
            tracing::info!(pushes = pushes.requeued, deliveries = deliveries.requeued, finished, "sweep ended");
            if !finished {
                // The deadline stopped it: a new task goes on where it stopped (what it
                // handled is no longer due), so a long backlog is never cut at a page.
                ctx.queue.send(vec![Task::Sweep.message()]).await?;
            }
            Ok(())
        }
        other => Err(wrong_lane(&other)),
    }
}

/// The enrichment lane's tasks (the `enrich-worker` function). Its results are
/// verifications only (`results::verification`), so the worker links no finder code.
pub async fn run_enrich(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    use crate::enrich::results;
    match task {
        Task::Enrich { workspace_id, id } if !crate::queue::task_lane_is_find(&id) => {
            Ok(results::run_task(ctx, &workspace_id, &id, results::verification).await?)
        }
        Task::VerifyChunk { workspace_id, job_id, chunk } => {
            Ok(crate::enrich::jobs::run_chunk(ctx, &workspace_id, &job_id, chunk).await?)
        }
        other => Err(wrong_lane(&other)),
    }
}

/// The finder lane's tasks (the `finder-worker` function).
pub async fn run_find(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    use crate::enrich::results;
    match task {
        Task::Enrich { workspace_id, id } if crate::queue::task_lane_is_find(&id) => {
            Ok(results::run_task(ctx, &workspace_id, &id, results::compute).await?)
        }
        other => Err(wrong_lane(&other)),
    }
}

/// The workflow lane's tasks (the `workflow-worker` function).
pub async fn run_workflows(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    match task {
        Task::WorkflowStart { workspace_id, campaign_id, version, lead_ids, trigger } => {
            Ok(crate::workflow::trigger::start_runs(ctx, &workspace_id, &campaign_id, version, &lead_ids, trigger)
                .await?)
        }
        Task::WorkflowBackfill { workspace_id, campaign_id, cursor } => {
            Ok(crate::workflow::trigger::backfill(ctx, &workspace_id, &campaign_id, cursor.as_deref()).await?)
        }
        Task::WorkflowRun { workspace_id, lead_id, run_id } => {
            Ok(crate::workflow::run::execute(ctx, &workspace_id, &lead_id, &run_id).await?)
        }
        Task::Rescore { workspace_id } => {
            crate::learning::recompute::run(ctx, &workspace_id).await.map(|_| ()).map_err(TaskError::from)
        }
        other => Err(wrong_lane(&other)),
    }
}

/// Runs one task: a plain function, so a worker's constant names only its own lane's code.
pub type Runner = for<'a> fn(&'a AppContext, Task) -> BoxFuture<'a, Result<(), TaskError>>;

/// A worker: the lanes whose tasks it runs and how. A Lambda's `main` passes its constant
/// (`Worker::ENRICH`), so its bootstrap links no other lane's handlers (as `run_http` takes
/// a function's own routes); `leadpush serve` runs `Worker::ALL`.
#[derive(Clone, Copy)]
pub struct Worker {
    pub lanes: &'static [Lane],
    pub run: Runner,
}

fn boxed_all(ctx: &AppContext, task: Task) -> BoxFuture<'_, Result<(), TaskError>> {
    Box::pin(run(ctx, task))
}

fn boxed_core(ctx: &AppContext, task: Task) -> BoxFuture<'_, Result<(), TaskError>> {
    Box::pin(run_core(ctx, task))
}

fn boxed_enrich(ctx: &AppContext, task: Task) -> BoxFuture<'_, Result<(), TaskError>> {
    Box::pin(run_enrich(ctx, task))
}

fn boxed_find(ctx: &AppContext, task: Task) -> BoxFuture<'_, Result<(), TaskError>> {
    Box::pin(run_find(ctx, task))
}

fn boxed_workflows(ctx: &AppContext, task: Task) -> BoxFuture<'_, Result<(), TaskError>> {
    Box::pin(run_workflows(ctx, task))
}

impl Worker {
    pub const ALL: Worker = Worker { lanes: &Lane::ALL, run: boxed_all };
    pub const CORE: Worker = Worker { lanes: &[Lane::Core], run: boxed_core };
    pub const ENRICH: Worker = Worker { lanes: &[Lane::Enrich], run: boxed_enrich };
    pub const FIND: Worker = Worker { lanes: &[Lane::Find], run: boxed_find };
    pub const WORKFLOW: Worker = Worker { lanes: &[Lane::Workflow], run: boxed_workflows };

    /// The lane whose queue this worker consumes (its first).
    pub fn home(&self) -> Lane {
        self.lanes.first().copied().unwrap_or(Lane::Core)
    }

    fn runs(&self, lane: Lane) -> bool {
        self.lanes.contains(&lane)
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("lanes", &self.lanes).finish_non_exhaustive()
    }
}

/// The result for one message: done (delete it) or retry after a delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Done,
    RetryAfter(Duration),
}

/// Backoff for a failing message: exponential in its receive count, capped at SQS's 15
/// minutes, with jitter. A task that failed on infrastructure (`transient`) starts at 30 s,
/// so that with the template's `maxReceiveCount` of 10 it rides out over an hour of
/// throttling before dead-lettering (30+60+...+900 s ≈ 75 min); other failures start at 2 s.
pub fn retry_delay(receive_count: u32, transient: bool) -> Duration {
    let exponent = receive_count.clamp(1, 11) - 1;
    let first = if transient { 30 } else { 2 };
    let base = first * 2u64.pow(exponent).min(900);
    let base = base.min(900);
    let jitter = rand::random_range(0..=base / 4 + 1);
    Duration::from_secs((base + jitter).min(900))
}

async fn process_one(ctx: &AppContext, worker: Worker, message: &ReceivedMessage) -> Disposition {
    let task: Task = match serde_json::from_str(&message.body) {
        Ok(task) => task,
        Err(e) => {
            // It will never parse: make it visible at once so it dead-letters quickly.
            tracing::error!(message_id = message.id, error = %TaskError::Malformed(e.to_string()), "poison message");
            return Disposition::RetryAfter(Duration::ZERO);
        }
    };
    let name = task.name();
    if !worker.runs(task.lane()) {
        // Never dropped: it fails like any task, so it is retried and then dead-lettered
        // (a misrouted message, e.g. a queue URL variable set wrong), and the log says why.
        let error = wrong_lane(&task);
        let delay = retry_delay(message.receive_count, false);
        tracing::error!(message_id = message.id, task = name, receive_count = message.receive_count, retry_in_s = delay.as_secs(), %error, "task for another worker");
        return Disposition::RetryAfter(delay);
    }
    if !deadline::allows(Duration::ZERO) {
        // Started now, it might be killed with the invocation, and then every message of
        // the batch would run again: it comes back at once for another invocation instead.
        tracing::warn!(message_id = message.id, task = name, "not started: the invocation's deadline is near");
        return Disposition::RetryAfter(Duration::ZERO);
    }
    let run = (worker.run)(ctx, task);
    let result = match deadline::current() {
        // Each task caps its own steps within the deadline; this is the backstop that keeps
        // one that does not from taking the whole batch down with the invocation.
        Some(at) => {
            match tokio::time::timeout_at(at.checked_sub(deadline::HARD_STOP).unwrap_or(at).into(), run).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!(message_id = message.id, task = name, "abandoned at the invocation's deadline");
                    return Disposition::RetryAfter(Duration::ZERO);
                }
            }
        }
        None => run.await,
    };
    match result {
        Ok(()) => Disposition::Done,
        Err(e) => {
            let delay = retry_delay(message.receive_count, e.is_transient());
            tracing::warn!(message_id = message.id, task = name, receive_count = message.receive_count, transient = e.is_transient(), retry_in_s = delay.as_secs(), error = %e, "task failed");
            Disposition::RetryAfter(delay)
        }
    }
}

/// The failure of a task that reached a worker not running its lane.
pub fn wrong_lane(task: &Task) -> TaskError {
    let lane = task.lane();
    TaskError::Failed(format!(
        "task `{}` is not run by this worker: it belongs on the {lane:?} queue ({}), which the `{}` function consumes",
        task.name(),
        lane.queue_url_variable(),
        lane.function()
    ))
}

/// Runs a batch concurrently (bounded) and says what to do with each message. A worker
/// runs the tasks of its lanes (every lane in `leadpush serve`); any other task fails.
/// Within a deadline ([`deadline::within`]) a task is started only outside its reserve,
/// and abandoned (failed, to come back) at its hard stop.
pub async fn process_batch(ctx: &AppContext, worker: Worker, messages: &[ReceivedMessage]) -> Vec<Disposition> {
    // Owned messages: a borrowed item in the stream trips a higher-ranked lifetime bound
    // when the future is spawned.
    let mut results: Vec<(usize, Disposition)> = stream::iter(messages.iter().cloned().enumerate())
        .map(|(i, message)| async move { (i, process_one(ctx, worker, &message).await) })
        .buffer_unordered(TASK_CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn verifier_results_run_in_the_enrichment_lane_and_finder_results_in_the_finder_lane() {
        use crate::enrich::results::Kind;
        for kind in Kind::ALL {
            let task = Task::Enrich { workspace_id: "ws_1".into(), id: crate::support::ids::new_id(kind.id_prefix()) };
            let want = if kind == Kind::EmailVerifier { Lane::Enrich } else { Lane::Find };
            assert_eq!(task.lane(), want, "{kind:?}");
            assert_eq!(Lane::of_message(&task.message().body), want, "{kind:?}");
        }
    }

    #[test]
    fn infrastructure_failures_back_off_longer_than_task_failures() {
        for receives in 1..=12 {
            let (transient, failed) = (retry_delay(receives, true), retry_delay(receives, false));
            assert!(transient >= failed, "receive {receives}: {transient:?} < {failed:?}");
            assert!(transient <= Duration::from_secs(900) && failed <= Duration::from_secs(900));
        }
        assert!(retry_delay(1, true) >= Duration::from_secs(30));
        assert!(retry_delay(1, false) < Duration::from_secs(5));
        // Ten receives of infrastructure backoff cover more than an hour of throttling.
        let total: Duration = (1..10).map(|r| retry_delay(r, true)).sum();
        assert!(total >= Duration::from_secs(3600), "{total:?}");
        let store_busy: TaskError = crate::store::StoreError::Busy("throttled".into()).into();
        assert!(store_busy.is_transient());
        let refused: TaskError = crate::store::StoreError::Refused("too big".into()).into();
        assert!(!refused.is_transient());
    }
}
