//! `make bench`: every figure beside its floor, measured in one run on loopback against the
//! optimised build (`--profile perf`). moto provides DynamoDB and SQS for call counts.

mod aws_counter;
mod delivery;
mod feedback;
mod finders;
mod ingest;
mod push;
mod server;
mod storage;
mod table;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let moto = std::env::var("LEADPUSH_TEST_MOTO_URL")
        .map_err(|_| anyhow::anyhow!("LEADPUSH_TEST_MOTO_URL is not set: run `make bench`, which starts moto"))?;
    let mut rows = Vec::new();
    // `LEADPUSH_BENCH_ONLY=finders` (comma-separated areas) runs only those areas.
    let only = std::env::var("LEADPUSH_BENCH_ONLY").unwrap_or_default();
    let wanted = |area: &str| only.is_empty() || only.split(',').any(|a| a.trim() == area);
    if wanted("storage") {
        eprintln!("bench: storage ...");
        rows.extend(storage::run(&moto).await?);
    }
    if wanted("ingest") {
        eprintln!("bench: ingest ...");
        rows.extend(ingest::run(&moto).await?);
    }
    if wanted("push") {
        eprintln!("bench: push ...");
        rows.extend(push::run().await?);
    }
    if wanted("feedback") {
        eprintln!("bench: feedback ...");
        rows.extend(feedback::run().await?);
    }
    if wanted("delivery") {
        eprintln!("bench: delivery ...");
        rows.extend(delivery::run(&moto).await?);
    }
    if wanted("finders") {
        eprintln!("bench: finders ...");
        rows.extend(finders::run().await?);
    }
    println!();
    table::print(&rows);
    Ok(())
}
