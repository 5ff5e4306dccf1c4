//! Email count (Hunter's `email-count`): how many addresses this workspace's leads hold at
//! a domain, personal and generic, and by department and seniority. Store reads only: no
//! crawl, no SMTP, so it answers at once.

use super::*;

/// How many addresses a domain has, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EmailCount {
    /// Addresses counted (of `type` when given).
    pub total: usize,
    pub personal_emails: usize,
    pub generic_emails: usize,
    /// Addresses whose lead's position falls in each department (every department listed).
    #[schema(value_type = Object)]
    pub department: BTreeMap<String, usize>,
    /// The same by seniority (`junior`, `senior`, `executive`).
    #[schema(value_type = Object)]
    pub seniority: BTreeMap<String, usize>,
    /// False when the workspace holds more addresses at the domain than one count reads
    /// (50,000; departments and seniorities from the first 5,000).
    pub complete: bool,
}

/// Counts the addresses of this workspace's leads at `domain`; `kind` is `personal` or
/// `generic` to count only those.
pub async fn email_count(
    ctx: &AppContext,
    workspace_id: &str,
    domain: &str,
    kind: Option<&str>,
) -> Result<EmailCount, EnrichError> {
    let store = &*ctx.store;
    let (addresses, mut complete) = addresses_at_domain(store, workspace_id, domain, SEARCH_KEYS).await?;
    let generic = |email: &str| roles::is_generic(local_of(email));
    let counted: Vec<_> = addresses
        .into_iter()
        .filter(|a| match kind {
            Some("generic") => generic(&a.email),
            Some("personal") => !generic(&a.email),
            _ => true,
        })
        .collect();
    let generic_emails = counted.iter().filter(|a| generic(&a.email)).count();
    let mut department: BTreeMap<String, usize> = roles::DEPARTMENTS.iter().map(|d| (d.to_string(), 0)).collect();
    let mut seniority: BTreeMap<String, usize> = roles::SENIORITIES.iter().map(|s| (s.to_string(), 0)).collect();
    complete &= counted.len() <= FILTER_SCAN;
    for chunk in counted.chunks(100).take(FILTER_SCAN / 100) {
        let ids: Vec<String> = chunk.iter().filter_map(|a| a.lead_ids.first().cloned()).collect();
        for lead in leads::get_many(store, workspace_id, &ids).await? {
            let Some(position) = lead.position.as_deref() else { continue };
            if let Some(d) = roles::department(position) {
                *department.entry(d.to_owned()).or_default() += 1;
            }
            if let Some(s) = roles::seniority(position) {
                *seniority.entry(s.to_owned()).or_default() += 1;
            }
        }
    }
    Ok(EmailCount {
        total: counted.len(),
        personal_emails: counted.len() - generic_emails,
        generic_emails,
        department,
        seniority,
        complete,
    })
}
