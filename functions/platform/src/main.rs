//! Lambda: health check, the OpenAPI document and the calling workspace.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Platform, api::platform::routes).await
}
