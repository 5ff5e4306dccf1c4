//! Counts the AWS calls a client really transmits (retries included), by operation, using
//! an SDK interceptor: the `X-Amz-Target` header names the operation for DynamoDB and SQS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

/// Clients pointed at moto that count their calls into `counter`.
pub async fn clients(moto: &str, counter: &CallCounter) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    // Built as on Lambda, from an environment of region, credentials and endpoint.
    let sdk = leadpush::aws::sdk_config_from(|name| match name {
        "AWS_ENDPOINT_URL" => Some(moto.to_owned()),
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("bench".into()),
        _ => None,
    })
    .expect("an SDK config for moto");
    let dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone()).build();
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk).interceptor(counter.clone()).build();
    (aws_sdk_dynamodb::Client::from_conf(dynamo), aws_sdk_sqs::Client::from_conf(sqs))
}

/// A context on moto, in process: a fresh table and queue named `{name}-{pid}`, with
/// clients that count their calls into `counter`; `extra` adds configuration.
pub struct MotoContext {
    pub ctx: leadpush::context::AppContext,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queue_url: String,
}

pub async fn moto_context(
    moto: &str,
    counter: &CallCounter,
    name: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<MotoContext> {
    moto_context_with(moto, counter, name, extra, |store| store).await
}

/// [`moto_context`] with the DynamoDB store wrapped by `wrap` (below the context's own
/// decorators, so a meter sees what is sent to DynamoDB).
pub async fn moto_context_with(
    moto: &str,
    counter: &CallCounter,
    name: &str,
    extra: &[(&str, &str)],
    wrap: impl FnOnce(Arc<dyn leadpush::store::Store>) -> Arc<dyn leadpush::store::Store>,
) -> anyhow::Result<MotoContext> {
    let (dynamo, sqs) = clients(moto, counter).await;
    let table = format!("{name}-{}", std::process::id());
    leadpush::aws::ensure_table(&dynamo, &table).await?;
    let queue_url = leadpush::aws::ensure_queues(&sqs, &table, 5, 60).await?.queue_url;
    let config = leadpush::config::Config::from_lookup(|key| match key {
        "LEADPUSH_STORE" => Some("dynamodb".into()),
        "LEADPUSH_QUEUE_URL" => Some(queue_url.clone()),
        "LEADPUSH_TABLE" => Some(table.clone()),
        _ => extra.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned()),
    })?;
    let ctx = leadpush::context::AppContext::new(
        wrap(Arc::new(leadpush::store::dynamodb::DynamoStore::new(dynamo.clone(), &table))),
        Arc::new(leadpush::queue::sqs::SqsQueue::new(sqs.clone(), &queue_url)),
        config,
    )?;
    Ok(MotoContext { ctx, dynamo, sqs, table, queue_url })
}

pub fn summary(calls: &BTreeMap<String, u64>, per: f64) -> String {
    calls.iter().map(|(op, n)| format!("{op} {}", trim(*n as f64 / per))).collect::<Vec<_>>().join(", ")
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
