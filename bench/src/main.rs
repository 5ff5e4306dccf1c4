//! `make bench`: every figure beside its floor, measured in one run on loopback against the
//! optimised build (`--profile perf`). moto provides DynamoDB and SQS for call counts.

mod aws_counter;
mod delivery;
mod feedback;
mod ingest;
mod partitions;
mod push;
mod server;
mod storage;
mod table;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let moto = std::env::var("LEADPUSH_TEST_MOTO_URL")
        .map_err(|_| anyhow::anyhow!("LEADPUSH_TEST_MOTO_URL is not set: run `make bench`, which starts moto"))?;
    let mut rows = Vec::new();
    eprintln!("bench: storage ...");
    rows.extend(storage::run(&moto).await?);
    eprintln!("bench: ingest ...");
    rows.extend(ingest::run(&moto).await?);
    eprintln!("bench: partitions ...");
    rows.extend(partitions::run().await?);
    eprintln!("bench: push ...");
    rows.extend(push::run().await?);
    eprintln!("bench: feedback ...");
    rows.extend(feedback::run().await?);
    eprintln!("bench: delivery ...");
    rows.extend(delivery::run(&moto).await?);
    println!();
    table::print(&rows);
    Ok(())
}
