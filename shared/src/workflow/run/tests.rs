use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::domain::api_request::{ApiRequest, ApiRequestInput};
use crate::domain::campaign::LeadSource;
use crate::domain::lead::LeadFields;
use crate::domain::workflow::RunTrigger;
use crate::workflow::{save, trigger};

/// A local JSON API that counts its calls.
async fn counting_api() -> (String, Arc<AtomicUsize>) {
    crate::testing::receivers::counting_receiver("/profile", json!({"plan": "pro"})).await
}

/// The queue delivers at least once: a second `workflow_start` for the same leads
/// creates no second run, and a `workflow_run` redelivered after its fetch node
/// succeeded (the worker died before the next node) never calls the API again.
async fn redelivered_tasks_never_call_an_api_twice(ctx: AppContext) {
    let store = &*ctx.store;
    let ws = workspaces::create_workspace(store, "Runs", ctx.now()).await.unwrap().id;
    let campaign =
        Campaign::new(crate::support::ids::new_id("cmp"), "Runs", LeadSource::Webhook, None, ctx.now()).unwrap();
    campaigns::create(store, &ws, &campaign).await.unwrap();
    let fields = LeadFields { first_name: Some("Ada".into()), ..LeadFields::default() };
    let lead = Lead::new("req_RUNS_0001".into(), campaign.id.clone(), None, fields, ctx.now());
    leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
    let (url, calls) = counting_api().await;
    let input: ApiRequestInput =
        serde_json::from_value(json!({"name": "Profile", "method": "GET", "url": url})).unwrap();
    let request = ApiRequest::new("apr_RUNS".into(), input, &WorkspaceSettings::default(), ctx.now()).unwrap();
    api_requests::create(store, &ws, &request).await.unwrap();
    let doc = json!({"nodes": [
        {"id": "profile", "type": "fetch_api_data", "api_request_id": "apr_RUNS", "output_key": "p"},
        {"id": "opener", "type": "render_message", "template": "{{ contact.first_name }} on {{ workflow.p.plan }}", "output_key": "m"}
    ]});
    let workflow = save::save(&ctx, &ws, &campaign.id, &doc).await.unwrap();

    let ids = vec![lead.id.clone()];
    trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest).await.unwrap();
    trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest).await.unwrap();
    let page = workflows::list_runs(store, &ws, &lead.id, 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1, "one run per lead and workflow version");
    let run: Run = page.items[0].parse().unwrap();

    execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
    let (done, version) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.message.as_deref()), (RunStatus::Succeeded, Some("Ada on pro")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a finished run is left alone");

    // As if the worker died after storing the fetch and before the render.
    let mut crashed = done.clone();
    crashed.status = RunStatus::Running;
    crashed.finished_at = None;
    crashed.outputs.remove("m");
    crashed.message = None;
    crashed.nodes[1].status = NodeStatus::Pending;
    assert!(workflows::save_run(store, &ws, &crashed, version, &[], false).await.unwrap());
    execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
    let (resumed, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
    assert_eq!((resumed.status, resumed.message.as_deref()), (RunStatus::Succeeded, Some("Ada on pro")));
    assert_eq!(resumed.nodes[0].attempts, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the succeeded fetch was not called again");
}

/// A clock that can be moved forward (a lease running out).
struct Shifted(std::sync::atomic::AtomicU64);

impl crate::support::time::Clock for Shifted {
    fn now(&self) -> crate::support::time::Timestamp {
        crate::support::time::Timestamp::now().plus(std::time::Duration::from_millis(self.0.load(Ordering::SeqCst)))
    }
}

/// A real local HTTP API that records each call's path and `Idempotency-Key` values,
/// and holds the first call until `release` (at most 30 s) as a slow customer API would.
async fn keyed_api() -> (String, Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>, Arc<tokio::sync::Notify>) {
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let release = Arc::new(tokio::sync::Notify::new());
    let (seen, held) = (calls.clone(), release.clone());
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (seen, held) = (seen.clone(), held.clone());
        async move {
            let keys = request
                .headers()
                .get_all("idempotency-key")
                .iter()
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .collect();
            let first = {
                let mut calls = seen.lock().unwrap();
                calls.push((request.uri().path().to_owned(), keys));
                calls.len() == 1
            };
            if first {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), held.notified()).await;
            }
            axum::Json(json!({"plan": "pro"}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls, release)
}

/// A worker dies while a run's call is in flight; the redelivered run calls again (at
/// least once) with the same `Idempotency-Key`, so the receiver can drop the repeat.
/// Another node, or another run of the same lead, sends another key; a header the
/// request configures itself is sent as configured; the test endpoint sends none.
async fn a_redelivered_runs_repeated_call_carries_the_same_idempotency_key(mut ctx: AppContext) {
    let clock = Arc::new(Shifted(std::sync::atomic::AtomicU64::new(0)));
    ctx.clock = clock.clone();
    let store = &*ctx.store;
    let ws = workspaces::create_workspace(store, "Keys", ctx.now()).await.unwrap().id;
    let campaign =
        Campaign::new(crate::support::ids::new_id("cmp"), "Keys", LeadSource::Webhook, None, ctx.now()).unwrap();
    campaigns::create(store, &ws, &campaign).await.unwrap();
    let fields = LeadFields { first_name: Some("Ada".into()), ..LeadFields::default() };
    let lead = Lead::new("req_KEYS_0001".into(), campaign.id.clone(), None, fields, ctx.now());
    leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
    let (base, calls, release) = keyed_api().await;
    let settings = WorkspaceSettings::default();
    let requests = [
        ("apr_KEYS_A", json!({"name": "Enrich", "method": "POST", "url": format!("{base}/enrich"), "body": "{}"})),
        (
            "apr_KEYS_B",
            json!({"name": "Own key", "method": "POST", "url": format!("{base}/own"),
            "headers": {"idempotency-key": "mine-{{ contact.first_name }}"}}),
        ),
    ];
    for (id, input) in requests {
        let input: ApiRequestInput = serde_json::from_value(input).unwrap();
        let request = ApiRequest::new(id.into(), input, &settings, ctx.now()).unwrap();
        api_requests::create(store, &ws, &request).await.unwrap();
    }
    let doc = json!({"nodes": [
        {"id": "enrich", "type": "fetch_api_data", "api_request_id": "apr_KEYS_A", "output_key": "a"},
        {"id": "again", "type": "fetch_api_data", "api_request_id": "apr_KEYS_A", "output_key": "b"},
        {"id": "own", "type": "fetch_api_data", "api_request_id": "apr_KEYS_B", "output_key": "c"}
    ]});
    let workflow = save::save(&ctx, &ws, &campaign.id, &doc).await.unwrap();
    let ids = vec![lead.id.clone()];
    trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest).await.unwrap();
    let run: Run = workflows::list_runs(store, &ws, &lead.id, 10, None).await.unwrap().items[0].parse().unwrap();

    // The worker dies while the first call is in flight (its answer never recorded).
    let worker = tokio::spawn({
        let (ctx, ws, lead, run) = (ctx.clone(), ws.clone(), lead.id.clone(), run.id.clone());
        async move { execute(&ctx, &ws, &lead, &run).await }
    });
    let limit = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while calls.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < limit, "the run never called the API");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    release.notify_one();
    // The queue redelivers the task once the run's lease has run out.
    clock.0.store(LEASE.as_millis() as u64 + 1_000, Ordering::SeqCst);
    execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
    let (done, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.nodes);

    let first = format!("{}:enrich", run.id);
    let seen = calls.lock().unwrap().clone();
    let expected = [
        ("/enrich", vec![first.clone()]),
        ("/enrich", vec![first.clone()]),
        ("/enrich", vec![format!("{}:again", run.id)]),
        ("/own", vec!["mine-Ada".to_owned()]),
    ];
    let expected: Vec<(String, Vec<String>)> = expected.into_iter().map(|(p, k)| (p.to_owned(), k)).collect();
    assert_eq!(seen, expected, "the repeated call carries the first one's key");

    // A rerun of the same lead is another operation: other keys.
    let rerun = trigger::rerun(&ctx, &ws, &lead).await.unwrap().expect("a rerun");
    execute(&ctx, &ws, &lead.id, &rerun.id).await.unwrap();
    let seen = calls.lock().unwrap().clone();
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen[4].1, vec![format!("{}:enrich", rerun.id)]);
    assert_ne!(seen[4].1, seen[0].1);

    // The interactive test sends no key.
    let (request, _) = api_requests::get(store, &ws, "apr_KEYS_A").await.unwrap().unwrap();
    let tested = request::test(&ctx, &ws, &request, &json!({}), &settings).await;
    assert!(tested.ok, "{:?}", tested.error);
    assert_eq!(calls.lock().unwrap().last().unwrap(), &("/enrich".to_owned(), Vec::<String>::new()));
}

crate::testing::on_both_stores!(a_redelivered_runs_repeated_call_carries_the_same_idempotency_key => a_redelivered_runs_repeated_call_carries_the_same_idempotency_key_embedded, a_redelivered_runs_repeated_call_carries_the_same_idempotency_key_dynamodb);

crate::testing::on_both_stores!(redelivered_tasks_never_call_an_api_twice => redelivered_tasks_never_call_an_api_twice_embedded, redelivered_tasks_never_call_an_api_twice_dynamodb);

/// On Lambda a node starts only if its time cap fits before the invocation's deadline: a
/// fetch that might not finish waits for the run's continuation task, which calls it once.
async fn a_node_that_would_outlive_the_deadline_waits_for_the_next_task(ctx: AppContext) {
    let store = &*ctx.store;
    let ws = workspaces::create_workspace(store, "Deadline", ctx.now()).await.unwrap().id;
    let campaign =
        Campaign::new(crate::support::ids::new_id("cmp"), "Deadline", LeadSource::Webhook, None, ctx.now()).unwrap();
    campaigns::create(store, &ws, &campaign).await.unwrap();
    let fields = LeadFields { first_name: Some("Ada".into()), ..LeadFields::default() };
    let lead = Lead::new("req_DEAD_0001".into(), campaign.id.clone(), None, fields, ctx.now());
    leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
    let (url, calls) = counting_api().await;
    let input: ApiRequestInput =
        serde_json::from_value(json!({"name": "Profile", "method": "GET", "url": url})).unwrap();
    let request = ApiRequest::new("apr_DEAD".into(), input, &WorkspaceSettings::default(), ctx.now()).unwrap();
    api_requests::create(store, &ws, &request).await.unwrap();
    let doc = json!({"nodes": [
        {"id": "opener", "type": "render_message", "template": "Hi {{ contact.first_name }}", "output_key": "m"},
        {"id": "profile", "type": "fetch_api_data", "api_request_id": "apr_DEAD", "output_key": "p"}
    ]});
    let workflow = save::save(&ctx, &ws, &campaign.id, &doc).await.unwrap();
    let ids = vec![lead.id.clone()];
    trigger::start_runs(&ctx, &ws, &campaign.id, workflow.workflow_version, &ids, RunTrigger::Ingest).await.unwrap();
    let run: Run = workflows::list_runs(store, &ws, &lead.id, 10, None).await.unwrap().items[0].parse().unwrap();
    crate::testing::drain_tasks(&ctx).await;

    // 5 s left, 1 s reserve: the render fits, the fetch (10 s cap by default) does not.
    let at = std::time::Instant::now() + Duration::from_secs(5);
    deadline::within_reserving(at, Duration::from_secs(1), execute(&ctx, &ws, &lead.id, &run.id)).await.unwrap();
    let (paused, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
    assert_eq!((paused.nodes[0].status, paused.nodes[1].status), (NodeStatus::Succeeded, NodeStatus::Pending));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the fetch was not started");
    let continuation = Task::WorkflowRun { workspace_id: ws.clone(), lead_id: lead.id.clone(), run_id: run.id.clone() };
    assert_eq!(crate::testing::drain_tasks(&ctx).await, vec![continuation]);

    execute(&ctx, &ws, &lead.id, &run.id).await.unwrap();
    let (done, _) = workflows::get_run(store, &ws, &lead.id, &run.id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!((done.nodes[0].attempts, done.nodes[1].attempts), (1, 1), "each node ran once");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
crate::testing::on_both_stores!(a_node_that_would_outlive_the_deadline_waits_for_the_next_task => a_node_that_would_outlive_the_deadline_waits_for_the_next_task_embedded, a_node_that_would_outlive_the_deadline_waits_for_the_next_task_dynamodb);
