//! The HTTP listener of `leadpush serve`, hardened against slow and numerous clients
//! (Lambda sits behind API Gateway and never sees them):
//! - a header-read timeout (also the keep-alive idle timeout) and a body-read deadline;
//! - a cap on open connections. At the cap a new connection evicts the oldest one that is
//!   not inside a request, else the oldest inside an unprotected request. Protected (never
//!   evicted) are connections serving `/healthz`, and those whose request has
//!   authenticated (a real credential, not merely a credential header), up to a share of
//!   the cap per workspace ([`workspace_share`]): one workspace's slow requests beyond it
//!   are shed like anyone's. When nothing can be evicted, a small reserve of connections
//!   beyond the cap still admits newcomers (a `/healthz` probe among them);
//! - freed memory handed back to the OS once a flood of connections is over.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::api::auth::OnAuthenticated;

/// Largest request head (request line + headers) a client may send.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Connections admitted beyond the cap when every connection is protected.
const RESERVE: usize = 16;

/// How many protected connections one workspace may hold: a sixteenth of the cap, at
/// least 4, so at least 16 workspaces must saturate their shares to fill the cap.
pub fn workspace_share(max_connections: usize) -> usize {
    (max_connections / 16).max(4)
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

use crate::api::json::BodyTimedOut;

/// A request body that fails with [`BodyTimedOut`] once `deadline` passes.
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a connection is, for choosing whom to evict at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for (the rest of) a request head: the first, or the next on keep-alive.
    Waiting,
    /// Inside a request that has not (yet) authenticated, or whose workspace is over its share.
    Anonymous,
    /// Inside `/healthz`: never evicted.
    Protected,
}

#[derive(Default)]
struct Registry {
    stop: HashMap<u64, Arc<Notify>>,
    waiting: BTreeSet<u64>,
    anonymous: BTreeSet<u64>,
    /// Connections protected because their request authenticated, by workspace.
    claimed: HashMap<u64, String>,
    per_workspace: HashMap<String, usize>,
    /// Most connections open at once since memory was last handed back.
    peak: usize,
}

impl Registry {
    /// Takes `id` out of every stage, releasing its workspace's share.
    fn forget(&mut self, id: u64) {
        self.waiting.remove(&id);
        self.anonymous.remove(&id);
        if let Some(workspace) = self.claimed.remove(&id)
            && let Some(count) = self.per_workspace.get_mut(&workspace)
        {
            *count -= 1;
            if *count == 0 {
                self.per_workspace.remove(&workspace);
            }
        }
    }
}

#[derive(Default)]
struct Connections {
    inner: Mutex<Registry>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection, evicting another if at `max`; `None` when all are
    /// protected and the reserve is used up too.
    fn admit(&self, id: u64, max: usize) -> Option<Arc<Notify>> {
        let mut reg = self.lock();
        if reg.stop.len() >= max {
            match reg.waiting.first().copied().or_else(|| reg.anonymous.first().copied()) {
                Some(victim) => {
                    reg.forget(victim);
                    if let Some(stop) = reg.stop.remove(&victim) {
                        stop.notify_one();
                    }
                }
                None if reg.stop.len() < max + RESERVE => {}
                None => return None,
            }
        }
        let stop = Arc::new(Notify::new());
        reg.stop.insert(id, stop.clone());
        reg.waiting.insert(id);
        reg.peak = reg.peak.max(reg.stop.len());
        Some(stop)
    }

    fn set(&self, id: u64, stage: Stage) {
        let mut reg = self.lock();
        if !reg.stop.contains_key(&id) {
            return; // already evicted
        }
        reg.forget(id);
        match stage {
            Stage::Waiting => reg.waiting.insert(id),
            Stage::Anonymous => reg.anonymous.insert(id),
            Stage::Protected => false,
        };
    }

    /// The connection's request authenticated as `workspace`: protected while the
    /// workspace holds fewer than `share` protected connections.
    fn authenticated(&self, id: u64, workspace: &str, share: usize) {
        let mut reg = self.lock();
        if !reg.anonymous.contains(&id) || reg.per_workspace.get(workspace).copied().unwrap_or(0) >= share {
            return;
        }
        reg.anonymous.remove(&id);
        reg.claimed.insert(id, workspace.to_owned());
        *reg.per_workspace.entry(workspace.to_owned()).or_default() += 1;
    }

    fn remove(&self, id: u64) {
        let mut reg = self.lock();
        reg.stop.remove(&id);
        reg.forget(id);
    }

    fn open(&self) -> usize {
        self.lock().stop.len()
    }

    /// After a flood (many connections, now few) the allocator keeps their buffers;
    /// returns whether memory should be handed back now.
    fn flood_is_over(&self) -> bool {
        let mut reg = self.lock();
        let open = reg.stop.len();
        if reg.peak >= 256 && open <= reg.peak / 4 {
            reg.peak = open;
            return true;
        }
        false
    }
}

fn stage_of<B>(req: &http::Request<B>) -> Stage {
    if req.uri().path() == "/healthz" { Stage::Protected } else { Stage::Anonymous }
}

/// Raises this process's open-file limit to its hard limit, so the connection cap (not
/// the default of 1,024 descriptors) is what bounds connections. Returns the limit.
fn raise_fd_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: plain syscalls on a struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    None
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish (bounded by `drain`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    // Descriptors beyond connections: the SQLite files, the outbound client, logs.
    let max = match raise_fd_limit() {
        Some(fds) => limits.max_connections.min(fds.saturating_sub(128).max(16)),
        None => limits.max_connections,
    };
    let connections = Arc::new(Connections::default());
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let trimmer = tokio::spawn(trim_after_floods(connections.clone()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEAD_BYTES);
    tokio::pin!(shutdown);
    let mut next_id: u64 = 0;
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or similar: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let id = next_id;
        let Some(stop) = connections.admit(id, max) else {
            tracing::warn!(
                max,
                reserve = RESERVE,
                "connection refused: every connection is serving a protected request"
            );
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let conns = connections.clone();
        let body_timeout = limits.body_timeout;
        let share = workspace_share(max);
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            conns.set(id, stage_of(&req));
            let (mut parts, body) = req.into_parts();
            let claims = conns.clone();
            parts.extensions.insert(OnAuthenticated(Arc::new(move |workspace: &str| {
                claims.authenticated(id, workspace, share);
            })));
            let body =
                DeadlineBody { inner: body, sleep: Box::pin(tokio::time::sleep(body_timeout)), limit: body_timeout };
            let req = http::Request::from_parts(parts, Body::new(body));
            let app = app.clone();
            let conns = conns.clone();
            async move {
                let response = app.oneshot(req).await.unwrap_or_else(|never: Infallible| match never {});
                conns.set(id, Stage::Waiting);
                Ok::<_, Infallible>(response)
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut closing = closing_rx.clone();
        let registry = connections.clone();
        tasks.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.notified() => {} // evicted: dropping the connection closes it
                _ = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            registry.remove(id);
        });
        // Reap finished tasks so the set does not grow with every connection ever made.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let _ = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    trimmer.abort();
    Ok(())
}

async fn trim_after_floods(connections: Arc<Connections>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if connections.flood_is_over() {
            crate::runtime::allocator::release_free_memory();
            tracing::info!(open = connections.open(), "connection flood over; freed memory returned to the OS");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_waiting_then_anonymous_connections_are_evicted_never_protected_ones() {
        let conns = Connections::default();
        let a = conns.admit(1, 3).unwrap();
        conns.admit(2, 3).unwrap();
        conns.admit(3, 3).unwrap();
        conns.set(1, Stage::Anonymous);
        conns.set(2, Stage::Protected);
        // 3 is waiting for its headers: it goes first, even though 1 is older.
        assert!(conns.admit(4, 3).is_some());
        assert_eq!(conns.open(), 3);
        conns.set(4, Stage::Protected);
        // Then the anonymous request.
        assert!(conns.admit(5, 3).is_some());
        assert!(tokio_test_notified(&a), "connection 1 was told to stop");
        conns.set(5, Stage::Protected);
        // Everyone is protected: the reserve admits newcomers, then they are refused.
        for id in 6..6 + RESERVE as u64 {
            assert!(conns.admit(id, 3).is_some());
            conns.set(id, Stage::Protected);
        }
        assert!(conns.admit(100, 3).is_none());
        conns.remove(2);
        assert!(conns.admit(100, 3).is_some());
    }

    /// One valid key's slow requests could otherwise fill every connection and refuse
    /// `/healthz`. A workspace is protected up to its share; beyond it, and before a
    /// request authenticates at all, its connections are shed like anyone's.
    #[test]
    fn one_workspace_cannot_hold_more_than_its_share_of_protected_connections() {
        let (max, share) = (8, 2);
        let conns = Connections::default();
        let mut stops = Vec::new();
        for id in 1..=max as u64 {
            stops.push(conns.admit(id, max).unwrap());
            conns.set(id, Stage::Anonymous);
            conns.authenticated(id, "ws_attacker", share);
        }
        // Two are protected; six are not, and newcomers evict them oldest first.
        for id in 100..106 {
            assert!(conns.admit(id, max).is_some(), "newcomer {id} admitted");
            conns.set(id, Stage::Protected); // `/healthz` probes, say
        }
        assert!(!tokio_test_notified(&stops[0]) && !tokio_test_notified(&stops[1]), "the share is kept");
        assert!(stops[2..].iter().all(|s| tokio_test_notified(s)), "the rest were shed");
        // Another workspace gets its own share.
        conns.admit(200, max + RESERVE).unwrap();
        conns.set(200, Stage::Anonymous);
        conns.authenticated(200, "ws_other", share);
        assert_eq!(conns.lock().per_workspace.get("ws_other"), Some(&1));
        // A finished request gives its share back.
        conns.set(1, Stage::Waiting);
        assert_eq!(conns.lock().per_workspace.get("ws_attacker"), Some(&1));
        assert_eq!(workspace_share(4096), 256);
        assert_eq!(workspace_share(20), 4);
    }

    fn tokio_test_notified(notify: &Notify) -> bool {
        let fut = std::pin::pin!(notify.notified());
        fut.poll(&mut Context::from_waker(std::task::Waker::noop())).is_ready()
    }
}
