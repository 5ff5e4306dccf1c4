//! Lambda: outcome events, provider webhooks (Instantly, HeyReach) and each lead's event log.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::FeedbackEvents, api::feedback::routes).await
}
