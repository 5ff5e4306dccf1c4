//! `leadpush serve`: every route and the dispatcher worker in one process, on the embedded
//! store by default. On first start it creates a demo workspace and prints how to use it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, Function};
use crate::config::Config;
use crate::context::{AppContext, StartupError};
use crate::domain::campaign::{Campaign, LeadSource};
use crate::domain::workspace::CredentialKind;
use crate::repo::{campaigns, workspaces};
use crate::store::{Condition, Item, Key, StoreError};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Receive loops of the embedded dispatcher.
    pub workers: usize,
    /// Create and print a demo workspace when the store is empty.
    pub demo: bool,
    /// Shut down when standard input closes: a parent (a test harness) that dies can never
    /// leave the server running.
    pub exit_on_stdin_close: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo bootstrap: {0}")]
    Store(#[from] StoreError),
}

/// How often expired items are purged from the embedded store (DynamoDB uses TTL).
const PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// How often stalled pushes are swept (on AWS a schedule queues the `sweep` task).
const SWEEP_INTERVAL: Duration = Duration::from_secs(300);

pub async fn serve(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    let ctx = AppContext::from_config(config).await?;
    truncate_wal(&ctx, "start-up");
    let listener =
        TcpListener::bind(options.addr).await.map_err(|source| ServeError::Bind { addr: options.addr, source })?;
    let local = listener.local_addr()?;
    let shutdown = shutdown_signal(options.exit_on_stdin_close)?;
    if options.demo
        && let Some(demo) = bootstrap_demo(&ctx).await?
    {
        say(format_args!("{}", demo.banner(&format!("http://{local}"))));
    }
    say(format_args!(
        "Leadpush listening on http://{local} (store: {}, queue: {})",
        ctx.store.kind(),
        ctx.queue.kind()
    ));
    say(format_args!("Console: http://{local}/   API reference: http://{local}/docs"));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = crate::dispatch::worker::spawn(ctx.clone(), options.workers, stop_rx.clone());
    background.push(tokio::spawn(purge_loop(ctx.clone(), stop_rx)));
    let limits = crate::runtime::listener::Limits {
        header_timeout: ctx.config.header_timeout,
        body_timeout: ctx.config.body_timeout,
        max_connections: ctx.config.max_connections,
    };
    let app = api::app(ctx.clone(), &Function::ALL);
    let app = app.merge(crate::api::console::router());
    crate::runtime::listener::serve(listener, app, limits, shutdown, Duration::from_secs(30)).await?;

    tracing::info!("shutting down: finishing in-flight tasks");
    let _ = stop_tx.send(true);
    for handle in background {
        if tokio::time::timeout(Duration::from_secs(30), handle).await.is_err() {
            tracing::warn!("a worker did not stop within 30 s");
        }
    }
    truncate_wal(&ctx, "shutdown");
    say(format_args!("Leadpush stopped."));
    Ok(())
}

/// Prints a line for the operator. `println!` panics once stdout is gone (a closed pipe, a
/// parent that stopped reading), which turned a clean shutdown into exit status 101.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Empties the embedded store's WAL into the database (a crash can leave a large one).
fn truncate_wal(ctx: &AppContext, when: &str) {
    if ctx.config.store != crate::config::StoreKind::Embedded {
        return;
    }
    match crate::store::sqlite::truncate_wal(&ctx.config.data_dir) {
        Ok(state) if state.busy == 0 => {}
        Ok(_) => tracing::warn!(when, "the WAL could not be truncated: a transaction was still open"),
        Err(e) => tracing::warn!(when, error = %e, "the WAL could not be truncated"),
    }
}

async fn purge_loop(ctx: AppContext, mut stop: watch::Receiver<bool>) {
    let start = tokio::time::Instant::now();
    let mut purge = tokio::time::interval_at(start + PURGE_INTERVAL, PURGE_INTERVAL);
    let mut sweep = tokio::time::interval_at(start + SWEEP_INTERVAL, SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = sweep.tick() => {
                match crate::push::sweep(&ctx, ctx.now()).await.map(|s| s.requeued) {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(requeued = n, "sweep re-queued stalled pushes"),
                    Err(e) => tracing::warn!(error = %e, "sweep failed"),
                }
                match crate::webhooks::sweep(&ctx, ctx.now()).await.map(|s| s.requeued) {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(requeued = n, "sweep re-queued overdue deliveries"),
                    Err(e) => tracing::warn!(error = %e, "delivery sweep failed"),
                }
            }
            _ = purge.tick() => {
                match ctx.store.purge_expired(ctx.now().unix_seconds()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired items removed"),
                    Err(e) => tracing::warn!(error = %e, "purge of expired items failed"),
                }
            }
        }
    }
}

/// Resolves on SIGINT, SIGTERM or (when asked) standard input closing. Handlers are
/// registered before this returns, so a signal sent right after start-up is not missed.
pub(crate) fn shutdown_signal(on_stdin_close: bool) -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut terminate, mut interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)
    };
    Ok(async move {
        let stdin_closed = async {
            if !on_stdin_close {
                return std::future::pending::<()>().await;
            }
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await.is_ok_and(|n| n > 0) {}
        };
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
            _ = stdin_closed => {},
        }
        #[cfg(not(unix))]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = stdin_closed => {},
        }
    })
}

/// The demo workspace printed on first start.
pub struct Demo {
    pub workspace_id: String,
    pub api_key: String,
    pub webhook_token: String,
    pub campaign_id: String,
}

impl Demo {
    pub fn banner(&self, base: &str) -> String {
        let Demo { workspace_id, api_key, webhook_token, campaign_id } = self;
        format!(
            "\nFirst start: created a demo workspace. Copy these now; keys are stored only as hashes.\n\
             \n  workspace_id   {workspace_id}\n  API key        {api_key}\n  webhook token  {webhook_token}\n  campaign       {campaign_id} (webhook lead source, draft)\n\
             \nTry it:\n\
             \n  curl -s {base}/api/v1/campaigns -H 'X-Satellyte-API-Key: {api_key}'\n\
             \n  curl -i -X POST {base}/api/v1/webhook/leads \\\n    -H 'Authorization: Bearer {webhook_token}' \\\n    -H 'Content-Type: application/json' \\\n    -d '{{\"idempotency_key\": \"demo-batch-001\", \"leads\": [{{\"name\": \"Alice\", \"email\": \"alice@example.com\", \"campaign_id\": \"{campaign_id}\"}}]}}'\n\
             \n  curl -s -X POST {base}/api/v1/campaigns/{campaign_id}/activate -H 'X-Satellyte-API-Key: {api_key}'\n  curl -s {base}/api/v1/campaigns/{campaign_id}/leads -H 'X-Satellyte-API-Key: {api_key}'\n"
        )
    }
}

/// Creates the demo once per store: only when no workspace exists, guarded by a marker so
/// two processes starting together do not both create one.
pub async fn bootstrap_demo(ctx: &AppContext) -> Result<Option<Demo>, StoreError> {
    let store = &*ctx.store;
    if !workspaces::list_workspaces(store, 1).await?.items.is_empty() {
        return Ok(None);
    }
    let marker = Item::new(Key::new("BOOTSTRAP", "DEMO"), &serde_json::json!({"at": ctx.now()}))?;
    match store.put(marker, Condition::NotExists).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Ok(None),
        Err(e) => return Err(e),
    }
    let now = ctx.now();
    let workspace = workspaces::create_workspace(store, "Demo workspace", now).await?;
    let (_, api_key) = workspaces::issue_credential(store, &workspace.id, CredentialKind::ApiKey, now).await?;
    let (_, webhook_token) =
        workspaces::issue_credential(store, &workspace.id, CredentialKind::WebhookToken, now).await?;
    let campaign = Campaign::new(
        crate::support::ids::new_id(crate::support::ids::CAMPAIGN),
        "Demo webhook campaign",
        LeadSource::Webhook,
        None,
        now,
    )
    .map_err(|e| StoreError::InvalidItem(e.to_string()))?;
    campaigns::create(store, &workspace.id, &campaign).await?;
    Ok(Some(Demo { workspace_id: workspace.id, api_key, webhook_token, campaign_id: campaign.id }))
}
