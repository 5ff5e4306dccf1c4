//! Leadpush: the lead pipeline. All logic lives in this crate; the Lambda binaries under
//! `functions/` and the `leadpush` CLI are thin shells around it.
//!
//! Dependencies point one way: `api` -> `domain`, with `store`, `queue` and `delivery`
//! behind traits handed in through [`context::AppContext`].

pub mod admin;
pub mod api;
pub mod aws;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod domain;
#[cfg(feature = "enrich")]
pub mod enrich;
pub mod feedback;
pub mod ingest;
pub mod metering;
pub mod outbound;
pub mod push;
pub mod queue;
pub mod repo;
pub mod runtime;
pub mod store;
pub mod support;
pub mod testing;
pub mod webhooks;
pub mod workflow;
