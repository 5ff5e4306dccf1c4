//! The SQS adapter. Timing is in whole seconds on SQS: delays and visibility timeouts are
//! rounded up (a 10 ms retry becomes 1 s), which only matters for tests.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use crate::queue::Lane;

use super::{MAX_DELAY, MAX_RECEIVE_BATCH, OutgoingMessage, Queue, QueueError, ReceivedMessage, check_size};

/// SQS takes at most 10 entries and 256 KiB per SendMessageBatch.
const SEND_BATCH: usize = 10;
const SEND_BATCH_BYTES: usize = 250 * 1024;
const SEND_ATTEMPTS: u32 = 5;
/// SendMessageBatch calls in flight at once per `send`.
const SEND_CONCURRENCY: usize = 8;

/// SQS queues, one per task lane (`queue::Lane`): messages are sent to their task's
/// lane's queue; receives, deletes and visibility changes go to `home`, the queue this
/// process consumes (a worker's own; unused by the HTTP functions).
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    /// Indexed by `Lane as usize`.
    urls: [String; 4],
    home: Lane,
}

fn backend<E: std::error::Error>(e: E) -> QueueError {
    QueueError::Backend(format!("sqs: {}", DisplayErrorContext(e)))
}

pub(crate) fn whole_seconds(d: Duration) -> i32 {
    d.min(MAX_DELAY).as_millis().div_ceil(1000) as i32
}

impl SqsQueue {
    /// One queue for every lane (tests, single-queue setups).
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        Self { client, urls: [url.clone(), url.clone(), url.clone(), url], home: Lane::Core }
    }

    /// A queue per lane (`urls` in `Lane::ALL` order), consuming `home`'s.
    pub fn routed(client: Client, urls: [String; 4], home: Lane) -> Self {
        Self { client, urls, home }
    }

    /// The URL of the queue this process consumes.
    pub fn url(&self) -> &str {
        self.url_of(self.home)
    }

    pub fn url_of(&self, lane: Lane) -> &str {
        &self.urls[lane as usize]
    }

    async fn send_batch(&self, url: &str, batch: &[&OutgoingMessage]) -> Result<(), QueueError> {
        let mut pending: Vec<(String, &OutgoingMessage)> =
            batch.iter().enumerate().map(|(i, m)| (i.to_string(), *m)).collect();
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
                .queue_url(url)
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
        // Each message to its task's lane's queue (lanes sharing a URL share batches).
        // Indices, not references, go into the stream (a borrowed item trips a
        // higher-ranked lifetime bound in the async trait's future).
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let lane = Lane::of_message(&message.body) as usize;
            let url = self.urls.iter().position(|u| *u == self.urls[lane]).unwrap_or(lane);
            match groups.iter_mut().find(|(u, _)| *u == url) {
                Some((_, group)) => group.push(i),
                None => groups.push((url, vec![i])),
            }
        }
        let mut batches = Vec::new();
        for (url, group) in groups {
            let mut start = 0;
            while start < group.len() {
                // Grow the batch while it stays within SQS's count and size limits.
                let mut end = start;
                let mut bytes = 0;
                while end < group.len()
                    && end - start < SEND_BATCH
                    && bytes + messages[group[end]].body.len() <= SEND_BATCH_BYTES
                {
                    bytes += messages[group[end]].body.len();
                    end += 1;
                }
                let end = end.max(start + 1);
                batches.push((url, group[start..end].to_vec()));
                start = end;
            }
        }
        // Batches go out concurrently (bounded): 1,000 messages are 100 calls, about one
        // call's latency times 100 / SEND_CONCURRENCY rather than times 100.
        let messages = &messages;
        futures_util::stream::iter(batches)
            .map(|(url, batch)| {
                let batch: Vec<&OutgoingMessage> = batch.into_iter().map(|i| &messages[i]).collect();
                async move { self.send_batch(&self.urls[url], &batch).await }
            })
            .buffer_unordered(SEND_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url())
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
        self.client.delete_message().queue_url(self.url()).receipt_handle(receipt).send().await.map_err(backend)?;
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(self.url())
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
