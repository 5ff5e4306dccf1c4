//! Keeping scores current without touching the ingest path: an outcome event that changed
//! its lead queues one recomputation of the workspace's scores, delayed by the configured
//! debounce (`LEADPUSH_RESCORE_DEBOUNCE_SECS`, 60 s) so that a burst of events (a
//! campaign's replies arriving together) costs one.
//!
//! Per outcome event this reads one marker; the first event of a window also writes it and
//! sends one delayed message.

use std::time::Duration;

use crate::context::AppContext;
use crate::domain::feedback::EventType;
use crate::queue::Task;
use crate::repo::scores;

/// A queued marker older than this is taken for a lost task and queued again.
const STALE: Duration = Duration::from_secs(15 * 60);

/// Whether an event of this type can change what the model learns (exposure or outcome).
pub fn changes_outcomes(event_type: EventType) -> bool {
    !matches!(event_type, EventType::Open | EventType::Click)
}

/// Queues a recomputation of the workspace's scores unless one is queued already. A
/// failure is logged, not returned: the event is recorded either way, and the next
/// outcome queues the recomputation again.
pub async fn outcome_arrived(ctx: &AppContext, workspace_id: &str, event_type: EventType, mutated_lead: bool) {
    if !(mutated_lead && changes_outcomes(event_type)) {
        return;
    }
    if let Err(e) = queue_rescore(ctx, workspace_id, ctx.config.rescore_debounce).await {
        tracing::warn!(error = %e, "lead scores not queued for recomputation");
    }
}

/// Queues a recomputation after `delay` unless one is queued; true if this call queued it.
pub async fn queue_rescore(ctx: &AppContext, workspace_id: &str, delay: Duration) -> Result<bool, ScheduleError> {
    let now = ctx.now();
    if scores::is_pending(&*ctx.store, workspace_id, now).await? {
        return Ok(false);
    }
    if !scores::claim_pending(&*ctx.store, workspace_id, now, now.plus(STALE)).await? {
        return Ok(false);
    }
    let task = Task::Rescore { workspace_id: workspace_id.to_owned() };
    ctx.queue.send(vec![task.delayed(delay)]).await?;
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}
