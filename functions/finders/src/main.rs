//! Lambda: Hunter-compatible finders (email, domain search, author, phone) and the phone validator.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    use leadpush::api::{self, Function};
    leadpush::runtime::lambda::run_http(Function::Finders, api::finding).await
}
