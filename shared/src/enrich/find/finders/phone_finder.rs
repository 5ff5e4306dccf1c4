//! The phone finder: a person's and the company's phone numbers, from leads and the site.

use super::*;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoundPhone {
    /// E.164.
    pub number: String,
    pub line_type: String,
    pub country_code: Option<String>,
    /// `personal` (the person's own) or `company`.
    #[serde(rename = "type")]
    pub kind: String,
    /// 0-100 (docs/enrichment.md: "Finder scores").
    pub confidence: u8,
    pub sources: Vec<FinderSource>,
}

pub(super) fn add_phone(
    phones: &mut Vec<FoundPhone>,
    number: &str,
    domain: &str,
    kind: &str,
    confidence: u8,
    source: FinderSource,
) {
    let Some((e164, line_type, country_code)) = valid_phone(number, domain) else { return };
    match phones.iter_mut().find(|p| p.number == e164) {
        Some(known) => {
            // Seen again: more sure, and personal wins over company.
            known.confidence = known.confidence.max(confidence).saturating_add(5).min(99);
            if kind == "personal" {
                known.kind = kind.into();
            }
            if known.sources.len() < 10 && !known.sources.contains(&source) {
                known.sources.push(source);
            }
        }
        None => phones.push(FoundPhone {
            number: e164,
            line_type,
            country_code,
            kind: kind.into(),
            confidence,
            sources: vec![source],
        }),
    }
}

/// The phone finder's work.
pub async fn phone_finder(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let store = &*ctx.store;
    let mut person: Option<Lead> = None;
    let mut domain = param(params, "domain").map(str::to_owned);
    if let Some(email) = param(params, "email") {
        person = lead_lookup::leads_with_email(store, workspace_id, email).await?.into_iter().next();
        domain = domain.or_else(|| email.rsplit_once('@').map(|(_, d)| d.to_owned()));
    } else if let Some(handle) = param(params, "linkedin_handle") {
        let linkedin = normalize_linkedin(&format!("https://www.linkedin.com/in/{handle}"));
        let by = LeadRef { lead_id: None, linkedin, email: None };
        person = lead_lookup::find(store, workspace_id, &by).await?;
        domain = domain.or_else(|| {
            let lead = person.as_ref()?;
            lead.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_lowercase())
        });
    }
    let Some(domain) = domain else {
        // A LinkedIn handle of no lead of this workspace (or of one without an email):
        // no company to search. The answer says so, and tries again after the short
        // freshness of unknown results, when such a lead may have arrived.
        let mut phones: Vec<FoundPhone> = Vec::new();
        if let Some(lead) = &person
            && let Some(number) = &lead.phone
        {
            add_phone(&mut phones, number, "", "personal", 90, lead_source("", lead));
        }
        let data = json!({
            "domain": null,
            "person": person.as_ref().map(|l| json!({"lead_id": l.id, "email": l.email, "name": l.display_name()})),
            "phones": phones,
            "crawl": null,
        });
        return Ok(Computed { data, fresh_for: ctx.config.enrich.unknown_ttl });
    };
    let sample = sample_at(ctx, workspace_id, &domain).await?;
    if person.is_none()
        && let (Some(first), Some(last)) = (param(params, "first_name"), param(params, "last_name"))
    {
        let name = MailName::new(first, last).ok_or_else(|| EnrichError::invalid("first_name", "needs letters"))?;
        let found = find_email(ctx, workspace_id, &name, &domain, None).await?;
        if found.method == "workspace_lead"
            && let Some(email) = &found.email
        {
            person = lead_lookup::leads_with_email(store, workspace_id, email).await?.into_iter().next();
        }
    }
    let mut phones: Vec<FoundPhone> = Vec::new();
    if let Some(lead) = &person
        && let Some(number) = &lead.phone
    {
        add_phone(&mut phones, number, &domain, "personal", 90, lead_source(&domain, lead));
    }
    for lead in &sample {
        if person.as_ref().is_some_and(|p| p.id == lead.id || p.email == lead.email) {
            continue;
        }
        if let Some(number) = &lead.phone {
            add_phone(&mut phones, number, &domain, "company", 60, lead_source(&domain, lead));
        }
    }
    let (site, from_cache) = web::site(ctx, workspace_id, &domain).await?;
    for found in &site.phones {
        let confidence = if found.how == "text" { 70 } else { 80 };
        add_phone(
            &mut phones,
            &found.phone.number,
            &domain,
            "company",
            confidence,
            web_source(&domain, &found.uri, site.crawled_at),
        );
    }
    phones.sort_by_key(|p| std::cmp::Reverse((p.kind == "personal", p.confidence)));
    let data = json!({
        "domain": domain,
        "person": person.as_ref().map(|l| json!({"lead_id": l.id, "email": l.email, "name": l.display_name()})),
        "phones": phones,
        "crawl": crawl_summary(&site, from_cache),
    });
    Ok(Computed { data, fresh_for: ctx.config.enrich.result_ttl })
}
