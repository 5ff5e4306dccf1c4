//! A real HTTP receiver on a free loopback port: records every request and answers with
//! scripted replies (status, body, headers, delay, or held until the test releases it), for
//! webhook and provider tests; and a port that accepts connections and closes them at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    /// Answer only once this gate opens (bounded by [`Gate::LIMIT`]).
    pub gate: Option<Gate>,
}

/// Holds the replies given it until the test opens it: an answer that cannot come before
/// a client's timeout however slow the machine, rather than one that is merely late.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    /// The longest a reply is held if the test never opens its gate (a failing test
    /// must not hang its receiver forever).
    pub const LIMIT: Duration = Duration::from_secs(120);

    /// Lets every held reply, and every later one, go.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let mut open = self.0.subscribe();
        let _ = tokio::time::timeout(Self::LIMIT, open.wait_for(|open| *open)).await;
    }
}

/// A closed gate.
impl Default for Gate {
    fn default() -> Gate {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Self {
        Reply {
            status,
            body: body.to_owned(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub fn ok() -> Self {
        Self::status(200, r#"{"ok":true}"#)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers only once `gate` opens.
    pub fn held_by(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }
}

#[derive(Default)]
struct Inner {
    recorded: Vec<Recorded>,
    script: VecDeque<Reply>,
}

/// Computes the reply to a request (a fake provider that checks what it was sent).
pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    default: Reply,
    respond: Option<Responder>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    _task: tokio::task::JoinHandle<()>,
}

async fn record(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let reply = {
        let mut inner = shared.inner.lock().unwrap();
        inner.recorded.push(recorded.clone());
        inner.script.pop_front()
    };
    let reply = reply.unwrap_or_else(|| match &shared.respond {
        Some(respond) => respond(&recorded),
        None => shared.default.clone(),
    });
    if let Some(gate) = &reply.gate {
        gate.passed().await;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

impl Receiver {
    /// Starts a receiver answering `default` unless a scripted reply is queued.
    pub async fn start(default: Reply) -> Receiver {
        Self::serve(default, None).await
    }

    /// Starts a receiver whose replies `respond` computes, unless a scripted reply is queued.
    pub async fn start_fn(respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Receiver {
        Self::serve(Reply::ok(), Some(Arc::new(respond))).await
    }

    async fn serve(default: Reply, respond: Option<Responder>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared { inner: Arc::default(), default, respond };
        let app = Router::new().fallback(record).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared, _task: task }
    }

    /// The next requests get these replies, in order; then the default again.
    pub fn script(&self, replies: Vec<Reply>) {
        self.shared.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.inner.lock().unwrap().recorded.clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Recorded> {
        super::eventually(limit, || async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} requests within {limit:?}, got {}", self.requests().len()))
    }
}

/// A loopback port that accepts every connection and closes it at once: a receiver that is
/// down, as clients see it (the connection closed before any answer). Unlike a port bound
/// and released, it stays ours while the test runs, so no other test's server can take it
/// meanwhile. Dropping it stops accepting and frees the port.
pub struct ClosingPort {
    pub addr: std::net::SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ClosingPort {
    pub async fn start() -> ClosingPort {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind closing port");
        let addr = listener.local_addr().expect("a bound address");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            // Each connection is dropped as soon as it is accepted: nothing is read or held.
            while let Ok((connection, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(connection);
            }
        });
        ClosingPort { addr, accepted, task }
    }

    /// An http URL of this port with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted (and closed) so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ClosingPort {
    fn drop(&mut self) {
        self.task.abort();
    }
}
