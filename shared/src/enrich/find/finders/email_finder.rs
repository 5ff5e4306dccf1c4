//! The email finder: a person's address at a domain, from known people, the pattern and probes.

use super::*;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerificationView {
    /// The day the address was verified (YYYY-MM-DD, UTC), as Hunter gives it.
    pub date: Option<String>,
    /// The verifier's status (`valid`, `invalid`, `accept_all`, `webmail`, `disposable`,
    /// `unknown`), or null when the address was not verified.
    pub status: Option<Status>,
    /// The mail server deferred the check (greylisting): the answer is kept briefly.
    #[serde(skip)]
    pub deferred: bool,
}

impl VerificationView {
    pub(super) fn none() -> Self {
        Self { date: None, status: None, deferred: false }
    }

    pub(super) fn of(v: &Verification) -> Self {
        Self { date: Some(day(v.checked_at)), status: Some(v.status), deferred: v.deferred }
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

pub(super) fn finding(name: &MailName, domain: &str, company: Option<&str>) -> EmailFinding {
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
        // A lead is strong evidence, unless the mail server rejects the address now.
        let verified = verify_all(ctx, workspace_id, domain, std::slice::from_ref(&email)).await;
        if let Some(v) = verified.first() {
            out.verification = VerificationView::of(v);
            out.accept_all = accept_all_known(v);
            lower_if_rejected(&mut out, v, "a lead of this workspace carries this address");
        }
        out.email = Some(email);
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
            out.accept_all = accept_all_known(v);
            lower_if_rejected(&mut out, v, "the domain's site names the person beside this address");
        }
        return Ok(out);
    }

    // 3. Patterns, ranked by the domain's known addresses, each verified (one SMTP session).
    let ranked = names::candidates(name, &stats, VERIFIED_CANDIDATES);
    let emails: Vec<String> = ranked.iter().map(|c| format!("{}@{domain}", c.local)).collect();
    let checked = verify_all(ctx, workspace_id, domain, &emails).await;
    out.company = out.company.or_else(|| site.organization.clone());
    // No mail server at all: no address can exist there, whatever the pattern.
    if let Some(v) = checked.iter().find(|v| v.regexp).filter(|v| v.status == Status::Invalid && !v.mx_records) {
        out.reason = Some(format!("no address can be found at this domain: {}", lowercase_first(&v.reason)));
        return Ok(out);
    }
    let accept_all = checked.iter().any(|v| v.accept_all);
    // Known only if some mail server answered a probe; otherwise null, not a guessed false.
    let accept_all_seen = checked.iter().any(|v| accept_all_known(v).is_some());
    out.accept_all = accept_all_seen.then_some(accept_all);
    // The server answers per mailbox: once it rejected some candidates, an address it did
    // not accept is only offered if it follows a pattern the domain's known addresses use.
    let rejected: Vec<&str> =
        checked.iter().filter(|v| v.status == Status::Invalid).map(|v| v.email.as_str()).collect();
    let mut scored: Vec<Alternative> = Vec::new();
    for (i, candidate) in ranked.iter().enumerate() {
        let verification = checked.get(i);
        let confirmed =
            verification.is_some_and(|v| matches!(v.status, Status::Valid | Status::Webmail) && v.smtp_check);
        let score = match verification.map(|v| v.status) {
            Some(Status::Invalid) => continue,
            _ if !rejected.is_empty() && !accept_all && !confirmed && candidate.score < KNOWN_PATTERN_SCORE => continue,
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
    if scored.is_empty() {
        out.reason = Some(if rejected.len() == checked.len() {
            format!("the mail server rejected every candidate address ({})", rejected.join(", "))
        } else {
            format!(
                "the mail server rejected the likely addresses ({}) and confirmed none of the others",
                rejected.join(", ")
            )
        });
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

/// A candidate score at or above this follows a pattern the domain's known addresses use
/// (`names::candidates`: 50 and up); below it, a pattern they do not.
const KNOWN_PATTERN_SCORE: u8 = 50;
/// The score of an address its mail server rejected, however it was found.
pub const REJECTED_SCORE: u8 = 10;

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// A found address the mail server rejects keeps its source but loses its confidence.
fn lower_if_rejected(out: &mut EmailFinding, v: &Verification, found: &str) {
    if v.status == Status::Invalid {
        out.score = out.score.min(REJECTED_SCORE);
        out.reason = Some(format!("{found}, but it failed verification: {}", lowercase_first(&v.reason)));
    }
}

/// Verifies addresses of one domain in one SMTP session (MX and catch-all caches apply).
pub(super) async fn verify_all(
    ctx: &AppContext,
    workspace_id: &str,
    domain: &str,
    emails: &[String],
) -> Vec<Verification> {
    if emails.is_empty() {
        return Vec::new();
    }
    let checks: Vec<verify::Offline> = emails.iter().map(|e| verify::offline(e)).collect();
    verify::verify_domain(ctx, workspace_id, domain, &checks).await
}

/// The email finder's work.
pub async fn email_finder(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let domain = required(params, "domain")?;
    let name = MailName::new(required(params, "first_name")?, required(params, "last_name")?)
        .ok_or_else(|| EnrichError::invalid("first_name", "needs letters in both first_name and last_name"))?;
    let found = find_email(ctx, workspace_id, &name, domain, param(params, "company")).await?;
    Ok(Computed { data: to_value(&found)?, fresh_for: freshness(ctx, &found) })
}

/// How long an answer is reused: shorter when the mail server deferred (greylisting) or no
/// address was found, so the next call asks again.
fn freshness(ctx: &AppContext, found: &EmailFinding) -> std::time::Duration {
    let config = &ctx.config.enrich;
    if found.verification.deferred {
        config.deferred_ttl.min(config.unknown_ttl)
    } else if found.email.is_none() || found.verification.status == Some(Status::Unknown) {
        config.unknown_ttl
    } else {
        config.result_ttl
    }
}

/// Whether the domain accepts every address, as far as a probe established it: `None` when
/// no mail server answered (probing off, unreachable, refused), so nothing was learned.
fn accept_all_known(v: &crate::enrich::verify::Verification) -> Option<bool> {
    v.smtp_server.then_some(v.accept_all)
}
