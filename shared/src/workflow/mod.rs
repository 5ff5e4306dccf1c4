//! API requests and campaign workflows (the API Requests specification).
//!
//! - [`template`]: minijinja templates with strict undefined, fuel and context escaping.
//! - [`nesting`]: refuses templates nested deep enough to overflow the parser's stack.
//! - [`request`]: render, send (SSRF-guarded) and check an API request; the GET cache.
//! - [`save`]: validating a workflow on save (every error names its node).
//! - [`run`]: the per-lead run the dispatcher executes node by node, idempotently.
//! - [`trigger`]: what starts runs (ingest, activation, a manual rerun); it only queues
//!   work, so the ingest and campaign Lambdas link none of the template machinery.

pub mod nesting;
pub mod request;
pub mod run;
pub mod save;
pub mod template;
pub mod trigger;

use serde_json::{Value, json};

use crate::domain::campaign::Campaign;
use crate::domain::lead::Lead;
use crate::domain::workspace::Workspace;

/// The variables every template sees: `workspace`, `contact` (the lead, with all its
/// fields and `custom_fields`), `campaign`, `workflow` (earlier nodes' outputs) and
/// `node` (this node's id and settings).
pub fn variables(
    workspace: Option<&Workspace>,
    lead: Option<&Lead>,
    campaign: Option<&Campaign>,
    outputs: &serde_json::Map<String, Value>,
    node: Option<Value>,
) -> Value {
    let to_value = |v: Option<Value>| v.unwrap_or_else(|| json!({}));
    json!({
        "workspace": to_value(workspace.map(|w| json!({"id": w.id, "name": w.name}))),
        "contact": to_value(lead.and_then(|l| serde_json::to_value(l).ok())),
        "campaign": to_value(campaign.and_then(|c| serde_json::to_value(c).ok())),
        "workflow": Value::Object(outputs.clone()),
        "node": to_value(node),
    })
}
