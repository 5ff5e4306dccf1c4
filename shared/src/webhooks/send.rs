//! Sending one signed notification (an endpoint delivery, a callback, or a test send).

use std::collections::BTreeMap;
use std::time::Duration;

use super::signing;
use crate::domain::delivery::MAX_LOGGED_RESPONSE;
use crate::outbound::client::{Outbound, OutboundError, OutboundRequest};
use crate::support::text::truncate;
use crate::support::time::Timestamp;

pub struct SignedRequest<'a> {
    pub url: &'a str,
    pub method: reqwest::Method,
    /// The customer's headers; ours are added after and cannot be replaced.
    pub headers: &'a BTreeMap<String, String>,
    /// `webhook-id`: stable across retries.
    pub message_id: &'a str,
    pub body: &'a [u8],
    pub secrets: Vec<&'a str>,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub duration: Duration,
    pub response: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

pub async fn send_signed(outbound: &Outbound, req: SignedRequest<'_>, now: Timestamp) -> AttemptResult {
    let timestamp = now.unix_seconds();
    let signature = match signing::signature_header(&req.secrets, req.message_id, timestamp, req.body) {
        Ok(signature) => signature,
        Err(e) => return failed(Duration::ZERO, e.to_string()),
    };
    let mut headers: Vec<(String, String)> = req.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("webhook-id".into(), req.message_id.to_owned()));
    headers.push(("webhook-timestamp".into(), timestamp.to_string()));
    headers.push(("webhook-signature".into(), signature));
    let request = OutboundRequest {
        method: req.method,
        url: req.url.to_owned(),
        headers,
        body: Some(req.body.to_vec()),
        timeout: None,
    };
    let started = std::time::Instant::now();
    match outbound.send(request).await {
        Ok(response) => AttemptResult {
            delivered: response.is_success(),
            status_code: Some(response.status),
            duration: response.duration,
            response: Some(truncate(&response.body, MAX_LOGGED_RESPONSE)),
            error: (!response.is_success()).then(|| describe_status(response.status)),
            retry_after: response.retry_after,
        },
        Err(e) => failed(started.elapsed(), describe_error(&e)),
    }
}

fn failed(duration: Duration, error: String) -> AttemptResult {
    AttemptResult {
        delivered: false,
        status_code: None,
        duration,
        response: None,
        error: Some(error),
        retry_after: None,
    }
}

fn describe_status(status: u16) -> String {
    match status {
        300..=399 => format!("receiver answered {status} (redirects are not followed)"),
        _ => format!("receiver answered {status}"),
    }
}

fn describe_error(e: &OutboundError) -> String {
    match e {
        OutboundError::Url(_) => format!("not sent: {e}"),
        other => other.to_string(),
    }
}
