//! Domain search: every address known at a domain, from leads and the crawled site.

use super::*;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainEmail {
    pub value: String,
    /// `personal` or `generic` (a role mailbox such as `info@`).
    #[serde(rename = "type")]
    pub kind: String,
    /// 0-100 (docs/enrichment.md: "Finder scores").
    pub confidence: u8,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub position: Option<String>,
    pub seniority: Option<String>,
    pub department: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub phone_number: Option<String>,
    pub verification: VerificationView,
    pub sources: Vec<FinderSource>,
}

/// One address of the domain, before its page is built.
#[derive(Default, Clone)]
pub(super) struct Entry {
    pub(super) lead_ids: Vec<String>,
    pub(super) web: Option<WebEmail>,
}

pub(super) fn describe(value: &str, lead: Option<&Lead>, web: Option<&WebEmail>) -> DomainEmail {
    let (lead_first, lead_last) = lead.map(Lead::name_parts).unwrap_or_default();
    let position = lead.and_then(|l| l.position.clone()).or_else(|| web.and_then(|w| w.position.clone()));
    let generic = roles::is_generic(local_of(value));
    let mut first = lead_first.or_else(|| web.and_then(|w| w.first_name.clone()));
    let mut last = lead_last.or_else(|| web.and_then(|w| w.last_name.clone()));
    if first.is_none()
        && !generic
        && let Some((f, l)) = names::guess_name(local_of(value))
    {
        (first, last) = (Some(f), Some(l));
    }
    let confidence = match (lead.is_some(), web.is_some()) {
        (true, true) => 97,
        (true, false) => 95,
        (false, _) if first.is_some() && web.is_some_and(|w| w.first_name.is_some()) => 85,
        _ => 80,
    };
    DomainEmail {
        value: value.to_owned(),
        kind: if generic { "generic" } else { "personal" }.into(),
        confidence,
        first_name: first,
        last_name: last,
        seniority: position.as_deref().and_then(roles::seniority).map(str::to_owned),
        department: position.as_deref().and_then(roles::department).map(str::to_owned),
        position,
        linkedin: lead.and_then(|l| l.linkedin.clone()).or_else(|| web.and_then(|w| w.linkedin.clone())),
        twitter: lead.and_then(|l| l.twitter.clone()).or_else(|| web.and_then(|w| w.twitter.clone())),
        phone_number: lead.and_then(|l| l.phone.clone()).or_else(|| web.and_then(|w| w.phone_number.clone())),
        verification: VerificationView::none(),
        sources: Vec::new(),
    }
}

pub(super) fn list_param(params: &Params, name: &str) -> Vec<String> {
    param(params, name)
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// Hunter's `required_field` values, each an attribute a listed address must have.
pub const REQUIRED_FIELDS: [&str; 3] = ["full_name", "position", "phone_number"];
/// Addresses verified when a domain search filters by `verification_status`.
pub const VERIFY_SCAN: usize = 100;

/// The address has `field` (one of [`REQUIRED_FIELDS`]) as its answer would show it: a
/// first and a last name, a position, a phone number valid for its country.
fn has_field(described: &DomainEmail, field: &str, domain: &str) -> bool {
    match field {
        "full_name" => described.first_name.is_some() && described.last_name.is_some(),
        "position" => described.position.is_some(),
        "phone_number" => described.phone_number.as_deref().and_then(|p| valid_phone(p, domain)).is_some(),
        _ => false,
    }
}

/// The API's name of a verification status (`valid`, `accept_all`, ...).
pub fn status_name(status: Status) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The domain search's work: a page of the domain's addresses.
pub async fn domain_search(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let domain = required(params, "domain")?;
    let limit: usize = param(params, "limit").and_then(|v| v.parse().ok()).unwrap_or(10);
    let offset: usize = param(params, "offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let kind = param(params, "type");
    let seniority = list_param(params, "seniority");
    let department = list_param(params, "department");
    let required_fields = list_param(params, "required_field");
    let statuses = list_param(params, "verification_status");
    let store = &*ctx.store;

    let (addresses, complete) = addresses_at_domain(store, workspace_id, domain, SEARCH_KEYS).await?;
    let facts = domain_facts(ctx, workspace_id, domain).await?;
    let (site, from_cache) = web::site(ctx, workspace_id, domain).await?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for address in &addresses {
        entries.entry(address.email.clone()).or_default().lead_ids = address.lead_ids.clone();
    }
    for email in &site.emails {
        entries.entry(email.value.clone()).or_default().web = Some(email.clone());
    }
    let by_type: Vec<(String, Entry)> = entries
        .into_iter()
        .filter(|(value, _)| match kind {
            Some("generic") => roles::is_generic(local_of(value)),
            Some("personal") => !roles::is_generic(local_of(value)),
            _ => true,
        })
        .collect();

    // Each selected address with its newest lead (loaded for the page only, unless a
    // filter needs every address described: seniority, department, required fields, or
    // verification status).
    let mut selected: Vec<(String, Entry, Option<Lead>)> = Vec::new();
    let mut verified_by_address: BTreeMap<String, Verification> = BTreeMap::new();
    let results;
    let mut scanned_all = complete;
    if seniority.is_empty() && department.is_empty() && required_fields.is_empty() && statuses.is_empty() {
        results = by_type.len();
        let page: Vec<(String, Entry)> = by_type.into_iter().skip(offset).take(limit).collect();
        let ids: Vec<String> = page.iter().filter_map(|(_, e)| e.lead_ids.first().cloned()).collect();
        let loaded = leads::get_many(store, workspace_id, &ids).await?;
        for (value, entry) in page {
            let lead = entry.lead_ids.first().and_then(|id| loaded.iter().find(|l| &l.id == id)).cloned();
            selected.push((value, entry, lead));
        }
    } else {
        // Every address that passes the filters read from its lead and the site, in order.
        let mut matching: Vec<(String, Entry, Option<Lead>)> = Vec::new();
        scanned_all &= by_type.len() <= FILTER_SCAN;
        for chunk in by_type.chunks(100).take(FILTER_SCAN / 100) {
            let ids: Vec<String> = chunk.iter().filter_map(|(_, e)| e.lead_ids.first().cloned()).collect();
            let loaded = leads::get_many(store, workspace_id, &ids).await?;
            for (value, entry) in chunk {
                let lead = entry.lead_ids.first().and_then(|id| loaded.iter().find(|l| &l.id == id)).cloned();
                let described = describe(value, lead.as_ref(), entry.web.as_ref());
                let fits = |wanted: &[String], got: &Option<String>| {
                    wanted.is_empty() || got.as_ref().is_some_and(|g| wanted.iter().any(|w| w == g))
                };
                if fits(&seniority, &described.seniority)
                    && fits(&department, &described.department)
                    && required_fields.iter().all(|field| has_field(&described, field, domain))
                {
                    matching.push((value.clone(), entry.clone(), lead));
                }
            }
        }
        if !statuses.is_empty() {
            // A status is known only by verifying: the first VERIFY_SCAN matches are, over
            // the domain's one SMTP session, and `complete` says when more were left.
            scanned_all &= matching.len() <= VERIFY_SCAN;
            matching.truncate(VERIFY_SCAN);
            let emails: Vec<String> = matching.iter().map(|(v, _, _)| v.clone()).collect();
            let verified = verify_all(ctx, workspace_id, domain, &emails).await;
            verified_by_address = emails.into_iter().zip(verified).collect();
            matching.retain(|(value, _, _)| {
                verified_by_address.get(value).is_some_and(|v| statuses.iter().any(|s| *s == status_name(v.status)))
            });
        }
        results = matching.len();
        selected = matching.into_iter().skip(offset).take(limit).collect();
    }

    // Sources: every lead of the address (up to 5) and the page it was found on.
    let source_ids: Vec<String> = selected.iter().flat_map(|(_, e, _)| e.lead_ids.iter().take(5).cloned()).collect();
    let source_leads = leads::get_many(store, workspace_id, &source_ids).await?;
    let page_emails: Vec<String> = selected.iter().map(|(v, _, _)| v.clone()).collect();
    let verified = if statuses.is_empty() {
        verify_all(ctx, workspace_id, domain, &page_emails).await
    } else {
        page_emails.iter().filter_map(|e| verified_by_address.remove(e)).collect()
    };
    let mut emails: Vec<DomainEmail> = Vec::with_capacity(selected.len());
    for (i, (value, entry, lead)) in selected.iter().enumerate() {
        let mut described = describe(value, lead.as_ref(), entry.web.as_ref());
        described.phone_number = described.phone_number.as_deref().and_then(|p| valid_phone(p, domain)).map(|p| p.0);
        let mut sources: Vec<FinderSource> = entry
            .lead_ids
            .iter()
            .take(5)
            .filter_map(|id| source_leads.iter().find(|l| &l.id == id))
            .map(|l| lead_source(domain, l))
            .collect();
        if let Some(found) = &entry.web {
            sources.push(web_source(domain, &found.uri, site.crawled_at));
        }
        described.sources = sources;
        if let Some(v) = verified.get(i) {
            described.verification = VerificationView::of(v);
            // Known from a lead or a page, but its mail server rejects it now.
            if v.status == Status::Invalid {
                described.confidence = described.confidence.min(REJECTED_SCORE);
            }
        }
        emails.push(described);
    }

    let stats = facts.stats(Some(&site));
    let flags = verify::offline(&format!("postmaster@{domain}"));
    let accept_all = match verified.iter().any(|v| v.accept_all) {
        true => Some(true),
        false => crate::enrich::cache::get_catch_all(store, workspace_id, domain, ctx.now()).await?,
    };
    let organization = site.organization.clone().or_else(|| facts.organization.clone());
    let data = json!({
        "domain": domain,
        "disposable": flags.disposable,
        "webmail": flags.webmail,
        "accept_all": accept_all,
        "pattern": stats.pattern(),
        "organization": organization,
        "socials": site.socials,
        "emails": emails,
        "crawl": crawl_summary(&site, from_cache),
        "meta": {"results": results, "limit": limit, "offset": offset, "complete": scanned_all},
    });
    Ok(Computed { data, fresh_for: ctx.config.enrich.result_ttl })
}
