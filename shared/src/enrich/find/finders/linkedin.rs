//! A person by LinkedIn handle, for the email finder: LinkedIn itself is never read (its
//! terms forbid it and it needs an account), so only this workspace's leads can say who a
//! handle is.

use super::*;

/// The person a LinkedIn handle names, as this workspace's leads know them.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedinPerson {
    pub first_name: String,
    pub last_name: String,
    /// The domain of the lead's email, when it has one.
    pub domain: Option<String>,
}

/// The lead with this LinkedIn handle (`jane-doe`), if it has a first and a last name.
pub async fn person_by_linkedin(
    ctx: &AppContext,
    workspace_id: &str,
    handle: &str,
) -> Result<Option<LinkedinPerson>, EnrichError> {
    let linkedin = normalize_linkedin(&format!("https://www.linkedin.com/in/{handle}"));
    let by = LeadRef { lead_id: None, linkedin, email: None };
    let Some(lead) = lead_lookup::find(&*ctx.store, workspace_id, &by).await? else { return Ok(None) };
    let (Some(first_name), Some(last_name)) = lead.name_parts() else { return Ok(None) };
    let domain = lead.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_lowercase());
    Ok(Some(LinkedinPerson { first_name, last_name, domain }))
}
