//! Lambda: HeyReach and Instantly integrations (keys shown masked).

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Integrations, api::integrations::routes).await
}
