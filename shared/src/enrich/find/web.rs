//! The finders' view of the public web: an outbound client whose names are resolved by the
//! enrichment resolver (`LEADPUSH_DNS_SERVERS`, else the system's) with the SSRF guard
//! applied to every address, and site crawls cached in the store per workspace with a TTL
//! (`W#{ws}#CRAWL#{domain}` / `CRAWL`, expiry compared on read).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use super::crawl::{self, Limits, SiteCrawl};
use crate::context::AppContext;
use crate::enrich::EnrichError;
use crate::outbound::probing::Engine;
use crate::outbound::ssrf::is_forbidden;
use crate::outbound::{Outbound, OutboundError};
use crate::repo::keys;
use crate::store::{Condition, Item, Key};

const KIND: &str = "CRAWL";

/// Resolves through the enrichment resolver, dropping forbidden addresses unless private
/// targets are allowed (local runs and tests).
struct FinderResolver {
    engine: Weak<Engine>,
    allow_private: bool,
}

impl reqwest::dns::Resolve for FinderResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let engine = self.engine.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let fail = |text: String| -> Box<dyn std::error::Error + Send + Sync> { text.into() };
            let engine = engine.upgrade().ok_or_else(|| fail("enrichment engine is gone".into()))?;
            let host = name.as_str().to_owned();
            let ips = engine.resolver().map_err(fail)?.ips(&host).await.map_err(fail)?;
            let allowed: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| allow_private || !is_forbidden(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(fail(format!("{host} has no address we may connect to")));
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The process's finder client (built once per engine).
pub fn client(ctx: &AppContext) -> Result<Outbound, EnrichError> {
    let engine = ctx.enrich();
    let built = engine.web.get_or_init(|| {
        let resolver: Arc<dyn reqwest::dns::Resolve> = Arc::new(FinderResolver {
            engine: Arc::downgrade(engine),
            allow_private: ctx.config.allow_private_targets,
        });
        Outbound::with_resolver(ctx.config.allow_private_targets, crawl::CRAWL_BUDGET, Some(resolver))
            .map_err(|e: OutboundError| e.to_string())
    });
    built.clone().map_err(EnrichError::Other)
}

/// The crawl limits of this process's configuration.
pub fn limits(ctx: &AppContext) -> Limits {
    Limits { budget: ctx.config.enrich.crawl_budget, http_port: ctx.config.enrich.crawl_http_port, ..Limits::default() }
}

fn key(workspace_id: &str, domain: &str) -> Key {
    Key::new(keys::item_pk(workspace_id, KIND, domain), KIND)
}

/// The domain's crawl: from the cache while fresh, else crawled now and cached. The
/// second value says whether it came from the cache.
pub async fn site(ctx: &AppContext, workspace_id: &str, domain: &str) -> Result<(SiteCrawl, bool), EnrichError> {
    let now = ctx.now();
    if let Some(item) = ctx.store.get(&key(workspace_id, domain)).await?
        && !item.is_expired(now.unix_seconds())
        && let Ok(cached) = item.parse::<SiteCrawl>()
    {
        return Ok((cached, true));
    }
    let outbound = client(ctx)?;
    let crawl = crawl::crawl_site(&outbound, domain, &limits(ctx)).await;
    let expires = now.plus(ctx.config.enrich.crawl_cache_ttl);
    let item = Item::new(key(workspace_id, domain), &crawl)?.with_expiry(expires.unix_seconds());
    ctx.store.put(item, Condition::Always).await?;
    Ok((crawl, false))
}
