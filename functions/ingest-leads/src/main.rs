//! Lambda: the inbound campaign webhook (POST /api/v1/webhook/leads).

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::IngestLeads).await
}
