//! Campaign workflows and their per-lead runs: the document shape, the node types, and
//! the run record. Types and structural rules only; templates are checked by
//! `crate::workflow`, which knows their syntax.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ValidationError;
use super::push::Destination;
use crate::support::time::Timestamp;

pub const MAX_NODES: usize = 20;
pub const MAX_NODE_ID_CHARS: usize = 64;
pub const MAX_TEMPLATE_CHARS: usize = 8192;
/// A rendered message is stored on the run; this keeps the run item small.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
pub const MAX_SET_FIELDS: usize = 30;

/// What `fetch_api_data` does when its request fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The run fails.
    #[default]
    Fail,
    /// The run goes on without this output.
    Continue,
    /// The run stops for this lead (`stopped`), not a failure.
    SkipLead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// Runs an API request and stores its JSON answer at `workflow.<output_key>`.
    FetchApiData {
        api_request_id: String,
        output_key: String,
        #[serde(default)]
        on_error: OnError,
    },
    /// A Jinja expression over `contact`, `campaign`, `workflow`; false stops the run, or
    /// jumps forward to the node named by `else`.
    Condition {
        #[serde(rename = "if")]
        condition: String,
        #[serde(rename = "else", default, skip_serializing_if = "Option::is_none")]
        else_goto: Option<String>,
    },
    /// Templates rendered into the lead: a field name (`company`, ...) or
    /// `custom_fields.<name>` -> template; 1 to 30 of them.
    SetFields {
        #[schema(schema_with = settable_fields)]
        fields: BTreeMap<String, String>,
    },
    /// A template rendered and stored on the run (`workflow.<output_key>`) and shown in
    /// the campaign preview.
    RenderMessage { template: String, output_key: String },
    /// Verifies the lead's email with the enrichment service (syntax, MX, SMTP) and stores
    /// the verdict at `workflow.<output_key>` (`status`, `score`, `reason`, ...).
    VerifyEmail {
        output_key: String,
        #[serde(default)]
        on_error: OnError,
    },
    /// Finds the lead's email address with the email finder (workspace leads, the company
    /// site, verified patterns) and stores its answer at `workflow.<output_key>` (`email`,
    /// `score`, `pattern`, `alternatives`, ...; `email` is null when none was found). Each
    /// input is an optional template; without it the lead's name parts, its website's or
    /// company email's domain, and its company are used.
    FindEmail {
        output_key: String,
        #[serde(default)]
        on_error: OnError,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        domain: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        company: Option<String>,
    },
    /// Pushes the lead with the existing push (webhook URL, HeyReach or Instantly).
    Push {
        destination: Destination,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_url: Option<String>,
    },
}

impl NodeKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::FetchApiData { .. } => "fetch_api_data",
            NodeKind::Condition { .. } => "condition",
            NodeKind::SetFields { .. } => "set_fields",
            NodeKind::RenderMessage { .. } => "render_message",
            NodeKind::VerifyEmail { .. } => "verify_email",
            NodeKind::FindEmail { .. } => "find_email",
            NodeKind::Push { .. } => "push",
        }
    }

    pub fn output_key(&self) -> Option<&str> {
        match self {
            NodeKind::FetchApiData { output_key, .. }
            | NodeKind::RenderMessage { output_key, .. }
            | NodeKind::VerifyEmail { output_key, .. }
            | NodeKind::FindEmail { output_key, .. } => Some(output_key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    /// Unique in the workflow: letters, digits, `_` and `-`.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub id: String,
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// `PUT /api/v1/campaigns/{id}/workflow`: an ordered list of nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowDoc {
    pub nodes: Vec<Node>,
}

/// A campaign's workflow; every save makes a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub campaign_id: String,
    /// 1 for the first save, then one more per save.
    pub workflow_version: u32,
    pub nodes: Vec<Node>,
    pub updated_at: Timestamp,
}

/// Lead fields `set_fields` may write (besides `custom_fields.<name>`).
/// `set_fields`' `fields`: 1 to [`MAX_SET_FIELDS`] templates, each named by one of
/// [`SETTABLE_FIELDS`] or `custom_fields.<name>` (the document states names of at most
/// 100 printable ASCII characters; the server takes any 100 bytes).
fn settable_fields() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let names = format!(r"^({}|custom_fields\.[\x20-\x7e]{{1,100}})$", SETTABLE_FIELDS.join("|"));
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new().schema_type(Type::String).build().into(),
        )))
        .min_properties(Some(1))
        .max_properties(Some(MAX_SET_FIELDS))
        .build();
    schema.property_names =
        Some(Box::new(ObjectBuilder::new().schema_type(Type::String).pattern(Some(names)).build().into()));
    schema
}

pub const SETTABLE_FIELDS: [&str; 12] = [
    "name",
    "email",
    "first_name",
    "last_name",
    "company",
    "website",
    "phone",
    "position",
    "twitter",
    "linkedin",
    "notes",
    "signal_type",
];

fn key_like(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_NODE_ID_CHARS
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn identifier(text: &str) -> bool {
    key_like(text) && !text.contains('-') && !text.starts_with(|c: char| c.is_ascii_digit())
}

impl WorkflowDoc {
    /// Parses a document, naming the node of any error.
    pub fn parse(value: &Value) -> Result<Self, ValidationError> {
        let nodes = value
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| ValidationError::new("nodes", "is required: an array of nodes"))?;
        if nodes.len() > MAX_NODES {
            return Err(ValidationError::new("nodes", format!("may hold at most {MAX_NODES} nodes")));
        }
        let mut parsed = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let label = node_label(i, node.get("id").and_then(Value::as_str));
            let node: Node = serde_json::from_value(node.clone()).map_err(|e| {
                ValidationError::new(
                    format!("nodes[{i}]"),
                    format!(
                        "{label}: {e} (types: fetch_api_data, condition, set_fields, render_message, \
                         verify_email, find_email, push; see docs/workflows.md)"
                    ),
                )
            })?;
            parsed.push(node);
        }
        let doc = WorkflowDoc { nodes: parsed };
        doc.check_structure()?;
        Ok(doc)
    }

    /// Ids, output keys, jumps and sizes; templates are checked elsewhere.
    fn check_structure(&self) -> Result<(), ValidationError> {
        let mut ids = HashSet::new();
        let mut outputs = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let label = node_label(i, Some(&node.id));
            let field = |name: &str| format!("nodes[{i}].{name}");
            if !key_like(&node.id) {
                return Err(ValidationError::new(
                    field("id"),
                    format!("{label}: ids are 1 to {MAX_NODE_ID_CHARS} letters, digits, `_` or `-`"),
                ));
            }
            if !ids.insert(node.id.as_str()) {
                return Err(ValidationError::new(field("id"), format!("{label}: the id is used twice")));
            }
            if let Some(key) = node.kind.output_key() {
                if !identifier(key) {
                    return Err(ValidationError::new(
                        field("output_key"),
                        format!(
                            "{label}: output keys are identifiers (letters, digits, `_`; not starting with a digit)"
                        ),
                    ));
                }
                if !outputs.insert(key.to_owned()) {
                    return Err(ValidationError::new(
                        field("output_key"),
                        format!("{label}: output key `{key}` is produced by an earlier node too"),
                    ));
                }
            }
            match &node.kind {
                NodeKind::Condition { condition, else_goto } => {
                    if condition.trim().is_empty() || condition.len() > MAX_TEMPLATE_CHARS {
                        return Err(ValidationError::new(
                            field("if"),
                            format!("{label}: must be an expression of 1 to {MAX_TEMPLATE_CHARS} characters"),
                        ));
                    }
                    if let Some(target) = else_goto {
                        let later = self.nodes[i + 1..].iter().any(|n| &n.id == target);
                        if !later {
                            return Err(ValidationError::new(
                                field("else"),
                                format!("{label}: `{target}` is not a later node of this workflow"),
                            ));
                        }
                    }
                }
                NodeKind::RenderMessage { template, .. } if template.len() > MAX_TEMPLATE_CHARS => {
                    return Err(ValidationError::new(
                        field("template"),
                        format!("{label}: must be at most {MAX_TEMPLATE_CHARS} characters"),
                    ));
                }
                NodeKind::FindEmail { first_name, last_name, domain, company, .. } => {
                    let inputs = [
                        ("first_name", first_name),
                        ("last_name", last_name),
                        ("domain", domain),
                        ("company", company),
                    ];
                    if let Some((name, _)) =
                        inputs.iter().find(|(_, t)| t.as_ref().is_some_and(|t| t.len() > MAX_TEMPLATE_CHARS))
                    {
                        return Err(ValidationError::new(
                            field(name),
                            format!("{label}: must be at most {MAX_TEMPLATE_CHARS} characters"),
                        ));
                    }
                }
                NodeKind::SetFields { fields } => {
                    if fields.is_empty() || fields.len() > MAX_SET_FIELDS {
                        return Err(ValidationError::new(
                            field("fields"),
                            format!("{label}: must name 1 to {MAX_SET_FIELDS} fields"),
                        ));
                    }
                    for (name, template) in fields {
                        let custom =
                            name.strip_prefix("custom_fields.").is_some_and(|n| !n.is_empty() && n.len() <= 100);
                        if !custom && !SETTABLE_FIELDS.contains(&name.as_str()) {
                            return Err(ValidationError::new(
                                format!("nodes[{i}].fields.{name}"),
                                format!(
                                    "{label}: not a settable field; use one of {} or custom_fields.<name>",
                                    SETTABLE_FIELDS.join(", ")
                                ),
                            ));
                        }
                        if template.len() > MAX_TEMPLATE_CHARS {
                            return Err(ValidationError::new(
                                format!("nodes[{i}].fields.{name}"),
                                format!("{label}: must be at most {MAX_TEMPLATE_CHARS} characters"),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `node "profile" (nodes[0])`, or just the position when the id is missing.
pub fn node_label(index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("node \"{id}\" (nodes[{index}])"),
        None => format!("nodes[{index}]"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Stopped,
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Stopped)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Pending,
    /// Failed in a way worth retrying; `next_attempt_at` says when.
    Retrying,
    Succeeded,
    Failed,
    /// Not run: a condition jumped past it, or an earlier node ended the run.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Ingest,
    Activation,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeError {
    /// `template_error`, `http_status`, `timeout`, `connect_failed`, `response_not_json`,
    /// `response_too_large`, `url_not_allowed`, `api_request_not_found`, ...
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeRun {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub status: NodeStatus,
    pub attempts: u32,
    pub duration_ms: u64,
    pub error: Option<NodeError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// `condition`: what the expression gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<bool>,
    /// `push`: the push it made (see `GET /api/v1/pushes/{push_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_id: Option<String>,
    /// `fetch_api_data`: answered from the cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// One workflow run of one lead, for one workflow version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// `wfr_...`
    pub id: String,
    pub lead_id: String,
    pub campaign_id: String,
    pub workflow_version: u32,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    /// Output key -> the JSON a fetch returned, or the text a render produced.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
    pub nodes: Vec<NodeRun>,
    /// The last rendered message, shown in the campaign preview.
    pub message: Option<String>,
    pub error: Option<NodeError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// While a worker executes the run: until when (unix ms) it holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
}

impl Run {
    pub fn new(id: String, lead_id: &str, workflow: &Workflow, trigger: RunTrigger, now: Timestamp) -> Self {
        let nodes = workflow
            .nodes
            .iter()
            .map(|n| NodeRun {
                id: n.id.clone(),
                node_type: n.kind.type_name().to_owned(),
                status: NodeStatus::Pending,
                attempts: 0,
                duration_ms: 0,
                error: None,
                next_attempt_at: None,
                result: None,
                push_id: None,
                cached: false,
            })
            .collect();
        Run {
            id,
            lead_id: lead_id.to_owned(),
            campaign_id: workflow.campaign_id.clone(),
            workflow_version: workflow.workflow_version,
            trigger,
            status: RunStatus::Queued,
            outputs: Map::new(),
            nodes,
            message: None,
            error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            lease_until: None,
        }
    }

    /// Ends the run; nodes that never ran are marked skipped.
    pub fn finish(&mut self, status: RunStatus, error: Option<NodeError>, now: Timestamp) {
        self.status = status;
        self.error = error;
        self.finished_at = Some(now);
        self.updated_at = now;
        self.lease_until = None;
        for node in &mut self.nodes {
            if node.status == NodeStatus::Pending {
                node.status = NodeStatus::Skipped;
            }
        }
    }
}

/// What the campaign preview shows of a lead's latest run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    pub run_id: String,
    pub status: RunStatus,
    pub workflow_version: u32,
    pub message: Option<String>,
    pub updated_at: Timestamp,
}

impl From<&Run> for RunSummary {
    fn from(run: &Run) -> Self {
        RunSummary {
            run_id: run.id.clone(),
            status: run.status,
            workflow_version: run.workflow_version,
            message: run.message.clone(),
            updated_at: run.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_issue_document_parses_and_errors_name_the_node() {
        let doc = WorkflowDoc::parse(&json!({"nodes": [
            {"id": "profile", "type": "fetch_api_data", "api_request_id": "apr_1", "output_key": "customer_profile", "on_error": "fail"},
            {"id": "is_pro", "type": "condition", "if": "workflow.customer_profile.plan == 'pro'"},
            {"id": "opener", "type": "render_message", "template": "{{ contact.first_name }}", "output_key": "opener"}
        ]}))
        .unwrap();
        assert_eq!(doc.nodes.len(), 3);
        assert_eq!(serde_json::to_value(&doc.nodes[1]).unwrap()["if"], "workflow.customer_profile.plan == 'pro'");

        let err = WorkflowDoc::parse(&json!({"nodes": [
            {"id": "a", "type": "render_message", "template": "x", "output_key": "k"},
            {"id": "b", "type": "render_message", "template": "y", "output_key": "k"}
        ]}))
        .unwrap_err();
        assert_eq!(err.field, "nodes[1].output_key");
        assert!(err.message.starts_with("node \"b\""), "{}", err.message);

        let err = WorkflowDoc::parse(&json!({"nodes": [{"id": "v", "type": "find_email"}]})).unwrap_err();
        assert!(err.message.contains("output_key"), "{}", err.message);
        let doc = WorkflowDoc::parse(&json!({"nodes": [
            {"id": "v", "type": "find_email", "output_key": "found", "domain": "{{ contact.website }}"}
        ]}))
        .unwrap();
        assert_eq!(doc.nodes[0].kind.output_key(), Some("found"));
        assert_eq!(serde_json::to_value(&doc.nodes[0]).unwrap()["on_error"], "fail");
        let err = WorkflowDoc::parse(&json!({"nodes": [{"id": "c", "type": "condition", "if": "true", "else": "c"}]}))
            .unwrap_err();
        assert_eq!(err.field, "nodes[0].else");
    }
}
