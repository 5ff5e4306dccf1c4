//! All configuration, read from the environment once at start-up. The README's
//! configuration table lists the same variables; `VARIABLES` keeps them in one place.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite file + embedded queue (the default for `leadpush serve`).
    Embedded,
    /// DynamoDB + SQS (Lambda, or `leadpush serve` against moto/AWS).
    Aws,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreKind,
    pub data_dir: PathBuf,
    pub table: String,
    pub queue_url: Option<String>,
    pub public_url: Option<String>,
    /// Honour `X-Forwarded-Host`/`-Proto` (only behind a proxy that sets them).
    pub trust_forwarded_headers: bool,
    pub allow_private_targets: bool,
    pub idempotency_ttl: Duration,
    pub idempotency_lease: Duration,
    pub heyreach_base_url: String,
    pub instantly_base_url: String,
    pub webhook_retry_schedule: Vec<Duration>,
    /// Delays before each retry of a push's failed leads; attempts = retries + 1.
    pub push_retry_schedule: Vec<Duration>,
    pub outbound_timeout: Duration,
    pub max_receives: u32,
    /// Store faults to inject (`store::faulty`); empty in production.
    pub faults: Vec<crate::store::faulty::Rule>,
    /// Disable an endpoint after this many deliveries in a row failed every retry...
    pub webhook_disable_after_failures: u32,
    /// ...or after failing this long without a single success.
    pub webhook_disable_after: Duration,
    /// `leadpush serve`: time to receive a request's head (and keep-alive idle time).
    pub header_timeout: Duration,
    /// `leadpush serve`: time to receive a request's whole body.
    pub body_timeout: Duration,
    /// `leadpush serve`: open connections at most (see `listener`).
    pub max_connections: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// Every variable Leadpush reads, with its default and meaning (for `--help` and the README).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "LEADPUSH_STORE",
        "sqlite",
        "`sqlite` (embedded file + queue) or `dynamodb` (DynamoDB + SQS). Lambdas always use dynamodb.",
    ),
    ("LEADPUSH_DATA_DIR", ".leadpush", "Directory of the embedded SQLite file."),
    ("LEADPUSH_TABLE", "leadpush", "DynamoDB table name."),
    ("LEADPUSH_QUEUE_URL", "(none)", "SQS work queue URL; required with dynamodb."),
    (
        "LEADPUSH_PUBLIC_URL",
        "(from Host header)",
        "Base URL shown in webhook setup instructions. Without it, a valid `Host` header is used.",
    ),
    (
        "LEADPUSH_TRUST_FORWARDED_HEADERS",
        "0",
        "1 honours `X-Forwarded-Host`/`X-Forwarded-Proto` for that base URL; only behind a proxy that sets them.",
    ),
    (
        "LEADPUSH_ALLOW_PRIVATE_TARGETS",
        "0",
        "1 lets outbound calls reach http:// and private/loopback addresses (local runs and tests only).",
    ),
    ("LEADPUSH_IDEMPOTENCY_TTL_SECS", "604800", "How long an ingest idempotency key blocks reuse (one week)."),
    (
        "LEADPUSH_IDEMPOTENCY_LEASE_SECS",
        "60",
        "How long an unfinished ingest holds its key before a retry may take it over.",
    ),
    ("LEADPUSH_HEYREACH_BASE_URL", "https://api.heyreach.io/api/public", "HeyReach API base URL."),
    ("LEADPUSH_INSTANTLY_BASE_URL", "https://api.instantly.ai/api/v2", "Instantly API v2 base URL."),
    (
        "LEADPUSH_WEBHOOK_RETRY_SCHEDULE",
        "30s,2m,10m",
        "Delays before each retry of a failed outbound webhook (jitter added).",
    ),
    (
        "LEADPUSH_PUSH_RETRY_SCHEDULE",
        "30s,2m,10m,15m",
        "Delays before each retry of leads a push could not deliver (429, 5xx, timeouts); at least Retry-After.",
    ),
    ("LEADPUSH_OUTBOUND_TIMEOUT_MS", "10000", "Timeout of each outbound webhook or provider call."),
    (
        "LEADPUSH_MAX_RECEIVES",
        "5",
        "Receives before the embedded queue dead-letters a message (SQS: the redrive policy).",
    ),
    (
        "LEADPUSH_HEADER_TIMEOUT_MS",
        "10000",
        "`leadpush serve`: a client must send a request's headers within this time (also the keep-alive idle limit).",
    ),
    (
        "LEADPUSH_BODY_TIMEOUT_MS",
        "30000",
        "`leadpush serve`: a client must send a request's whole body within this time.",
    ),
    (
        "LEADPUSH_MAX_CONNECTIONS",
        "4096",
        "`leadpush serve`: open connections at most; at the cap idle and anonymous ones are shed first.",
    ),
    (
        "LEADPUSH_FAULTS",
        "(none)",
        "Tests only: store faults to inject, e.g. `transact_write:LEAD#=conflict*3` (see `store::faulty`).",
    ),
    ("LEADPUSH_LOG", "info", "Log filter (tracing EnvFilter syntax)."),
    ("LEADPUSH_LOG_FORMAT", "json", "`json` or `pretty`."),
    ("AWS_ENDPOINT_URL", "(AWS)", "Point the AWS SDK at a local emulator such as moto."),
];

fn parse_duration_list(name: &'static str, text: &str) -> Result<Vec<Duration>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|part| {
            humantime::parse_duration(part).map_err(|e| ConfigError {
                name,
                message: format!("`{part}` is not a duration ({e}); use e.g. 30s,2m,10m"),
            })
        })
        .collect()
}

/// A retry schedule: at most 10 steps, each within the queue's 15-minute delay limit.
fn retry_schedule(name: &'static str, text: &str) -> Result<Vec<Duration>, ConfigError> {
    let schedule = parse_duration_list(name, text)?;
    if schedule.len() > 10 {
        return Err(ConfigError { name, message: "at most 10 retries".into() });
    }
    if let Some(long) = schedule.iter().find(|d| **d > crate::queue::MAX_DELAY) {
        return Err(ConfigError { name, message: format!("{long:?} exceeds the queue's 15-minute maximum delay") });
    }
    Ok(schedule)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text =
            |name: &str, default: &str| get(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            text(name, &default.to_string())
                .parse()
                .map_err(|_| ConfigError { name, message: "must be a non-negative integer".into() })
        };
        let store = match text("LEADPUSH_STORE", "sqlite").as_str() {
            "sqlite" | "embedded" => StoreKind::Embedded,
            "dynamodb" | "aws" => StoreKind::Aws,
            other => {
                return Err(ConfigError {
                    name: "LEADPUSH_STORE",
                    message: format!("`{other}` is not a store; use sqlite or dynamodb"),
                });
            }
        };
        let flag = |name: &str| matches!(text(name, "0").as_str(), "1" | "true" | "yes");
        let schedule = parse_duration_list(
            "LEADPUSH_WEBHOOK_RETRY_SCHEDULE",
            &text("LEADPUSH_WEBHOOK_RETRY_SCHEDULE", "30s,2m,10m"),
        )?;
        if schedule.len() > 10 {
            return Err(ConfigError { name: "LEADPUSH_WEBHOOK_RETRY_SCHEDULE", message: "at most 10 retries".into() });
        }
        if let Some(long) = schedule.iter().find(|d| **d > crate::queue::MAX_DELAY) {
            return Err(ConfigError {
                name: "LEADPUSH_WEBHOOK_RETRY_SCHEDULE",
                message: format!("{long:?} exceeds the queue's 15-minute maximum delay"),
            });
        }
        let push_schedule =
            retry_schedule("LEADPUSH_PUSH_RETRY_SCHEDULE", &text("LEADPUSH_PUSH_RETRY_SCHEDULE", "30s,2m,10m,15m"))?;
        let config = Config {
            store,
            data_dir: PathBuf::from(text("LEADPUSH_DATA_DIR", ".leadpush")),
            table: text("LEADPUSH_TABLE", "leadpush"),
            queue_url: get("LEADPUSH_QUEUE_URL").filter(|v| !v.is_empty()),
            public_url: get("LEADPUSH_PUBLIC_URL")
                .filter(|v| !v.is_empty())
                .map(|u| u.trim_end_matches('/').to_owned()),
            allow_private_targets: flag("LEADPUSH_ALLOW_PRIVATE_TARGETS"),
            trust_forwarded_headers: flag("LEADPUSH_TRUST_FORWARDED_HEADERS"),
            idempotency_ttl: Duration::from_secs(number("LEADPUSH_IDEMPOTENCY_TTL_SECS", 7 * 24 * 3600)?),
            idempotency_lease: Duration::from_secs(number("LEADPUSH_IDEMPOTENCY_LEASE_SECS", 60)?.max(1)),
            heyreach_base_url: text("LEADPUSH_HEYREACH_BASE_URL", "https://api.heyreach.io/api/public")
                .trim_end_matches('/')
                .to_owned(),
            instantly_base_url: text("LEADPUSH_INSTANTLY_BASE_URL", "https://api.instantly.ai/api/v2")
                .trim_end_matches('/')
                .to_owned(),
            webhook_retry_schedule: schedule,
            push_retry_schedule: push_schedule,
            outbound_timeout: Duration::from_millis(number("LEADPUSH_OUTBOUND_TIMEOUT_MS", 10_000)?.max(1)),
            max_receives: number("LEADPUSH_MAX_RECEIVES", 5)?.clamp(1, 1000) as u32,
            faults: crate::store::faulty::FaultyStore::parse_rules(&text("LEADPUSH_FAULTS", ""))
                .map_err(|e| ConfigError { name: "LEADPUSH_FAULTS", message: e.to_string() })?,
            webhook_disable_after_failures: number("LEADPUSH_WEBHOOK_DISABLE_AFTER_FAILURES", 20)?.clamp(1, 100_000)
                as u32,
            webhook_disable_after: humantime::parse_duration(&text("LEADPUSH_WEBHOOK_DISABLE_AFTER", "24h")).map_err(
                |e| ConfigError { name: "LEADPUSH_WEBHOOK_DISABLE_AFTER", message: format!("is not a duration ({e})") },
            )?,
            header_timeout: Duration::from_millis(number("LEADPUSH_HEADER_TIMEOUT_MS", 10_000)?.max(100)),
            body_timeout: Duration::from_millis(number("LEADPUSH_BODY_TIMEOUT_MS", 30_000)?.max(100)),
            max_connections: number("LEADPUSH_MAX_CONNECTIONS", 4096)?.clamp(8, 1_000_000) as usize,
        };
        if config.store == StoreKind::Aws && config.queue_url.is_none() {
            return Err(ConfigError {
                name: "LEADPUSH_QUEUE_URL",
                message: "is required when LEADPUSH_STORE=dynamodb".into(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn every_variable_is_in_the_readme_configuration_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for (name, _, _) in VARIABLES {
            assert!(readme.contains(&format!("| `{name}` |")), "README's configuration table lacks {name}");
        }
    }

    #[test]
    fn defaults_run_embedded_with_a_week_of_idempotency() {
        let c = config(&[]).unwrap();
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.idempotency_ttl, Duration::from_secs(604_800));
        assert_eq!(c.webhook_retry_schedule.len(), 3);
        assert_eq!(c.push_retry_schedule.len(), 4, "five push attempts");
        assert!(!c.allow_private_targets);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let e = config(&[("LEADPUSH_STORE", "postgres")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_STORE");
        let e = config(&[("LEADPUSH_STORE", "dynamodb")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_QUEUE_URL");
        let e = config(&[("LEADPUSH_WEBHOOK_RETRY_SCHEDULE", "10ms,soon")]).unwrap_err();
        assert!(e.message.contains("`soon`"), "{e}");
        let e = config(&[("LEADPUSH_PUSH_RETRY_SCHEDULE", "1m,20m")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_PUSH_RETRY_SCHEDULE");
        let c = config(&[("LEADPUSH_WEBHOOK_RETRY_SCHEDULE", "10ms, 20ms,40ms")]).unwrap();
        assert_eq!(c.webhook_retry_schedule[1], Duration::from_millis(20));
    }
}
