//! The black-box harness: the real `leadpush` binary on a free loopback port, on the
//! embedded store or on DynamoDB + SQS (the moto server `make test` starts), plus an HTTP
//! client and local receivers. Every wait is bounded; nothing sleeps for a fixed time.

// Used by the outbound-delivery suites.
#[allow(dead_code)]
pub mod fakes;
#[allow(dead_code)]
pub mod mail;
#[allow(dead_code)]
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_leadpush");
pub const MOTO_ENV: &str = "LEADPUSH_TEST_MOTO_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

pub struct Server {
    child: Child,
    pub base: String,
    pub banner: String,
    env: Vec<(String, String)>,
    /// Always `Some` while the server is alive; taken over by [`Server::restart`].
    dir: Option<tempfile::TempDir>,
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn aws_env() -> Vec<(String, String)> {
    let url = std::env::var(MOTO_ENV)
        .unwrap_or_else(|_| panic!("{MOTO_ENV} is not set: run the suite with `make test`, which starts moto"));
    [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Runs the binary to completion with the given environment.
fn run(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).envs(env.iter().map(|(k, v)| (k, v))).output().expect("run leadpush")
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[], false)
    }

    /// Starts a server; `extra` environment overrides the test defaults.
    pub fn start_with(backend: Backend, extra: &[(&str, &str)], demo: bool) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env: Vec<(String, String)> = vec![
            ("LEADPUSH_DATA_DIR".into(), dir.path().display().to_string()),
            ("LEADPUSH_ALLOW_PRIVATE_TARGETS".into(), "1".into()),
            ("LEADPUSH_WEBHOOK_RETRY_SCHEDULE".into(), "50ms,100ms,200ms".into()),
            ("LEADPUSH_LOG".into(), "warn".into()),
            ("LEADPUSH_STORE".into(), "sqlite".into()),
        ];
        if backend == Backend::Aws {
            env.extend(aws_env());
            let table = unique("bb");
            let out = run(&env, &["init-aws", "--table", &table, "--queue", &unique("bbq"), "--max-receives", "3"]);
            assert!(out.status.success(), "init-aws failed: {}", String::from_utf8_lossy(&out.stderr));
            let created: Value = serde_json::from_slice(&out.stdout).expect("init-aws prints JSON");
            env.push(("LEADPUSH_STORE".into(), "dynamodb".into()));
            env.push(("LEADPUSH_TABLE".into(), table));
            env.push(("LEADPUSH_QUEUE_URL".into(), created["queue_url"].as_str().unwrap().to_owned()));
            env.push(("LEADPUSH_KMS_KEY_ID".into(), created["kms_key_id"].as_str().unwrap().to_owned()));
        }
        for (k, v) in extra {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        Self::spawn(env, dir, demo)
    }

    fn spawn(env: Vec<(String, String)>, dir: tempfile::TempDir, demo: bool) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .expect("log file");
        let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--workers", "4", "--exit-on-stdin-close"];
        if !demo {
            args.push("--no-demo");
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn leadpush serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut banner = String::new();
        let base = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Leadpush listening on ") {
                        break rest.split_whitespace().next().unwrap().to_owned();
                    }
                    banner.push_str(&line);
                    banner.push('\n');
                }
                Err(_) => {
                    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                    panic!("server did not start within 60 s; log:\n{log}");
                }
            }
        };
        Server { child, base, banner, env, dir: Some(dir) }
    }

    /// Stops the server gracefully and starts it again on the same store and settings.
    pub fn restart(mut self) -> Server {
        let dir = self.dir.take().expect("data dir");
        let env = std::mem::take(&mut self.env);
        let status = self.stop();
        assert!(status.success(), "graceful stop failed: {status:?}");
        Self::spawn(env, dir, false)
    }

    /// The embedded store's directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("data dir").path()
    }

    /// What the server has written to its log so far.
    pub fn log(&self) -> String {
        let dir = self.dir.as_ref().expect("data dir");
        std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `leadpush <args>` against this server's store, as a CSM would.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        run(&self.env, args)
    }

    /// Runs an admin command that must succeed and print JSON.
    pub fn admin(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.status.success(), "leadpush {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("leadpush {args:?} printed no JSON ({e})"))
    }

    /// A new workspace with an API key (and no webhook token yet).
    pub fn workspace(&self) -> Workspace {
        let created = self.admin(&["admin", "workspace", "create", "--name", "Test workspace"]);
        Workspace {
            id: created["workspace_id"].as_str().unwrap().to_owned(),
            api_key: created["api_key"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates the organisation's webhook token, as the CSM does.
    pub fn webhook_token(&self, workspace: &Workspace) -> String {
        let created = self.admin(&["admin", "webhook-token", "create", "--workspace", &workspace.id]);
        created["token"].as_str().unwrap().to_owned()
    }

    pub fn api(&self) -> Api {
        leadpush::support::tls::install();
        Api { base: self.base.clone(), http: reqwest::Client::new() }
    }

    /// Shuts down as on SIGTERM (by closing stdin) and waits, bounded.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not stop within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One long-lived server per backend, shared by tests that need no special configuration
/// (each test uses its own workspace). It exits when the test process does.
pub fn shared(backend: Backend) -> &'static Server {
    static EMBEDDED: OnceLock<Server> = OnceLock::new();
    static AWS: OnceLock<Server> = OnceLock::new();
    match backend {
        Backend::Embedded => EMBEDDED.get_or_init(|| Server::start(backend)),
        Backend::Aws => AWS.get_or_init(|| Server::start(backend)),
    }
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: String,
    pub api_key: String,
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {}", self.text))
    }

    /// The `id` of an error in Hunter's shape (`/v2/...`): `{"errors": [{"id", "code", "details"}]}`,
    /// checking that shape and that `code` is the status.
    pub fn hunter_error_id(&self) -> &str {
        let errors = self.body["errors"].as_array().unwrap_or_else(|| panic!("not Hunter's error body: {}", self.text));
        assert_eq!(errors.len(), 1, "{}", self.text);
        assert_eq!(errors[0]["code"].as_u64(), Some(u64::from(self.status)), "{}", self.text);
        assert!(errors[0]["details"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.text);
        assert!(self.body.get("error").is_none(), "{}", self.text);
        errors[0]["id"].as_str().unwrap_or_else(|| panic!("no id: {}", self.text))
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

pub enum Auth<'a> {
    None,
    Key(&'a str),
    Bearer(&'a str),
}

impl Api {
    pub async fn send(&self, method: &str, path: &str, auth: Auth<'_>, body: Option<&Value>) -> Resp {
        let mut headers = Vec::new();
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        self.raw(method, path, auth, &headers, bytes).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base)).timeout(Duration::from_secs(60));
        request = match auth {
            Auth::None => request,
            Auth::Key(key) => request.header("X-Satellyte-API-Key", key),
            Auth::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
        };
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text, headers }
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.send("GET", path, Auth::Key(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Resp {
        self.send("POST", path, Auth::Key(key), Some(body)).await
    }

    /// POST without a body (actions such as activate).
    pub async fn act(&self, path: &str, key: &str) -> Resp {
        self.send("POST", path, Auth::Key(key), None).await
    }

    pub async fn ingest(&self, token: &str, body: &Value) -> Resp {
        self.send("POST", "/api/v1/webhook/leads", Auth::Bearer(token), Some(body)).await
    }

    /// Creates a campaign and returns its id.
    pub async fn campaign(&self, key: &str, name: &str, source: &str) -> String {
        let r = self
            .post(
                "/api/v1/campaigns",
                key,
                &serde_json::json!({"name": name, "type": "standard", "lead_source": source}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.data()["id"].as_str().unwrap().to_owned()
    }
}

/// The first and the longest pause between two polls of [`eventually`].
const FIRST_POLL_PAUSE: Duration = Duration::from_millis(25);
const LONGEST_POLL_PAUSE: Duration = Duration::from_millis(400);

/// Polls `check` until it returns `Some`, for at most `limit`. The pause between polls
/// doubles up to [`LONGEST_POLL_PAUSE`]: the suite's tests share one moto server and the
/// shared servers' dispatchers, so tests polling every 25 ms for seconds took most of the
/// CPU that the work they wait for needed (the suite ran about a third longer).
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = FIRST_POLL_PAUSE;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(LONGEST_POLL_PAUSE);
    }
}

/// Declares each test once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::harness::Backend::Embedded).await }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::harness::Backend::Aws).await }
            )*
        }
    };
}

/// Checks a Standard Webhooks signature independently of Leadpush's own code: HMAC-SHA256
/// of "id.timestamp.body" keyed with the base64 part of `whsec_...`, any `v1,` entry.
pub fn signature_verifies(secret: &str, request: &receiver::Recorded) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let (Some(id), Some(ts), Some(header)) =
        (request.header("webhook-id"), request.header("webhook-timestamp"), request.header("webhook-signature"))
    else {
        return false;
    };
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|s| s == expected)
}
