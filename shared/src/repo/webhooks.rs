//! Webhook endpoints, their unique names (a lock item per name, written in the same
//! transaction), and the workspace's callback signing secret.

use serde::{Deserialize, Serialize};

use super::names::{Claimed, NameClaims, write_claimed};
use super::workspace_pk;
use crate::domain::webhook::{EventType, SigningSecret, Webhook};
use crate::store::{Condition, Cursor, Item, Key, Page, Query, Store, StoreError, WriteOp};
use crate::time::Timestamp;

/// Endpoints per workspace: each save_lead fans out to all of them.
pub const MAX_WEBHOOKS: usize = 50;

pub fn key(workspace_id: &str, webhook_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("WH#{webhook_id}"))
}

const NAMES: NameClaims = NameClaims { prefix: "WHNAME#", owner_field: "webhook_id" };

pub fn item(workspace_id: &str, webhook: &Webhook) -> Result<Item, StoreError> {
    Item::new(key(workspace_id, &webhook.id), webhook)
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("another webhook of this workspace is named that")]
    NameTaken,
    #[error("the webhook changed while being saved")]
    Conflict,
    #[error("the webhook does not exist")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(store: &dyn Store, workspace_id: &str, webhook: &Webhook) -> Result<(), SaveError> {
    let ops = vec![
        NAMES.claim(workspace_id, &webhook.name, &webhook.id)?,
        WriteOp::Put { item: item(workspace_id, webhook)?, condition: Condition::NotExists },
    ];
    match write_claimed(store, ops, true).await? {
        Claimed::Written => Ok(()),
        Claimed::NameTaken => Err(SaveError::NameTaken),
        Claimed::Conflict => Err(SaveError::Conflict),
    }
}

/// The webhook and its version (for [`save`]).
pub async fn get(
    store: &dyn Store,
    workspace_id: &str,
    webhook_id: &str,
) -> Result<Option<(Webhook, u64)>, StoreError> {
    match store.get(&key(workspace_id, webhook_id)).await? {
        Some(item) => Ok(Some((item.parse()?, item.version))),
        None => Ok(None),
    }
}

/// Writes a changed webhook read at `version`, moving its name lock if it was renamed.
pub async fn save(
    store: &dyn Store,
    workspace_id: &str,
    webhook: &Webhook,
    old_name: &str,
    version: u64,
) -> Result<(), SaveError> {
    let updated = item(workspace_id, webhook)?.with_version(version + 1);
    let condition = Condition::VersionIs(version);
    if old_name.to_lowercase() == webhook.name.to_lowercase() {
        return match store.put(updated, condition).await {
            Err(StoreError::ConditionFailed) => Err(SaveError::Conflict),
            other => Ok(other?),
        };
    }
    let mut ops = NAMES.rename(workspace_id, old_name, &webhook.name, &webhook.id)?;
    let claims = !ops.is_empty();
    ops.push(WriteOp::Put { item: updated, condition });
    match write_claimed(store, ops, claims).await? {
        Claimed::Written => Ok(()),
        Claimed::NameTaken => Err(SaveError::NameTaken),
        Claimed::Conflict => Err(SaveError::Conflict),
    }
}

pub async fn delete(store: &dyn Store, workspace_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
    let Some((webhook, version)) = get(store, workspace_id, webhook_id).await? else { return Ok(false) };
    let result = store
        .transact_write(vec![
            WriteOp::Delete { key: key(workspace_id, webhook_id), condition: Condition::VersionIs(version) },
            NAMES.release(workspace_id, &webhook.name),
        ])
        .await;
    match result {
        Ok(()) => Ok(true),
        // Changed or deleted meanwhile: report what is there now.
        Err(StoreError::TransactionCanceled { .. }) => Ok(store.get(&key(workspace_id, webhook_id)).await?.is_none()),
        Err(e) => Err(e),
    }
}

/// Oldest first (creation order).
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    // Consistent: the 50-endpoint cap and the fan-out's endpoint set must see a webhook
    // created a moment ago.
    store.query(&Query::table(workspace_pk(workspace_id)).prefix("WH#").limit(limit).after(cursor).consistent()).await
}

/// Every endpoint of the workspace (at most [`MAX_WEBHOOKS`]).
pub async fn all(store: &dyn Store, workspace_id: &str) -> Result<Vec<Webhook>, StoreError> {
    let page = list(store, workspace_id, MAX_WEBHOOKS, None).await?;
    page.items.iter().map(Item::parse).collect()
}

/// Enabled endpoints subscribed to `event`.
pub async fn subscribed(store: &dyn Store, workspace_id: &str, event: EventType) -> Result<Vec<Webhook>, StoreError> {
    Ok(all(store, workspace_id).await?.into_iter().filter(|w| w.subscribes(event)).collect())
}

/// The secret that signs `?webhook_url=` callbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackSecret {
    #[serde(flatten)]
    pub signing: SigningSecret,
    pub created_at: Timestamp,
}

fn callback_secret_key(workspace_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), "CBSECRET")
}

/// The callback secret, created on first use.
pub async fn callback_secret(
    store: &dyn Store,
    workspace_id: &str,
    now: Timestamp,
) -> Result<CallbackSecret, StoreError> {
    let key = callback_secret_key(workspace_id);
    if let Some(item) = store.get(&key).await? {
        return item.parse();
    }
    let fresh =
        CallbackSecret { signing: SigningSecret::new(crate::secrets::generate_signing_secret()), created_at: now };
    match store.put(Item::new(key.clone(), &fresh)?, Condition::NotExists).await {
        Ok(()) => Ok(fresh),
        // Created concurrently: use the winner's.
        Err(StoreError::ConditionFailed) => store.get(&key).await?.ok_or(StoreError::ConditionFailed)?.parse(),
        Err(e) => Err(e),
    }
}

/// Replaces the callback secret; the old one keeps signing for `grace`.
pub async fn rotate_callback_secret(
    store: &dyn Store,
    workspace_id: &str,
    grace: std::time::Duration,
    now: Timestamp,
) -> Result<CallbackSecret, StoreError> {
    let current = callback_secret(store, workspace_id, now).await?;
    let key = callback_secret_key(workspace_id);
    let rotated = super::update_versioned::<CallbackSecret, std::convert::Infallible>(
        store,
        &key,
        |s| {
            s.signing.rotate(crate::secrets::generate_signing_secret(), grace, now);
            Ok(())
        },
        |s| Item::new(key.clone(), s),
    )
    .await;
    match rotated {
        Ok(secret) => Ok(secret),
        Err(super::UpdateError::Store(e)) => Err(e),
        Err(_) => Ok(current),
    }
}
