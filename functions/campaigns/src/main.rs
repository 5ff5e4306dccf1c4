//! Lambda: campaigns, their status, webhook setup and lead preview.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Campaigns, api::campaigns::routes).await
}
