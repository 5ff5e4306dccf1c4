//! What `leadpush admin` does: workspaces and their credentials. A CSM runs these (seed
//! 002: "contact your CSM to have a webhook token generated"). Works beside a running
//! server: same SQLite file (WAL) or the same DynamoDB table.

use serde_json::{Value, json};

use crate::domain::workspace::CredentialKind;
use crate::repo::workspaces;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn secret_field(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::WebhookToken => "token",
    }
}

/// `{"workspace_id", "name", "api_key", "api_key_id"}`; the key is shown only here.
pub async fn create_workspace(store: &dyn Store, name: &str) -> Result<Value, AdminError> {
    let name = crate::domain::required_text("name", name, 200).map_err(|e| AdminError::Invalid(e.to_string()))?;
    let now = Timestamp::now();
    let workspace = workspaces::create_workspace(store, &name, now).await?;
    let (key, secret) = workspaces::issue_credential(store, &workspace.id, CredentialKind::ApiKey, now).await?;
    Ok(json!({"workspace_id": workspace.id, "name": workspace.name, "api_key": secret, "api_key_id": key.id}))
}

pub async fn list_workspaces(store: &dyn Store) -> Result<Value, AdminError> {
    let page = workspaces::list_workspaces(store, 100).await?;
    let list: Vec<Value> = page.items.iter().map(|i| Value::Object(i.data.clone())).collect();
    Ok(json!({"data": list, "more": page.next.is_some()}))
}

/// `{"id", "workspace_id", "api_key" | "token"}`; the secret is shown only here.
pub async fn create_credential(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
) -> Result<Value, AdminError> {
    let result = workspaces::issue_credential(store, workspace_id, kind, Timestamp::now()).await;
    let (credential, secret) = match result {
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => {
            return Err(AdminError::NotFound(format!("workspace {workspace_id} does not exist")));
        }
        other => other?,
    };
    let mut out = json!({"id": credential.id, "workspace_id": workspace_id});
    out[secret_field(kind)] = json!(secret);
    Ok(out)
}

pub async fn revoke_credential(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
    id: &str,
) -> Result<Value, AdminError> {
    let revoked = workspaces::revoke_credential(store, workspace_id, kind, id, Timestamp::now()).await?;
    let credential =
        revoked.ok_or_else(|| AdminError::NotFound(format!("no {} {id} in workspace {workspace_id}", kind.label())))?;
    Ok(json!({"id": credential.id, "workspace_id": workspace_id, "revoked_at": credential.revoked_at}))
}

pub async fn list_credentials(
    store: &dyn Store,
    workspace_id: &str,
    kind: CredentialKind,
) -> Result<Value, AdminError> {
    let live = workspaces::active_credentials(store, workspace_id, kind).await?;
    let list: Vec<Value> =
        live.iter().map(|c| json!({"id": c.id, "masked": c.hint, "created_at": c.created_at})).collect();
    Ok(json!({"data": list}))
}
