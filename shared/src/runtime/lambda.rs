//! Lambda glue: each function's `main` is one call here. Clients are built once, at init,
//! and shared by every invocation of that execution environment.

use std::convert::Infallible;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use crate::api::{self, Function};
use crate::config::Config;
use crate::context::AppContext;
use crate::dispatch::Worker;

pub type Error = lambda_runtime::Error;

/// Serves one route group behind API Gateway (HTTP API, payload v2).
///
/// `routes` is the function's route group itself (`api::leads::routes`), not a
/// `Function` value matched at run time, so the bootstrap links only that group's
/// handlers and their dependencies.
pub async fn run_http(function: Function, routes: fn() -> OpenApiRouter<AppContext>) -> Result<(), Error> {
    crate::runtime::allocator::limit_malloc_arenas();
    crate::runtime::telemetry::init();
    let ctx = AppContext::from_config(Config::from_env()?).await?;
    tracing::info!(function = function.name(), store = ctx.store.kind(), "lambda initialised");
    lambda_http::run(api::app_with(ctx, routes())).await
}

/// Serves the web console and API reference files (no store, no queue: the console calls
/// the API's own functions from the browser).
pub async fn run_console() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    tracing::info!(function = "console", "lambda initialised");
    lambda_http::run(crate::api::console::router()).await
}

/// An SQS-triggered worker (`ReportBatchItemFailures`) running its lane's tasks from that
/// lane's queue. `worker` is the function's own constant (`Worker::CORE`), not a value
/// matched at run time, so the bootstrap links only that lane's task handlers.
pub async fn run_worker(worker: Worker) -> Result<(), Error> {
    crate::runtime::allocator::limit_malloc_arenas();
    crate::runtime::telemetry::init();
    let ctx = AppContext::consuming(Config::from_env()?, worker.home()).await?;
    tracing::info!(function = worker.home().function(), "lambda initialised");
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        async move {
            let deadline = crate::support::deadline::from_epoch_millis(event.context.deadline);
            Ok::<_, Infallible>(crate::dispatch::lambda::handle(&ctx, worker, event.payload, Some(deadline)).await)
        }
    }))
    .await
}

/// Runs one API Gateway v2 event through a function's router, exactly as the runtime
/// would for an invocation. Used by the tests of `events/`.
pub async fn invoke(
    ctx: AppContext,
    function: Function,
    event_json: &str,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error + Send + Sync>> {
    let request = lambda_http::request::from_str(event_json)?;
    let response = api::app(ctx, &[function]).oneshot(request).await?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await?;
    let body = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok((status, body))
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn events_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    /// A workspace with a key, a token, a webhook campaign and one lead, for the placeholders.
    async fn seeded() -> (AppContext, crate::testing::samples::Seeded, tempfile::TempDir) {
        let (ctx, dir) = crate::testing::embedded_context();
        let seeded = crate::testing::samples::seed(&*ctx.store, "Events").await.unwrap();
        (ctx, seeded, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_sample_event_runs_through_its_functions_handler() {
        let (ctx, seeded, _dir) = seeded().await;
        let mut covered = std::collections::BTreeSet::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            // The workers' SQS samples have their own test below.
            .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".sqs.json"))
            // The console's static files have their own test (console::tests).
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("console.")))
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let function = Function::ALL
                .into_iter()
                .find(|f| file.starts_with(&format!("{}.", f.name())))
                .unwrap_or_else(|| panic!("{file} names no function"));
            let event = seeded.fill(&std::fs::read_to_string(&path).unwrap());
            let (status, body) = invoke(ctx.clone(), function, &event).await.unwrap();
            if let Some(problem) = crate::testing::samples::http_sample_problem(status, &body) {
                panic!("{file}: {problem}");
            }
            covered.insert(function.name());
        }
        for function in Function::ALL {
            assert!(covered.contains(function.name()), "no sample event for {}", function.name());
        }
    }

    /// Each worker's sample batch, run as that worker: the message ids it reports failed.
    async fn worker_failures(
        ctx: &AppContext,
        seeded: &crate::testing::samples::Seeded,
        worker: Worker,
    ) -> Vec<String> {
        let file = events_dir().join(format!("{}.sqs.json", worker.home().function()));
        let event: SqsEvent = serde_json::from_str(&seeded.fill(&std::fs::read_to_string(file).unwrap())).unwrap();
        let response = crate::dispatch::lambda::handle(ctx, worker, event, None).await;
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_workers_sample_reports_only_the_poison_or_misrouted_message() {
        let (ctx, seeded, _dir) = seeded().await;
        for worker in [Worker::CORE, Worker::ENRICH, Worker::FIND, Worker::WORKFLOW] {
            let function = worker.home().function();
            let (_, failed) = crate::testing::samples::WORKER_SAMPLE_FAILURES
                .into_iter()
                .find(|(name, _)| *name == function)
                .unwrap_or_else(|| panic!("no expected failure for {function}"));
            assert_eq!(worker_failures(&ctx, &seeded, worker).await, [failed], "{worker:?}");
        }
    }
}
