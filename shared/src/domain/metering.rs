//! What is metered and how much of it a workspace may do: the kinds of expensive work,
//! their rate limits and monthly quotas, and the periods they are counted in. Pure data;
//! counting is [`crate::metering::meter`]'s.

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A kind of expensive work, each with its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// The email verifier (`/email-verifier`): DNS and an SMTP session per address.
    Verification,
    /// The finders and searches (`/email-finder`, `/domain-search`, `/author-finder`,
    /// `/phone-finder`, `/phone-validator`): crawls, DNS and SMTP.
    Search,
    /// `POST /api/v1/api-requests/test`: a call to the customer's API.
    ApiRequestTest,
    /// `POST /api/v1/leads/push`: calls to a destination.
    Push,
}

impl Work {
    pub const ALL: [Work; 4] = [Work::Verification, Work::Search, Work::ApiRequestTest, Work::Push];

    pub fn name(self) -> &'static str {
        match self {
            Work::Verification => "verification",
            Work::Search => "search",
            Work::ApiRequestTest => "api_request_test",
            Work::Push => "push",
        }
    }

    /// Whether the work counts against a monthly quota (Hunter's `searches` and
    /// `verifications` of its `account` route).
    pub fn has_quota(self) -> bool {
        matches!(self, Work::Verification | Work::Search)
    }
}

/// One kind of work's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Limit {
    /// Calls per second (a window of one wall-clock second).
    pub per_second: u32,
    /// Calls per minute (a wall-clock minute).
    pub per_minute: u32,
    /// Calls (or, for bulk jobs, addresses) per calendar month, UTC; only verifications
    /// and searches have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_month: Option<u64>,
}

/// A workspace's limits. Defaults start from Hunter's published ones (15/s and 500/min on
/// most routes, 10/s and 300/min on the verifier); an operator changes them per workspace
/// with `leadpush admin workspace limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    pub verification: Limit,
    pub search: Limit,
    pub api_request_test: Limit,
    pub push: Limit,
    /// Addresses that may wait in the workspace's bulk verification jobs at once.
    pub max_queued_bulk_addresses: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            verification: Limit { per_second: 10, per_minute: 300, per_month: Some(50_000) },
            search: Limit { per_second: 15, per_minute: 500, per_month: Some(25_000) },
            api_request_test: Limit { per_second: 10, per_minute: 300, per_month: None },
            push: Limit { per_second: 15, per_minute: 500, per_month: None },
            max_queued_bulk_addresses: 20_000,
        }
    }
}

impl Policy {
    pub fn limit(&self, work: Work) -> Limit {
        match work {
            Work::Verification => self.verification,
            Work::Search => self.search,
            Work::ApiRequestTest => self.api_request_test,
            Work::Push => self.push,
        }
    }

    pub fn limit_mut(&mut self, work: Work) -> &mut Limit {
        match work {
            Work::Verification => &mut self.verification,
            Work::Search => &mut self.search,
            Work::ApiRequestTest => &mut self.api_request_test,
            Work::Push => &mut self.push,
        }
    }

    /// Every limit at least 1 (a limit of 0 would refuse everything: revoke the key instead).
    pub fn validate(&self) -> Result<(), String> {
        for work in Work::ALL {
            let limit = self.limit(work);
            if limit.per_second == 0 || limit.per_minute == 0 || limit.per_month == Some(0) {
                return Err(format!("{}: every limit must be at least 1", work.name()));
            }
            if limit.per_second > limit.per_minute {
                return Err(format!("{}: per_second may not exceed per_minute", work.name()));
            }
            if limit.per_month.is_some() && !work.has_quota() {
                return Err(format!("{}: has no monthly quota", work.name()));
            }
        }
        if self.max_queued_bulk_addresses == 0 {
            return Err("max_queued_bulk_addresses must be at least 1".into());
        }
        Ok(())
    }
}

/// A period work is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Second,
    Minute,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Month => "month",
        }
    }

    /// The period holding `unix` seconds: its label (part of the counter's key) and the
    /// Unix second it ends at.
    pub fn window(self, unix: i64) -> (String, i64) {
        match self {
            Period::Second => (format!("s{unix}"), unix + 1),
            Period::Minute => {
                let start = unix.div_euclid(60) * 60;
                (format!("m{start}"), start + 60)
            }
            Period::Month => {
                let at = Utc.timestamp_opt(unix, 0).single().unwrap_or_default();
                let (year, month) = (at.year(), at.month());
                let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
                let end = Utc
                    .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
                    .single()
                    .map_or(unix + 31 * 86_400, |t| t.timestamp());
                (format!("M{year:04}-{month:02}"), end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_wall_clock_periods_and_months_end_on_the_first() {
        assert_eq!(Period::Second.window(1_700_000_000), ("s1700000000".into(), 1_700_000_001));
        assert_eq!(Period::Minute.window(1_700_000_059), ("m1700000040".into(), 1_700_000_100));
        // 2026-12-05 -> ends 2027-01-01 00:00 UTC.
        let (label, end) = Period::Month.window(1_796_400_000);
        assert_eq!((label.as_str(), end), ("M2026-12", 1_798_761_600));
    }

    #[test]
    fn defaults_follow_hunters_limits_and_validate() {
        let policy = Policy::default();
        assert_eq!((policy.search.per_second, policy.search.per_minute), (15, 500));
        assert_eq!((policy.verification.per_second, policy.verification.per_minute), (10, 300));
        assert_eq!(policy.validate(), Ok(()));
        let mut bad = policy;
        bad.push.per_month = Some(5);
        assert!(bad.validate().unwrap_err().contains("no monthly quota"));
        bad = policy;
        bad.search.per_second = 0;
        assert!(bad.validate().is_err());
    }
}
