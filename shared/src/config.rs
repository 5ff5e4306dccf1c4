//! All configuration, read from the environment once at start-up. The configuration table
//! of docs/operations.md lists the same variables; `VARIABLES` keeps them in one place.

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
    /// The KMS key sealing stored secrets on DynamoDB (`store::sealed`); none: not sealed here.
    pub kms_key_id: Option<String>,
    pub queue_url: Option<String>,
    /// The queues of the verification, finder and workflow tasks (`queue::Lane`);
    /// without them, those tasks go to `queue_url` too.
    pub enrich_queue_url: Option<String>,
    pub finder_queue_url: Option<String>,
    pub workflow_queue_url: Option<String>,
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
    /// Store faults to inject (`store::faulty`); only test builds have the injector.
    #[cfg(feature = "faults")]
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
    /// How long outcome events gather before lead scores are recomputed
    /// (`learning::schedule`); tests shorten it.
    pub rescore_debounce: Duration,
    /// Email verification and the caches of enrichment (see `crate::enrich`).
    pub enrich: EnrichConfig,
}

/// How the SMTP probe reaches mail servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeMode {
    /// No SMTP: results say the mailbox was not checked.
    Off,
    /// Straight to port 25 of the MX host. Refused on AWS Lambda outside a VPC, where AWS
    /// blocks port 25 for good (see [`LAMBDA_VPC_VAR`]).
    Direct,
    /// Through a SOCKS5 proxy (`host:port`) that may reach port 25.
    Socks5(String),
    /// Through a `leadpush prober` service (its base URL), authenticated with a bearer token.
    Prober(ProberEndpoint),
}

/// Set (`1`) by the template on functions that run in a VPC whose subnets reach port 25
/// (through a NAT gateway with the block lifted); without it `direct` is refused on Lambda.
pub const LAMBDA_VPC_VAR: &str = "LEADPUSH_LAMBDA_VPC";

/// A prober's address and credential. The token never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ProberEndpoint {
    /// Base URL, without a trailing slash (`https://prober.example.com`).
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for ProberEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProberEndpoint").field("url", &self.url).field("token", &"********").finish()
    }
}

#[derive(Debug, Clone)]
pub struct EnrichConfig {
    pub probe: ProbeMode,
    /// Our name in EHLO.
    pub helo_name: String,
    /// The reverse path in MAIL FROM; empty sends the null sender `<>`.
    pub mail_from: String,
    /// The port MX hosts are probed on (25; tests point it at local servers).
    pub smtp_port: u16,
    /// Connect timeout and the wait for each SMTP reply.
    pub smtp_timeout: Duration,
    /// SMTP connections open at once to one MX host, per process.
    pub smtp_per_host: usize,
    /// SMTP sessions started per minute to one destination IP (0: no limit).
    pub smtp_per_host_per_minute: u32,
    /// `ip:port` of DNS servers to ask; empty uses the system's resolver configuration.
    pub dns_servers: Vec<std::net::SocketAddr>,
    pub dns_timeout: Duration,
    /// How long a finished result answers a repeated call (and `unknown` ones, shorter).
    pub result_ttl: Duration,
    pub unknown_ttl: Duration,
    /// The same for verdicts the mail server deferred (greylisting): past a usual greylist
    /// delay, so the next call asks again and gets the answer.
    pub deferred_ttl: Duration,
    pub mx_cache_ttl: Duration,
    pub catch_all_ttl: Duration,
    /// The finders' crawl: wall-time budget per crawl, how long a crawl is cached, and (local
    /// runs and tests only) plain `http` on this port instead of `https`.
    pub crawl_budget: Duration,
    pub crawl_cache_ttl: Duration,
    pub crawl_http_port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// Every variable Leadpush reads, with its default and meaning (for `--help` and
/// docs/operations.md).
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
        "LEADPUSH_KMS_KEY_ID",
        "(none)",
        "KMS key that seals stored secrets with dynamodb (the stack's SecretsKey; set only on functions that use secrets). The embedded store seals with `secrets.key` in its data directory.",
    ),
    (
        "LEADPUSH_ENRICH_QUEUE_URL",
        "(LEADPUSH_QUEUE_URL)",
        "SQS queue of verification tasks (consumed by the enrich-worker function).",
    ),
    (
        "LEADPUSH_FINDER_QUEUE_URL",
        "(LEADPUSH_QUEUE_URL)",
        "SQS queue of finder tasks (consumed by the finder-worker function).",
    ),
    (
        "LEADPUSH_WORKFLOW_QUEUE_URL",
        "(LEADPUSH_QUEUE_URL)",
        "SQS queue of workflow tasks (consumed by the workflow-worker function).",
    ),
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
        "LEADPUSH_SMTP_PROBE",
        "direct",
        "`off`, `direct` (port 25 of the MX host), `socks5://host:port`, or the `https://` URL of a `leadpush prober`. AWS blocks port 25 from Lambda: `direct` is refused there unless LEADPUSH_LAMBDA_VPC=1, and the default there is `off`.",
    ),
    (
        "LEADPUSH_PROBER_TOKEN",
        "(none)",
        "Bearer token for the prober: what `leadpush prober` accepts and what the `https://` probe mode sends. Never logged.",
    ),
    ("LEADPUSH_PROBER_TOKEN_FILE", "(none)", "A file holding LEADPUSH_PROBER_TOKEN (read when that is unset)."),
    (
        LAMBDA_VPC_VAR,
        "0",
        "`1` on Lambda functions in a VPC whose subnets reach port 25 (the template sets it when VPC subnets are given); `direct` needs it on Lambda.",
    ),
    (
        "LEADPUSH_SMTP_PER_HOST_PER_MINUTE",
        "30",
        "SMTP sessions started per minute to one destination IP (per process; 0: no limit). Past it, the probe reports the host as rate-limited.",
    ),
    ("LEADPUSH_SMTP_HELO", "localhost", "Name sent in EHLO by the SMTP probe (use a name that resolves to you)."),
    ("LEADPUSH_SMTP_MAIL_FROM", "(null sender)", "Address in MAIL FROM; empty sends `<>`."),
    ("LEADPUSH_SMTP_PORT", "25", "Port the probe connects to on MX hosts."),
    ("LEADPUSH_SMTP_TIMEOUT_MS", "10000", "Connect timeout and wait for each SMTP reply, per host."),
    (
        "LEADPUSH_SMTP_PER_HOST",
        "2",
        "SMTP connections open at once to one destination IP, whatever MX names point at it (per process).",
    ),
    ("LEADPUSH_DNS_SERVERS", "(system)", "Comma-separated `ip:port` DNS servers for MX lookups."),
    ("LEADPUSH_DNS_TIMEOUT_MS", "3000", "Timeout of each DNS query."),
    ("LEADPUSH_ENRICH_RESULT_TTL", "24h", "How long a verification result answers a repeated call."),
    (
        "LEADPUSH_ENRICH_UNKNOWN_TTL",
        "15m",
        "The same for `unknown` results (greylisting, timeouts), so they are re-checked sooner.",
    ),
    (
        "LEADPUSH_ENRICH_DEFERRED_TTL",
        "6m",
        "The same for verdicts the mail server deferred (greylisting): past the usual 5-minute greylist delay, so the next call asks again.",
    ),
    ("LEADPUSH_MX_CACHE_TTL", "1h", "How long MX answers are cached per domain."),
    ("LEADPUSH_CATCH_ALL_TTL", "24h", "How long a domain's catch-all verdict is cached."),
    ("LEADPUSH_CRAWL_BUDGET_MS", "10000", "Wall-time budget of one finder crawl of a site (at most 10 s)."),
    ("LEADPUSH_CRAWL_CACHE_TTL", "24h", "How long a site's crawl answers later finder calls."),
    (
        "LEADPUSH_CRAWL_HTTP_PORT",
        "(none)",
        "Crawl sites over plain http on this port instead of https (needs LEADPUSH_ALLOW_PRIVATE_TARGETS=1).",
    ),
    (
        "LEADPUSH_FAULTS",
        "(none)",
        "Tests only: store faults to inject, e.g. `transact_write:LEAD#=conflict*3` (see `store::faulty`); \
         builds without the cargo feature `faults` refuse to start when it is set.",
    ),
    ("LEADPUSH_LOG", "info", "Log filter: a level, or `target=level` pairs such as `leadpush=debug,warn`."),
    ("LEADPUSH_LOG_FORMAT", "json", "`json` or `pretty`."),
    ("AWS_ENDPOINT_URL", "(AWS)", "Point the AWS SDK at a local emulator such as moto."),
];

/// Fault rules given to a build without the injector (every Lambda, `make build`): refused,
/// so no one believes faults are being injected while none are.
fn fault_injection_available(rules: &str, compiled_in: bool) -> Result<(), ConfigError> {
    if compiled_in || rules.trim().is_empty() {
        return Ok(());
    }
    Err(ConfigError {
        name: "LEADPUSH_FAULTS",
        message: "is set, but this build has no fault injection (cargo feature `faults`)".into(),
    })
}

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

fn duration_var(name: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|e| ConfigError { name, message: format!("is not a duration ({e})") })
}

/// The prober's token: `LEADPUSH_PROBER_TOKEN`, else the file `LEADPUSH_PROBER_TOKEN_FILE`
/// names. `None` when neither is set.
pub fn prober_token(text: &impl Fn(&str, &str) -> String) -> Result<Option<String>, ConfigError> {
    let token = text("LEADPUSH_PROBER_TOKEN", "");
    if !token.trim().is_empty() {
        return Ok(Some(token.trim().to_owned()));
    }
    let file = text("LEADPUSH_PROBER_TOKEN_FILE", "");
    if file.is_empty() {
        return Ok(None);
    }
    let token = std::fs::read_to_string(&file).map_err(|e| ConfigError {
        name: "LEADPUSH_PROBER_TOKEN_FILE",
        message: format!("cannot read `{file}`: {e}"),
    })?;
    match token.trim() {
        "" => Err(ConfigError { name: "LEADPUSH_PROBER_TOKEN_FILE", message: format!("`{file}` is empty") }),
        token => Ok(Some(token.to_owned())),
    }
}

/// [`prober_token`] from the environment (what `leadpush prober` accepts).
pub fn prober_token_from_env() -> Result<Option<String>, ConfigError> {
    prober_token(&|name: &str, default: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
    })
}

/// Tokens shorter than this are refused: the prober's token is its only lock.
pub const MIN_PROBER_TOKEN: usize = 32;

/// The prober mode's URL and token. Plain `http://` only to loopback (tests, a prober on the
/// same host): the token must not cross a network in the clear.
fn prober_endpoint(text: &impl Fn(&str, &str) -> String, raw: &str) -> Result<ProberEndpoint, ConfigError> {
    let name = "LEADPUSH_SMTP_PROBE";
    let url = url::Url::parse(raw).map_err(|e| ConfigError { name, message: format!("`{raw}` is not a URL ({e})") })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.host().is_none() || (url.scheme() == "http" && !loopback) {
        return Err(ConfigError {
            name,
            message: format!("`{raw}`: the prober needs https:// (http:// only to loopback)"),
        });
    }
    let token = prober_token(text)?.ok_or(ConfigError {
        name: "LEADPUSH_PROBER_TOKEN",
        message: "the prober probe mode needs the prober's token (or LEADPUSH_PROBER_TOKEN_FILE)".into(),
    })?;
    Ok(ProberEndpoint { url: raw.trim_end_matches('/').to_owned(), token })
}

fn enrich_config(
    text: &impl Fn(&str, &str) -> String,
    number: &impl Fn(&'static str, u64) -> Result<u64, ConfigError>,
) -> Result<EnrichConfig, ConfigError> {
    let on_lambda = !text("AWS_LAMBDA_FUNCTION_NAME", "").is_empty();
    // Port 25 is closed on Lambda: nothing to try unless told how.
    let default_probe = if on_lambda { "off" } else { "direct" };
    let probe = match text("LEADPUSH_SMTP_PROBE", default_probe).trim() {
        "off" | "0" | "false" => ProbeMode::Off,
        "direct" if on_lambda && !matches!(text(LAMBDA_VPC_VAR, "0").as_str(), "1" | "true" | "yes") => {
            return Err(ConfigError {
                name: "LEADPUSH_SMTP_PROBE",
                message: "`direct` cannot work on AWS Lambda outside a VPC (AWS blocks outbound port 25 there for \
                          good): set it to the https:// URL of a `leadpush prober` (docs/enrichment.md), or `off`; \
                          in a VPC whose NAT reaches port 25, give the template's VPC parameters (it sets \
                          LEADPUSH_LAMBDA_VPC=1)"
                    .into(),
            });
        }
        "direct" => ProbeMode::Direct,
        other if other.starts_with("https://") || other.starts_with("http://") => {
            ProbeMode::Prober(prober_endpoint(text, other)?)
        }
        other => match other.strip_prefix("socks5://").map(|rest| rest.trim_end_matches('/')) {
            Some(proxy) if proxy.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) => {
                ProbeMode::Socks5(proxy.to_owned())
            }
            _ => {
                return Err(ConfigError {
                    name: "LEADPUSH_SMTP_PROBE",
                    message: format!("`{other}` is not off, direct, socks5://host:port or https://prober-host"),
                });
            }
        },
    };
    let dns_servers = text("LEADPUSH_DNS_SERVERS", "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<std::net::SocketAddr>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
                .map_err(|_| ConfigError {
                    name: "LEADPUSH_DNS_SERVERS",
                    message: format!("`{s}` is not ip or ip:port"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port = number("LEADPUSH_SMTP_PORT", 25)?;
    Ok(EnrichConfig {
        probe,
        helo_name: text("LEADPUSH_SMTP_HELO", "localhost"),
        mail_from: text("LEADPUSH_SMTP_MAIL_FROM", ""),
        smtp_port: u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(ConfigError { name: "LEADPUSH_SMTP_PORT", message: "must be a port (1-65535)".into() })?,
        smtp_timeout: Duration::from_millis(number("LEADPUSH_SMTP_TIMEOUT_MS", 10_000)?.max(1)),
        smtp_per_host: number("LEADPUSH_SMTP_PER_HOST", 2)?.clamp(1, 64) as usize,
        smtp_per_host_per_minute: number("LEADPUSH_SMTP_PER_HOST_PER_MINUTE", 30)?.min(100_000) as u32,
        dns_servers,
        dns_timeout: Duration::from_millis(number("LEADPUSH_DNS_TIMEOUT_MS", 3_000)?.max(1)),
        result_ttl: duration_var("LEADPUSH_ENRICH_RESULT_TTL", &text("LEADPUSH_ENRICH_RESULT_TTL", "24h"))?,
        unknown_ttl: duration_var("LEADPUSH_ENRICH_UNKNOWN_TTL", &text("LEADPUSH_ENRICH_UNKNOWN_TTL", "15m"))?,
        deferred_ttl: duration_var("LEADPUSH_ENRICH_DEFERRED_TTL", &text("LEADPUSH_ENRICH_DEFERRED_TTL", "6m"))?,
        mx_cache_ttl: duration_var("LEADPUSH_MX_CACHE_TTL", &text("LEADPUSH_MX_CACHE_TTL", "1h"))?,
        catch_all_ttl: duration_var("LEADPUSH_CATCH_ALL_TTL", &text("LEADPUSH_CATCH_ALL_TTL", "24h"))?,
        crawl_budget: Duration::from_millis(number("LEADPUSH_CRAWL_BUDGET_MS", 10_000)?.clamp(1, 10_000)),
        crawl_cache_ttl: duration_var("LEADPUSH_CRAWL_CACHE_TTL", &text("LEADPUSH_CRAWL_CACHE_TTL", "24h"))?,
        crawl_http_port: match number("LEADPUSH_CRAWL_HTTP_PORT", 0)? {
            0 => None,
            port => Some(u16::try_from(port).map_err(|_| ConfigError {
                name: "LEADPUSH_CRAWL_HTTP_PORT",
                message: "must be a port (1-65535)".into(),
            })?),
        },
    })
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
        fault_injection_available(&text("LEADPUSH_FAULTS", ""), cfg!(feature = "faults"))?;
        let config = Config {
            store,
            data_dir: PathBuf::from(text("LEADPUSH_DATA_DIR", ".leadpush")),
            table: text("LEADPUSH_TABLE", "leadpush"),
            queue_url: get("LEADPUSH_QUEUE_URL").filter(|v| !v.is_empty()),
            kms_key_id: get("LEADPUSH_KMS_KEY_ID").filter(|v| !v.is_empty()),
            enrich_queue_url: get("LEADPUSH_ENRICH_QUEUE_URL").filter(|v| !v.is_empty()),
            finder_queue_url: get("LEADPUSH_FINDER_QUEUE_URL").filter(|v| !v.is_empty()),
            workflow_queue_url: get("LEADPUSH_WORKFLOW_QUEUE_URL").filter(|v| !v.is_empty()),
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
            rescore_debounce: Duration::from_secs(number("LEADPUSH_RESCORE_DEBOUNCE_SECS", 60)?.min(900)),
            #[cfg(feature = "faults")]
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
            enrich: enrich_config(&text, &number)?,
        };
        if config.enrich.crawl_http_port.is_some() && !config.allow_private_targets {
            return Err(ConfigError {
                name: "LEADPUSH_CRAWL_HTTP_PORT",
                message: "plain-http crawls are for local runs and tests: also set LEADPUSH_ALLOW_PRIVATE_TARGETS=1"
                    .into(),
            });
        }
        if config.store == StoreKind::Aws && config.queue_url.is_none() {
            return Err(ConfigError {
                name: "LEADPUSH_QUEUE_URL",
                message: "is required when LEADPUSH_STORE=dynamodb".into(),
            });
        }
        Ok(config)
    }
}

impl Config {
    /// The SQS queue URL of each lane, in `Lane::ALL` order (a lane without its own
    /// variable shares `LEADPUSH_QUEUE_URL`).
    pub fn queue_urls(&self) -> [String; 4] {
        let main = self.queue_url.clone().unwrap_or_default();
        let or_main = |url: &Option<String>| url.clone().unwrap_or_else(|| main.clone());
        [
            main.clone(),
            or_main(&self.enrich_queue_url),
            or_main(&self.finder_queue_url),
            or_main(&self.workflow_queue_url),
        ]
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
    fn direct_smtp_is_refused_on_lambda_outside_a_vpc() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "leadpush-enrich");
        let e = config(&[lambda, ("LEADPUSH_SMTP_PROBE", "direct")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_SMTP_PROBE");
        assert!(e.message.contains("leadpush prober") && e.message.contains("LEADPUSH_LAMBDA_VPC"), "{e}");
        // Unset, Lambda defaults to off (nothing could connect); in a VPC, direct is allowed.
        assert_eq!(config(&[lambda]).unwrap().enrich.probe, ProbeMode::Off);
        let c = config(&[lambda, ("LEADPUSH_SMTP_PROBE", "direct"), (LAMBDA_VPC_VAR, "1")]).unwrap();
        assert_eq!(c.enrich.probe, ProbeMode::Direct);
        assert_eq!(config(&[]).unwrap().enrich.probe, ProbeMode::Direct, "off Lambda the default is direct");
    }

    #[test]
    fn the_prober_mode_needs_https_and_a_token_it_never_prints() {
        let token = "s3cret-s3cret-s3cret-s3cret-s3cret";
        let c = config(&[("LEADPUSH_SMTP_PROBE", "https://prober.example.com/"), ("LEADPUSH_PROBER_TOKEN", token)])
            .unwrap();
        let ProbeMode::Prober(endpoint) = &c.enrich.probe else { panic!("{:?}", c.enrich.probe) };
        assert_eq!((endpoint.url.as_str(), endpoint.token.as_str()), ("https://prober.example.com", token));
        assert!(!format!("{:?}", c.enrich).contains(token), "Debug masks the token");
        let e = config(&[("LEADPUSH_SMTP_PROBE", "https://prober.example.com")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_PROBER_TOKEN");
        let e = config(&[("LEADPUSH_SMTP_PROBE", "http://prober.example.com"), ("LEADPUSH_PROBER_TOKEN", token)])
            .unwrap_err();
        assert!(e.message.contains("https://"), "{e}");
        let c = config(&[("LEADPUSH_SMTP_PROBE", "http://127.0.0.1:8025"), ("LEADPUSH_PROBER_TOKEN", token)]).unwrap();
        assert!(matches!(c.enrich.probe, ProbeMode::Prober(_)), "plain http to loopback");
    }

    #[test]
    fn every_variable_is_in_the_documented_configuration_table() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md")).unwrap();
        for (name, _, _) in VARIABLES {
            assert!(doc.contains(&format!("| `{name}` |")), "docs/operations.md's configuration table lacks {name}");
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
        let e = config(&[("LEADPUSH_SMTP_PROBE", "socks5://nope")]).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_SMTP_PROBE");
        let e = config(&[("LEADPUSH_DNS_SERVERS", "127.0.0.1:53,localhost")]).unwrap_err();
        assert!(e.message.contains("`localhost`"), "{e}");
        let c =
            config(&[("LEADPUSH_SMTP_PROBE", "socks5://127.0.0.1:1080"), ("LEADPUSH_DNS_SERVERS", "127.0.0.1:5353")])
                .unwrap();
        assert_eq!(c.enrich.probe, ProbeMode::Socks5("127.0.0.1:1080".into()));
        assert_eq!(c.enrich.dns_servers, vec!["127.0.0.1:5353".parse().unwrap()]);
        let c = config(&[("LEADPUSH_WEBHOOK_RETRY_SCHEDULE", "10ms, 20ms,40ms")]).unwrap();
        assert_eq!(c.webhook_retry_schedule[1], Duration::from_millis(20));
    }

    #[test]
    fn fault_rules_refuse_to_start_a_build_without_fault_injection() {
        let e = fault_injection_available("any=throttle", false).unwrap_err();
        assert_eq!(e.name, "LEADPUSH_FAULTS");
        assert_eq!(
            e.to_string(),
            "configuration: LEADPUSH_FAULTS: is set, but this build has no fault injection (cargo feature `faults`)"
        );
        assert!(fault_injection_available("", false).is_ok() && fault_injection_available("  ", false).is_ok());
        assert!(fault_injection_available("any=throttle", true).is_ok());
        // The configuration as this build reads it.
        let read = config(&[("LEADPUSH_FAULTS", "any=throttle")]);
        #[cfg(not(feature = "faults"))]
        assert_eq!(read.unwrap_err().to_string(), e.to_string());
        #[cfg(feature = "faults")]
        assert_eq!(read.unwrap().faults.len(), 1);
    }
}
