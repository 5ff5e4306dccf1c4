//! One outbound notification and its attempts: what was sent, what came back, and whether
//! to try again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::support::time::Timestamp;

/// Response bodies kept per attempt.
pub const MAX_LOGGED_RESPONSE: usize = 1024;
/// A delivery's record is kept this long, then expires (TTL).
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Manual redeliveries (`POST .../retry`) one delivery may have: each appends an attempt,
/// and the record must stay far below DynamoDB's 400 KB (an attempt is at most about 1.3 KB).
pub const MAX_MANUAL_ATTEMPTS: usize = 20;
/// Scheduled delays are spread by ±20% so retries of one outage do not arrive together.
pub const JITTER: f64 = 0.2;
/// The longest wait before a retry: retries wait on the queue, and SQS delays a message by
/// 15 minutes at most (`queue::MAX_DELAY` is this value).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    Delivered,
    /// Every attempt failed (or the endpoint was disabled or deleted).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
    pub at: Timestamp,
    /// The receiver's HTTP status; null when no answer came (timeout, refused, blocked).
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// The start of the receiver's answer (at most 1 KB).
    pub response: Option<String>,
    pub error: Option<String>,
    /// Sent by `POST .../retry` rather than the schedule.
    #[serde(default)]
    pub manual: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    /// The endpoint, or `callback` for a `?webhook_url=` callback.
    pub webhook_id: String,
    pub event: String,
    /// The `webhook-id` header: the same on every attempt, so receivers can dedupe.
    pub message_id: String,
    pub lead_id: Option<String>,
    /// Callbacks carry their URL; endpoint deliveries use the endpoint's current URL.
    pub target_url: Option<String>,
    pub payload: Value,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<Timestamp>,
    /// Held by the worker sending an attempt, so a duplicate queue message does not send
    /// the same attempt twice.
    #[serde(default)]
    pub in_flight_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why a delivery cannot be redelivered by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// Past its retention: treated as deleted.
    Gone,
    /// Still being retried automatically.
    Pending,
    /// [`MAX_MANUAL_ATTEMPTS`] manual attempts made already.
    LimitReached,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    Delivered,
    RetryIn(Duration),
    GiveUp,
}

/// The retry rule: 2xx is delivered; otherwise retry after `schedule[n-1]` (with jitter, in
/// [1-JITTER, 1+JITTER]), or later if the receiver asked with `Retry-After`, capped at the
/// queue's 15-minute limit; after the schedule runs out, give up. Manual retries are one
/// attempt.
pub fn next_step(
    delivered: bool,
    attempts_made: u32,
    schedule: &[Duration],
    retry_after: Option<Duration>,
    manual: bool,
    jitter: f64,
) -> NextStep {
    if delivered {
        return NextStep::Delivered;
    }
    if manual {
        return NextStep::GiveUp;
    }
    let Some(base) = attempts_made.checked_sub(1).and_then(|i| schedule.get(i as usize)) else {
        return NextStep::GiveUp;
    };
    let factor = jitter.clamp(1.0 - JITTER, 1.0 + JITTER);
    let scheduled = base.mul_f64(factor);
    let delay = scheduled.max(retry_after.unwrap_or_default()).min(MAX_RETRY_DELAY);
    NextStep::RetryIn(delay)
}

/// What a started attempt says until its result replaces it; it stays so when the worker
/// stopped mid-attempt (the receiver may have got the request).
pub const INTERRUPTED: &str =
    "no result recorded: still in progress, or the worker stopped during this attempt (the receiver may have got it)";

impl Attempt {
    /// An attempt on record before it is sent.
    pub fn started(number: u32, at: Timestamp, manual: bool) -> Self {
        Attempt {
            number,
            at,
            status_code: None,
            duration_ms: 0,
            response: None,
            error: Some(INTERRUPTED.to_owned()),
            manual,
        }
    }

    /// Still as [`Attempt::started`] left it: no result was recorded.
    pub fn is_unfinished(&self) -> bool {
        self.status_code.is_none() && self.error.as_deref() == Some(INTERRUPTED)
    }
}

impl Delivery {
    pub fn is_settled(&self) -> bool {
        self.status != DeliveryStatus::Pending
    }

    pub fn attempts_made(&self) -> u32 {
        self.attempts.len() as u32
    }

    pub fn manual_attempts(&self) -> usize {
        self.attempts.iter().filter(|a| a.manual).count()
    }

    /// Opens a settled delivery for one manual attempt now (`POST .../retry`).
    pub fn reopen(&mut self, now: Timestamp) -> Result<(), Reopen> {
        if self.is_expired(now) {
            return Err(Reopen::Gone);
        }
        if !self.is_settled() {
            return Err(Reopen::Pending);
        }
        if self.manual_attempts() >= MAX_MANUAL_ATTEMPTS {
            return Err(Reopen::LimitReached);
        }
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(now);
        self.updated_at = now;
        Ok(())
    }

    /// Past its retention: the record counts as gone even before TTL removes it.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.created_at.plus(RETENTION) <= now
    }

    /// When the sweeper should look at a pending delivery: its next attempt (before any, its
    /// last change). Taking an attempt in flight leaves it alone, so the claim before a send
    /// moves no sweep index entry (2 write units a delivery); the sweeper waits far longer
    /// than a lease past this time and skips a delivery that is still leased.
    pub fn due_at(&self) -> Option<Timestamp> {
        if self.is_settled() {
            return None;
        }
        Some(self.next_attempt_at.unwrap_or(self.updated_at))
    }

    /// Whether another worker holds this delivery right now.
    pub fn is_leased(&self, now: Timestamp) -> bool {
        self.in_flight_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: [Duration; 3] = [Duration::from_secs(30), Duration::from_secs(120), Duration::from_secs(600)];

    #[test]
    fn failed_attempts_retry_on_schedule_then_give_up() {
        assert_eq!(next_step(true, 1, &S, None, false, 1.0), NextStep::Delivered);
        assert_eq!(next_step(false, 1, &S, None, false, 1.0), NextStep::RetryIn(Duration::from_secs(30)));
        assert_eq!(next_step(false, 3, &S, None, false, 1.0), NextStep::RetryIn(Duration::from_secs(600)));
        assert_eq!(next_step(false, 4, &S, None, false, 1.0), NextStep::GiveUp, "1 try + 3 retries");
        assert_eq!(next_step(false, 1, &S, None, true, 1.0), NextStep::GiveUp, "manual retries are one attempt");
    }

    #[test]
    fn manual_redelivery_is_capped_and_expired_records_are_gone() {
        let t0 = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        let attempt = |manual| Attempt {
            number: 1,
            at: t0,
            status_code: Some(500),
            duration_ms: 1,
            response: None,
            error: None,
            manual,
        };
        let mut d = Delivery {
            id: "dlv_1".into(),
            webhook_id: "wh_1".into(),
            event: "save_lead".into(),
            message_id: "msg_1".into(),
            lead_id: None,
            target_url: None,
            payload: serde_json::json!({}),
            status: DeliveryStatus::Failed,
            attempts: vec![attempt(false)],
            next_attempt_at: None,
            in_flight_until: None,
            created_at: t0,
            updated_at: t0,
        };
        assert_eq!(d.due_at(), None, "settled deliveries are not swept");
        let later = t0.plus(Duration::from_secs(60));
        assert_eq!(d.reopen(later), Ok(()));
        assert_eq!((d.status, d.next_attempt_at, d.due_at()), (DeliveryStatus::Pending, Some(later), Some(later)));
        assert_eq!(d.reopen(later), Err(Reopen::Pending));
        d.status = DeliveryStatus::Failed;
        d.attempts.extend((0..MAX_MANUAL_ATTEMPTS).map(|_| attempt(true)));
        assert_eq!(d.reopen(later), Err(Reopen::LimitReached));
        assert!(!d.is_expired(t0.plus(RETENTION - Duration::from_secs(1))));
        assert_eq!(d.reopen(t0.plus(RETENTION)), Err(Reopen::Gone));
        // A leased attempt leaves the due time (and the sweep index entry) where it was.
        d.status = DeliveryStatus::Pending;
        d.in_flight_until = Some(later.plus(Duration::from_secs(90)));
        assert_eq!(d.due_at(), Some(later));
    }

    #[test]
    fn jitter_is_bounded_and_retry_after_is_honoured_up_to_the_queue_limit() {
        assert_eq!(next_step(false, 1, &S, None, false, 9.0), NextStep::RetryIn(Duration::from_secs(36)));
        assert_eq!(next_step(false, 1, &S, None, false, 0.0), NextStep::RetryIn(Duration::from_secs(24)));
        let later = Some(Duration::from_secs(90));
        assert_eq!(next_step(false, 1, &S, later, false, 1.0), NextStep::RetryIn(Duration::from_secs(90)));
        let sooner = Some(Duration::from_secs(5));
        assert_eq!(next_step(false, 1, &S, sooner, false, 1.0), NextStep::RetryIn(Duration::from_secs(30)));
        let huge = Some(Duration::from_secs(7200));
        assert_eq!(next_step(false, 1, &S, huge, false, 1.0), NextStep::RetryIn(Duration::from_secs(900)));
    }
}
