//! Local DNS, SMTP and SOCKS5 servers for the email verifier (`scripts/enrich_fakes.py`,
//! dnslib + aiosmtpd), one process per test binary, and servers configured to use them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::{Backend, Server};

pub struct MailFakes {
    _child: Mutex<Child>,
    pub dns: String,
    pub smtp_port: u16,
    pub socks5: String,
    control: String,
}

fn python() -> String {
    if let Ok(python) = std::env::var("LEADPUSH_TEST_PYTHON") {
        return python;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "no Python with dnslib and aiosmtpd: run the suite with `make test` (it creates .venv)"
    );
    venv.to_owned()
}

impl MailFakes {
    fn start() -> MailFakes {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/enrich_fakes.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/enrich_fakes.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the fakes' addresses");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the DNS/SMTP fakes did not start (printed {line:?}: {e})"));
        MailFakes {
            dns: info["dns"].as_str().unwrap().to_owned(),
            smtp_port: info["smtp_port"].as_u64().unwrap() as u16,
            socks5: info["socks5"].as_str().unwrap().to_owned(),
            control: info["control"].as_str().unwrap().to_owned(),
            _child: Mutex::new(child),
        }
    }

    /// DNS queries by `"name TYPE"`, SMTP connections and RCPTs by server, catch-all probes
    /// by domain, SOCKS5 connections.
    pub async fn stats(&self) -> Value {
        let text = reqwest::get(format!("{}/stats", self.control)).await.expect("fakes' stats").text().await.unwrap();
        serde_json::from_str(&text).expect("stats JSON")
    }

    /// The environment that points a server at these fakes.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LEADPUSH_DNS_SERVERS", self.dns.clone()),
            ("LEADPUSH_SMTP_PORT", self.smtp_port.to_string()),
            ("LEADPUSH_SMTP_PROBE", "direct".into()),
            ("LEADPUSH_SMTP_TIMEOUT_MS", "4000".into()),
            // Generous: a loaded machine must not turn one lookup into a retried one.
            ("LEADPUSH_DNS_TIMEOUT_MS", "10000".into()),
            ("LEADPUSH_SMTP_HELO", "verifier.leadpush.test".into()),
            ("LEADPUSH_LOG", "info".into()),
        ]
    }
}

/// The fakes of this test binary (they exit when it does: their stdin closes).
pub fn fakes() -> &'static MailFakes {
    static FAKES: OnceLock<MailFakes> = OnceLock::new();
    FAKES.get_or_init(MailFakes::start)
}

/// A server on `backend` pointed at the fakes, with `extra` settings on top.
pub fn enrich_server(backend: Backend, extra: &[(&str, &str)]) -> Server {
    let env = fakes().env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Server::start_with(backend, &all, false)
}

/// One such server per backend, shared by the enrichment tests.
pub fn shared_enrich(backend: Backend) -> &'static Server {
    static EMBEDDED: OnceLock<Server> = OnceLock::new();
    static AWS: OnceLock<Server> = OnceLock::new();
    match backend {
        Backend::Embedded => EMBEDDED.get_or_init(|| enrich_server(backend, &[])),
        Backend::Aws => AWS.get_or_init(|| enrich_server(backend, &[])),
    }
}

/// A `leadpush prober` pointed at the fakes (its stdin held: it exits when this is dropped).
pub struct Prober {
    child: Child,
    pub base: String,
    pub token: String,
}

impl Prober {
    /// Starts a prober with `extra` settings on top of the fakes' environment.
    pub fn start(extra: &[(&str, &str)]) -> Prober {
        let token =
            format!("{:064x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        let mut env: Vec<(String, String)> = fakes().env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.push(("LEADPUSH_ALLOW_PRIVATE_TARGETS".into(), "1".into()));
        env.push(("LEADPUSH_PROBER_TOKEN".into(), token.clone()));
        env.push(("LEADPUSH_LOG".into(), "warn".into()));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut child = Command::new(super::BIN)
            .args(["prober", "--addr", "127.0.0.1:0", "--helo", "prober.leadpush.test", "--exit-on-stdin-close"])
            .env_remove("LEADPUSH_SMTP_HELO")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn leadpush prober");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the prober's banner");
        let base = line
            .strip_prefix("Leadpush prober listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the prober did not start (printed {line:?})"))
            .to_owned();
        Prober { child, base, token }
    }

    /// POSTs a probe request with `token` (none: no Authorization header).
    pub async fn probe(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        leadpush::support::tls::install();
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/probe", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the prober answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
