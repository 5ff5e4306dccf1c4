//! Lambda: pushing leads to a webhook URL, HeyReach or Instantly, and reading pushes back.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::PushLeads, api::push::routes).await
}
