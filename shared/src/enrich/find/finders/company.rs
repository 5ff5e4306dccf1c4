//! A company's domain from its name (as leads give it), and domain-name helpers.

use super::*;

/// Leads read (newest first) to resolve a company name to a domain.
pub const COMPANY_SCAN: usize = 2_000;

/// A company name compared loosely: lower case, ASCII, without punctuation and legal forms.
pub(super) fn company_key(name: &str) -> String {
    const FORMS: [&str; 14] =
        ["inc", "llc", "ltd", "gmbh", "ag", "sa", "sas", "bv", "plc", "corp", "corporation", "co", "limited", "srl"];
    deunicode::deunicode(name)
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !FORMS.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A resolved company's domain, cached per (workspace, company key) for [`FACTS_TTL`]:
/// partition `W#{ws}#CODOM#{sha256(key)}`, one item each.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(super) struct CompanyDomain {
    pub(super) company: String,
    pub(super) domain: String,
}

pub(super) fn company_cache_key(workspace_id: &str, wanted: &str) -> crate::store::Key {
    let pk = crate::repo::keys::item_pk(workspace_id, "CODOM", &crate::support::secrets::hash(wanted)[..32]);
    crate::store::Key::new(pk, "CODOM")
}

/// The domain of a company, from this workspace's newest [`COMPANY_SCAN`] leads naming it:
/// the most common of their websites' hosts and (non-webmail) email domains. There is no
/// company index (every lead index is taken, and ingest writes no extra items), so a first
/// resolution scans; a found domain is then cached for [`FACTS_TTL`]. A company not found
/// is not cached, so a lead ingested meanwhile counts at the next call.
pub async fn company_domain(
    ctx: &AppContext,
    workspace_id: &str,
    company: &str,
) -> Result<Option<String>, EnrichError> {
    let wanted = company_key(company);
    if wanted.is_empty() {
        return Ok(None);
    }
    let store = &*ctx.store;
    let key = company_cache_key(workspace_id, &wanted);
    if let Some(item) = store.get(&key).await?
        && !item.is_expired(ctx.now().unix_seconds())
        && let Ok(cached) = item.parse::<CompanyDomain>()
        && cached.company == wanted
    {
        return Ok(Some(cached.domain));
    }
    let found = scan_company_domain(ctx, workspace_id, &wanted).await?;
    if let Some(domain) = &found {
        let entry = CompanyDomain { company: wanted, domain: domain.clone() };
        let item = crate::store::Item::new(key, &entry)?.with_expiry(ctx.now().plus(FACTS_TTL).unix_seconds());
        store.put(item, crate::store::Condition::Always).await?;
    }
    Ok(found)
}

pub(super) async fn scan_company_domain(
    ctx: &AppContext,
    workspace_id: &str,
    wanted: &str,
) -> Result<Option<String>, EnrichError> {
    let mut domains: Vec<String> = Vec::new();
    let mut cursor = None;
    let mut read = 0;
    while read < COMPANY_SCAN {
        let filter = leads::LeadFilter::default();
        let page = leads::list(&*ctx.store, workspace_id, &filter, 200, cursor).await?;
        read += page.items.len().max(1);
        for item in &page.items {
            let Ok(lead) = item.parse::<Lead>() else { continue };
            if lead.company.as_deref().is_none_or(|c| company_key(c) != wanted) {
                continue;
            }
            let from_site = lead.website.as_deref().and_then(website_domain);
            let from_email = lead
                .email
                .as_deref()
                .map(verify::offline)
                .filter(|o| !o.webmail && !o.disposable)
                .and_then(|o| o.domain);
            domains.extend(from_site.into_iter().chain(from_email));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(most_common(domains.into_iter()))
}

/// A domain name (a URL is cut to its host, `www.` dropped), lower-cased, or `None` when
/// the text is not one.
pub fn domain_name(value: &str) -> Option<String> {
    let value = value.trim();
    if value.len() > 253 || value.contains(char::is_whitespace) || value.contains('@') {
        return None;
    }
    let host = website_domain(value)?;
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_ok = labels.last().is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic() || c == '-'));
    (labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok).then_some(host)
}

/// The host of a website field (`https://www.acme.com/about` -> `acme.com`).
pub fn website_domain(website: &str) -> Option<String> {
    let text = website.trim();
    let with_scheme = if text.contains("://") { text.to_owned() } else { format!("http://{text}") };
    let url = url::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?.trim_start_matches("www.").to_ascii_lowercase();
    host.contains('.').then_some(host)
}
