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
    assert_eq!(sweep(&ctx, now).await.unwrap(), 0, "nothing is overdue yet");

    let later = now.plus(SWEEP_GRACE + Duration::from_secs(20 * 60));
    assert_eq!(sweep(&ctx, later).await.unwrap(), 1);
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
    assert_eq!(sweep(&ctx, later.plus(SWEEP_GRACE)).await.unwrap(), 0);
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
