//! Lead records: a partition per lead (its events and counter markers live beside it),
//! listed through sharded index partitions (all of a workspace's leads in `gsi4`, a
//! campaign's in `gsi1`; see `keys`), and found by email or LinkedIn URL through
//! `gsi2`/`gsi3` (see `lead_lookup`).
//!
//! | item | pk | sk | index keys |
//! |---|---|---|---|
//! | lead | `W#{ws}#LEAD#{id}` | `LEAD` | gsi1 `W#{ws}#CMP#{campaign}#{shard}`, gsi4 `W#{ws}#LEADS#{shard}`, both sorted by `LEAD#{id}` |

use super::keys::{self, all_shards, item_pk, sharded};
use super::{UpdateError, update_versioned};
use crate::domain::lead::{Lead, LeadStatus};
use crate::store::{Condition, Cursor, Index, Item, Key, Page, Query, Store, StoreError, WriteOp};
use crate::support::time::Timestamp;

pub const KIND: &str = "LEAD";

/// The partition of one lead, which also holds its events and counter markers.
pub fn partition(workspace_id: &str, lead_id: &str) -> String {
    item_pk(workspace_id, KIND, lead_id)
}

pub fn key(workspace_id: &str, lead_id: &str) -> Key {
    Key::new(partition(workspace_id, lead_id), KIND)
}

/// The listing of a campaign's leads (gsi1), before sharding.
fn campaign_listing(workspace_id: &str, campaign_id: &str) -> String {
    format!("W#{workspace_id}#CMP#{campaign_id}")
}

/// The listing of all of a workspace's leads (gsi4), before sharding.
fn workspace_listing(workspace_id: &str) -> String {
    format!("W#{workspace_id}#LEADS")
}

pub fn item(workspace_id: &str, lead: &Lead) -> Result<Item, StoreError> {
    let sort = format!("LEAD#{}", lead.id);
    let item = Item::new(key(workspace_id, &lead.id), lead)?
        .without_nulls()
        .with_gsi1(sharded(&campaign_listing(workspace_id, &lead.campaign_id), &lead.id), sort.clone())
        .with_index(Index::Gsi4, sharded(&workspace_listing(workspace_id), &lead.id), sort);
    Ok(super::lead_lookup::with_lookup_keys(item, workspace_id, lead))
}

/// Writes leads: one item each, so N leads cost about N/25 batch writes.
pub async fn put_many(store: &dyn Store, workspace_id: &str, leads: &[Lead]) -> Result<(), StoreError> {
    let items = leads.iter().map(|lead| item(workspace_id, lead)).collect::<Result<Vec<_>, _>>()?;
    store.batch_put(items).await
}

pub async fn get(store: &dyn Store, workspace_id: &str, lead_id: &str) -> Result<Option<Lead>, StoreError> {
    store.get(&key(workspace_id, lead_id)).await?.map(|i| i.parse()).transpose()
}

/// The leads among `ids` that exist in this workspace (any order).
pub async fn get_many(store: &dyn Store, workspace_id: &str, ids: &[String]) -> Result<Vec<Lead>, StoreError> {
    let keys: Vec<Key> = ids.iter().map(|id| key(workspace_id, id)).collect();
    store.batch_get(&keys).await?.iter().map(Item::parse).collect()
}

#[derive(Debug, Default, Clone)]
pub struct LeadFilter {
    pub campaign_id: Option<String>,
    pub status: Option<LeadStatus>,
}

fn listing_of(workspace_id: &str, filter: &LeadFilter) -> (Index, String) {
    match &filter.campaign_id {
        Some(campaign) => (Index::Gsi1, campaign_listing(workspace_id, campaign)),
        None => (Index::Gsi4, workspace_listing(workspace_id)),
    }
}

/// The cursor of a page of [`list`] cut short after `item` (one of its items), for a caller
/// that adds to each lead and keeps its own page budget.
pub fn cursor_after(workspace_id: &str, filter: &LeadFilter, item: &Item) -> Cursor {
    let (index, listing) = listing_of(workspace_id, filter);
    let shards: Vec<String> = all_shards(&listing).collect();
    keys::cursor_after(&shards, index, item)
}

/// Newest first. A page may be short when a status filter skips leads or when it reaches
/// [`keys::MAX_PAGE_BYTES`]; follow the cursor.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    filter: &LeadFilter,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    let (index, listing) = listing_of(workspace_id, filter);
    let mut query = Query::index(index, "").prefix("LEAD#").limit(limit).descending();
    if let Some(status) = filter.status {
        query = query.filter_eq("status", serde_json::json!(status.as_str()));
    }
    let shards: Vec<String> = all_shards(&listing).collect();
    keys::scatter_gather_within(store, &shards, &query, cursor, keys::MAX_PAGE_BYTES).await
}

/// The leads among `ids` that exist in this workspace, each with its stored version so a
/// later write can be conditional on nothing having changed in between (any order).
pub async fn get_many_versioned(
    store: &dyn Store,
    workspace_id: &str,
    ids: &[String],
) -> Result<Vec<(Lead, u64)>, StoreError> {
    let keys: Vec<Key> = ids.iter().map(|id| key(workspace_id, id)).collect();
    store.batch_get(&keys).await?.iter().map(|item| Ok((item.parse()?, item.version))).collect()
}

/// Leads per conditional transaction when marking pushes (fewer if they pass 4 MB).
const MARK_BATCH: usize = 25;

/// Marks leads pushed (`Lead::mark_pushed`) without losing concurrent writes: each batch is
/// one transaction conditional on the versions read earlier; a batch that lost a race is
/// redone lead by lead on fresh data. Returns the ids whose record changed (deleted leads
/// are skipped).
pub async fn mark_pushed(
    store: &dyn Store,
    workspace_id: &str,
    leads: &[(Lead, u64)],
    now: Timestamp,
    channel: &str,
) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::with_capacity(leads.len());
    let mut rest = leads;
    while !rest.is_empty() {
        // Up to MARK_BATCH leads, and fewer when large leads would pass the 4 MB limit.
        let (mut ops, mut bytes) = (Vec::new(), 0);
        for (lead, version) in rest.iter().take(MARK_BATCH) {
            let mut lead = lead.clone();
            lead.mark_pushed(now, channel);
            let item = item(workspace_id, &lead)?.with_version(version + 1);
            let op = WriteOp::Put { item, condition: Condition::VersionIs(*version) };
            bytes += op.size();
            if !ops.is_empty() && bytes > crate::store::MAX_TRANSACT_BYTES {
                break;
            }
            ops.push(op);
        }
        let (batch, after) = rest.split_at(ops.len());
        rest = after;
        match store.transact_write(ops).await {
            Ok(()) => changed.extend(batch.iter().map(|(lead, _)| lead.id.clone())),
            Err(StoreError::TransactionCanceled { .. }) => {
                for (lead, _) in batch {
                    let mark = |l: &mut Lead| {
                        l.mark_pushed(now, channel);
                        Ok::<(), std::convert::Infallible>(())
                    };
                    match update_versioned(store, &key(workspace_id, &lead.id), mark, |l| item(workspace_id, l)).await {
                        Ok(_) => changed.push(lead.id.clone()),
                        Err(UpdateError::NotFound) => {}
                        Err(UpdateError::Store(e)) => return Err(e),
                        Err(UpdateError::Rejected(never)) => match never {},
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::domain::lead::LeadFields;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    /// A stored lead leaves its unset fields out (a lead of the bench's shape was 1,046 bytes
    /// with its nulls, 2 write units, and is under 1 KB without them) and reads back whole,
    /// as does a lead stored with its nulls before.
    #[test]
    fn a_stored_lead_leaves_unset_fields_out_and_reads_back_whole() {
        let fields =
            LeadFields { name: Some("Ada".into()), email: Some("ada@example.com".into()), ..LeadFields::default() };
        let lead = Lead::new("req_NULL_0001".into(), "cmp_1".into(), None, fields, at("2026-05-01T00:00:00Z"));
        let stored = item("ws_n", &lead).unwrap();
        assert!(stored.data.values().all(|v| !v.is_null()), "{:?}", stored.data);
        assert!(!stored.data.contains_key("phone") && stored.data["email"] == "ada@example.com");
        assert_eq!(stored.parse::<Lead>().unwrap(), lead);
        let with_nulls = Item::new(key("ws_n", &lead.id), &lead).unwrap();
        assert!(with_nulls.data["phone"].is_null());
        assert_eq!(with_nulls.parse::<Lead>().unwrap(), lead);
    }

    /// A push marks leads read before its call; meanwhile a feedback event updated one and
    /// another was deleted. Neither may be undone.
    async fn marking_pushed_keeps_concurrent_writes(store: &dyn Store) {
        let ws = "ws_mark";
        let leads: Vec<Lead> = (1..=3)
            .map(|n| {
                let fields = LeadFields { name: Some(format!("Lead {n}")), ..LeadFields::default() };
                Lead::new(format!("req_MARK_{n:04}"), "cmp_1".into(), None, fields, at("2026-05-01T00:00:00Z"))
            })
            .collect();
        put_many(store, ws, &leads).await.unwrap();
        let ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
        let mut loaded = get_many_versioned(store, ws, &ids).await.unwrap();
        loaded.sort_by(|a, b| a.0.id.cmp(&b.0.id));

        let reply = |l: &mut Lead| {
            l.status = LeadStatus::Replied;
            l.reply_content = Some("Interested".into());
            Ok::<(), std::convert::Infallible>(())
        };
        update_versioned(store, &key(ws, &ids[1]), reply, |l| item(ws, l)).await.unwrap();
        store.delete(&key(ws, &ids[2]), Condition::Always).await.unwrap();

        let now = at("2026-05-02T12:00:00Z");
        let changed = mark_pushed(store, ws, &loaded, now, "webhook").await.unwrap();
        assert_eq!(changed, ids[..2]);
        let first = get(store, ws, &ids[0]).await.unwrap().unwrap();
        assert_eq!((first.status, first.pushed_at), (LeadStatus::Pushed, Some(now)));
        let second = get(store, ws, &ids[1]).await.unwrap().unwrap();
        assert_eq!(
            (second.status, second.reply_content.as_deref(), second.pushed_at),
            (LeadStatus::Replied, Some("Interested"), Some(now))
        );
        assert!(get(store, ws, &ids[2]).await.unwrap().is_none(), "a deleted lead is not recreated");

        // Without interference the batch is one conditional write.
        let loaded = get_many_versioned(store, ws, &ids[..1]).await.unwrap();
        assert_eq!(mark_pushed(store, ws, &loaded, at("2026-05-03T00:00:00Z"), "webhook").await.unwrap(), ids[..1]);
    }

    #[tokio::test]
    async fn marking_pushed_keeps_concurrent_writes_embedded() {
        let (db, _dir) = crate::testing::embedded_db();
        marking_pushed_keeps_concurrent_writes(&crate::store::sqlite::SqliteStore::new(db)).await;
    }

    #[tokio::test]
    async fn marking_pushed_keeps_concurrent_writes_dynamodb() {
        marking_pushed_keeps_concurrent_writes(&*crate::testing::dynamo_store().await).await;
    }
}
