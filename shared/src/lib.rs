//! Leadpush: the lead pipeline. All logic lives in this crate; the Lambda binaries under
//! `functions/` and the `leadpush` CLI are thin shells around it.
//!
//! Dependencies point one way: `api` -> `domain`, with `store`, `queue` and `delivery`
//! behind traits handed in through [`context::AppContext`].

pub mod admin;
pub mod api;
pub mod aws;
pub mod config;
#[cfg(feature = "console")]
pub mod console;
pub mod context;
pub mod delivery;
pub mod dispatch;
pub mod domain;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "enrich")]
pub mod enrich;
pub mod error;
pub mod feedback;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod lambda;
#[cfg(feature = "embedded")]
pub mod listener;
#[cfg(feature = "embedded")]
pub mod local;
pub mod memory;
pub mod metering;
pub mod push;
pub mod queue;
pub mod repo;
pub mod samples;
pub mod secrets;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub mod testing;
pub mod text;
pub mod time;
pub mod tls;
pub mod workflow;
