//! Asynchronous work: typed tasks on the queue, and the handlers the dispatcher runs.
//! Messages carry ids of stored records, never large payloads. The same `process_batch`
//! serves the SQS-triggered Lambda and the embedded worker of `leadpush serve`.

pub mod deliver;
pub mod lambda;
pub mod worker;

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::context::AppContext;
use crate::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use crate::time::Timestamp;

/// Tasks run concurrently within one batch, up to this many at a time.
pub const TASK_CONCURRENCY: usize = 16;
/// Lead ids per `leads_saved` message (about 20 KB, well under SQS's 256 KB).
pub const LEAD_IDS_PER_TASK: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Leads were saved or updated: the `save_lead` domain event, fanned out to endpoints.
    LeadsSaved { workspace_id: String, lead_ids: Vec<String>, event_id: String, occurred_at: Timestamp },
    /// One attempt of one delivery (endpoint or callback).
    Deliver {
        workspace_id: String,
        webhook_id: String,
        delivery_id: String,
        /// A `POST .../retry`: one attempt, no automatic retries after it.
        #[serde(default)]
        manual: bool,
    },
    /// The next attempt of a push with leads left to deliver (the push record lists them).
    PushRetry { workspace_id: String, push_id: String, attempt: u32 },
    /// Compute a pending enrichment result (`enrich::results`) and send its callbacks.
    Enrich { workspace_id: String, id: String },
    /// Verify one chunk of a bulk verification job (`enrich::jobs`).
    VerifyChunk { workspace_id: String, job_id: String, chunk: usize },
    /// Create (once per workflow version) and queue the runs of these leads.
    WorkflowStart {
        workspace_id: String,
        campaign_id: String,
        version: u32,
        lead_ids: Vec<String>,
        trigger: crate::domain::workflow::RunTrigger,
    },
    /// One page of an activated campaign's leads: runs for those without one.
    WorkflowBackfill { workspace_id: String, campaign_id: String, cursor: Option<String> },
    /// Execute (or resume) one workflow run.
    WorkflowRun { workspace_id: String, lead_id: String, run_id: String },
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::LeadsSaved { .. } => "leads_saved",
            Task::Deliver { .. } => "deliver",
            Task::PushRetry { .. } => "push_retry",
            Task::Enrich { .. } => "enrich",
            Task::VerifyChunk { .. } => "verify_chunk",
            Task::WorkflowStart { .. } => "workflow_start",
            Task::WorkflowBackfill { .. } => "workflow_backfill",
            Task::WorkflowRun { .. } => "workflow_run",
        }
    }

    pub fn message(&self) -> OutgoingMessage {
        // A derived Serialize of strings and vectors cannot fail.
        OutgoingMessage::now(serde_json::to_string(self).unwrap_or_default())
    }

    /// The task as a message that becomes visible after `delay` (at most 15 minutes).
    pub fn delayed(&self, delay: Duration) -> OutgoingMessage {
        OutgoingMessage::delayed(serde_json::to_string(self).unwrap_or_default(), delay)
    }
}

/// Emits `save_lead` for these leads, in as few messages as the size limit allows.
pub async fn emit_leads_saved(queue: &dyn Queue, workspace_id: &str, lead_ids: &[String]) -> Result<(), QueueError> {
    let occurred_at = Timestamp::now();
    let messages = lead_ids
        .chunks(LEAD_IDS_PER_TASK)
        .map(|chunk| {
            Task::LeadsSaved {
                workspace_id: workspace_id.to_owned(),
                lead_ids: chunk.to_vec(),
                event_id: crate::ids::new_id(crate::ids::EVENT),
                occurred_at,
            }
            .message()
        })
        .collect();
    queue.send(messages).await
}

/// Why a task did not finish; the message is retried with backoff, then dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("message is not a task: {0}")]
    Malformed(String),
    #[error("{0}")]
    Failed(String),
}

impl From<crate::store::StoreError> for TaskError {
    fn from(e: crate::store::StoreError) -> Self {
        TaskError::Failed(e.to_string())
    }
}

impl From<QueueError> for TaskError {
    fn from(e: QueueError) -> Self {
        TaskError::Failed(e.to_string())
    }
}

pub async fn run(ctx: &AppContext, task: Task) -> Result<(), TaskError> {
    match task {
        Task::LeadsSaved { workspace_id, lead_ids, event_id, occurred_at } => {
            deliver::fan_out_save_lead(ctx, &workspace_id, &lead_ids, &event_id, occurred_at).await
        }
        Task::Deliver { workspace_id, webhook_id, delivery_id, manual } => {
            deliver::deliver(ctx, &workspace_id, &webhook_id, &delivery_id, manual).await
        }
        Task::PushRetry { workspace_id, push_id, attempt } => {
            Ok(crate::push::retry(ctx, &workspace_id, &push_id, attempt).await?)
        }
        Task::WorkflowStart { workspace_id, campaign_id, version, lead_ids, trigger } => {
            Ok(crate::workflow::trigger::start_runs(ctx, &workspace_id, &campaign_id, version, &lead_ids, trigger)
                .await?)
        }
        Task::WorkflowBackfill { workspace_id, campaign_id, cursor } => {
            Ok(crate::workflow::trigger::backfill(ctx, &workspace_id, &campaign_id, cursor.as_deref()).await?)
        }
        Task::WorkflowRun { workspace_id, lead_id, run_id } => {
            run_workflow(ctx, &workspace_id, &lead_id, &run_id).await
        }
        #[cfg(feature = "enrich")]
        Task::Enrich { workspace_id, id } => Ok(crate::enrich::results::run_task(ctx, &workspace_id, &id).await?),
        #[cfg(feature = "enrich")]
        Task::VerifyChunk { workspace_id, job_id, chunk } => {
            Ok(crate::enrich::jobs::run_chunk(ctx, &workspace_id, &job_id, chunk).await?)
        }
        #[cfg(not(feature = "enrich"))]
        Task::Enrich { .. } | Task::VerifyChunk { .. } => {
            Err(TaskError::Failed("this build has no enrichment (cargo feature `enrich`)".into()))
        }
    }
}

#[cfg(feature = "workflow")]
async fn run_workflow(ctx: &AppContext, workspace_id: &str, lead_id: &str, run_id: &str) -> Result<(), TaskError> {
    Ok(crate::workflow::run::execute(ctx, workspace_id, lead_id, run_id).await?)
}

/// A dispatcher built without the workflow engine leaves the task for one that has it.
#[cfg(not(feature = "workflow"))]
async fn run_workflow(_ctx: &AppContext, _workspace_id: &str, _lead_id: &str, run_id: &str) -> Result<(), TaskError> {
    Err(TaskError::Failed(format!("run {run_id}: this build has no workflow engine (cargo feature `workflow`)")))
}

/// The result for one message: done (delete it) or retry after a delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Done,
    RetryAfter(Duration),
}

/// Backoff for a failing message: exponential in its receive count, capped, with jitter.
pub fn retry_delay(receive_count: u32) -> Duration {
    let base = 2u64.saturating_pow(receive_count.min(10)).min(900);
    let jitter = rand::random_range(0..=base / 4 + 1);
    Duration::from_secs((base + jitter).min(900))
}

async fn process_one(ctx: &AppContext, message: &ReceivedMessage) -> Disposition {
    let task: Task = match serde_json::from_str(&message.body) {
        Ok(task) => task,
        Err(e) => {
            // It will never parse: make it visible at once so it dead-letters quickly.
            tracing::error!(message_id = message.id, error = %TaskError::Malformed(e.to_string()), "poison message");
            return Disposition::RetryAfter(Duration::ZERO);
        }
    };
    let name = task.name();
    match run(ctx, task).await {
        Ok(()) => Disposition::Done,
        Err(e) => {
            let delay = retry_delay(message.receive_count);
            tracing::warn!(message_id = message.id, task = name, receive_count = message.receive_count, retry_in_s = delay.as_secs(), error = %e, "task failed");
            Disposition::RetryAfter(delay)
        }
    }
}

/// Runs a batch concurrently (bounded) and says what to do with each message.
pub async fn process_batch(ctx: &AppContext, messages: &[ReceivedMessage]) -> Vec<Disposition> {
    // Owned messages: a borrowed item in the stream trips a higher-ranked lifetime bound
    // when the future is spawned.
    let mut results: Vec<(usize, Disposition)> = stream::iter(messages.iter().cloned().enumerate())
        .map(|(i, message)| async move { (i, process_one(ctx, &message).await) })
        .buffer_unordered(TASK_CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, d)| d).collect()
}
