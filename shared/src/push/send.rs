//! One attempt of a push: each lead prepared for its destination (or skipped), batched to the
//! destination's limit, sent through the guarded client, and every answer read per lead.

use futures_util::{StreamExt, stream};
use serde_json::Value;

use super::Target;
use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::push::{AttemptResult, LeadResult};
use crate::outbound::providers::{PROVIDER_MAX_RESPONSE_BYTES, heyreach, instantly, settle_call, webhook};
use crate::outbound::{OutboundRequest, OutboundResponse};

/// Provider calls in flight at once within one attempt: 1000 leads are 10 HeyReach calls,
/// so even if every one times out the attempt stays within a Lambda's 29 s.
pub const CALL_CONCURRENCY: usize = 5;

/// Sends `leads` (in order) for attempt `attempt` of push `push_id`.
pub async fn attempt(ctx: &AppContext, push_id: &str, attempt: u32, target: &Target, leads: &[Lead]) -> AttemptResult {
    let mut result = AttemptResult::default();
    if leads.is_empty() {
        return result;
    }
    match target {
        Target::Webhook { url } => {
            let request = webhook::request(url, push_id, attempt, leads);
            let outcome = ctx.outbound.send(request).await;
            let (call, results) =
                settle_call("the webhook URL", leads.len(), outcome, |_| webhook::accepted(leads.len()));
            result.calls.push(call);
            result.leads.extend(leads.iter().map(|l| l.id.clone()).zip(results));
        }
        Target::Heyreach { api_key, list_id } => {
            let base = ctx.config.heyreach_base_url.as_str();
            let batches = prepare(&mut result, leads, heyreach::lead, heyreach::MAX_LEADS_PER_CALL);
            let calls = batches.into_iter().map(|(ids, body)| {
                let request = heyreach::request(base, api_key, *list_id, &body);
                call(ctx, "HeyReach", ids, request, move |response| heyreach::accepted(body.len(), &response.body))
            });
            collect(&mut result, calls).await;
        }
        Target::Instantly { api_key, campaign_id } => {
            let base = ctx.config.instantly_base_url.as_str();
            let batches = prepare(&mut result, leads, instantly::lead, instantly::MAX_LEADS_PER_CALL);
            let account = instantly::Account { outbound: &ctx.outbound, base_url: base, api_key, campaign_id };
            let calls = batches.into_iter().map(|(ids, body)| instantly_call(ctx, &account, ids, body));
            collect(&mut result, calls).await;
        }
    }
    result
}

/// Maps each lead for a provider; the ones it cannot take are recorded as skipped, the rest
/// come back in batches of at most `per_call` (ids beside their bodies).
fn prepare(
    result: &mut AttemptResult,
    leads: &[Lead],
    map: fn(&Lead) -> Result<Value, String>,
    per_call: usize,
) -> Vec<(Vec<String>, Vec<Value>)> {
    let mut sendable = Vec::with_capacity(leads.len());
    for lead in leads {
        match map(lead) {
            Ok(body) => sendable.push((lead.id.clone(), body)),
            Err(reason) => result.leads.push((lead.id.clone(), LeadResult::Skipped(reason))),
        }
    }
    batches(sendable, per_call)
}

/// Splits `(id, body)` pairs into batches of at most `size`, keeping order.
pub fn batches(items: Vec<(String, Value)>, size: usize) -> Vec<(Vec<String>, Vec<Value>)> {
    let mut out = Vec::with_capacity(items.len().div_ceil(size.max(1)));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(size.max(1)).unzip());
    }
    out
}

/// The leads of a call, its record (none if it was not made) and each lead's result.
type CallOutput = (Vec<String>, Option<crate::domain::push::CallResult>, Vec<LeadResult>);

/// A call that might not end before the request's or invocation's deadline is not made:
/// its leads stay pending for the push's next attempt.
fn out_of_time(ctx: &AppContext, ids: &[String]) -> Option<Vec<LeadResult>> {
    if ctx.outbound.fits_deadline() {
        return None;
    }
    let reason = "not sent: the time left for this attempt ran out; sent on the next attempt".to_owned();
    Some(vec![LeadResult::Retry(reason); ids.len()])
}

async fn call(
    ctx: &AppContext,
    label: &'static str,
    ids: Vec<String>,
    request: OutboundRequest,
    accepted: impl FnOnce(&OutboundResponse) -> Vec<LeadResult>,
) -> CallOutput {
    if let Some(pending) = out_of_time(ctx, &ids) {
        return (ids, None, pending);
    }
    let outcome = ctx.outbound.send_capped(request, PROVIDER_MAX_RESPONSE_BYTES).await;
    let (call, results) = settle_call(label, ids.len(), outcome, accepted);
    if !call.succeeded {
        tracing::warn!(provider = label, status = call.status_code, leads = ids.len(), "provider call failed");
    }
    (ids, Some(call), results)
}

/// An Instantly add call, then (when its answer counts duplicates) the lookups and updates
/// that settle the leads it did not create.
async fn instantly_call(
    ctx: &AppContext,
    account: &instantly::Account<'_>,
    ids: Vec<String>,
    body: Vec<Value>,
) -> CallOutput {
    if let Some(pending) = out_of_time(ctx, &ids) {
        return (ids, None, pending);
    }
    let request = instantly::request(account.base_url, account.api_key, account.campaign_id, &body);
    let outcome = ctx.outbound.send_capped(request, PROVIDER_MAX_RESPONSE_BYTES).await;
    let mut settled = None;
    if let Ok(response) = &outcome
        && response.is_success()
    {
        let added = instantly::read_added(&body, &response.body);
        settled = Some(instantly::resolve_duplicates(account, &body, added).await);
    }
    let (call, results) = settle_call("Instantly", ids.len(), outcome, |_| settled.unwrap_or_default());
    if !call.succeeded {
        tracing::warn!(provider = "Instantly", status = call.status_code, leads = ids.len(), "provider call failed");
    }
    (ids, Some(call), results)
}

/// Runs the calls a few at a time and records them in batch order.
async fn collect(result: &mut AttemptResult, calls: impl Iterator<Item = impl Future<Output = CallOutput>>) {
    let outputs: Vec<CallOutput> = stream::iter(calls).buffered(CALL_CONCURRENCY).collect().await;
    for (ids, call, results) in outputs {
        result.calls.extend(call);
        result.leads.extend(ids.into_iter().zip(results));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn batches_keep_order_and_respect_the_limit() {
        let items: Vec<(String, Value)> = (0..250).map(|i| (format!("l{i}"), json!(i))).collect();
        let out = batches(items, 100);
        let sizes: Vec<usize> = out.iter().map(|(ids, _)| ids.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!((out[1].0[0].as_str(), &out[2].1[49]), ("l100", &json!(249)));
        assert!(batches(Vec::new(), 100).is_empty());
    }
}
