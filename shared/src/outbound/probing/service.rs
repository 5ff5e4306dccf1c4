//! The probe as a service (`leadpush prober`): a caller without port 25 (a Lambda function)
//! sends a domain and its addresses; the prober resolves the domain's MX hosts itself (a
//! caller never chooses where it connects), runs the SMTP session under the per-IP bounds
//! of its engine (sessions at once, sessions a minute) and answers the evidence.
//!
//! The HTTP side (bearer token, routes) is `runtime::prober`; the client is [`super::remote`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Engine;
use super::dns::MxAnswer;
use super::smtp::{self, SessionReport};

/// Addresses one request may ask about (one SMTP session; the finders send 5, bulk chunks
/// group a domain's addresses, at most a chunk).
pub const MAX_ADDRESSES: usize = 100;
/// The longest time budget a caller may give one request.
pub const MAX_BUDGET: Duration = Duration::from_secs(300);

/// `POST /v1/probe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// The domain whose mail servers are asked.
    pub domain: String,
    /// Addresses at `domain`, asked in this order.
    pub addresses: Vec<String>,
    /// An address that should not exist, asked first to detect a catch-all server.
    #[serde(default)]
    pub catch_all_probe: Option<String>,
    /// Time the caller waits, in milliseconds: no SMTP step starts that could outlast it.
    #[serde(default)]
    pub budget_ms: Option<u64>,
}

/// The answer: what DNS said and what the mail server said, one `rcpts` entry per address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeEvidence {
    pub domain: String,
    /// `None` when DNS gave no answer (the reason is in `report.failure`).
    pub mx: Option<MxAnswer>,
    pub report: SessionReport,
}

/// A request the prober refuses (400).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadRequest {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
    BadRequest { field: field.into(), message: message.into() }
}

fn at_domain(address: &str, domain: &str) -> bool {
    address.rsplit_once('@').is_some_and(|(local, d)| !local.is_empty() && d.eq_ignore_ascii_case(domain))
}

/// Checks a request: a domain name, 1 to [`MAX_ADDRESSES`] addresses all at it.
pub fn validate(request: &ProbeRequest) -> Result<(), BadRequest> {
    let domain = request.domain.trim_end_matches('.');
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
        return Err(bad("domain", "must be an ASCII domain name (IDNs in punycode)"));
    }
    if request.addresses.is_empty() || request.addresses.len() > MAX_ADDRESSES {
        return Err(bad("addresses", format!("must hold 1 to {MAX_ADDRESSES} addresses")));
    }
    let each = request.addresses.iter().enumerate().map(|(i, a)| (format!("addresses[{i}]"), a));
    for (field, address) in each.chain(request.catch_all_probe.iter().map(|a| ("catch_all_probe".to_owned(), a))) {
        if address.len() > 320 || !at_domain(address, domain) {
            return Err(bad(field, format!("must be an address at {domain}")));
        }
    }
    if request.budget_ms.is_some_and(|ms| ms == 0 || Duration::from_millis(ms) > MAX_BUDGET) {
        return Err(bad("budget_ms", format!("must be 1 to {}", MAX_BUDGET.as_millis())));
    }
    Ok(())
}

/// Runs one probe: MX lookup, then the session, within the request's time budget.
pub async fn run(engine: &Engine, allow_private: bool, request: &ProbeRequest) -> Result<ProbeEvidence, BadRequest> {
    validate(request)?;
    let domain = request.domain.trim_end_matches('.').to_ascii_lowercase();
    let work = async {
        let resolver = match engine.resolver() {
            Ok(r) => r,
            Err(e) => return (None, SessionReport::failed(request.addresses.len(), e)),
        };
        match resolver.mx(&domain).await {
            Ok(answer) => {
                let hosts = answer.hosts();
                let report = if hosts.is_empty() {
                    SessionReport::failed(request.addresses.len(), "the domain has no mail server".into())
                } else {
                    smtp::probe_domain(
                        engine,
                        allow_private,
                        &hosts,
                        request.catch_all_probe.as_deref(),
                        &request.addresses,
                    )
                    .await
                };
                (Some(answer), report)
            }
            Err(e) => (None, SessionReport::failed(request.addresses.len(), e)),
        }
    };
    let (mx, report) = match request.budget_ms {
        Some(ms) => {
            let at = Instant::now() + Duration::from_millis(ms);
            crate::support::deadline::within_reserving(at, Duration::ZERO, work).await
        }
        None => work.await,
    };
    Ok(ProbeEvidence { domain, mx, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(domain: &str, addresses: &[&str]) -> ProbeRequest {
        ProbeRequest {
            domain: domain.into(),
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            catch_all_probe: None,
            budget_ms: None,
        }
    }

    #[test]
    fn a_request_may_only_ask_about_addresses_at_its_domain() {
        assert!(validate(&request("acme.test", &["ada@acme.test", "Bob@ACME.test"])).is_ok());
        assert_eq!(validate(&request("acme.test", &["ada@other.test"])).unwrap_err().field, "addresses[0]");
        assert_eq!(validate(&request("acme.test", &[])).unwrap_err().field, "addresses");
        assert_eq!(validate(&request("127.0.0.1:25", &["a@127.0.0.1:25"])).unwrap_err().field, "domain");
        assert_eq!(validate(&request("localhost", &["a@localhost"])).unwrap_err().field, "domain");
        let mut r = request("acme.test", &["ada@acme.test"]);
        r.catch_all_probe = Some("x@evil.test".into());
        assert_eq!(validate(&r).unwrap_err().field, "catch_all_probe");
        r.catch_all_probe = None;
        r.budget_ms = Some(0);
        assert_eq!(validate(&r).unwrap_err().field, "budget_ms");
    }
}
