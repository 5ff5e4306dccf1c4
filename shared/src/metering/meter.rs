//! Admitting metered work: counts each call in its per-second and per-minute windows and,
//! for verifications and searches, in the month; refuses what goes over.
//!
//! - The counts live in the store (both adapters: one atomic add-and-read per window), so
//!   every Lambda instance and `leadpush serve` share them.
//! - This process also remembers what it has counted in the current windows: a count it
//!   has itself seen over the limit is refused without a store call, so a client hammering
//!   a limited route costs no writes.
//! - A refused call still counts in its rate windows (as everywhere), but never uses quota:
//!   a refused quota add is taken back.
//! - Policies are read once per [`POLICY_TTL_SECS`] per process.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::metering::{Period, Policy, Work};
use crate::repo::metering;
use crate::store::{Store, StoreError};

/// How long a process keeps a workspace's limits before reading them again.
pub const POLICY_TTL_SECS: i64 = 30;
/// Remembered window counts before old windows are pruned.
const LOCAL_ENTRIES: usize = 4096;

/// What the caller may still do: the figures of the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The per-minute limit.
    pub limit: u32,
    /// Calls left in this minute (and this second, whichever is fewer).
    pub remaining: u64,
    /// Seconds until the minute's window resets.
    pub reset_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error(
        "Rate limit exceeded: at most {limit} {} calls per {} for this workspace. Retry after {retry_after_secs} s.",
        work.name(),
        period.name()
    )]
    RateLimited { work: Work, period: Period, limit: u32, retry_after_secs: u64, allowance: Allowance },
    #[error(
        "Monthly quota used up: {used} of {quota} {} units this month. It resets in {retry_after_secs} s (the 1st, 00:00 UTC).",
        work.name()
    )]
    QuotaExceeded { work: Work, quota: u64, used: u64, retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One process's metering state; shared by every request of the process.
#[derive(Default)]
pub struct Meter {
    policies: Mutex<HashMap<String, (Policy, i64)>>,
    /// (workspace, work, window label) -> calls this process counted there.
    local: Mutex<HashMap<(String, Work, String), u64>>,
}

impl Meter {
    /// The workspace's limits, from this process's copy when fresh.
    pub async fn policy(&self, store: &dyn Store, workspace_id: &str, now: i64) -> Result<Policy, StoreError> {
        if let Some((policy, read_at)) = self.lock_policies().get(workspace_id)
            && now - read_at < POLICY_TTL_SECS
        {
            return Ok(*policy);
        }
        let policy = metering::policy(store, workspace_id).await?;
        let mut policies = self.lock_policies();
        if policies.len() >= LOCAL_ENTRIES {
            policies.retain(|_, (_, read_at)| now - *read_at < POLICY_TTL_SECS);
        }
        policies.insert(workspace_id.to_owned(), (policy, now));
        Ok(policy)
    }

    /// Forgets this process's copy of a workspace's limits (after an operator changed them).
    pub fn forget_policy(&self, workspace_id: &str) {
        self.lock_policies().remove(workspace_id);
    }

    /// Admits one call of `work` for the workspace at `now` (Unix seconds), using
    /// `quota_units` of its monthly quota (1 per call; a bulk job's address count; 0 for a
    /// free call, which the rate limits count but a used-up quota does not refuse).
    pub async fn admit(
        &self,
        store: &dyn Store,
        workspace_id: &str,
        work: Work,
        quota_units: u64,
        now: i64,
    ) -> Result<Allowance, MeterError> {
        let limit = self.policy(store, workspace_id, now).await?.limit(work);
        let second = self.window(store, workspace_id, work, Period::Second, limit.per_second, now);
        let minute = self.window(store, workspace_id, work, Period::Minute, limit.per_minute, now);
        let (second, minute) = tokio::join!(second, minute);
        let (second_left, _) = second?;
        let (minute_left, minute_end) = minute?;
        let allowance = Allowance {
            limit: limit.per_minute,
            remaining: second_left.min(minute_left),
            reset_secs: u64::try_from(minute_end - now).unwrap_or(0).max(1),
        };
        if let (Some(quota), true) = (limit.per_month, work.has_quota() && quota_units > 0) {
            let units = i64::try_from(quota_units).unwrap_or(i64::MAX);
            let (used, end) = metering::add(store, workspace_id, work, Period::Month, units, now).await?;
            if u64::try_from(used).unwrap_or(0) > quota {
                // Not used after all: the call is refused.
                metering::add(store, workspace_id, work, Period::Month, -units, now).await?;
                return Err(MeterError::QuotaExceeded {
                    work,
                    quota,
                    used: u64::try_from(used - units).unwrap_or(0),
                    retry_after_secs: u64::try_from(end - now).unwrap_or(0).max(1),
                });
            }
        }
        Ok(allowance)
    }

    /// Gives back quota that [`Meter::admit`] took for work that was then not done.
    pub async fn refund(
        &self,
        store: &dyn Store,
        workspace_id: &str,
        work: Work,
        quota_units: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        if work.has_quota() && quota_units > 0 {
            let units = i64::try_from(quota_units).unwrap_or(i64::MAX);
            metering::add(store, workspace_id, work, Period::Month, -units, now).await?;
        }
        Ok(())
    }

    /// Counts one call in `period`'s window; the calls left there, and the window's end.
    async fn window(
        &self,
        store: &dyn Store,
        workspace_id: &str,
        work: Work,
        period: Period,
        limit: u32,
        now: i64,
    ) -> Result<(u64, i64), MeterError> {
        let (label, end) = period.window(now);
        let refused = |allowance_left: u64| MeterError::RateLimited {
            work,
            period,
            limit,
            retry_after_secs: u64::try_from(end - now).unwrap_or(0).max(1),
            allowance: Allowance {
                limit,
                remaining: allowance_left,
                reset_secs: u64::try_from(end - now).unwrap_or(0).max(1),
            },
        };
        let local_key = (workspace_id.to_owned(), work, label);
        {
            let mut local = self.lock_local();
            if local.len() >= LOCAL_ENTRIES {
                let current: [String; 2] = [Period::Second.window(now).0, Period::Minute.window(now).0];
                local.retain(|(_, _, label), _| current.contains(label));
            }
            let seen = local.entry(local_key).or_default();
            *seen += 1;
            if *seen > u64::from(limit) {
                return Err(refused(0));
            }
        }
        let (count, _) = metering::add(store, workspace_id, work, period, 1, now).await?;
        let count = u64::try_from(count).unwrap_or(0);
        if count > u64::from(limit) {
            return Err(refused(0));
        }
        Ok((u64::from(limit) - count, end))
    }

    fn lock_policies(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Policy, i64)>> {
        self.policies.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Work, String), u64>> {
        self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
