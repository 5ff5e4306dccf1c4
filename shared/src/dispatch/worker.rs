//! The embedded dispatcher of `leadpush serve`: a few loops that receive from the queue
//! and run the same `process_batch` as the Lambdas, for tasks of every lane (one queue).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Disposition, Worker, process_batch};
use crate::context::AppContext;
use crate::queue::MAX_RECEIVE_BATCH;

/// Starts `loops` receive loops. Once `stop` flips, each finishes the batch in hand (a
/// batch is never dropped half-way: an attempt sent but not recorded would be sent again)
/// and exits; an idle loop notices within its 1 s receive wait.
pub fn spawn(ctx: AppContext, loops: usize, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    (0..loops.max(1))
        .map(|n| {
            let ctx = ctx.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !*stop.borrow() {
                    run_once(&ctx, n).await;
                }
            })
        })
        .collect()
}

async fn run_once(ctx: &AppContext, loop_id: usize) {
    let messages = match ctx.queue.receive(MAX_RECEIVE_BATCH, Duration::from_secs(1)).await {
        Ok(messages) => messages,
        Err(e) => {
            tracing::error!(loop_id, error = %e, "queue receive failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
    };
    if messages.is_empty() {
        return;
    }
    let dispositions = process_batch(ctx, Worker::ALL, &messages).await;
    for (message, disposition) in messages.iter().zip(dispositions) {
        let result = match disposition {
            Disposition::Done => ctx.queue.delete(&message.receipt).await,
            Disposition::RetryAfter(delay) => ctx.queue.set_visibility(&message.receipt, delay).await,
        };
        if let Err(e) = result {
            tracing::error!(message_id = message.id, error = %e, "could not settle message");
        }
    }
}
