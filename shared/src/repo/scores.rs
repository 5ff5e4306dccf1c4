//! What lead scoring stores besides the leads' own `predicted_score`: the workspace's model
//! summary and the marker that a recomputation is queued (so that a burst of outcome
//! events queues one).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | model summary | `W#{ws}#MODEL` | `SUMMARY` |
//! | recomputation queued (expires) | `W#{ws}#MODEL` | `PENDING` |
//! | recomputation running (expires) | `W#{ws}#MODEL` | `RUNNING` |
//! | weekly trends of one dimension | `W#{ws}#MODEL` | `TRENDS#{dimension}` |

use serde_json::json;

use super::leads;
use super::{UpdateError, update_versioned};
use crate::domain::lead::Lead;
use crate::domain::score::{ModelSummary, Trends};
use crate::store::{Condition, Item, Key, Store, StoreError};
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
    put_marker(store, running_key(workspace_id), json!({"started_at": now}), now, expires_at).await
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
    put_marker(store, pending_key(workspace_id), json!({"requested_at": now}), now, expires_at).await
}

/// Puts an expiring marker unless a live one is there; false if one is.
async fn put_marker(
    store: &dyn Store,
    key: Key,
    data: serde_json::Value,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<bool, StoreError> {
    let item = Item::new(key, &data)?.with_expiry(expires_at.unix_seconds());
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

fn trends_key(workspace_id: &str, group_by: &str) -> Key {
    Key::new(partition(workspace_id), format!("TRENDS#{group_by}"))
}

/// Saves a dimension's trends (the recomputation that saves them holds the workspace's
/// lease, so no older one overwrites them).
pub async fn save_trends(store: &dyn Store, workspace_id: &str, trends: &Trends) -> Result<(), StoreError> {
    store.put(Item::new(trends_key(workspace_id, &trends.group_by), trends)?, Condition::Always).await
}

pub async fn trends(store: &dyn Store, workspace_id: &str, group_by: &str) -> Result<Option<Trends>, StoreError> {
    store.get(&trends_key(workspace_id, group_by)).await?.map(|item| item.parse()).transpose()
}

/// Score writes in flight at once.
const SCORE_WRITES: usize = 8;

/// Writes leads whose score changed, each a put conditional on the version it was read at
/// (the leads are independent, so no transaction: it would bill each lead twice). A lead
/// that lost a race with another writer (a feedback event, a push) is redone on fresh data
/// with `rescore` (false: leave the lead as it is). Returns how many leads were written
/// (deleted leads are skipped).
pub async fn write_scores(
    store: &dyn Store,
    workspace_id: &str,
    scored: &[(Lead, u64)],
    rescore: impl Fn(&mut Lead) -> bool,
) -> Result<usize, StoreError> {
    let mut written = 0;
    for chunk in scored.chunks(SCORE_WRITES) {
        let mut writes = Vec::with_capacity(chunk.len());
        for (lead, version) in chunk {
            writes.push(write_score(store, workspace_id, lead, *version, &rescore));
        }
        for wrote in futures_util::future::try_join_all(writes).await? {
            written += usize::from(wrote);
        }
    }
    Ok(written)
}

/// One lead's score write; false when the lead is gone or a later recomputation got there.
async fn write_score(
    store: &dyn Store,
    workspace_id: &str,
    lead: &Lead,
    version: u64,
    rescore: &impl Fn(&mut Lead) -> bool,
) -> Result<bool, StoreError> {
    let item = leads::item(workspace_id, lead)?.with_version(version + 1);
    match store.put(item, Condition::VersionIs(version)).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => {
            let change = |l: &mut Lead| if rescore(l) { Ok(()) } else { Err(()) };
            let key = leads::key(workspace_id, &lead.id);
            match update_versioned(store, &key, change, |l| leads::item(workspace_id, l)).await {
                Ok(_) => Ok(true),
                Err(UpdateError::NotFound | UpdateError::Rejected(())) => Ok(false),
                Err(UpdateError::Store(e)) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
