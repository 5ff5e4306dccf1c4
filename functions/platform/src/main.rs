//! Lambda: health check, the OpenAPI document and the calling workspace.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Platform).await
}
