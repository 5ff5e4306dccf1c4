//! Sweep markers: one small item per push that is not finished with, so a sweeper can find
//! pushes whose follow-up or retry task was lost (a queue send that failed after the push
//! was recorded, a task that dead-lettered) without scanning the table.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | sweep marker | `SWEEP#PUSH#{shard}` (see `keys::sharded`) | `{ws}#{push_id}` |
//!
//! A marker is written before its push record and deleted once the push is final and its
//! last attempt followed up, so the shards only ever hold pushes in flight.

use serde::{Deserialize, Serialize};

use super::{UpdateError, keys, update_versioned};
use crate::store::{Condition, Item, Key, Query, Store, StoreError};
use crate::support::time::Timestamp;

const PARTITION: &str = "SWEEP#PUSH";
/// Markers read per shard and sweep; the rest wait for the next sweep.
const PER_SHARD: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMarker {
    pub workspace_id: String,
    pub push_id: String,
    /// When the sweeper should look at the push (if nothing has finished it by then).
    pub due_at: Timestamp,
    /// The last attempt whose follow-up (marking leads, insights, `save_lead`) completed.
    pub followed_up: u32,
}

pub fn key(workspace_id: &str, push_id: &str) -> Key {
    Key::new(keys::sharded(PARTITION, push_id), format!("{workspace_id}#{push_id}"))
}

fn item(marker: &SweepMarker) -> Result<Item, StoreError> {
    Item::new(key(&marker.workspace_id, &marker.push_id), marker)
}

pub async fn create(store: &dyn Store, marker: &SweepMarker) -> Result<(), StoreError> {
    store.put(item(marker)?, Condition::Always).await
}

pub async fn get(store: &dyn Store, workspace_id: &str, push_id: &str) -> Result<Option<SweepMarker>, StoreError> {
    store.get(&key(workspace_id, push_id)).await?.map(|i| i.parse()).transpose()
}

/// Changes a marker without losing a concurrent change (`None`: there is none).
pub async fn update(
    store: &dyn Store,
    workspace_id: &str,
    push_id: &str,
    change: impl FnMut(&mut SweepMarker) -> Result<(), std::convert::Infallible>,
) -> Result<Option<SweepMarker>, StoreError> {
    match update_versioned(store, &key(workspace_id, push_id), change, item).await {
        Ok(marker) => Ok(Some(marker)),
        Err(UpdateError::NotFound) => Ok(None),
        Err(UpdateError::Store(e)) => Err(e),
        Err(UpdateError::Rejected(never)) => match never {},
    }
}

pub async fn delete(store: &dyn Store, workspace_id: &str, push_id: &str) -> Result<(), StoreError> {
    store.delete(&key(workspace_id, push_id), Condition::Always).await
}

/// Markers due at `now`, up to [`PER_SHARD`] per shard.
pub async fn due(store: &dyn Store, now: Timestamp) -> Result<Vec<SweepMarker>, StoreError> {
    let mut out = Vec::new();
    for partition in keys::all_shards(PARTITION) {
        let page = store.query(&Query::table(partition).limit(PER_SHARD)).await?;
        for item in page.items {
            let marker: SweepMarker = item.parse()?;
            if marker.due_at <= now {
                out.push(marker);
            }
        }
    }
    Ok(out)
}
