//! MX lookups with hickory-resolver: timeouts, MX by preference, falling back to the
//! domain's own A/AAAA records (RFC 5321 "implicit MX"), null MX (RFC 7505) as "no mail".

use std::net::IpAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use serde::{Deserialize, Serialize};

use crate::config::EnrichConfig;

/// What DNS says about a domain's mail servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MxAnswer {
    /// MX hosts, most preferred first.
    Hosts { hosts: Vec<String> },
    /// No MX, but the domain has an address: it is its own mail server.
    Implicit { host: String },
    /// The domain exists but takes no mail (no MX and no address, or a null MX).
    NoMail,
    /// The domain does not exist (NXDOMAIN).
    NoDomain,
}

impl MxAnswer {
    /// The hosts to try, in order.
    pub fn hosts(&self) -> Vec<String> {
        match self {
            MxAnswer::Hosts { hosts } => hosts.clone(),
            MxAnswer::Implicit { host } => vec![host.clone()],
            MxAnswer::NoMail | MxAnswer::NoDomain => Vec::new(),
        }
    }
}

pub struct Resolver {
    inner: TokioResolver,
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

impl Resolver {
    pub fn new(config: &EnrichConfig) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if config.dns_servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| format!("system DNS configuration: {e}"))?
        } else {
            let servers = config
                .dns_servers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        let mut options = ResolverOpts::default();
        options.timeout = config.dns_timeout;
        options.attempts = 1;
        *builder.options_mut() = options;
        Ok(Self { inner: builder.build().map_err(|e| format!("DNS resolver: {e}"))? })
    }

    /// The mail servers of `domain`. `Err` is a failure to get an answer (timeout,
    /// SERVFAIL): the caller reports "unknown", never "invalid".
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, String> {
        match self.inner.mx_lookup(fqdn(domain)).await {
            Ok(lookup) => {
                let mut records: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => {
                            Some((mx.preference, mx.exchange.to_ascii().trim_end_matches('.').to_lowercase()))
                        }
                        _ => None,
                    })
                    .collect();
                records.sort();
                if records.iter().any(|(_, host)| host.is_empty()) {
                    return Ok(MxAnswer::NoMail); // null MX: "this domain accepts no mail"
                }
                if !records.is_empty() {
                    let mut hosts: Vec<String> = Vec::new();
                    for (_, host) in records {
                        if !hosts.contains(&host) {
                            hosts.push(host);
                        }
                    }
                    return Ok(MxAnswer::Hosts { hosts });
                }
                self.implicit(domain).await
            }
            Err(e) if e.is_nx_domain() => Ok(MxAnswer::NoDomain),
            Err(e) if e.is_no_records_found() => self.implicit(domain).await,
            Err(e) => Err(format!("MX lookup failed: {e}")),
        }
    }

    async fn implicit(&self, domain: &str) -> Result<MxAnswer, String> {
        match self.ips(domain).await {
            Ok(ips) if !ips.is_empty() => Ok(MxAnswer::Implicit { host: domain.to_owned() }),
            Ok(_) => Ok(MxAnswer::NoMail),
            Err(e) => Err(e),
        }
    }

    /// The addresses of a host (A and AAAA). No records is an empty list.
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        match self.inner.lookup_ip(fqdn(host)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("address lookup of {host} failed: {e}")),
        }
    }
}
