//! The enrichment's outbound network state, one per process: the DNS resolver, a bound on
//! SMTP sessions per destination IP, per-domain single-flight locks, and the finders' web
//! client. The SMTP probe itself is [`smtp`]; what its answers mean is `enrich::verify`'s.
//! [`service`] is the probe as `leadpush prober` runs it for callers without port 25 (Lambda),
//! and [`remote`] is the probe mode that calls such a prober.

pub mod dns;
pub mod remote;
pub mod service;
pub mod smtp;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use tokio::sync::Semaphore;

use crate::config::EnrichConfig;

/// Counters of outbound network work, for logs and `make bench`.
#[derive(Debug, Default)]
pub struct Stats {
    pub dns_queries: std::sync::atomic::AtomicU64,
    pub smtp_connections: std::sync::atomic::AtomicU64,
}

/// Per-process enrichment state: the resolver, per-destination-IP connection bounds and
/// per-domain single-flight locks (so concurrent tasks ask DNS and probe catch-all once).
pub struct Engine {
    pub config: EnrichConfig,
    resolver: OnceLock<Result<dns::Resolver, String>>,
    hosts: Mutex<HashMap<std::net::IpAddr, Arc<Semaphore>>>,
    domains: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub stats: Stats,
    /// The finders' web client (`find::web::client`), built on first use.
    pub web: OnceLock<Result<crate::outbound::Outbound, String>>,
    /// SMTP sessions started per destination IP and minute (`None`: no limit).
    rate: Option<DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// The HTTP client of the prober probe mode, built on first use.
    pub(crate) prober_client: OnceLock<Result<reqwest::Client, String>>,
}

/// Entries kept in the per-host and per-domain maps before idle ones are dropped.
const MAP_CAP: usize = 10_000;

impl Engine {
    pub fn new(config: EnrichConfig) -> Self {
        let rate = NonZeroU32::new(config.smtp_per_host_per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            rate,
            prober_client: OnceLock::new(),
            config,
            resolver: OnceLock::new(),
            hosts: Mutex::new(HashMap::new()),
            domains: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            web: OnceLock::new(),
        }
    }

    /// The resolver, built on first use (reading the system configuration may fail).
    pub fn resolver(&self) -> Result<&dns::Resolver, String> {
        self.resolver.get_or_init(|| dns::Resolver::new(&self.config)).as_ref().map_err(Clone::clone)
    }

    /// The connection bound of one destination IP. Keyed by address, not MX name: 200
    /// domains whose MX names all point at one server share its bound (a bound per name let
    /// 200 such domains open 200 sessions to one IP).
    pub fn ip_slots(&self, ip: std::net::IpAddr) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if hosts.len() > MAP_CAP {
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
        }
        hosts.entry(ip).or_insert_with(|| Arc::new(Semaphore::new(self.config.smtp_per_host))).clone()
    }

    /// Takes one session start from `ip`'s per-minute budget; `Err` is how long until the
    /// next one is allowed.
    pub fn rate_check(&self, ip: std::net::IpAddr) -> Result<(), std::time::Duration> {
        let Some(rate) = &self.rate else { return Ok(()) };
        if rate.len() > MAP_CAP {
            rate.retain_recent();
        }
        rate.check_key(&ip).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()))
        })
    }

    /// The single-flight lock of one (workspace, domain).
    pub fn domain_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        if domains.len() > MAP_CAP {
            domains.retain(|_, l| Arc::strong_count(l) > 1);
        }
        domains.entry(key.to_owned()).or_default().clone()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("probe", &self.config.probe).finish_non_exhaustive()
    }
}
