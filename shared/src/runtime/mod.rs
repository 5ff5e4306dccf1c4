//! Process plumbing: what starts and hosts the code. The Lambda glue each function's `main`
//! calls, `leadpush serve` (every route and the worker in one process) with its hardened
//! listener, logs, and allocator settings. Nothing below this module imports it.

pub mod allocator;
#[cfg(test)]
mod features;
pub mod lambda;
#[cfg(feature = "embedded")]
pub mod listener;
#[cfg(feature = "embedded")]
pub mod prober;
#[cfg(feature = "embedded")]
pub mod serve;
pub mod telemetry;
