//! The SQS-triggered worker Lambdas (`dispatcher`, `enrich-worker`, `workflow-worker`):
//! partial batch responses, and backoff set on each failed message through its visibility
//! timeout.

use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::{Disposition, Worker, process_batch};
use crate::context::AppContext;
use crate::queue::ReceivedMessage;
use crate::support::deadline;

/// Turns Lambda's SQS records into our messages (records without an id are skipped).
pub fn messages(event: SqsEvent) -> Vec<ReceivedMessage> {
    event
        .records
        .into_iter()
        .filter_map(|record| {
            let receive_count =
                record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            Some(ReceivedMessage {
                id: record.message_id?,
                receipt: record.receipt_handle.unwrap_or_default(),
                body: record.body.unwrap_or_default(),
                receive_count,
            })
        })
        .collect()
}

/// Runs the batch (the worker's lanes' tasks; others fail) within the invocation's
/// `deadline`; failed messages, and those not started for lack of time, get their backoff
/// and are reported for redelivery. `ctx.queue` must consume the worker's queue.
pub async fn handle(ctx: &AppContext, worker: Worker, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
    let messages = messages(event);
    let dispositions = deadline::within(deadline, process_batch(ctx, worker, &messages)).await;
    let mut response = SqsBatchResponse::default();
    for (message, disposition) in messages.iter().zip(dispositions) {
        if let Disposition::RetryAfter(delay) = disposition {
            if !message.receipt.is_empty()
                && let Err(e) = ctx.queue.set_visibility(&message.receipt, delay).await
            {
                tracing::warn!(message_id = message.id, error = %e, "could not set retry delay");
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dispatch::{Disposition, process_batch};
    use crate::queue::Lane;
    use crate::queue::OutgoingMessage;

    /// What Lambda's SQS event source hands the function for these received messages.
    fn event_of(messages: &[ReceivedMessage]) -> SqsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
                    "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                    "messageAttributes": {}, "eventSource": "aws:sqs"
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    async fn receive(queue: &dyn crate::queue::Queue, want: usize) -> Vec<ReceivedMessage> {
        let mut got = Vec::new();
        for _ in 0..30 {
            got.extend(queue.receive(10, Duration::from_millis(500)).await.unwrap());
            if got.len() >= want {
                break;
            }
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqs_batches_report_only_the_failed_message_which_then_dead_letters() {
        let fixture = crate::queue::contract::sqs_fixture().await;
        let (mut ctx, _dir) = crate::testing::embedded_context();
        ctx.queue = fixture.queue.clone();
        let valid = crate::queue::Task::LeadsSaved {
            workspace_id: "ws_none".into(),
            lead_ids: vec!["req_x_0001".into()],
            event_id: "evt_1".into(),
            occurred_at: crate::support::time::Timestamp::now(),
            webhook_id: None,
        };
        fixture.queue.send(vec![valid.message(), OutgoingMessage::now("not a task")]).await.unwrap();

        let batch = receive(&*fixture.queue, 2).await;
        assert_eq!(batch.len(), 2);
        let poison_id = batch.iter().find(|m| m.body == "not a task").unwrap().id.clone();
        let response = handle(&ctx, Worker::CORE, event_of(&batch), None).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, [poison_id.as_str()]);
        // The event source deletes what succeeded.
        for m in batch.iter().filter(|m| m.id != poison_id) {
            fixture.queue.delete(&m.receipt).await.unwrap();
        }
        // The poison message comes back at once (visibility 0) until the redrive policy
        // (2 receives) moves it to the dead-letter queue.
        let again = receive(&*fixture.queue, 1).await;
        assert_eq!((again.len(), again[0].id.as_str(), again[0].receive_count), (1, poison_id.as_str(), 2));
        let response = handle(&ctx, Worker::CORE, event_of(&again), None).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert!(fixture.queue.receive(10, Duration::from_millis(500)).await.unwrap().is_empty());
        let dead = receive(&*fixture.dlq, 1).await;
        assert_eq!((dead.len(), dead[0].body.as_str()), (1, "not a task"));
    }

    /// One task of every kind.
    fn every_task() -> Vec<crate::queue::Task> {
        use crate::queue::Task;
        let ws = || "ws_1".to_owned();
        let tasks = vec![
            Task::LeadsSaved {
                workspace_id: ws(),
                lead_ids: vec!["lead_1".into()],
                event_id: "evt_1".into(),
                occurred_at: crate::support::time::Timestamp::now(),
                webhook_id: None,
            },
            Task::Deliver {
                workspace_id: ws(),
                webhook_id: "wh_1".into(),
                delivery_id: "dlv_1".into(),
                manual: false,
                attempt: Some(1),
            },
            Task::PushRetry { workspace_id: ws(), push_id: "push_1".into(), attempt: 2 },
            Task::PushFollowUp { workspace_id: ws(), push_id: "push_1".into(), attempt: 1 },
            Task::Sweep,
            Task::Enrich { workspace_id: ws(), id: "ver_1".into() },
            Task::Enrich { workspace_id: ws(), id: "efn_1".into() },
            Task::VerifyChunk { workspace_id: ws(), job_id: "vjob_1".into(), chunk: 3 },
            Task::WorkflowStart {
                workspace_id: ws(),
                campaign_id: "cmp_1".into(),
                version: 1,
                lead_ids: vec!["lead_1".into()],
                trigger: crate::domain::workflow::RunTrigger::Ingest,
            },
            Task::WorkflowBackfill { workspace_id: ws(), campaign_id: "cmp_1".into(), cursor: None },
            Task::WorkflowRun { workspace_id: ws(), lead_id: "lead_1".into(), run_id: "run_1".into() },
            Task::Rescore { workspace_id: ws() },
        ];
        // A new kind must be added here (and given its lane).
        assert_eq!(tasks.iter().map(|t| t.name()).collect::<std::collections::BTreeSet<_>>().len(), 11);
        assert_eq!(tasks.len(), 12, "an enrich task for the verifier and one for a finder");
        for task in &tasks {
            assert_eq!(crate::queue::Lane::of_message(&task.message().body), task.lane(), "{task:?}");
        }
        tasks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_task_kind_lands_on_its_lanes_queue_and_other_workers_refuse_it() {
        use crate::queue::Queue as _;
        use crate::queue::sqs::SqsQueue;
        let config = crate::testing::moto_config().await;
        let client = aws_sdk_sqs::Client::new(&config);
        let name = crate::testing::unique("lanes");
        let mut urls = Vec::new();
        for lane in Lane::ALL {
            let queue = format!("{name}-{}", lane.function());
            urls.push(crate::aws::ensure_queues(&client, &queue, 5, 30).await.unwrap().queue_url);
        }
        let urls: [String; 4] = urls.try_into().unwrap();
        // Any function sends (here one whose own lane is Core); a redrive sends alike.
        let sender = SqsQueue::routed(client.clone(), urls.clone(), Lane::Core);
        let tasks = every_task();
        let mut messages: Vec<OutgoingMessage> = tasks.iter().map(|t| t.message()).collect();
        messages.push(OutgoingMessage::now("not a task"));
        crate::queue::Queue::send(&sender, messages).await.unwrap();

        for lane in Lane::ALL {
            let consumer = SqsQueue::routed(client.clone(), urls.clone(), lane);
            let mut want: Vec<String> =
                tasks.iter().filter(|t| t.lane() == lane).map(|t| t.name().to_owned()).collect();
            if lane == Lane::Core {
                want.push("not a task".into());
            }
            let got = receive(&consumer, want.len()).await;
            let mut names: Vec<String> = got
                .iter()
                .map(|m| {
                    serde_json::from_str::<crate::queue::Task>(&m.body).map_or(m.body.clone(), |t| t.name().into())
                })
                .collect();
            names.sort();
            want.sort();
            assert_eq!(names, want, "the {lane:?} queue");
            for m in &got {
                crate::queue::Queue::delete(&consumer, &m.receipt).await.unwrap();
            }
        }

        // A core task that reached the enrichment queue (a wrong URL, say): the enrichment
        // worker reports it failed, with backoff, so it comes back (and later dead-letters).
        let (mut ctx, _dir) = crate::testing::embedded_context();
        let enrich_queue = SqsQueue::routed(client.clone(), urls.clone(), Lane::Enrich);
        ctx.queue = std::sync::Arc::new(enrich_queue.clone());
        let stray = tasks.iter().find(|t| t.lane() == Lane::Core).unwrap();
        SqsQueue::new(client.clone(), &urls[Lane::Enrich as usize]).send(vec![stray.message()]).await.unwrap();
        let batch = receive(&enrich_queue, 1).await;
        let response = handle(&ctx, Worker::ENRICH, event_of(&batch), None).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, [batch[0].id.as_str()]);
        let error = crate::dispatch::wrong_lane(stray).to_string();
        assert!(error.contains("LEADPUSH_QUEUE_URL") && error.contains("`dispatcher`"), "{error}");
        // Back after its backoff (2-3 s): long polls of 1 s, for at most 15 s.
        let mut again = Vec::new();
        for _ in 0..15 {
            again.extend(enrich_queue.receive(1, Duration::from_secs(1)).await.unwrap());
            if !again.is_empty() {
                break;
            }
        }
        assert_eq!((again.len(), again[0].id.as_str(), again[0].receive_count), (1, batch[0].id.as_str(), 2));
    }

    /// The push ids the `recording` worker ran, in order.
    static RAN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    /// A core worker whose `push_retry` records its push id, except for `hang`, which never
    /// ends (a task that ignores every time cap).
    fn recording(
        _ctx: &AppContext,
        task: crate::queue::Task,
    ) -> futures_util::future::BoxFuture<'_, Result<(), crate::queue::TaskError>> {
        Box::pin(async move {
            if let crate::queue::Task::PushRetry { push_id, .. } = task {
                if push_id == "hang" {
                    std::future::pending::<()>().await;
                }
                RAN.lock().unwrap().push(push_id);
            }
            Ok(())
        })
    }

    fn retries(ids: &[&str]) -> Vec<ReceivedMessage> {
        ids.iter()
            .map(|id| {
                let task =
                    crate::queue::Task::PushRetry { workspace_id: "ws_1".into(), push_id: (*id).into(), attempt: 2 };
                ReceivedMessage {
                    id: format!("msg_{id}"),
                    receipt: String::new(),
                    body: task.message().body,
                    receive_count: 1,
                }
            })
            .collect()
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        let mut ids: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        ids.sort();
        ids
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn near_the_deadline_messages_are_not_started_or_are_abandoned_and_come_back_to_run_once() {
        use std::time::{Duration, Instant};
        let (ctx, _dir) = crate::testing::embedded_context();
        let worker = Worker { lanes: &[crate::queue::Lane::Core], run: recording };
        let batch = retries(&["p1", "p2", "p3", "hang"]);

        // Inside the reserve: nothing starts, every message is reported for redelivery.
        let response = handle(&ctx, worker, event_of(&batch), Some(Instant::now() + deadline::RESERVE / 2)).await;
        assert_eq!(failed(&response), ["msg_hang", "msg_p1", "msg_p2", "msg_p3"]);
        assert!(RAN.lock().unwrap().is_empty(), "nothing ran");

        // Time to start: the tasks that end are done; the one still running at the hard stop
        // is abandoned and reported, so the invocation answers instead of being killed.
        let at = Instant::now() + deadline::HARD_STOP + Duration::from_secs(3);
        let dispositions =
            deadline::within_reserving(at, Duration::from_secs(1), process_batch(&ctx, worker, &batch)).await;
        let done: Vec<bool> = dispositions.iter().map(|d| *d == Disposition::Done).collect();
        assert_eq!(done, [true, true, true, false]);
        let mut ran = RAN.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, ["p1", "p2", "p3"], "each ran once");
    }
}
