//! Push destinations: how leads become a request to each one (`webhook`, `heyreach`,
//! `instantly`) and what its answer means for each lead. Building and reading only; the
//! calls are made by `crate::push` through the guarded client.

pub mod heyreach;
pub mod instantly;
pub mod webhook;

use serde_json::{Map, Value};

use super::{OutboundError, OutboundResponse};
use crate::domain::push::{CallResult, LeadResult};

/// How much of a provider's answer is read (Instantly lists every created lead).
pub const PROVIDER_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Whether a failed call may succeed later: throttling, timeouts and server errors.
/// 501 (not implemented) and 505 (HTTP version) will not change by waiting.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || ((500..600).contains(&status) && !matches!(status, 501 | 505))
}

/// Turns one call's outcome into what the push records: the call, and a result for each of
/// the `sent` leads. `accepted` reads a 2xx answer (it must return `sent` results).
pub fn settle_call(
    label: &str,
    sent: usize,
    outcome: Result<OutboundResponse, OutboundError>,
    accepted: impl FnOnce(&OutboundResponse) -> Vec<LeadResult>,
) -> (CallResult, Vec<LeadResult>) {
    match outcome {
        Ok(response) if response.is_success() => {
            let mut results = accepted(&response);
            // A reader that lost count must not drop or invent leads.
            results.resize(sent, LeadResult::Pushed { provider_lead_id: None, note: None });
            let call = CallResult {
                lead_count: sent,
                status_code: Some(response.status),
                response: response.body,
                succeeded: true,
                retry_after: None,
            };
            (call, results)
        }
        Ok(response) => {
            let retryable = is_retryable_status(response.status);
            let reason = format!("{label} answered HTTP {}", response.status);
            let result = if retryable { LeadResult::Retry(reason) } else { LeadResult::Rejected(reason) };
            let call = CallResult {
                lead_count: sent,
                status_code: Some(response.status),
                response: response.body,
                succeeded: false,
                retry_after: response.retry_after,
            };
            (call, vec![result; sent])
        }
        Err(error) => {
            // The call keeps the whole story; each lead a short reason (1000 of them share a record).
            let (text, reason, retryable) = match &error {
                OutboundError::Timeout(after) => {
                    let text = format!("No answer from {label} within {} s (timed out).", after.as_secs_f64());
                    (text, format!("{label} timed out"), true)
                }
                OutboundError::Connect(cause) => {
                    (format!("Could not connect to {label}: {cause}"), format!("could not connect to {label}"), true)
                }
                OutboundError::Url(e) => (format!("The URL of {label} {e}."), format!("the URL of {label} {e}"), false),
                OutboundError::Header(name) => {
                    let text = format!("The request to {label} had an invalid header `{name}`.");
                    (text, format!("invalid header `{name}` for {label}"), false)
                }
                OutboundError::Other(cause) => {
                    (format!("The request to {label} failed: {cause}"), format!("the request to {label} failed"), true)
                }
            };
            let result = if retryable { LeadResult::Retry(reason) } else { LeadResult::Rejected(reason) };
            let call =
                CallResult { lead_count: sent, status_code: None, response: text, succeeded: false, retry_after: None };
            (call, vec![result; sent])
        }
    }
}

/// A JSON value as provider text: strings as they are, other scalars printed, nested values
/// as JSON, `null` as nothing.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Inserts `value` under `name` when present.
pub fn put(object: &mut Map<String, Value>, name: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        object.insert(name.to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn response(status: u16, body: &str) -> OutboundResponse {
        OutboundResponse {
            status,
            body: body.into(),
            truncated: false,
            duration: Duration::ZERO,
            retry_after: Some(Duration::from_secs(3)),
            location: None,
        }
    }

    #[test]
    fn retryable_statuses_are_throttling_timeouts_and_passing_server_errors() {
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 422, 501, 505] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn failures_apply_to_every_lead_of_the_call() {
        let (call, results) = settle_call("HeyReach", 2, Ok(response(429, "slow down")), |_| unreachable!());
        assert_eq!(
            (call.status_code, call.succeeded, call.retry_after),
            (Some(429), false, Some(Duration::from_secs(3)))
        );
        assert_eq!(results, vec![LeadResult::Retry("HeyReach answered HTTP 429".into()); 2]);
        let (_, results) = settle_call("HeyReach", 1, Ok(response(401, "no")), |_| unreachable!());
        assert!(matches!(&results[0], LeadResult::Rejected(r) if r.contains("401")));
        let (call, results) =
            settle_call("Instantly", 1, Err(OutboundError::Timeout(Duration::from_millis(1500))), |_| unreachable!());
        assert_eq!(call.status_code, None);
        assert_eq!(call.response, "No answer from Instantly within 1.5 s (timed out).");
        assert_eq!(results, vec![LeadResult::Retry("Instantly timed out".into())]);
    }

    #[test]
    fn a_reader_that_lost_count_cannot_drop_leads() {
        let (_, results) = settle_call("x", 3, Ok(response(200, "{}")), |_| Vec::new());
        assert_eq!(results.len(), 3);
    }
}
