//! Sweep markers: one small item per push that is not finished with, so a sweeper can find
//! pushes whose follow-up or retry task was lost (a queue send that failed after the push
//! was recorded, a task that dead-lettered) without scanning the table.
//!
//! | item | pk | sk | gsi2 |
//! |---|---|---|---|
//! | sweep marker | `SWEEP#PUSH#{shard}` (see `keys::sharded`) | `{ws}#{push_id}` | `SWEEP#PUSH#{shard}` / `{due}#{ws}#{push_id}` |
//!
//! A marker is written before its push record and deleted once the push is final and its
//! last attempt followed up, so the shards only ever hold pushes in flight. The sweeper
//! reads them by due time (gsi2, keys only), so however many are in flight it reaches
//! every one that is due, oldest first.

use serde::{Deserialize, Serialize};

use super::{UpdateError, keys, update_versioned};
use crate::store::{Condition, Cursor, Index, Item, Key, Query, Store, StoreError};
use crate::support::time::Timestamp;

const PARTITION: &str = "SWEEP#PUSH";
/// Index entries read per page.
const PAGE: usize = 100;

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
    let key = key(&marker.workspace_id, &marker.push_id);
    let due = format!("{}#{}#{}", marker.due_at, marker.workspace_id, marker.push_id);
    let shard = key.pk.clone();
    Ok(Item::new(key, marker)?.with_index(Index::Gsi2, shard, due))
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

/// The partitions the markers are spread over; [`due_page`] reads one at a time.
pub fn shards() -> Vec<String> {
    keys::all_shards(PARTITION).collect()
}

/// Markers of `shard` due at `now`, oldest due first: one page from `cursor`, and the
/// cursor of the next page while due entries may remain. The index may lag the table, so
/// each marker is read from the table and kept only if it is still due there.
pub async fn due_page(
    store: &dyn Store,
    shard: &str,
    now: Timestamp,
    cursor: Option<Cursor>,
) -> Result<(Vec<SweepMarker>, Option<Cursor>), StoreError> {
    let (due, next) = super::keys::due_entries(store, shard, PAGE, cursor, |due| due <= now).await?;
    let keys: Vec<Key> = due.into_iter().map(|(key, _)| key).collect();
    let mut markers = Vec::with_capacity(keys.len());
    for item in store.batch_get(&keys).await? {
        let marker: SweepMarker = item.parse()?;
        if marker.due_at <= now {
            markers.push(marker);
        }
    }
    markers.sort_by_key(|m| m.due_at);
    Ok((markers, next))
}

/// Rewrites markers stored before they were indexed by due time, so the sweeper sees them
/// (a migration step; see `migrate`). Returns how many it rewrote.
pub async fn index_unindexed(store: &dyn Store) -> Result<usize, StoreError> {
    let mut rewritten = 0;
    for shard in shards() {
        let mut cursor = None;
        loop {
            let page = store.query(&Query::table(shard.clone()).limit(PAGE).after(cursor)).await?;
            for found in page.items.iter().filter(|i| i.index_key(Index::Gsi2).is_none()) {
                let marker: SweepMarker = found.parse()?;
                // Through the versioned update, so a concurrent change is not lost.
                if update(store, &marker.workspace_id, &marker.push_id, |_| Ok(())).await?.is_some() {
                    rewritten += 1;
                }
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(rewritten)
}
