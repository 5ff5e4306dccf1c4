//! The time an invocation has left. A Lambda worker is killed at its deadline, and SQS then
//! redelivers its whole batch, finished messages included; so work that may not finish in
//! time is not started. The worker sets the deadline for the tasks of one batch
//! ([`within`]); long tasks (a workflow run's nodes, the sweeps' items) ask [`allows`]
//! before each step and leave the rest to a new message. `leadpush serve` sets none.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Work stops starting this long before the deadline: what is in flight then still has
/// its own time cap to finish, and the batch response is sent in time.
pub const RESERVE: Duration = Duration::from_secs(10);

/// Past this point before the deadline a task still running is abandoned (its message
/// reported failed), so that the invocation answers instead of being killed.
pub const HARD_STOP: Duration = Duration::from_millis(1500);

tokio::task_local! {
    static DEADLINE: (Instant, Duration);
}

/// Runs `work` with `deadline` visible to [`remaining`] and [`allows`] (none: no limit).
pub async fn within<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(at) => DEADLINE.scope((at, RESERVE), work).await,
        None => work.await,
    }
}

/// [`within`] with a `reserve` of one's own instead of [`RESERVE`] (tests of what stops).
pub async fn within_reserving<F: Future>(at: Instant, reserve: Duration, work: F) -> F::Output {
    DEADLINE.scope((at, reserve), work).await
}

/// The deadline of the work in progress, if it has one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|(at, _)| *at).ok()
}

/// Time left before the deadline (`None`: no deadline).
pub fn remaining() -> Option<Duration> {
    current().map(|at| at.saturating_duration_since(Instant::now()))
}

/// Whether work that may take up to `budget` can start and still end the reserve
/// ([`RESERVE`]) before the deadline. Always true without a deadline.
pub fn allows(budget: Duration) -> bool {
    DEADLINE.try_with(|(at, reserve)| at.saturating_duration_since(Instant::now()) >= budget + *reserve).unwrap_or(true)
}

/// The `Instant` of a deadline given in milliseconds since the Unix epoch (Lambda's
/// `Context::deadline`), as measured now.
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_deadline_everything_is_allowed() {
        assert_eq!(remaining(), None);
        assert!(allows(Duration::from_secs(3600)));
    }

    #[tokio::test]
    async fn work_is_allowed_only_if_it_ends_a_reserve_before_the_deadline() {
        let at = Instant::now() + RESERVE + Duration::from_secs(60);
        within(Some(at), async {
            assert!(allows(Duration::from_secs(30)));
            assert!(!allows(Duration::from_secs(61)));
            assert!(remaining().is_some_and(|left| left > RESERVE));
        })
        .await;
        // A deadline already inside the reserve allows nothing.
        within(Some(Instant::now() + RESERVE / 2), async { assert!(!allows(Duration::ZERO)) }).await;
        // The scope ends with its work.
        assert_eq!(current(), None);
    }

    #[test]
    fn an_epoch_deadline_becomes_the_same_distance_from_now() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = from_epoch_millis(now_ms + 60_000).saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60), "{left:?}");
        // A deadline in the past is now.
        assert!(from_epoch_millis(now_ms - 5_000) <= Instant::now());
    }
}
