//! Lambda: the web console at `/` and the API reference at `/docs`, from embedded files.

#[tokio::main]
async fn main() -> Result<(), leadpush::runtime::lambda::Error> {
    leadpush::runtime::lambda::run_console().await
}
