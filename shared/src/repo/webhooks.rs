//! Webhook endpoints, their unique names (a lock item per name, written in the same
//! transaction), and the workspace's callback signing secret.

use serde::{Deserialize, Serialize};

use super::names::{Claimed, NameClaims, write_claimed};
use super::workspace_pk;
use crate::domain::webhook::{EventType, SigningSecret, Webhook};
use crate::store::{Condition, Cursor, Item, Key, Page, Query, Store, StoreError, WriteOp};
use crate::support::time::Timestamp;

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
    #[error("a workspace can have at most {MAX_WEBHOOKS} webhooks")]
    LimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One of the workspace's [`MAX_WEBHOOKS`] endpoint slots: an endpoint is created in the
/// same transaction as a free slot, so concurrent creates cannot exceed the cap.
fn slot_key(workspace_id: &str, slot: usize) -> Key {
    Key::new(workspace_pk(workspace_id), format!("WHSLOT#{slot:02}"))
}

/// The taken slots (sort key -> the endpoint holding it), read consistently.
async fn slots(store: &dyn Store, workspace_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let query = Query::table(workspace_pk(workspace_id)).prefix("WHSLOT#").limit(MAX_WEBHOOKS + 1).consistent();
    let page = store.query(&query).await?;
    Ok(page
        .items
        .iter()
        .map(|i| (i.key.sk.clone(), i.data.get("webhook_id").and_then(|v| v.as_str()).unwrap_or_default().to_owned()))
        .collect())
}

/// Creates an endpoint, within the workspace's cap of [`MAX_WEBHOOKS`] even under
/// concurrent creates (`LimitReached`).
pub async fn create(store: &dyn Store, workspace_id: &str, webhook: &Webhook) -> Result<(), SaveError> {
    for attempt in 0..16 {
        let taken = slots(store, workspace_id).await?;
        // Endpoints created before slots existed hold none: count them too.
        if all(store, workspace_id).await?.len() >= MAX_WEBHOOKS {
            return Err(SaveError::LimitReached);
        }
        let free: Vec<Key> = (0..MAX_WEBHOOKS)
            .map(|n| slot_key(workspace_id, n))
            .filter(|k| taken.iter().all(|(sk, _)| *sk != k.sk))
            .collect();
        if free.is_empty() {
            return Err(SaveError::LimitReached);
        }
        // A random free slot, so concurrent creates rarely want the same one.
        let slot = free[rand::random_range(0..free.len())].clone();
        let slot_item = Item::new(slot, &serde_json::json!({"webhook_id": webhook.id}))?;
        let result = store
            .transact_write(vec![
                NAMES.claim(workspace_id, &webhook.name, &webhook.id)?,
                WriteOp::Put { item: item(workspace_id, webhook)?, condition: Condition::NotExists },
                WriteOp::Put { item: slot_item, condition: Condition::NotExists },
            ])
            .await;
        match result {
            Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => return Err(SaveError::NameTaken),
            // Another create took that slot (or got in the way): look again.
            Err(StoreError::TransactionCanceled { failed_op: Some(2) | None }) => {
                super::contention_pause(attempt).await;
                continue;
            }
            other => return Ok(other?),
        }
    }
    Err(SaveError::Conflict)
}

/// The webhook and its version (for [`save`]).
pub async fn get(
    store: &dyn Store,
    workspace_id: &str,
    webhook_id: &str,
) -> Result<Option<(Webhook, u64)>, StoreError> {
    super::get_versioned(store, &key(workspace_id, webhook_id)).await
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
    let mut ops = vec![
        WriteOp::Delete { key: key(workspace_id, webhook_id), condition: Condition::VersionIs(version) },
        NAMES.release(workspace_id, &webhook.name),
    ];
    let workspace_key = workspace_pk(workspace_id);
    for (sk, holder) in slots(store, workspace_id).await? {
        if holder == webhook_id {
            ops.push(WriteOp::Delete { key: Key::new(workspace_key.clone(), sk), condition: Condition::Always });
        }
    }
    let result = store.transact_write(ops).await;
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

pub fn callback_secret_key(workspace_id: &str) -> Key {
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
    let fresh = CallbackSecret {
        signing: SigningSecret::new(crate::support::secrets::generate_signing_secret()),
        created_at: now,
    };
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
            s.signing.rotate(crate::support::secrets::generate_signing_secret(), grace, now);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn endpoint(name: String) -> Webhook {
        crate::testing::save_lead_webhook(&name, "https://example.com/hook", Timestamp::now())
    }

    async fn concurrent_creates_never_exceed_the_cap(store: Arc<dyn Store>) {
        // 47 endpoints exist (written directly, to keep this quick on moto); 6 race for 3 slots.
        let mut existing = Vec::new();
        for i in 0..MAX_WEBHOOKS - 3 {
            let hook = endpoint(format!("old {i}"));
            existing.push(item("ws_cap", &hook).unwrap());
            existing.push(Item::new(slot_key("ws_cap", i), &serde_json::json!({"webhook_id": hook.id})).unwrap());
        }
        store.batch_put(existing).await.unwrap();
        let creates = (0..6).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { create(&*store, "ws_cap", &endpoint(format!("hook {i}"))).await })
        });
        let results = futures_util::future::join_all(creates).await;
        let created = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
        let refused = results.iter().filter(|r| matches!(r, Ok(Err(SaveError::LimitReached)))).count();
        assert_eq!((created, refused), (3, 3));
        let hooks = all(&*store, "ws_cap").await.unwrap();
        assert_eq!(hooks.len(), MAX_WEBHOOKS);
        // Deleting one frees its slot for the next.
        assert!(delete(&*store, "ws_cap", &hooks[0].id).await.unwrap());
        create(&*store, "ws_cap", &endpoint("again".into())).await.unwrap();
        assert!(matches!(create(&*store, "ws_cap", &endpoint("over".into())).await, Err(SaveError::LimitReached)));
    }

    #[cfg(feature = "embedded")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_never_exceed_the_cap_embedded() {
        let (db, _dir) = crate::testing::embedded_db();
        concurrent_creates_never_exceed_the_cap(Arc::new(crate::store::sqlite::SqliteStore::new(db))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_never_exceed_the_cap_dynamodb() {
        concurrent_creates_never_exceed_the_cap(crate::testing::dynamo_store().await).await;
    }
}
