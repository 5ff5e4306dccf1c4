//! Lambda: outcome counts and rates per position, company, signal type, source and campaign.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Insights, api::insights::routes).await
}
