//! Leaves every other module may use: ids, timestamps, an invocation's deadline, text
//! helpers, secrets (hashing and masking) and the TLS configuration of outbound connections. They import nothing else of
//! this crate.

pub mod deadline;
pub mod ids;
pub mod secrets;
pub mod text;
pub mod time;
pub mod tls;
