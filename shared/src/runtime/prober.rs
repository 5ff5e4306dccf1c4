//! `leadpush prober`: the SMTP probe as an authenticated HTTP service, for a host with port
//! 25 open, a fixed IP and a PTR record (docs/enrichment.md, "Deploying the prober").
//! Lambda functions call it with `LEADPUSH_SMTP_PROBE=https://...` and the same token.
//!
//! - `POST /v1/probe` (bearer token): `service::ProbeRequest` in, `service::ProbeEvidence` out.
//! - `GET /healthz`: `ok`, no token (for load balancers and monitors).
//!
//! The token is compared in constant time and never logged. It listens on plain HTTP: TLS
//! is terminated in front of it (Caddy, nginx, a load balancer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::config::{Config, MIN_PROBER_TOKEN, ProbeMode};
use crate::outbound::probing::Engine;
use crate::outbound::probing::service::{self, ProbeRequest};

#[derive(Debug, Clone)]
pub struct ProberOptions {
    pub addr: SocketAddr,
    /// The name sent in EHLO: this host's PTR name, which resolves back to its address.
    pub helo: String,
    /// The reverse path in MAIL FROM (empty: the null sender).
    pub mail_from: String,
    pub exit_on_stdin_close: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("prober: {0}")]
    Io(#[from] std::io::Error),
}

struct Prober {
    engine: Engine,
    /// SHA-256 of the token: compared in constant time, the same length whatever is sent.
    token_hash: [u8; 32],
    allow_private: bool,
}

fn hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Checks the options and the token and builds the prober's engine (always `direct`: it is
/// the host that has port 25).
fn prober(config: &Config, token: Option<String>, options: &ProberOptions) -> Result<Prober, ProberError> {
    let token = token.ok_or_else(|| {
        ProberError::Config("set LEADPUSH_PROBER_TOKEN or LEADPUSH_PROBER_TOKEN_FILE: callers must present it".into())
    })?;
    if token.len() < MIN_PROBER_TOKEN {
        return Err(ProberError::Config(format!(
            "the prober token must be at least {MIN_PROBER_TOKEN} characters (e.g. `openssl rand -hex 32`)"
        )));
    }
    let helo = options.helo.trim();
    if helo.is_empty() || helo == "localhost" || !helo.contains('.') {
        return Err(ProberError::Config(
            "--helo must be this host's fully qualified name (its PTR record, resolving back to its IP): \
             mail servers refuse or distrust `localhost`"
                .into(),
        ));
    }
    let mut enrich = config.enrich.clone();
    enrich.probe = ProbeMode::Direct;
    enrich.helo_name = helo.to_owned();
    enrich.mail_from = options.mail_from.trim().to_owned();
    Ok(Prober {
        engine: Engine::new(enrich),
        token_hash: hash(token.as_bytes()),
        allow_private: config.allow_private_targets,
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message.into()}}))).into_response()
}

fn authorized(prober: &Prober, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    !given.is_empty() && bool::from(hash(given.trim().as_bytes()).ct_eq(&prober.token_hash))
}

async fn probe(State(prober): State<Arc<Prober>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&prober, &headers) {
        tracing::warn!("probe refused: missing or wrong bearer token");
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return response;
    }
    let request: ProbeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not a probe request: {e}"));
        }
    };
    let started = Instant::now();
    match service::run(&prober.engine, prober.allow_private, &request).await {
        Ok(evidence) => {
            tracing::info!(
                domain = %evidence.domain,
                addresses = request.addresses.len(),
                host = evidence.report.host.as_deref().unwrap_or(""),
                failure = evidence.report.failure.as_deref().unwrap_or(""),
                ms = started.elapsed().as_millis() as u64,
                "probe"
            );
            Json(evidence).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
    }
}

/// The prober's routes on `prober`'s state.
fn router(prober: Prober) -> Router {
    Router::new()
        .route("/v1/probe", post(probe))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(Arc::new(prober))
}

/// Runs the prober until a signal (or, with `exit_on_stdin_close`, standard input closes).
pub async fn run(config: Config, token: Option<String>, options: ProberOptions) -> Result<(), ProberError> {
    let prober = prober(&config, token, &options)?;
    let listener =
        TcpListener::bind(options.addr).await.map_err(|source| ProberError::Bind { addr: options.addr, source })?;
    let local = listener.local_addr()?;
    let shutdown = super::serve::shutdown_signal(options.exit_on_stdin_close)?;
    super::serve::say(format_args!(
        "Leadpush prober listening on http://{local} (HELO {}, MAIL FROM <{}>, {} sessions at once and {} a minute per mail server IP)",
        prober.engine.config.helo_name,
        prober.engine.config.mail_from,
        prober.engine.config.smtp_per_host,
        prober.engine.config.smtp_per_host_per_minute,
    ));
    let limits = super::listener::Limits {
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        max_connections: config.max_connections,
    };
    super::listener::serve(listener, router(prober), limits, shutdown, Duration::from_secs(30)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(helo: &str) -> ProberOptions {
        ProberOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            helo: helo.into(),
            mail_from: String::new(),
            exit_on_stdin_close: false,
        }
    }

    #[test]
    fn the_prober_needs_a_long_token_and_a_real_helo_name() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let long = Some("t".repeat(MIN_PROBER_TOKEN));
        assert!(prober(&ctx.config, None, &options("probe.example.com")).is_err());
        assert!(prober(&ctx.config, Some("short".into()), &options("probe.example.com")).is_err());
        assert!(prober(&ctx.config, long.clone(), &options("localhost")).is_err());
        let built = prober(&ctx.config, long, &options("probe.example.com")).unwrap();
        assert_eq!(built.engine.config.probe, ProbeMode::Direct);
        let mut headers = HeaderMap::new();
        assert!(!authorized(&built, &headers));
        headers.insert(header::AUTHORIZATION, format!("Bearer {}", "t".repeat(MIN_PROBER_TOKEN)).parse().unwrap());
        assert!(authorized(&built, &headers));
        headers.insert(header::AUTHORIZATION, format!("Bearer {}", "t".repeat(MIN_PROBER_TOKEN + 1)).parse().unwrap());
        assert!(!authorized(&built, &headers));
    }

    /// A domain with more addresses than one request takes: the probe mode splits them,
    /// asks the catch-all question once, and every address gets the server's own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_prober_mode_splits_a_large_domain_into_requests_the_prober_takes() {
        use crate::testing::mail::{dns_server, mail_context, smtp_server};
        let dns = dns_server("big.test").await;
        let (port, log) = smtp_server(std::time::Duration::ZERO, |address, _| {
            if address.starts_with("user") { "250 2.1.5 OK" } else { "550 5.1.1 no such user" }.into()
        })
        .await;
        let (ctx, _dir) = mail_context(dns, port, &[]);
        let token = "p".repeat(MIN_PROBER_TOKEN);
        let served = prober(&ctx.config, Some(token.clone()), &options("probe.example.com")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(served)).await });
        let mut config = ctx.config.enrich.clone();
        config.probe = ProbeMode::Prober(crate::config::ProberEndpoint { url, token });
        let caller = Engine::new(config);
        let addresses: Vec<String> = (0..150)
            .map(|n| if n % 3 == 0 { format!("nobody{n}@big.test") } else { format!("user{n}@big.test") })
            .collect();
        let hosts = ["mx.big.test".to_owned()];
        let report = crate::outbound::probing::smtp::probe_domain(
            &caller,
            true,
            &hosts,
            Some("zzzzzzzzzzzzzzzzzzzz@big.test"),
            &addresses,
        )
        .await;
        assert_eq!((report.rcpts.len(), report.catch_all, report.failure.as_deref()), (150, Some(false), None));
        for (address, rcpt) in addresses.iter().zip(&report.rcpts) {
            let accepted = *rcpt == crate::outbound::probing::smtp::Rcpt::Accepted;
            assert_eq!(accepted, address.starts_with("user"), "{address}: {rcpt:?}");
        }
        let asked = log.rcpts();
        assert_eq!((asked.len(), asked.iter().filter(|a| a.starts_with("zzz")).count()), (151, 1));
    }
}
