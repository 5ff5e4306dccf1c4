//! The queue contract, run against the embedded queue and SQS (moto).

use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A work queue that dead-letters after 2 receives, and its dead-letter queue.
pub struct Fixture {
    pub queue: Arc<dyn Queue>,
    pub dlq: Arc<dyn Queue>,
    _keep: Option<Box<dyn std::any::Any + Send>>,
}

const MAX_RECEIVES: u32 = 2;

#[cfg(feature = "embedded")]
pub fn embedded_fixture() -> Fixture {
    use super::sqlite::{EmbeddedQueue, EmbeddedQueueConfig};
    let (db, dir) = crate::testing::embedded_db();
    let queue = EmbeddedQueue::new(
        db.clone(),
        EmbeddedQueueConfig {
            name: "work".into(),
            visibility_timeout: Duration::from_secs(30),
            dead_letter: Some(("work-dlq".into(), MAX_RECEIVES)),
        },
    );
    let dlq = EmbeddedQueue::new(
        db,
        EmbeddedQueueConfig { name: "work-dlq".into(), visibility_timeout: Duration::from_secs(30), dead_letter: None },
    );
    Fixture { queue: Arc::new(queue), dlq: Arc::new(dlq), _keep: Some(Box::new(dir)) }
}

pub async fn sqs_fixture() -> Fixture {
    let config = crate::testing::moto_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = crate::aws::ensure_queues(&client, &crate::testing::unique("contract"), MAX_RECEIVES, 30).await.unwrap();
    Fixture {
        queue: Arc::new(crate::queue::sqs::SqsQueue::new(client.clone(), urls.queue_url)),
        dlq: Arc::new(crate::queue::sqs::SqsQueue::new(client, urls.dlq_url)),
        _keep: None,
    }
}

/// Receives until `want` messages arrived or 15 s passed.
async fn receive_n(queue: &dyn Queue, want: usize) -> Vec<ReceivedMessage> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        got.extend(queue.receive(10, Duration::from_millis(500)).await.unwrap());
    }
    got
}

pub async fn sent_messages_are_received_once_and_deleted(f: Fixture) {
    f.queue.send(vec![OutgoingMessage::now(r#"{"task":"a"}"#)]).await.unwrap();
    let got = receive_n(&*f.queue, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].body.as_str(), got[0].receive_count), (r#"{"task":"a"}"#, 1));
    // In flight: invisible to other receivers.
    assert!(f.queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    f.queue.delete(&got[0].receipt).await.unwrap();
    f.queue.set_visibility(&got[0].receipt, Duration::ZERO).await.ok();
    assert!(f.queue.receive(10, Duration::from_millis(200)).await.unwrap().is_empty());
}

pub async fn delayed_messages_stay_hidden_until_due(f: Fixture) {
    f.queue.send(vec![OutgoingMessage::delayed("later", Duration::from_secs(2))]).await.unwrap();
    assert!(f.queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    let got = receive_n(&*f.queue, 1).await;
    assert_eq!(got.len(), 1, "delayed message never arrived");
    assert_eq!(got[0].body, "later");
}

pub async fn visibility_change_redelivers_with_a_higher_receive_count(f: Fixture) {
    f.queue.send(vec![OutgoingMessage::now("retry me")]).await.unwrap();
    let first = receive_n(&*f.queue, 1).await;
    f.queue.set_visibility(&first[0].receipt, Duration::ZERO).await.unwrap();
    let second = receive_n(&*f.queue, 1).await;
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id.as_str(), second[0].receive_count), (first[0].id.as_str(), 2));
}

pub async fn messages_dead_letter_after_max_receives(f: Fixture) {
    f.queue.send(vec![OutgoingMessage::now("poison")]).await.unwrap();
    for attempt in 1..=MAX_RECEIVES {
        let got = receive_n(&*f.queue, 1).await;
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        f.queue.set_visibility(&got[0].receipt, Duration::ZERO).await.unwrap();
    }
    assert!(f.queue.receive(10, Duration::from_millis(300)).await.unwrap().is_empty());
    let dead = receive_n(&*f.dlq, 1).await;
    assert_eq!(dead.len(), 1, "message did not reach the dead-letter queue");
    assert_eq!(dead[0].body, "poison");
}

pub async fn dead_letters_redrive_back_to_the_work_queue(f: Fixture) {
    f.queue.send(vec![OutgoingMessage::now("was poison")]).await.unwrap();
    for _ in 1..=MAX_RECEIVES {
        let got = receive_n(&*f.queue, 1).await;
        f.queue.set_visibility(&got[0].receipt, Duration::ZERO).await.unwrap();
    }
    assert!(f.queue.receive(10, Duration::from_millis(300)).await.unwrap().is_empty());
    let moved = redrive(&*f.dlq, &*f.queue, 100).await.unwrap();
    assert_eq!(moved, 1);
    let back = receive_n(&*f.queue, 1).await;
    assert_eq!((back.len(), back[0].body.as_str(), back[0].receive_count), (1, "was poison", 1));
    assert!(f.dlq.receive(10, Duration::from_millis(300)).await.unwrap().is_empty(), "the dead-letter queue is empty");
}

pub async fn batches_of_many_messages_all_arrive(f: Fixture) {
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    f.queue.send(bodies.iter().map(OutgoingMessage::now).collect()).await.unwrap();
    let got = receive_n(&*f.queue, 25).await;
    let mut received: Vec<String> = got.into_iter().map(|m| m.body).collect();
    received.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(received, expected);
    let too_big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(f.queue.send(vec![OutgoingMessage::now(too_big)]).await, Err(QueueError::TooLarge(_))));
}

macro_rules! queue_suite {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "embedded")]
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::embedded_fixture()).await; }
            )*
        }
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::sqs_fixture().await).await; }
            )*
        }
    };
}

queue_suite!(
    sent_messages_are_received_once_and_deleted,
    delayed_messages_stay_hidden_until_due,
    visibility_change_redelivers_with_a_higher_receive_count,
    messages_dead_letter_after_max_receives,
    batches_of_many_messages_all_arrive,
    dead_letters_redrive_back_to_the_work_queue,
);
