//! Saving a campaign workflow: structure, node references and templates are checked
//! before anything is written, and every error names its node. Each save is a new
//! version; runs keep executing the version they were created for.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::template::{self, TemplateError};
use crate::context::AppContext;
use crate::domain::ValidationError;
use crate::domain::api_request::ApiRequest;
use crate::domain::workflow::{NodeKind, Workflow, WorkflowDoc, node_label};
use crate::repo::{api_requests, workflows};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the workflow was changed by another save meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every variable path an API request's templates read, syntax checked.
pub fn request_references(request: &ApiRequest) -> Result<BTreeSet<String>, TemplateError> {
    let mut refs = template::references(&request.url).map_err(|e| TemplateError { field: "url".into(), ..e })?;
    for (field, pairs) in [("headers", &request.headers), ("query", &request.query)] {
        for (name, value) in pairs {
            let found =
                template::references(value).map_err(|e| TemplateError { field: format!("{field}.{name}"), ..e })?;
            refs.extend(found);
        }
    }
    if let Some(body) = &request.body {
        refs.extend(template::references(body).map_err(|e| TemplateError { field: "body".into(), ..e })?);
    }
    Ok(refs)
}

/// Validates the document and stores it as the campaign's next workflow version.
pub async fn save(
    ctx: &AppContext,
    workspace_id: &str,
    campaign_id: &str,
    body: &Value,
) -> Result<Workflow, SaveError> {
    let doc = WorkflowDoc::parse(body)?;
    check_nodes(ctx, workspace_id, &doc).await?;
    for _ in 0..3 {
        let previous = workflows::head_version(&*ctx.store, workspace_id, campaign_id).await?;
        let current = match previous {
            Some(_) => workflows::get(&*ctx.store, workspace_id, campaign_id).await?,
            None => None,
        };
        let workflow = Workflow {
            campaign_id: campaign_id.to_owned(),
            workflow_version: current.as_ref().map_or(1, |w| w.workflow_version + 1),
            nodes: doc.nodes.clone(),
            updated_at: ctx.now(),
        };
        if workflows::save(&*ctx.store, workspace_id, &workflow, previous).await? {
            return Ok(workflow);
        }
    }
    Err(SaveError::Conflict)
}

async fn check_nodes(ctx: &AppContext, workspace_id: &str, doc: &WorkflowDoc) -> Result<(), ValidationError> {
    let mut produced: HashSet<&str> = HashSet::new();
    for (i, node) in doc.nodes.iter().enumerate() {
        let label = node_label(i, Some(&node.id));
        let invalid = |field: &str, message: String| {
            ValidationError::new(format!("nodes[{i}].{field}"), format!("{label}: {message}"))
        };
        let template_error = |field: &str, e: TemplateError| invalid(field, format!("{}: {}", e.field, e.message));
        let refs: BTreeSet<String> = match &node.kind {
            NodeKind::FetchApiData { api_request_id, .. } => {
                let found = api_requests::get(&*ctx.store, workspace_id, api_request_id)
                    .await
                    .map_err(|e| invalid("api_request_id", format!("could not be checked ({e})")))?;
                let Some((request, _)) = found else {
                    return Err(invalid(
                        "api_request_id",
                        format!("API request `{api_request_id}` does not exist in this workspace"),
                    ));
                };
                request_references(&request).map_err(|e| template_error("api_request_id", e))?
            }
            NodeKind::Condition { condition, .. } => {
                template::expression_references(condition).map_err(|e| template_error("if", e))?
            }
            NodeKind::SetFields { fields } => {
                let mut refs = BTreeSet::new();
                for (name, source) in fields {
                    refs.extend(
                        template::references(source).map_err(|e| template_error(&format!("fields.{name}"), e))?,
                    );
                }
                refs
            }
            NodeKind::RenderMessage { template: source, .. } => {
                template::references(source).map_err(|e| template_error("template", e))?
            }
            // Not gated on this build's `enrich` feature: the workflows Lambda (without it)
            // saves, the dispatcher (with it) runs.
            NodeKind::VerifyEmail { .. } | NodeKind::FindEmail { .. } => {
                let mut refs = BTreeSet::new();
                if let NodeKind::FindEmail { first_name, last_name, domain, company, .. } = &node.kind {
                    for (name, source) in
                        [("first_name", first_name), ("last_name", last_name), ("domain", domain), ("company", company)]
                    {
                        if let Some(source) = source {
                            refs.extend(template::references(source).map_err(|e| template_error(name, e))?);
                        }
                    }
                }
                refs
            }
            NodeKind::Push { destination, webhook_url } => {
                crate::push::resolve_target(ctx, workspace_id, *destination, webhook_url.as_deref()).await.map_err(
                    |e| match e {
                        crate::push::PushError::Invalid(v) => invalid(&v.field, v.message),
                        other => invalid("destination", other.to_string()),
                    },
                )?;
                BTreeSet::new()
            }
        };
        for path in &refs {
            let mut parts = path.split('.');
            if parts.next() != Some("workflow") {
                continue;
            }
            if let Some(key) = parts.next()
                && !produced.contains(key)
            {
                return Err(invalid(
                    "type",
                    format!("reads `workflow.{key}` before any earlier node produces the output `{key}`"),
                ));
            }
        }
        if let Some(key) = node.kind.output_key() {
            produced.insert(key);
        }
    }
    Ok(())
}
