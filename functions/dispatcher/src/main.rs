//! Lambda: the SQS-triggered dispatcher of queued tasks (partial batch responses).

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_dispatcher().await
}
