//! Re-queues overdue deliveries whose message was lost.

use std::time::Duration;

use super::enqueue::deliver_task;
use crate::context::AppContext;
use crate::domain::delivery::Delivery;
use crate::queue::{Swept, TaskError};
use crate::repo::{UpdateError, deliveries, update_versioned};
use crate::support::deadline;
use crate::support::time::Timestamp;

/// How long past its due time a pending delivery may sit before the sweeper re-queues it.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15 * 60);

/// The most one delivery's sweep takes (a read, a write, a queue send).
const SWEEP_ITEM_BUDGET: Duration = Duration::from_secs(2);

/// Re-queues the next attempt of pending deliveries overdue by more than [`SWEEP_GRACE`]
/// (their message lost: a failed send, a dead-lettered task), and marks them due again
/// from now so the next sweep leaves them to that message. Goes through every overdue
/// delivery, oldest first, unless the invocation's deadline comes first (`finished` false).
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<Swept, TaskError> {
    let cutoff = Timestamp::from_unix_millis(now.unix_millis() - SWEEP_GRACE.as_millis() as i64).unwrap_or(now);
    let mut swept = Swept { requeued: 0, finished: true };
    for shard in deliveries::sweep_shards() {
        let mut cursor = None;
        loop {
            let (overdue, next) = deliveries::overdue_page(&*ctx.store, &shard, cutoff, cursor).await?;
            for (workspace_id, delivery) in overdue {
                if !deadline::allows(SWEEP_ITEM_BUDGET) {
                    swept.finished = false;
                    return Ok(swept);
                }
                if requeue(ctx, &workspace_id, &delivery, now, cutoff).await? {
                    swept.requeued += 1;
                }
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(swept)
}

/// Re-queues one overdue delivery unless it settled or moved meanwhile; true if it did.
async fn requeue(
    ctx: &AppContext,
    workspace_id: &str,
    delivery: &Delivery,
    now: Timestamp,
    cutoff: Timestamp,
) -> Result<bool, TaskError> {
    let store = &*ctx.store;
    let key = deliveries::key(workspace_id, &delivery.webhook_id, &delivery.id);
    let refreshed = update_versioned(
        store,
        &key,
        |d: &mut Delivery| {
            // A delivery still leased is being sent: its worker records the outcome.
            if d.is_settled() || d.is_leased(now) || d.due_at().is_none_or(|due| due >= cutoff) {
                return Err(());
            }
            d.next_attempt_at = Some(now);
            d.in_flight_until = None;
            Ok(())
        },
        |d| deliveries::item(workspace_id, d),
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
            ctx.queue.send(vec![deliver_task(workspace_id, &d, false).message()]).await?;
            Ok(true)
        }
        Err(UpdateError::Rejected(())) | Err(UpdateError::NotFound) => Ok(false),
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}
