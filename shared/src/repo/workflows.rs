//! Campaign workflows and their runs.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | workflow (current version) | `W#{ws}` | `WF#{campaign}` |
//! | workflow version (kept for its runs) | `W#{ws}` | `WFV#{campaign}#{version:06}` |
//! | run | `W#{ws}#LEAD#{lead}` | `RUN#{run}` |
//! | a fetched output of a run | `W#{ws}#LEAD#{lead}` | `RUNOUT#{run}#{output_key}` |
//! | the lead's latest run (preview) | `W#{ws}#LEAD#{lead}` | `RUNLATEST` |
//! | "this lead has a run of this version" | `W#{ws}#LEAD#{lead}` | `RUNV#{campaign}#{version}` |
//! | run id -> lead | `W#{ws}#RUN#{run}` | `RUN` |
//!
//! Runs are children of their lead (see `keys`): a lead's runs share its partition, and a
//! run id finds its lead through a one-item partition of its own. Fetched outputs (up to
//! the workspace's response limit each) are separate items so a run item stays small.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{keys, workspace_pk};
use crate::domain::workflow::{Run, RunSummary, Workflow};
use crate::store::{Condition, Cursor, Item, Key, Page, Query, Store, StoreError, WriteOp};

pub fn key(workspace_id: &str, campaign_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), format!("WF#{campaign_id}"))
}

pub fn version_key(workspace_id: &str, campaign_id: &str, version: u32) -> Key {
    Key::new(workspace_pk(workspace_id), format!("WFV#{campaign_id}#{version:06}"))
}

pub async fn get(store: &dyn Store, workspace_id: &str, campaign_id: &str) -> Result<Option<Workflow>, StoreError> {
    store.get(&key(workspace_id, campaign_id)).await?.map(|i| i.parse()).transpose()
}

/// The current workflows of these campaigns (those that have one).
pub async fn get_many(
    store: &dyn Store,
    workspace_id: &str,
    campaign_ids: &[&str],
) -> Result<Vec<Workflow>, StoreError> {
    let keys: Vec<Key> = campaign_ids.iter().map(|id| key(workspace_id, id)).collect();
    store.batch_get(&keys).await?.iter().map(Item::parse).collect()
}

/// One version as saved (runs execute the version they were created for).
pub async fn get_version(
    store: &dyn Store,
    workspace_id: &str,
    campaign_id: &str,
    version: u32,
) -> Result<Option<Workflow>, StoreError> {
    store.get(&version_key(workspace_id, campaign_id, version)).await?.map(|i| i.parse()).transpose()
}

/// Saves `workflow` as the next version after `previous` (`None`: the first). `Ok(false)`
/// when another save got in first.
pub async fn save(
    store: &dyn Store,
    workspace_id: &str,
    workflow: &Workflow,
    previous: Option<u64>,
) -> Result<bool, StoreError> {
    let head = Item::new(key(workspace_id, &workflow.campaign_id), workflow)?;
    let (head, condition) = match previous {
        Some(version) => (head.with_version(version + 1), Condition::VersionIs(version)),
        None => (head, Condition::NotExists),
    };
    let snapshot = Item::new(version_key(workspace_id, &workflow.campaign_id, workflow.workflow_version), workflow)?;
    let ops =
        vec![WriteOp::Put { item: head, condition }, WriteOp::Put { item: snapshot, condition: Condition::Always }];
    match store.transact_write(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::TransactionCanceled { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The stored version of the current workflow item, for a conditional save.
pub async fn head_version(store: &dyn Store, workspace_id: &str, campaign_id: &str) -> Result<Option<u64>, StoreError> {
    Ok(store.get(&key(workspace_id, campaign_id)).await?.map(|i| i.version))
}

fn lead_pk(workspace_id: &str, lead_id: &str) -> String {
    keys::item_pk(workspace_id, "LEAD", lead_id)
}

fn run_key(workspace_id: &str, lead_id: &str, run_id: &str) -> Key {
    Key::new(lead_pk(workspace_id, lead_id), format!("RUN#{run_id}"))
}

fn latest_key(workspace_id: &str, lead_id: &str) -> Key {
    Key::new(lead_pk(workspace_id, lead_id), "RUNLATEST")
}

fn marker_key(workspace_id: &str, run: &Run) -> Key {
    Key::new(lead_pk(workspace_id, &run.lead_id), format!("RUNV#{}#{}", run.campaign_id, run.workflow_version))
}

fn lookup_key(workspace_id: &str, run_id: &str) -> Key {
    Key::new(keys::item_pk(workspace_id, "RUN", run_id), "RUN")
}

fn output_prefix(run_id: &str) -> String {
    format!("RUNOUT#{run_id}#")
}

fn run_item(workspace_id: &str, run: &Run) -> Result<Item, StoreError> {
    Item::new(run_key(workspace_id, &run.lead_id, &run.id), run)
}

fn latest_item(workspace_id: &str, run: &Run) -> Result<Item, StoreError> {
    Item::new(latest_key(workspace_id, &run.lead_id), &RunSummary::from(run))
}

/// What creating a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New,
    /// The lead already has a run of this workflow version (automatic triggers only).
    Exists {
        run_id: String,
    },
}

/// Creates a queued run. With `once_per_version`, a second run of the same lead and
/// workflow version is refused, naming the first: ingest and activation never run a lead
/// twice, a manual rerun always does.
pub async fn create_run(
    store: &dyn Store,
    workspace_id: &str,
    run: &Run,
    once_per_version: bool,
) -> Result<Created, StoreError> {
    let mut ops = Vec::with_capacity(4);
    if once_per_version {
        let marker = Item::new(marker_key(workspace_id, run), &json!({"run_id": run.id}))?;
        ops.push(WriteOp::Put { item: marker, condition: Condition::NotExists });
    }
    ops.push(WriteOp::Put { item: run_item(workspace_id, run)?, condition: Condition::NotExists });
    let lookup = Item::new(lookup_key(workspace_id, &run.id), &json!({"lead_id": run.lead_id}))?;
    ops.push(WriteOp::Put { item: lookup, condition: Condition::Always });
    ops.push(WriteOp::Put { item: latest_item(workspace_id, run)?, condition: Condition::Always });
    match store.transact_write(ops).await {
        Ok(()) => Ok(Created::New),
        Err(StoreError::TransactionCanceled { failed_op: Some(0) }) if once_per_version => {
            let marker = store.get(&marker_key(workspace_id, run)).await?;
            let run_id = marker.and_then(|m| m.data.get("run_id").and_then(Value::as_str).map(str::to_owned));
            Ok(Created::Exists { run_id: run_id.unwrap_or_default() })
        }
        Err(e) => Err(e),
    }
}

/// A run (without its fetched outputs) and its stored version.
pub async fn get_run(
    store: &dyn Store,
    workspace_id: &str,
    lead_id: &str,
    run_id: &str,
) -> Result<Option<(Run, u64)>, StoreError> {
    super::get_versioned(store, &run_key(workspace_id, lead_id, run_id)).await
}

/// The lead a run belongs to.
pub async fn lead_of_run(store: &dyn Store, workspace_id: &str, run_id: &str) -> Result<Option<String>, StoreError> {
    let item = store.get(&lookup_key(workspace_id, run_id)).await?;
    Ok(item.and_then(|i| i.data.get("lead_id").and_then(Value::as_str).map(str::to_owned)))
}

/// Fetched outputs of a run: output key -> JSON value.
pub async fn outputs(
    store: &dyn Store,
    workspace_id: &str,
    lead_id: &str,
    run_id: &str,
) -> Result<Map<String, Value>, StoreError> {
    let prefix = output_prefix(run_id);
    let mut query = Query::table(lead_pk(workspace_id, lead_id)).prefix(prefix.clone()).limit(100);
    let mut out = Map::new();
    for _ in 0..10 {
        let page = store.query(&query).await?;
        for item in page.items {
            let Some(name) = item.key.sk.strip_prefix(&prefix) else { continue };
            let text = item.data.get("json").and_then(Value::as_str).unwrap_or("null");
            let value = serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("output {name}: {e}")))?;
            out.insert(name.to_owned(), value);
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// Writes a run read at `version`, with any newly fetched outputs and (when its status
/// changed) the lead's latest-run summary, in one write. `Ok(false)`: someone else changed
/// the run meanwhile; nothing was written.
pub async fn save_run(
    store: &dyn Store,
    workspace_id: &str,
    run: &Run,
    version: u64,
    fetched: &[(String, String)],
    summary: bool,
) -> Result<bool, StoreError> {
    let item = run_item(workspace_id, run)?.with_version(version + 1);
    if fetched.is_empty() && !summary {
        return match store.put(item, Condition::VersionIs(version)).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        };
    }
    let mut ops = vec![WriteOp::Put { item, condition: Condition::VersionIs(version) }];
    for (output_key, json_text) in fetched {
        let key = Key::new(lead_pk(workspace_id, &run.lead_id), format!("{}{output_key}", output_prefix(&run.id)));
        ops.push(WriteOp::Put { item: Item::new(key, &json!({"json": json_text}))?, condition: Condition::Always });
    }
    if summary {
        ops.push(WriteOp::Put { item: latest_item(workspace_id, run)?, condition: Condition::Always });
    }
    super::transact_if_first_holds(store, ops).await
}

/// A lead's runs, newest first.
pub async fn list_runs(
    store: &dyn Store,
    workspace_id: &str,
    lead_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    super::newest_first(store, lead_pk(workspace_id, lead_id), "RUN#", limit, cursor).await
}

/// The latest run of each of these leads that has one: lead id -> summary.
pub async fn latest(
    store: &dyn Store,
    workspace_id: &str,
    lead_ids: &[String],
) -> Result<HashMap<String, RunSummary>, StoreError> {
    let keys: Vec<Key> = lead_ids.iter().map(|id| latest_key(workspace_id, id)).collect();
    let mut out = HashMap::new();
    for item in store.batch_get(&keys).await? {
        let lead_id = item.key.pk.rsplit("#LEAD#").next().unwrap_or_default().to_owned();
        out.insert(lead_id, item.parse()?);
    }
    Ok(out)
}
