//! What `leadpush admin` does: workspaces and their credentials. A CSM runs these (the
//! webhook-campaign setup guide: "contact your CSM to have a webhook token generated").
//! Works beside a running server: same SQLite file (WAL) or the same DynamoDB table.

use serde_json::{Value, json};

use crate::domain::workspace::CredentialKind;
use crate::repo::workspaces;
use crate::store::{Store, StoreError};
use crate::support::time::Timestamp;

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

/// A workspace's limits after applying `changes` (`search.per_minute=1000`,
/// `verification.per_month=100000`, `max_queued_bulk_addresses=50000`); `reset` first
/// returns them to the defaults. Running servers pick the change up within
/// [`crate::metering::meter::POLICY_TTL_SECS`].
pub async fn set_limits(
    store: &dyn Store,
    workspace_id: &str,
    reset: bool,
    changes: &[String],
) -> Result<Value, AdminError> {
    use crate::metering::{Policy, Work};
    if workspaces::get_workspace(store, workspace_id).await?.is_none() {
        return Err(AdminError::NotFound(format!("no workspace `{workspace_id}`")));
    }
    let mut policy = if reset { Policy::default() } else { crate::repo::metering::policy(store, workspace_id).await? };
    for change in changes {
        let invalid = |why: &str| AdminError::Invalid(format!("`{change}`: {why}"));
        let (name, value) = change.split_once('=').ok_or_else(|| invalid("write name=value"))?;
        let value: u64 = value.trim().parse().map_err(|_| invalid("the value must be a whole number"))?;
        if name == "max_queued_bulk_addresses" {
            policy.max_queued_bulk_addresses = value;
            continue;
        }
        let (work, field) = name.split_once('.').ok_or_else(|| invalid("name a kind of work and a limit"))?;
        let work = Work::ALL
            .into_iter()
            .find(|w| w.name() == work)
            .ok_or_else(|| invalid("the kinds are verification, search, api_request_test and push"))?;
        let limit = policy.limit_mut(work);
        let small = |v: u64| u32::try_from(v).map_err(|_| invalid("too large"));
        match field {
            "per_second" => limit.per_second = small(value)?,
            "per_minute" => limit.per_minute = small(value)?,
            "per_month" => limit.per_month = Some(value),
            _ => return Err(invalid("the limits are per_second, per_minute and per_month")),
        }
    }
    if reset || !changes.is_empty() {
        policy.validate().map_err(AdminError::Invalid)?;
        crate::repo::metering::put_policy(store, workspace_id, &policy).await?;
    }
    Ok(json!({"workspace_id": workspace_id, "limits": policy}))
}
