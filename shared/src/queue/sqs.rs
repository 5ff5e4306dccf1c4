//! The SQS adapter. Timing is in whole seconds on SQS: delays and visibility timeouts are
//! rounded up (a 10 ms retry becomes 1 s), which only matters for tests.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use super::{MAX_DELAY, MAX_RECEIVE_BATCH, OutgoingMessage, Queue, QueueError, ReceivedMessage, check_size};

/// SQS takes at most 10 entries and 256 KiB per SendMessageBatch.
const SEND_BATCH: usize = 10;
const SEND_BATCH_BYTES: usize = 250 * 1024;
const SEND_ATTEMPTS: u32 = 5;
/// SendMessageBatch calls in flight at once per `send`.
const SEND_CONCURRENCY: usize = 8;

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

fn backend<E: std::error::Error>(e: E) -> QueueError {
    QueueError::Backend(format!("sqs: {}", DisplayErrorContext(e)))
}

pub(crate) fn whole_seconds(d: Duration) -> i32 {
    d.min(MAX_DELAY).as_millis().div_ceil(1000) as i32
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send_batch(&self, batch: &[OutgoingMessage]) -> Result<(), QueueError> {
        let mut pending: Vec<(String, &OutgoingMessage)> =
            batch.iter().enumerate().map(|(i, m)| (i.to_string(), m)).collect();
        for attempt in 0..SEND_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(id, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(&m.body)
                        .delay_seconds(whole_seconds(m.delay))
                        .build()
                        .map_err(backend)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(backend)?;
            let failed: Vec<String> = out.failed.iter().map(|f| f.id.clone()).collect();
            if failed.is_empty() {
                return Ok(());
            }
            pending.retain(|(id, _)| failed.contains(id));
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(QueueError::Backend(format!("sqs: {} messages not accepted after retries", pending.len())))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        use futures_util::{StreamExt, TryStreamExt};
        check_size(&messages)?;
        let mut batches = Vec::new();
        let mut start = 0;
        while start < messages.len() {
            // Grow the batch while it stays within SQS's count and size limits.
            let mut end = start;
            let mut bytes = 0;
            while end < messages.len()
                && end - start < SEND_BATCH
                && bytes + messages[end].body.len() <= SEND_BATCH_BYTES
            {
                bytes += messages[end].body.len();
                end += 1;
            }
            let end = end.max(start + 1);
            batches.push(start..end);
            start = end;
        }
        // Batches go out concurrently (bounded): 1,000 messages are 100 calls, about one
        // call's latency times 100 / SEND_CONCURRENCY rather than times 100.
        futures_util::stream::iter(batches)
            .map(|range| self.send_batch(&messages[range]))
            .buffer_unordered(SEND_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE_BATCH) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage { id: m.message_id?, receipt: m.receipt_handle?, body: m.body?, receive_count })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await.map_err(backend)?;
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(timeout.as_millis().div_ceil(1000).min(43_200) as i32)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqs"
    }
}
