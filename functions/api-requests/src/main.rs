//! Lambda: API requests (CRUD and test, saved or unsaved) and the workspace settings that limit them.

#[tokio::main]
async fn main() -> Result<(), leadpush::lambda::Error> {
    leadpush::lambda::run_http(leadpush::api::Function::ApiRequests).await
}
