//! Lambda: Hunter-compatible email verifier, phone validator, enrichment results and bulk jobs.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Enrich).await
}
