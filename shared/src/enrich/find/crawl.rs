//! The bounded crawl of a company site, and the single-page fetch of an article.
//!
//! Bounds (all per crawl): at most [`MAX_REQUESTS`] requests to the site, robots.txt and
//! redirects included; at most [`MAX_PAGE_BYTES`] per page (a larger page is skipped, not
//! parsed in part); [`CRAWL_BUDGET`] of wall time in all, after which what was found so
//! far is the answer. One request at a time, with a descriptive User-Agent, through the
//! process's SSRF-guarded client (no redirect is followed blindly: each one must stay on
//! the site and is checked like any URL). robots.txt is honoured for our agent token: a
//! 4xx robots.txt allows everything, a 5xx or unreachable one disallows everything.
//!
//! Which pages: the home page, then the same-site links whose path or text names a
//! contact, about, team, imprint or legal page (highest priority first), and their links
//! of the same kind, two levels deep at most.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use texting_robots::Robot;
use url::Url;

use super::extract::{self, WebEmail, WebPhone, on_site};
use crate::outbound::{Outbound, OutboundError, OutboundRequest};
use crate::support::time::Timestamp;

pub const MAX_REQUESTS: usize = 10;
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
pub const CRAWL_BUDGET: Duration = Duration::from_secs(10);
/// Site totals kept from a crawl (so a cached crawl stays a small item).
pub const MAX_EMAILS: usize = 200;
pub const MAX_PHONES: usize = 50;
const MAX_DEPTH: u8 = 2;
/// The token robots.txt rules are matched against, and the User-Agent we send.
pub const AGENT_TOKEN: &str = "LeadpushBot";
pub const USER_AGENT: &str = concat!(
    "LeadpushBot/",
    env!("CARGO_PKG_VERSION"),
    " (lead enrichment; reads contact, about, team and imprint pages; honours robots.txt; at most 10 pages per site)"
);

/// How to reach sites: `https` on the default port in production; tests and local runs
/// may use plain `http` on another port (only where private targets are allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_requests: usize,
    pub max_page_bytes: usize,
    pub budget: Duration,
    /// `Some(port)`: crawl `http://{domain}:{port}/` (local runs and tests only).
    pub http_port: Option<u16>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_requests: MAX_REQUESTS, max_page_bytes: MAX_PAGE_BYTES, budget: CRAWL_BUDGET, http_port: None }
    }
}

/// What happened to one URL of a crawl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub url: String,
    /// `ok`, `robots_disallowed`, `too_large`, `timeout`, `http_{status}`, `redirect`,
    /// `unreachable` or `not_fetched_budget` (the time budget ran out first).
    pub outcome: String,
}

/// A site's crawl: what its pages say about the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCrawl {
    pub domain: String,
    pub crawled_at: Timestamp,
    /// Every URL requested (robots.txt first), with its outcome.
    pub visits: Vec<Visit>,
    pub emails: Vec<WebEmail>,
    pub phones: Vec<WebPhone>,
    pub organization: Option<String>,
    pub socials: Vec<String>,
    /// False when the time budget or the request cap stopped the crawl with pages left.
    pub complete: bool,
}

impl SiteCrawl {
    fn new(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            crawled_at: Timestamp::now(),
            visits: Vec::new(),
            emails: Vec::new(),
            phones: Vec::new(),
            organization: None,
            socials: Vec::new(),
            complete: true,
        }
    }

    fn merge(&mut self, page: extract::PageFacts) {
        for email in page.emails {
            if !self.emails.iter().any(|e| e.value == email.value) && self.emails.len() < MAX_EMAILS {
                self.emails.push(email);
            }
        }
        for phone in page.phones {
            if !self.phones.iter().any(|p| p.phone.number == phone.phone.number) && self.phones.len() < MAX_PHONES {
                self.phones.push(phone);
            }
        }
        if self.organization.is_none() {
            self.organization = page.organization;
        }
        for social in page.socials {
            if !self.socials.contains(&social) && self.socials.len() < 20 {
                self.socials.push(social);
            }
        }
    }
}

enum Fetched {
    Page(String),
    Redirect(String),
    Skipped(String),
}

/// One GET within the crawl's bounds; the outcome label on failure.
async fn fetch(outbound: &Outbound, url: &Url, limits: &Limits, deadline: Instant) -> Fetched {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining < Duration::from_millis(20) {
        return Fetched::Skipped("not_fetched_budget".into());
    }
    let request = OutboundRequest {
        method: reqwest::Method::GET,
        url: url.to_string(),
        headers: vec![
            ("user-agent".into(), USER_AGENT.into()),
            ("accept".into(), "text/html,application/xhtml+xml,text/plain;q=0.8".into()),
        ],
        body: None,
        timeout: Some(remaining),
    };
    match outbound.send_capped(request, limits.max_page_bytes).await {
        Ok(response) if response.truncated => Fetched::Skipped("too_large".into()),
        Ok(response) if response.is_success() => Fetched::Page(response.body),
        Ok(response) if (300..400).contains(&response.status) => match response.location {
            Some(location) => Fetched::Redirect(location),
            None => Fetched::Skipped(format!("http_{}", response.status)),
        },
        Ok(response) => Fetched::Skipped(format!("http_{}", response.status)),
        Err(OutboundError::Timeout(_)) => Fetched::Skipped("timeout".into()),
        Err(_) => Fetched::Skipped("unreachable".into()),
    }
}

/// The site's origin for a domain under these limits.
pub fn origin(domain: &str, limits: &Limits) -> Option<Url> {
    let text = match limits.http_port {
        Some(port) => format!("http://{domain}:{port}/"),
        None => format!("https://{domain}/"),
    };
    Url::parse(&text).ok()
}

/// The site's robots rules; `None` means nothing may be fetched.
async fn robots(
    outbound: &Outbound,
    origin: &Url,
    limits: &Limits,
    deadline: Instant,
    crawl: &mut SiteCrawl,
) -> Option<Robot> {
    let url = origin.join("/robots.txt").ok()?;
    let allow_all = || Robot::new(AGENT_TOKEN, b"").ok();
    let (outcome, robot) = match fetch(outbound, &url, limits, deadline).await {
        Fetched::Page(body) => ("ok".to_owned(), Robot::new(AGENT_TOKEN, body.as_bytes()).ok().or_else(allow_all)),
        Fetched::Skipped(outcome) if outcome.starts_with("http_4") => (outcome, allow_all()),
        Fetched::Redirect(_) => ("redirect".to_owned(), allow_all()),
        Fetched::Skipped(outcome) => (outcome, None),
    };
    crawl.visits.push(Visit { url: url.to_string(), outcome });
    robot
}

/// Crawls a domain's site within `limits`.
pub async fn crawl_site(outbound: &Outbound, domain: &str, limits: &Limits) -> SiteCrawl {
    let deadline = Instant::now() + limits.budget;
    let mut crawl = SiteCrawl::new(domain);
    let Some(home) = origin(domain, limits) else {
        crawl.complete = false;
        return crawl;
    };
    let Some(robot) = robots(outbound, &home, limits, deadline, &mut crawl).await else {
        crawl.complete = false;
        return crawl;
    };
    // (priority, depth, url); the highest priority is fetched next, ties in discovery order.
    let mut queue: Vec<(u8, u8, Url)> = vec![(u8::MAX, 0, home)];
    let mut seen: Vec<Url> = Vec::new();
    while let Some(next) =
        queue.iter().enumerate().max_by_key(|(i, (p, _, _))| (*p, std::cmp::Reverse(*i))).map(|(i, _)| i)
    {
        let (priority, depth, url) = queue.remove(next);
        if seen.contains(&url) {
            continue;
        }
        seen.push(url.clone());
        if crawl.visits.len() >= limits.max_requests {
            crawl.complete = false;
            break;
        }
        if !robot.allowed(url.as_str()) {
            crawl.visits.push(Visit { url: url.to_string(), outcome: "robots_disallowed".into() });
            continue;
        }
        let fetched = fetch(outbound, &url, limits, deadline).await;
        match fetched {
            Fetched::Page(body) => {
                crawl.visits.push(Visit { url: url.to_string(), outcome: "ok".into() });
                let facts = extract::page_facts(&body, &url, domain);
                if depth < MAX_DEPTH {
                    queue.extend(facts.links.iter().map(|(p, u)| (*p, depth + 1, u.clone())));
                }
                crawl.merge(facts);
            }
            Fetched::Redirect(location) => {
                crawl.visits.push(Visit { url: url.to_string(), outcome: "redirect".into() });
                if let Ok(target) = url.join(&location)
                    && target.host_str().is_some_and(|h| on_site(h, domain))
                {
                    queue.push((priority, depth, target));
                }
            }
            Fetched::Skipped(outcome) => {
                let out_of_time = outcome == "not_fetched_budget" || outcome == "timeout";
                crawl.visits.push(Visit { url: url.to_string(), outcome });
                if out_of_time {
                    crawl.complete = false;
                    break;
                }
            }
        }
    }
    crawl
}

/// One page fetched for its own sake (an article), within the same bounds and rules.
pub enum PageFetch {
    Page {
        url: Url,
        html: String,
    },
    /// The outcome label (`robots_disallowed`, `too_large`, `timeout`, `http_404`, ...).
    Refused(String),
}

/// Fetches one page, honouring the site's robots.txt and following at most 3 redirects
/// on the same site.
pub async fn fetch_page(outbound: &Outbound, url: &Url, limits: &Limits) -> PageFetch {
    let deadline = Instant::now() + limits.budget;
    let mut scratch = SiteCrawl::new(url.host_str().unwrap_or_default());
    let Some(robot) = robots(outbound, url, limits, deadline, &mut scratch).await else {
        return PageFetch::Refused("robots_unavailable".into());
    };
    let mut current = url.clone();
    for _ in 0..4 {
        if !robot.allowed(current.as_str()) {
            return PageFetch::Refused("robots_disallowed".into());
        }
        match fetch(outbound, &current, limits, deadline).await {
            Fetched::Page(html) => return PageFetch::Page { url: current, html },
            Fetched::Redirect(location) => match current.join(&location) {
                Ok(next) if next.host_str() == current.host_str() => current = next,
                _ => return PageFetch::Refused("redirect_off_site".into()),
            },
            Fetched::Skipped(outcome) => return PageFetch::Refused(outcome),
        }
    }
    PageFetch::Refused("too_many_redirects".into())
}
