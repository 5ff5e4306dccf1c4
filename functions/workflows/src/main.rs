//! Lambda: campaign workflows (save, read) and per-lead workflow runs (rerun, read).

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::Workflows).await
}
