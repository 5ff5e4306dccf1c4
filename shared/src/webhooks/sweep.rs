//! Re-queues overdue deliveries whose message was lost.

use std::time::Duration;

use super::enqueue::deliver_task;
use crate::context::AppContext;
use crate::domain::delivery::Delivery;
use crate::queue::TaskError;
use crate::repo::{UpdateError, deliveries, update_versioned};
use crate::support::time::Timestamp;

/// How long past its due time a pending delivery may sit before the sweeper re-queues it.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15 * 60);

/// Re-queues the next attempt of pending deliveries overdue by more than [`SWEEP_GRACE`]
/// (their message lost: a failed send, a dead-lettered task), and marks them due again
/// from now so the next sweep leaves them to that message. Returns how many it re-queued.
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<usize, TaskError> {
    let store = &*ctx.store;
    let cutoff = Timestamp::from_unix_millis(now.unix_millis() - SWEEP_GRACE.as_millis() as i64).unwrap_or(now);
    let mut requeued = 0;
    for (workspace_id, delivery) in deliveries::overdue(store, cutoff).await? {
        let key = deliveries::key(&workspace_id, &delivery.webhook_id, &delivery.id);
        let refreshed = update_versioned(
            store,
            &key,
            |d: &mut Delivery| {
                if d.is_settled() || d.due_at().is_none_or(|due| due >= cutoff) {
                    return Err(());
                }
                d.next_attempt_at = Some(now);
                d.in_flight_until = None;
                Ok(())
            },
            |d| deliveries::item(&workspace_id, d),
        )
        .await;
        match refreshed {
            Ok(d) => {
                tracing::warn!(
                    workspace_id,
                    webhook_id = d.webhook_id,
                    delivery_id = d.id,
                    attempt = d.attempts_made() + 1,
                    "sweeper re-queued an overdue delivery"
                );
                ctx.queue.send(vec![deliver_task(&workspace_id, &d, false).message()]).await?;
                requeued += 1;
            }
            Err(UpdateError::Rejected(())) | Err(UpdateError::NotFound) => {}
            Err(UpdateError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(requeued)
}
