//! Lambda: API requests (CRUD and test, saved or unsaved) and the workspace settings that limit them.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::ApiRequests, api::api_requests::routes).await
}
