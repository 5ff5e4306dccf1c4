//! Workspaces and their credentials (API keys, webhook tokens). Only hashes are stored.

use super::workspace_pk;
use crate::domain::workspace::{Credential, CredentialKind, Workspace};
use crate::store::{Condition, Item, Key, Page, Query, Store, StoreError, WriteOp};
use crate::support::ids;
use crate::support::secrets;
use crate::support::time::Timestamp;

pub(crate) const WORKSPACES_INDEX: &str = "WORKSPACES";

pub fn workspace_key(id: &str) -> Key {
    Key::new(workspace_pk(id), "META")
}

fn lookup_key(hash: &str) -> Key {
    Key::new(format!("CRED#{hash}"), "CRED")
}

fn kind_tag(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::WebhookToken => "webhook_token",
    }
}

fn credential_key(workspace_id: &str, kind: CredentialKind, id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("CRED#{}#{id}", kind_tag(kind)))
}

pub async fn create_workspace(store: &dyn Store, name: &str, now: Timestamp) -> Result<Workspace, StoreError> {
    let workspace = Workspace { id: ids::new_id(ids::WORKSPACE), name: name.trim().to_owned(), created_at: now };
    let item = Item::new(workspace_key(&workspace.id), &workspace)?.with_gsi1(WORKSPACES_INDEX, &workspace.id);
    store.put(item, Condition::NotExists).await?;
    Ok(workspace)
}

pub async fn get_workspace(store: &dyn Store, id: &str) -> Result<Option<Workspace>, StoreError> {
    store.get(&workspace_key(id)).await?.map(|item| item.parse()).transpose()
}

pub async fn list_workspaces(store: &dyn Store, limit: usize) -> Result<Page, StoreError> {
    store.query(&Query::gsi1(WORKSPACES_INDEX).limit(limit)).await
}

/// Creates a credential and returns it with the plaintext secret, the only time it exists.
pub async fn issue_credential(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
    now: Timestamp,
) -> Result<(Credential, String), StoreError> {
    let secret = secrets::generate(kind.secret_prefix());
    let credential = Credential {
        id: ids::new_id(kind.id_prefix()),
        kind,
        workspace_id: workspace_id.to_owned(),
        hash: secrets::hash(&secret),
        hint: secrets::mask(&secret),
        created_at: now,
        revoked_at: None,
    };
    store
        .transact_write(vec![
            WriteOp::Check { key: workspace_key(workspace_id), condition: Condition::Exists },
            WriteOp::Put {
                item: Item::new(credential_key(workspace_id, kind, &credential.id), &credential)?,
                condition: Condition::NotExists,
            },
            WriteOp::Put {
                item: Item::new(lookup_key(&credential.hash), &credential)?,
                condition: Condition::NotExists,
            },
        ])
        .await?;
    Ok((credential, secret))
}

/// Revokes a credential at once: its lookup entry is deleted, its record marked.
pub async fn revoke_credential(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
    id: &str,
    now: Timestamp,
) -> Result<Option<Credential>, StoreError> {
    let key = credential_key(workspace_id, kind, id);
    let Some(item) = store.get(&key).await? else {
        return Ok(None);
    };
    let mut credential: Credential = item.parse()?;
    if credential.revoked_at.is_none() {
        credential.revoked_at = Some(now);
        store
            .transact_write(vec![
                WriteOp::Put {
                    item: Item::new(key, &credential)?.with_version(item.version + 1),
                    condition: Condition::VersionIs(item.version),
                },
                WriteOp::Delete { key: lookup_key(&credential.hash), condition: Condition::Always },
            ])
            .await?;
    }
    Ok(Some(credential))
}

/// The credential a presented secret belongs to, if it is live and of the expected kind.
pub async fn authenticate(
    store: &dyn Store,
    kind: CredentialKind,
    secret: &str,
) -> Result<Option<Credential>, StoreError> {
    if secret.is_empty() || secret.len() > 200 {
        return Ok(None);
    }
    let hash = secrets::hash(secret);
    // Eventually consistent: a key issued or revoked within about a second may not be seen
    // so yet, for half the read units of every request.
    let Some(item) = store.get_eventually(&lookup_key(&hash)).await? else {
        return Ok(None);
    };
    let credential: Credential = item.parse()?;
    // The item was found by this hash; comparing it (not hashing the secret again) still
    // refuses an item stored under the key with some other hash.
    let valid =
        credential.kind == kind && credential.revoked_at.is_none() && secrets::same_hash(&hash, &credential.hash);
    Ok(valid.then_some(credential))
}

/// Live credentials of one kind, newest first.
pub async fn active_credentials(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
) -> Result<Vec<Credential>, StoreError> {
    let query =
        Query::table(workspace_pk(workspace_id)).prefix(format!("CRED#{}#", kind_tag(kind))).limit(100).descending();
    let page = store.query(&query).await?;
    let mut out = Vec::new();
    for item in page.items {
        let credential: Credential = item.parse()?;
        if credential.revoked_at.is_none() {
            out.push(credential);
        }
    }
    Ok(out)
}
