//! Provider integrations, one item per provider in the workspace's partition. The API key
//! is stored as given (DynamoDB encrypts the table at rest); it leaves only masked.

use super::workspace_pk;
use crate::domain::integration::{Integration, Provider};
use crate::store::{Condition, Item, Key, Query, Store, StoreError};

const PREFIX: &str = "INTEG#";

pub fn key(workspace_id: &str, provider: Provider) -> Key {
    Key::new(workspace_pk(workspace_id), format!("{PREFIX}{}", provider.as_str()))
}

/// Creates or replaces the provider's integration.
pub async fn put(store: &dyn Store, workspace_id: &str, integration: &Integration) -> Result<(), StoreError> {
    store.put(Item::new(key(workspace_id, integration.provider), integration)?, Condition::Always).await
}

pub async fn get(store: &dyn Store, workspace_id: &str, provider: Provider) -> Result<Option<Integration>, StoreError> {
    store.get(&key(workspace_id, provider)).await?.map(|i| i.parse()).transpose()
}

/// Every configured integration (there are only a few providers).
pub async fn list(store: &dyn Store, workspace_id: &str) -> Result<Vec<Integration>, StoreError> {
    let page = store.query(&Query::table(workspace_pk(workspace_id)).prefix(PREFIX).limit(100)).await?;
    page.items.iter().map(Item::parse).collect()
}

/// Whether there was one to delete.
pub async fn delete(store: &dyn Store, workspace_id: &str, provider: Provider) -> Result<bool, StoreError> {
    match store.delete(&key(workspace_id, provider), Condition::Exists).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}
