//! Leadpush: the lead pipeline. All logic lives in this crate; the Lambda binaries under
//! `functions/` and the `leadpush` CLI are thin shells around it.
//!
//! # Layout
//!
//! Top-level modules, lowest layer first. A module imports only its own layer or those
//! above it in this list (`layers.toml`, checked by `make lint`); a test keeps this list
//! equal to the modules declared below.
//!
//! - `support`: leaves: ids, timestamps, deadlines, text helpers, secrets, TLS.
//! - `domain`: the types and rules of leads, campaigns, pushes, feedback, workflows,
//!   webhooks, integrations and metering. No I/O, no HTTP.
//! - `store`, `queue`: the storage and task-queue ports, each with a SQLite and an AWS
//!   adapter (DynamoDB, SQS) and a contract suite both pass; `store` also seals secrets at
//!   rest; `queue` also holds the typed tasks and their lanes.
//! - `config`: every setting, read once from the environment.
//! - `outbound`, `aws`: outbound HTTP (SSRF-guarded), DNS and SMTP probing, the push
//!   destinations' adapters; AWS clients (and the KMS key ring) and provisioning.
//! - `repo`: typed repositories over the store.
//! - `metering`: rate limits and quotas on expensive work.
//! - `context`: what every route and task receives.
//! - Capabilities, one module each: `ingest`, `push`, `feedback`, `enrich`, `workflow`,
//!   `webhooks`, `admin`, `learning` (lead scores learned from outcomes); and `testing`, the sample records that tests and the bench seed.
//! - `dispatch`: runs queued tasks on the worker that owns their lane.
//! - `api`: HTTP routes (parse, call the capability, respond), the error type and its one
//!   mapping to HTTP, authentication, the OpenAPI document, the console's files.
//! - `runtime`: process plumbing: the Lambda glue (and the features each Lambda needs),
//!   `leadpush serve` and its listener, `leadpush prober`, telemetry, allocator settings.

pub mod admin;
pub mod api;
pub mod aws;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod domain;
pub mod enrich;
pub mod feedback;
pub mod ingest;
pub mod learning;
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

#[cfg(test)]
mod layout_tests {
    /// The `# Layout` section above names every top-level module, in the order of
    /// `layers.toml`'s layers, and no module that does not exist.
    #[test]
    fn the_layout_section_lists_every_module_in_layer_order() {
        let source = include_str!("lib.rs");
        let section: String = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .skip_while(|l| !l.contains("# Layout"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named: Vec<&str> = Vec::new();
        for word in section.split('`').skip(1).step_by(2).filter(|w| is_module(w)) {
            if !named.contains(&word) {
                named.push(word);
            }
        }
        let declared: Vec<&str> =
            source.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|l| l.trim_end_matches(';')).collect();
        let mut named_sorted = named.clone();
        named_sorted.sort_unstable();
        named_sorted.dedup();
        assert_eq!(named_sorted, declared, "the # Layout section and the module declarations differ");
        let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../layers.toml")).unwrap();
        let layered: Vec<&str> = rules
            .lines()
            .filter(|l| l.trim_start().starts_with('['))
            .flat_map(|l| l.split('"').skip(1).step_by(2))
            .collect();
        assert_eq!(named, layered, "the # Layout section lists modules in another order than layers.toml");
    }

    fn is_module(word: &str) -> bool {
        !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    }
}
