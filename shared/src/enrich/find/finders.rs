//! The four finders' work, as `results::compute` runs it: from canonical parameters to the
//! JSON `data` of the answer. See the module docs of [`super`] and docs/enrichment.md
//! ("Finders") for the sources, their limits and what the scores mean.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::crawl::{self, SiteCrawl};
use super::extract::WebEmail;
use super::names::{self, MailName, PatternStats};
use super::{author, roles, web};
use crate::context::AppContext;
use crate::domain::contact::normalize_linkedin;
use crate::domain::lead::Lead;
use crate::domain::providers::LeadRef;
use crate::enrich::results::{Computed, Params};
use crate::enrich::verify::{self, Status, Verification};
use crate::enrich::{EnrichError, phone};
use crate::repo::lead_lookup;
use crate::repo::{lead_lookup::addresses_at_domain, leads};
use crate::support::time::Timestamp;

/// Index entries read for the email and phone finders (the sample that shows the pattern).
pub const FINDER_KEYS: usize = 200;
/// Best candidates looked up by address among the workspace's leads.
pub const LOOKED_UP_CANDIDATES: usize = 5;
/// Index entries read for a domain search (its `meta.results` counts these).
pub const SEARCH_KEYS: usize = 50_000;
/// Leads read to learn a domain's pattern and people.
pub const SAMPLE_LEADS: usize = 100;
/// Candidates verified over SMTP by the email finder.
pub const VERIFIED_CANDIDATES: usize = 3;
/// Addresses scanned when a domain search filters by seniority or department.
pub const FILTER_SCAN: usize = 5_000;

/// Where a finder's answer comes from (Hunter's `sources`, plus which kind).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FinderSource {
    /// `lead` (this workspace's lead) or `web` (a page of the domain's site).
    pub kind: String,
    pub domain: String,
    /// The lead's API path, or the page's URL.
    pub uri: String,
    pub extracted_on: String,
    pub last_seen_on: String,
    pub still_on_page: bool,
    pub lead_id: Option<String>,
    pub campaign_id: Option<String>,
}

fn day(at: Timestamp) -> String {
    at.datetime().format("%Y-%m-%d").to_string()
}

fn lead_source(domain: &str, lead: &Lead) -> FinderSource {
    FinderSource {
        kind: "lead".into(),
        domain: domain.to_owned(),
        uri: format!("/api/v1/leads/{}", lead.id),
        extracted_on: day(lead.created_at),
        last_seen_on: day(lead.updated_at),
        still_on_page: true,
        lead_id: Some(lead.id.clone()),
        campaign_id: Some(lead.campaign_id.clone()),
    }
}

fn web_source(domain: &str, uri: &str, crawled_at: Timestamp) -> FinderSource {
    FinderSource {
        kind: "web".into(),
        domain: domain.to_owned(),
        uri: uri.to_owned(),
        extracted_on: day(crawled_at),
        last_seen_on: day(crawled_at),
        still_on_page: true,
        lead_id: None,
        campaign_id: None,
    }
}

fn to_value(value: &impl Serialize) -> Result<Value, EnrichError> {
    serde_json::to_value(value).map_err(|e| EnrichError::Other(e.to_string()))
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, EnrichError> {
    param(params, name).ok_or_else(|| EnrichError::invalid(name, "is required"))
}

fn local_of(email: &str) -> &str {
    email.rsplit_once('@').map_or(email, |(l, _)| l)
}

/// A lead's name as mailbox tokens, when it has both parts.
fn lead_name(lead: &Lead) -> Option<MailName> {
    match lead.name_parts() {
        (Some(first), Some(last)) => MailName::new(&first, &last),
        _ => None,
    }
}

fn same_person(a: &MailName, b: &MailName) -> bool {
    a.first() == b.first() && a.last() == b.last()
}

/// A sample of the workspace's leads at a domain: its people's leads (personal addresses
/// first), read through the domain's index keys.
async fn sample_at(ctx: &AppContext, workspace_id: &str, domain: &str) -> Result<Vec<Lead>, EnrichError> {
    let (addresses, _) = addresses_at_domain(&*ctx.store, workspace_id, domain, FINDER_KEYS).await?;
    let mut ids: Vec<String> = addresses
        .iter()
        .filter(|a| !roles::is_generic(local_of(&a.email)))
        .chain(addresses.iter().filter(|a| roles::is_generic(local_of(&a.email))))
        .filter_map(|a| a.lead_ids.first().cloned())
        .take(SAMPLE_LEADS)
        .collect();
    ids.dedup();
    let mut sample = leads::get_many(&*ctx.store, workspace_id, &ids).await?;
    sample.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(sample)
}

/// How long a domain's [`DomainFacts`] answer repeated calls. Leads ingested meanwhile
/// join the pattern and the named people when it expires; a new lead whose address follows
/// one of the best patterns is found at once anyway (indexed lookup by address).
pub const FACTS_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// The sort key of the cached facts in the domain's cache partition (`enrich::cache`).
const FACTS_ENTRY: &str = "PATTERN";

/// One named person of a domain's sample: enough to match a name without reading leads.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct KnownPerson {
    /// The name's mailbox forms, `first last` (see [`name_key`]).
    name_key: String,
    email: String,
    lead_id: String,
}

fn name_key(name: &MailName) -> String {
    format!("{} {}", name.first(), name.last())
}

/// What a domain's sample of the workspace's leads says: its named people, the patterns
/// their personal addresses follow, and the most common company name. Small by
/// construction (at most [`SAMPLE_LEADS`] people), cached per (workspace, domain) for
/// [`FACTS_TTL`], so repeated finder calls at a domain read one item instead of the sample.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct DomainFacts {
    people: Vec<KnownPerson>,
    /// Pattern -> personal addresses of the sample following it.
    counts: Vec<(String, u32)>,
    unmatched: u32,
    organization: Option<String>,
    at: Timestamp,
}

impl DomainFacts {
    fn of(sample: &[Lead], now: Timestamp) -> Self {
        let named: Vec<(String, MailName, &Lead)> = sample
            .iter()
            .filter_map(|l| Some((local_of(l.email.as_deref()?).to_ascii_lowercase(), lead_name(l)?, l)))
            .collect();
        let stats = PatternStats::tally(
            named.iter().filter(|(local, _, _)| !roles::is_generic(local)).map(|(local, n, _)| (local.as_str(), n)),
        );
        let people = named
            .iter()
            .filter_map(|(_, name, lead)| {
                Some(KnownPerson {
                    name_key: name_key(name),
                    email: lead.email.as_deref()?.to_lowercase(),
                    lead_id: lead.id.clone(),
                })
            })
            .collect();
        DomainFacts {
            people,
            counts: stats.counts.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
            unmatched: stats.unmatched,
            organization: most_common(sample.iter().filter_map(|l| l.company.clone())),
            at: now,
        }
    }

    /// The pattern stats of the named personal addresses: the sample's, and the site's.
    fn stats(&self, site: Option<&SiteCrawl>) -> PatternStats {
        let named: Vec<(String, MailName)> = site
            .map(|site| {
                site.emails
                    .iter()
                    .filter_map(|e| {
                        let name = MailName::new(e.first_name.as_deref()?, e.last_name.as_deref()?)?;
                        Some((local_of(&e.value).to_owned(), name))
                    })
                    .collect()
            })
            .unwrap_or_default();
        PatternStats::tally(named.iter().map(|(l, n)| (l.as_str(), n))).with_counts(&self.counts, self.unmatched)
    }

    fn person(&self, name: &MailName) -> Option<&KnownPerson> {
        let key = name_key(name);
        self.people.iter().find(|p| p.name_key == key)
    }
}

/// The domain's facts: cached, or learnt from a sample of its leads (and cached).
async fn domain_facts(ctx: &AppContext, workspace_id: &str, domain: &str) -> Result<DomainFacts, EnrichError> {
    let store = &*ctx.store;
    let now = ctx.now();
    match crate::enrich::cache::get_entry(store, workspace_id, domain, FACTS_ENTRY, now).await {
        Ok(Some(facts)) => return Ok(facts),
        // An entry of another shape (an older build's) is learnt again.
        Ok(None) | Err(crate::store::StoreError::Corrupt(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let facts = DomainFacts::of(&sample_at(ctx, workspace_id, domain).await?, now);
    crate::enrich::cache::put_entry(store, workspace_id, domain, FACTS_ENTRY, &facts, now.plus(FACTS_TTL)).await?;
    Ok(facts)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerificationView {
    pub date: Option<Timestamp>,
    /// The verifier's status (`valid`, `invalid`, `accept_all`, `webmail`, `disposable`,
    /// `unknown`), or null when the address was not verified.
    pub status: Option<Status>,
}

impl VerificationView {
    fn none() -> Self {
        Self { date: None, status: None }
    }

    fn of(v: &Verification) -> Self {
        Self { date: Some(v.checked_at), status: Some(v.status) }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alternative {
    pub email: String,
    pub score: u8,
    pub pattern: String,
    pub verification: VerificationView,
}

/// The email finder's answer: Hunter's fields, then ours.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmailFinding {
    pub first_name: String,
    pub last_name: String,
    /// Null when no candidate survived verification.
    pub email: Option<String>,
    /// 0-100: how likely `email` is the person's address (docs/enrichment.md: "Finder scores").
    pub score: u8,
    pub domain: String,
    /// The domain's mail server accepts every address (null: not known).
    pub accept_all: Option<bool>,
    pub position: Option<String>,
    pub company: Option<String>,
    pub twitter: Option<String>,
    pub linkedin_url: Option<String>,
    pub phone_number: Option<String>,
    pub sources: Vec<FinderSource>,
    pub verification: VerificationView,
    /// The address pattern the answer follows (`{first}.{last}`, ...), when it follows one.
    pub pattern: Option<String>,
    /// Other candidates, best first, with their scores.
    pub alternatives: Vec<Alternative>,
    /// How the answer was found: `workspace_lead`, `web_page` or `pattern`; or why there is none.
    pub method: String,
    pub reason: Option<String>,
}

fn finding(name: &MailName, domain: &str, company: Option<&str>) -> EmailFinding {
    EmailFinding {
        first_name: name.first_display.clone(),
        last_name: name.last_display.clone(),
        email: None,
        score: 0,
        domain: domain.to_owned(),
        accept_all: None,
        position: None,
        company: company.map(str::to_owned),
        twitter: None,
        linkedin_url: None,
        phone_number: None,
        sources: Vec::new(),
        verification: VerificationView::none(),
        pattern: None,
        alternatives: Vec::new(),
        method: "none".into(),
        reason: None,
    }
}

/// The person's address at the domain, from the workspace's leads, the site, or patterns.
pub async fn find_email(
    ctx: &AppContext,
    workspace_id: &str,
    name: &MailName,
    domain: &str,
    company: Option<&str>,
) -> Result<EmailFinding, EnrichError> {
    let mut out = finding(name, domain, company);
    let facts = domain_facts(ctx, workspace_id, domain).await?;
    let ranked = names::candidates(name, &facts.stats(None), 40);

    // 1. A lead of this workspace with that name at that domain: a person of the sample,
    // else the best candidates, each one indexed lookup by address.
    let mut person: Option<Lead> = None;
    let mut sources: Vec<Lead> = Vec::new();
    if let Some(known) = facts.person(name) {
        sources = lead_lookup::leads_with_email(&*ctx.store, workspace_id, &known.email).await?;
        person = sources.iter().find(|l| l.id == known.lead_id).or(sources.first()).cloned();
    }
    if person.is_none() {
        // Not in the sample: the best candidates, each one indexed lookup by address.
        for candidate in ranked.iter().take(LOOKED_UP_CANDIDATES) {
            let email = format!("{}@{domain}", candidate.local);
            let found = lead_lookup::leads_with_email(&*ctx.store, workspace_id, &email).await?;
            if let Some(lead) = found.iter().find(|l| lead_name(l).is_none_or(|n| same_person(&n, name))) {
                person = Some(lead.clone());
                sources = found;
                break;
            }
        }
    }
    if let Some(lead) = person {
        let email = lead.email.clone().unwrap_or_default().to_lowercase();
        out.pattern = names::pattern_of(local_of(&email), name).map(str::to_owned);
        out.score = 95;
        out.method = "workspace_lead".into();
        out.position = lead.position.clone();
        out.company = lead.company.clone().or(out.company);
        out.twitter = lead.twitter.clone();
        out.linkedin_url = lead.linkedin.clone();
        out.phone_number = lead.phone.as_deref().and_then(|p| valid_phone(p, domain)).map(|p| p.0);
        sources.truncate(5);
        out.sources = sources.iter().map(|l| lead_source(domain, l)).collect();
        out.email = Some(email);
        out.accept_all = crate::enrich::cache::get_catch_all(&*ctx.store, workspace_id, domain, ctx.now()).await?;
        return Ok(out);
    }

    // 2. The site names the person next to an address.
    let (site, _) = web::site(ctx, workspace_id, domain).await?;
    let on_site = site.emails.iter().find(|e| {
        let n = e.first_name.as_deref().zip(e.last_name.as_deref()).and_then(|(f, l)| MailName::new(f, l));
        n.is_some_and(|n| same_person(&n, name))
    });
    let stats = facts.stats(Some(&site));
    if let Some(found) = on_site {
        out.email = Some(found.value.clone());
        out.score = 90;
        out.method = "web_page".into();
        out.pattern = names::pattern_of(local_of(&found.value), name).map(str::to_owned);
        out.position = found.position.clone();
        out.twitter = found.twitter.clone();
        out.linkedin_url = found.linkedin.clone();
        out.phone_number = found.phone_number.clone();
        out.company = out.company.or_else(|| site.organization.clone());
        out.sources = vec![web_source(domain, &found.uri, site.crawled_at)];
        let verified = verify_all(ctx, workspace_id, domain, std::slice::from_ref(&found.value)).await;
        if let Some(v) = verified.first() {
            out.verification = VerificationView::of(v);
            out.accept_all = Some(v.accept_all);
        }
        return Ok(out);
    }

    // 3. Patterns, ranked by the domain's known addresses, the best verified.
    let ranked = names::candidates(name, &stats, 5);
    let emails: Vec<String> = ranked.iter().map(|c| format!("{}@{domain}", c.local)).collect();
    let checked = verify_all(ctx, workspace_id, domain, &emails[..emails.len().min(VERIFIED_CANDIDATES)]).await;
    let accept_all = checked.iter().any(|v| v.accept_all);
    let mut scored: Vec<Alternative> = Vec::new();
    for (i, candidate) in ranked.iter().enumerate() {
        let verification = checked.get(i);
        let score = match verification.map(|v| v.status) {
            Some(Status::Invalid) => continue,
            Some(Status::Valid) => 90 + if candidate.score >= 50 { 5 } else { 0 },
            Some(Status::AcceptAll) => candidate.score.min(70),
            _ if accept_all => candidate.score.min(70),
            _ => candidate.score.min(60),
        };
        scored.push(Alternative {
            email: emails[i].clone(),
            score,
            pattern: candidate.pattern.to_owned(),
            verification: verification.map(VerificationView::of).unwrap_or_else(VerificationView::none),
        });
    }
    scored.sort_by_key(|a| std::cmp::Reverse(a.score));
    out.accept_all = if checked.is_empty() { None } else { Some(accept_all) };
    out.company = out.company.or_else(|| site.organization.clone());
    if scored.is_empty() {
        out.reason = Some("the mail server rejected every candidate address".into());
        return Ok(out);
    }
    let best = scored.remove(0);
    out.email = Some(best.email);
    out.score = best.score;
    out.pattern = Some(best.pattern);
    out.verification = best.verification;
    out.method = "pattern".into();
    out.alternatives = scored;
    if accept_all {
        out.reason = Some("the domain accepts every address, so SMTP cannot confirm the mailbox".into());
    }
    Ok(out)
}

/// Verifies addresses of one domain in one SMTP session (MX and catch-all caches apply).
async fn verify_all(ctx: &AppContext, workspace_id: &str, domain: &str, emails: &[String]) -> Vec<Verification> {
    if emails.is_empty() {
        return Vec::new();
    }
    let checks: Vec<verify::Offline> = emails.iter().map(|e| verify::offline(e)).collect();
    verify::verify_domain(ctx, workspace_id, domain, &checks).await
}

/// A number through the phone validator: (E.164, line type, country), or `None` if invalid.
fn valid_phone(number: &str, domain: &str) -> Option<(String, String, Option<String>)> {
    let checked = phone::validate(number, super::phones::region_of_domain(domain));
    if !checked.valid {
        return None;
    }
    Some((checked.e164?, checked.line_type, checked.country_code))
}

/// The email finder's work.
pub async fn email_finder(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let domain = required(params, "domain")?;
    let name = MailName::new(required(params, "first_name")?, required(params, "last_name")?)
        .ok_or_else(|| EnrichError::invalid("first_name", "needs letters in both first_name and last_name"))?;
    let found = find_email(ctx, workspace_id, &name, domain, param(params, "company")).await?;
    Ok(Computed { data: to_value(&found)?, fresh_for: ctx.enrich.config.result_ttl })
}

/// The author finder's work.
pub async fn author_finder(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let url_text = required(params, "url")?;
    let outbound = web::client(ctx)?;
    let url = outbound.check_url(url_text).map_err(|e| EnrichError::invalid("url", e.to_string()))?;
    let domain = url.host_str().unwrap_or_default().trim_start_matches("www.").to_ascii_lowercase();
    let fresh_for = ctx.enrich.config.result_ttl;
    let empty = |reason: String, found: Option<author::Author>| {
        json!({
            "url": url.as_str(), "domain": domain, "email": null, "score": 0, "author": found, "reason": reason,
            "first_name": null, "last_name": null, "sources": [], "alternatives": [],
            "verification": {"date": null, "status": null},
        })
    };
    let html = match crawl::fetch_page(&outbound, &url, &web::limits(ctx)).await {
        crawl::PageFetch::Page { html, .. } => html,
        crawl::PageFetch::Refused(why) => {
            return Ok(Computed { data: empty(format!("the page could not be read: {why}"), None), fresh_for });
        }
    };
    let Some(found) = author::find_author(&html) else {
        return Ok(Computed { data: empty("no author found on the page".into(), None), fresh_for });
    };
    let Some(name) = found.name.as_deref().and_then(MailName::from_full) else {
        let why = match &found.name {
            Some(n) => format!("the author `{n}` is not a first and last name"),
            None => "the page names only a Twitter handle, not a person".into(),
        };
        return Ok(Computed { data: empty(why, Some(found)), fresh_for });
    };
    let finding = find_email(ctx, workspace_id, &name, &domain, None).await?;
    let mut data = to_value(&finding)?;
    if let Some(object) = data.as_object_mut() {
        if object.get("twitter").is_some_and(Value::is_null)
            && let Some(handle) = &found.twitter
        {
            object.insert("twitter".into(), json!(handle));
        }
        object.insert("author".into(), to_value(&found)?);
        object.insert("url".into(), json!(url.as_str()));
    }
    Ok(Computed { data, fresh_for })
}

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
struct Entry {
    lead_ids: Vec<String>,
    web: Option<WebEmail>,
}

fn describe(value: &str, lead: Option<&Lead>, web: Option<&WebEmail>) -> DomainEmail {
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

fn list_param(params: &Params, name: &str) -> Vec<String> {
    param(params, name)
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// The domain search's work: a page of the domain's addresses.
pub async fn domain_search(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let domain = required(params, "domain")?;
    let limit: usize = param(params, "limit").and_then(|v| v.parse().ok()).unwrap_or(10);
    let offset: usize = param(params, "offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let kind = param(params, "type");
    let seniority = list_param(params, "seniority");
    let department = list_param(params, "department");
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
    // seniority or department filter needs every position).
    let mut selected: Vec<(String, Entry, Option<Lead>)> = Vec::new();
    let results;
    let mut scanned_all = complete;
    if seniority.is_empty() && department.is_empty() {
        results = by_type.len();
        let page: Vec<(String, Entry)> = by_type.into_iter().skip(offset).take(limit).collect();
        let ids: Vec<String> = page.iter().filter_map(|(_, e)| e.lead_ids.first().cloned()).collect();
        let loaded = leads::get_many(store, workspace_id, &ids).await?;
        for (value, entry) in page {
            let lead = entry.lead_ids.first().and_then(|id| loaded.iter().find(|l| &l.id == id)).cloned();
            selected.push((value, entry, lead));
        }
    } else {
        let mut matched = 0;
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
                if fits(&seniority, &described.seniority) && fits(&department, &described.department) {
                    if matched >= offset && selected.len() < limit {
                        selected.push((value.clone(), entry.clone(), lead));
                    }
                    matched += 1;
                }
            }
        }
        results = matched;
    }

    // Sources: every lead of the address (up to 5) and the page it was found on.
    let source_ids: Vec<String> = selected.iter().flat_map(|(_, e, _)| e.lead_ids.iter().take(5).cloned()).collect();
    let source_leads = leads::get_many(store, workspace_id, &source_ids).await?;
    let page_emails: Vec<String> = selected.iter().map(|(v, _, _)| v.clone()).collect();
    let verified = verify_all(ctx, workspace_id, domain, &page_emails).await;
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
    Ok(Computed { data, fresh_for: ctx.enrich.config.result_ttl })
}

fn most_common(values: impl Iterator<Item = String>) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v)
}

/// What the crawl did, for the answer: pages by outcome, and whether it came from cache.
fn crawl_summary(site: &SiteCrawl, cached: bool) -> Value {
    json!({
        "crawled_at": site.crawled_at,
        "cached": cached,
        "complete": site.complete,
        "pages": site.visits,
    })
}

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

fn add_phone(
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
        return Ok(Computed { data, fresh_for: ctx.enrich.config.unknown_ttl });
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
    Ok(Computed { data, fresh_for: ctx.enrich.config.result_ttl })
}

/// Leads read (newest first) to resolve a company name to a domain.
pub const COMPANY_SCAN: usize = 2_000;

/// A company name compared loosely: lower case, ASCII, without punctuation and legal forms.
fn company_key(name: &str) -> String {
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
struct CompanyDomain {
    company: String,
    domain: String,
}

fn company_cache_key(workspace_id: &str, wanted: &str) -> crate::store::Key {
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

async fn scan_company_domain(
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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::support::time::Clock;

    struct TestClock(Mutex<Timestamp>);

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn lead(id: &str, first: &str, last: &str, email: &str) -> Lead {
        let fields = LeadFields {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            company: Some("Acme Corp".into()),
            ..LeadFields::default()
        };
        Lead::new(id.into(), "cmp_1".into(), None, fields, Timestamp::now())
    }

    /// A domain's facts and a company's domain are read once, answered from their cache
    /// items until they expire, then learnt again (with the leads ingested meanwhile).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn domain_facts_and_company_domains_are_cached_until_they_expire() {
        let (mut ctx, _dir) = crate::testing::embedded_context();
        let clock = Arc::new(TestClock(Mutex::new(Timestamp::now())));
        ctx.clock = clock.clone();
        let store = &*ctx.store;
        let first = [
            lead("req_F_0001", "Jane", "Doe", "jdoe@acme.test"),
            lead("req_F_0002", "Bob", "Smith", "bsmith@acme.test"),
        ];
        leads::put_many(store, "ws_1", &first).await.unwrap();

        let facts = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
        assert_eq!(facts.stats(None).pattern(), Some("{f}{last}"));
        assert_eq!(facts.organization.as_deref(), Some("Acme Corp"));
        let jane = MailName::new("Jane", "Doe").unwrap();
        assert_eq!(facts.person(&jane).map(|p| p.email.as_str()), Some("jdoe@acme.test"));
        assert_eq!(company_domain(&ctx, "ws_1", "ACME corp.").await.unwrap().as_deref(), Some("acme.test"));
        assert_eq!(company_domain(&ctx, "ws_2", "Acme Corp").await.unwrap(), None, "another workspace");

        // Leads arrive that change both answers: the caches still answer.
        let more: Vec<Lead> = (0..3)
            .map(|i| {
                let mut l = lead(&format!("req_G_000{i}"), &format!("Ann{i}"), "Lee", &format!("ann{i}.lee@acme.test"));
                l.company = Some("Acme Corp".into());
                l.website = Some("https://www.acme.example".into());
                l.email = Some(format!("ann{i}.lee@acme.example"));
                l
            })
            .collect();
        leads::put_many(store, "ws_1", &more).await.unwrap();
        leads::put_many(store, "ws_1", &[lead("req_G_0009", "Zed", "Zulu", "zed.zulu@acme.test")]).await.unwrap();
        let cached = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
        assert_eq!((cached.people.len(), cached.at), (2, facts.at));
        assert_eq!(company_domain(&ctx, "ws_1", "Acme Corp").await.unwrap().as_deref(), Some("acme.test"));

        // After the TTL both are learnt again.
        let later = clock.now().plus(FACTS_TTL + std::time::Duration::from_secs(1));
        *clock.0.lock().unwrap() = later;
        let fresh = domain_facts(&ctx, "ws_1", "acme.test").await.unwrap();
        let zed = MailName::new("Zed", "Zulu").unwrap();
        assert_eq!((fresh.people.len(), fresh.person(&zed).map(|p| p.lead_id.as_str())), (3, Some("req_G_0009")));
        assert_eq!(company_domain(&ctx, "ws_1", "Acme Corp").await.unwrap().as_deref(), Some("acme.example"));
    }
}
