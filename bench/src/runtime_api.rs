//! A local Lambda Runtime API: the three endpoints a custom runtime polls and answers
//! (`/runtime/invocation/next`, `/{id}/response`, `/{id}/error`, plus `/init/error`).
//! `make bench` and `make invoke` run the real bootstrap against it, so a function can be
//! timed and invoked on this machine without Docker or `sam local`; `tests/lambda_runtime.rs`
//! (in `make test`) runs `leadpush::runtime::lambda::run_http` against it in process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a bootstrap may take to reach its first poll, and an invocation to answer.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the function answered for one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Invocation {
    id: String,
    event: Bytes,
    done: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<String>>,
}

/// The Runtime API, serving on a free loopback port: events go in through `invoke`. A
/// runtime polls it at `addr` (a bootstrap process as `Instance`, or
/// `leadpush::runtime::lambda::run_http` in process as `tests/lambda_runtime.rs` does).
pub struct RuntimeApi {
    pub addr: SocketAddr,
    send: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
    next_id: u64,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0")?).await
    }

    /// On a listener bound beforehand (so its address can be known before a runtime exists).
    pub async fn start_on(listener: std::net::TcpListener) -> anyhow::Result<Self> {
        let (send, recv) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(recv),
            waiting: Mutex::new(HashMap::new()),
            first_poll: watch::channel(None).0,
            init_error: watch::channel(None).0,
        });
        let addr = serve(listener, shared.clone())?;
        Ok(Self { addr, send, shared, next_id: 0 })
    }
}

/// The Lambda variables a runtime polling the Runtime API at `addr` reads at start.
pub fn lambda_env(addr: SocketAddr, function: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
    ]
}

impl RuntimeApi {
    /// Waits until the runtime polls for the first time (`Ok(instant)`), reports an init
    /// error (`Err`), or `check` (called every 20 ms, e.g. whether a process died) fails.
    pub async fn wait_first_poll(&self, mut check: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Instant> {
        let mut first_poll = self.shared.first_poll.subscribe();
        let mut init_error = self.shared.init_error.subscribe();
        let deadline = tokio::time::sleep(INIT_TIMEOUT);
        tokio::pin!(deadline);
        loop {
            if let Some(at) = *first_poll.borrow() {
                return Ok(at);
            }
            check()?;
            tokio::select! {
                _ = first_poll.changed() => {}
                _ = init_error.changed() => {
                    let error = init_error.borrow().clone().unwrap_or_default();
                    anyhow::bail!("init error reported: {error}");
                }
                // The process may die without polling: look again shortly.
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = &mut deadline => anyhow::bail!("no poll within {INIT_TIMEOUT:?}"),
            }
        }
    }

    /// Sends one event and waits for the function's answer (`None` after `INVOKE_TIMEOUT`).
    pub async fn invoke(&mut self, event: &Value) -> anyhow::Result<Option<Outcome>> {
        self.next_id += 1;
        let (done, answer) = oneshot::channel();
        let id = format!("00000000-0000-4000-8000-{:012}", self.next_id);
        self.send.send(Invocation { id, event: Bytes::from(serde_json::to_vec(event)?), done }).await?;
        match tokio::time::timeout(INVOKE_TIMEOUT, answer).await {
            Ok(Ok(outcome)) => Ok(Some(outcome)),
            Ok(Err(_)) => anyhow::bail!("the Runtime API dropped the invocation"),
            Err(_) => Ok(None),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // Unblock a handler still waiting in `/next`.
        self.shared.waiting.lock().map(|mut w| w.clear()).ok();
    }
}

/// One bootstrap process and the Runtime API it polls.
pub struct Instance {
    child: Child,
    api: RuntimeApi,
    log: PathBuf,
    /// From spawning the process to its first `/next` poll.
    pub init: Duration,
}

impl Instance {
    /// Spawns `bootstrap` with a Lambda-like environment (cleared, then the runtime's own
    /// variables and `env`), and waits for its first poll. Its stderr goes to `log`.
    pub async fn start(bootstrap: &Path, function: &str, env: &[(String, String)], log: &Path) -> anyhow::Result<Self> {
        let api = RuntimeApi::start().await?;
        let stderr = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(bootstrap)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(lambda_env(api.addr, function))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bootstrap.display()))?;
        let mut instance = Instance { child, api, log: log.to_owned(), init: Duration::ZERO };
        let child = &mut instance.child;
        let polled = instance
            .api
            .wait_first_poll(|| match child.try_wait()? {
                Some(status) => anyhow::bail!("exited during init ({status})"),
                None => Ok(()),
            })
            .await;
        match polled {
            Ok(at) => {
                instance.init = at - started;
                Ok(instance)
            }
            Err(e) => anyhow::bail!("{function}: {e}:\n{}", instance.log_tail()),
        }
    }

    /// Resident memory of the process now (Linux `/proc`), in MB.
    pub fn rss_mb(&self) -> anyhow::Result<f64> {
        rss_mb(self.child.id())
    }

    /// Sends one event and waits for the function's answer.
    pub async fn invoke(&mut self, event: &Value) -> anyhow::Result<Outcome> {
        match self.api.invoke(event).await? {
            Some(outcome) => Ok(outcome),
            None => {
                let exited = self.child.try_wait()?.map(|s| format!(" (exited: {s})")).unwrap_or_default();
                anyhow::bail!("no answer within {INVOKE_TIMEOUT:?}{exited}:\n{}", self.log_tail())
            }
        }
    }

    /// The last lines the function logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kb / 1024.0)
}

fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared);
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.send_if_modified(|at| {
        let first = at.is_none();
        if first {
            *at = Some(Instant::now());
        }
        first
    });
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now() + INVOKE_TIMEOUT;
    let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    if let Ok(mut waiting) = shared.waiting.lock() {
        waiting.insert(invocation.id.clone(), invocation.done);
    }
    let mut headers = HeaderMap::new();
    let header = |v: String| v.parse().unwrap_or_else(|_| axum::http::HeaderValue::from_static(""));
    headers.insert("lambda-runtime-aws-request-id", header(invocation.id));
    headers.insert("lambda-runtime-deadline-ms", header(deadline_ms.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:local".into()),
    );
    headers.insert("lambda-runtime-trace-id", header("Root=1-00000000-000000000000000000000000;Sampled=0".into()));
    headers.insert("content-type", header("application/json".into()));
    (headers, invocation.event).into_response()
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let waiter = shared.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match waiter {
        Some(done) => {
            let _ = done.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    finish(&shared, &id, Outcome::Response(json_or_text(&body)))
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    finish(&shared, &id, Outcome::Error(json_or_text(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.init_error.send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
