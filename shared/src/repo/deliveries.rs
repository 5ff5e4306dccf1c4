//! Delivery records: one per notification and endpoint, listed newest first per endpoint,
//! expiring after the retention period.
//!
//! | item | pk | sk | gsi1 | gsi2 (pending only) |
//! |---|---|---|---|---|
//! | delivery | `W#{ws}#DLV#{webhook or "callback"}#{id}` | `DLV` | `W#{ws}#DLV#{webhook}#{shard}` / `DLV#{id}` | `SWEEP#DLV#{shard}` / `{due}#{ws}#{webhook}#{id}` |

use std::collections::HashSet;

use super::keys::{self, all_shards, item_pk, sharded};
use crate::domain::delivery::{Delivery, RETENTION};
use crate::store::{Cursor, Index, Item, Key, Page, Query, Store, StoreError};
use crate::support::time::Timestamp;

const KIND: &str = "DLV";

pub fn key(workspace_id: &str, webhook_id: &str, delivery_id: &str) -> Key {
    Key::new(item_pk(workspace_id, KIND, &format!("{webhook_id}#{delivery_id}")), KIND)
}

/// An endpoint's deliveries, before sharding.
fn listing(workspace_id: &str, webhook_id: &str) -> String {
    format!("W#{workspace_id}#{KIND}#{webhook_id}")
}

/// Pending deliveries, by when they are due, for the sweeper (gsi2, sparse: a settled
/// delivery leaves it on its next write).
const SWEEP_PARTITION: &str = "SWEEP#DLV";
/// Index entries read per page of a sweep.
const SWEEP_PAGE: usize = 100;

pub fn item(workspace_id: &str, delivery: &Delivery) -> Result<Item, StoreError> {
    let mut item = Item::new(key(workspace_id, &delivery.webhook_id, &delivery.id), delivery)?
        .without_nulls()
        .with_gsi1(sharded(&listing(workspace_id, &delivery.webhook_id), &delivery.id), format!("DLV#{}", delivery.id))
        .with_expiry(delivery.created_at.plus(RETENTION).unix_seconds());
    if let Some(due) = delivery.due_at() {
        item = item.with_index(
            Index::Gsi2,
            sharded(SWEEP_PARTITION, &delivery.id),
            format!("{due}#{workspace_id}#{}#{}", delivery.webhook_id, delivery.id),
        );
    }
    Ok(item)
}

/// The partitions of the sweeper's index; [`overdue_page`] reads one at a time.
pub fn sweep_shards() -> Vec<String> {
    all_shards(SWEEP_PARTITION).collect()
}

/// Pending deliveries of `shard` due before `before` (workspace id with each), oldest
/// first: one page from `cursor`, and the cursor of the next page while overdue entries
/// may remain. The index holds keys only; the records are read whole.
pub async fn overdue_page(
    store: &dyn Store,
    shard: &str,
    before: Timestamp,
    cursor: Option<Cursor>,
) -> Result<(Vec<(String, Delivery)>, Option<Cursor>), StoreError> {
    let (due, next) = keys::due_entries(store, shard, SWEEP_PAGE, cursor, |due| due < before).await?;
    // `rest` is `{ws}#{webhook}#{id}`.
    let workspaces: std::collections::HashMap<Key, String> =
        due.into_iter().map(|(key, rest)| (key, rest.split('#').next().unwrap_or_default().to_owned())).collect();
    let keys: Vec<Key> = workspaces.keys().cloned().collect();
    let found = store.batch_get(&keys).await?;
    let mut out = Vec::with_capacity(found.len());
    for item in found {
        let Some(workspace) = workspaces.get(&item.key) else { continue };
        out.push((workspace.clone(), item.parse()?));
    }
    Ok((out, next))
}

/// A delivery id that is the same each time one event is fanned out to one endpoint (so a
/// redelivered fan-out message creates nothing twice) and sorts by the event's time.
pub fn deterministic_id(parts: &[&str], at_millis: i64) -> String {
    let digest = crate::support::secrets::hash(&parts.join("\u{1f}"));
    let random = u128::from_str_radix(&digest[..20], 16).unwrap_or_default();
    format!("dlv_{}", ulid::Ulid::from_parts(at_millis.max(0) as u64, random))
}

/// Stores the deliveries that do not exist yet and returns every one still pending (new,
/// or left pending by an earlier run that stopped half-way), to be queued.
pub async fn create_missing(
    store: &dyn Store,
    workspace_id: &str,
    deliveries: Vec<Delivery>,
) -> Result<Vec<Delivery>, StoreError> {
    let keys: Vec<Key> = deliveries.iter().map(|d| key(workspace_id, &d.webhook_id, &d.id)).collect();
    let existing: Vec<Delivery> = store.batch_get(&keys).await?.iter().map(Item::parse).collect::<Result<_, _>>()?;
    let known: HashSet<&str> = existing.iter().map(|d| d.id.as_str()).collect();
    let (new, _): (Vec<Delivery>, Vec<Delivery>) = deliveries.into_iter().partition(|d| !known.contains(d.id.as_str()));
    let items = new.iter().map(|d| item(workspace_id, d)).collect::<Result<Vec<_>, _>>()?;
    store.batch_put(items).await?;
    let mut pending = new;
    pending.extend(existing.into_iter().filter(|d| !d.is_settled()));
    Ok(pending)
}

pub async fn get(
    store: &dyn Store,
    workspace_id: &str,
    webhook_id: &str,
    delivery_id: &str,
) -> Result<Option<Delivery>, StoreError> {
    store.get(&key(workspace_id, webhook_id, delivery_id)).await?.map(|i| i.parse()).transpose()
}

/// Newest first.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    webhook_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    let shards: Vec<String> = all_shards(&listing(workspace_id, webhook_id)).collect();
    let query = Query::gsi1("").prefix("DLV#").limit(limit).descending();
    keys::scatter_gather(store, &shards, &query, cursor).await
}
