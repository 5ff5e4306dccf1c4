//! Lambda: pushing leads to a webhook URL, HeyReach or Instantly, and reading pushes back.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::PushLeads, api::push::routes).await
}
