//! Lambda: campaign workflows (save, read) and per-lead workflow runs (rerun, read).

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Workflows, api::workflows::routes).await
}
