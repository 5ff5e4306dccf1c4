//! AWS clients and the provisioning `leadpush init-aws` runs against `AWS_ENDPOINT_URL`
//! (moto locally); on AWS, `template.yaml` creates the same resources.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::store::Index;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(String);

fn err<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> ProvisionError + '_ {
    move |e| ProvisionError(format!("{what}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// SDK configuration from the environment (`AWS_ENDPOINT_URL`, region, credentials).
pub async fn sdk_config() -> SdkConfig {
    crate::tls::aws_config_loader().load().await
}

/// The DynamoDB client: adaptive retries (client-side rate limiting once throttled, so a
/// throttled Lambda slows down instead of burning its attempts), five attempts.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let retry = aws_sdk_dynamodb::config::retry::RetryConfig::adaptive().with_max_attempts(5);
    let config = aws_sdk_dynamodb::config::Builder::from(sdk).retry_config(retry).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates the single table (keys, `gsi1`..`gsi4`, TTL on `expires_at`) unless it exists.
/// `gsi1` and `gsi4` project whole items (they serve listings); `gsi2`/`gsi3` are lookups
/// and project keys only (callers read the items by key).
pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), ProvisionError> {
    let exists = client.describe_table().table_name(table).send().await.is_ok();
    if !exists {
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let mut indexes = Vec::new();
        for index in Index::SECONDARY {
            let (pk, sk) = index.key_attrs();
            let projection = match index {
                Index::Gsi1 | Index::Gsi4 => ProjectionType::All,
                _ => ProjectionType::KeysOnly,
            };
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name().unwrap_or_default())
                    .key_schema(key(pk, KeyType::Hash).map_err(err("gsi key"))?)
                    .key_schema(key(sk, KeyType::Range).map_err(err("gsi key"))?)
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .map_err(err("gsi"))?,
            );
        }
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(
                ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk"]
                    .into_iter()
                    .map(attr)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(err("attributes"))?,
            ))
            .key_schema(key("pk", KeyType::Hash).map_err(err("key"))?)
            .key_schema(key("sk", KeyType::Range).map_err(err("key"))?)
            .set_global_secondary_indexes(Some(indexes))
            .send()
            .await
            .map_err(err("create table"))?;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(err("ttl"))?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            // Enabling TTL twice is an error on AWS; it is already what we want.
            let text = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
            if text.contains("already enabled") { Ok(()) } else { Err(err("ttl")(e)) }
        })
}

/// The URLs of a work queue and its dead-letter queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueUrls {
    pub queue_url: String,
    pub dlq_url: String,
}

/// Creates `<name>` with a redrive policy to `<name>-dlq` after `max_receives` receives.
pub async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
    visibility_timeout_secs: u32,
) -> Result<QueueUrls, ProvisionError> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(err("create dead-letter queue"))?
        .queue_url
        .ok_or_else(|| ProvisionError("create dead-letter queue: no url returned".into()))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(err("dead-letter queue arn"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| ProvisionError("dead-letter queue has no arn".into()))?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()});
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_secs.to_string())
        .send()
        .await
        .map_err(err("create queue"))?
        .queue_url
        .ok_or_else(|| ProvisionError("create queue: no url returned".into()))?;
    Ok(QueueUrls { queue_url, dlq_url })
}

/// Visibility timeout of the work queue: six times the dispatcher's 60 s timeout, as AWS
/// recommends for Lambda event sources.
pub const WORK_QUEUE_VISIBILITY_SECS: u32 = 360;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Provisioned {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
}

/// Creates the table and the queues from the environment's SDK configuration.
pub async fn provision(table: &str, queue: &str, max_receives: u32) -> Result<Provisioned, ProvisionError> {
    let sdk = sdk_config().await;
    ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await?;
    let urls = ensure_queues(&aws_sdk_sqs::Client::new(&sdk), queue, max_receives, WORK_QUEUE_VISIBILITY_SECS).await?;
    Ok(Provisioned { table: table.to_owned(), queue_url: urls.queue_url, dlq_url: urls.dlq_url })
}

/// `template.yaml` read as text (the checks need no YAML parser): the settings that make
/// the stack behave on AWS as it does under moto.
#[cfg(test)]
mod template_tests {
    fn template() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml")
    }

    /// The text of one top-level resource: its header line and everything indented deeper.
    fn resource<'a>(text: &'a str, name: &str) -> &'a str {
        let start = text.find(&format!("\n  {name}:\n")).unwrap_or_else(|| panic!("resource {name} missing")) + 1;
        let body = &text[start..];
        let mut end = body.len();
        let mut offset = body.find('\n').map_or(body.len(), |i| i + 1);
        while offset < body.len() {
            let line = &body[offset..body[offset..].find('\n').map_or(body.len(), |i| offset + i)];
            let deeper = line.starts_with("   ") || line.trim().is_empty() || line.trim_start().starts_with('#');
            if !deeper {
                end = offset;
                break;
            }
            offset += line.len() + 1;
        }
        &body[..end]
    }

    fn number_after(text: &str, label: &str) -> u64 {
        let at = text.find(label).unwrap_or_else(|| panic!("{label} missing"));
        text[at + label.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number")
    }

    #[test]
    fn the_dispatcher_scales_by_its_event_source_not_reserved_concurrency() {
        let text = template();
        let dispatcher = resource(&text, "DispatcherFunction");
        assert!(!dispatcher.contains("ReservedConcurrentExecutions"), "{dispatcher}");
        let scaling = dispatcher.find("ScalingConfig:").expect("ScalingConfig on the SQS event");
        assert!(dispatcher[scaling..].contains("MaximumConcurrency:"));
        assert!(dispatcher.contains("Type: SQS") && dispatcher.contains("ReportBatchItemFailures"));
    }

    #[test]
    fn the_visibility_timeout_is_at_least_six_dispatcher_timeouts() {
        let text = template();
        let timeout = number_after(resource(&text, "DispatcherFunction"), "Timeout:");
        let queue = resource(&text, "WorkQueue");
        let visibility = number_after(queue, "VisibilityTimeout:");
        assert!(visibility >= 6 * timeout, "visibility {visibility} s < 6 × {timeout} s");
        assert!(number_after(queue, "maxReceiveCount:") >= 10, "backoff for throttling needs 10 receives");
    }

    #[test]
    fn policies_name_their_actions_without_wildcards_or_scans() {
        let text = template();
        for line in text.lines().filter(|l| l.contains("Action")) {
            assert!(!line.contains('*'), "wildcard action: {line}");
        }
        assert!(!text.contains("dynamodb:Scan"), "no function scans the table");
        // SAM's DynamoDB policy templates include Scan (and table-wide deletes).
        for template in ["DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy"] {
            assert!(!text.contains(template), "{template} grants Scan; name the actions");
        }
    }

    #[test]
    fn logs_are_kept_for_a_bounded_time_and_alarms_watch_the_failure_modes() {
        let text = template();
        assert!(text.contains("LoggingConfig:\n      LogGroup: !Ref LogGroup"), "every function logs to LogGroup");
        for group in ["LogGroup", "AccessLogGroup"] {
            assert!(resource(&text, group).contains("RetentionInDays:"), "{group} without retention");
        }
        let api = resource(&text, "HttpApi");
        assert!(api.contains("AccessLogSettings:") && api.contains("ThrottlingRateLimit:"), "{api}");
        for (alarm, metric) in [
            ("DeadLetterAlarm", "ApproximateNumberOfMessagesVisible"),
            ("DispatcherErrorsAlarm", "Errors"),
            ("LambdaThrottlesAlarm", "Throttles"),
            ("TableThrottlesAlarm", "ThrottledRequests"),
            ("QueueAgeAlarm", "ApproximateAgeOfOldestMessage"),
            ("StalledPushAlarm", "StalledPushes"),
        ] {
            assert!(resource(&text, alarm).contains(&format!("MetricName: {metric}")), "{alarm}");
        }
        // The stalled-push metric counts what the sweeper logs.
        assert!(resource(&text, "StalledPushMetric").contains("sweeper re-queued a stalled push"));
        let sweep = resource(&text, "SweepSchedule");
        assert!(sweep.contains(r#"Input: '{"task":"sweep"}'"#), "{sweep}");
    }

    #[test]
    fn the_sweep_message_is_a_task_the_dispatcher_runs() {
        let task: crate::dispatch::Task = serde_json::from_str(r#"{"task":"sweep"}"#).unwrap();
        assert_eq!(task, crate::dispatch::Task::Sweep);
    }
}
