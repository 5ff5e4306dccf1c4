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

/// How long a worker holds a run between writes (longer than any one node may take).
const LEASE: Duration = Duration::from_secs(60);
/// After this long a task starts no further node: it queues its own continuation, so a
/// long workflow never outlives the dispatcher's Lambda timeout (60 s).
const TASK_BUDGET: Duration = Duration::from_secs(20);

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
        if task_started.elapsed() > TASK_BUDGET {
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

/// The enrichment service's verdict on the lead's email, stored as the node's output.
#[cfg(feature = "enrich")]
async fn verify_email(
    ctx: &AppContext,
    workspace_id: &str,
    lead: &Lead,
    output_key: &str,
    on_error: OnError,
) -> Result<Outcome, RunError> {
    let Some(email) = lead.email.as_deref().filter(|e| !e.trim().is_empty()) else {
        return Ok(Outcome::Failed {
            error: node_error("no_email", "the lead has no email to verify", None),
            then: on_error,
        });
    };
    match crate::enrich::verify::verify_email(ctx, workspace_id, email).await {
        Ok(verification) => {
            let value = serde_json::to_value(&verification).unwrap_or(Value::Null);
            let text = value.to_string();
            Ok(Outcome::Done {
                output: Some((output_key.to_owned(), value, Some(text))),
                result: None,
                push_id: None,
                cached: verification.cached,
            })
        }
        Err(crate::enrich::EnrichError::Store(e)) => Err(e.into()),
        Err(e) => Ok(Outcome::Failed { error: node_error("verification_failed", e.to_string(), None), then: on_error }),
    }
}

#[cfg(not(feature = "enrich"))]
async fn verify_email(
    _ctx: &AppContext,
    _workspace_id: &str,
    _lead: &Lead,
    _output_key: &str,
    on_error: OnError,
) -> Result<Outcome, RunError> {
    let message = "this build has no enrichment service (cargo feature `enrich`)";
    Ok(Outcome::Failed { error: node_error("verification_failed", message, None), then: on_error })
}

/// The email finder's answer for the lead, stored as the node's output. Inputs are the
/// node's templates, else the lead's name parts, its website's or (company) email's
/// domain, and its company resolved through the workspace's leads.
#[cfg(feature = "find")]
async fn find_email(
    ctx: &AppContext,
    workspace_id: &str,
    lead: &Lead,
    kind: &NodeKind,
    vars: &Value,
) -> Result<Outcome, RunError> {
    use crate::enrich::find::{finders, names::MailName};
    let NodeKind::FindEmail { output_key, on_error, first_name, last_name, domain, company } = kind else {
        return Ok(Outcome::Failed {
            error: node_error("find_failed", "not a find_email node", None),
            then: OnError::Fail,
        });
    };
    let on_error = *on_error;
    let failed =
        |code: &str, message: String| Ok(Outcome::Failed { error: node_error(code, message, None), then: on_error });
    let render = |field: &str, source: &Option<String>| -> Result<Option<String>, TemplateError> {
        let Some(source) = source else { return Ok(None) };
        let text = template::render(field, source, Mode::Text, vars, 1_000)?;
        Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
    };
    // Each input: its template's text, or (no template, or it rendered empty) the lead's.
    let mut inputs = Vec::with_capacity(4);
    for (field, source) in
        [("first_name", first_name), ("last_name", last_name), ("domain", domain), ("company", company)]
    {
        match render(field, source) {
            Ok(value) => inputs.push(value),
            Err(e) => return failed("template_error", e.to_string()),
        }
    }
    let [first, last, domain, company] = <[Option<String>; 4]>::try_from(inputs).unwrap_or_default();
    let (lead_first, lead_last) = lead.name_parts();
    let company = company.or_else(|| lead.company.clone());
    let Some(name) = first.or(lead_first).zip(last.or(lead_last)).and_then(|(f, l)| MailName::new(&f, &l)) else {
        return failed("no_name", "the lead has no first and last name with letters (set first_name/last_name)".into());
    };
    let domain = match domain {
        Some(text) => match finders::domain_name(&text) {
            Some(domain) => Some(domain),
            None => {
                let message = format!("domain: `{}` is not a domain", crate::support::text::truncate(&text, 64));
                return failed("invalid_domain", message);
            }
        },
        None => lead.website.as_deref().and_then(finders::domain_name).or_else(|| {
            let checked = crate::enrich::verify::offline(lead.email.as_deref()?);
            checked.domain.filter(|_| !checked.webmail && !checked.disposable)
        }),
    };
    let domain = match (domain, &company) {
        (Some(domain), _) => domain,
        (None, Some(company)) => match finders::company_domain(ctx, workspace_id, company).await {
            Ok(Some(domain)) => domain,
            Ok(None) => {
                let message = format!(
                    "no domain: the lead has no website or company email, and no lead of this workspace at `{company}` has one"
                );
                return failed("no_domain", message);
            }
            Err(crate::enrich::EnrichError::Store(e)) => return Err(e.into()),
            Err(e) => return failed("find_failed", e.to_string()),
        },
        (None, None) => {
            return failed("no_domain", "no domain: the lead has no website, company email or company".into());
        }
    };
    match finders::find_email(ctx, workspace_id, &name, &domain, company.as_deref()).await {
        Ok(found) => {
            let value = serde_json::to_value(&found).unwrap_or(Value::Null);
            let text = value.to_string();
            Ok(Outcome::Done {
                output: Some((output_key.clone(), value, Some(text))),
                result: None,
                push_id: None,
                cached: false,
            })
        }
        Err(crate::enrich::EnrichError::Store(e)) => Err(e.into()),
        Err(e) => failed("find_failed", e.to_string()),
    }
}

#[cfg(not(feature = "find"))]
async fn find_email(
    _ctx: &AppContext,
    _workspace_id: &str,
    _lead: &Lead,
    kind: &NodeKind,
    _vars: &Value,
) -> Result<Outcome, RunError> {
    let then = match kind {
        NodeKind::FindEmail { on_error, .. } => *on_error,
        _ => OnError::Fail,
    };
    let message = "this build has no email finder (cargo feature `find`)";
    Ok(Outcome::Failed { error: node_error("find_failed", message, None), then })
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
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::domain::api_request::{ApiRequest, ApiRequestInput};
    use crate::domain::campaign::LeadSource;
    use crate::domain::lead::LeadFields;
    use crate::domain::workflow::RunTrigger;
    use crate::workflow::{save, trigger};

    /// A local JSON API that counts its calls.
    async fn counting_api() -> (String, Arc<AtomicUsize>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"plan": "pro"}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/profile", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    /// The queue delivers at least once: a second `workflow_start` for the same leads
    /// creates no second run, and a `workflow_run` redelivered after its fetch node
    /// succeeded (the worker died before the next node) never calls the API again.
    async fn redelivered_tasks_never_call_an_api_twice(ctx: AppContext) {
        let store = &*ctx.store;
        let ws = workspaces::create_workspace(store, "Runs", ctx.now()).await.unwrap().id;
        let campaign =
            Campaign::new(crate::support::ids::new_id("cmp"), "Runs", LeadSource::Webhook, None, ctx.now()).unwrap();
        campaigns::create(store, &ws, &campaign).await.unwrap();
        let fields = LeadFields { first_name: Some("Ada".into()), ..LeadFields::default() };
        let lead = Lead::new("req_RUNS_0001".into(), campaign.id.clone(), None, fields, ctx.now());
        leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
        let (url, calls) = counting_api().await;
        let input: ApiRequestInput =
            serde_json::from_value(json!({"name": "Profile", "method": "GET", "url": url})).unwrap();
        let request = ApiRequest::new("apr_RUNS".into(), input, &WorkspaceSettings::default(), ctx.now()).unwrap();
        api_requests::create(store, &ws, &request).await.unwrap();
        let doc = json!({"nodes": [
            {"id": "profile", "type": "fetch_api_data", "api_request_id": "apr_RUNS", "output_key": "p"},
            {"id": "opener", "type": "render_message", "template": "{{ contact.first_name }} on {{ workflow.p.plan }}", "output_key": "m"}
        ]});
        let workflow = save::save(&ctx, &ws, &campaign.id, &doc).await.unwrap();

        let ids = vec![lead.id.clone()];
        trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest)
            .await
            .unwrap();
        trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest)
            .await
            .unwrap();
        let page = workflows::list_runs(store, &ws, &lead.id, 10, None).await.unwrap();
        assert_eq!(page.items.len(), 1, "one run per lead and workflow version");
        let run: Run = page.items[0].parse().unwrap();

        execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
        let (done, version) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
        assert_eq!((done.status, done.message.as_deref()), (RunStatus::Succeeded, Some("Ada on pro")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a finished run is left alone");

        // As if the worker died after storing the fetch and before the render.
        let mut crashed = done.clone();
        crashed.status = RunStatus::Running;
        crashed.finished_at = None;
        crashed.outputs.remove("m");
        crashed.message = None;
        crashed.nodes[1].status = NodeStatus::Pending;
        assert!(workflows::save_run(store, &ws, &crashed, version, &[], false).await.unwrap());
        execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
        let (resumed, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
        assert_eq!((resumed.status, resumed.message.as_deref()), (RunStatus::Succeeded, Some("Ada on pro")));
        assert_eq!(resumed.nodes[0].attempts, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the succeeded fetch was not called again");
    }

    /// A clock that can be moved forward (a lease running out).
    struct Shifted(std::sync::atomic::AtomicU64);

    impl crate::support::time::Clock for Shifted {
        fn now(&self) -> crate::support::time::Timestamp {
            crate::support::time::Timestamp::now().plus(std::time::Duration::from_millis(self.0.load(Ordering::SeqCst)))
        }
    }

    /// A real local HTTP API that records each call's path and `Idempotency-Key` values,
    /// and holds the first call until `release` (at most 30 s) as a slow customer API would.
    async fn keyed_api() -> (String, Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>, Arc<tokio::sync::Notify>) {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let (seen, held) = (calls.clone(), release.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (seen, held) = (seen.clone(), held.clone());
            async move {
                let keys = request
                    .headers()
                    .get_all("idempotency-key")
                    .iter()
                    .map(|v| v.to_str().unwrap_or_default().to_owned())
                    .collect();
                let first = {
                    let mut calls = seen.lock().unwrap();
                    calls.push((request.uri().path().to_owned(), keys));
                    calls.len() == 1
                };
                if first {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), held.notified()).await;
                }
                axum::Json(json!({"plan": "pro"}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls, release)
    }

    /// A worker dies while a run's call is in flight; the redelivered run calls again (at
    /// least once) with the same `Idempotency-Key`, so the receiver can drop the repeat.
    /// Another node, or another run of the same lead, sends another key; a header the
    /// request configures itself is sent as configured; the test endpoint sends none.
    async fn a_redelivered_runs_repeated_call_carries_the_same_idempotency_key(mut ctx: AppContext) {
        let clock = Arc::new(Shifted(std::sync::atomic::AtomicU64::new(0)));
        ctx.clock = clock.clone();
        let store = &*ctx.store;
        let ws = workspaces::create_workspace(store, "Keys", ctx.now()).await.unwrap().id;
        let campaign =
            Campaign::new(crate::support::ids::new_id("cmp"), "Keys", LeadSource::Webhook, None, ctx.now()).unwrap();
        campaigns::create(store, &ws, &campaign).await.unwrap();
        let fields = LeadFields { first_name: Some("Ada".into()), ..LeadFields::default() };
        let lead = Lead::new("req_KEYS_0001".into(), campaign.id.clone(), None, fields, ctx.now());
        leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
        let (base, calls, release) = keyed_api().await;
        let settings = WorkspaceSettings::default();
        let requests = [
            ("apr_KEYS_A", json!({"name": "Enrich", "method": "POST", "url": format!("{base}/enrich"), "body": "{}"})),
            (
                "apr_KEYS_B",
                json!({"name": "Own key", "method": "POST", "url": format!("{base}/own"),
                "headers": {"idempotency-key": "mine-{{ contact.first_name }}"}}),
            ),
        ];
        for (id, input) in requests {
            let input: ApiRequestInput = serde_json::from_value(input).unwrap();
            let request = ApiRequest::new(id.into(), input, &settings, ctx.now()).unwrap();
            api_requests::create(store, &ws, &request).await.unwrap();
        }
        let doc = json!({"nodes": [
            {"id": "enrich", "type": "fetch_api_data", "api_request_id": "apr_KEYS_A", "output_key": "a"},
            {"id": "again", "type": "fetch_api_data", "api_request_id": "apr_KEYS_A", "output_key": "b"},
            {"id": "own", "type": "fetch_api_data", "api_request_id": "apr_KEYS_B", "output_key": "c"}
        ]});
        let workflow = save::save(&ctx, &ws, &campaign.id, &doc).await.unwrap();
        let ids = vec![lead.id.clone()];
        trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest)
            .await
            .unwrap();
        let run: Run = workflows::list_runs(store, &ws, &lead.id, 10, None).await.unwrap().items[0].parse().unwrap();

        // The worker dies while the first call is in flight (its answer never recorded).
        let worker = tokio::spawn({
            let (ctx, ws, lead, run) = (ctx.clone(), ws.clone(), lead.id.clone(), run.id.clone());
            async move { execute(&ctx, &ws, &lead, &run).await }
        });
        let limit = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while calls.lock().unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < limit, "the run never called the API");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        worker.abort();
        assert!(worker.await.unwrap_err().is_cancelled());
        release.notify_one();
        // The queue redelivers the task once the run's lease has run out.
        clock.0.store(LEASE.as_millis() as u64 + 1_000, Ordering::SeqCst);
        execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
        let (done, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.nodes);

        let first = format!("{}:enrich", run.id);
        let seen = calls.lock().unwrap().clone();
        let expected = [
            ("/enrich", vec![first.clone()]),
            ("/enrich", vec![first.clone()]),
            ("/enrich", vec![format!("{}:again", run.id)]),
            ("/own", vec!["mine-Ada".to_owned()]),
        ];
        let expected: Vec<(String, Vec<String>)> = expected.into_iter().map(|(p, k)| (p.to_owned(), k)).collect();
        assert_eq!(seen, expected, "the repeated call carries the first one's key");

        // A rerun of the same lead is another operation: other keys.
        let rerun = trigger::rerun(&ctx, &ws, &lead).await.unwrap().expect("a rerun");
        execute(&ctx, &ws, &lead.id, &rerun.id).await.unwrap();
        let seen = calls.lock().unwrap().clone();
        assert_eq!(seen.len(), 7, "{seen:?}");
        assert_eq!(seen[4].1, vec![format!("{}:enrich", rerun.id)]);
        assert_ne!(seen[4].1, seen[0].1);

        // The interactive test sends no key.
        let (request, _) = api_requests::get(store, &ws, "apr_KEYS_A").await.unwrap().unwrap();
        let tested = request::test(&ctx, &ws, &request, &json!({}), &settings).await;
        assert!(tested.ok, "{:?}", tested.error);
        assert_eq!(calls.lock().unwrap().last().unwrap(), &("/enrich".to_owned(), Vec::<String>::new()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivered_runs_repeated_call_carries_the_same_idempotency_key_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        a_redelivered_runs_repeated_call_carries_the_same_idempotency_key(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivered_runs_repeated_call_carries_the_same_idempotency_key_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        a_redelivered_runs_repeated_call_carries_the_same_idempotency_key(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redelivered_tasks_never_call_an_api_twice_embedded() {
        let (ctx, _dir) = crate::testing::embedded_context();
        redelivered_tasks_never_call_an_api_twice(ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redelivered_tasks_never_call_an_api_twice_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        redelivered_tasks_never_call_an_api_twice(ctx).await;
    }
}
