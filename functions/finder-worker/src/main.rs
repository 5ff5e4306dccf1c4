//! Lambda: the SQS-triggered worker of finder tasks (pending email-finder, domain-search,
//! author-finder and phone-finder results), from the finder queue, with partial batch responses.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    leadpush::runtime::lambda::run_worker(leadpush::dispatch::Worker::FIND).await
}
