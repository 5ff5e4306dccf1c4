mod unit {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::time::Duration;

    use crate::context::AppContext;
    use crate::domain::delivery::{Attempt, DeliveryStatus};
    use crate::domain::lead::{Lead, LeadFields};
    use crate::domain::webhook::Webhook;
    use crate::queue::{FAN_OUT_LEADS, Task};
    use crate::repo::workspaces;
    use crate::repo::{deliveries, leads};
    use crate::support::time::Timestamp;
    use crate::webhooks::*;

    async fn receiver() -> (String, Arc<AtomicUsize>) {
        crate::testing::receivers::counting_receiver("/hook", serde_json::json!("ok")).await
    }

    async fn drain(ctx: &AppContext) -> Vec<Task> {
        crate::testing::drain_tasks(ctx).await
    }

    async fn endpoint(ctx: &AppContext, ws: &str, name: &str, url: &str) -> Webhook {
        crate::testing::save_lead_endpoint(ctx, ws, name, url).await
    }

    fn leads_saved(ws: &str, lead_ids: Vec<String>) -> Task {
        Task::LeadsSaved {
            workspace_id: ws.into(),
            lead_ids,
            event_id: "evt_1".into(),
            occurred_at: Timestamp::now(),
            webhook_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_out_splits_per_endpoint_and_chunk_and_stale_messages_are_skipped() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let ws = workspaces::create_workspace(&*ctx.store, "Fan", ctx.now()).await.unwrap().id;
        let (url, seen) = receiver().await;
        let (a, b) = (endpoint(&ctx, &ws, "a", &url).await, endpoint(&ctx, &ws, "b", &url).await);
        let ids: Vec<String> = (0..FAN_OUT_LEADS + 5).map(|i| format!("req_FAN_{i:04}")).collect();
        let leads: Vec<Lead> = ids
            .iter()
            .map(|id| Lead::new(id.clone(), "cmp_1".into(), None, LeadFields::default(), ctx.now()))
            .collect();
        leads::put_many(&*ctx.store, &ws, &leads).await.unwrap();

        // One task of 30 leads and 2 endpoints becomes 4 parts of one endpoint each.
        crate::dispatch::run(&ctx, leads_saved(&ws, ids.clone())).await.unwrap();
        let parts = drain(&ctx).await;
        assert_eq!(parts.len(), 4, "{parts:?}");
        for part in &parts {
            let Task::LeadsSaved { lead_ids, webhook_id: Some(w), .. } = part else { panic!("{part:?}") };
            assert!(lead_ids.len() <= FAN_OUT_LEADS && (w == &a.id || w == &b.id));
        }
        for part in parts.iter().chain(&parts[..1]) {
            crate::dispatch::run(&ctx, part.clone()).await.unwrap();
        }
        let deliveries = drain(&ctx).await;
        let first: Vec<Task> =
            deliveries.iter().filter(|t| matches!(t, Task::Deliver { attempt: Some(1), .. })).cloned().collect();
        let Task::LeadsSaved { lead_ids: again, .. } = &parts[0] else { unreachable!() };
        assert_eq!(first.len(), 2 * ids.len() + again.len(), "a redelivered part queues its pending ones again");
        let mut distinct: Vec<String> = deliveries
            .iter()
            .map(|t| if let Task::Deliver { delivery_id, .. } = t { delivery_id.clone() } else { unreachable!() })
            .collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 2 * ids.len(), "one delivery per lead and endpoint");

        // Every message runs, duplicates included: each delivery is sent once.
        for task in deliveries {
            crate::dispatch::run(&ctx, task).await.unwrap();
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2 * ids.len());
        // A stale message for attempt 1 of a delivered delivery sends nothing.
        let Task::Deliver { webhook_id, delivery_id, .. } = &first[0] else { unreachable!() };
        deliver(&ctx, &ws, webhook_id, delivery_id, false, Some(1)).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 2 * ids.len());
        assert!(drain(&ctx).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_requeues_overdue_deliveries_and_skips_early_or_wrong_attempts() {
        let (ctx, _dir) = crate::testing::embedded_context();
        sweeper_requeues_overdue_deliveries(ctx).await;
    }

    /// On DynamoDB the sweep index (gsi2) holds keys only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_requeues_overdue_deliveries_on_dynamodb() {
        let (ctx, _dir) = crate::testing::dynamo_context().await;
        sweeper_requeues_overdue_deliveries(ctx).await;
    }

    async fn sweeper_requeues_overdue_deliveries(ctx: AppContext) {
        let ws = workspaces::create_workspace(&*ctx.store, "Sweep", ctx.now()).await.unwrap().id;
        let (url, seen) = receiver().await;
        let hook = endpoint(&ctx, &ws, "a", &url).await;
        let now = ctx.now();
        let mut delivery =
            new_delivery("dlv_SWEEP".into(), &hook.id, "save_lead", None, None, serde_json::json!({}), now);
        delivery.next_attempt_at = Some(now.plus(Duration::from_secs(600)));
        delivery.attempts.push(Attempt {
            number: 1,
            at: now,
            status_code: Some(500),
            duration_ms: 1,
            response: None,
            error: None,
            manual: false,
        });
        ctx.store.put(deliveries::item(&ws, &delivery).unwrap(), crate::store::Condition::NotExists).await.unwrap();

        // Early, a message sends nothing (a duplicate ahead of its schedule).
        deliver(&ctx, &ws, &hook.id, "dlv_SWEEP", false, Some(2)).await.unwrap();
        assert_eq!(sweep(&ctx, now.plus(Duration::from_secs(601))).await.unwrap().requeued, 0, "not overdue yet");
        // Its retry message was lost, and the retry is now 20 minutes overdue.
        delivery.next_attempt_at = Some(Timestamp::from_unix_millis(now.unix_millis() - 20 * 60 * 1000).unwrap());
        // While a worker holds it (an attempt in flight), the sweeper leaves it to that worker.
        delivery.in_flight_until = Some(now.plus(Duration::from_secs(30)));
        ctx.store.put(deliveries::item(&ws, &delivery).unwrap(), crate::store::Condition::Always).await.unwrap();
        assert_eq!(sweep(&ctx, now).await.unwrap().requeued, 0, "leased: left to its worker");
        delivery.in_flight_until = None;
        ctx.store.put(deliveries::item(&ws, &delivery).unwrap(), crate::store::Condition::Always).await.unwrap();
        assert_eq!(sweep(&ctx, now).await.unwrap().requeued, 1);
        assert_eq!(sweep(&ctx, now).await.unwrap().requeued, 0, "due again from now: left to its message");
        let tasks = drain(&ctx).await;
        let [Task::Deliver { attempt: Some(2), manual: false, .. }] = tasks.as_slice() else { panic!("{tasks:?}") };
        deliver(&ctx, &ws, &hook.id, "dlv_SWEEP", false, Some(3)).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        crate::dispatch::run(&ctx, tasks[0].clone()).await.unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let stored = deliveries::get(&*ctx.store, &ws, &hook.id, "dlv_SWEEP").await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts.len()), (DeliveryStatus::Delivered, 2));
        assert_eq!(sweep(&ctx, now.plus(SWEEP_GRACE * 2)).await.unwrap().requeued, 0, "settled: out of the index");
    }
}

#[cfg(feature = "embedded")]
mod crash {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use std::time::Duration;

    use crate::context::AppContext;
    use crate::domain::delivery::{Delivery, DeliveryStatus};

    use crate::domain::delivery::INTERRUPTED;
    use crate::repo::deliveries;
    use crate::repo::workspaces;
    use crate::store::faulty::{Fault, FaultyStore, Op, Rule};
    use crate::support::time::Timestamp;
    use crate::webhooks::*;

    struct ManualClock(Mutex<Timestamp>);

    impl crate::support::time::Clock for ManualClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    async fn receiver() -> (String, Arc<AtomicUsize>) {
        crate::testing::receivers::counting_receiver("/hook", serde_json::json!("ok")).await
    }

    /// The worker sends, then dies before recording the result (here: the write of the
    /// result is lost). The attempt was on record before the send, so the queue's redelivery
    /// of the same message (attempt 1) runs after the lease as attempt 2, and the log counts
    /// both sends.
    async fn a_send_whose_result_was_never_recorded_still_counts(mut ctx: AppContext) {
        let clock = Arc::new(ManualClock(Mutex::new(Timestamp::now())));
        ctx.clock = clock.clone();
        let faulty = Arc::new(FaultyStore::new(ctx.store.clone()));
        ctx.store = faulty.clone();
        let ws = workspaces::create_workspace(&*ctx.store, "Crash", ctx.now()).await.unwrap().id;
        let (url, hits) = receiver().await;
        let id = queue_callback(&ctx, &ws, &url, "test", &serde_json::json!({"n": 1})).await.unwrap();
        // The claim is the delivery's next write and goes through; the result's write is lost.
        faulty.add(Rule::new(Op::Put, Fault::Timeout).on_keys_containing(id.as_str()).skip(1));

        let lost = deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await;
        assert!(lost.is_err(), "the task fails, so the queue hands it out again");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(faulty.injected(), 1);
        let stored = || async {
            let item = ctx.store.get(&deliveries::key(&ws, CALLBACK, &id)).await.unwrap().unwrap();
            item.parse::<Delivery>().unwrap()
        };
        let pending = stored().await;
        assert_eq!(pending.attempts_made(), 1, "the attempt is on record although its result is not");
        assert_eq!(pending.attempts[0].error.as_deref(), Some(INTERRUPTED));

        // While the lease holds, a redelivery does not send (the worker may still be alive).
        deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // After the lease, it sends again: attempt 2, and the log counts both.
        let later = ctx.now().plus(super::super::enqueue::lease(&ctx) + Duration::from_secs(1));
        *clock.0.lock().unwrap() = later;
        deliver(&ctx, &ws, CALLBACK, &id, false, Some(1)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let done = stored().await;
        assert_eq!(done.status, DeliveryStatus::Delivered);
        assert_eq!(done.attempts_made(), 2);
        let numbers: Vec<u32> = done.attempts.iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!((done.attempts[0].status_code, done.attempts[0].error.as_deref()), (None, Some(INTERRUPTED)));
        assert_eq!((done.attempts[1].status_code, done.attempts[1].error.as_deref()), (Some(200), None));
        assert!(done.in_flight_until.is_none());
    }

    /// The store throttles the delivery's claim: the task fails as transient, its message
    /// goes back to the queue for a retry (after the infrastructure backoff), and the retry
    /// delivers it once.
    async fn a_throttled_task_is_returned_for_retry_then_succeeds(mut ctx: AppContext) {
        let faulty = Arc::new(FaultyStore::new(ctx.store.clone()));
        ctx.store = faulty.clone();
        let ws = workspaces::create_workspace(&*ctx.store, "Throttled", ctx.now()).await.unwrap().id;
        let (url, hits) = receiver().await;
        let id = queue_callback(&ctx, &ws, &url, "test", &serde_json::json!({"n": 1})).await.unwrap();
        faulty.add(Rule::new(Op::Put, Fault::Throttle).on_keys_containing(id.as_str()));
        let messages = ctx.queue.receive(10, Duration::from_secs(1)).await.unwrap();
        assert_eq!(messages.len(), 1);

        let first = crate::dispatch::process_batch(&ctx, crate::dispatch::Worker::ALL, &messages).await;
        let [crate::dispatch::Disposition::RetryAfter(delay)] = first.as_slice() else { panic!("{first:?}") };
        assert!(*delay >= Duration::from_secs(30), "storage trouble backs off as infrastructure: {delay:?}");
        assert_eq!((faulty.injected(), hits.load(Ordering::SeqCst)), (1, 0));

        let mut again = messages[0].clone();
        again.receive_count += 1;
        let second = crate::dispatch::process_batch(&ctx, crate::dispatch::Worker::ALL, &[again]).await;
        assert_eq!(second, [crate::dispatch::Disposition::Done]);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let item = ctx.store.get(&deliveries::key(&ws, CALLBACK, &id)).await.unwrap().unwrap();
        let delivered: Delivery = item.parse().unwrap();
        assert_eq!((delivered.status, delivered.attempts_made()), (DeliveryStatus::Delivered, 1));
    }

    crate::testing::on_both_stores!(a_throttled_task_is_returned_for_retry_then_succeeds => a_throttled_task_is_returned_for_retry_then_succeeds_embedded, a_throttled_task_is_returned_for_retry_then_succeeds_dynamodb);

    crate::testing::on_both_stores!(a_send_whose_result_was_never_recorded_still_counts => a_send_whose_result_was_never_recorded_still_counts_embedded, a_send_whose_result_was_never_recorded_still_counts_dynamodb);
}
