//! Process plumbing: what starts and hosts the code. The Lambda glue each function's `main`
//! calls, `leadpush serve` (every route and the worker in one process) with its hardened
//! listener, logs, and allocator settings. Nothing below this module imports it.

pub mod allocator;
pub mod features;
pub mod lambda;
#[cfg(feature = "embedded")]
pub mod listener;
#[cfg(all(feature = "embedded", feature = "enrich"))]
pub mod prober;
#[cfg(feature = "embedded")]
pub mod serve;
pub mod telemetry;
