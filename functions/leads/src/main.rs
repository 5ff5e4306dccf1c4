//! Lambda: reading stored leads.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::Leads, api::leads::routes).await
}
