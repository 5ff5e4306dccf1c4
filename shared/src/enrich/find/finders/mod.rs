//! The four finders' work, as `results::compute` runs it: from canonical parameters to the
//! JSON `data` of the answer. See the module docs of [`super`] and docs/enrichment.md ("Finders")
//! for the sources, their limits and what the scores mean.

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

mod author_finder;
mod company;
mod domain_search;
mod email_count;
mod email_finder;
mod facts;
mod linkedin;
mod phone_finder;

pub use author_finder::*;
pub use company::*;
pub use domain_search::*;
pub use email_count::*;
pub use email_finder::*;
pub use facts::*;
pub use linkedin::*;
pub use phone_finder::*;

/// Index entries read for the email and phone finders (the sample that shows the pattern).
pub const FINDER_KEYS: usize = 200;
/// Best candidates looked up by address among the workspace's leads.
pub const LOOKED_UP_CANDIDATES: usize = 5;
/// Index entries read for a domain search (its `meta.results` counts these).
pub const SEARCH_KEYS: usize = 50_000;
/// Leads read to learn a domain's pattern and people.
pub const SAMPLE_LEADS: usize = 100;
/// Candidates the email finder ranks and verifies over SMTP (all in one session): every one
/// it may answer with has the mail server's word.
pub const VERIFIED_CANDIDATES: usize = 5;
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

/// A number through the phone validator: (E.164, line type, country), or `None` if invalid.
fn valid_phone(number: &str, domain: &str) -> Option<(String, String, Option<String>)> {
    let checked = phone::validate(number, super::phones::region_of_domain(domain));
    if !checked.valid {
        return None;
    }
    Some((checked.e164?, checked.line_type, checked.country_code))
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

#[cfg(all(test, feature = "embedded"))]
mod tests;
