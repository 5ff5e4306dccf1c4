//! The prober probe mode (`LEADPUSH_SMTP_PROBE=https://...`): the SMTP session runs on a
//! `leadpush prober` host that has port 25, a fixed IP and a PTR record; this side sends the
//! domain and addresses with the bearer token and reads back the evidence
//! ([`super::service::ProbeEvidence`]). Every failure to get it is a `failure` in plain
//! words (so the verdict is `unknown`), never a guess.

use std::time::Duration;

use super::Engine;
use super::service::{MAX_ADDRESSES, ProbeEvidence, ProbeRequest};
use super::smtp::{CUT_SHORT, SessionReport};
use crate::config::ProberEndpoint;
use crate::support::deadline;

/// Time allowed on top of the probe's own budget for the HTTP exchange.
const HTTP_MARGIN: Duration = Duration::from_secs(3);

fn client(engine: &Engine) -> Result<&reqwest::Client, String> {
    engine
        .prober_client
        .get_or_init(|| {
            crate::support::tls::install();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("Leadpush/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("prober client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The probe's time budget: what the invocation's deadline leaves (minus the HTTP margin),
/// else the time a session of this many addresses may take on two hosts.
fn budget(engine: &Engine, addresses: usize) -> Option<Duration> {
    let worst = engine.config.smtp_timeout * (2 * (addresses as u32 + 5));
    let cap = worst.min(super::service::MAX_BUDGET);
    match deadline::remaining() {
        Some(left) => {
            let usable = left.saturating_sub(deadline::RESERVE + HTTP_MARGIN);
            (!usable.is_zero()).then(|| usable.min(cap))
        }
        None => Some(cap),
    }
}

/// Asks the prober about `addresses` (all at one domain). The prober resolves the MX hosts
/// itself; `_hosts` (ours) only tells that the domain takes mail. More addresses than one
/// request takes go in several requests, the catch-all probe in the first.
pub async fn probe(
    engine: &Engine,
    endpoint: &ProberEndpoint,
    _hosts: &[String],
    random: Option<&str>,
    addresses: &[String],
) -> SessionReport {
    if addresses.len() <= MAX_ADDRESSES {
        return probe_one(engine, endpoint, random, addresses).await;
    }
    let mut merged = SessionReport::default();
    for (n, part) in addresses.chunks(MAX_ADDRESSES).enumerate() {
        let report = probe_one(engine, endpoint, random.filter(|_| n == 0), part).await;
        if n == 0 {
            (merged.host, merged.catch_all) = (report.host.clone(), report.catch_all);
        }
        merged.connected |= report.connected;
        merged.blocked |= report.blocked;
        merged.cut_short |= report.cut_short;
        merged.failure = merged.failure.or(report.failure);
        merged.rcpts.extend(report.rcpts);
    }
    merged
}

async fn probe_one(
    engine: &Engine,
    endpoint: &ProberEndpoint,
    random: Option<&str>,
    addresses: &[String],
) -> SessionReport {
    let Some(domain) =
        addresses.iter().map(String::as_str).chain(random).find_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_owned()))
    else {
        return SessionReport::failed(addresses.len(), "no address to check".into());
    };
    let Some(budget) = budget(engine, addresses.len()) else {
        return SessionReport { cut_short: true, ..SessionReport::failed(addresses.len(), CUT_SHORT.into()) };
    };
    let client = match client(engine) {
        Ok(c) => c,
        Err(e) => return SessionReport::failed(addresses.len(), e),
    };
    let request = ProbeRequest {
        domain,
        addresses: addresses.to_vec(),
        catch_all_probe: random.map(str::to_owned),
        budget_ms: Some(budget.as_millis().max(1) as u64),
    };
    let sent = client
        .post(format!("{}/v1/probe", endpoint.url))
        .bearer_auth(&endpoint.token)
        .timeout(budget + HTTP_MARGIN)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&request).unwrap_or_default())
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return SessionReport::failed(addresses.len(), format!("the prober did not answer within {budget:?}"));
        }
        Err(e) => return SessionReport::failed(addresses.len(), format!("could not reach the prober: {e}")),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return SessionReport::failed(
            addresses.len(),
            "the prober refused our credential (401): LEADPUSH_PROBER_TOKEN must match the prober's".into(),
        );
    }
    if !status.is_success() {
        let text: String = body.chars().take(200).collect();
        return SessionReport::failed(addresses.len(), format!("the prober answered {status}: {text}"));
    }
    match serde_json::from_str::<ProbeEvidence>(&body) {
        Ok(evidence) if evidence.report.rcpts.len() == addresses.len() => evidence.report,
        Ok(_) => SessionReport::failed(addresses.len(), "the prober answered for other addresses".into()),
        Err(e) => SessionReport::failed(addresses.len(), format!("the prober's answer is not evidence: {e}")),
    }
}
