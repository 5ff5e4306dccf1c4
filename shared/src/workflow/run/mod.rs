//! Executing one run (the `workflow_run` task): its nodes in order, each result stored
//! before the next node starts. A redelivered task therefore skips every node that
//! already succeeded (no API is called twice for it), and a run a worker holds (a lease
//! renewed on every write) is not executed by a second worker at the same time.
//! Transient fetch failures (timeout, connection, 429, 5xx) are retried by re-queueing
//! the task after the request's backoff or the answer's `Retry-After`, whichever is longer.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::request::{self, CallError};
use super::template::{self, Mode, TemplateError};
use crate::context::AppContext;
use crate::domain::api_request::WorkspaceSettings;
use crate::domain::campaign::Campaign;
use crate::domain::lead::Lead;
use crate::domain::workflow::{
    MAX_MESSAGE_BYTES, Node, NodeError, NodeKind, NodeStatus, OnError, Run, RunStatus, Workflow,
};
use crate::domain::workspace::Workspace;
use crate::queue::MAX_DELAY;
use crate::queue::{Task, TaskError};
use crate::repo::{self, api_requests, campaigns, leads, workflows, workspaces};
use crate::store::StoreError;
use crate::support::deadline;

mod enrich_nodes;

use enrich_nodes::*;

/// How long a worker holds a run between writes (longer than any one node may take).
const LEASE: Duration = Duration::from_secs(60);
/// After this long a task starts no further node: it queues its own continuation, so a
/// long workflow never holds a worker long. On Lambda a node also starts only if it can
/// finish before the invocation's deadline ([`node_budget`]).
const TASK_BUDGET: Duration = Duration::from_secs(20);
/// The most a verify or find node is given before the deadline check lets it start.
const ENRICH_NODE_BUDGET: Duration = Duration::from_secs(40);

/// The longest `kind` may take once started: its outbound calls' own time caps. A node
/// whose budget does not fit before the invocation's deadline waits for the run's next
/// task instead of being cut off half-way (a call made, its answer not recorded).
fn node_budget(ctx: &AppContext, kind: &NodeKind, settings: &WorkspaceSettings) -> Duration {
    let enrich = &ctx.config.enrich;
    match kind {
        NodeKind::FetchApiData { .. } => settings.call_timeout(u64::MAX),
        NodeKind::VerifyEmail { .. } | NodeKind::FindEmail { .. } => {
            (enrich.dns_timeout + enrich.crawl_budget + enrich.smtp_timeout * 2).min(ENRICH_NODE_BUDGET)
        }
        // A provider push may take a lookup and the push call.
        NodeKind::Push { .. } => ctx.config.outbound_timeout * 2,
        NodeKind::Condition { .. } | NodeKind::SetFields { .. } | NodeKind::RenderMessage { .. } => Duration::ZERO,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("run {0} is being executed by another worker")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

impl From<RunError> for TaskError {
    fn from(e: RunError) -> Self {
        TaskError::Failed(e.to_string())
    }
}

/// What one node did.
enum Outcome {
    Done {
        output: Option<(String, Value, Option<String>)>,
        result: Option<bool>,
        push_id: Option<String>,
        cached: bool,
    },
    /// A condition was false: jump to this node, or (None) stop the run.
    Halt {
        result: bool,
        goto: Option<String>,
    },
    Retry {
        error: NodeError,
        delay: Duration,
    },
    Failed {
        error: NodeError,
        then: OnError,
    },
}

fn node_error(code: &str, message: impl Into<String>, status: Option<u16>) -> NodeError {
    NodeError { code: code.to_owned(), message: message.into(), status }
}

fn template_failure(e: TemplateError) -> Outcome {
    Outcome::Failed { error: node_error("template_error", e.to_string(), None), then: OnError::Fail }
}

/// Everything the nodes read, loaded once per task.
struct Scope {
    run_id: String,
    workspace: Option<Workspace>,
    lead: Lead,
    campaign: Option<Campaign>,
    settings: Option<WorkspaceSettings>,
    outputs: Map<String, Value>,
}

impl Scope {
    fn vars(&self, node: &Node) -> Value {
        super::variables(
            self.workspace.as_ref(),
            Some(&self.lead),
            self.campaign.as_ref(),
            &self.outputs,
            serde_json::to_value(node).ok(),
        )
    }
}

/// Runs (or resumes) a run. Finished runs are left alone.
pub async fn execute(ctx: &AppContext, workspace_id: &str, lead_id: &str, run_id: &str) -> Result<(), RunError> {
    let store = &*ctx.store;
    let Some((mut run, mut version)) = workflows::get_run(store, workspace_id, lead_id, run_id).await? else {
        tracing::warn!(run_id, "workflow run not found");
        return Ok(());
    };
    if run.status.is_final() {
        return Ok(());
    }
    let now = ctx.now().unix_millis();
    if run.lease_until.is_some_and(|until| until > now) {
        return Err(RunError::Busy(run.id));
    }
    run.status = RunStatus::Running;
    hold(&mut run, ctx);
    if !workflows::save_run(store, workspace_id, &run, version, &[], true).await? {
        return Err(RunError::Busy(run.id));
    }
    version += 1;

    // Everything the nodes read, in one batch read.
    let keys = [
        workflows::version_key(workspace_id, &run.campaign_id, run.workflow_version),
        leads::key(workspace_id, lead_id),
        workspaces::workspace_key(workspace_id),
        campaigns::key(workspace_id, &run.campaign_id),
        api_requests::settings_key(workspace_id),
    ];
    let mut found: Vec<Option<crate::store::Item>> = vec![None; keys.len()];
    for item in store.batch_get(&keys).await? {
        if let Some(slot) = keys.iter().position(|k| *k == item.key) {
            found[slot] = Some(item);
        }
    }
    let workflow: Option<Workflow> = parse_slot(&found, 0)?;
    let lead: Option<Lead> = parse_slot(&found, 1)?;
    let workspace: Option<Workspace> = parse_slot(&found, 2)?;
    let campaign: Option<Campaign> = parse_slot(&found, 3)?;
    let settings: Option<WorkspaceSettings> = parse_slot(&found, 4)?;
    let (Some(workflow), Some(lead)) = (workflow, lead) else {
        let error = node_error("run_abandoned", "the lead or its workflow version no longer exists", None);
        run.finish(RunStatus::Stopped, Some(error), ctx.now());
        workflows::save_run(store, workspace_id, &run, version, &[], true).await?;
        return Ok(());
    };
    let stored_outputs = |n: &crate::domain::workflow::NodeRun| {
        matches!(n.node_type.as_str(), "fetch_api_data" | "verify_email" | "find_email")
    };
    let fetched_before = run.nodes.iter().any(|n| stored_outputs(n) && n.status == NodeStatus::Succeeded);
    let mut outputs = run.outputs.clone();
    if fetched_before {
        outputs.extend(workflows::outputs(store, workspace_id, lead_id, &run.id).await?);
    }
    let mut scope = Scope {
        run_id: run.id.clone(),
        workspace,
        campaign,
        lead,
        settings: Some(settings.unwrap_or_default()),
        outputs,
    };
    run_nodes(ctx, workspace_id, &workflow, &mut run, version, &mut scope).await
}

fn parse_slot<T: serde::de::DeserializeOwned>(
    found: &[Option<crate::store::Item>],
    slot: usize,
) -> Result<Option<T>, StoreError> {
    found[slot].as_ref().map(|i| i.parse()).transpose()
}

fn hold(run: &mut Run, ctx: &AppContext) {
    let now = ctx.now();
    run.lease_until = Some(now.unix_millis() + LEASE.as_millis() as i64);
    run.updated_at = now;
}

async fn run_nodes(
    ctx: &AppContext,
    workspace_id: &str,
    workflow: &Workflow,
    run: &mut Run,
    mut version: u64,
    scope: &mut Scope,
) -> Result<(), RunError> {
    let store = &*ctx.store;
    let task_started = Instant::now();
    let mut index = 0;
    while index < workflow.nodes.len() {
        let node = &workflow.nodes[index];
        if matches!(run.nodes[index].status, NodeStatus::Succeeded | NodeStatus::Skipped | NodeStatus::Failed) {
            index += 1;
            continue;
        }
        let settings = scope.settings.unwrap_or_default();
        if task_started.elapsed() > TASK_BUDGET || !deadline::allows(node_budget(ctx, &node.kind, &settings)) {
            run.lease_until = None;
            if !workflows::save_run(store, workspace_id, run, version, &[], false).await? {
                return Err(RunError::Busy(run.id.clone()));
            }
            let task = Task::WorkflowRun {
                workspace_id: workspace_id.to_owned(),
                lead_id: run.lead_id.clone(),
                run_id: run.id.clone(),
            };
            ctx.queue.send(vec![task.message()]).await?;
            return Ok(());
        }
        let started = Instant::now();
        let attempt = run.nodes[index].attempts + 1;
        let outcome = execute_node(ctx, workspace_id, node, attempt, scope).await?;
        let state = &mut run.nodes[index];
        state.attempts = attempt;
        state.duration_ms += started.elapsed().as_millis() as u64;
        state.next_attempt_at = None;
        let mut fetched = Vec::new();
        let mut next = index + 1;
        let mut end: Option<(RunStatus, Option<NodeError>)> = None;
        match outcome {
            Outcome::Done { output, result, push_id, cached } => {
                state.status = NodeStatus::Succeeded;
                state.error = None;
                state.result = result;
                state.push_id = push_id;
                state.cached = cached;
                if let Some((key, value, separate)) = output {
                    match separate {
                        Some(text) => fetched.push((key.clone(), text)),
                        None => {
                            if let Value::String(text) = &value {
                                run.message = Some(text.clone());
                            }
                            run.outputs.insert(key.clone(), value.clone());
                        }
                    }
                    scope.outputs.insert(key, value);
                }
            }
            Outcome::Halt { result, goto } => {
                state.status = NodeStatus::Succeeded;
                state.result = Some(result);
                match goto.and_then(|id| workflow.nodes.iter().position(|n| n.id == id)) {
                    Some(target) => {
                        for skipped in &mut run.nodes[index + 1..target] {
                            skipped.status = NodeStatus::Skipped;
                        }
                        next = target;
                    }
                    None => end = Some((RunStatus::Stopped, None)),
                }
            }
            Outcome::Retry { error, delay } => {
                state.status = NodeStatus::Retrying;
                state.error = Some(error);
                let due = ctx.now().plus(delay);
                state.next_attempt_at = Some(due);
                run.lease_until = None;
                run.updated_at = ctx.now();
                if workflows::save_run(store, workspace_id, run, version, &[], false).await? {
                    let task = Task::WorkflowRun {
                        workspace_id: workspace_id.to_owned(),
                        lead_id: run.lead_id.clone(),
                        run_id: run.id.clone(),
                    };
                    ctx.queue.send(vec![task.delayed(delay)]).await?;
                    return Ok(());
                }
                return Err(RunError::Busy(run.id.clone()));
            }
            Outcome::Failed { error, then } => {
                state.status = NodeStatus::Failed;
                state.error = Some(error.clone());
                match then {
                    OnError::Fail => end = Some((RunStatus::Failed, Some(error))),
                    OnError::SkipLead => end = Some((RunStatus::Stopped, Some(error))),
                    OnError::Continue => {}
                }
            }
        }
        let last = next >= workflow.nodes.len();
        if end.is_none() && last {
            end = Some((RunStatus::Succeeded, None));
        }
        let summary = end.is_some();
        match end {
            Some((status, error)) => run.finish(status, error, ctx.now()),
            None => hold(run, ctx),
        }
        // A node with an effect outside the run (a call, a lead change, a push) is recorded
        // before the next starts; conditions and renders are only recomputed if lost, so
        // they ride along with the next write.
        if summary || has_effect(&node.kind) {
            if !workflows::save_run(store, workspace_id, run, version, &fetched, summary).await? {
                return Err(RunError::Busy(run.id.clone()));
            }
            version += 1;
        }
        if summary {
            return Ok(());
        }
        index = next;
    }
    // Only reached by a workflow whose nodes had all run before (a redelivered task).
    run.finish(RunStatus::Succeeded, None, ctx.now());
    if !workflows::save_run(store, workspace_id, run, version, &[], true).await? {
        return Err(RunError::Busy(run.id.clone()));
    }
    Ok(())
}

async fn execute_node(
    ctx: &AppContext,
    workspace_id: &str,
    node: &Node,
    attempt: u32,
    scope: &mut Scope,
) -> Result<Outcome, RunError> {
    let vars = scope.vars(node);
    Ok(match &node.kind {
        NodeKind::FetchApiData { api_request_id, output_key, on_error } => {
            let Some((request, _)) = api_requests::get(&*ctx.store, workspace_id, api_request_id).await? else {
                let message = format!("API request `{api_request_id}` no longer exists");
                return Ok(Outcome::Failed {
                    error: node_error("api_request_not_found", message, None),
                    then: *on_error,
                });
            };
            let settings = scope.settings.unwrap_or_default();
            // The same key on every attempt and redelivery of this run's call for this node.
            let key = request::idempotency_key(&scope.run_id, &node.id);
            let answer = match request::render(ctx, &request, &vars) {
                Ok(rendered) => request::call(ctx, workspace_id, &request, &rendered, &settings, Some(&key)).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(answer) => Outcome::Done {
                    output: Some((output_key.clone(), answer.json, Some(answer.text))),
                    result: None,
                    push_id: None,
                    cached: answer.cached,
                },
                Err(e) if e.is_transient() && attempt < request.retry.attempts => {
                    let delay = request.retry.delay_before(attempt + 1, e.retry_after()).min(MAX_DELAY);
                    Outcome::Retry { error: call_error(&e), delay }
                }
                Err(e) => Outcome::Failed { error: call_error(&e), then: *on_error },
            }
        }
        NodeKind::Condition { condition, else_goto } => match template::condition("if", condition, &vars) {
            Ok(true) => Outcome::Done { output: None, result: Some(true), push_id: None, cached: false },
            Ok(false) => Outcome::Halt { result: false, goto: else_goto.clone() },
            Err(e) => template_failure(e),
        },
        NodeKind::RenderMessage { template: source, output_key } => {
            match template::render("template", source, Mode::Text, &vars, MAX_MESSAGE_BYTES) {
                Ok(text) => Outcome::Done {
                    output: Some((output_key.clone(), Value::String(text), None)),
                    result: None,
                    push_id: None,
                    cached: false,
                },
                Err(e) => template_failure(e),
            }
        }
        NodeKind::SetFields { fields } => {
            let mut values = Vec::with_capacity(fields.len());
            for (name, source) in fields {
                match template::render(&format!("fields.{name}"), source, Mode::Text, &vars, 10_000) {
                    Ok(text) => values.push((name.clone(), text)),
                    Err(e) => return Ok(template_failure(e)),
                }
            }
            match set_fields(ctx, workspace_id, &scope.lead.id, &values).await? {
                Some(lead) => {
                    scope.lead = lead;
                    Outcome::Done { output: None, result: None, push_id: None, cached: false }
                }
                None => Outcome::Failed {
                    error: node_error("lead_not_found", "the lead was deleted during the run", None),
                    then: OnError::Fail,
                },
            }
        }
        NodeKind::VerifyEmail { output_key, on_error } => {
            verify_email(ctx, workspace_id, &scope.lead, output_key, *on_error).await?
        }
        NodeKind::FindEmail { .. } => find_email(ctx, workspace_id, &scope.lead, &node.kind, &vars).await?,
        NodeKind::Push { destination, webhook_url } => {
            let target =
                match crate::push::resolve_target(ctx, workspace_id, *destination, webhook_url.as_deref()).await {
                    Ok(target) => target,
                    Err(crate::push::PushError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        return Ok(Outcome::Failed {
                            error: node_error("push_failed", e.to_string(), None),
                            then: OnError::Fail,
                        });
                    }
                };
            match crate::push::start(ctx, workspace_id, target, vec![scope.lead.id.clone()]).await {
                Ok(summary) if summary.dispatched => {
                    Outcome::Done { output: None, result: None, push_id: Some(summary.push_id), cached: false }
                }
                Ok(summary) => Outcome::Failed {
                    error: node_error(
                        "push_failed",
                        format!(
                            "the push did not dispatch ({}); see GET /api/v1/pushes/{}",
                            summary.provider_response, summary.push_id
                        ),
                        summary.provider_status_code,
                    ),
                    then: OnError::Fail,
                },
                Err(crate::push::PushError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    Outcome::Failed { error: node_error("push_failed", e.to_string(), None), then: OnError::Fail }
                }
            }
        }
    })
}

fn has_effect(kind: &NodeKind) -> bool {
    matches!(
        kind,
        NodeKind::FetchApiData { .. }
            | NodeKind::SetFields { .. }
            | NodeKind::Push { .. }
            | NodeKind::VerifyEmail { .. }
            | NodeKind::FindEmail { .. }
    )
}

fn call_error(e: &CallError) -> NodeError {
    node_error(e.code(), e.to_string(), e.status())
}

/// Writes rendered values into the lead (empty text clears a field) and announces it.
async fn set_fields(
    ctx: &AppContext,
    workspace_id: &str,
    lead_id: &str,
    values: &[(String, String)],
) -> Result<Option<Lead>, RunError> {
    let now = ctx.now();
    let apply = |lead: &mut Lead| {
        for (name, text) in values {
            let value = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
            if let Some(custom) = name.strip_prefix("custom_fields.") {
                match value {
                    Some(v) => lead.custom_fields.insert(custom.to_owned(), Value::String(v)),
                    None => lead.custom_fields.remove(custom),
                };
                continue;
            }
            let slot = match name.as_str() {
                "name" => &mut lead.name,
                "email" => &mut lead.email,
                "first_name" => &mut lead.first_name,
                "last_name" => &mut lead.last_name,
                "company" => &mut lead.company,
                "website" => &mut lead.website,
                "phone" => &mut lead.phone,
                "position" => &mut lead.position,
                "twitter" => &mut lead.twitter,
                "linkedin" => &mut lead.linkedin,
                "notes" => &mut lead.notes,
                "signal_type" => &mut lead.signal_type,
                _ => continue,
            };
            *slot = value;
        }
        lead.updated_at = now;
        Ok::<(), std::convert::Infallible>(())
    };
    let key = leads::key(workspace_id, lead_id);
    match repo::update_versioned(&*ctx.store, &key, apply, |l| leads::item(workspace_id, l)).await {
        Ok(lead) => {
            crate::queue::emit_leads_saved(&*ctx.queue, workspace_id, &[lead_id.to_owned()]).await?;
            Ok(Some(lead))
        }
        Err(repo::UpdateError::NotFound) => Ok(None),
        Err(repo::UpdateError::Store(e)) => Err(e.into()),
        Err(repo::UpdateError::Rejected(never)) => match never {},
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests;
