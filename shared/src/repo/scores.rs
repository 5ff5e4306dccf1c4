//! What lead scoring stores besides the leads' own `predicted_score`: the workspace's model
//! summary and the marker that a recomputation is queued (so that a burst of outcome
//! events queues one).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | model summary | `W#{ws}#MODEL` | `SUMMARY` |
//! | recomputation queued (expires) | `W#{ws}#MODEL` | `PENDING` |
//! | recomputation running (expires) | `W#{ws}#MODEL` | `RUNNING` |

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

fn running_key(workspace_id: &str) -> Key {
    Key::new(partition(workspace_id), "RUNNING")
}

/// Takes the workspace's recomputation lease until `expires_at` (one recomputation at a
/// time, so an older one never overwrites a newer one's scores); false if another holds it.
pub async fn acquire_lease(
    store: &dyn Store,
    workspace_id: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<bool, StoreError> {
    let item =
        Item::new(running_key(workspace_id), &json!({"started_at": now}))?.with_expiry(expires_at.unix_seconds());
    match store.put(item, Condition::NotExistsOrExpired { now: now.unix_seconds() }).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn release_lease(store: &dyn Store, workspace_id: &str) -> Result<(), StoreError> {
    store.delete(&running_key(workspace_id), Condition::Always).await
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

/// Saves the summary unless a recomputation that started later saved its own (two can
/// overlap when outcomes arrive while one runs); false if it kept the newer one.
pub async fn save_summary_if_newer(
    store: &dyn Store,
    workspace_id: &str,
    summary: &ModelSummary,
) -> Result<bool, StoreError> {
    let item = Item::new(summary_key(workspace_id), summary)?;
    for _ in 0..3 {
        let condition = match store.get(&summary_key(workspace_id)).await? {
            None => Condition::NotExists,
            Some(found) => {
                let stored: ModelSummary = found.parse()?;
                if stored.updated_at > summary.updated_at {
                    return Ok(false);
                }
                Condition::VersionIs(found.version)
            }
        };
        let version = match condition {
            Condition::VersionIs(v) => v + 1,
            _ => 1,
        };
        match store.put(item.clone().with_version(version), condition).await {
            Ok(()) => return Ok(true),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Busy("model summary still contended after 3 attempts".into()))
}

pub async fn summary(store: &dyn Store, workspace_id: &str) -> Result<Option<ModelSummary>, StoreError> {
    store.get(&summary_key(workspace_id)).await?.map(|item| item.parse()).transpose()
}

/// Leads per conditional transaction when writing scores.
const SCORE_BATCH: usize = 25;

/// Writes leads whose score changed, each conditional on the version it was read at, in
/// transactions of up to 25; a batch that lost a race with another writer (a feedback
/// event, a push) is redone lead by lead on fresh data with `rescore` (false: leave the
/// lead as it is). Returns how many leads were written (deleted leads are skipped).
pub async fn write_scores(
    store: &dyn Store,
    workspace_id: &str,
    scored: &[(Lead, u64)],
    rescore: impl Fn(&mut Lead) -> bool,
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
                    // `rescore` false: nothing to write (a later recomputation got there).
                    let change = |l: &mut Lead| if rescore(l) { Ok(()) } else { Err(()) };
                    let key = leads::key(workspace_id, &lead.id);
                    match update_versioned(store, &key, change, |l| leads::item(workspace_id, l)).await {
                        Ok(_) => written += 1,
                        Err(UpdateError::NotFound | UpdateError::Rejected(())) => {}
                        Err(UpdateError::Store(e)) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
