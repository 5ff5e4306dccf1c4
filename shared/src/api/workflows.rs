//! Campaign workflows and their runs: save and read a campaign's workflow, rerun one
//! lead, and read runs back (per lead, or by id).

use axum::extract::State;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Accepted, Data, Json, List, Pagination, Params, Path};
use crate::context::AppContext;
use crate::domain::workflow::{Run, Workflow, WorkflowDoc};
use crate::repo::workflows;
use crate::workflow::{save, trigger};

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new()
        .routes(routes!(put_workflow, get_workflow))
        .routes(routes!(start_run, list_runs))
        .routes(routes!(get_run))
}

/// Save a campaign's workflow (a new version each time). Nodes run in order; a 400 names
/// the node at fault: an unknown `api_request_id`, a duplicate output key, a template
/// that reads `workflow.X` before a node produces X, or a template syntax error.
#[utoipa::path(put, path = "/api/v1/campaigns/{id}/workflow", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")), request_body = WorkflowDoc,
    responses((status = 200, body = DataOf<Workflow>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`conflict`: saved by another request meanwhile")))]
async fn put_workflow(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Data<Workflow>, ApiError> {
    let campaign = super::campaigns::load(&ctx, &caller.workspace_id, &id).await?;
    let workflow = save::save(&ctx, &caller.workspace_id, &campaign.id, &body).await?;
    tracing::info!(
        campaign_id = campaign.id,
        version = workflow.workflow_version,
        nodes = workflow.nodes.len(),
        "workflow saved"
    );
    Ok(Data(workflow))
}

fn no_workflow() -> ApiError {
    ApiError::not_found(
        "workflow_not_found",
        "This campaign has no workflow yet; save one with PUT /api/v1/campaigns/{id}/workflow.",
    )
}

/// Read a campaign's current workflow.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/workflow", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = DataOf<Workflow>), (status = 404, body = ErrorBody)))]
async fn get_workflow(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Workflow>, ApiError> {
    let campaign = super::campaigns::load(&ctx, &caller.workspace_id, &id).await?;
    let workflow = workflows::get(&*ctx.store, &caller.workspace_id, &campaign.id).await?.ok_or_else(no_workflow)?;
    Ok(Data(workflow))
}

/// A run with its fetched outputs.
async fn with_outputs(ctx: &AppContext, workspace_id: &str, mut run: Run) -> Result<Run, ApiError> {
    if run.nodes.iter().any(|n| matches!(n.node_type.as_str(), "fetch_api_data" | "verify_email" | "find_email")) {
        let fetched = workflows::outputs(&*ctx.store, workspace_id, &run.lead_id, &run.id).await?;
        run.outputs.extend(fetched);
    }
    run.lease_until = None;
    Ok(run)
}

/// Run the lead's campaign workflow again (a new run, whatever ran before). The run is
/// queued; follow it at `GET /api/v1/workflow-runs/{id}`.
#[utoipa::path(post, path = "/api/v1/leads/{id}/workflow-runs", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lead id")),
    responses((status = 202, body = DataOf<Run>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`workflow_not_found`: the lead's campaign has no workflow")))]
async fn start_run(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Accepted<Run>, ApiError> {
    let lead = super::leads::load(&ctx, &caller.workspace_id, &id).await?;
    let run = trigger::rerun(&ctx, &caller.workspace_id, &lead).await?.ok_or_else(|| {
        ApiError::conflict(
            "workflow_not_found",
            "The lead's campaign has no workflow (with nodes); save one with PUT /api/v1/campaigns/{id}/workflow.",
        )
    })?;
    tracing::info!(run_id = run.id, lead_id = lead.id, "workflow run queued");
    Ok(Accepted(run))
}

/// A lead's workflow runs, newest first.
#[utoipa::path(get, path = "/api/v1/leads/{id}/workflow-runs", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lead id"), Pagination),
    responses((status = 200, body = ListOf<Run>), (status = 404, body = ErrorBody)))]
async fn list_runs(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
    Params(page): Params<Pagination>,
) -> Result<List<Run>, ApiError> {
    let lead = super::leads::load(&ctx, &caller.workspace_id, &id).await?;
    let result =
        workflows::list_runs(&*ctx.store, &caller.workspace_id, &lead.id, page.limit()?, page.cursor()?).await?;
    let list = List::from_page(result, |item| item.parse::<Run>())?;
    let mut data = Vec::with_capacity(list.data.len());
    for run in list.data {
        data.push(with_outputs(&ctx, &caller.workspace_id, run).await?);
    }
    Ok(List { data, next_cursor: list.next_cursor })
}

fn run_not_found() -> ApiError {
    ApiError::not_found("workflow_run_not_found", "Workflow run not found in this workspace.")
}

/// A workflow run: status, outputs, and per node its status, attempts, duration and error.
#[utoipa::path(get, path = "/api/v1/workflow-runs/{id}", tag = "workflows", security(("api_key" = [])),
    params(("id" = String, Path, description = "Run id (`wfr_...`)")),
    responses((status = 200, body = DataOf<Run>), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Data<Run>, ApiError> {
    if !crate::support::ids::has_prefix(&id, trigger::RUN_ID_PREFIX) {
        return Err(run_not_found());
    }
    let ws = &caller.workspace_id;
    let lead_id = workflows::lead_of_run(&*ctx.store, ws, &id).await?.ok_or_else(run_not_found)?;
    let (run, _) = workflows::get_run(&*ctx.store, ws, &lead_id, &id).await?.ok_or_else(run_not_found)?;
    Ok(Data(with_outputs(&ctx, ws, run).await?))
}
