//! Lambda: campaign workflows (save, read) and per-lead workflow runs (rerun, read).

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::lambda::run_http(Function::Workflows, api::workflows::routes).await
}
