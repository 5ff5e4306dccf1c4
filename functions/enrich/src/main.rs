//! Lambda: Hunter-compatible email verifier, enrichment results and bulk verification jobs.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Enrich, api::enrich::routes).await
}
