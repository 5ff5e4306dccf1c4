//! Lambda: campaigns, their status, webhook setup and lead preview.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Campaigns).await
}
