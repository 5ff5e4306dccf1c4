//! What starts workflow runs. Each trigger only records and queues work:
//! - ingest into an active campaign with a workflow queues a `workflow_start` task per
//!   campaign (up to 500 leads each);
//! - activating a campaign queues a `workflow_backfill` that pages through its leads and
//!   starts runs for those without one;
//! - `POST /api/v1/leads/{id}/workflow-runs` creates a run at once (a rerun).
//!
//! `workflow_start` creates each lead's run at most once per workflow version (a marker
//! item, written with the run) and queues one `workflow_run` task per run.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::context::AppContext;
use crate::domain::campaign::{Campaign, CampaignStatus};
use crate::domain::lead::Lead;
use crate::domain::workflow::{Run, RunTrigger, Workflow};
use crate::queue::QueueError;
use crate::queue::{LEAD_IDS_PER_TASK, Task, TaskError};
use crate::repo::leads::{self, LeadFilter};
use crate::repo::workflows::{self, Created};
use crate::store::{Cursor, StoreError};
use crate::support::ids;

pub const RUN_ID_PREFIX: &str = "wfr";
/// Leads a backfill task looks at before queueing the next page.
const BACKFILL_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<TriggerError> for TaskError {
    fn from(e: TriggerError) -> Self {
        TaskError::Failed(e.to_string())
    }
}

fn has_nodes(workflow: &Workflow) -> bool {
    !workflow.nodes.is_empty()
}

/// After ingest: queue runs for the leads that landed in active campaigns with a workflow.
pub async fn on_ingest(
    ctx: &AppContext,
    workspace_id: &str,
    stored: &[Lead],
    campaigns: &HashMap<String, Campaign>,
) -> Result<(), TriggerError> {
    let active: Vec<&str> =
        campaigns.values().filter(|c| c.status == CampaignStatus::Active).map(|c| c.id.as_str()).collect();
    if active.is_empty() {
        return Ok(());
    }
    let flows = workflows::get_many(&*ctx.store, workspace_id, &active).await?;
    let mut messages = Vec::new();
    for workflow in flows.iter().filter(|w| has_nodes(w)) {
        let ids: Vec<String> =
            stored.iter().filter(|l| l.campaign_id == workflow.campaign_id).map(|l| l.id.clone()).collect();
        for chunk in ids.chunks(LEAD_IDS_PER_TASK) {
            let task = Task::WorkflowStart {
                workspace_id: workspace_id.to_owned(),
                campaign_id: workflow.campaign_id.clone(),
                version: workflow.workflow_version,
                lead_ids: chunk.to_vec(),
                trigger: RunTrigger::Ingest,
            };
            messages.push(task.message());
        }
    }
    if !messages.is_empty() {
        ctx.queue.send(messages).await?;
    }
    Ok(())
}

/// After activation: queue the backfill of leads without a run, if there is a workflow.
pub async fn on_activate(ctx: &AppContext, workspace_id: &str, campaign_id: &str) -> Result<(), TriggerError> {
    let Some(workflow) = workflows::get(&*ctx.store, workspace_id, campaign_id).await? else {
        return Ok(());
    };
    if has_nodes(&workflow) {
        let task = Task::WorkflowBackfill {
            workspace_id: workspace_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            cursor: None,
        };
        ctx.queue.send(vec![task.message()]).await?;
    }
    Ok(())
}

fn run_task(workspace_id: &str, lead_id: &str, run_id: &str) -> Task {
    Task::WorkflowRun { workspace_id: workspace_id.to_owned(), lead_id: lead_id.to_owned(), run_id: run_id.to_owned() }
}

/// The `workflow_start` task: creates (once per version) and queues the leads' runs.
/// Redelivered, it re-queues the runs it created before; running a run twice is a no-op.
pub async fn start_runs(
    ctx: &AppContext,
    workspace_id: &str,
    campaign_id: &str,
    version: u32,
    lead_ids: &[String],
    trigger: RunTrigger,
) -> Result<(), TriggerError> {
    let Some(workflow) = workflows::get_version(&*ctx.store, workspace_id, campaign_id, version).await? else {
        tracing::warn!(campaign_id, version, "workflow version not found; no runs started");
        return Ok(());
    };
    let now = ctx.now();
    let created: Vec<(String, String)> = stream::iter(lead_ids.iter().cloned())
        .map(|lead_id| {
            let workflow = &workflow;
            async move {
                let run = Run::new(ids::new_id(RUN_ID_PREFIX), &lead_id, workflow, trigger, now);
                let run_id = match workflows::create_run(&*ctx.store, workspace_id, &run, true).await? {
                    Created::New => run.id,
                    Created::Exists { run_id } => run_id,
                };
                Ok::<_, StoreError>((lead_id, run_id))
            }
        })
        .buffer_unordered(crate::queue::TASK_CONCURRENCY)
        .try_collect()
        .await?;
    let messages = created
        .iter()
        .filter(|(_, run)| !run.is_empty())
        .map(|(lead, run)| run_task(workspace_id, lead, run).message());
    ctx.queue.send(messages.collect()).await?;
    Ok(())
}

/// The `workflow_backfill` task: one page of the campaign's leads, runs for those
/// without any, then the next page as its own task.
pub async fn backfill(
    ctx: &AppContext,
    workspace_id: &str,
    campaign_id: &str,
    cursor: Option<&str>,
) -> Result<(), TriggerError> {
    let campaign = crate::repo::campaigns::get(&*ctx.store, workspace_id, campaign_id).await?;
    if campaign.is_none_or(|c| c.status != CampaignStatus::Active) {
        return Ok(());
    }
    let Some(workflow) = workflows::get(&*ctx.store, workspace_id, campaign_id).await? else {
        return Ok(());
    };
    let cursor = match cursor.map(Cursor::decode).transpose() {
        Ok(cursor) => cursor,
        Err(e) => {
            tracing::error!(campaign_id, error = %e, "backfill cursor unreadable; stopping");
            return Ok(());
        }
    };
    let filter = LeadFilter { campaign_id: Some(campaign_id.to_owned()), status: None };
    let page = leads::list(&*ctx.store, workspace_id, &filter, BACKFILL_PAGE, cursor).await?;
    let ids: Vec<String> = page.items.iter().filter_map(|i| i.parse::<Lead>().ok()).map(|l| l.id).collect();
    let latest = workflows::latest(&*ctx.store, workspace_id, &ids).await?;
    let without: Vec<String> = ids.into_iter().filter(|id| !latest.contains_key(id)).collect();
    if !without.is_empty() {
        start_runs(ctx, workspace_id, campaign_id, workflow.workflow_version, &without, RunTrigger::Activation).await?;
    }
    if let Some(next) = page.next {
        let task = Task::WorkflowBackfill {
            workspace_id: workspace_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            cursor: Some(next.encode()),
        };
        ctx.queue.send(vec![task.message()]).await?;
    }
    Ok(())
}

/// A rerun of one lead with its campaign's current workflow; `None` if there is none.
pub async fn rerun(ctx: &AppContext, workspace_id: &str, lead: &Lead) -> Result<Option<Run>, TriggerError> {
    let Some(workflow) = workflows::get(&*ctx.store, workspace_id, &lead.campaign_id).await? else {
        return Ok(None);
    };
    if !has_nodes(&workflow) {
        return Ok(None);
    }
    let run = Run::new(ids::new_id(RUN_ID_PREFIX), &lead.id, &workflow, RunTrigger::Manual, ctx.now());
    workflows::create_run(&*ctx.store, workspace_id, &run, false).await?;
    ctx.queue.send(vec![run_task(workspace_id, &lead.id, &run.id).message()]).await?;
    Ok(Some(run))
}
