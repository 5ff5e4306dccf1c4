//! Lambda: outbound webhook endpoints, their delivery logs and callback settings.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Webhooks).await
}
