//! The system under test: the real `leadpush` binary of this build (perf profile), on a free
//! loopback port and a temporary data directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

fn binary() -> std::path::PathBuf {
    std::env::var_os("LEADPUSH_BIN").map(Into::into).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.with_file_name("leadpush")
    })
}

impl Server {
    pub fn start(extra: &[(&str, &str)]) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut env: Vec<(String, String)> = vec![
            ("LEADPUSH_DATA_DIR".into(), dir.path().display().to_string()),
            ("LEADPUSH_ALLOW_PRIVATE_TARGETS".into(), "1".into()),
            ("LEADPUSH_LOG".into(), "error".into()),
            ("LEADPUSH_STORE".into(), "sqlite".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0", "--no-demo", "--exit-on-stdin-close"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {} (build it with `make bench`)", binary().display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).context("server did not start")?;
            if let Some(rest) = line.strip_prefix("Leadpush listening on ") {
                let base = rest.split_whitespace().next().unwrap_or_default().to_owned();
                return Ok(Server { child, base, env, _dir: dir });
            }
        }
    }

    pub fn admin(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = Command::new(binary()).args(args).envs(self.env.iter().map(|(k, v)| (k, v))).output()?;
        if !out.status.success() {
            bail!("leadpush {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// A workspace with an API key and a webhook token, and one webhook campaign.
    pub async fn tenant(&self, http: &reqwest::Client) -> anyhow::Result<Tenant> {
        let ws = self.admin(&["admin", "workspace", "create", "--name", "bench"])?;
        let workspace_id = ws["workspace_id"].as_str().context("workspace id")?.to_owned();
        let api_key = ws["api_key"].as_str().context("api key")?.to_owned();
        let token = self.admin(&["admin", "webhook-token", "create", "--workspace", &workspace_id])?;
        let token = token["token"].as_str().context("token")?.to_owned();
        let body = serde_json::json!({"name": "bench", "lead_source": "webhook"});
        let (_, created) = post_json(http, &format!("{}/api/v1/campaigns", self.base), &api_key, &body).await?;
        let campaign_id = created["data"]["id"].as_str().context("campaign id")?.to_owned();
        Ok(Tenant { api_key, token, campaign_id })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Tenant {
    pub api_key: String,
    pub token: String,
    pub campaign_id: String,
}

/// A 1000-lead ingest body: realistic fields, about 230 bytes a lead.
pub fn ingest_body(campaign_id: &str, key: &str, n: usize) -> Vec<u8> {
    let leads: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "campaign_id": campaign_id, "name": format!("Lead {i}"), "email": format!("lead{i}@example.com"),
                "company": "Example Corp", "position": "Head of Growth", "linkedin": format!("https://www.linkedin.com/in/lead-{i}"),
                "score": i % 100, "signal_type": "hiring", "industry": "software"
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"idempotency_key": key, "leads": leads})).unwrap_or_default()
}

/// POSTs JSON with an API key; returns the status and the parsed answer.
pub async fn post_json(http: &reqwest::Client, url: &str, api_key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let response = http
        .post(url)
        .header("x-satellyte-api-key", api_key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?)
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

impl Server {
    /// Resident memory of the server process now (VmRSS), in MB.
    pub fn rss_mb(&self) -> f64 {
        proc_status_kb(self.child.id(), "VmRSS:") as f64 / 1024.0
    }

    /// Peak resident memory of the server process so far (VmHWM), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        proc_status_kb(self.child.id(), "VmHWM:") as f64 / 1024.0
    }

    /// Stores `n` leads through the inbound webhook; returns their ids.
    pub async fn ingest(
        &self,
        http: &reqwest::Client,
        tenant: &Tenant,
        key: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let response = http
            .post(format!("{}/api/v1/webhook/leads", self.base))
            .header("authorization", format!("Bearer {}", tenant.token))
            .header("content-type", "application/json")
            .body(ingest_body(&tenant.campaign_id, key, n))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
        let body: Value = serde_json::from_slice(&response.bytes().await?)?;
        Ok(body["data"]["lead_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// A loopback receiver answering 200 at once; counts requests and bytes.
pub async fn sink() -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        let _ = body.len();
        "{\"ok\":true}"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// The median of some samples (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
