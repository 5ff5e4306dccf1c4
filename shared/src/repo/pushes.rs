//! Push records: one item per push, holding every requested lead's outcome and the
//! attempt log (at most 1000 leads and a bounded log, well under DynamoDB's 400 KB).

use super::keys::item_pk;
use super::{UpdateError, update_versioned};
use crate::domain::push::Push;
use crate::store::{Condition, Item, Key, Store, StoreError};

pub const KIND: &str = "PUSH";

/// A partition per push (`W#{ws}#PUSH#{id}`, sort key `PUSH`).
pub fn key(workspace_id: &str, push_id: &str) -> Key {
    Key::new(item_pk(workspace_id, KIND, push_id), KIND)
}

fn item(workspace_id: &str, push: &Push) -> Result<Item, StoreError> {
    Item::new(key(workspace_id, &push.id), push)
}

pub async fn create(store: &dyn Store, workspace_id: &str, push: &Push) -> Result<(), StoreError> {
    store.put(item(workspace_id, push)?, Condition::NotExists).await
}

pub async fn get(store: &dyn Store, workspace_id: &str, push_id: &str) -> Result<Option<Push>, StoreError> {
    store.get(&key(workspace_id, push_id)).await?.map(|i| i.parse()).transpose()
}

/// Read-modify-write of a push with optimistic concurrency (see `repo::update_versioned`).
pub async fn update<E>(
    store: &dyn Store,
    workspace_id: &str,
    push_id: &str,
    change: impl FnMut(&mut Push) -> Result<(), E>,
) -> Result<Push, UpdateError<E>> {
    update_versioned(store, &key(workspace_id, push_id), change, |p| item(workspace_id, p)).await
}
