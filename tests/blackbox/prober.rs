//! `leadpush prober` (the SMTP probe as an authenticated service for hosts without port 25)
//! against the local DNS and SMTP servers, and `leadpush serve` verifying through it.

use serde_json::{Value, json};

use crate::harness::Backend;
use crate::harness::mail::{Prober, enrich_server, fakes};

fn tag(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}{}", nanos % 1_000_000_000)
}

fn dns_queries_for(stats: &Value, domain: &str) -> usize {
    stats["dns_by_name"].as_object().unwrap().keys().filter(|k| k.contains(domain)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_refuses_callers_without_its_token_before_any_probe() {
    let prober = Prober::start(&[]);
    let domain = format!("{}.normal.test", tag("auth"));
    let body = json!({"domain": domain, "addresses": [format!("alice@{domain}"), format!("nobody@{domain}")]});
    let (status, answer) = prober.probe(None, &body).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")), "{answer}");
    let wrong = format!("{}x", prober.token);
    assert_eq!(prober.probe(Some(&wrong), &body).await.0, 401);
    assert_eq!(prober.probe(Some(&prober.token[..prober.token.len() - 1]), &body).await.0, 401);
    // Refused before anything: not even the MX lookup happened.
    assert_eq!(dns_queries_for(&fakes().stats().await, &domain), 0, "no DNS query for a refused caller");

    let (status, answer) = prober.probe(Some(&prober.token), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["mx"]["hosts"], json!([format!("mx.{domain}")]), "{answer}");
    let report = &answer["report"];
    assert_eq!(report["connected"], json!(true), "{answer}");
    assert_eq!(report["rcpts"][0]["answer"], "accepted", "{answer}");
    assert_eq!(
        (report["rcpts"][1]["answer"].as_str(), report["rcpts"][1]["code"].as_u64()),
        (Some("rejected"), Some(550))
    );
    // A caller cannot point the prober at another domain's addresses.
    let (status, answer) =
        prober.probe(Some(&prober.token), &json!({"domain": domain, "addresses": ["alice@elsewhere.test"]})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_keeps_to_its_per_host_rate_limit() {
    let prober = Prober::start(&[("LEADPUSH_SMTP_PER_HOST_PER_MINUTE", "2")]);
    let before = fakes().stats().await["smtp_connections"]["limited"].as_u64().unwrap_or(0);
    let mut answers = Vec::new();
    for n in 0..3 {
        // Different domains, one mail server IP: one budget.
        let domain = format!("{}.limited.test", tag(&format!("rate{n}x")));
        // A budget shorter than the wait for the next minute's session: no waiting.
        let body = json!({"domain": domain, "addresses": [format!("alice@{domain}")], "budget_ms": 20000});
        let (status, answer) = prober.probe(Some(&prober.token), &body).await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    let after = fakes().stats().await["smtp_connections"]["limited"].as_u64().unwrap_or(0);
    assert_eq!(after - before, 2, "two sessions a minute reach the server: {answers:?}");
    assert_eq!(answers[1]["report"]["rcpts"][0]["answer"], "accepted");
    let third = &answers[2]["report"];
    assert_eq!((third["connected"].as_bool(), third["rcpts"][0]["answer"].as_str()), (Some(false), Some("not_asked")));
    assert!(third["failure"].as_str().unwrap().contains("limit of 2 sessions a minute"), "{third}");
    // Within a caller's budget the answer is "not asked yet", for a later invocation.
    assert_eq!(third["cut_short"], true, "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_holds_one_session_at_a_time_per_mail_server() {
    let prober = Prober::start(&[("LEADPUSH_SMTP_PER_HOST", "1"), ("LEADPUSH_SMTP_PER_HOST_PER_MINUTE", "0")]);
    let calls = (0..4).map(|n| {
        let domain = format!("{}.slowprobe.test", tag(&format!("one{n}x")));
        let body = json!({"domain": domain, "addresses": [format!("alice@{domain}"), format!("bob@{domain}")]});
        let prober = &prober;
        async move { prober.probe(Some(&prober.token), &body).await }
    });
    for (status, answer) in futures_util::future::join_all(calls).await {
        assert_eq!((status, answer["report"]["rcpts"][1]["answer"].as_str()), (200, Some("accepted")), "{answer}");
    }
    let peak = fakes().stats().await["rcpt_peak"]["slowprobe"].as_u64().unwrap_or(0);
    assert_eq!(peak, 1, "four callers at once, one session at a time at the server");
}

/// `leadpush serve` with `LEADPUSH_SMTP_PROBE=http://<prober>`: the verdicts come from the
/// prober's sessions; a wrong token is an `unknown` that says so, never a guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_runs_through_the_prober_with_its_token() {
    let prober = Prober::start(&[]);
    let server = enrich_server(
        Backend::Embedded,
        &[("LEADPUSH_SMTP_PROBE", prober.base.as_str()), ("LEADPUSH_PROBER_TOKEN", prober.token.as_str())],
    );
    let (api, ws) = (server.api(), server.workspace());
    let domain = format!("{}.normal.test", tag("via"));
    let r = api.get(&format!("/api/v1/email-verifier?email=alice@{domain}&max_duration=10"), &ws.api_key).await;
    let data = r.data();
    assert_eq!(
        (r.status, data["status"].as_str(), data["smtp_probe"].as_str()),
        (200, Some("valid"), Some("prober")),
        "{}",
        r.text
    );
    let r = api.get(&format!("/api/v1/email-verifier?email=nobody@{domain}&max_duration=10"), &ws.api_key).await;
    assert_eq!(r.data()["status"], "invalid", "{}", r.text);
    drop(server);

    let wrong = enrich_server(
        Backend::Embedded,
        &[("LEADPUSH_SMTP_PROBE", prober.base.as_str()), ("LEADPUSH_PROBER_TOKEN", &"w".repeat(64))],
    );
    let (api, ws) = (wrong.api(), wrong.workspace());
    let domain = format!("{}.normal.test", tag("bad"));
    let r = api.get(&format!("/api/v1/email-verifier?email=alice@{domain}&max_duration=10"), &ws.api_key).await;
    let data = r.data();
    assert_eq!(data["status"], "unknown", "{}", r.text);
    assert!(data["reason"].as_str().unwrap().contains("refused our credential (401)"), "{data}");
}
