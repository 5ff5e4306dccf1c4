//! Real HTTP servers on free loopback ports, for tests of outbound calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use serde_json::Value;

/// A server that answers every request 200 with `answer` (JSON) and counts the requests.
/// Returns its URL (host, port and `path`) and the count.
pub async fn counting_receiver(path: &str, answer: Value) -> (String, Arc<AtomicUsize>) {
    scripted_receiver(path, move |_| (StatusCode::OK, answer.clone())).await
}

/// A server whose answer to its `n`th request (0 first) is `respond(n)`; counts requests.
pub async fn scripted_receiver(
    path: &str,
    respond: impl Fn(usize) -> (StatusCode, Value) + Clone + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().fallback(move || {
        let (counter, respond) = (counter.clone(), respond.clone());
        async move {
            let (status, body) = respond(counter.fetch_add(1, Ordering::SeqCst));
            (status, axum::Json(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let url = format!("http://{}{path}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the receiver serves") });
    (url, seen)
}
