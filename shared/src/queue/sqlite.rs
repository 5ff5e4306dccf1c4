//! The embedded queue: messages persisted in the SQLite file beside the items, with SQS
//! semantics (delay, visibility timeout, receive count, dead-letter after max receives).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;

use super::{MAX_RECEIVE_BATCH, OutgoingMessage, Queue, QueueError, ReceivedMessage, check_size};
use crate::store::sqlite::{EmbeddedDb, EmbeddedError};

impl From<EmbeddedError> for QueueError {
    fn from(e: EmbeddedError) -> Self {
        QueueError::Backend(e.to_string())
    }
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Backend(format!("sqlite: {e}"))
    }
}

/// How often an idle receiver looks for delayed messages or ones sent by another process.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct EmbeddedQueueConfig {
    pub name: String,
    pub visibility_timeout: Duration,
    /// `Some((dlq_name, max_receives))` moves a message to `dlq_name` once it has been
    /// received `max_receives` times without being deleted.
    pub dead_letter: Option<(String, u32)>,
}

#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    config: Arc<EmbeddedQueueConfig>,
    notify: Arc<Notify>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedQueue {
    pub fn new(db: EmbeddedDb, config: EmbeddedQueueConfig) -> Self {
        Self { db, config: Arc::new(config), notify: Arc::new(Notify::new()) }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Messages waiting in this queue (visible or not), for health and tests.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let name = self.config.name.clone();
        self.db
            .run(move |conn| {
                Ok(conn
                    .query_row("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1", [name], |r| r.get::<_, i64>(0))?
                    as u64)
            })
            .await
    }

    /// Whether some message is visible now: a read, so an idle poll never queues behind
    /// (or holds up) the writer.
    async fn any_visible(&self) -> Result<bool, QueueError> {
        let name = self.config.name.clone();
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue = ?1 AND visible_at_ms <= ?2)",
                    )?
                    .query_row(params![name, now_ms()], |r| r.get(0))?)
            })
            .await
    }

    async fn try_receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        if !self.any_visible().await? {
            return Ok(Vec::new());
        }
        let config = self.config.clone();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut stmt = tx.prepare_cached(
                    "SELECT id, body, receive_count FROM queue_messages
                     WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, id LIMIT ?3",
                )?;
                let candidates = stmt
                    .query_map(params![config.name, now, max as i64 * 2], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u32))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::new();
                for (id, body, count) in candidates {
                    if let Some((dlq, max_receives)) = &config.dead_letter
                        && count >= *max_receives
                    {
                        // Like SQS redrive: the next receive after the limit moves it aside.
                        tx.prepare_cached(
                            "UPDATE queue_messages SET queue = ?1, receive_count = 0, receipt = NULL, visible_at_ms = ?2 WHERE id = ?3",
                        )?
                        .execute(params![dlq, now, id])?;
                        continue;
                    }
                    if out.len() == max {
                        break;
                    }
                    let receipt = ulid::Ulid::new().to_string();
                    let visible_at = now + config.visibility_timeout.as_millis() as i64;
                    tx.prepare_cached(
                        "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?1, visible_at_ms = ?2 WHERE id = ?3",
                    )?
                    .execute(params![receipt, visible_at, id])?;
                    out.push(ReceivedMessage { id, receipt, body, receive_count: count + 1 });
                }
                Ok(out)
            })
            .await
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        check_size(&messages)?;
        let name = self.config.name.clone();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO queue_messages (id, queue, body, visible_at_ms, receive_count, sent_at_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                )?;
                for m in &messages {
                    let id = ulid::Ulid::new().to_string();
                    stmt.execute(params![id, name, m.body, now + m.delay.as_millis() as i64, now])?;
                }
                Ok::<_, QueueError>(())
            })
            .await?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = max.clamp(1, MAX_RECEIVE_BATCH);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let messages = self.try_receive(max).await?;
            let now = tokio::time::Instant::now();
            if !messages.is_empty() || now >= deadline {
                return Ok(messages);
            }
            // Woken early by a send from this process; the poll covers other processes and delays.
            let _ = tokio::time::timeout(POLL_INTERVAL.min(deadline - now), notified).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM queue_messages WHERE receipt = ?1")?.execute([receipt])?;
                Ok(())
            })
            .await
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.db
            .write(move |tx| {
                let visible_at = now_ms() + timeout.as_millis() as i64;
                tx.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1 WHERE receipt = ?2",
                    params![visible_at, receipt],
                )?;
                Ok(())
            })
            .await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}
