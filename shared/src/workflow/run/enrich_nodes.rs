//! The nodes that call enrichment: verify an email, find an email (each refused with a clear error where the function is built without it).

use super::*;

/// The enrichment service's verdict on the lead's email, stored as the node's output.
pub(super) async fn verify_email(
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

/// The email finder's answer for the lead, stored as the node's output. Inputs are the
/// node's templates, else the lead's name parts, its website's or (company) email's
/// domain, and its company resolved through the workspace's leads.
pub(super) async fn find_email(
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
