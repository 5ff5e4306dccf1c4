//! Lambda: health check, the OpenAPI document and the calling workspace.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::Platform, api::platform::routes).await
}
