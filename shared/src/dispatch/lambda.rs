//! The SQS-triggered dispatcher Lambda: partial batch responses, and backoff set on each
//! failed message through its visibility timeout.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::{Disposition, process_batch};
use crate::context::AppContext;
use crate::queue::ReceivedMessage;

/// Turns Lambda's SQS records into our messages (records without an id are skipped).
pub fn messages(event: SqsEvent) -> Vec<ReceivedMessage> {
    event
        .records
        .into_iter()
        .filter_map(|record| {
            let receive_count =
                record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            Some(ReceivedMessage {
                id: record.message_id?,
                receipt: record.receipt_handle.unwrap_or_default(),
                body: record.body.unwrap_or_default(),
                receive_count,
            })
        })
        .collect()
}

/// Runs the batch; failed messages get their backoff and are reported for redelivery.
pub async fn handle(ctx: &AppContext, event: SqsEvent) -> SqsBatchResponse {
    let messages = messages(event);
    let dispositions = process_batch(ctx, &messages).await;
    let mut response = SqsBatchResponse::default();
    for (message, disposition) in messages.iter().zip(dispositions) {
        if let Disposition::RetryAfter(delay) = disposition {
            if !message.receipt.is_empty()
                && let Err(e) = ctx.queue.set_visibility(&message.receipt, delay).await
            {
                tracing::warn!(message_id = message.id, error = %e, "could not set retry delay");
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::queue::OutgoingMessage;

    /// What Lambda's SQS event source hands the function for these received messages.
    fn event_of(messages: &[ReceivedMessage]) -> SqsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
                    "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                    "messageAttributes": {}, "eventSource": "aws:sqs"
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    async fn receive(queue: &dyn crate::queue::Queue, want: usize) -> Vec<ReceivedMessage> {
        let mut got = Vec::new();
        for _ in 0..30 {
            got.extend(queue.receive(10, Duration::from_millis(500)).await.unwrap());
            if got.len() >= want {
                break;
            }
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqs_batches_report_only_the_failed_message_which_then_dead_letters() {
        let fixture = crate::queue::contract::sqs_fixture().await;
        let (mut ctx, _dir) = crate::testing::embedded_context();
        ctx.queue = fixture.queue.clone();
        let valid = crate::dispatch::Task::LeadsSaved {
            workspace_id: "ws_none".into(),
            lead_ids: vec!["req_x_0001".into()],
            event_id: "evt_1".into(),
            occurred_at: crate::time::Timestamp::now(),
            webhook_id: None,
        };
        fixture.queue.send(vec![valid.message(), OutgoingMessage::now("not a task")]).await.unwrap();

        let batch = receive(&*fixture.queue, 2).await;
        assert_eq!(batch.len(), 2);
        let poison_id = batch.iter().find(|m| m.body == "not a task").unwrap().id.clone();
        let response = handle(&ctx, event_of(&batch)).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, [poison_id.as_str()]);
        // The event source deletes what succeeded.
        for m in batch.iter().filter(|m| m.id != poison_id) {
            fixture.queue.delete(&m.receipt).await.unwrap();
        }
        // The poison message comes back at once (visibility 0) until the redrive policy
        // (2 receives) moves it to the dead-letter queue.
        let again = receive(&*fixture.queue, 1).await;
        assert_eq!((again.len(), again[0].id.as_str(), again[0].receive_count), (1, poison_id.as_str(), 2));
        let response = handle(&ctx, event_of(&again)).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert!(fixture.queue.receive(10, Duration::from_millis(500)).await.unwrap().is_empty());
        let dead = receive(&*fixture.dlq, 1).await;
        assert_eq!((dead.len(), dead[0].body.as_str()), (1, "not a task"));
    }
}
