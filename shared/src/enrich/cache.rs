//! Per-domain caches in the store, one partition per (workspace, domain hash):
//! `W#{ws}#MXC#{sha256(domain)}` / `MXC` holds the MX answer, `.../CATCHALL` the catch-all
//! verdict, other entries by their own sort key (the finders' `PATTERN` facts), each with its
//! own TTL. Expiry is compared on read; the TTL attribute only
//! cleans up. Failures to get an answer are never cached.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outbound::probing::dns::MxAnswer;
use crate::repo::keys;
use crate::store::{Condition, Item, Key, Store, StoreError};
use crate::support::time::Timestamp;

pub const MX_KIND: &str = "MXC";
/// The random address a domain's catch-all check asks, kept until the verdict is known.
pub const CATCH_ALL_PROBE: &str = "CATCHALL_PROBE";

fn domain_pk(workspace_id: &str, domain: &str) -> String {
    keys::item_pk(workspace_id, MX_KIND, &crate::support::secrets::hash(domain)[..32])
}

fn mx_key(workspace_id: &str, domain: &str) -> Key {
    Key::new(domain_pk(workspace_id, domain), "MXC")
}

fn catch_all_key(workspace_id: &str, domain: &str) -> Key {
    Key::new(domain_pk(workspace_id, domain), "CATCHALL")
}

#[derive(Debug, Serialize, Deserialize)]
struct MxEntry {
    domain: String,
    answer: MxAnswer,
    at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct CatchAllEntry {
    domain: String,
    accept_all: bool,
    at: Timestamp,
}

async fn read<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &Key,
    now: Timestamp,
) -> Result<Option<T>, StoreError> {
    match store.get(key).await? {
        Some(item) if !item.is_expired(now.unix_seconds()) => Ok(Some(item.parse()?)),
        _ => Ok(None),
    }
}

async fn write(store: &dyn Store, key: Key, value: &impl Serialize, expires: Timestamp) -> Result<(), StoreError> {
    store.put(Item::new(key, value)?.with_expiry(expires.unix_seconds()), Condition::Always).await
}

pub async fn get_mx(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    now: Timestamp,
) -> Result<Option<MxAnswer>, StoreError> {
    Ok(read::<MxEntry>(store, &mx_key(workspace_id, domain), now).await?.map(|e| e.answer))
}

pub async fn put_mx(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    answer: &MxAnswer,
    now: Timestamp,
    ttl: Duration,
) -> Result<(), StoreError> {
    let entry = MxEntry { domain: domain.to_owned(), answer: answer.clone(), at: now };
    write(store, mx_key(workspace_id, domain), &entry, now.plus(ttl)).await
}

pub async fn get_catch_all(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    now: Timestamp,
) -> Result<Option<bool>, StoreError> {
    Ok(read::<CatchAllEntry>(store, &catch_all_key(workspace_id, domain), now).await?.map(|e| e.accept_all))
}

pub async fn put_catch_all(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    accept_all: bool,
    now: Timestamp,
    ttl: Duration,
) -> Result<(), StoreError> {
    let entry = CatchAllEntry { domain: domain.to_owned(), accept_all, at: now };
    write(store, catch_all_key(workspace_id, domain), &entry, now.plus(ttl)).await
}

/// Another per-domain entry, named by its sort key (e.g. the finders' `PATTERN`).
pub async fn get_entry<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    sort: &str,
    now: Timestamp,
) -> Result<Option<T>, StoreError> {
    read(store, &Key::new(domain_pk(workspace_id, domain), sort), now).await
}

pub async fn put_entry(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    sort: &str,
    value: &impl Serialize,
    expires: Timestamp,
) -> Result<(), StoreError> {
    write(store, Key::new(domain_pk(workspace_id, domain), sort), value, expires).await
}
