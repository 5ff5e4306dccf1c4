//! API requests and the workspace settings: configuration items in the workspace's
//! partition (`W#{ws}`: `APR#{id}`, a name claim `APRNAME#{lowercase name}`, `SETTINGS`),
//! and the response cache, a growing kind with a partition per entry.

use super::names::{Claimed, NameClaims, write_claimed};
use super::{keys, workspace_pk};
use crate::domain::api_request::{ApiRequest, WorkspaceSettings};
use crate::store::{Condition, Cursor, Item, Key, Page, Store, StoreError, WriteOp};

const PREFIX: &str = "APR#";

pub fn key(workspace_id: &str, id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("{PREFIX}{id}"))
}

const NAMES: NameClaims = NameClaims { prefix: "APRNAME#", owner_field: "api_request_id" };

fn item(workspace_id: &str, request: &ApiRequest) -> Result<Item, StoreError> {
    Item::new(key(workspace_id, &request.id), request)
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the name is taken")]
    NameTaken,
    #[error("not found or changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a request and claims its name, atomically.
pub async fn create(store: &dyn Store, workspace_id: &str, request: &ApiRequest) -> Result<(), SaveError> {
    let ops = vec![
        NAMES.claim(workspace_id, &request.name, &request.id)?,
        WriteOp::Put { item: item(workspace_id, request)?, condition: Condition::NotExists },
    ];
    match write_claimed(store, ops, true).await? {
        Claimed::Written => Ok(()),
        Claimed::NameTaken => Err(SaveError::NameTaken),
        Claimed::Conflict => Err(SaveError::Conflict),
    }
}

pub async fn get(store: &dyn Store, workspace_id: &str, id: &str) -> Result<Option<(ApiRequest, u64)>, StoreError> {
    super::get_versioned(store, &key(workspace_id, id)).await
}

/// Replaces a request read at `version`; a rename moves the name claim in the same write.
pub async fn replace(
    store: &dyn Store,
    workspace_id: &str,
    old: &ApiRequest,
    version: u64,
    new: &ApiRequest,
) -> Result<(), SaveError> {
    let mut ops = NAMES.rename(workspace_id, &old.name, &new.name, &new.id)?;
    let claims = !ops.is_empty();
    ops.push(WriteOp::Put {
        item: item(workspace_id, new)?.with_version(version + 1),
        condition: Condition::VersionIs(version),
    });
    match write_claimed(store, ops, claims).await? {
        Claimed::Written => Ok(()),
        Claimed::NameTaken => Err(SaveError::NameTaken),
        Claimed::Conflict => Err(SaveError::Conflict),
    }
}

/// Whether there was one to delete.
pub async fn delete(store: &dyn Store, workspace_id: &str, request: &ApiRequest) -> Result<bool, StoreError> {
    let ops = vec![
        WriteOp::Delete { key: key(workspace_id, &request.id), condition: Condition::Exists },
        NAMES.release(workspace_id, &request.name),
    ];
    super::transact_if_first_holds(store, ops).await
}

/// Newest first.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    super::newest_first(store, workspace_pk(workspace_id), PREFIX, limit, cursor).await
}

pub fn settings_key(workspace_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), "SETTINGS")
}

/// The workspace's settings (defaults until first changed), each limit within its hard
/// ceiling (a limit saved when the ceiling was higher reads as the ceiling).
pub async fn settings(store: &dyn Store, workspace_id: &str) -> Result<WorkspaceSettings, StoreError> {
    let stored: Option<WorkspaceSettings> =
        store.get(&settings_key(workspace_id)).await?.map(|i| i.parse()).transpose()?;
    Ok(stored.unwrap_or_default().within_ceilings())
}

pub async fn put_settings(
    store: &dyn Store,
    workspace_id: &str,
    settings: &WorkspaceSettings,
) -> Result<(), StoreError> {
    store.put(Item::new(settings_key(workspace_id), settings)?, Condition::Always).await
}

const CACHE_KIND: &str = "APICACHE";

fn cache_key(workspace_id: &str, fingerprint: &str) -> Key {
    Key::new(keys::item_pk(workspace_id, CACHE_KIND, fingerprint), CACHE_KIND)
}

/// A cached answer (the response body as text), unless missing or expired at `now`.
pub async fn cached(
    store: &dyn Store,
    workspace_id: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let Some(item) = store.get(&cache_key(workspace_id, fingerprint)).await? else {
        return Ok(None);
    };
    if item.is_expired(now) {
        return Ok(None);
    }
    Ok(item.data.get("body").and_then(|b| b.as_str()).map(str::to_owned))
}

pub async fn put_cached(
    store: &dyn Store,
    workspace_id: &str,
    fingerprint: &str,
    body: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    let item =
        Item::new(cache_key(workspace_id, fingerprint), &serde_json::json!({"body": body}))?.with_expiry(expires_at);
    store.put(item, Condition::Always).await
}
