//! Lead records: by id within a workspace, and by campaign through `gsi1`.

use super::workspace_pk;
use crate::domain::lead::{Lead, LeadStatus};
use crate::store::{Cursor, Item, Key, Page, Query, Store, StoreError};

pub fn key(workspace_id: &str, lead_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("LEAD#{lead_id}"))
}

fn campaign_partition(workspace_id: &str, campaign_id: &str) -> String {
    format!("W#{workspace_id}#CMP#{campaign_id}")
}

pub fn item(workspace_id: &str, lead: &Lead) -> Result<Item, StoreError> {
    Ok(Item::new(key(workspace_id, &lead.id), lead)?
        .with_gsi1(campaign_partition(workspace_id, &lead.campaign_id), format!("LEAD#{}", lead.id)))
}

/// Writes leads and, for those with an email or LinkedIn URL, one small lookup item each
/// (`super::lead_lookup`), so a batch of N leads costs at most 2N/25 batch writes.
pub async fn put_many(store: &dyn Store, workspace_id: &str, leads: &[Lead]) -> Result<(), StoreError> {
    let mut items = leads.iter().map(|lead| item(workspace_id, lead)).collect::<Result<Vec<_>, _>>()?;
    for lead in leads {
        items.extend(super::lead_lookup::item(workspace_id, lead)?);
    }
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

/// Newest first. A page may be short when a status filter skips leads; follow the cursor.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    filter: &LeadFilter,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    let mut query = match &filter.campaign_id {
        Some(campaign) => Query::gsi1(campaign_partition(workspace_id, campaign)),
        None => Query::table(workspace_pk(workspace_id)),
    }
    .prefix("LEAD#")
    .limit(limit)
    .after(cursor)
    .descending();
    if let Some(status) = filter.status {
        query = query.filter_eq("status", serde_json::json!(status.as_str()));
    }
    store.query(&query).await
}
