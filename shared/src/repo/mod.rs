//! Domain repositories over the generic store: key layout and typed reads and writes.
//!
//! Key layout (single table): configuration items under `W#{ws}`, every growing kind in a
//! partition of its own with sharded listings; the full table is in docs/storage.md
//! ("Storage layout") and each module's docs. Items of the first layout (all under
//! `W#{ws}`) move with [`migrate::rekey`]. API requests, settings and the response cache:
//! see `api_requests`; workflows and runs: see `workflows`.
//!
//! The scheme every item kind follows is in [`keys`].

pub mod api_requests;
pub mod campaigns;
pub mod deliveries;
pub mod feedback;
pub mod idempotency;
pub mod insights;
pub mod integrations;
pub mod keys;
pub mod lead_lookup;
pub mod leads;
pub mod metering;
pub mod migrate;
pub mod names;
pub mod provider_activity;
pub mod push_sweep;
pub mod pushes;
pub mod ranked;
pub mod scores;
pub mod secrets;
pub mod webhooks;
pub mod workflows;
pub mod workspaces;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Condition, Cursor, Item, Key, Page, Query, Store, StoreError, WriteOp};

/// Writes `ops` as one transaction whose first write is conditional (the item must exist,
/// or still have the version read): `Ok(false)` when that condition failed, so the caller
/// can answer "not found" or "changed meanwhile" instead of an error.
pub async fn transact_if_first_holds(store: &dyn Store, ops: Vec<WriteOp>) -> Result<bool, StoreError> {
    match store.transact_write(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The record at `key` and the version it was read at (for a later versioned write).
pub async fn get_versioned<T: DeserializeOwned>(store: &dyn Store, key: &Key) -> Result<Option<(T, u64)>, StoreError> {
    match store.get(key).await? {
        Some(item) => Ok(Some((item.parse()?, item.version))),
        None => Ok(None),
    }
}

/// One page of the items of `partition` whose sort key starts with `prefix`, newest first
/// (sort keys end in time-sortable ids).
pub async fn newest_first(
    store: &dyn Store,
    partition: String,
    prefix: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    store.query(&Query::table(partition).prefix(prefix).limit(limit).after(cursor).descending()).await
}

pub fn workspace_pk(workspace_id: &str) -> String {
    format!("W#{workspace_id}")
}

/// How often a versioned update re-reads and retries after losing a race.
const UPDATE_ATTEMPTS: usize = 20;

/// Why a versioned update stopped.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error("not found")]
    NotFound,
    /// The change itself refused (a domain rule); nothing was written.
    #[error("rejected")]
    Rejected(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Read-modify-write with optimistic concurrency: re-reads and re-applies `change` when a
/// concurrent writer got in first, so no update is ever lost. `finish` turns the value back
/// into an item (keys, index) for the write.
pub async fn update_versioned<T, E>(
    store: &dyn Store,
    key: &Key,
    change: impl FnMut(&mut T) -> Result<(), E>,
    finish: impl Fn(&T) -> Result<Item, StoreError>,
) -> Result<T, UpdateError<E>>
where
    T: DeserializeOwned + Serialize,
{
    update_versioned_from(store, key, None, change, finish).await.map(|(value, _)| value)
}

/// [`update_versioned`] starting from a value the caller already holds at `known.1`
/// (saving the first read), returning the new version too. A stale guess costs one
/// conflict, then it proceeds as usual.
pub async fn update_versioned_from<T, E>(
    store: &dyn Store,
    key: &Key,
    mut known: Option<(T, u64)>,
    mut change: impl FnMut(&mut T) -> Result<(), E>,
    finish: impl Fn(&T) -> Result<Item, StoreError>,
) -> Result<(T, u64), UpdateError<E>>
where
    T: DeserializeOwned + Serialize,
{
    for _ in 0..UPDATE_ATTEMPTS {
        if let Some((mut value, version)) = known.take() {
            change(&mut value).map_err(UpdateError::Rejected)?;
            let item = finish(&value)?.with_version(version + 1);
            match store.put(item, Condition::VersionIs(version)).await {
                Ok(()) => return Ok((value, version + 1)),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let Some(current) = store.get(key).await? else {
            return Err(UpdateError::NotFound);
        };
        let mut value: T = current.parse()?;
        change(&mut value).map_err(UpdateError::Rejected)?;
        let mut item = finish(&value)?.with_version(current.version + 1);
        item.expires_at = item.expires_at.or(current.expires_at);
        match store.put(item, Condition::VersionIs(current.version)).await {
            Ok(()) => return Ok((value, current.version + 1)),
            Err(StoreError::ConditionFailed) => {
                // Lost a race: back off a little (jittered) and re-apply on fresh data.
                let pause = rand::random_range(1..=10u64);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(UpdateError::Store(StoreError::Backend(format!(
        "{}/{}: still contended after {UPDATE_ATTEMPTS} attempts",
        key.pk, key.sk
    ))))
}

/// A jittered pause before retrying a write that lost a race, growing with the attempt so
/// that many writers on one item spread out instead of colliding in lockstep.
pub async fn contention_pause(attempt: usize) {
    let ceiling = (2u64 << attempt.min(5)).min(64);
    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(1..=ceiling))).await;
}
