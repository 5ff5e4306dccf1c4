//! Lambda: the SQS-triggered worker of enrichment tasks (pending results, bulk
//! verification chunks), from the enrichment queue, with partial batch responses.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_worker(leadpush::dispatch::Worker::ENRICH).await
}
