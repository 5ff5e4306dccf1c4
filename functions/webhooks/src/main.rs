//! Lambda: outbound webhook endpoints, their delivery logs and callback settings.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Webhooks, api::webhooks_and_callbacks).await
}
