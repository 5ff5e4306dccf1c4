//! Campaign records and their lead counters.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | campaign | `W#{ws}` | `CMP#{id}` |
//! | lead counter (one part per shard, summed on read) | `W#{ws}#CMPSTAT#{id}#{shard}` | `CMPSTAT` |

use std::collections::HashMap;

use super::keys::{all_shards, sharded};
use super::workspace_pk;
use crate::domain::campaign::Campaign;
use crate::store::{Condition, Item, Key, Page, Store, StoreError, WriteOp};

pub fn key(workspace_id: &str, campaign_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("CMP#{campaign_id}"))
}

const STATS: &str = "CMPSTAT";

fn stats_partition(workspace_id: &str, campaign_id: &str) -> String {
    format!("W#{workspace_id}#{STATS}#{campaign_id}")
}

/// One part of a campaign's lead counter.
pub(crate) fn stats_part(workspace_id: &str, campaign_id: &str, shard: u32) -> Key {
    Key::new(format!("{}#{shard:02}", stats_partition(workspace_id, campaign_id)), STATS)
}

/// Every part of a campaign's lead counter.
fn stats_keys(workspace_id: &str, campaign_id: &str) -> Vec<Key> {
    all_shards(&stats_partition(workspace_id, campaign_id)).map(|pk| Key::new(pk, STATS)).collect()
}

pub fn item(workspace_id: &str, campaign: &Campaign) -> Result<Item, StoreError> {
    Item::new(key(workspace_id, &campaign.id), campaign)
}

pub async fn create(store: &dyn Store, workspace_id: &str, campaign: &Campaign) -> Result<(), StoreError> {
    store.put(item(workspace_id, campaign)?, Condition::NotExists).await
}

pub async fn get(store: &dyn Store, workspace_id: &str, campaign_id: &str) -> Result<Option<Campaign>, StoreError> {
    store.get(&key(workspace_id, campaign_id)).await?.map(|i| i.parse()).transpose()
}

/// The campaigns among `ids` that exist in this workspace.
pub async fn get_many(store: &dyn Store, workspace_id: &str, ids: &[&str]) -> Result<Vec<Campaign>, StoreError> {
    let keys: Vec<Key> = ids.iter().map(|id| key(workspace_id, id)).collect();
    store.batch_get(&keys).await?.iter().map(Item::parse).collect()
}

pub async fn delete(store: &dyn Store, workspace_id: &str, campaign_id: &str) -> Result<bool, StoreError> {
    let mut ops = vec![WriteOp::Delete { key: key(workspace_id, campaign_id), condition: Condition::Exists }];
    ops.extend(
        stats_keys(workspace_id, campaign_id)
            .into_iter()
            .map(|key| WriteOp::Delete { key, condition: Condition::Always }),
    );
    super::transact_if_first_holds(store, ops).await
}

/// Newest first.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    limit: usize,
    cursor: Option<crate::store::Cursor>,
) -> Result<Page, StoreError> {
    super::newest_first(store, workspace_pk(workspace_id), "CMP#", limit, cursor).await
}

/// Adds to a campaign's lead counter, in the part `spread_by` (e.g. the request id) picks,
/// so that concurrent ingests do not all write one item.
pub async fn add_leads(
    store: &dyn Store,
    workspace_id: &str,
    campaign_id: &str,
    count: i64,
    spread_by: &str,
) -> Result<(), StoreError> {
    crate::store::write_one(store, add_leads_op(workspace_id, campaign_id, count, spread_by)).await
}

/// [`add_leads`] as a write for the caller's transaction.
pub fn add_leads_op(workspace_id: &str, campaign_id: &str, count: i64, spread_by: &str) -> WriteOp {
    let key = Key::new(sharded(&stats_partition(workspace_id, campaign_id), spread_by), STATS);
    WriteOp::Increment { key, counters: vec![("lead_count".to_owned(), count)] }
}

/// Lead counts of the given campaigns (0 where none arrived yet).
pub async fn lead_counts(
    store: &dyn Store,
    workspace_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let keys: Vec<Key> = ids.iter().flat_map(|id| stats_keys(workspace_id, id)).collect();
    let mut counts: HashMap<String, i64> = ids.iter().map(|id| ((*id).to_owned(), 0)).collect();
    let prefix = stats_partition(workspace_id, "");
    for item in store.batch_get(&keys).await? {
        // `{prefix}{campaign}#{shard}`
        let campaign = item.key.pk.strip_prefix(&prefix).and_then(|rest| rest.rsplit_once('#')).map(|(id, _)| id);
        if let Some(count) = campaign.and_then(|id| counts.get_mut(id)) {
            *count += item.counter("lead_count");
        }
    }
    Ok(counts)
}
