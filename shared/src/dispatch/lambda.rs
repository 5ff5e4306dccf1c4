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
