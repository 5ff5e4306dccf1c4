//! Email verification, Hunter's fields and semantics: syntax ([`syntax`]: RFC 5321/5322,
//! IDNA 2008 domains), gibberish, disposable, webmail and role lists, MX (falling back to
//! A/AAAA), and the SMTP probe with catch-all detection. Verdicts that cannot be known
//! (greylisting, timeouts, blocks, probe off) are `unknown` with the reason in plain words.
//!
//! Library entry points: [`verify_email`] (one address, with the workspace's lead
//! sources; what workflows and finders call) and [`verify_domain`] (many addresses at one
//! domain over one SMTP session; what bulk jobs call). [`offline`] is the network-free part.

pub mod lists;
pub mod syntax;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{EnrichError, cache};
use crate::config::ProbeMode;
use crate::context::AppContext;
use crate::outbound::probing::dns::MxAnswer;
use crate::outbound::probing::smtp::{self as probe, Rcpt, SessionReport};
use crate::repo::lead_lookup;
use crate::support::time::Timestamp;

/// Hunter's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The mail server accepted the address and is not a catch-all.
    Valid,
    /// Bad syntax, a domain without mail servers, or the server rejected the address.
    Invalid,
    /// The server accepts every address at the domain: this one may or may not exist.
    AcceptAll,
    /// A free-mail provider's address (gmail.com, outlook.com, ...) not rejected.
    Webmail,
    /// A throwaway-mailbox provider.
    Disposable,
    /// No verdict: greylisting, a timeout, a block, or SMTP not checked.
    Unknown,
}

/// Hunter's (deprecated but still sent) `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deliverability {
    Deliverable,
    Undeliverable,
    Risky,
}

/// A lead of this workspace that carries the address (Hunter's `sources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    /// The address's domain.
    pub domain: String,
    /// Where the lead is: its API URL path.
    pub uri: String,
    /// The day the lead was stored (YYYY-MM-DD).
    pub extracted_on: String,
    /// The day the lead was last updated.
    pub last_seen_on: String,
    pub still_on_page: bool,
    pub lead_id: String,
    pub campaign_id: String,
}

pub const DEPRECATION_NOTICE: &str = "Using result is deprecated, use status instead";

/// The verifier's answer: Hunter's `data` fields, then ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub email: String,
    pub status: Status,
    pub result: Deliverability,
    #[serde(rename = "_deprecation_notice")]
    pub deprecation_notice: String,
    /// 0-100, see docs/enrichment.md ("How the score is computed").
    pub score: u8,
    /// The address is syntactically valid.
    pub regexp: bool,
    /// The local part looks machine-generated.
    pub gibberish: bool,
    pub disposable: bool,
    pub webmail: bool,
    /// The domain has MX records (or an address that takes mail).
    pub mx_records: bool,
    /// An SMTP server answered.
    pub smtp_server: bool,
    /// The SMTP server accepted the address.
    pub smtp_check: bool,
    /// The server accepts any address at the domain.
    pub accept_all: bool,
    /// The server refused to be probed (block lists, policy).
    pub block: bool,
    pub sources: Vec<Source>,
    /// A shared mailbox (info@, sales@, ...).
    pub role: bool,
    /// A likely intended address for a mistyped domain.
    pub suggestion: Option<String>,
    /// MX hosts, most preferred first.
    pub mx: Vec<String>,
    /// The verdict in plain words.
    pub reason: String,
    /// How SMTP was checked: `off`, `direct`, `socks5` or `prober`.
    pub smtp_probe: String,
    pub checked_at: Timestamp,
    /// Served from an earlier check.
    pub cached: bool,
    /// The mail server deferred an answer this verdict needed (greylisting): worth asking
    /// again after the greylist delay, so it is kept only `LEADPUSH_ENRICH_DEFERRED_TTL`.
    #[serde(skip)]
    pub deferred: bool,
}

/// The network-free checks of one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Offline {
    pub email: String,
    /// The domain as DNS asks for it (lower case, IDNA A-labels) when the syntax is valid.
    pub domain: Option<String>,
    pub syntax_error: Option<String>,
    pub gibberish: bool,
    pub disposable: bool,
    pub webmail: bool,
    pub role: bool,
    pub suggestion: Option<String>,
}

/// Hunter's "gibberish": a local part that looks generated (`e65cba0bc1c44a4f`, `xkqzvbtr`).
fn looks_generated(local: &str) -> bool {
    let base: String = local.split('+').next().unwrap_or(local).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if base.len() < 8 {
        return false;
    }
    let digits = base.chars().filter(char::is_ascii_digit).count();
    let letters = base.len() - digits;
    if base.len() >= 12 && digits * 10 >= base.len() * 3 && letters * 10 >= base.len() * 3 {
        return true; // long hex/random mix
    }
    let mut run = 0;
    let mut vowels = 0;
    for c in base.chars().filter(char::is_ascii_alphabetic) {
        if "aeiouy".contains(c.to_ascii_lowercase()) {
            vowels += 1;
            run = 0;
        } else {
            run += 1;
            if run >= 6 {
                return true;
            }
        }
    }
    letters >= 8 && vowels == 0
}

/// Syntax and list checks; no I/O.
pub fn offline(email: &str) -> Offline {
    let email = email.trim().to_owned();
    match syntax::check(&email) {
        Ok(parsed) => {
            let domain = parsed.ascii_domain;
            let local = parsed.local.to_lowercase();
            let suggestion = lists::suggest_domain(&domain).map(|d| format!("{}@{d}", parsed.local));
            Offline {
                gibberish: looks_generated(&local),
                disposable: lists::is_disposable(&domain),
                webmail: lists::is_webmail(&domain),
                role: lists::is_role(&local),
                suggestion,
                syntax_error: None,
                domain: Some(domain),
                email,
            }
        }
        Err(e) => Offline {
            email,
            domain: None,
            syntax_error: Some(e.to_string()),
            gibberish: false,
            disposable: false,
            webmail: false,
            role: false,
            suggestion: None,
        },
    }
}

/// What DNS gave for the domain.
#[derive(Debug, Clone, PartialEq)]
pub enum MxOutcome {
    NotChecked,
    Answer(MxAnswer),
    Failed(String),
}

/// What SMTP gave for one address.
#[derive(Debug, Clone, PartialEq)]
pub enum SmtpOutcome {
    NotChecked(String),
    Answered {
        rcpt: Rcpt,
        catch_all: Option<bool>,
        blocked: bool,
    },
    /// No server answered, or the session ended before this address.
    NoAnswer {
        connected: bool,
        why: String,
        /// The server refused us (a block list, policy) before this address was asked.
        blocked: bool,
    },
}

fn probe_name(mode: &ProbeMode) -> &'static str {
    match mode {
        ProbeMode::Off => "off",
        ProbeMode::Direct => "direct",
        ProbeMode::Socks5(_) => "socks5",
        ProbeMode::Prober(_) => "prober",
    }
}

/// The verdict: status, score and reason from the checks. Pure; docs/enrichment.md
/// documents it.
pub fn decide(off: &Offline, mx: &MxOutcome, smtp: &SmtpOutcome, probe: &str, now: Timestamp) -> Verification {
    let mut v = Verification {
        email: off.email.clone(),
        status: Status::Unknown,
        result: Deliverability::Risky,
        deprecation_notice: DEPRECATION_NOTICE.into(),
        score: 0,
        regexp: off.syntax_error.is_none(),
        gibberish: off.gibberish,
        disposable: off.disposable,
        webmail: off.webmail,
        mx_records: false,
        smtp_server: false,
        smtp_check: false,
        accept_all: false,
        block: false,
        sources: Vec::new(),
        role: off.role,
        suggestion: off.suggestion.clone(),
        mx: Vec::new(),
        reason: String::new(),
        smtp_probe: probe.to_owned(),
        checked_at: now,
        cached: false,
        deferred: false,
    };
    if let Some(error) = &off.syntax_error {
        v.status = Status::Invalid;
        v.result = Deliverability::Undeliverable;
        v.reason = format!("Not a valid email address ({error}).");
        return v;
    }
    if let MxOutcome::Answer(answer) = mx {
        v.mx = answer.hosts();
        v.mx_records = !v.mx.is_empty();
    }
    if let SmtpOutcome::Answered { rcpt, catch_all, blocked } = smtp {
        v.smtp_server = true;
        v.smtp_check = *rcpt == Rcpt::Accepted;
        v.accept_all = *catch_all == Some(true);
        v.block = *blocked || matches!(rcpt, Rcpt::Blocked { .. });
    }
    if let SmtpOutcome::NoAnswer { connected, blocked, .. } = smtp {
        v.smtp_server = *connected;
        v.block = *blocked;
    }
    v.deferred = match smtp {
        SmtpOutcome::Answered { rcpt: Rcpt::Temporary { .. }, .. } => true,
        // Accepted, but the catch-all check of a random address was deferred.
        SmtpOutcome::Answered { rcpt: Rcpt::Accepted, catch_all: None, .. } => true,
        _ => false,
    };
    let (status, reason) = if off.disposable {
        (Status::Disposable, "The domain is a disposable (throwaway) mailbox provider.".to_owned())
    } else {
        match (mx, smtp) {
            (MxOutcome::Answer(MxAnswer::NoDomain), _) => (Status::Invalid, "The domain does not exist.".into()),
            (MxOutcome::Answer(MxAnswer::NoMail), _) => {
                (Status::Invalid, "The domain takes no email (no MX record and no address, or a null MX).".into())
            }
            (MxOutcome::Failed(why), _) => (Status::Unknown, format!("DNS gave no answer: {why}.")),
            (MxOutcome::NotChecked, _) => (Status::Unknown, "The domain was not checked.".into()),
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Rejected { code, text }, .. }) => {
                (Status::Invalid, format!("The mail server rejected the address ({code} {text})."))
            }
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Accepted, catch_all: Some(true), .. }) => (
                Status::AcceptAll,
                "The mail server accepts any address at this domain, so this one cannot be confirmed.".into(),
            ),
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Accepted, .. }) if off.webmail => {
                (Status::Webmail, "A free-mail address; the mail server accepted it.".into())
            }
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Accepted, catch_all: None, .. }) => (
                Status::Unknown,
                "The mail server accepted the address, but it deferred the check of a random address at the domain \
                 (e.g. greylisting), so whether it accepts every address is not known yet; try again later."
                    .into(),
            ),
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Accepted, .. }) => {
                (Status::Valid, "The mail server accepted the address.".into())
            }
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Temporary { code, text }, .. }) if off.webmail => {
                (Status::Webmail, format!("A free-mail address; the mail server deferred the check ({code} {text})."))
            }
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Temporary { code, text }, .. }) => (
                Status::Unknown,
                format!("The mail server deferred the check, e.g. greylisting ({code} {text}); try again later."),
            ),
            (_, SmtpOutcome::Answered { rcpt: Rcpt::Blocked { code, text }, .. }) => {
                (Status::Unknown, format!("The mail server refused to be checked ({code} {text})."))
            }
            (_, SmtpOutcome::Answered { rcpt: Rcpt::NotAsked, .. }) => {
                (Status::Unknown, "The address was not checked.".into())
            }
            (_, SmtpOutcome::NoAnswer { why, .. }) if off.webmail => {
                (Status::Webmail, format!("A free-mail address; SMTP gave no answer ({why})."))
            }
            (_, SmtpOutcome::NoAnswer { why, .. }) => (Status::Unknown, format!("SMTP gave no answer: {why}.")),
            (_, SmtpOutcome::NotChecked(why)) if off.webmail => {
                (Status::Webmail, format!("A free-mail address; SMTP not checked ({why})."))
            }
            (_, SmtpOutcome::NotChecked(why)) => (Status::Unknown, format!("SMTP not checked: {why}.")),
        }
    };
    v.status = status;
    v.reason = reason;
    v.result = match status {
        Status::Valid => Deliverability::Deliverable,
        Status::Webmail if v.smtp_check => Deliverability::Deliverable,
        Status::Invalid => Deliverability::Undeliverable,
        _ => Deliverability::Risky,
    };
    v.score = score(&v);
    v
}

/// The score (docs/enrichment.md: "How the score is computed"): a base per status, then
/// penalties.
pub fn score(v: &Verification) -> u8 {
    let base: i32 = match v.status {
        Status::Invalid => return 0,
        Status::Valid => 100,
        Status::Webmail if v.smtp_check => 95,
        Status::Webmail => 75,
        Status::AcceptAll => 60,
        Status::Unknown if v.mx_records => 40,
        Status::Unknown => 20,
        Status::Disposable => 10,
    };
    let mut score = base;
    if v.role {
        score -= 10;
    }
    if v.gibberish {
        score -= 20;
    }
    if v.block {
        score -= 10;
    }
    score.clamp(1, 100) as u8
}

/// A mailbox name that should not exist, asked first to detect catch-all servers.
fn random_address(domain: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let local: String = (0..20).map(|_| CHARS[rand::random_range(0..CHARS.len())] as char).collect();
    format!("{local}@{domain}")
}

/// The random address that asks whether `domain` accepts every address: the same one until
/// the verdict is known. A server that greylists each new address once defers a new
/// random address every time; asked again after the delay, the same one gets its answer.
async fn catch_all_probe_address(ctx: &AppContext, workspace_id: &str, domain: &str) -> String {
    #[derive(Serialize, Deserialize)]
    struct Probe {
        address: String,
    }
    let now = ctx.now();
    match cache::get_entry::<Probe>(&*ctx.store, workspace_id, domain, cache::CATCH_ALL_PROBE, now).await {
        Ok(Some(probe)) => return probe.address,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "catch-all probe address read failed"),
    }
    let probe = Probe { address: random_address(domain) };
    let expires = now.plus(ctx.config.enrich.catch_all_ttl);
    if let Err(e) = cache::put_entry(&*ctx.store, workspace_id, domain, cache::CATCH_ALL_PROBE, &probe, expires).await {
        tracing::warn!(error = %e, "catch-all probe address write failed");
    }
    probe.address
}

/// The MX answer for a domain: the store's cache, else DNS (then cached).
async fn mx_for(ctx: &AppContext, workspace_id: &str, domain: &str) -> MxOutcome {
    let engine = ctx.enrich();
    let now = ctx.now();
    match cache::get_mx(&*ctx.store, workspace_id, domain, now).await {
        Ok(Some(answer)) => return MxOutcome::Answer(answer),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "MX cache read failed"),
    }
    let resolver = match engine.resolver() {
        Ok(r) => r,
        Err(e) => return MxOutcome::Failed(e),
    };
    engine.stats.dns_queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match resolver.mx(domain).await {
        Ok(answer) => {
            if let Err(e) =
                cache::put_mx(&*ctx.store, workspace_id, domain, &answer, now, engine.config.mx_cache_ttl).await
            {
                tracing::warn!(error = %e, "MX cache write failed");
            }
            MxOutcome::Answer(answer)
        }
        Err(e) => MxOutcome::Failed(e),
    }
}

/// Verifies addresses that all belong to `domain` (their [`offline`] checks done): one MX
/// lookup (cached), one SMTP session for all of them, one catch-all probe per domain and
/// TTL. The answers come back in the same order, without `sources`.
pub async fn verify_domain(
    ctx: &AppContext,
    workspace_id: &str,
    domain: &str,
    addresses: &[Offline],
) -> Vec<Verification> {
    verify_domain_within(ctx, workspace_id, domain, addresses).await.into_iter().map(|c| c.verification).collect()
}

/// One address's verdict, and whether the invocation's deadline stopped the probe before
/// this address was asked (then the verdict is an `unknown` that a later run replaces).
#[derive(Debug, Clone)]
pub struct Checked {
    pub verification: Verification,
    pub cut_short: bool,
}

/// [`verify_domain`], telling which addresses the deadline left unasked (bulk jobs store the
/// others and continue with those in a new invocation).
pub async fn verify_domain_within(
    ctx: &AppContext,
    workspace_id: &str,
    domain: &str,
    addresses: &[Offline],
) -> Vec<Checked> {
    let engine = ctx.enrich();
    let probe = probe_name(&engine.config.probe);
    let now = ctx.now();
    // Only syntactically valid, non-disposable addresses need the network.
    let network: Vec<usize> =
        (0..addresses.len()).filter(|&i| addresses[i].syntax_error.is_none() && !addresses[i].disposable).collect();
    let mut mx = MxOutcome::NotChecked;
    let mut smtp = vec![SmtpOutcome::NotChecked("not needed".into()); addresses.len()];
    let mut cut = vec![false; addresses.len()];
    if addresses.iter().any(|a| a.syntax_error.is_none()) {
        let lock = engine.domain_lock(&format!("{workspace_id}/{domain}"));
        let guard = lock.lock().await;
        mx = mx_for(ctx, workspace_id, domain).await;
        let hosts = match &mx {
            MxOutcome::Answer(answer) => answer.hosts(),
            _ => Vec::new(),
        };
        if !network.is_empty() && !hosts.is_empty() {
            if engine.config.probe == ProbeMode::Off {
                let why = "the SMTP probe is off (LEADPUSH_SMTP_PROBE=off)".to_owned();
                for &i in &network {
                    smtp[i] = SmtpOutcome::NotChecked(why.clone());
                }
            } else {
                let known = cache::get_catch_all(&*ctx.store, workspace_id, domain, now).await.unwrap_or(None);
                // Once the verdict is known, sessions for this domain may run side by side.
                let guard = if known.is_some() {
                    drop(guard);
                    None
                } else {
                    Some(guard)
                };
                let random = match known {
                    Some(_) => None,
                    None => Some(catch_all_probe_address(ctx, workspace_id, domain).await),
                };
                let emails: Vec<String> = network.iter().map(|&i| addresses[i].email.clone()).collect();
                let report =
                    probe::probe_domain(engine, ctx.config.allow_private_targets, &hosts, random.as_deref(), &emails)
                        .await;
                if let (None, Some(verdict)) = (known, report.catch_all)
                    && let Err(e) = cache::put_catch_all(
                        &*ctx.store,
                        workspace_id,
                        domain,
                        verdict,
                        now,
                        engine.config.catch_all_ttl,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "catch-all cache write failed");
                }
                drop(guard);
                let catch_all = known.or(report.catch_all);
                for (n, &i) in network.iter().enumerate() {
                    smtp[i] = outcome(&report, n, catch_all);
                    cut[i] = report.cut_short && matches!(report.rcpts.get(n), Some(Rcpt::NotAsked) | None);
                }
            }
        }
    }
    addresses
        .iter()
        .zip(smtp)
        .zip(cut)
        .map(|((a, s), cut_short)| Checked { verification: decide(a, &mx, &s, probe, ctx.now()), cut_short })
        .collect()
}

fn outcome(report: &SessionReport, n: usize, catch_all: Option<bool>) -> SmtpOutcome {
    match report.rcpts.get(n) {
        Some(Rcpt::NotAsked) | None => SmtpOutcome::NoAnswer {
            connected: report.connected,
            blocked: report.blocked,
            why: report.failure.clone().unwrap_or_else(|| "the session ended early".into()),
        },
        Some(rcpt) => SmtpOutcome::Answered { rcpt: rcpt.clone(), catch_all, blocked: report.blocked },
    }
}

/// This workspace's leads carrying the address, as Hunter `sources`.
pub async fn sources(ctx: &AppContext, workspace_id: &str, email: &str) -> Result<Vec<Source>, EnrichError> {
    let leads = lead_lookup::leads_with_email(&*ctx.store, workspace_id, email).await?;
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    Ok(leads
        .into_iter()
        .map(|lead| Source {
            domain: domain.clone(),
            uri: format!("/api/v1/leads/{}", lead.id),
            extracted_on: lead.created_at.datetime().format("%Y-%m-%d").to_string(),
            last_seen_on: lead.updated_at.datetime().format("%Y-%m-%d").to_string(),
            still_on_page: true,
            lead_id: lead.id,
            campaign_id: lead.campaign_id,
        })
        .collect())
}

/// Verifies one address now (no queue, no stored result; MX and catch-all caches apply).
/// The library call for workflows and finders.
pub async fn verify_email(ctx: &AppContext, workspace_id: &str, email: &str) -> Result<Verification, EnrichError> {
    let checked = offline(email);
    let mut verification = match checked.domain.clone() {
        Some(domain) => verify_domain(ctx, workspace_id, &domain, std::slice::from_ref(&checked)).await.remove(0),
        None => decide(
            &checked,
            &MxOutcome::NotChecked,
            &SmtpOutcome::NotChecked("bad syntax".into()),
            probe_name(&ctx.config.enrich.probe),
            ctx.now(),
        ),
    };
    if verification.regexp {
        verification.sources = sources(ctx, workspace_id, &verification.email).await?;
    }
    Ok(verification)
}

/// How long a verification answers repeated calls: `unknown` ones are re-checked sooner, and
/// deferred ones (greylisting) soon after the greylist delay.
pub fn freshness(ctx: &AppContext, v: &Verification) -> Duration {
    let config = &ctx.config.enrich;
    if v.deferred {
        config.deferred_ttl.min(config.unknown_ttl)
    } else if v.status == Status::Unknown {
        config.unknown_ttl
    } else {
        config.result_ttl
    }
}

/// Groups addresses by domain, keeping each one's position.
pub fn by_domain(addresses: &[String]) -> BTreeMap<String, Vec<(usize, Offline)>> {
    let mut groups: BTreeMap<String, Vec<(usize, Offline)>> = BTreeMap::new();
    for (i, address) in addresses.iter().enumerate() {
        let checked = offline(address);
        let domain = checked.domain.clone().unwrap_or_default();
        groups.entry(domain).or_default().push((i, checked));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(email: &str, mx: MxOutcome, smtp: SmtpOutcome) -> Verification {
        decide(&offline(email), &mx, &smtp, "direct", Timestamp::now())
    }

    fn hosts() -> MxOutcome {
        MxOutcome::Answer(MxAnswer::Hosts { hosts: vec!["mx.acme.test".into()] })
    }

    fn answered(rcpt: Rcpt, catch_all: Option<bool>) -> SmtpOutcome {
        SmtpOutcome::Answered { rcpt, catch_all, blocked: false }
    }

    #[test]
    fn syntax_lists_and_gibberish_are_checked_offline() {
        let bad = offline("not an email");
        assert!(bad.syntax_error.is_some() && bad.domain.is_none());
        assert!(offline("a@localhost").syntax_error.is_some(), "a dot in the domain is required");
        let ok = offline(" Info@Gmial.com ");
        assert_eq!(ok.domain.as_deref(), Some("gmial.com"));
        assert!(ok.role);
        assert_eq!(ok.suggestion.as_deref(), Some("Info@gmail.com"));
        assert!(offline("e65cba0bc1c44a4f@acme.com").gibberish);
        assert!(!offline("john.smith@acme.com").gibberish);
        assert!(offline("x@mailinator.com").disposable);
    }

    #[test]
    fn each_status_comes_from_its_evidence() {
        let v = verdict("alice@acme.test", hosts(), answered(Rcpt::Accepted, Some(false)));
        assert_eq!(
            (v.status, v.result, v.score, v.smtp_check),
            (Status::Valid, Deliverability::Deliverable, 100, true)
        );
        let v = verdict("alice@acme.test", hosts(), answered(Rcpt::Accepted, Some(true)));
        assert_eq!((v.status, v.accept_all, v.score), (Status::AcceptAll, true, 60));
        let v = verdict(
            "nobody@acme.test",
            hosts(),
            answered(Rcpt::Rejected { code: 550, text: "no".into() }, Some(false)),
        );
        assert_eq!((v.status, v.result, v.score), (Status::Invalid, Deliverability::Undeliverable, 0));
        let v =
            verdict("a@acme.test", hosts(), answered(Rcpt::Temporary { code: 451, text: "greylisted".into() }, None));
        assert_eq!(v.status, Status::Unknown);
        assert!(v.reason.contains("451"), "{}", v.reason);
        let v = verdict(
            "a@acme.test",
            hosts(),
            SmtpOutcome::NoAnswer { connected: false, why: "timeout".into(), blocked: false },
        );
        assert_eq!((v.status, v.smtp_server), (Status::Unknown, false));
        let v = verdict("a@gmail.com", hosts(), answered(Rcpt::Accepted, Some(false)));
        assert_eq!((v.status, v.webmail, v.score), (Status::Webmail, true, 95));
        let v = verdict("a@mailinator.com", hosts(), SmtpOutcome::NotChecked("not needed".into()));
        assert_eq!(v.status, Status::Disposable);
        let v = verdict("a@spamok.com", hosts(), answered(Rcpt::Accepted, Some(false)));
        assert_eq!((v.status, v.disposable, v.webmail, v.score), (Status::Disposable, true, false, 10));
        let v = verdict("a@acme_corp.com", hosts(), SmtpOutcome::NotChecked("x".into()));
        assert_eq!((v.status, v.regexp), (Status::Invalid, false), "refused by syntax, before DNS");
        let v = verdict("a@gone.test", MxOutcome::Answer(MxAnswer::NoDomain), SmtpOutcome::NotChecked("x".into()));
        assert_eq!(v.status, Status::Invalid);
        let v = verdict("info@acme.test", hosts(), answered(Rcpt::Accepted, Some(false)));
        assert_eq!(v.score, 90, "role accounts lose 10");
        let v = verdict("a@acme.test", hosts(), SmtpOutcome::NotChecked("the SMTP probe is off".into()));
        assert_eq!((v.status, v.score), (Status::Unknown, 40));
        assert!(v.reason.contains("SMTP not checked"), "{}", v.reason);
    }

    #[test]
    fn an_accepted_address_is_not_valid_while_the_catch_all_check_was_deferred() {
        let v = verdict("alice@acme.test", hosts(), answered(Rcpt::Accepted, None));
        assert_eq!((v.status, v.result, v.accept_all), (Status::Unknown, Deliverability::Risky, false), "{v:?}");
        assert!(v.reason.contains("random address") && v.reason.contains("not known"), "{}", v.reason);
        assert!(v.deferred && v.score < 60, "{v:?}");
        let v =
            verdict("a@acme.test", hosts(), answered(Rcpt::Temporary { code: 451, text: "greylisted".into() }, None));
        assert!(v.deferred);
        assert!(!verdict("alice@acme.test", hosts(), answered(Rcpt::Accepted, Some(false))).deferred);
    }

    #[test]
    fn a_block_before_the_address_was_asked_is_still_a_block() {
        let smtp = SmtpOutcome::NoAnswer {
            connected: true,
            why: "the server blocked the probe: 554 5.7.1 blocked using zen.spamhaus.org".into(),
            blocked: true,
        };
        let v = verdict("alice@acme.test", hosts(), smtp);
        assert_eq!((v.status, v.block, v.score), (Status::Unknown, true, 30), "{v:?}");
    }

    #[cfg(feature = "embedded")]
    mod with_servers {
        use std::time::Duration;

        use super::super::*;
        use crate::testing::mail::{dns_server, mail_context, smtp_server};

        /// A 554 at RCPT naming a block list: the probe was blocked, and the verdict says so
        /// (`block: true`, the penalty), not just the reason.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_554_at_rcpt_naming_a_block_list_marks_the_verdict_blocked() {
            let dns = dns_server("blocked.test").await;
            let (port, _log) = smtp_server(Duration::ZERO, |_, _| {
                "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org".into()
            })
            .await;
            let (ctx, _dir) = mail_context(dns, port, &[]);
            let v = verify_email(&ctx, "ws_block", "alice@blocked.test").await.unwrap();
            assert_eq!((v.status, v.block, v.score, v.smtp_server), (Status::Unknown, true, 30, true), "{v:?}");
            assert!(v.reason.contains("spamhaus"), "{}", v.reason);
        }

        /// A catch-all that greylists each new address once. The first check is deferred and
        /// kept only the short deferred TTL; asked again, the same catch-all probe address
        /// gets its answer, so the address is `accept_all`, never valid/100 with
        /// `accept_all: false`.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_greylisting_catch_all_is_found_out_when_asked_again() {
            let dns = dns_server("greycatch.test").await;
            let (port, log) = smtp_server(Duration::ZERO, |_, before| {
                if before == 0 { "451 4.7.1 Greylisted, please try again later" } else { "250 2.1.5 OK" }.into()
            })
            .await;
            let (ctx, _dir) = mail_context(dns, port, &[]);
            let first = verify_email(&ctx, "ws_grey", "alice@greycatch.test").await.unwrap();
            assert_eq!((first.status, first.deferred), (Status::Unknown, true), "{first:?}");
            assert_eq!(freshness(&ctx, &first), ctx.config.enrich.deferred_ttl);
            assert!(ctx.config.enrich.deferred_ttl < ctx.config.enrich.unknown_ttl);
            let second = verify_email(&ctx, "ws_grey", "alice@greycatch.test").await.unwrap();
            assert_eq!((second.status, second.accept_all, second.score), (Status::AcceptAll, true, 60), "{second:?}");
            let probes: Vec<String> = log.rcpts().into_iter().filter(|a| !a.starts_with("alice")).collect();
            assert_eq!(probes.len(), 2, "{probes:?}");
            assert_eq!(probes[0], probes[1], "the same catch-all probe address both times");
        }
    }
}
