//! `make bench`: every figure beside its floor, measured in one run on loopback against the
//! optimised build (`--profile perf`). moto provides DynamoDB and SQS for call counts.

mod aws_counter;
mod cost;
mod delivery;
mod enrich;
mod feedback;
mod finders;
mod hardening;
mod ingest;
mod lambda;
mod learning;
mod partitions;
mod push;
mod runtime_api;
mod server;
mod storage;
mod table;
mod workflow;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a crypto provider of its own (see `leadpush::support::tls`).
    leadpush::support::tls::install();
    let moto = std::env::var("LEADPUSH_TEST_MOTO_URL")
        .map_err(|_| anyhow::anyhow!("LEADPUSH_TEST_MOTO_URL is not set: run `make bench`, which starts moto"))?;
    // `leadpush-bench invoke FUNCTION EVENT_FILE`: what `make invoke` runs.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, function, event] = args.as_slice()
        && command == "invoke"
    {
        return lambda::invoke(&moto, function, std::path::Path::new(event)).await;
    }
    anyhow::ensure!(args.is_empty(), "usage: leadpush-bench [invoke FUNCTION EVENT_FILE]");
    // `LEADPUSH_BENCH_ONLY=enrich,push` runs only those areas (all by default).
    let only = std::env::var("LEADPUSH_BENCH_ONLY").unwrap_or_default();
    let wanted = |area: &str| only.is_empty() || only.split(',').any(|a| a.trim() == area);
    let mut rows = Vec::new();
    if wanted("storage") {
        eprintln!("bench: storage ...");
        rows.extend(storage::run(&moto).await?);
    }
    if wanted("ingest") {
        eprintln!("bench: ingest ...");
        rows.extend(ingest::run(&moto).await?);
    }
    if wanted("cost") {
        eprintln!("bench: cost ...");
        rows.extend(cost::run(&moto).await?);
    }
    if wanted("scale") {
        eprintln!("bench: partitions ...");
        rows.extend(partitions::run().await?);
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
    if wanted("enrich") {
        eprintln!("bench: enrich ...");
        rows.extend(enrich::run().await?);
    }
    if wanted("workflow") {
        eprintln!("bench: workflow ...");
        rows.extend(workflow::run().await?);
    }
    if wanted("lambda") {
        eprintln!("bench: lambda ...");
        rows.extend(lambda::run(&moto).await?);
    }
    if wanted("finders") {
        eprintln!("bench: finders ...");
        rows.extend(finders::run().await?);
    }
    if wanted("learning") {
        eprintln!("bench: learning ...");
        rows.extend(learning::run().await?);
    }
    if wanted("hardening") {
        eprintln!("bench: hardening ...");
        rows.extend(hardening::run().await?);
    }
    println!();
    table::print(&rows);
    Ok(())
}
