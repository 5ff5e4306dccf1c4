//! AWS clients and the provisioning `leadpush init-aws` runs against `AWS_ENDPOINT_URL`
//! (moto locally); on AWS, `template.yaml` creates the same resources.

pub mod kms;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_types::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::store::Index;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(String);

fn err<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> ProvisionError + '_ {
    move |e| ProvisionError(format!("{what}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// The AWS configuration the environment lacks; names the variables to set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AwsConfigError {
    #[error("AWS region missing: set AWS_REGION (Lambda sets it)")]
    MissingRegion,
    #[error(
        "AWS credentials missing: set {0} (Lambda sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)"
    )]
    MissingCredentials(&'static str),
}

impl From<AwsConfigError> for ProvisionError {
    fn from(e: AwsConfigError) -> Self {
        ProvisionError(e.to_string())
    }
}

/// The services whose endpoint an `AWS_ENDPOINT_URL_<SERVICE>` variable may override,
/// by the SDK's service id.
const SERVICES: [&str; 2] = ["DynamoDB", "SQS"];

/// What the SDK connects to when AWS's own endpoints are not wanted: the per-service
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`, read when the config was built.
#[derive(Debug, Default)]
struct ServiceEndpoints(BTreeMap<&'static str, String>);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        (key.env() == "AWS_ENDPOINT_URL").then(|| self.0.get(key.service_id()).cloned()).flatten()
    }
}

/// The SDK configuration of a Lambda, from its environment only, as `lookup` returns
/// it: region (`AWS_REGION`, else `AWS_DEFAULT_REGION`), credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`) and endpoints (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`, all ignored when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`). Lambda provides exactly these, so the
/// default chain of aws-config (profiles, SSO, web identity, IMDS: about 1 MiB of every
/// bootstrap) is not linked. The rest is aws-config's defaults: standard retries,
/// 3.1 s connect timeout, stalled-stream protection, a lazy identity cache.
pub fn sdk_config_from(lookup: impl Fn(&str) -> Option<String>) -> Result<SdkConfig, AwsConfigError> {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::config::{IdentityCache, SharedAsyncSleep, StalledStreamProtectionConfig};

    let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).ok_or(AwsConfigError::MissingRegion)?;
    let key_id = var("AWS_ACCESS_KEY_ID").ok_or(AwsConfigError::MissingCredentials("AWS_ACCESS_KEY_ID"))?;
    let secret = var("AWS_SECRET_ACCESS_KEY").ok_or(AwsConfigError::MissingCredentials("AWS_SECRET_ACCESS_KEY"))?;
    let credentials = Credentials::new(key_id, secret, var("AWS_SESSION_TOKEN"), None, "Environment");

    let ignore_endpoints = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut endpoints = ServiceEndpoints::default();
    if !ignore_endpoints {
        for service in SERVICES {
            if let Some(url) = var(&format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase())) {
                endpoints.0.insert(service, url);
            }
        }
    }
    let endpoint_url = var("AWS_ENDPOINT_URL").filter(|_| !ignore_endpoints);

    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(IdentityCache::lazy().build())
        .service_config(endpoints)
        .http_client(crate::support::tls::aws_http_client())
        .sleep_impl(SharedAsyncSleep::new(aws_smithy_async::rt::sleep::TokioSleep::new()))
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .retry_config(RetryConfig::standard())
        .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_millis(3100)).build())
        .stalled_stream_protection(StalledStreamProtectionConfig::enabled().build());
    builder.set_endpoint_url(endpoint_url);
    Ok(builder.build())
}

/// SDK configuration from the process environment (see `sdk_config_from`). With the
/// `aws-profiles` feature (the CLI), aws-config's default chain instead, so an
/// operator's shell profile or SSO session works too.
pub async fn sdk_config() -> Result<SdkConfig, AwsConfigError> {
    #[cfg(feature = "aws-profiles")]
    {
        Ok(crate::support::tls::aws_config_loader().load().await)
    }
    #[cfg(not(feature = "aws-profiles"))]
    {
        sdk_config_from(|name| std::env::var(name).ok())
    }
}

/// The DynamoDB client: adaptive retries (client-side rate limiting once throttled, so a
/// throttled Lambda slows down instead of burning its attempts), five attempts.
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let retry = aws_sdk_dynamodb::config::retry::RetryConfig::adaptive().with_max_attempts(5);
    let config = aws_sdk_dynamodb::config::Builder::from(sdk).retry_config(retry).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates the single table (keys, `gsi1`..`gsi4`, TTL on `expires_at`) unless it exists.
/// Each index projects what `Index::projection` says, as the template does.
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
            let projection = match index.projection() {
                crate::store::Projection::All => Projection::builder().projection_type(ProjectionType::All),
                crate::store::Projection::KeysOnly => Projection::builder().projection_type(ProjectionType::KeysOnly),
                crate::store::Projection::Include(names) => names
                    .iter()
                    .fold(Projection::builder().projection_type(ProjectionType::Include), |projection, name| {
                        projection.non_key_attributes(*name)
                    }),
            };
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name().unwrap_or_default())
                    .key_schema(key(pk, KeyType::Hash).map_err(err("gsi key"))?)
                    .key_schema(key(sk, KeyType::Range).map_err(err("gsi key"))?)
                    .projection(projection.build())
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
    /// A new KMS key for stored secrets (`LEADPUSH_KMS_KEY_ID`).
    pub kms_key_id: String,
}

/// Creates the table and the queues from the environment's SDK configuration.
pub async fn provision(table: &str, queue: &str, max_receives: u32) -> Result<Provisioned, ProvisionError> {
    let sdk = sdk_config().await?;
    ensure_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await?;
    let urls = ensure_queues(&aws_sdk_sqs::Client::new(&sdk), queue, max_receives, WORK_QUEUE_VISIBILITY_SECS).await?;
    let kms_key_id = kms::create_key(&aws_sdk_kms::Client::new(&sdk)).await?;
    Ok(Provisioned { table: table.to_owned(), queue_url: urls.queue_url, dlq_url: urls.dlq_url, kms_key_id })
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

    /// Each worker function and the queue it consumes (`queue::Lane`).
    const WORKERS: [(&str, &str, &str); 4] = [
        ("DispatcherFunction", "WorkQueue", "DeadLetterQueue"),
        ("EnrichWorkerFunction", "EnrichQueue", "EnrichDeadLetterQueue"),
        ("FinderWorkerFunction", "FinderQueue", "FinderDeadLetterQueue"),
        ("WorkflowWorkerFunction", "WorkflowQueue", "WorkflowDeadLetterQueue"),
    ];

    #[test]
    fn each_worker_consumes_its_own_queue_and_scales_by_its_event_source_not_reserved_concurrency() {
        let text = template();
        for (function, queue, dlq) in WORKERS {
            let worker = resource(&text, function);
            assert!(!worker.contains("ReservedConcurrentExecutions"), "{worker}");
            let scaling = worker.find("ScalingConfig:").expect("ScalingConfig on the SQS event");
            assert!(worker[scaling..].contains("MaximumConcurrency:"));
            assert!(worker.contains("Type: SQS") && worker.contains("ReportBatchItemFailures"));
            assert!(worker.contains(&format!("Queue: !GetAtt {queue}.Arn")), "{function} consumes {queue}");
            assert!(worker.contains(&format!("SQSPollerPolicy: {{ QueueName: !GetAtt {queue}.QueueName }}")));
            assert!(resource(&text, queue).contains(&format!("deadLetterTargetArn: !GetAtt {dlq}.Arn")));
        }
        // Every function that sends tasks may send to every lane's queue, each named in the
        // environment under the variable the SQS adapter reads.
        let sends = |queue: &str| {
            text.matches(&format!("SQSSendMessagePolicy: {{ QueueName: !GetAtt {queue}.QueueName }}")).count()
        };
        for queue in ["EnrichQueue", "FinderQueue", "WorkflowQueue"] {
            assert_eq!(sends(queue), sends("WorkQueue"), "{queue}");
        }
        for (lane, (_, queue, _)) in crate::queue::Lane::ALL.into_iter().zip(WORKERS) {
            assert!(text.contains(&format!("{}: !Ref {queue}", lane.queue_url_variable())), "{lane:?}");
            assert!(text.contains(&format!("CodeUri: target/lambda/{}/", lane.function())), "{lane:?}");
        }
    }

    #[test]
    fn the_visibility_timeout_is_at_least_six_dispatcher_timeouts() {
        let text = template();
        for (function, queue, _) in WORKERS {
            let timeout = number_after(resource(&text, function), "Timeout:");
            let queue = resource(&text, queue);
            let visibility = number_after(queue, "VisibilityTimeout:");
            assert!(visibility >= 6 * timeout, "{function}: visibility {visibility} s < 6 × {timeout} s");
            assert!(number_after(queue, "maxReceiveCount:") >= 10, "backoff for throttling needs 10 receives");
        }
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
            ("EnrichDeadLetterAlarm", "ApproximateNumberOfMessagesVisible"),
            ("FinderDeadLetterAlarm", "ApproximateNumberOfMessagesVisible"),
            ("WorkflowDeadLetterAlarm", "ApproximateNumberOfMessagesVisible"),
            ("DispatcherErrorsAlarm", "Errors"),
            ("EnrichWorkerErrorsAlarm", "Errors"),
            ("FinderWorkerErrorsAlarm", "Errors"),
            ("WorkflowWorkerErrorsAlarm", "Errors"),
            ("EnrichQueueAgeAlarm", "ApproximateAgeOfOldestMessage"),
            ("FinderQueueAgeAlarm", "ApproximateAgeOfOldestMessage"),
            ("WorkflowQueueAgeAlarm", "ApproximateAgeOfOldestMessage"),
            ("LambdaThrottlesAlarm", "Throttles"),
            ("TableReadThrottlesAlarm", "ReadThrottleEvents"),
            ("TableWriteThrottlesAlarm", "WriteThrottleEvents"),
            ("HttpApi5xxAlarm", "5xx"),
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
        let task: crate::queue::Task = serde_json::from_str(r#"{"task":"sweep"}"#).unwrap();
        assert_eq!(task, crate::queue::Task::Sweep);
    }
}

#[cfg(test)]
mod sdk_config_tests {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    use aws_types::service_config::ServiceConfigKey;

    use super::{AwsConfigError, sdk_config_from};

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ];

    fn endpoint_of(sdk: &aws_types::SdkConfig, service: &str) -> Option<String> {
        let key =
            ServiceConfigKey::builder().service_id(service).env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
        sdk.service_config().and_then(|c| c.load_config(key.unwrap()))
    }

    #[tokio::test]
    async fn a_lambda_environment_gives_region_session_credentials_and_aws_endpoints() {
        let sdk = sdk_config_from(lookup(&LAMBDA)).unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        assert_eq!(endpoint_of(&sdk, "DynamoDB"), None);
        let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        assert!(sdk.http_client().is_some() && sdk.sleep_impl().is_some() && sdk.time_source().is_some());
        assert!(sdk.behavior_version().is_some() && sdk.retry_config().is_some());
    }

    #[test]
    fn endpoint_urls_apply_to_every_service_or_one_unless_ignored() {
        let vars = [
            LAMBDA.as_slice(),
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"), ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324")],
        ]
        .concat();
        let sdk = sdk_config_from(lookup(&vars)).unwrap();
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(endpoint_of(&sdk, "SQS").as_deref(), Some("http://127.0.0.1:9324"));
        assert_eq!(endpoint_of(&sdk, "DynamoDB"), None, "DynamoDB falls back to AWS_ENDPOINT_URL");

        let ignored = [vars.as_slice(), &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]].concat();
        let sdk = sdk_config_from(lookup(&ignored)).unwrap();
        assert_eq!((sdk.endpoint_url(), endpoint_of(&sdk, "SQS")), (None, None));
    }

    #[tokio::test]
    async fn the_default_region_stands_in_and_the_session_token_is_optional() {
        let vars = [
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", " "),
        ];
        let sdk = sdk_config_from(lookup(&vars)).unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-2"));
        let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
        assert_eq!(credentials.session_token(), None);
    }

    #[test]
    fn a_missing_region_or_credential_is_an_error_naming_the_variable() {
        let without = |name: &str| {
            let vars: Vec<_> = LAMBDA.iter().copied().filter(|(k, _)| *k != name).collect();
            sdk_config_from(lookup(&vars)).err()
        };
        assert_eq!(without("AWS_REGION"), Some(AwsConfigError::MissingRegion));
        assert_eq!(without("AWS_ACCESS_KEY_ID"), Some(AwsConfigError::MissingCredentials("AWS_ACCESS_KEY_ID")));
        let message = without("AWS_SECRET_ACCESS_KEY").unwrap().to_string();
        assert!(message.contains("set AWS_SECRET_ACCESS_KEY"), "{message}");
        assert!(without("AWS_SESSION_TOKEN").is_none());
        assert!(without("AWS_REGION").unwrap().to_string().contains("AWS_REGION"));
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Index, Projection};

    /// The template's table and `ensure_table` (moto, `leadpush init-aws`) project the same.
    #[test]
    fn the_templates_index_projections_are_the_stores() {
        let template = include_str!("../../../template.yaml");
        for index in Index::SECONDARY {
            let name = index.name().unwrap_or_default();
            let at =
                template.find(&format!("- IndexName: {name}\n")).unwrap_or_else(|| panic!("{name} in the template"));
            let rest = &template[at..];
            let line = |field: &str| {
                rest.lines().find_map(|l| l.trim().strip_prefix(field).map(|v| v.trim().to_owned())).unwrap_or_default()
            };
            let expected = match index.projection() {
                Projection::All => ("ALL".to_owned(), String::new()),
                Projection::KeysOnly => ("KEYS_ONLY".to_owned(), String::new()),
                Projection::Include(names) => ("INCLUDE".to_owned(), format!("[{}]", names.join(", "))),
            };
            let nonkey = if expected.0 == "INCLUDE" { line("NonKeyAttributes:") } else { String::new() };
            assert_eq!((line("ProjectionType:"), nonkey), expected, "{name}");
        }
    }
}
