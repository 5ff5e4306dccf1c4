//! Lambda: outcome events, provider webhooks (Instantly, HeyReach) and each lead's event log.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::FeedbackEvents).await
}
