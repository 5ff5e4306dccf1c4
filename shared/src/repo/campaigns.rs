//! Campaign records and their lead counters.

use std::collections::HashMap;

use super::workspace_pk;
use crate::domain::campaign::Campaign;
use crate::store::{Condition, Item, Key, Page, Query, Store, StoreError, WriteOp};

pub fn key(workspace_id: &str, campaign_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("CMP#{campaign_id}"))
}

fn stats_key(workspace_id: &str, campaign_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("CMPSTAT#{campaign_id}"))
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
    let result = store
        .transact_write(vec![
            WriteOp::Delete { key: key(workspace_id, campaign_id), condition: Condition::Exists },
            WriteOp::Delete { key: stats_key(workspace_id, campaign_id), condition: Condition::Always },
        ])
        .await;
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Newest first.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    limit: usize,
    cursor: Option<crate::store::Cursor>,
) -> Result<Page, StoreError> {
    store.query(&Query::table(workspace_pk(workspace_id)).prefix("CMP#").limit(limit).after(cursor).descending()).await
}

pub async fn add_leads(store: &dyn Store, workspace_id: &str, campaign_id: &str, count: i64) -> Result<(), StoreError> {
    store.increment(&stats_key(workspace_id, campaign_id), &[("lead_count".to_owned(), count)]).await
}

/// Lead counts of the given campaigns (0 where none arrived yet).
pub async fn lead_counts(
    store: &dyn Store,
    workspace_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, i64>, StoreError> {
    let keys: Vec<Key> = ids.iter().map(|id| stats_key(workspace_id, id)).collect();
    let mut counts: HashMap<String, i64> = ids.iter().map(|id| ((*id).to_owned(), 0)).collect();
    for item in store.batch_get(&keys).await? {
        if let Some(id) = item.key.sk.strip_prefix("CMPSTAT#") {
            counts.insert(id.to_owned(), item.counter("lead_count"));
        }
    }
    Ok(counts)
}
