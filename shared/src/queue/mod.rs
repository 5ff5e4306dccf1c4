//! The queue port: at-least-once messages with delay, visibility timeout and receive
//! counts. Adapters: SQS, and an embedded queue persisted in the SQLite file.
//! Dead-lettering after too many receives is the queue's job (SQS redrive policy; the
//! embedded queue does the same when it is given a dead-letter queue).

#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod sqs;
pub mod task;

pub use task::{
    FAN_OUT_LEADS, LEAD_IDS_PER_TASK, Lane, Swept, TASK_CONCURRENCY, Task, TaskError, VERIFIER_ID_PREFIX,
    emit_leads_saved, task_lane_is_find,
};

#[cfg(test)]
pub mod contract;

use std::time::Duration;

use async_trait::async_trait;

/// SQS limits, honoured by every adapter.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const MAX_DELAY: Duration = crate::domain::delivery::MAX_RETRY_DELAY;
pub const MAX_RECEIVE_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn now(body: impl Into<String>) -> Self {
        Self { body: body.into(), delay: Duration::ZERO }
    }

    pub fn delayed(body: impl Into<String>, delay: Duration) -> Self {
        Self { body: body.into(), delay: delay.min(MAX_DELAY) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    /// Handle for delete / visibility changes; valid until the message is received again.
    pub receipt: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("message too large: {0} bytes (limit {MAX_MESSAGE_BYTES})")]
    TooLarge(usize),
    #[error("queue backend error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Sends messages (any count; the adapter batches). All are sent or an error returns.
    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError>;

    /// Receives up to `max` (≤ 10) visible messages, waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;

    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Makes a received message visible again after `timeout` (a retry with backoff).
    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;

    fn kind(&self) -> &'static str;
}

/// Moves up to `max` messages from a dead-letter queue back to `to` (a redrive, after the
/// cause was fixed), each sent before it is deleted, so a failure midway loses nothing
/// (a message may then be moved twice; every task is idempotent). Returns how many moved.
pub async fn redrive(from: &dyn Queue, to: &dyn Queue, max: usize) -> Result<usize, QueueError> {
    let mut moved = 0;
    while moved < max {
        let batch = from.receive((max - moved).min(10), Duration::from_secs(1)).await?;
        if batch.is_empty() {
            break;
        }
        to.send(batch.iter().map(|m| OutgoingMessage::now(m.body.clone())).collect()).await?;
        for message in &batch {
            from.delete(&message.receipt).await?;
        }
        moved += batch.len();
    }
    Ok(moved)
}

pub(crate) fn check_size(messages: &[OutgoingMessage]) -> Result<(), QueueError> {
    match messages.iter().find(|m| m.body.len() > MAX_MESSAGE_BYTES) {
        Some(m) => Err(QueueError::TooLarge(m.body.len())),
        None => Ok(()),
    }
}
