//! What every route and task receives: the store, the queue, the outbound client, the
//! configuration and the clock. Built once per process (Lambda init, or `leadpush serve`).

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::{Config, ConfigError, StoreKind};
use crate::outbound::{Outbound, OutboundError};
use crate::queue::Lane;
use crate::queue::Queue;
use crate::repo::secrets::SECRET_FIELDS;
use crate::store::Store;
use crate::store::sealed::SealedStore;
use crate::support::time::{Clock, SystemClock, Timestamp};

/// How long a received task stays hidden from other workers in the embedded queue.
pub const EMBEDDED_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(120);
pub const WORK_QUEUE: &str = "work";
pub const DEAD_LETTER_QUEUE: &str = "work-dlq";

#[derive(Clone)]
pub struct AppContext {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub outbound: Outbound,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// Insight markers seen to exist (they are never removed), so they are not read again.
    pub known_markers: Arc<crate::repo::insights::KnownMarkers>,
    /// Rate-limit windows this process has counted and workspaces' limits it has read.
    pub meter: Arc<crate::metering::Meter>,
    /// Enrichment's engine, built on first use by [`AppContext::enrich`] and held without
    /// its type, so that a function that never enriches links none of its code (its
    /// constructor, its drop, the DNS resolver and rate limiter under it).
    pub(crate) enrich: Arc<OnceLock<Box<dyn Any + Send + Sync>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("outbound HTTP client: {0}")]
    Outbound(#[from] OutboundError),
    #[cfg(feature = "embedded")]
    #[error("embedded store: {0}")]
    Embedded(#[from] crate::store::sqlite::EmbeddedError),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsConfigError),
    #[error("the key file of stored secrets (secrets.key in the data directory): {0}")]
    KeyFile(std::io::Error),
    #[error("moving stored items to the current key layout: {0}")]
    Migrate(#[from] crate::store::StoreError),
}

impl AppContext {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>, config: Config) -> Result<Self, StartupError> {
        #[cfg(feature = "faults")]
        let store: Arc<dyn Store> = if config.faults.is_empty() {
            store
        } else {
            tracing::warn!(rules = config.faults.len(), "LEADPUSH_FAULTS set: injecting store faults (tests only)");
            let faulty = crate::store::faulty::FaultyStore::new(store);
            for rule in &config.faults {
                faulty.add(rule.clone());
            }
            Arc::new(faulty)
        };
        let outbound = Outbound::new(config.allow_private_targets, config.outbound_timeout)?;
        Ok(Self {
            store,
            queue,
            outbound,
            enrich: Arc::default(),
            config: Arc::new(config),
            clock: Arc::new(SystemClock),
            known_markers: Arc::default(),
            meter: Arc::default(),
        })
    }

    /// Enrichment's resolver, per-host SMTP bounds and single-flight locks, built from
    /// `config.enrich` on first use and shared by every clone of this context.
    pub fn enrich(&self) -> &Arc<crate::outbound::probing::Engine> {
        self.enrich
            .get_or_init(|| Box::new(Arc::new(crate::outbound::probing::Engine::new(self.config.enrich.clone()))))
            .downcast_ref()
            .expect("the cell only ever holds an Arc<Engine>")
    }

    /// Builds the adapters the configuration names.
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        Self::consuming(config, Lane::Core).await
    }

    /// Builds the adapters the configuration names; on SQS, the queue receives from
    /// `home`'s queue (a worker function's own lane).
    pub async fn consuming(config: Config, home: Lane) -> Result<Self, StartupError> {
        match config.store {
            StoreKind::Aws => {
                let sdk = crate::aws::sdk_config().await?;
                let table = crate::store::dynamodb::DynamoStore::new(crate::aws::dynamodb_client(&sdk), &config.table);
                let store: Arc<dyn Store> = match &config.kms_key_id {
                    // Only the functions that use secrets are given the key (template.yaml).
                    Some(key_id) => {
                        let ring = crate::aws::kms::KmsKeyRing::new(aws_sdk_kms::Client::new(&sdk), key_id);
                        Arc::new(SealedStore::new(Arc::new(table), Arc::new(ring), SECRET_FIELDS))
                    }
                    None => Arc::new(table),
                };
                let client = aws_sdk_sqs::Client::new(&sdk);
                let queue = crate::queue::sqs::SqsQueue::routed(client, config.queue_urls(), home);
                Self::new(store, Arc::new(queue), config)
            }
            StoreKind::Embedded => {
                let ctx = Self::embedded(config)?;
                // A data file of an earlier build moves to the current key layout, and its
                // secrets are sealed, in place; then the WAL, which held the old pages, goes.
                crate::repo::migrate::rekey(&*ctx.store).await?;
                #[cfg(feature = "embedded")]
                if crate::repo::migrate::seal_secrets(&*ctx.store).await? > 0 {
                    crate::store::sqlite::truncate_wal(&ctx.config.data_dir)?;
                }
                Ok(ctx)
            }
        }
    }

    #[cfg(feature = "embedded")]
    fn embedded(config: Config) -> Result<Self, StartupError> {
        use crate::queue::sqlite::{EmbeddedQueue, EmbeddedQueueConfig};
        let db = crate::store::sqlite::EmbeddedDb::open(&config.data_dir)?;
        let queue = EmbeddedQueue::new(
            db.clone(),
            EmbeddedQueueConfig {
                name: WORK_QUEUE.into(),
                visibility_timeout: EMBEDDED_VISIBILITY_TIMEOUT,
                dead_letter: Some((DEAD_LETTER_QUEUE.into(), config.max_receives)),
            },
        );
        let ring =
            crate::store::sealed::FileKeyRing::open_or_create(&config.data_dir).map_err(StartupError::KeyFile)?;
        let sqlite = Arc::new(crate::store::sqlite::SqliteStore::new(db));
        Self::new(Arc::new(SealedStore::new(sqlite, Arc::new(ring), SECRET_FIELDS)), Arc::new(queue), config)
    }

    #[cfg(not(feature = "embedded"))]
    fn embedded(_config: Config) -> Result<Self, StartupError> {
        Err(StartupError::Unsupported("this build has no embedded store; set LEADPUSH_STORE=dynamodb".into()))
    }

    /// The dead-letter queue beside the configured work queue: the embedded one in the
    /// same file, or on AWS the SQS queue at `dlq_url` (the stack's `DeadLetterQueueUrl`).
    pub async fn dead_letter_queue(config: &Config, dlq_url: Option<String>) -> Result<Arc<dyn Queue>, StartupError> {
        match config.store {
            StoreKind::Aws => {
                let url = dlq_url.ok_or_else(|| {
                    StartupError::Unsupported(
                        "--dlq-url is required with dynamodb (the stack's DeadLetterQueueUrl)".into(),
                    )
                })?;
                let sdk = crate::aws::sdk_config().await?;
                Ok(Arc::new(crate::queue::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url)))
            }
            StoreKind::Embedded => Self::embedded_dead_letter_queue(config),
        }
    }

    #[cfg(feature = "embedded")]
    fn embedded_dead_letter_queue(config: &Config) -> Result<Arc<dyn Queue>, StartupError> {
        use crate::queue::sqlite::{EmbeddedQueue, EmbeddedQueueConfig};
        let db = crate::store::sqlite::EmbeddedDb::open(&config.data_dir)?;
        let dlq = EmbeddedQueueConfig {
            name: DEAD_LETTER_QUEUE.into(),
            visibility_timeout: EMBEDDED_VISIBILITY_TIMEOUT,
            dead_letter: None,
        };
        Ok(Arc::new(EmbeddedQueue::new(db, dlq)))
    }

    #[cfg(not(feature = "embedded"))]
    fn embedded_dead_letter_queue(_config: &Config) -> Result<Arc<dyn Queue>, StartupError> {
        Err(StartupError::Unsupported("this build has no embedded store; set LEADPUSH_STORE=dynamodb".into()))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
