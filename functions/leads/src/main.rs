//! Lambda: reading stored leads.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Leads).await
}
