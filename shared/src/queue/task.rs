//! The typed tasks that travel on the queue, the lane (queue and worker function) each
//! belongs to, and how a task's failure is classified. Capabilities queue tasks; only
//! `dispatch` runs them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::queue::{OutgoingMessage, Queue, QueueError};
use crate::support::time::Timestamp;

/// What a sweep did: how many records it re-queued work for, and whether it went through
/// every one that was due (false: the invocation's deadline stopped it, and a new `sweep`
/// task picks up the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    pub requeued: usize,
    pub finished: bool,
}

/// Tasks run concurrently within one batch, up to this many at a time.
pub const TASK_CONCURRENCY: usize = 16;
/// Lead ids per `leads_saved` message (about 20 KB, well under SQS's 256 KB).
pub const LEAD_IDS_PER_TASK: usize = 500;
/// Leads per fan-out part (one endpoint each): a part reads at most this many leads (64 KB
/// each at most, so 1.6 MB per task and about 26 MB for 16 at once) and writes and queues
/// as many deliveries, a few seconds of work at worst.
pub const FAN_OUT_LEADS: usize = 25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Leads were saved or updated: the `save_lead` domain event, fanned out to endpoints.
    /// Without `webhook_id` the task splits itself into one part per endpoint and
    /// [`FAN_OUT_LEADS`] leads; a part (with `webhook_id`) writes and queues its deliveries.
    LeadsSaved {
        workspace_id: String,
        lead_ids: Vec<String>,
        event_id: String,
        occurred_at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_id: Option<String>,
    },
    /// One attempt of one delivery (endpoint or callback).
    Deliver {
        workspace_id: String,
        webhook_id: String,
        delivery_id: String,
        /// A `POST .../retry`: one attempt, no automatic retries after it.
        #[serde(default)]
        manual: bool,
        /// The attempt this message is for (1 for the first): a stale or duplicate message
        /// whose attempt was made already is skipped rather than starting a second chain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    /// The next attempt of a push with leads left to deliver (the push record lists them).
    PushRetry { workspace_id: String, push_id: String, attempt: u32 },
    /// After a push attempt is recorded: mark its delivered leads, count them, emit `save_lead`.
    PushFollowUp { workspace_id: String, push_id: String, attempt: u32 },
    /// Re-queue the work of stalled pushes and overdue deliveries (sent by a schedule; see
    /// `push::sweep` and `webhooks::sweep`).
    Sweep,
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
    /// Refit the workspace's lead score model and write its leads' `predicted_score`
    /// (`learning::recompute`); queued, debounced, when outcome events arrive.
    Rescore { workspace_id: String },
}

/// The id prefix of an email verifier's result (the others are finders').
pub const VERIFIER_ID_PREFIX: &str = "ver_";

/// Which queue, and so which worker function, runs a task. Each worker links only the
/// code of its lane's tasks (`dispatch::Worker`), and refuses the others' tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Saved-lead fan-out, deliveries, pushes and the sweep (`dispatcher`).
    Core,
    /// Pending email verifications and bulk verification chunks (`enrich-worker`).
    Enrich,
    /// Pending finder results: email finder, domain search, author and phone finders
    /// (`finder-worker`).
    Find,
    /// Workflow starts, backfills and runs (`workflow-worker`).
    Workflow,
}

impl Lane {
    pub const ALL: [Lane; 4] = [Lane::Core, Lane::Enrich, Lane::Find, Lane::Workflow];

    /// The function that consumes this lane's queue on AWS.
    pub fn function(self) -> &'static str {
        match self {
            Lane::Core => "dispatcher",
            Lane::Enrich => "enrich-worker",
            Lane::Find => "finder-worker",
            Lane::Workflow => "workflow-worker",
        }
    }

    /// The variable holding this lane's SQS queue URL.
    pub fn queue_url_variable(self) -> &'static str {
        match self {
            Lane::Core => "LEADPUSH_QUEUE_URL",
            Lane::Enrich => "LEADPUSH_ENRICH_QUEUE_URL",
            Lane::Find => "LEADPUSH_FINDER_QUEUE_URL",
            Lane::Workflow => "LEADPUSH_WORKFLOW_QUEUE_URL",
        }
    }

    /// The lane of a message body: its task's, else (not a task) `Core`, whose worker
    /// reports it as poison. Read from the body so that every sender, a redrive from any
    /// dead-letter queue included, routes the same way. Read as a `Value` (code every
    /// function links already), not as a `Task`, whose deserializer the HTTP functions
    /// would otherwise link only for this (67 KB of `api-requests`).
    pub fn of_message(body: &str) -> Lane {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else { return Lane::Core };
        let text = |field: &str| value.get(field).and_then(serde_json::Value::as_str).unwrap_or_default();
        Task::lane_of(text("task"), text("id"))
    }
}

impl Task {
    /// The lane of a task by its name (`task`) and, for `enrich`, its result's `id`: the
    /// same as [`Task::lane`] (a test checks every kind).
    fn lane_of(name: &str, id: &str) -> Lane {
        match name {
            "enrich" if task_lane_is_find(id) => Lane::Find,
            "enrich" | "verify_chunk" => Lane::Enrich,
            "workflow_start" | "workflow_backfill" | "workflow_run" | "rescore" => Lane::Workflow,
            _ => Lane::Core,
        }
    }

    /// The lane of this task (see [`Lane`]).
    pub fn lane(&self) -> Lane {
        match self {
            Task::LeadsSaved { .. }
            | Task::Deliver { .. }
            | Task::PushRetry { .. }
            | Task::PushFollowUp { .. }
            | Task::Sweep => Lane::Core,
            // A result's id starts with its kind's prefix (`enrich::results::Kind::id_prefix`):
            // `ver_` for the verifier, whose work needs no finder code.
            Task::Enrich { id, .. } if task_lane_is_find(id) => Lane::Find,
            Task::Enrich { .. } | Task::VerifyChunk { .. } => Lane::Enrich,
            // Scoring classifies titles with the finders' rules: the workflow worker has them.
            Task::WorkflowStart { .. }
            | Task::WorkflowBackfill { .. }
            | Task::WorkflowRun { .. }
            | Task::Rescore { .. } => Lane::Workflow,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Task::LeadsSaved { .. } => "leads_saved",
            Task::Deliver { .. } => "deliver",
            Task::PushRetry { .. } => "push_retry",
            Task::PushFollowUp { .. } => "push_follow_up",
            Task::Sweep => "sweep",
            Task::Enrich { .. } => "enrich",
            Task::VerifyChunk { .. } => "verify_chunk",
            Task::WorkflowStart { .. } => "workflow_start",
            Task::WorkflowBackfill { .. } => "workflow_backfill",
            Task::WorkflowRun { .. } => "workflow_run",
            Task::Rescore { .. } => "rescore",
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
                event_id: crate::support::ids::new_id(crate::support::ids::EVENT),
                occurred_at,
                webhook_id: None,
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
    /// Infrastructure trouble (storage busy or timing out, the queue unreachable): the task
    /// itself is fine, so it backs off longer instead of burning its receives like poison.
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Failed(String),
}

impl TaskError {
    pub fn is_transient(&self) -> bool {
        matches!(self, TaskError::Transient(_))
    }
}

impl From<crate::store::StoreError> for TaskError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_transient() { TaskError::Transient(e.to_string()) } else { TaskError::Failed(e.to_string()) }
    }
}

impl From<QueueError> for TaskError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::TooLarge(_) => TaskError::Failed(e.to_string()),
            QueueError::Backend(_) => TaskError::Transient(e.to_string()),
        }
    }
}

/// A pending result's task belongs to the finder lane (see [`Task::lane`]).
pub fn task_lane_is_find(id: &str) -> bool {
    !id.starts_with(VERIFIER_ID_PREFIX)
}
