//! What lead scoring stores besides the leads' own `predicted_score`: the workspace's model
//! summary and the marker that a recomputation is queued (so that a burst of outcome
//! events queues one).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | model summary | `W#{ws}#MODEL` | `SUMMARY` |
//! | recomputation queued (expires) | `W#{ws}#MODEL` | `PENDING` |

use serde_json::json;

use super::leads;
use super::{UpdateError, update_versioned};
use crate::domain::lead::Lead;
use crate::domain::score::ModelSummary;
use crate::store::{Condition, Item, Key, Store, StoreError, WriteOp};
use crate::support::time::Timestamp;

fn partition(workspace_id: &str) -> String {
    format!("W#{workspace_id}#MODEL")
}

fn pending_key(workspace_id: &str) -> Key {
    Key::new(partition(workspace_id), "PENDING")
}

fn summary_key(workspace_id: &str) -> Key {
    Key::new(partition(workspace_id), "SUMMARY")
}

/// Whether a recomputation is queued and not yet started (an expired marker, left by a
/// lost task, counts as none).
pub async fn is_pending(store: &dyn Store, workspace_id: &str, now: Timestamp) -> Result<bool, StoreError> {
    Ok(store.get(&pending_key(workspace_id)).await?.is_some_and(|item| !item.is_expired(now.unix_seconds())))
}

/// Marks a recomputation queued until `expires_at`; false if another caller marked it first.
pub async fn claim_pending(
    store: &dyn Store,
    workspace_id: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<bool, StoreError> {
    let item =
        Item::new(pending_key(workspace_id), &json!({"requested_at": now}))?.with_expiry(expires_at.unix_seconds());
    match store.put(item, Condition::NotExistsOrExpired { now: now.unix_seconds() }).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The recomputation started: outcomes arriving from now on queue another.
pub async fn clear_pending(store: &dyn Store, workspace_id: &str) -> Result<(), StoreError> {
    store.delete(&pending_key(workspace_id), Condition::Always).await
}

pub async fn save_summary(store: &dyn Store, workspace_id: &str, summary: &ModelSummary) -> Result<(), StoreError> {
    store.put(Item::new(summary_key(workspace_id), summary)?, Condition::Always).await
}

pub async fn summary(store: &dyn Store, workspace_id: &str) -> Result<Option<ModelSummary>, StoreError> {
    store.get(&summary_key(workspace_id)).await?.map(|item| item.parse()).transpose()
}

/// Leads per conditional transaction when writing scores.
const SCORE_BATCH: usize = 25;

/// Writes leads whose score changed, each conditional on the version it was read at, in
/// transactions of up to 25; a batch that lost a race with another writer (a feedback
/// event, a push) is redone lead by lead on fresh data with `rescore`. Returns how many
/// leads were written (deleted leads are skipped).
pub async fn write_scores(
    store: &dyn Store,
    workspace_id: &str,
    scored: &[(Lead, u64)],
    rescore: impl Fn(&mut Lead),
) -> Result<usize, StoreError> {
    let mut written = 0;
    for batch in scored.chunks(SCORE_BATCH) {
        let mut ops = Vec::with_capacity(batch.len());
        let mut bytes = 0;
        for (lead, version) in batch {
            let op = WriteOp::Put {
                item: leads::item(workspace_id, lead)?.with_version(version + 1),
                condition: Condition::VersionIs(*version),
            };
            bytes += op.size();
            ops.push(op);
        }
        let attempt = if bytes <= crate::store::MAX_TRANSACT_BYTES {
            store.transact_write(ops).await
        } else {
            Err(StoreError::TransactionCanceled { failed_op: None })
        };
        match attempt {
            Ok(()) => written += batch.len(),
            Err(StoreError::TransactionCanceled { .. }) => {
                for (lead, _) in batch {
                    let change = |l: &mut Lead| {
                        rescore(l);
                        Ok::<(), std::convert::Infallible>(())
                    };
                    let key = leads::key(workspace_id, &lead.id);
                    match update_versioned(store, &key, change, |l| leads::item(workspace_id, l)).await {
                        Ok(_) => written += 1,
                        Err(UpdateError::NotFound) => {}
                        Err(UpdateError::Store(e)) => return Err(e),
                        Err(UpdateError::Rejected(never)) => match never {},
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
