//! Pushes: leads sent to a destination (a webhook URL, HeyReach or Instantly). What the
//! push-leads specification's answer says about the first attempt, and the stored record of
//! every attempt and of each lead's outcome. Pure rules; the sending lives in
//! `crate::push`.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::integration::Provider;
use crate::support::text::truncate;
use crate::support::time::Timestamp;

/// Lead ids per push request.
pub const MAX_LEAD_IDS: usize = 1000;
/// Longest lead id a push accepts. Ours are 26 to about 40 characters; the cap keeps a push
/// record (every requested id is stored) far below DynamoDB's 400 KB: 1000 × 128 B.
pub const MAX_LEAD_ID_CHARS: usize = 128;
/// `provider_response` holds at most this many bytes of the destination's body (then `…`).
pub const PROVIDER_RESPONSE_MAX_BYTES: usize = 1024;
/// Bodies kept per call in the attempt log.
pub const LOGGED_RESPONSE_MAX_BYTES: usize = 512;
/// Per-lead reasons are cut to this (1000 leads must fit one store item).
pub const MAX_REASON_BYTES: usize = 200;
/// The queue cannot delay a message longer (SQS `DelaySeconds` ≤ 900).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    WebhookUrl,
    Heyreach,
    Instantly,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::WebhookUrl => "webhook_url",
            Destination::Heyreach => "heyreach",
            Destination::Instantly => "instantly",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Destination::WebhookUrl => "the webhook URL",
            Destination::Heyreach => "HeyReach",
            Destination::Instantly => "Instantly",
        }
    }

    /// The integration this destination needs, if any.
    pub fn provider(self) -> Option<Provider> {
        match self {
            Destination::WebhookUrl => None,
            Destination::Heyreach => Some(Provider::Heyreach),
            Destination::Instantly => Some(Provider::Instantly),
        }
    }
}

/// The push-leads specification's `status`: how the first attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    Dispatched,
    DispatchFailed,
}

/// Where a stored push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// Some leads failed in a way worth retrying; the next attempt is queued.
    Retrying,
    /// Done: every lead that could be sent was accepted.
    Dispatched,
    /// Done: some leads accepted, others refused or out of attempts.
    PartiallyDispatched,
    /// Done: no lead was accepted.
    DispatchFailed,
}

impl PushState {
    pub fn is_final(self) -> bool {
        self != PushState::Retrying
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadOutcome {
    /// The destination accepted it.
    Pushed,
    /// Its call failed in a retryable way; a later attempt sends it again.
    Pending,
    /// The destination refused it, or it ran out of attempts.
    Failed,
    /// Not a lead of this workspace (or deleted before a retry).
    Missing,
    /// Not sendable to this destination (e.g. no LinkedIn URL for HeyReach).
    Skipped,
}

/// One requested lead in a push record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushLead {
    pub lead_id: String,
    pub outcome: LeadOutcome,
    /// Why it is not pushed, or a caveat about the provider's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The provider's id for the lead (Instantly), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_lead_id: Option<String>,
    /// The attempt that settled this outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// One HTTP call of an attempt, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallLog {
    pub lead_count: usize,
    /// `null` when no HTTP answer arrived (timeout, connection error).
    pub status_code: Option<u16>,
    /// The start of the body, or what went wrong.
    pub response: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptLog {
    pub attempt: u32,
    pub at: Timestamp,
    /// Leads sent in this attempt.
    pub lead_count: usize,
    /// Leads the destination accepted in this attempt.
    pub pushed: usize,
    pub calls: Vec<CallLog>,
}

/// Where the leads go; fixed when the push is created.
#[derive(Debug, Clone, PartialEq)]
pub struct PushTarget {
    pub destination: Destination,
    pub webhook_url: Option<String>,
    pub list_id: Option<i64>,
    pub campaign_id: Option<String>,
}

/// A push, as stored and as `GET /api/v1/pushes/{push_id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Push {
    pub id: String,
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// HeyReach list the leads go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<i64>,
    /// Instantly campaign the leads go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    pub status: PushState,
    /// Distinct lead ids requested.
    pub requested_lead_count: usize,
    /// Leads pushed so far.
    pub lead_count: usize,
    pub pending_count: usize,
    pub failed_count: usize,
    pub missing_count: usize,
    pub skipped_count: usize,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    /// The latest attempt's headline call (the first that failed, else the last).
    pub provider_status_code: Option<u16>,
    pub provider_response: String,
    /// Every requested lead, in request order.
    pub leads: Vec<PushLead>,
    pub attempt_log: Vec<AttemptLog>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// What happened to one lead in one attempt (built by `crate::push` from the answers).
#[derive(Debug, Clone, PartialEq)]
pub enum LeadResult {
    Pushed {
        provider_lead_id: Option<String>,
        note: Option<String>,
    },
    /// Not sendable to this destination; never sent.
    Skipped(String),
    /// The destination refused it for good.
    Rejected(String),
    /// Its call failed in a way worth retrying.
    Retry(String),
    /// Gone from the store before this attempt.
    Missing,
}

/// One HTTP call of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub lead_count: usize,
    pub status_code: Option<u16>,
    /// The body (as read, capped) or a description of the transport failure.
    pub response: String,
    pub succeeded: bool,
    pub retry_after: Option<Duration>,
}

/// Everything one attempt produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptResult {
    pub leads: Vec<(String, LeadResult)>,
    pub calls: Vec<CallResult>,
}

impl AttemptResult {
    /// The call an answer reports: the first that failed, else the last.
    pub fn headline(&self) -> Option<&CallResult> {
        self.calls.iter().find(|c| !c.succeeded).or_else(|| self.calls.last())
    }

    pub fn pushed_ids(&self) -> Vec<String> {
        self.leads.iter().filter(|(_, r)| matches!(r, LeadResult::Pushed { .. })).map(|(id, _)| id.clone()).collect()
    }

    /// The longest `Retry-After` among failed calls.
    pub fn retry_after(&self) -> Option<Duration> {
        self.calls.iter().filter(|c| !c.succeeded).filter_map(|c| c.retry_after).max()
    }
}

/// The push-leads specification's answer to `POST /api/v1/leads/push`, plus `push_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PushSummary {
    pub status: DispatchStatus,
    pub destination: Destination,
    /// Leads actually dispatched.
    pub lead_count: usize,
    /// Distinct lead ids in the request.
    pub requested_lead_count: usize,
    /// Requested leads that do not exist in this workspace or were not pushed.
    pub missing_lead_ids: Vec<String>,
    /// Whether every call succeeded and at least one lead was accepted.
    pub dispatched: bool,
    /// The destination's HTTP status; `null` when none arrived (timeout, connection error,
    /// or nothing to send).
    pub provider_status_code: Option<u16>,
    /// The start of the destination's body (at most 1024 bytes, then `…`), or what went wrong.
    pub provider_response: String,
    /// Read the push back at `GET /api/v1/pushes/{push_id}` (retries, per-lead outcomes).
    pub push_id: String,
}

/// The request's lead ids, each once, in first-seen order; 1 to [`MAX_LEAD_IDS`] of them.
pub fn distinct_lead_ids(ids: &[String]) -> Result<Vec<String>, super::ValidationError> {
    if ids.is_empty() {
        return Err(super::ValidationError::new("lead_ids", "must contain at least one lead id"));
    }
    if ids.len() > MAX_LEAD_IDS {
        return Err(super::ValidationError::new(
            "lead_ids",
            format!("at most {MAX_LEAD_IDS} lead ids per push, got {}; split the push", ids.len()),
        ));
    }
    if let Some((i, id)) = ids.iter().enumerate().find(|(_, id)| id.chars().count() > MAX_LEAD_ID_CHARS) {
        return Err(super::ValidationError::new(
            format!("lead_ids[{i}]"),
            format!("is {} characters long; lead ids have at most {MAX_LEAD_ID_CHARS}", id.chars().count()),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    Ok(ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect())
}

/// Delay before the retry that follows attempt `attempt_done` (1-based): the schedule's
/// step (the last step repeats), stretched by up to 20 % jitter (`jitter` in 0..1), at least
/// the destination's `Retry-After`, at most the queue's 15 minutes.
pub fn retry_delay(schedule: &[Duration], attempt_done: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let step = (attempt_done as usize).saturating_sub(1).min(schedule.len().saturating_sub(1));
    let base = schedule.get(step).copied().unwrap_or(Duration::from_secs(60));
    let jittered = base + base.mul_f64(jitter.clamp(0.0, 1.0) * 0.2);
    jittered.max(retry_after.unwrap_or_default()).min(MAX_RETRY_DELAY)
}

impl Push {
    /// A new push: `found` are the requested ids that exist in the workspace (the rest are
    /// missing); every found lead waits for the first attempt.
    pub fn new(
        id: String,
        target: PushTarget,
        requested: &[String],
        found: &std::collections::HashSet<&str>,
        max_attempts: u32,
        now: Timestamp,
    ) -> Self {
        let leads = requested
            .iter()
            .map(|lead_id| {
                let exists = found.contains(lead_id.as_str());
                PushLead {
                    lead_id: lead_id.clone(),
                    outcome: if exists { LeadOutcome::Pending } else { LeadOutcome::Missing },
                    reason: (!exists).then(|| "not found in this workspace".to_owned()),
                    provider_lead_id: None,
                    attempt: None,
                }
            })
            .collect();
        let mut push = Push {
            id,
            destination: target.destination,
            webhook_url: target.webhook_url,
            list_id: target.list_id,
            campaign_id: target.campaign_id,
            status: PushState::Retrying,
            requested_lead_count: requested.len(),
            lead_count: 0,
            pending_count: 0,
            failed_count: 0,
            missing_count: 0,
            skipped_count: 0,
            attempts: 0,
            max_attempts: max_attempts.max(1),
            next_attempt_at: Some(now),
            provider_status_code: None,
            provider_response: String::new(),
            leads,
            attempt_log: Vec::new(),
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        push.recount();
        push
    }

    /// Leads still to be sent, in request order.
    pub fn pending_ids(&self) -> Vec<String> {
        self.leads.iter().filter(|l| l.outcome == LeadOutcome::Pending).map(|l| l.lead_id.clone()).collect()
    }

    fn recount(&mut self) {
        let count = |outcome| self.leads.iter().filter(|l| l.outcome == outcome).count();
        self.lead_count = count(LeadOutcome::Pushed);
        self.pending_count = count(LeadOutcome::Pending);
        self.failed_count = count(LeadOutcome::Failed);
        self.missing_count = count(LeadOutcome::Missing);
        self.skipped_count = count(LeadOutcome::Skipped);
    }

    /// What `provider_response` says when no call was made.
    fn nothing_sent(&self) -> String {
        let mut parts = Vec::new();
        let plural = |n: usize| if n == 1 { "lead" } else { "leads" };
        if self.missing_count > 0 {
            parts.push(format!("{} {} not found in this workspace", self.missing_count, plural(self.missing_count)));
        }
        if self.skipped_count > 0 {
            parts.push(format!(
                "{} {} not sendable to {} (reasons in GET /api/v1/pushes/{})",
                self.skipped_count,
                plural(self.skipped_count),
                self.destination.label(),
                self.id
            ));
        }
        if parts.is_empty() {
            format!("Nothing was sent to {}.", self.destination.label())
        } else {
            format!("Nothing was sent to {}: {}.", self.destination.label(), parts.join("; "))
        }
    }

    /// Records attempt `attempt`. Leads whose call failed in a retryable way stay pending
    /// while attempts remain (the push is then `retrying`, due `retry_in` from now);
    /// otherwise the push ends. Applying the same result twice gives the same record.
    pub fn record_attempt(&mut self, attempt: u32, result: &AttemptResult, retry_in: Duration, now: Timestamp) {
        let index: HashMap<String, usize> =
            self.leads.iter().enumerate().map(|(i, l)| (l.lead_id.clone(), i)).collect();
        let last_attempt = attempt >= self.max_attempts;
        for (lead_id, lead_result) in &result.leads {
            let Some(&i) = index.get(lead_id) else { continue };
            let entry = &mut self.leads[i];
            entry.attempt = Some(attempt);
            let cut = |reason: &str| Some(truncate(reason, MAX_REASON_BYTES));
            let (outcome, reason) = match lead_result {
                LeadResult::Pushed { provider_lead_id, note } => {
                    entry.provider_lead_id = provider_lead_id.clone();
                    (LeadOutcome::Pushed, note.as_deref().and_then(cut))
                }
                LeadResult::Skipped(reason) => (LeadOutcome::Skipped, cut(reason)),
                LeadResult::Rejected(reason) => (LeadOutcome::Failed, cut(reason)),
                LeadResult::Retry(reason) if last_attempt => (
                    LeadOutcome::Failed,
                    Some(format!("{}; gave up after {attempt} attempts", truncate(reason, MAX_REASON_BYTES))),
                ),
                LeadResult::Retry(reason) => (LeadOutcome::Pending, cut(reason)),
                LeadResult::Missing => (LeadOutcome::Missing, cut("no longer exists in this workspace")),
            };
            entry.outcome = outcome;
            entry.reason = reason;
        }
        self.attempts = attempt;
        self.recount();
        match result.headline() {
            Some(call) => {
                self.provider_status_code = call.status_code;
                self.provider_response = truncate(&call.response, PROVIDER_RESPONSE_MAX_BYTES);
            }
            None => {
                self.provider_status_code = None;
                self.provider_response = self.nothing_sent();
            }
        }
        let sent = result.calls.iter().map(|c| c.lead_count).sum();
        let pushed = result.leads.iter().filter(|(_, r)| matches!(r, LeadResult::Pushed { .. })).count();
        self.attempt_log.retain(|log| log.attempt != attempt);
        self.attempt_log.push(AttemptLog {
            attempt,
            at: now,
            lead_count: sent,
            pushed,
            calls: result
                .calls
                .iter()
                .map(|c| CallLog {
                    lead_count: c.lead_count,
                    status_code: c.status_code,
                    response: truncate(&c.response, LOGGED_RESPONSE_MAX_BYTES),
                })
                .collect(),
        });
        self.updated_at = now;
        if self.pending_count > 0 {
            self.status = PushState::Retrying;
            self.next_attempt_at = Some(now.plus(retry_in));
            self.completed_at = None;
        } else {
            self.status = match (self.lead_count, self.failed_count) {
                (0, _) => PushState::DispatchFailed,
                (_, 0) => PushState::Dispatched,
                _ => PushState::PartiallyDispatched,
            };
            self.next_attempt_at = None;
            self.completed_at = Some(now);
        }
    }

    /// Ends a push that cannot continue (e.g. its integration was removed): every pending
    /// lead fails with `reason`.
    pub fn abandon(&mut self, attempt: u32, reason: &str, now: Timestamp) {
        let result = AttemptResult {
            leads: self.pending_ids().into_iter().map(|id| (id, LeadResult::Rejected(reason.to_owned()))).collect(),
            calls: Vec::new(),
        };
        self.record_attempt(attempt, &result, Duration::ZERO, now);
        self.provider_response = reason.to_owned();
    }

    /// The push-leads specification's answer after the first attempt.
    pub fn summary(&self, result: &AttemptResult) -> PushSummary {
        let missing_lead_ids =
            self.leads.iter().filter(|l| l.outcome != LeadOutcome::Pushed).map(|l| l.lead_id.clone()).collect();
        let dispatched = !result.calls.is_empty() && result.calls.iter().all(|c| c.succeeded) && self.lead_count > 0;
        PushSummary {
            status: if dispatched { DispatchStatus::Dispatched } else { DispatchStatus::DispatchFailed },
            destination: self.destination,
            lead_count: self.lead_count,
            requested_lead_count: self.requested_lead_count,
            missing_lead_ids,
            dispatched,
            provider_status_code: self.provider_status_code,
            provider_response: self.provider_response.clone(),
            push_id: self.id.clone(),
        }
    }
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
