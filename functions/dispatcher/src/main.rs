//! Lambda: the SQS-triggered dispatcher of the core tasks (saved-lead fan-out, deliveries,
//! pushes, the sweep), with partial batch responses. Enrichment and workflow tasks have
//! their own queues and workers (`enrich-worker`, `workflow-worker`).

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    leadpush::runtime::lambda::run_worker(leadpush::dispatch::Worker::CORE).await
}
