//! Outbound HTTP: the guarded client, and (in their own modules) signing, retry schedules
//! and the provider adapters.

pub mod client;
pub mod providers;
pub mod signing;
pub mod ssrf;
pub mod webhook;

pub use client::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
