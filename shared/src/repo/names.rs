//! Names unique per workspace (webhook endpoints, API requests): a claim item per
//! lower-cased name in the workspace partition (`{KIND}NAME#{name}` -> the owner's id),
//! written in the same transaction as the named item, so two saves can never both take one.

use super::workspace_pk;
use crate::store::{Condition, Item, Key, Store, StoreError, WriteOp};

/// The name claims of one item kind.
pub struct NameClaims {
    /// Sort-key prefix of the claims (`WHNAME#`).
    pub prefix: &'static str,
    /// The claim's data field holding the owner's id (`webhook_id`).
    pub owner_field: &'static str,
}

impl NameClaims {
    fn key(&self, workspace_id: &str, name: &str) -> Key {
        Key::new(workspace_pk(workspace_id), format!("{}{}", self.prefix, name.to_lowercase()))
    }

    /// Claims `name` for `owner_id`; fails the transaction when it is taken.
    pub fn claim(&self, workspace_id: &str, name: &str, owner_id: &str) -> Result<WriteOp, StoreError> {
        let item = Item::new(self.key(workspace_id, name), &serde_json::json!({ self.owner_field: owner_id }))?;
        Ok(WriteOp::Put { item, condition: Condition::NotExists })
    }

    pub fn release(&self, workspace_id: &str, name: &str) -> WriteOp {
        WriteOp::Delete { key: self.key(workspace_id, name), condition: Condition::Always }
    }

    /// The claim and release that move a name, unless only its case changed.
    pub fn rename(&self, workspace_id: &str, old: &str, new: &str, owner_id: &str) -> Result<Vec<WriteOp>, StoreError> {
        if old.to_lowercase() == new.to_lowercase() {
            return Ok(Vec::new());
        }
        Ok(vec![self.claim(workspace_id, new, owner_id)?, self.release(workspace_id, old)])
    }
}

/// What [`write_claimed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    Written,
    /// The first operation (the name claim) failed: the name is taken.
    NameTaken,
    /// Another operation's condition failed (the item changed or exists); nothing written.
    Conflict,
}

/// Writes `ops` in one transaction whose name claim, if any, comes first (as
/// [`NameClaims::claim`] and [`NameClaims::rename`] put it).
pub async fn write_claimed(store: &dyn Store, ops: Vec<WriteOp>, claims: bool) -> Result<Claimed, StoreError> {
    match store.transact_write(ops).await {
        Ok(()) => Ok(Claimed::Written),
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) if claims => Ok(Claimed::NameTaken),
        Err(StoreError::TransactionCanceled { .. }) => Ok(Claimed::Conflict),
        Err(e) => Err(e),
    }
}
