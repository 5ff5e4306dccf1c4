//! Lambda: the inbound campaign webhook (POST /api/v1/webhook/leads).

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::IngestLeads, api::ingest::routes).await
}
