//! Enrichment: verifying and finding contact data.

#[cfg(feature = "enrich")]
pub mod find;
