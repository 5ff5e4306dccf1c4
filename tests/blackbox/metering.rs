//! Metering: per-workspace rate limits answered `429 rate_limited` with
//! `Retry-After` and `X-RateLimit-*`, monthly quotas (`429 quota_exceeded`, shown by the
//! Hunter-compatible `account` route), and the cap on addresses waiting in bulk jobs;
//! limits set per workspace by `leadpush admin workspace limits`, on both stores.

use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::{Auth, Backend, Resp, Server, Workspace, shared};

fn limits(server: &Server, ws: &Workspace, changes: &[&str]) -> Value {
    let mut args = vec!["admin", "workspace", "limits", "--workspace", ws.id.as_str()];
    for change in changes {
        args.extend(["--set", change]);
    }
    server.admin(&args)
}

fn header(r: &Resp, name: &str) -> Option<u64> {
    r.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

async fn rate_limits_refuse_with_429_and_headers_per_workspace(backend: Backend) {
    let server = shared(backend);
    let (api, ws, other) = (server.api(), server.workspace(), server.workspace());
    let set = limits(server, &ws, &["search.per_second=5", "search.per_minute=5"]);
    assert_eq!(set["limits"]["search"]["per_minute"], 5, "{set}");
    // Twelve calls span at most two minute windows: at most ten are admitted.
    let path = "/api/v1/phone-validator?phone=%2B14155552671";
    let (mut admitted, mut refused) = (0, Vec::new());
    for _ in 0..12 {
        let r = api.get(path, &ws.api_key).await;
        match r.status {
            200 => {
                admitted += 1;
                assert_eq!(header(&r, "x-ratelimit-limit"), Some(5), "{:?}", r.headers);
                assert!(header(&r, "x-ratelimit-remaining").is_some_and(|n| n < 5));
                assert!(header(&r, "x-ratelimit-reset").is_some_and(|s| (1..=60).contains(&s)));
            }
            429 => refused.push(r),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!((5..=10).contains(&admitted), "{admitted} admitted");
    let r = refused.first().expect("calls over the limit are refused");
    assert_eq!(r.error_code(), "rate_limited", "{}", r.text);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at most 5 search calls per"), "{message}");
    assert!(header(r, "retry-after").is_some_and(|s| (1..=60).contains(&s)), "{:?}", r.headers);
    assert_eq!(header(r, "x-ratelimit-remaining"), Some(0));
    // Hunter's path is the same route and the same count.
    let r = api
        .send("GET", &format!("/v2/phone-validator?phone=%2B14155552671&api_key={}", ws.api_key), Auth::None, None)
        .await;
    assert_eq!((r.status, r.hunter_error_id()), (429, "rate_limited"), "{}", r.text);
    // Another workspace is not limited by this one.
    let r = api.get(path, &other.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(header(&r, "x-ratelimit-limit"), Some(500), "the default: Hunter's 500 a minute");
    // Unmetered routes carry no rate-limit headers.
    let r = api.get("/api/v1/workspace", &ws.api_key).await;
    assert!(r.headers.get("x-ratelimit-limit").is_none());
}

async fn monthly_quotas_refuse_bulk_and_single_calls_and_the_account_shows_them(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    limits(server, &ws, &["verification.per_month=4", "max_queued_bulk_addresses=3"]);
    let bulk = |n: usize| json!({"emails": (0..n).map(|i| format!("not-an-address-{i}")).collect::<Vec<_>>()});
    let used = || async {
        let account = api.get("/api/v1/account", &ws.api_key).await;
        assert_eq!(account.status, 200, "{}", account.text);
        account.data()["requests"]["verifications"].clone()
    };
    // Each address is a verification: five do not fit a quota of four.
    let r = api.post("/api/v1/email-verifier/bulk", &ws.api_key, &bulk(5)).await;
    assert_eq!((r.status, r.error_code()), (429, "quota_exceeded"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("0 of 4 verification units"), "{}", r.text);
    assert_eq!(used().await, json!({"used": 0, "available": 4}));
    // Four fit the quota but not the queue cap of three: refused, and the quota given back.
    let r = api.post("/api/v1/email-verifier/bulk", &ws.api_key, &bulk(4)).await;
    assert_eq!((r.status, r.error_code()), (429, "bulk_queue_full"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("limit of 3"), "{}", r.text);
    assert_eq!(header(&r, "retry-after"), Some(60));
    assert_eq!(used().await, json!({"used": 0, "available": 4}), "refused work uses no quota");
    // Three fit both.
    let r = api.post("/api/v1/email-verifier/bulk", &ws.api_key, &bulk(3)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(used().await, json!({"used": 3, "available": 4}));
    // Hunter's account route, with the key as a parameter.
    let r = api.send("GET", &format!("/v2/account?api_key={}", ws.api_key), Auth::None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.data()["team_id"].as_str(), r.data()["plan_name"].as_str()), (Some(ws.id.as_str()), Some("custom")));
    assert!(r.data()["reset_date"].as_str().unwrap().ends_with("-01"), "{}", r.text);
    assert_eq!(r.data()["limits"]["verification"]["per_minute"], 300, "{}", r.text);
    assert_eq!(r.data()["limits"]["max_queued_bulk_addresses"], 3, "{}", r.text);
}

async fn single_verifications_stop_at_the_monthly_quota(backend: Backend) {
    let server = shared(backend);
    let (api, ws) = (server.api(), server.workspace());
    limits(server, &ws, &["verification.per_month=2", "search.per_month=1"]);
    for i in 0..2 {
        let r = api.get(&format!("/api/v1/email-verifier?email=not-an-address-{i}"), &ws.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = api.get("/api/v1/email-verifier?email=not-an-address-9", &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (429, "quota_exceeded"), "{}", r.text);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2 of 2 verification units"), "{message}");
    // Retry-After runs to the 1st of next month, 00:00 UTC: at most 31 days.
    assert!(header(&r, "retry-after").is_some_and(|s| (1..=31 * 86_400).contains(&s)), "{:?}", r.headers);
    let account = api.get("/api/v1/account", &ws.api_key).await;
    assert_eq!(account.data()["requests"]["verifications"], json!({"used": 2, "available": 2}));
    // Searches are a quota of their own.
    let r = api.get("/api/v1/phone-validator?phone=%2B14155552671", &ws.api_key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The email count uses none: it answers once the search quota is used up, and counts nothing.
    let r = api.get("/api/v1/phone-validator?phone=%2B14155552671", &ws.api_key).await;
    assert_eq!((r.status, r.error_code()), (429, "quota_exceeded"), "{}", r.text);
    let r = api.get("/api/v1/email-count?domain=acme.com", &ws.api_key).await;
    assert_eq!((r.status, r.data()["total"].as_u64()), (200, Some(0)), "{}", r.text);
    let account = api.get("/api/v1/account", &ws.api_key).await;
    assert_eq!(account.data()["requests"]["searches"], json!({"used": 1, "available": 1}));
}

both_backends!(
    rate_limits_refuse_with_429_and_headers_per_workspace,
    monthly_quotas_refuse_bulk_and_single_calls_and_the_account_shows_them,
    single_verifications_stop_at_the_monthly_quota,
);
