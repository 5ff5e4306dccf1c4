//! Lambda: outcome counts and rates per position, company, signal type, source and campaign.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Insights).await
}
