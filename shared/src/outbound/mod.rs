//! Outbound HTTP: the SSRF-guarded client and the push destinations' adapters (webhook URL,
//! HeyReach, Instantly). What is sent and why lives with the capabilities that call them.

pub mod client;
pub mod probing;
pub mod providers;
pub mod ssrf;

pub use client::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
