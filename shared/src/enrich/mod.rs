//! Enrichment: verifying and finding contact data.

pub mod find;
