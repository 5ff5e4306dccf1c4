//! The finders (`?webhook_url=` endpoints in the outbound-webhooks specification): email
//! finder, domain search, author finder and phone finder, against local websites, a local
//! DNS server and local SMTP servers (`scripts/finder_sites.py`), with workspace leads that
//! show a pattern, on both stores.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::{Backend, Server, Workspace};

const WAIT: Duration = Duration::from_secs(30);

/// The local sites, DNS and SMTP servers: one process per test binary.
struct Sites {
    _child: Child,
    dns: String,
    smtp_port: u16,
    http_port: u16,
}

fn sites() -> &'static Sites {
    static SITES: OnceLock<Sites> = OnceLock::new();
    SITES.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let python = format!("{root}/.venv/bin/python");
        let mut child = Command::new(&python)
            .arg(format!("{root}/scripts/finder_sites.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {python} scripts/finder_sites.py ({e}): run `make .venv/.installed`")
            });
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).expect("finder_sites.py prints its ports");
        std::mem::forget(stdout);
        let ports: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("finder_sites.py printed {line:?}"));
        // Keep stdin open for the life of the test process: the script exits when it closes.
        std::mem::forget(child.stdin.take());
        Sites {
            dns: ports["dns"].as_str().unwrap().to_owned(),
            smtp_port: ports["smtp_port"].as_u64().unwrap() as u16,
            http_port: ports["http_port"].as_u64().unwrap() as u16,
            _child: child,
        }
    })
}

/// A server pointed at the local DNS, SMTP and web servers, one per backend.
fn server(backend: Backend) -> &'static Server {
    static EMBEDDED: OnceLock<Server> = OnceLock::new();
    static AWS: OnceLock<Server> = OnceLock::new();
    let start = || {
        let s = sites();
        let (smtp, http) = (s.smtp_port.to_string(), s.http_port.to_string());
        Server::start_with(
            backend,
            &[
                ("LEADPUSH_DNS_SERVERS", s.dns.as_str()),
                ("LEADPUSH_SMTP_PORT", smtp.as_str()),
                ("LEADPUSH_SMTP_TIMEOUT_MS", "3000"),
                ("LEADPUSH_CRAWL_HTTP_PORT", http.as_str()),
                ("LEADPUSH_CRAWL_BUDGET_MS", "6000"),
            ],
            false,
        )
    };
    match backend {
        Backend::Embedded => EMBEDDED.get_or_init(start),
        Backend::Aws => AWS.get_or_init(start),
    }
}

/// A workspace whose leads at acme.test follow `{f}{last}`, and a second workspace with
/// other leads at the same domain (which must never show up).
async fn seeded(server: &Server) -> (Workspace, Workspace) {
    let api = server.api();
    let ws = server.workspace();
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Acme", "webhook").await;
    let leads = json!([
        {"campaign_id": campaign, "first_name": "Jane", "last_name": "Doe", "email": "jdoe@acme.test",
         "position": "CEO", "phone": "+1 650 253 0000", "company": "Acme Corp", "website": "https://www.acme.test",
         "linkedin": "https://www.linkedin.com/in/janedoe", "twitter": "janedoe"},
        {"campaign_id": campaign, "name": "Bob Smith", "email": "bsmith@acme.test", "position": "Senior Software Engineer"},
        {"campaign_id": campaign, "first_name": "Ann", "last_name": "Lee", "email": "alee@acme.test",
         "position": "Marketing Intern", "phone": "+44 20 7031 3000", "company": "Acme Corp"},
        {"campaign_id": campaign, "name": "Acme Info", "email": "info@acme.test", "company": "Acme Corp"},
    ]);
    let r = api.ingest(&token, &json!({"idempotency_key": "finders", "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let other = server.workspace();
    let token = server.webhook_token(&other);
    let campaign = api.campaign(&other.api_key, "Other", "webhook").await;
    let leads = json!([
        {"campaign_id": campaign, "first_name": "Jane", "last_name": "Doe", "email": "jane.doe@acme.test", "phone": "+1 212 736 5000"},
        {"campaign_id": campaign, "first_name": "Mallory", "last_name": "Evil", "email": "mevil@acme.test", "company": "Acme Corp",
         "website": "https://evil.test"},
    ]);
    let r = api.ingest(&token, &json!({"idempotency_key": "other", "leads": leads})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    (ws, other)
}

/// GET that must answer 200 (repeating a 202 until ready, bounded).
async fn ready(server: &Server, path: &str, key: &str) -> Value {
    let api = server.api();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = api.get(path, key).await;
        match r.status {
            200 => return r.body,
            202 if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("{path}: {} {}", r.status, r.text),
        }
    }
}

fn site(path: &str) -> String {
    format!("http://{path}").replace(".test/", &format!(".test:{}/", sites().http_port))
}

async fn the_email_finder_answers_from_leads_the_site_and_verified_patterns(backend: Backend) {
    let server = server(backend);
    let (ws, other) = seeded(server).await;
    let key = ws.api_key.as_str();

    // 1. A lead of this workspace is the answer (not the other workspace's jane.doe@).
    let r = ready(server, "/api/v1/email-finder?domain=acme.test&first_name=Jane&last_name=Doe", key).await;
    let d = &r["data"];
    assert_eq!(d["email"], "jdoe@acme.test", "{r}");
    assert_eq!((d["score"].as_u64(), d["method"].as_str()), (Some(95), Some("workspace_lead")));
    assert_eq!(
        (d["first_name"].as_str(), d["last_name"].as_str(), d["domain"].as_str()),
        (Some("Jane"), Some("Doe"), Some("acme.test"))
    );
    assert_eq!((d["position"].as_str(), d["company"].as_str()), (Some("CEO"), Some("Acme Corp")));
    assert_eq!(
        (d["twitter"].as_str(), d["linkedin_url"].as_str()),
        (Some("janedoe"), Some("https://www.linkedin.com/in/janedoe"))
    );
    assert_eq!((d["phone_number"].as_str(), d["pattern"].as_str()), (Some("+16502530000"), Some("{f}{last}")));
    assert_eq!(d["sources"].as_array().unwrap().len(), 1);
    assert_eq!(
        (d["sources"][0]["kind"].as_str(), d["sources"][0]["domain"].as_str()),
        (Some("lead"), Some("acme.test"))
    );
    assert!(d["sources"][0]["uri"].as_str().unwrap().starts_with("/api/v1/leads/"));
    assert_eq!(r["meta"]["params"]["domain"], "acme.test");
    // The other workspace sees its own Jane.
    let r = ready(server, "/api/v1/email-finder?domain=acme.test&full_name=Jane%20Doe", &other.api_key).await;
    assert_eq!(r["data"]["email"], "jane.doe@acme.test");

    // 2. The site names the person beside an address.
    let r = ready(server, "/v2/email-finder?domain=acme.test&first_name=Dana&last_name=Scully", key).await;
    let d = &r["data"];
    assert_eq!(
        (d["email"].as_str(), d["score"].as_u64(), d["method"].as_str()),
        (Some("dscully@acme.test"), Some(90), Some("web_page"))
    );
    assert_eq!(
        (d["position"].as_str(), d["linkedin_url"].as_str()),
        (Some("CTO"), Some("https://www.linkedin.com/in/danascully"))
    );
    assert_eq!(d["sources"][0]["uri"], site("acme.test/team"));
    assert_eq!((d["verification"]["status"].as_str(), d["accept_all"].as_bool()), (Some("valid"), Some(false)));

    // 3. Patterns ranked by the workspace's addresses, verified over SMTP; the name normalised.
    let r =
        ready(server, "/api/v1/email-finder?domain=acme.test&first_name=Jos%C3%A9&last_name=M%C3%BCller", key).await;
    let d = &r["data"];
    assert_eq!(
        (d["email"].as_str(), d["pattern"].as_str(), d["method"].as_str()),
        (Some("jmuller@acme.test"), Some("{f}{last}"), Some("pattern")),
        "{r}"
    );
    assert_eq!((d["score"].as_u64(), d["verification"]["status"].as_str()), (Some(95), Some("valid")));
    assert_eq!((d["first_name"].as_str(), d["last_name"].as_str()), (Some("José"), Some("Müller")));
    let alternatives: Vec<&str> =
        d["alternatives"].as_array().unwrap().iter().map(|a| a["email"].as_str().unwrap()).collect();
    assert!(!alternatives.contains(&"jose.muller@acme.test"), "rejected by the mail server: {alternatives:?}");
    assert!(d["alternatives"].as_array().unwrap().iter().all(|a| a["score"].as_u64().unwrap() <= 60));

    // 4. A catch-all domain: no SMTP confirmation, and the score says so.
    let r = ready(server, "/api/v1/email-finder?domain=blog.test&first_name=Ada&last_name=Lovelace", key).await;
    let d = &r["data"];
    assert_eq!((d["email"].as_str(), d["accept_all"].as_bool()), (Some("ada.lovelace@blog.test"), Some(true)), "{r}");
    assert!(d["score"].as_u64().unwrap() <= 70, "{}", d["score"]);
    assert!(d["reason"].as_str().unwrap().contains("accepts every address"));
    assert_eq!(d["verification"]["status"], "accept_all");

    // 5. `company` resolves through this workspace's leads, else 400 naming it.
    let r = ready(server, "/api/v1/email-finder?company=ACME%20corp.&first_name=Jane&last_name=Doe", key).await;
    assert_eq!(
        (r["data"]["domain"].as_str(), r["data"]["email"].as_str()),
        (Some("acme.test"), Some("jdoe@acme.test"))
    );
    let api = server.api();
    for (query, field) in [
        ("company=Nobody%20Inc&first_name=A&last_name=B", "company"),
        ("domain=acme.test&first_name=Jane", "last_name"),
        ("domain=acme.test", "first_name"),
        ("domain=not%20a%20domain&first_name=A&last_name=B", "domain"),
        ("first_name=A&last_name=B", "domain"),
        ("domain=acme.test&full_name=Cher", "full_name"),
        ("domain=acme.test&first_name=A&last_name=B&max_duration=99", "max_duration"),
    ] {
        let r = api.get(&format!("/api/v1/email-finder?{query}"), key).await;
        assert_eq!(
            (r.status, r.error_code(), r.body["error"]["field"].as_str()),
            (400, "validation_error", Some(field)),
            "{query}: {}",
            r.text
        );
    }
}

async fn domain_search_pages_the_domains_addresses_from_leads_and_the_site(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let key = ws.api_key.as_str();
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&limit=3", key).await;
    let d = &r["data"];
    let values = |d: &Value| -> Vec<String> {
        d["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(values(d), ["alee@acme.test", "bsmith@acme.test", "dscully@acme.test"], "{r}");
    assert_eq!(
        (r["meta"]["results"].as_u64(), r["meta"]["limit"].as_u64(), r["meta"]["offset"].as_u64()),
        (Some(9), Some(3), Some(0))
    );
    assert_eq!(
        (d["domain"].as_str(), d["pattern"].as_str(), d["organization"].as_str()),
        (Some("acme.test"), Some("{f}{last}"), Some("Acme Corporation"))
    );
    assert_eq!(
        (d["disposable"].as_bool(), d["webmail"].as_bool(), d["accept_all"].as_bool()),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(d["socials"], json!(["https://twitter.com/acme", "https://www.linkedin.com/company/acme"]));
    let ann = &d["emails"][0];
    assert_eq!((ann["type"].as_str(), ann["confidence"].as_u64()), (Some("personal"), Some(95)));
    assert_eq!(
        (ann["first_name"].as_str(), ann["last_name"].as_str(), ann["position"].as_str()),
        (Some("Ann"), Some("Lee"), Some("Marketing Intern"))
    );
    assert_eq!((ann["seniority"].as_str(), ann["department"].as_str()), (Some("junior"), Some("marketing")));
    assert_eq!(
        (ann["phone_number"].as_str(), ann["verification"]["status"].as_str()),
        (Some("+442070313000"), Some("valid"))
    );
    assert_eq!(ann["sources"][0]["kind"], "lead");
    let dana = &d["emails"][2];
    assert_eq!(
        (dana["confidence"].as_u64(), dana["position"].as_str(), dana["seniority"].as_str()),
        (Some(85), Some("CTO"), Some("executive"))
    );
    assert_eq!(
        (dana["sources"][0]["kind"].as_str(), dana["sources"][0]["uri"].as_str()),
        (Some("web"), Some(site("acme.test/team").as_str()))
    );
    assert!(dana["sources"][0]["extracted_on"].as_str().unwrap().len() == 10);
    // The crawl: robots.txt first, /private/ refused, other pages read, nothing off the rules.
    let pages: Vec<(String, String)> = d["crawl"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["url"].as_str().unwrap().to_owned(), p["outcome"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(pages[0], (site("acme.test/robots.txt"), "ok".to_owned()));
    assert!(pages.contains(&(site("acme.test/private/staff"), "robots_disallowed".to_owned())), "{pages:?}");
    assert!(pages.contains(&(site("acme.test/contact"), "ok".to_owned())));
    assert!(!pages.iter().any(|(u, _)| u.contains("pricing")), "only contact/about/team/legal pages: {pages:?}");
    assert_eq!(d["crawl"]["complete"], true);

    // The next page; the crawl now comes from the cache.
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&limit=3&offset=3", key).await;
    assert_eq!(values(&r["data"]), ["fmulder@acme.test", "info@acme.test", "jdoe@acme.test"]);
    assert_eq!(r["data"]["crawl"]["cached"], true);
    let fox = &r["data"]["emails"][0];
    assert_eq!(
        (fox["first_name"].as_str(), fox["position"].as_str(), fox["department"].as_str()),
        (Some("Fox"), Some("Head of Sales"), Some("sales"))
    );
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&offset=6", key).await;
    assert_eq!(values(&r["data"]), ["ops@eu.acme.test", "press@acme.test", "wskinner@acme.test"]);
    let everything = format!("{}", r["data"]);
    for hidden in ["secret@", "mevil@", "jane.doe@", "bob@other.test"] {
        assert!(!everything.contains(hidden), "{hidden} must not appear");
    }

    // Filters.
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&type=generic", key).await;
    assert_eq!(
        (values(&r["data"]), r["meta"]["results"].as_u64()),
        (vec!["info@acme.test".to_owned(), "press@acme.test".to_owned()], Some(2))
    );
    assert!(r["data"]["emails"].as_array().unwrap().iter().all(|e| e["type"] == "generic"));
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&seniority=executive", key).await;
    assert_eq!(values(&r["data"]), ["dscully@acme.test", "fmulder@acme.test", "jdoe@acme.test", "wskinner@acme.test"]);
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&department=it,sales&limit=1", key).await;
    assert_eq!((values(&r["data"]), r["meta"]["results"].as_u64()), (vec!["bsmith@acme.test".to_owned()], Some(2)));

    // A site whose robots.txt disallows everything is not crawled; an oversized page is skipped.
    let r = ready(server, "/api/v1/domain-search?domain=private.test", key).await;
    assert_eq!((values(&r["data"]).len(), r["data"]["crawl"]["pages"].as_array().unwrap().len()), (0, 2), "{r}");
    assert_eq!(r["data"]["crawl"]["pages"][1]["outcome"], "robots_disallowed");
    let r = ready(server, "/api/v1/domain-search?domain=big.test", key).await;
    assert_eq!(values(&r["data"]), ["hello@big.test"]);
    let outcomes: Vec<(String, String)> = r["data"]["crawl"]["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["url"].as_str().unwrap().to_owned(), p["outcome"].as_str().unwrap().to_owned()))
        .collect();
    assert!(outcomes.contains(&(site("big.test/team"), "too_large".to_owned())), "{outcomes:?}");
    // A slow site: the crawl stops at its time budget with what it has.
    let r = ready(server, "/api/v1/domain-search?domain=slow.test", key).await;
    assert_eq!(
        (r["data"]["crawl"]["complete"].as_bool(), r["data"]["emails"].as_array().unwrap().len()),
        (Some(false), 0)
    );
    assert_eq!(r["data"]["crawl"]["pages"][1]["outcome"], "timeout");

    let api = server.api();
    for (query, field) in [
        ("domain=acme.test&limit=0", "limit"),
        ("domain=acme.test&limit=101", "limit"),
        ("domain=acme.test&offset=-1", "offset"),
        ("domain=acme.test&type=robot", "type"),
        ("domain=acme.test&seniority=boss", "seniority"),
        ("domain=acme.test&department=it,space", "department"),
        ("domain=acme", "domain"),
        ("", "domain"),
    ] {
        let r = api.get(&format!("/api/v1/domain-search?{query}"), key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{query}: {}", r.text);
    }
}

async fn the_author_finder_applies_each_rule_then_finds_the_email(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let key = ws.api_key.as_str();
    for (path, rule, name, email) in [
        ("a/json-ld", "json_ld", "Ada Lovelace", "ada.lovelace@blog.test"),
        ("a/meta", "meta", "Grace Hopper", "grace.hopper@blog.test"),
        ("a/itemprop", "itemprop", "Katherine Johnson", "katherine.johnson@blog.test"),
        ("a/rel", "rel_author", "Margaret Hamilton", "margaret.hamilton@blog.test"),
        ("a/byline", "byline", "Linus Torvalds", "linus.torvalds@blog.test"),
    ] {
        let url = site(&format!("blog.test/{path}"));
        let r = ready(server, &format!("/api/v1/author-finder?url={url}"), key).await;
        let d = &r["data"];
        assert_eq!(
            (d["author"]["rule"].as_str(), d["author"]["name"].as_str()),
            (Some(rule), Some(name)),
            "{path}: {r}"
        );
        assert_eq!(
            (d["email"].as_str(), d["domain"].as_str(), d["url"].as_str()),
            (Some(email), Some("blog.test"), Some(url.as_str()))
        );
        assert_eq!((d["accept_all"].as_bool(), d["pattern"].as_str()), (Some(true), Some("{first}.{last}")));
    }
    for (url, rule, reason) in [
        (site("blog.test/a/twitter"), Some("twitter_creator"), "Twitter handle"),
        (site("blog.test/a/none"), None, "no author found"),
        (site("private.test/post"), None, "robots_disallowed"),
    ] {
        let r = ready(server, &format!("/v2/author-finder?url={url}"), key).await;
        let d = &r["data"];
        assert_eq!((d["email"].clone(), d["author"]["rule"].as_str()), (Value::Null, rule), "{url}: {r}");
        assert!(d["reason"].as_str().unwrap().contains(reason), "{r}");
    }
    // Within 2048 characters as given, about 3,600 once percent-encoded: its task checks the
    // text it was given, so it finishes (it once failed on the encoded form, never answering).
    let long = format!("{}/{}", site("blog.test/a/none"), "é".repeat(600));
    let r = ready(server, &format!("/api/v1/author-finder?url={long}"), key).await;
    assert_eq!(r["data"]["email"], Value::Null, "{r}");
    assert!(r["data"]["reason"].as_str().is_some(), "{r}");
    let api = server.api();
    for query in ["", "url=ftp://x", "url=not%20a%20url"] {
        let r = api.get(&format!("/api/v1/author-finder?{query}"), key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("url")), "{query}: {}", r.text);
    }
}

async fn the_phone_finder_gives_personal_and_company_numbers_validated(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let key = ws.api_key.as_str();
    let numbers = |d: &Value| -> Vec<(String, String, u64)> {
        d["phones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["number"].as_str().unwrap().to_owned(),
                    p["type"].as_str().unwrap().to_owned(),
                    p["confidence"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let want = vec![
        ("+16502530000".to_owned(), "personal".to_owned(), 90),
        ("+14155552671".to_owned(), "company".to_owned(), 80),
        ("+4930901820".to_owned(), "company".to_owned(), 70),
        ("+442070313000".to_owned(), "company".to_owned(), 60),
    ];
    for query in ["email=JDoe@acme.test", "linkedin_handle=janedoe", "first_name=Jane&last_name=Doe&domain=acme.test"] {
        let r = ready(server, &format!("/api/v1/phone-finder?{query}"), key).await;
        assert_eq!(numbers(&r["data"]), want, "{query}: {r}");
        let own = &r["data"]["phones"][0];
        assert_eq!(
            (own["line_type"].as_str(), own["country_code"].as_str()),
            (Some("fixed_line_or_mobile"), Some("US"))
        );
        assert_eq!(own["sources"][0]["kind"], "lead");
        let tel = &r["data"]["phones"][1];
        let kinds: Vec<&str> = tel["sources"].as_array().unwrap().iter().map(|s| s["uri"].as_str().unwrap()).collect();
        assert_eq!(kinds, [site("acme.test/contact")], "tel: and JSON-LD on one page");
    }
    // A handle of no lead: no company to search. The answer says so (it once never came).
    let r = ready(server, "/api/v1/phone-finder?linkedin_handle=nobody-at-all", key).await;
    assert_eq!(
        (&r["data"]["domain"], &r["data"]["person"], &r["data"]["phones"], &r["data"]["crawl"]),
        (&Value::Null, &Value::Null, &serde_json::json!([]), &Value::Null),
        "{r}"
    );
    let r = ready(server, "/v2/phone-finder?domain=acme.test", key).await;
    let company = numbers(&r["data"]);
    assert!(company.iter().all(|(_, kind, _)| kind == "company"), "{company:?}");
    assert!(company.iter().any(|(n, _, _)| n == "+16502530000"), "Jane's number is a company number here");
    assert!(!format!("{r}").contains("+12127365000"), "never another workspace's number");
    let api = server.api();
    for (query, field) in
        [("", "email"), ("email=nope", "email"), ("first_name=A&last_name=B", "domain"), ("domain=x", "domain")]
    {
        let r = api.get(&format!("/api/v1/phone-finder?{query}"), key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{query}: {}", r.text);
    }
}

async fn finder_results_go_to_webhook_url_and_repeat_calls_are_cached(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let api = server.api();
    let callback = Receiver::start(Reply::ok()).await;
    let path = format!(
        "/api/v1/email-finder?domain=acme.test&first_name=Bob&last_name=Smith&webhook_url={}/found",
        callback.url
    );
    let first = ready(server, &path, &ws.api_key).await;
    assert_eq!(first["data"]["email"], "bsmith@acme.test");
    let got = callback.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/found");
    assert_eq!(got[0].json()["data"]["email"], "bsmith@acme.test", "{:?}", got[0].json());
    let again = api.get("/api/v1/email-finder?domain=acme.test&first_name=Bob&last_name=Smith", &ws.api_key).await;
    assert_eq!(
        (again.status, again.data()["cached"].as_bool(), again.data()["email"].as_str()),
        (200, Some(true), Some("bsmith@acme.test"))
    );
    let r = api.get("/api/v1/domain-search?domain=acme.test&webhook_url=ftp://x", &ws.api_key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook_url")), "{}", r.text);
}

/// A domain with no mail server (it exists, without MX or address): no probe answered, so
/// whether it accepts every address is unknown, `null`, never a guessed `false`.
async fn the_email_finder_says_accept_all_is_unknown_when_no_mail_server_answered(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let r =
        ready(server, "/api/v1/email-finder?domain=nomail.test&first_name=Mary&last_name=Poppins", &ws.api_key).await;
    assert!(r["data"]["accept_all"].is_null(), "{r}");
}

fn values_of(data: &Value) -> Vec<String> {
    data["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap().to_owned()).collect()
}

async fn hunters_filters_email_count_and_linkedin_handle_lookups(backend: Backend) {
    let server = server(backend);
    let (ws, _) = seeded(server).await;
    let (api, key) = (server.api(), ws.api_key.as_str());

    // required_field: only addresses that have each field.
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&required_field=phone_number", key).await;
    assert_eq!(values_of(&r["data"]), ["alee@acme.test", "jdoe@acme.test", "wskinner@acme.test"], "{r}");
    assert!(r["data"]["emails"].as_array().unwrap().iter().all(|e| e["phone_number"].is_string()));
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&required_field=position,full_name", key).await;
    let listed = r["data"]["emails"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|e| e["position"].is_string() && e["last_name"].is_string()));
    assert!(!values_of(&r["data"]).contains(&"info@acme.test".to_owned()), "{r}");
    assert_eq!(r["meta"]["params"]["required_field"], "full_name,position");

    // verification_status: the server rejects press@ (550) and takes the others.
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&verification_status=invalid", key).await;
    assert!(values_of(&r["data"]).contains(&"press@acme.test".to_owned()), "{r}");
    assert!(r["data"]["emails"].as_array().unwrap().iter().all(|e| e["verification"]["status"] == "invalid"), "{r}");
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&verification_status=valid&limit=100", key).await;
    let valid = values_of(&r["data"]);
    assert!(valid.contains(&"jdoe@acme.test".to_owned()) && !valid.contains(&"press@acme.test".to_owned()), "{r}");
    assert_eq!(r["meta"]["results"].as_u64(), Some(valid.len() as u64));
    // Hunter's verification date is a day.
    let date = r["data"]["emails"][0]["verification"]["date"].as_str().unwrap();
    assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10, "{date}");
    for (query, field) in
        [("required_field=email", "required_field"), ("verification_status=deliverable", "verification_status")]
    {
        let r = api.get(&format!("/api/v1/domain-search?domain=acme.test&{query}"), key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{query}: {}", r.text);
    }

    // email-count: this workspace's leads at the domain, never the other workspace's.
    let r = api
        .send("GET", &format!("/v2/email-count?domain=acme.test&api_key={key}"), crate::harness::Auth::None, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = &r.body["data"];
    assert_eq!(
        (d["total"].as_u64(), d["personal_emails"].as_u64(), d["generic_emails"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{d}"
    );
    assert_eq!((d["department"]["executive"].as_u64(), d["department"]["marketing"].as_u64()), (Some(1), Some(1)));
    assert_eq!((d["department"]["legal"].as_u64(), d["seniority"]["junior"].as_u64()), (Some(0), Some(1)));
    assert_eq!(r.body["meta"]["params"]["domain"], "acme.test");
    let r = api.get("/api/v1/email-count?domain=acme.test&type=generic", key).await;
    assert_eq!((r.status, r.body["data"]["total"].as_u64()), (200, Some(1)), "{}", r.text);
    let r = api.send("GET", &format!("/v2/email-count?api_key={key}"), crate::harness::Auth::None, None).await;
    assert_eq!((r.status, r.hunter_error_id()), (400, "wrong_params"), "{}", r.text);

    // email-finder by LinkedIn handle alone: the lead with that profile gives name and domain.
    for handle in ["janedoe", "https://www.linkedin.com/in/JaneDoe/"] {
        let r = ready(server, &format!("/api/v1/email-finder?linkedin_handle={handle}"), key).await;
        assert_eq!(
            (r["data"]["email"].as_str(), r["data"]["domain"].as_str()),
            (Some("jdoe@acme.test"), Some("acme.test")),
            "{handle}: {r}"
        );
    }
    let r = api.get("/api/v1/email-finder?linkedin_handle=nobody-we-know", key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("linkedin_handle")), "{}", r.text);
}

/// When the evidence leaves no candidate, the email finder answers `email: null` with a
/// reason, never a guess; an address known from a lead but rejected by its mail server
/// keeps its source and loses its confidence, in the finder and in the domain search.
async fn the_finders_do_not_guess_against_the_mail_servers_answers(backend: Backend) {
    let server = server(backend);
    let (ws, other) = seeded(server).await;
    // acme.test's people follow {f}{last}; its server rejects bwayne@ and every other
    // candidate, so nothing is left (the answer used to fall to brucewayne@, score 1).
    let r = ready(server, "/api/v1/email-finder?domain=acme.test&first_name=Bruce&last_name=Wayne", &ws.api_key).await;
    let d = &r["data"];
    assert!(d["email"].is_null(), "{r}");
    assert_eq!(
        (d["score"].as_u64(), d["method"].as_str(), d["accept_all"].as_bool()),
        (Some(0), Some("none"), Some(false))
    );
    assert!(d["reason"].as_str().unwrap().contains("rejected every candidate address"), "{r}");
    assert!(d["reason"].as_str().unwrap().contains("bwayne@acme.test"), "{r}");
    assert_eq!(d["alternatives"], json!([]));
    // A domain that does not exist has no address at all.
    let r = ready(server, "/api/v1/email-finder?domain=gone.test&first_name=Mary&last_name=Poppins", &ws.api_key).await;
    let d = &r["data"];
    assert!(d["email"].is_null() && d["accept_all"].is_null(), "{r}");
    assert!(d["reason"].as_str().unwrap().contains("does not exist"), "{r}");
    // The other workspace's lead jane.doe@acme.test: its mail server rejects the address.
    let r = ready(server, "/api/v1/email-finder?domain=acme.test&full_name=Jane%20Doe", &other.api_key).await;
    let d = &r["data"];
    assert_eq!(
        (d["email"].as_str(), d["method"].as_str()),
        (Some("jane.doe@acme.test"), Some("workspace_lead")),
        "{r}"
    );
    assert_eq!((d["score"].as_u64(), d["verification"]["status"].as_str()), (Some(10), Some("invalid")), "{r}");
    assert!(d["reason"].as_str().unwrap().contains("rejected"), "{r}");
    let r = ready(server, "/api/v1/domain-search?domain=acme.test&limit=100", &other.api_key).await;
    let jane = r["data"]["emails"].as_array().unwrap().iter().find(|e| e["value"] == "jane.doe@acme.test").cloned();
    let jane = jane.unwrap_or_else(|| panic!("jane.doe@ in the other workspace's search: {r}"));
    assert_eq!((jane["confidence"].as_u64(), jane["verification"]["status"].as_str()), (Some(10), Some("invalid")));
}

both_backends!(
    the_finders_do_not_guess_against_the_mail_servers_answers,
    hunters_filters_email_count_and_linkedin_handle_lookups,
    the_email_finder_says_accept_all_is_unknown_when_no_mail_server_answered,
    the_email_finder_answers_from_leads_the_site_and_verified_patterns,
    domain_search_pages_the_domains_addresses_from_leads_and_the_site,
    the_author_finder_applies_each_rule_then_finds_the_email,
    the_phone_finder_gives_personal_and_company_numbers_validated,
    finder_results_go_to_webhook_url_and_repeat_calls_are_cached,
);
