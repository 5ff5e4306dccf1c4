//! Lambda: the SQS-triggered worker of workflow tasks (run starts, backfills, runs), from
//! the workflow queue, with partial batch responses.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    leadpush::runtime::lambda::run_worker(leadpush::dispatch::Worker::WORKFLOW).await
}
