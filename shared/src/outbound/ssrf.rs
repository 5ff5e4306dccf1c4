//! The SSRF guard for customer-supplied URLs: https on ports 443/80 only, and no address
//! that reaches our own network. Addresses are checked after DNS resolution (by the
//! resolver the outbound client uses), so a name that later re-resolves to a private
//! address (DNS rebinding) is refused too. `LEADPUSH_ALLOW_PRIVATE_TARGETS=1` lifts all of
//! this for local runs and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a valid URL ({0})")]
    Invalid(String),
    #[error("must use https")]
    NotHttps,
    #[error("must not contain credentials; send them as headers")]
    Credentials,
    #[error("may only use port 443 or 80")]
    Port,
    #[error("points to a private, loopback or otherwise internal address")]
    PrivateTarget,
    #[error("is longer than 2048 characters")]
    TooLong,
    #[error("has a host that does not resolve ({0})")]
    Unresolvable(String),
}

/// Checks a URL a customer gave us before we store it or call it.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, UrlError> {
    if text.chars().count() > 2048 {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(text.trim()).map_err(|e| UrlError::Invalid(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(UrlError::NotHttps),
        other => return Err(UrlError::Invalid(format!("unsupported scheme `{other}`"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = url.host().ok_or_else(|| UrlError::Invalid("no host".into()))?;
    if allow_private {
        return Ok(url);
    }
    if !matches!(url.port(), None | Some(443) | Some(80)) {
        return Err(UrlError::Port);
    }
    // IP literals never reach the resolver, so they are checked here.
    let literal = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
            {
                return Err(UrlError::PrivateTarget);
            }
            None
        }
    };
    if literal.is_some_and(is_forbidden) {
        return Err(UrlError::PrivateTarget);
    }
    Ok(url)
}

/// How long resolving a configured URL's host may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves the host of a URL that passed [`check_url`] and refuses it if any address it
/// resolves to is internal (a name with one private address among public ones is as
/// suspect as one with only private addresses), or if it does not resolve at all.
pub async fn check_resolves_public(url: &Url) -> Result<(), UrlError> {
    let Some(Host::Domain(name)) = url.host() else {
        return Ok(()); // IP literals were judged by `check_url`
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((name, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => return Err(UrlError::Unresolvable(e.to_string())),
        Err(_) => return Err(UrlError::Unresolvable(format!("no answer within {RESOLVE_TIMEOUT:?}"))),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable("no addresses".into()));
    }
    if addrs.iter().any(|a| is_forbidden(a.ip())) {
        return Err(UrlError::PrivateTarget);
    }
    Ok(())
}

/// Whether an address is one a customer URL must never reach.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    const RANGES: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local (cloud metadata lives here)
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
    ];
    RANGES.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // Addresses that embed an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if segments[..6] == [0, 0, 0, 0, 0, 0] {
        return true; // IPv4-compatible (deprecated)
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d)); // NAT64
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d)); // 6to4
    }
    let first = segments[0];
    (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (first & 0xff00) == 0xff00 // multicast
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x2001 && segments[1] == 0) // Teredo
        || first == 0x0100 && segments[1..4] == [0, 0, 0] // discard-only 100::/64
}

/// A DNS resolver that drops forbidden addresses, so a guarded client cannot be talked
/// into connecting to one whatever the name resolves to at connection time.
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved.into_iter().filter(|a| !is_forbidden(a.ip())).collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to private or internal addresses").into();
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[tokio::test]
    async fn names_are_resolved_and_refused_when_they_point_inside() {
        // `check_url` refuses "localhost" by name; the resolution step must refuse it too,
        // as it would any name whose DNS answer is loopback or private.
        let url = Url::parse("https://localhost/hook").unwrap();
        assert_eq!(check_resolves_public(&url).await, Err(UrlError::PrivateTarget));
        let literal = Url::parse("https://8.8.8.8/hook").unwrap();
        assert_eq!(check_resolves_public(&literal).await, Ok(()));
    }

    #[test]
    fn urls_must_be_public_https_on_standard_ports() {
        assert!(check_url("https://hooks.example.com/x?y=1", false).is_ok());
        assert_eq!(check_url("http://hooks.example.com/", false), Err(UrlError::NotHttps));
        assert_eq!(check_url("https://hooks.example.com:8443/", false), Err(UrlError::Port));
        assert_eq!(check_url("https://127.0.0.1/", false), Err(UrlError::PrivateTarget));
        assert_eq!(check_url("https://[::1]/", false), Err(UrlError::PrivateTarget));
        assert_eq!(check_url("https://localhost/", false), Err(UrlError::PrivateTarget));
        assert_eq!(check_url("https://user:pw@example.com/", false), Err(UrlError::Credentials));
        assert!(matches!(check_url("ftp://example.com/", false), Err(UrlError::Invalid(_))));
        assert!(matches!(check_url("not a url", false), Err(UrlError::Invalid(_))));
        // Local runs and tests may target loopback over plain http on any port.
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
    }
}
