//! Lambda: the SQS-triggered worker of verification tasks (pending email verifications,
//! bulk verification chunks), from the enrichment queue, with partial batch responses.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    leadpush::runtime::lambda::run_worker(leadpush::dispatch::Worker::ENRICH).await
}
