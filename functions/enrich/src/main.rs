//! Lambda: Hunter-compatible email verifier, phone validator, enrichment results and bulk jobs.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::Enrich, api::enrichment).await
}
