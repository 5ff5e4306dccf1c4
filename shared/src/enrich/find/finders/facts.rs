//! What the store has learned about a domain: its address pattern and known people, cached.

use super::*;

/// How long a domain's [`DomainFacts`] answer repeated calls. Leads ingested meanwhile
/// join the pattern and the named people when it expires; a new lead whose address follows
/// one of the best patterns is found at once anyway (indexed lookup by address).
pub const FACTS_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// The sort key of the cached facts in the domain's cache partition (`enrich::cache`).
pub(super) const FACTS_ENTRY: &str = "PATTERN";

/// One named person of a domain's sample: enough to match a name without reading leads.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(super) struct KnownPerson {
    /// The name's mailbox forms, `first last` (see [`name_key`]).
    pub(super) name_key: String,
    pub(super) email: String,
    pub(super) lead_id: String,
}

pub(super) fn name_key(name: &MailName) -> String {
    format!("{} {}", name.first(), name.last())
}

/// What a domain's sample of the workspace's leads says: its named people, the patterns
/// their personal addresses follow, and the most common company name. Small by
/// construction (at most [`SAMPLE_LEADS`] people), cached per (workspace, domain) for
/// [`FACTS_TTL`], so repeated finder calls at a domain read one item instead of the sample.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(super) struct DomainFacts {
    pub(super) people: Vec<KnownPerson>,
    /// Pattern -> personal addresses of the sample following it.
    pub(super) counts: Vec<(String, u32)>,
    pub(super) unmatched: u32,
    pub(super) organization: Option<String>,
    pub(super) at: Timestamp,
}

impl DomainFacts {
    pub(super) fn of(sample: &[Lead], now: Timestamp) -> Self {
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
    pub(super) fn stats(&self, site: Option<&SiteCrawl>) -> PatternStats {
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

    pub(super) fn person(&self, name: &MailName) -> Option<&KnownPerson> {
        let key = name_key(name);
        self.people.iter().find(|p| p.name_key == key)
    }
}

/// The domain's facts: cached, or learnt from a sample of its leads (and cached).
pub(super) async fn domain_facts(
    ctx: &AppContext,
    workspace_id: &str,
    domain: &str,
) -> Result<DomainFacts, EnrichError> {
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
