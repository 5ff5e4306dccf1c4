//! The floor of `make bench`'s Lambda rows: the same runtime, HTTP adapter and AWS clients
//! as a Leadpush function, built the same way, answering every request without work.
//! Its init time, memory and size are what any function of this stack costs.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The same SDK configuration as a Leadpush function: the environment, rustls with ring.
    let sdk = leadpush::aws::sdk_config().await?;
    let clients = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    lambda_http::run(service_fn(move |_: Request| {
        let _ = &clients;
        async { Response::builder().status(200).body(Body::from("{}")).map_err(Error::from) }
    }))
    .await
}
