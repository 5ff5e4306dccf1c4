//! `leadpush::runtime::lambda::run_http`, the whole Lambda path of an HTTP function, driven through
//! the Runtime API emulator of `make bench`/`make invoke`: init from the environment,
//! `/next` polls, API Gateway v2 events in and responses out. The platform function's
//! route group runs in process on the embedded store.
//!
//! Its own test binary with one test: the Lambda variables are set before the runtime or
//! any other thread of this process starts, so nothing reads the environment meanwhile.

// The emulator's source, shared with the bench binary (which also uses what this test doesn't).
#[allow(dead_code)]
#[path = "../src/runtime_api.rs"]
mod runtime_api;

use leadpush::api::{self, Function};
use leadpush::domain::workspace::CredentialKind;
use leadpush::repo::workspaces;
use leadpush::support::time::Timestamp;
use runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

fn event(method: &str, path: &str, headers: Value) -> Value {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/platform.healthz.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["routeKey"] = json!(format!("{method} {path}"));
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    event["headers"].as_object_mut().unwrap().extend(headers.as_object().unwrap().clone());
    event
}

/// The API Gateway response an invocation returned, with its body parsed.
async fn invoke(api: &mut RuntimeApi, event: &Value) -> (u64, Value) {
    let outcome = api.invoke(event).await.unwrap().expect("an answer within the invoke timeout");
    let Outcome::Response(response) = outcome else { panic!("the function reported an error: {outcome:?}") };
    let body = serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap();
    (response["statusCode"].as_u64().unwrap(), body)
}

#[test]
fn an_http_function_serves_api_gateway_events_through_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut vars = runtime_api::lambda_env(listener.local_addr().unwrap(), "platform");
    vars.extend([
        ("LEADPUSH_STORE", "sqlite".into()),
        ("LEADPUSH_DATA_DIR", data_dir),
        ("LEADPUSH_LOG", "warn".into()),
    ]);
    for (name, value) in vars {
        // SAFETY: no other thread of this process reads the environment: the test harness
        // waits for this test, the only one, and no runtime has started yet.
        unsafe { std::env::set_var(name, value) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // `run_http`'s future is not `Send` (as on Lambda, where it is `main`): a local task.
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let mut api = RuntimeApi::start_on(listener).await.expect("start the Runtime API");
        // A workspace and its API key, written before the function opens the same file.
        let ctx = leadpush::context::AppContext::from_config(leadpush::config::Config::from_env().unwrap());
        let ctx = ctx.await.unwrap();
        let ws = workspaces::create_workspace(&*ctx.store, "Runtime API", Timestamp::now()).await.unwrap();
        let issued = workspaces::issue_credential(&*ctx.store, &ws.id, CredentialKind::ApiKey, Timestamp::now());
        let api_key = issued.await.unwrap().1;

        let function =
            tokio::task::spawn_local(leadpush::runtime::lambda::run_http(Function::Platform, api::platform::routes));
        let polled = api.wait_first_poll(|| {
            anyhow::ensure!(!function.is_finished(), "run_http returned during init");
            Ok(())
        });
        polled.await.expect("the function polls /next once initialised");

        let (status, body) = invoke(&mut api, &event("GET", "/healthz", json!({}))).await;
        assert_eq!((status, &body["data"]["status"], &body["data"]["store"]), (200, &json!("ok"), &json!("sqlite")));

        let headers = json!({ "x-satellyte-api-key": api_key });
        let (status, body) = invoke(&mut api, &event("GET", "/api/v1/workspace", headers)).await;
        assert_eq!((status, &body["data"]["name"]), (200, &json!("Runtime API")), "{body}");

        let (status, body) = invoke(&mut api, &event("GET", "/api/v1/workspace", json!({}))).await;
        assert_eq!((status, &body["error"]["code"]), (401, &json!("unauthorized")), "{body}");

        // Another group's route is not served by this function.
        let (status, body) = invoke(&mut api, &event("GET", "/api/v1/campaigns", json!({}))).await;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("route_not_found")), "{body}");
        function.abort();
    });
}
