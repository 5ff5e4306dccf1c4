//! Lambda: HeyReach and Instantly integrations (keys shown masked).

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Integrations).await
}
