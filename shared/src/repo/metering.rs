//! Metering's items: a workspace's limits (`W#{ws}` / `LIMITS`, absent until an operator
//! changes them) and its counters, one item per workspace, kind of work and period:
//! `METER#{ws}#{work}#{period}` / `N`. A counter's key names its period (`s1796400000`,
//! `m1796399940`, `M2026-12`), so each window is a fresh partition and no key stays hot:
//! the per-minute limit bounds the writes any one counter takes. Expiry clears old windows.

use super::workspace_pk;
use crate::domain::metering::{Period, Policy, Work};
use crate::store::{Condition, Item, Key, Store, StoreError};

/// Kept past a window's end so a late reader (the account route) still sees a month.
const KEEP_AFTER_END_SECS: i64 = 40 * 86_400;

fn limits_key(workspace_id: &str) -> Key {
    Key::new(workspace_pk(workspace_id), "LIMITS")
}

fn counter_key(workspace_id: &str, work: Work, label: &str) -> Key {
    Key::new(format!("METER#{workspace_id}#{}#{label}", work.name()), "N")
}

/// The workspace's limits (the defaults until an operator changes them).
pub async fn policy(store: &dyn Store, workspace_id: &str) -> Result<Policy, StoreError> {
    Ok(store.get(&limits_key(workspace_id)).await?.map(|i| i.parse()).transpose()?.unwrap_or_default())
}

pub async fn put_policy(store: &dyn Store, workspace_id: &str, policy: &Policy) -> Result<(), StoreError> {
    store.put(Item::new(limits_key(workspace_id), policy)?, Condition::Always).await
}

/// Adds `amount` to the workspace's count of `work` in the `period` holding `now` and
/// returns the new count and the Unix second the period ends.
pub async fn add(
    store: &dyn Store,
    workspace_id: &str,
    work: Work,
    period: Period,
    amount: i64,
    now: i64,
) -> Result<(i64, i64), StoreError> {
    let (label, end) = period.window(now);
    let count =
        store.add_and_read(&counter_key(workspace_id, work, &label), "n", amount, end + KEEP_AFTER_END_SECS).await?;
    Ok((count, end))
}

/// The workspace's count of `work` in the period holding `now` (0 when none yet).
pub async fn used(
    store: &dyn Store,
    workspace_id: &str,
    work: Work,
    period: Period,
    now: i64,
) -> Result<i64, StoreError> {
    let (label, _) = period.window(now);
    Ok(store.get(&counter_key(workspace_id, work, &label)).await?.map_or(0, |item| item.counter("n")))
}

/// Addresses waiting in a workspace's bulk jobs are counted per day of their job's
/// creation: a job's addresses are added when it is created and taken off chunk by chunk.
/// The cap reads today's and yesterday's counts, so addresses of a chunk that never
/// finishes (dead-lettered) stop counting after at most two days.
pub fn queued_key(workspace_id: &str, day: i64) -> Key {
    Key::new(format!("METER#{workspace_id}#bulk_queued#D{day}"), "N")
}

/// Adds `amount` (negative to take off) to the addresses queued by jobs created on `day`
/// (Unix days); the new count.
pub async fn add_queued(store: &dyn Store, workspace_id: &str, day: i64, amount: i64) -> Result<i64, StoreError> {
    store.add_and_read(&queued_key(workspace_id, day), "n", amount, (day + 3) * 86_400).await
}

/// Addresses queued by jobs created on `day` (0 when none).
pub async fn queued(store: &dyn Store, workspace_id: &str, day: i64) -> Result<i64, StoreError> {
    Ok(store.get(&queued_key(workspace_id, day)).await?.map_or(0, |item| item.counter("n")))
}
