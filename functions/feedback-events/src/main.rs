//! Lambda: outcome events, provider webhooks (Instantly, HeyReach) and each lead's event log.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::FeedbackEvents, api::feedback::routes).await
}
