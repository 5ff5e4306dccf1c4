//! The email verifier and phone validator (Hunter-compatible `?webhook_url=` endpoints in
//! the outbound-webhooks specification) against local DNS and SMTP servers: a normal, a
//! catch-all, a rejecting, a greylisting and a silent server (`scripts/enrich_fakes.py`),
//! on both stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::mail::{enrich_server, fakes, shared_enrich};
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::{Api, Auth, Backend, Server, eventually, signature_verifies};

const WAIT: Duration = Duration::from_secs(60);

/// A name no other test (or backend) uses, for unique subdomains of the fakes' zones.
fn tag(backend: Backend, name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}{}{}", if backend == Backend::Aws { "d" } else { "e" }, nanos % 1_000_000_000)
}

/// Verifies as a Hunter client does: a 202 means "repeat the same call".
async fn verify(api: &Api, key: &str, email: &str) -> Value {
    let path = format!("/api/v1/email-verifier?email={email}&max_duration=10");
    let r = eventually(WAIT, || async {
        let r = api.get(&path, key).await;
        match r.status {
            200 => Some(r),
            202 => None,
            other => panic!("{email}: {other} {}", r.text),
        }
    })
    .await
    .unwrap_or_else(|| panic!("{email}: no result within {WAIT:?}"));
    r.body["data"].clone()
}

async fn each_status_is_reached_from_its_evidence(backend: Backend) {
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let t = tag(backend, "s");
    let cases = [
        (format!("alice@{t}.normal.test"), "valid", "deliverable"),
        (format!("nobody@{t}.normal.test"), "invalid", "undeliverable"),
        (format!("whoever@{t}.catchall.test"), "accept_all", "risky"),
        (format!("alice@{t}.reject.test"), "invalid", "undeliverable"),
        (format!("alice@{t}.greylist.test"), "unknown", "risky"),
        (format!("alice@{t}.silent.test"), "unknown", "risky"),
        ("alice@gmail.com".to_owned(), "webmail", "deliverable"),
        ("someone@mailinator.com".to_owned(), "disposable", "risky"),
        ("not-an-address".to_owned(), "invalid", "undeliverable"),
        (format!("alice@{t}.nowhere.test"), "invalid", "undeliverable"),
        ("alice@nomail.test".to_owned(), "invalid", "undeliverable"),
        ("bob@implicit.test".to_owned(), "valid", "deliverable"),
    ];
    let mut got = Vec::new();
    for (email, _, _) in &cases {
        got.push(verify(&api, key, email).await);
    }
    for ((email, status, result), data) in cases.iter().zip(&got) {
        assert_eq!(
            (data["status"].as_str(), data["result"].as_str()),
            (Some(*status), Some(*result)),
            "{email}: {data}"
        );
        assert_eq!(data["email"].as_str(), Some(email.as_str()));
        assert!(data["reason"].as_str().is_some_and(|r| !r.is_empty()), "{email}: a reason in plain words");
    }
    let valid = &got[0];
    assert_eq!((valid["score"].as_u64(), valid["smtp_check"].as_bool()), (Some(100), Some(true)), "{valid}");
    assert_eq!(valid["mx"], json!([format!("mx.{t}.normal.test")]));
    assert_eq!(valid["accept_all"].as_bool(), Some(false));
    assert_eq!((got[1]["smtp_check"].as_bool(), got[1]["score"].as_u64()), (Some(false), Some(0)));
    assert!(got[1]["reason"].as_str().unwrap().contains("550"), "{}", got[1]);
    assert_eq!((got[2]["accept_all"].as_bool(), got[2]["smtp_check"].as_bool()), (Some(true), Some(true)));
    assert!(got[4]["reason"].as_str().unwrap().contains("451"), "greylisting says so: {}", got[4]);
    assert_eq!(got[5]["smtp_server"].as_bool(), Some(false), "the silent server never greeted: {}", got[5]);
    assert_eq!((got[6]["webmail"].as_bool(), got[7]["disposable"].as_bool()), (Some(true), Some(true)));
    assert_eq!(got[8]["regexp"].as_bool(), Some(false));
    assert_eq!(got[9]["mx_records"].as_bool(), Some(false));
    assert_eq!(got[11]["mx"], json!(["implicit.test"]), "no MX: the domain's own address");

    // The same call again is answered from the stored result, without asking DNS again.
    let before = fakes().stats().await;
    let again = verify(&api, key, &cases[0].0).await;
    assert_eq!((again["cached"].as_bool(), again["status"].as_str()), (Some(true), Some("valid")));
    let after = fakes().stats().await;
    let mx = format!("{t}.normal.test MX");
    assert_eq!(after["dns_by_name"][&mx], before["dns_by_name"][&mx], "no second MX lookup");
    assert_eq!(before["dns_by_name"][&mx], 1, "one MX lookup for the domain: {before}");
}

async fn a_slow_check_answers_202_and_the_repeated_call_returns_it(backend: Backend) {
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let secret = api.act("/api/v1/callbacks/secret", &ws.api_key).await.data()["secret"].as_str().unwrap().to_owned();
    let callback = Receiver::start(Reply::ok()).await;
    // The silent server makes the check last the SMTP timeout (4 s), longer than 3 s.
    let email = format!("alice@{}.silent.test", tag(backend, "p"));
    let path = format!("/api/v1/email-verifier?email={email}&max_duration=3&webhook_url={}/verified", callback.url);
    let first = api.get(&path, &ws.api_key).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let id = first.data()["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ver_"), "{id}");
    assert_eq!(first.data()["status"], "pending");
    let pending = api.get(&format!("/api/v1/enrichments/{id}"), &ws.api_key).await;
    assert_eq!(pending.status, 200, "{}", pending.text);
    let done = eventually(WAIT, || async {
        let r = api.get(&format!("/api/v1/email-verifier?email={email}&max_duration=3"), &ws.api_key).await;
        match r.status {
            200 => Some(r),
            202 => {
                assert_eq!(r.data()["id"].as_str(), Some(id.as_str()), "a repeat joins the same check");
                None
            }
            other => panic!("{other}: {}", r.text),
        }
    })
    .await
    .expect("the repeated call returns the result");
    assert_eq!((done.data()["status"].as_str(), done.data()["cached"].as_bool()), (Some("unknown"), Some(true)));
    let read = api.get(&format!("/api/v1/enrichments/{id}"), &ws.api_key).await;
    assert_eq!(
        (read.data()["status"].as_str(), read.data()["kind"].as_str()),
        (Some("completed"), Some("email_verifier"))
    );
    assert_eq!(read.data()["result"]["checked_at"], done.data()["checked_at"], "one check, read twice");
    // The callback carries the finished data, signed like every callback.
    let got = callback.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/verified");
    assert_eq!(got[0].json()["data"]["status"], "unknown");
    assert_eq!(got[0].json()["data"]["checked_at"], done.data()["checked_at"]);
    assert!(signature_verifies(&secret, &got[0]), "signed with the callback secret");
    let log = api.get("/api/v1/callbacks/deliveries", &ws.api_key).await;
    assert_eq!(log.data()[0]["event"], "email_verifier", "in the existing callback log: {}", log.text);
    // Another workspace does not see it.
    let other = server.workspace();
    assert_eq!(api.get(&format!("/api/v1/enrichments/{id}"), &other.api_key).await.status, 404);
}

/// 1000 addresses on the embedded store; on DynamoDB 200, as moto (one process, serialised,
/// shared by every suite) reads a partition of 1000 verification results slowly.
async fn a_bulk_job_of_1000_addresses_across_5_domains(backend: Backend) {
    let n: usize = if backend == Backend::Embedded { 1000 } else { 200 };
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let callback = Receiver::start(Reply::ok()).await;
    let t = tag(backend, "b");
    let domains: Vec<String> = (1..=5).map(|n| format!("{t}{n}.bulk.test")).collect();
    // Every tenth address does not exist.
    let emails: Vec<String> = (0..n)
        .map(|i| {
            let local = if i % 10 == 9 { format!("nobody{i}") } else { format!("user{i}") };
            format!("{local}@{}", domains[i % 5])
        })
        .collect();
    let r = api
        .post(
            "/api/v1/email-verifier/bulk",
            &ws.api_key,
            &json!({"emails": emails, "webhook_url": format!("{}/bulk", callback.url)}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["total"], n);
    // Polled gently: the job's own tasks share the store (and moto) with these reads.
    let mut completed = false;
    for _ in 0..600 {
        let r = api.get(&format!("/api/v1/email-verifier/bulk/{job}?limit=1"), &ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.data()["status"] == "completed" {
            completed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(completed, "the job completes within 3 minutes");
    let first = n * 3 / 5;
    let view = api.get(&format!("/api/v1/email-verifier/bulk/{job}?limit={first}"), &ws.api_key).await.body;
    let data = &view["data"];
    assert_eq!(data["progress"]["processed"], n);
    let (valid, invalid) = (n as u64 * 9 / 10, n as u64 / 10);
    assert_eq!(
        (data["progress"]["valid"].as_u64(), data["progress"]["invalid"].as_u64()),
        (Some(valid), Some(invalid)),
        "{}",
        data["progress"]
    );
    let first_page = data["results"].as_array().unwrap();
    assert_eq!(first_page.len(), first);
    assert_eq!(first_page[9]["verification"]["status"], "invalid", "nobody9 does not exist");
    assert_eq!(first_page[0]["verification"]["email"], emails[0]);
    let cursor = data["next_cursor"].as_str().expect("a second page");
    let rest = api.get(&format!("/api/v1/email-verifier/bulk/{job}?limit={first}&cursor={cursor}"), &ws.api_key).await;
    let rest = rest.data()["results"].as_array().unwrap().clone();
    assert_eq!(rest.len(), n - first);
    assert_eq!(rest[n - first - 1]["index"], n - 1);

    // Polite: one MX lookup and one catch-all probe per domain, for all those addresses.
    let stats = fakes().stats().await;
    for domain in &domains {
        assert_eq!(stats["dns_by_name"][format!("{domain} MX")], 1, "{domain}: {}", stats["dns_by_name"]);
        assert_eq!(stats["probes"][domain], 1, "{domain}: one catch-all probe");
    }

    // Results reach webhook_url: pages of 100.
    let pages = callback.wait_for(n / 100, WAIT).await;
    let mut delivered = 0;
    for page in &pages {
        let body = page.json();
        assert_eq!(
            (body["data"]["id"].as_str(), body["data"]["pages"].as_u64()),
            (Some(job.as_str()), Some(n as u64 / 100))
        );
        delivered += body["data"]["results"].as_array().unwrap().len();
    }
    assert_eq!(delivered, n);
}

async fn hunter_clients_work_by_changing_the_base_url(backend: Backend) {
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let email = format!("bob@{}.normal.test", tag(backend, "h"));
    // As in Hunter's documentation: GET /v2/email-verifier?email=...&api_key=...
    let path = format!("/v2/email-verifier?email={email}&api_key={}", ws.api_key);
    let r = eventually(WAIT, || async {
        let r = api.send("GET", &path, Auth::None, None).await;
        assert!(r.status == 200 || r.status == 202, "{}", r.text);
        (r.status == 200).then_some(r)
    })
    .await
    .expect("the result, repeating the call after a 202 as Hunter documents");
    let data = &r.body["data"];
    for field in [
        "regexp",
        "gibberish",
        "disposable",
        "webmail",
        "mx_records",
        "smtp_server",
        "smtp_check",
        "accept_all",
        "block",
    ] {
        assert!(data[field].is_boolean(), "{field} is a boolean: {data}");
    }
    for field in ["status", "result", "email"] {
        assert!(data[field].is_string(), "{field} is a string: {data}");
    }
    assert!(data["score"].as_u64().is_some_and(|s| s <= 100));
    assert!(data["sources"].is_array());
    assert_eq!(r.body["meta"]["params"], json!({"email": email}), "the key is never echoed");
    assert!(!r.text.contains(&ws.api_key));
    // The same answer at /api/v1, and with Hunter's header.
    let v1 = api
        .raw(
            "GET",
            &format!("/api/v1/email-verifier?email={email}"),
            Auth::None,
            &[("X-API-KEY", ws.api_key.clone())],
            None,
        )
        .await;
    assert_eq!((v1.status, v1.body["data"]["status"].as_str()), (200, data["status"].as_str()), "{}", v1.text);
    let phone = api
        .send("GET", &format!("/v2/phone-validator?phone=%2B14155552671&api_key={}", ws.api_key), Auth::None, None)
        .await;
    assert_eq!((phone.status, phone.body["data"]["valid"].as_bool()), (200, Some(true)), "{}", phone.text);
    let wrong =
        api.send("GET", &format!("/v2/email-verifier?email={email}&api_key=lp_key_wrong"), Auth::None, None).await;
    assert_eq!((wrong.status, wrong.hunter_error_id()), (401, "unauthorized"));
    // Errors at Hunter's paths are in Hunter's shape; ours keep ours.
    let key = &ws.api_key;
    let missing = api.send("GET", &format!("/v2/email-verifier?api_key={key}"), Auth::None, None).await;
    assert_eq!((missing.status, missing.hunter_error_id()), (400, "wrong_params"), "{}", missing.text);
    assert!(missing.body["errors"][0]["details"].as_str().unwrap().starts_with("email"), "{}", missing.text);
    let missing = api.send("GET", &format!("/api/v1/email-verifier?api_key={key}"), Auth::None, None).await;
    assert_eq!((missing.status, missing.error_code()), (400, "validation_error"), "{}", missing.text);
    let unknown = api.send("GET", &format!("/v2/no-such-route?api_key={key}"), Auth::None, None).await;
    assert_eq!((unknown.status, unknown.hunter_error_id()), (404, "route_not_found"), "{}", unknown.text);
    // The key that came in the query string is nowhere in the request log.
    let log = server.log();
    assert!(log.contains("request completed"), "the request log is on");
    assert!(!log.contains(&ws.api_key), "the API key was logged");
}

async fn leads_carrying_the_address_are_its_sources(backend: Backend) {
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let token = server.webhook_token(&ws);
    let campaign = api.campaign(&ws.api_key, "Sources", "webhook").await;
    let email = format!("alice@{}.normal.test", tag(backend, "src"));
    let r = api
        .ingest(
            &token,
            &json!({"idempotency_key": "src", "leads": [{"name": "Alice", "email": email, "campaign_id": campaign}]}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let lead = r.data()["lead_ids"][0].as_str().unwrap().to_owned();
    let data = verify(&api, &ws.api_key, &email).await;
    let sources = data["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{data}");
    assert_eq!(
        (sources[0]["lead_id"].as_str(), sources[0]["uri"].as_str()),
        (Some(lead.as_str()), Some(format!("/api/v1/leads/{lead}").as_str()))
    );
}

async fn phone_numbers_are_validated_with_their_errors(backend: Backend) {
    let server = shared_enrich(backend);
    let (api, ws) = (server.api(), server.workspace());
    let r = api.get("/api/v1/phone-validator?phone=(415)%20555-2671&country=us", &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.data();
    assert_eq!(
        (d["valid"].as_bool(), d["e164"].as_str(), d["country_code"].as_str()),
        (Some(true), Some("+14155552671"), Some("US"))
    );
    assert_eq!(
        (d["national_format"].as_str(), d["country_calling_code"].as_str()),
        (Some("(415) 555-2671"), Some("1"))
    );
    assert_eq!(r.body["meta"]["params"]["country"], "US");
    let bad = api.get("/api/v1/phone-validator?phone=hello", &ws.api_key).await;
    assert_eq!((bad.status, bad.data()["valid"].as_bool()), (200, Some(false)));
    assert_eq!(bad.data()["validation_errors"], json!(["NOT_A_NUMBER"]));
    let missing = api.get("/api/v1/phone-validator", &ws.api_key).await;
    assert_eq!((missing.status, missing.body["error"]["field"].as_str()), (400, Some("phone")));
    let country = api.get("/api/v1/phone-validator?phone=5552671&country=XX1", &ws.api_key).await;
    assert_eq!((country.status, country.body["error"]["field"].as_str()), (400, Some("country")));
    // Whitespace alone (U+0085 here, found by schemathesis) is not "no country", nor is a padded code.
    for padded in ["%C2%85", "%20us"] {
        let r = api.get(&format!("/api/v1/phone-validator?phone=5552671&country={padded}"), &ws.api_key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("country")), "country={padded}");
    }
    let empty = api.get("/api/v1/phone-validator?phone=%2B14155552671&country=", &ws.api_key).await;
    assert_eq!((empty.status, empty.data()["valid"].as_bool()), (200, Some(true)));
}

both_backends!(
    each_status_is_reached_from_its_evidence,
    a_slow_check_answers_202_and_the_repeated_call_returns_it,
    a_bulk_job_of_1000_addresses_across_5_domains,
    hunter_clients_work_by_changing_the_base_url,
    leads_carrying_the_address_are_its_sources,
    phone_numbers_are_validated_with_their_errors,
);

/// 200 domains whose MX names all point at one IP got 200 SMTP sessions at once when the
/// bound was per MX name, and a bulk job must not read `queued` while it runs. Sixteen
/// domains, sixteen MX names, one slow server: at most the per-host bound (2) of sessions
/// at once, and the job is `running` from its first chunk's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sessions_are_bounded_per_ip_and_a_running_bulk_job_says_so() {
    let server = enrich_server(Backend::Embedded, &[("LEADPUSH_SMTP_PER_HOST", "2")]);
    let (api, ws) = (server.api(), server.workspace());
    let t = tag(Backend::Embedded, "ip");
    let emails: Vec<String> = (0..16).map(|n| format!("alice@{t}{n}.slowmx.test")).collect();
    let r = api.post("/api/v1/email-verifier/bulk", &ws.api_key, &json!({"emails": emails})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.data()["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for _ in 0..600 {
        let r = api.get(&format!("/api/v1/email-verifier/bulk/{job}?limit=1"), &ws.api_key).await;
        let status = r.data()["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("completed"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "running"), "the job was never shown running: {seen:?}");
    let stats = fakes().stats().await;
    // RCPTs held at once, not connections open: the fake server notices a closed connection
    // after the client has moved on, so its connection count lags on a loaded machine.
    let peak = stats["rcpt_peak"]["slow"].as_u64().unwrap_or(0);
    assert!(
        (1..=2).contains(&peak),
        "{peak} sessions at once to one IP: {} (connections: {})",
        stats["rcpt_peak"],
        stats["smtp_peak"]
    );
}

/// With the SSRF guard on (as in production): bad input is a clear 400 and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_stored() {
    let server = enrich_server(Backend::Embedded, &[("LEADPUSH_ALLOW_PRIVATE_TARGETS", "0")]);
    let (api, ws) = (server.api(), server.workspace());
    let key = ws.api_key.as_str();
    let r = api.get("/api/v1/email-verifier", key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("email")), "{}", r.text);
    let long = "a".repeat(2_000);
    let r = api.get(&format!("/api/v1/email-verifier?email={long}@x.test"), key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("email")), "{}", r.text);
    assert!(r.text.contains("at most 254 characters"), "{}", r.text);
    // HTTP clients refuse to send a 5 MB URL, so this one goes over a bare connection.
    let status =
        raw_get_status(&api.base, &format!("/api/v1/email-verifier?email={}", "a".repeat(5 * 1024 * 1024)), key).await;
    assert!((400..500).contains(&status), "a 5 MB query is refused with a 4xx: {status}");
    let email = "alice@nomail.test";
    for url in ["http://hooks.example.com/cb", "https://127.0.0.1/cb", "not-a-url"] {
        let r = api.get(&format!("/api/v1/email-verifier?email={email}&webhook_url={url}"), key).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook_url")), "{url}: {}", r.text);
    }
    let r = api.get(&format!("/api/v1/email-verifier?email={email}&max_duration=60"), key).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("max_duration")));
    let r = api.post("/api/v1/email-verifier/bulk", key, &json!({"emails": []})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("emails")));
    let r = api.post("/api/v1/email-verifier/bulk", key, &json!({"emails": vec!["a@b.co"; 10_001]})).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("emails")));
    // Nothing was stored: no callback was queued, and the first valid call is a fresh check.
    let log = api.get("/api/v1/callbacks/deliveries", key).await;
    assert_eq!(log.data(), &json!([]));
    let r = api.get(&format!("/api/v1/email-verifier?email={email}"), key).await;
    assert_eq!(
        (r.status, r.data()["cached"].as_bool(), r.data()["status"].as_str()),
        (200, Some(false), Some("invalid"))
    );
}

/// Sends a GET over a plain TCP connection and returns the status code of the answer.
async fn raw_get_status(base: &str, path: &str, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Satellyte-API-Key: {key}\r\nConnection: close\r\n\r\n");
    // The server may answer (and close) before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = vec![0u8; 64];
    let n =
        tokio::time::timeout(Duration::from_secs(30), stream.read(&mut head)).await.expect("an answer").unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// The probe's other modes: through a SOCKS5 proxy, and off (results say SMTP was not checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_runs_through_socks5_or_not_at_all() {
    let socks = format!("socks5://{}", fakes().socks5);
    let proxied = enrich_server(Backend::Embedded, &[("LEADPUSH_SMTP_PROBE", socks.as_str())]);
    let ws = proxied.workspace();
    let before = fakes().stats().await["socks_connections"].as_u64().unwrap();
    let data = verify(&proxied.api(), &ws.api_key, &format!("alice@{}.normal.test", tag(Backend::Embedded, "x"))).await;
    assert_eq!((data["status"].as_str(), data["smtp_probe"].as_str()), (Some("valid"), Some("socks5")), "{data}");
    assert!(fakes().stats().await["socks_connections"].as_u64().unwrap() > before, "through the proxy");
    drop(proxied);
    let off: Server = enrich_server(Backend::Embedded, &[("LEADPUSH_SMTP_PROBE", "off")]);
    let ws = off.workspace();
    let data = verify(&off.api(), &ws.api_key, &format!("alice@{}.normal.test", tag(Backend::Embedded, "o"))).await;
    assert_eq!((data["status"].as_str(), data["smtp_probe"].as_str()), (Some("unknown"), Some("off")), "{data}");
    assert!(data["reason"].as_str().unwrap().contains("SMTP not checked"), "{data}");
    assert_eq!((data["mx_records"].as_bool(), data["smtp_server"].as_bool()), (Some(true), Some(false)));
}

/// A catch-all that greylists each new address once: the first verdict is a deferred
/// `unknown`, kept only LEADPUSH_ENRICH_DEFERRED_TTL (not the 15 minutes of other unknowns);
/// the call after it asks again, with the same catch-all probe address, and finds the
/// catch-all (never valid/100 with `accept_all: false`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greylisted_verdict_is_checked_again_after_the_greylist_delay() {
    let server = enrich_server(Backend::Embedded, &[("LEADPUSH_ENRICH_DEFERRED_TTL", "2s")]);
    let (api, ws) = (server.api(), server.workspace());
    let email = format!("alice@{}.greycatch.test", tag(Backend::Embedded, "grey"));
    let first = verify(&api, &ws.api_key, &email).await;
    assert_eq!((first["status"].as_str(), first["accept_all"].as_bool()), (Some("unknown"), Some(false)), "{first}");
    let again = verify(&api, &ws.api_key, &email).await;
    assert_eq!((again["status"].as_str(), again["cached"].as_bool()), (Some("unknown"), Some(true)), "{again}");
    let later = eventually(WAIT, || async {
        // Under the workspace's 10 calls a second.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let data = verify(&api, &ws.api_key, &email).await;
        (data["cached"] == json!(false)).then_some(data)
    })
    .await
    .expect("checked again after the deferred TTL");
    assert_eq!((later["status"].as_str(), later["accept_all"].as_bool()), (Some("accept_all"), Some(true)), "{later}");
    assert_eq!(later["score"], 60, "{later}");
}
