use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::*;

#[test]
fn cancellation_reasons_are_told_apart() {
    let reasons = |codes: &[&str]| cancellation(&codes.iter().map(|c| Some(*c)).collect::<Vec<_>>());
    assert_eq!(reasons(&["None", "ConditionalCheckFailed"]), (Class::Condition, Some(1)));
    assert_eq!(reasons(&["TransactionConflict", "None"]), (Class::Conflict, Some(0)));
    assert_eq!(reasons(&["None", "ThrottlingError"]), (Class::Throttled, Some(1)));
    assert_eq!(reasons(&["None", "ProvisionedThroughputExceeded"]), (Class::Throttled, Some(1)));
    assert_eq!(reasons(&["ValidationError", "TransactionConflict"]), (Class::Invalid, Some(0)));
    // A failed condition is the caller's answer even beside a conflict.
    assert_eq!(reasons(&["TransactionConflict", "ConditionalCheckFailed"]), (Class::Condition, Some(1)));
    assert_eq!(cancellation(&[None, None]), (Class::Conflict, None));
}

#[test]
fn pauses_grow_with_jitter_up_to_the_cap() {
    let policy = RetryPolicy { attempts: 8, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
    for attempt in 0..10 {
        let ceiling = Duration::from_millis(100 << attempt.min(4)).min(Duration::from_secs(1));
        let pause = policy.pause(attempt);
        assert!(pause >= ceiling / 2 && pause <= ceiling, "attempt {attempt}: {pause:?}");
    }
    let distinct: std::collections::HashSet<Duration> = (0..20).map(|_| policy.pause(5)).collect();
    assert!(distinct.len() > 1, "pauses are jittered");
}

/// A stand-in DynamoDB endpoint on loopback answering each call with the next scripted
/// reply (status, body); records the operation and request body of every call.
struct FakeDynamo {
    url: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn fake_dynamo(replies: Vec<(u16, Value)>) -> FakeDynamo {
    let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    let recorded = calls.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let recorded = recorded.clone();
        let replies = replies.clone();
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let op = target.rsplit('.').next().unwrap_or("").to_owned();
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            recorded.lock().unwrap().push((op, request));
            let (status, body) = replies.lock().unwrap().next().unwrap_or((200, json!({})));
            (StatusCode::from_u16(status).unwrap(), [("content-type", "application/x-amz-json-1.0")], body.to_string())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake DynamoDB");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeDynamo { url, calls }
}

impl FakeDynamo {
    fn store(&self) -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(crate::support::tls::aws_http_client())
            .endpoint_url(&self.url)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("t", "t", None, None, "test"))
            // Only the adapter's own retries, so the script is consumed predictably.
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let fast = RetryPolicy { attempts: 4, base: Duration::from_millis(1), cap: Duration::from_millis(5) };
        DynamoStore::new(Client::from_conf(config), "t").with_retry(fast)
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }
}

fn cancelled(codes: &[&str]) -> (u16, Value) {
    let reasons: Vec<Value> = codes.iter().map(|c| json!({"Code": c, "Message": format!("{c} here")})).collect();
    (
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": reasons,
        }),
    )
}

fn error(kind: &str) -> (u16, Value) {
    (400, json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": kind}))
}

fn two_puts() -> Vec<WriteOp> {
    ["a", "b"]
        .iter()
        .map(|sk| WriteOp::Put {
            item: Item::new(Key::new("P", *sk), &json!({})).unwrap(),
            condition: Condition::NotExists,
        })
        .collect()
}

#[tokio::test]
async fn transaction_conflicts_are_retried_with_the_same_request_token() {
    let fake =
        fake_dynamo(vec![cancelled(&["TransactionConflict", "None"]), cancelled(&["None", "ThrottlingError"])]).await;
    fake.store().transact_write(two_puts()).await.expect("third attempt succeeds");
    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    let tokens: Vec<&Value> = calls.iter().map(|(_, body)| &body["ClientRequestToken"]).collect();
    assert!(tokens[0].is_string(), "{tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for every attempt: {tokens:?}");
}

#[tokio::test]
async fn each_transaction_has_its_own_request_token() {
    let fake = fake_dynamo(vec![]).await;
    let store = fake.store();
    store.transact_write(two_puts()).await.unwrap();
    store.transact_write(two_puts()).await.unwrap();
    let calls = fake.calls();
    assert_ne!(calls[0].1["ClientRequestToken"], calls[1].1["ClientRequestToken"]);
}

#[tokio::test]
async fn validation_errors_in_a_transaction_are_refused_at_once() {
    let fake = fake_dynamo(vec![cancelled(&["None", "ValidationError"])]).await;
    let err = fake.store().transact_write(two_puts()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Refused(text) if text.contains("ValidationError here")), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(fake.calls().len(), 1, "never retried");
}

#[tokio::test]
async fn failed_conditions_name_their_operation_and_are_not_retried() {
    let fake = fake_dynamo(vec![cancelled(&["None", "ConditionalCheckFailed"])]).await;
    let err = fake.store().transact_write(two_puts()).await.unwrap_err();
    assert!(matches!(err, StoreError::TransactionCanceled { failed_op: Some(1) }), "{err:?}");
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn persistent_throttling_becomes_busy_after_the_retry_budget() {
    let fake = fake_dynamo(vec![cancelled(&["ThrottlingError", "None"]); 10]).await;
    let err = fake.store().transact_write(two_puts()).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(fake.calls().len(), 4, "the policy's four attempts");
}

#[tokio::test]
async fn persistent_conflicts_are_reported_as_contention() {
    let fake = fake_dynamo(vec![cancelled(&["TransactionConflict", "None"]); 10]).await;
    let err = fake.store().transact_write(two_puts()).await.unwrap_err();
    assert!(matches!(err, StoreError::TransactionCanceled { failed_op: None }), "{err:?}");
}

#[tokio::test]
async fn a_put_on_an_item_inside_a_running_transaction_is_retried() {
    let fake = fake_dynamo(vec![error("TransactionConflictException"), error("TransactionConflictException")]).await;
    let item = Item::new(Key::new("P", "a"), &json!({"n": 1})).unwrap();
    fake.store().put(item, Condition::Always).await.expect("third attempt succeeds");
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn single_item_errors_map_to_their_class() {
    let fake = fake_dynamo(vec![
        error("ConditionalCheckFailedException"),
        error("ValidationException"),
        error("ProvisionedThroughputExceededException"),
        error("ProvisionedThroughputExceededException"),
        error("ProvisionedThroughputExceededException"),
        error("ProvisionedThroughputExceededException"),
        error("InternalServerError"),
    ])
    .await;
    let store = fake.store();
    let item = || Item::new(Key::new("P", "a"), &json!({})).unwrap();
    let err = store.put(item(), Condition::NotExists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let err = store.put(item(), Condition::Always).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
    let err = store.increment(&Key::new("P", "c"), &[("n".into(), 1)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    let err = store.get(&Key::new("P", "a")).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(fake.calls().len(), 7);
}

#[tokio::test]
async fn unprocessed_batch_items_are_resent_until_written() {
    let unprocessed = |sks: &[&str]| {
        let requests: Vec<Value> = sks
            .iter()
            .map(|sk| json!({"PutRequest": {"Item": {"pk": {"S": "P"}, "sk": {"S": sk}, "version": {"N": "1"}}}}))
            .collect();
        (200, json!({"UnprocessedItems": {"t": requests}}))
    };
    // Progress resets the budget: six throttled rounds pass with a budget of four.
    let fake = fake_dynamo(vec![
        unprocessed(&["a", "b", "c"]),
        unprocessed(&["a", "b", "c"]),
        unprocessed(&["a", "b"]),
        unprocessed(&["a", "b"]),
        unprocessed(&["a"]),
        unprocessed(&["a"]),
    ])
    .await;
    let items = ["a", "b", "c", "d"].iter().map(|sk| Item::new(Key::new("P", *sk), &json!({})).unwrap()).collect();
    fake.store().batch_put(items).await.expect("written in the end");
    let calls = fake.calls();
    assert_eq!(calls.len(), 7);
    assert_eq!(calls[6].1["RequestItems"]["t"].as_array().unwrap().len(), 1);

    let stuck = fake_dynamo(vec![unprocessed(&["a"]); 10]).await;
    let items = vec![Item::new(Key::new("P", "a"), &json!({})).unwrap()];
    let err = stuck.store().batch_put(items).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
}
