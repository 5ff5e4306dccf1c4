//! The `leadpush` command: `serve` runs the whole API locally, `admin` manages workspaces
//! and credentials (what a CSM runs), `init-aws` provisions the table and queues against
//! `AWS_ENDPOINT_URL`. All logic lives in the `leadpush` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leadpush::config::Config;
use leadpush::context::AppContext;
use leadpush::domain::workspace::CredentialKind;

#[derive(Parser)]
#[command(name = "leadpush", version, about = "Leadpush: the lead pipeline, locally and on AWS Lambda.")]
struct Cli {
    /// Directory of the embedded SQLite store (overrides LEADPUSH_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route and run the dispatcher worker in one process.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Receive loops of the embedded dispatcher.
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// Do not create a demo workspace on first start.
        #[arg(long)]
        no_demo: bool,
        /// Shut down when standard input closes (for test harnesses and supervisors).
        #[arg(long, hide = true)]
        exit_on_stdin_close: bool,
    },
    /// Run the SMTP probe for callers without port 25 (Lambda): an HTTP service that needs
    /// the bearer token in LEADPUSH_PROBER_TOKEN (or LEADPUSH_PROBER_TOKEN_FILE). Put TLS in
    /// front of it; see docs/enrichment.md ("Deploying the prober").
    Prober {
        #[arg(long, default_value = "127.0.0.1:8025")]
        addr: SocketAddr,
        /// Name sent in EHLO: this host's PTR name, resolving back to its fixed IP.
        #[arg(long, env = "LEADPUSH_SMTP_HELO")]
        helo: String,
        /// Address sent in MAIL FROM, at a domain you control (empty: the null sender).
        #[arg(long, env = "LEADPUSH_SMTP_MAIL_FROM", default_value = "")]
        mail_from: String,
        /// Shut down when standard input closes (for test harnesses and supervisors).
        #[arg(long, hide = true)]
        exit_on_stdin_close: bool,
    },
    /// Manage workspaces, API keys and webhook tokens (works while the server runs).
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
    /// Create the DynamoDB table and SQS queues at AWS_ENDPOINT_URL (for moto and tests).
    InitAws {
        /// Table name (defaults to LEADPUSH_TABLE, then `leadpush`).
        #[arg(long)]
        table: Option<String>,
        /// Work queue name; the dead-letter queue is `<name>-dlq`.
        #[arg(long, default_value = "leadpush-work")]
        queue: String,
        /// Receives before a message moves to the dead-letter queue.
        #[arg(long, default_value_t = 5)]
        max_receives: u32,
    },
    /// Move stored items to the current key layout and seal stored secrets in place (once,
    /// after deploying a build that changes either; the embedded store does this itself at
    /// start). Safe to run again. Sealing on DynamoDB needs LEADPUSH_KMS_KEY_ID.
    MigrateKeys,
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum Admin {
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    #[command(subcommand, name = "api-key")]
    ApiKey(CredentialCmd),
    #[command(subcommand, name = "webhook-token")]
    WebhookToken(CredentialCmd),
    /// Move dead-lettered tasks back to the work queue (after fixing their cause); prints {"moved"}.
    Redrive {
        /// The dead-letter queue URL (with dynamodb: the stack's DeadLetterQueueUrl output).
        #[arg(long)]
        dlq_url: Option<String>,
        /// Move at most this many.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
    },
}

#[derive(Subcommand)]
enum WorkspaceCmd {
    /// Create a workspace and its first API key; prints {"workspace_id", "api_key", ...}.
    Create {
        #[arg(long)]
        name: String,
    },
    List,
    /// Show or change a workspace's rate limits and quotas; prints {"workspace_id", "limits"}.
    Limits {
        #[arg(long)]
        workspace: String,
        /// A change, repeatable: `search.per_minute=1000`, `verification.per_month=100000`,
        /// `push.per_second=20`, `max_queued_bulk_addresses=50000`.
        #[arg(long = "set")]
        set: Vec<String>,
        /// Start from the defaults (Hunter's limits) before applying --set.
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Subcommand)]
enum CredentialCmd {
    /// Create one; the secret is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        workspace: String,
    },
    /// Revoke one at once.
    Revoke {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        id: String,
    },
    /// List live ones, masked.
    List {
        #[arg(long)]
        workspace: String,
    },
}

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    leadpush::runtime::allocator::limit_malloc_arenas();
    async_main()
}

#[tokio::main]
async fn async_main() -> ExitCode {
    leadpush::runtime::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", serde_json::json!({"error": e.to_string()}));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve { addr, workers, no_demo, exit_on_stdin_close } => {
            let options = leadpush::runtime::serve::ServeOptions { addr, workers, demo: !no_demo, exit_on_stdin_close };
            leadpush::runtime::serve::serve(config, options).await?;
        }
        Command::Prober { addr, helo, mail_from, exit_on_stdin_close } => {
            let token = leadpush::config::prober_token_from_env()?;
            let options = leadpush::runtime::prober::ProberOptions { addr, helo, mail_from, exit_on_stdin_close };
            leadpush::runtime::prober::run(config, token, options).await?;
        }
        Command::Admin { command } => {
            let queues = config.clone();
            let ctx = AppContext::from_config(config).await?;
            let store = &*ctx.store;
            let out = match command {
                Admin::Workspace(WorkspaceCmd::Create { name }) => {
                    leadpush::admin::create_workspace(store, &name).await?
                }
                Admin::Workspace(WorkspaceCmd::List) => leadpush::admin::list_workspaces(store).await?,
                Admin::Workspace(WorkspaceCmd::Limits { workspace, set, reset }) => {
                    leadpush::admin::set_limits(store, &workspace, reset, &set).await?
                }
                Admin::ApiKey(cmd) => credential(store, CredentialKind::ApiKey, cmd).await?,
                Admin::WebhookToken(cmd) => credential(store, CredentialKind::WebhookToken, cmd).await?,
                Admin::Redrive { dlq_url, max } => {
                    let dlq = AppContext::dead_letter_queue(&queues, dlq_url).await?;
                    serde_json::json!({ "moved": leadpush::queue::redrive(&*dlq, &*ctx.queue, max).await? })
                }
            };
            println!("{out}");
        }
        Command::InitAws { table, queue, max_receives } => {
            let table = table.unwrap_or(config.table);
            let provisioned = leadpush::aws::provision(&table, &queue, max_receives).await?;
            println!("{}", serde_json::to_string(&provisioned)?);
        }
        Command::MigrateKeys => {
            let ctx = AppContext::from_config(config).await?;
            let report = leadpush::repo::migrate::rekey(&*ctx.store).await?;
            // Sealing needs the key (LEADPUSH_KMS_KEY_ID on DynamoDB); without it, say so.
            let sealed = match (&ctx.config.kms_key_id, ctx.config.store) {
                (None, leadpush::config::StoreKind::Aws) => serde_json::json!("not sealed: set LEADPUSH_KMS_KEY_ID"),
                _ => serde_json::json!(leadpush::repo::migrate::seal_secrets(&*ctx.store).await?),
            };
            println!("{}", serde_json::json!({ "layout": report, "secrets_sealed": sealed }));
        }
        Command::Openapi => println!("{}", serde_json::to_string_pretty(&leadpush::api::openapi())?),
    }
    Ok(())
}

async fn credential(
    store: &dyn leadpush::store::Store,
    kind: CredentialKind,
    cmd: CredentialCmd,
) -> Result<serde_json::Value, leadpush::admin::AdminError> {
    match cmd {
        CredentialCmd::Create { workspace } => leadpush::admin::create_credential(store, &workspace, kind).await,
        CredentialCmd::Revoke { workspace, id } => {
            leadpush::admin::revoke_credential(store, &workspace, kind, &id).await
        }
        CredentialCmd::List { workspace } => leadpush::admin::list_credentials(store, &workspace, kind).await,
    }
}
