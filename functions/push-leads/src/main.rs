//! Lambda: pushing leads to a webhook URL, HeyReach or Instantly, and reading pushes back.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::PushLeads).await
}
