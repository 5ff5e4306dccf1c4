//! Leadpush: the lead pipeline. All logic lives in this crate; the Lambda binaries under
//! `functions/` and the `leadpush` CLI are thin shells around it.

pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod queue;
pub mod store;
#[cfg(test)]
pub mod testing;
