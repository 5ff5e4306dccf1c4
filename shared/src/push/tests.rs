use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::domain::lead::LeadFields;
use crate::repo::workspaces;

/// A local receiver that answers 503 to its first request and 200 after; counts requests.
async fn flaky_receiver() -> (String, Arc<AtomicUsize>) {
    crate::testing::receivers::scripted_receiver("/hook", |n| {
        let status = if n == 0 { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK };
        (status, serde_json::json!({}))
    })
    .await
}

async fn drain(ctx: &AppContext) -> Vec<Task> {
    crate::testing::drain_tasks(ctx).await
}

async fn one_lead(ctx: &AppContext) -> (String, Lead) {
    let store = &*ctx.store;
    let ws = workspaces::create_workspace(store, "Push", ctx.now()).await.unwrap().id;
    let lead = Lead::new("req_PUSH_0001".into(), "cmp_1".into(), None, LeadFields::default(), ctx.now());
    leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
    (ws, lead)
}

async fn status_of(ctx: &AppContext, ws: &str, lead: &Lead) -> crate::domain::lead::LeadStatus {
    leads::get(&*ctx.store, ws, &lead.id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_answers_before_its_follow_up_which_a_task_runs() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let (ws, lead) = one_lead(&ctx).await;
    let (url, _seen) = flaky_receiver().await;
    let _ = flaky_receiver; // the first answer is 503: warm it up so this push succeeds
    let client = reqwest::Client::new();
    let _ = client.post(&url).send().await;

    let summary = start(&ctx, &ws, Target::Webhook { url }, vec![lead.id.clone()]).await.unwrap();
    assert!(summary.dispatched, "{summary:?}");
    assert_ne!(status_of(&ctx, &ws, &lead).await, crate::domain::lead::LeadStatus::Pushed);
    let tasks = drain(&ctx).await;
    let expected = Task::PushFollowUp { workspace_id: ws.clone(), push_id: summary.push_id.clone(), attempt: 1 };
    assert_eq!(tasks, vec![expected.clone()]);
    crate::dispatch::run(&ctx, expected).await.unwrap();
    assert_eq!(status_of(&ctx, &ws, &lead).await, crate::domain::lead::LeadStatus::Pushed);
    assert!(matches!(drain(&ctx).await.as_slice(), [Task::LeadsSaved { .. }]), "save_lead emitted");
    // Finished with: its sweep marker is gone.
    assert!(push_sweep::get(&*ctx.store, &ws, &summary.push_id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_requeues_lost_follow_ups_and_overdue_retries() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let (ws, lead) = one_lead(&ctx).await;
    let (url, seen) = flaky_receiver().await;
    let summary = start(&ctx, &ws, Target::Webhook { url }, vec![lead.id.clone()]).await.unwrap();
    assert_eq!(summary.provider_status_code, Some(503));
    // Every task is lost (a queue outage, a dead-lettered message).
    assert_eq!(drain(&ctx).await.len(), 1, "the follow-up; the retry is still delayed");
    let now = ctx.now();
    assert_eq!(sweep(&ctx, now).await.unwrap().requeued, 0, "nothing is overdue yet");

    let later = now.plus(SWEEP_GRACE + Duration::from_secs(20 * 60));
    assert_eq!(sweep(&ctx, later).await.unwrap().requeued, 1);
    let tasks = drain(&ctx).await;
    let push_id = summary.push_id.clone();
    assert!(tasks.contains(&Task::PushFollowUp { workspace_id: ws.clone(), push_id: push_id.clone(), attempt: 1 }));
    let retry_task = Task::PushRetry { workspace_id: ws.clone(), push_id: push_id.clone(), attempt: 2 };
    assert!(tasks.contains(&retry_task), "{tasks:?}");
    for task in tasks {
        crate::dispatch::run(&ctx, task).await.unwrap();
    }
    // The retry delivered and queued its own follow-up.
    for task in drain(&ctx).await {
        crate::dispatch::run(&ctx, task).await.unwrap();
    }
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(pushes::get(&*ctx.store, &ws, &push_id).await.unwrap().unwrap().status, PushState::Dispatched);
    assert_eq!(status_of(&ctx, &ws, &lead).await, crate::domain::lead::LeadStatus::Pushed);
    assert!(push_sweep::get(&*ctx.store, &ws, &push_id).await.unwrap().is_none());
    assert_eq!(sweep(&ctx, later.plus(SWEEP_GRACE)).await.unwrap().requeued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_that_meets_store_faults_fails_and_completes_when_retried() {
    use crate::store::faulty::{Fault, FaultyStore, Op, Rule};
    let (mut ctx, _dir) = crate::testing::embedded_context();
    let (ws, lead) = one_lead(&ctx).await;
    let (url, _) = flaky_receiver().await;
    let _ = reqwest::Client::new().post(&url).send().await;
    let summary = start(&ctx, &ws, Target::Webhook { url }, vec![lead.id.clone()]).await.unwrap();
    let task = drain(&ctx).await.remove(0);
    let faulty = std::sync::Arc::new(
        FaultyStore::new(ctx.store.clone())
            .inject(Rule::new(Op::TransactWrite, Fault::Conflict).on_keys_containing("LEAD#").times(40))
            .inject(Rule::new(Op::Put, Fault::Throttle).on_keys_containing("LEAD#").times(40)),
    );
    ctx.store = faulty.clone();
    let err = crate::dispatch::run(&ctx, task.clone()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(faulty.injected() > 0);
    ctx.store = faulty.clone();
    // The faults are spent after 40 of each; the redelivered task completes the work.
    let mut done = false;
    for _ in 0..60 {
        if crate::dispatch::run(&ctx, task.clone()).await.is_ok() {
            done = true;
            break;
        }
    }
    assert!(done);
    assert_eq!(status_of(&ctx, &ws, &lead).await, crate::domain::lead::LeadStatus::Pushed);
    assert!(push_sweep::get(&*ctx.store, &ws, &summary.push_id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_push_and_refuses_another_body() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let (ws, lead) = one_lead(&ctx).await;
    let (url, seen) = flaky_receiver().await;
    let run = |fingerprint: &'static str| {
        let (ctx, ws, url, id) = (ctx.clone(), ws.clone(), url.clone(), lead.id.clone());
        async move {
            once(&ctx, &ws, Some("key-1"), fingerprint, || start(&ctx, &ws, Target::Webhook { url }, vec![id])).await
        }
    };
    let (first, replayed) = run("body-a").await.unwrap();
    assert!(!replayed);
    let (again, replayed) = run("body-a").await.unwrap();
    assert!(replayed);
    assert_eq!(again, first, "the same answer, push_id included");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "pushed once");
    assert!(matches!(run("body-b").await, Err(PushError::KeyReused(_))));
    let err = once(&ctx, &ws, Some(""), "x", || async { unreachable!() }).await.unwrap_err();
    assert!(matches!(err, PushError::Invalid(_)));
    // A push that fails before reaching its destination gives the key back.
    let failed = once(&ctx, &ws, Some("key-2"), "c", || async { Err(PushError::NotConfigured(Provider::Heyreach)) });
    assert!(failed.await.is_err());
    let (_, replayed) = run_with_key(&ctx, &ws, "key-2", &url, &lead).await;
    assert!(!replayed);
}

async fn run_with_key(ctx: &AppContext, ws: &str, key: &str, url: &str, lead: &Lead) -> (PushSummary, bool) {
    let target = Target::Webhook { url: url.to_owned() };
    once(ctx, ws, Some(key), "c", || start(ctx, ws, target, vec![lead.id.clone()])).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_retry_neither_sends_nor_records_twice() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let store = &*ctx.store;
    let ws = workspaces::create_workspace(store, "Retry", ctx.now()).await.unwrap().id;
    let lead = Lead::new("req_RETRY_0001".into(), "cmp_1".into(), None, LeadFields::default(), ctx.now());
    leads::put_many(store, &ws, std::slice::from_ref(&lead)).await.unwrap();
    let (url, seen) = flaky_receiver().await;

    let summary = start(&ctx, &ws, Target::Webhook { url }, vec![lead.id.clone()]).await.unwrap();
    assert_eq!((summary.provider_status_code, summary.dispatched), (Some(503), false));
    let push = pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap();
    assert_eq!((push.status, push.attempts), (PushState::Retrying, 1));

    retry(&ctx, &ws, &summary.push_id, 2).await.unwrap();
    let done = pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap();
    assert_eq!((done.status, done.attempts, seen.load(Ordering::SeqCst)), (PushState::Dispatched, 2, 2));
    // The queue delivers at least once: the same task again, or a stale one, changes nothing.
    retry(&ctx, &ws, &summary.push_id, 2).await.unwrap();
    retry(&ctx, &ws, &summary.push_id, 1).await.unwrap();
    retry(&ctx, &ws, "push_01NOSUCHPUSH0000000000000000", 2).await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(pushes::get(store, &ws, &summary.push_id).await.unwrap().unwrap(), done);
    follow_up(&ctx, &ws, &summary.push_id, 2).await.unwrap();
    assert_eq!(
        leads::get(store, &ws, &lead.id).await.unwrap().unwrap().status,
        crate::domain::lead::LeadStatus::Pushed
    );
}

/// Push ids whose sweep markers share one shard (the first), `n` of them.
fn ids_in_one_shard(n: usize) -> Vec<String> {
    (0..).map(|i| format!("push_{i:05}")).filter(|id| crate::store::keys::shard_of(id) == 0).take(n).collect()
}

fn marker(push_id: &str, due_at: Timestamp) -> SweepMarker {
    SweepMarker { workspace_id: "ws_sweep".into(), push_id: push_id.into(), due_at, followed_up: 0 }
}

async fn markers_left(ctx: &AppContext, ids: &[String]) -> usize {
    let mut left = 0;
    for id in ids {
        left += usize::from(push_sweep::get(&*ctx.store, "ws_sweep", id).await.unwrap().is_some());
    }
    left
}

/// More due markers in one shard than a page holds, and some due later: the sweep reaches
/// every due one (their pushes are gone, so each is deleted) and leaves the later ones.
async fn the_sweep_pages_through_every_due_marker(ctx: AppContext) {
    let now = ctx.now();
    let ids = ids_in_one_shard(130);
    let (due, later) = ids.split_at(125);
    for (n, id) in due.iter().enumerate() {
        // Written newest due first, so key order and due order disagree.
        let at = Timestamp::from_unix_millis(now.unix_millis() - 1_000 * (n as i64 + 1)).unwrap();
        push_sweep::create(&*ctx.store, &marker(id, at)).await.unwrap();
    }
    for id in later {
        push_sweep::create(&*ctx.store, &marker(id, now.plus(Duration::from_secs(60)))).await.unwrap();
    }
    let swept = sweep(&ctx, now).await.unwrap();
    assert_eq!(swept, Swept { requeued: 0, finished: true });
    assert_eq!(markers_left(&ctx, due).await, 0, "every due marker was reached");
    assert_eq!(markers_left(&ctx, later).await, later.len(), "markers due later are left alone");
}
crate::testing::on_both_stores!(the_sweep_pages_through_every_due_marker => the_sweep_pages_through_every_due_marker_embedded, the_sweep_pages_through_every_due_marker_dynamodb);

/// A sweep task whose invocation is about to end stops before the next marker and queues
/// its own continuation, which then finishes the work.
async fn a_sweep_near_its_deadline_stops_and_queues_its_continuation(ctx: AppContext) {
    let now = ctx.now();
    let ids = ids_in_one_shard(3);
    for id in &ids {
        push_sweep::create(&*ctx.store, &marker(id, now)).await.unwrap();
    }
    let near = std::time::Instant::now() + deadline::RESERVE / 2;
    let swept = deadline::within(Some(near), sweep(&ctx, now)).await.unwrap();
    assert_eq!(swept, Swept { requeued: 0, finished: false });
    assert_eq!(markers_left(&ctx, &ids).await, 3, "nothing started");
    let far = std::time::Instant::now() + Duration::from_secs(120);
    deadline::within(Some(near), crate::dispatch::run_core(&ctx, Task::Sweep)).await.unwrap();
    assert_eq!(drain(&ctx).await, vec![Task::Sweep], "the continuation");
    deadline::within(Some(far), crate::dispatch::run_core(&ctx, Task::Sweep)).await.unwrap();
    assert_eq!(markers_left(&ctx, &ids).await, 0);
    assert_eq!(drain(&ctx).await, vec![], "finished: no continuation");
}
crate::testing::on_both_stores!(a_sweep_near_its_deadline_stops_and_queues_its_continuation => a_sweep_near_its_deadline_stops_and_queues_its_continuation_embedded, a_sweep_near_its_deadline_stops_and_queues_its_continuation_dynamodb);

/// A marker stored before markers were indexed by due time is invisible to the sweep until
/// the layout migration indexes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_stored_before_the_due_index_are_indexed_by_the_migration() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let now = ctx.now();
    let id = &ids_in_one_shard(1)[0];
    let old = crate::store::Item::new(push_sweep::key("ws_sweep", id), &marker(id, now)).unwrap();
    ctx.store.put(old, crate::store::Condition::Always).await.unwrap();
    ctx.store
        .put(
            crate::store::Item::new(crate::store::Key::new("LAYOUT", "LAYOUT"), &serde_json::json!({"layout": 2}))
                .unwrap(),
            crate::store::Condition::Always,
        )
        .await
        .unwrap();
    sweep(&ctx, now).await.unwrap();
    assert_eq!(markers_left(&ctx, std::slice::from_ref(id)).await, 1, "not indexed: not seen");
    let report = crate::repo::migrate::rekey(&*ctx.store).await.unwrap();
    assert_eq!((report.moved, report.reindexed), (0, 1));
    sweep(&ctx, now).await.unwrap();
    assert_eq!(markers_left(&ctx, std::slice::from_ref(id)).await, 0);
}

/// A local Instantly whose add call takes 3 s and reports the lead a duplicate without
/// naming it; counts every call by path.
async fn slow_instantly() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let path = request.uri().path().to_owned();
            seen.lock().unwrap().push(path.clone());
            if path.ends_with("/leads/add") {
                tokio::time::sleep(Duration::from_secs(3)).await;
                return axum::Json(
                    serde_json::json!({"leads_uploaded": 0, "duplicated_leads": 1, "created_leads": []}),
                );
            }
            axum::Json(serde_json::json!({"items": []}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn lead_with_email() -> Lead {
    let fields = LeadFields { email: Some("ada@example.com".into()), ..LeadFields::default() };
    Lead::new("req_LATE_0001".into(), "cmp_1".into(), None, fields, Timestamp::now())
}

/// A synchronous push must answer within API Gateway's 30 s: a provider call that might not
/// end before the deadline's reserve is not made, and its leads stay pending (retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_calls_that_would_outlast_the_deadline_are_left_to_the_next_attempt() {
    let (mut ctx, _dir) = crate::testing::embedded_context();
    let (url, calls) = slow_instantly().await;
    let mut config = (*ctx.config).clone();
    config.instantly_base_url = url;
    ctx.config = Arc::new(config);
    let key: crate::domain::integration::ProviderKey = serde_json::from_value(serde_json::json!("in-key")).unwrap();
    let target = Target::Instantly { api_key: key, campaign_id: "0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a".into() };
    let leads = vec![lead_with_email()];
    let (timeout, reserve) = (ctx.outbound.timeout(), Duration::from_secs(1));

    // Too close to the deadline for any call: nothing is sent.
    let near = std::time::Instant::now() + timeout;
    let result = deadline::within_reserving(near, reserve, send::attempt(&ctx, "push_1", 1, &target, &leads)).await;
    assert!(result.calls.is_empty() && calls.lock().unwrap().is_empty(), "{result:?}");
    assert!(matches!(&result.leads[0].1, LeadResult::Retry(r) if r.contains("ran out")), "{result:?}");

    // Time for the add call (2 s to spare), not for the lookup after its 3 s.
    let at = std::time::Instant::now() + timeout + reserve + Duration::from_secs(2);
    let result = deadline::within_reserving(at, reserve, send::attempt(&ctx, "push_1", 1, &target, &leads)).await;
    assert_eq!(result.calls.len(), 1, "the add call is recorded: {result:?}");
    assert!(matches!(&result.leads[0].1, LeadResult::Retry(r) if r.contains("not looked up")), "{result:?}");
    let paths = calls.lock().unwrap().clone();
    assert!(paths.len() == 1 && paths[0].ends_with("/leads/add"), "no lookup was started: {paths:?}");
}
