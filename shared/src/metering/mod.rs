//! Metering expensive work per workspace, so one workspace cannot exhaust what all share:
//! rate limits per second and per minute on verifications, searches (finders and crawls),
//! API-request tests and pushes, monthly quotas on verifications and searches, and a cap on
//! addresses waiting in bulk jobs. Refusals are `429 rate_limited` / `429 quota_exceeded`
//! with `Retry-After`; every metered answer carries `X-RateLimit-Limit`, `-Remaining` and
//! `-Reset`.
//!
//! - [`crate::domain::metering`]: the kinds of work, their default limits (Hunter's), the periods (pure).
//! - [`meter`]: counting in the store and refusing what goes over.

pub mod meter;

pub use crate::domain::metering::{Limit, Period, Policy, Work};
pub use meter::{Allowance, Meter, MeterError};
