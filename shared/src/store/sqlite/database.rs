//! The embedded database behind `leadpush serve`: one SQLite file in WAL mode, shared by the
//! store and the queue, and safe for several processes at once (server + `leadpush admin`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction};

use super::checkpoint::*;
use super::group_commit::*;
use super::schema::*;

/// File name inside the data directory.
pub const DB_FILE: &str = "leadpush.db";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("sqlite pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("sqlite worker failed: {0}")]
    Join(String),
    /// The group of writes this one was committed with could not be committed.
    #[error("sqlite commit: {0}")]
    Commit(String),
}

/// Connections in the pool. SQLite allows one writer at a time anyway.
pub(super) const POOL_SIZE: u32 = 4;
/// Page cache per reading connection. The default 2 MB thrashes once the lead table outgrows it.
pub(super) const CACHE_KIB: u32 = 8 * 1024;
/// Page cache of the one writing connection. Every ingest touches index pages all over
/// the file (email and LinkedIn lookups); they stay cached between transactions because no
/// other connection of this process writes (which would make SQLite drop the cache).
pub(super) const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// How long a writer waits for the write lock (another process: the admin CLI).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The 64-bit FNV-1a hash of a partition key, as stored in `gsiNh`. FNV-1a is fixed by its
/// definition, so stored hashes stay valid across builds (unlike std's hasher).
pub fn partition_hash(key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// How every connection is set up. WAL lets readers run beside the one writer;
/// busy_timeout makes concurrent writers (another process included) wait instead of
/// failing. Checkpoints run in the background (see `checkpointer`), not inside some
/// request's commit. `secure_delete = FAST` zeroes what an update or delete leaves behind
/// on a page, so a secret sealed in place leaves no plaintext copy in the file.
pub(super) fn configure(c: &Connection, policy: WalPolicy, cache_kib: u32) -> Result<(), rusqlite::Error> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{cache_kib}; PRAGMA secure_delete = FAST;
         PRAGMA journal_size_limit = {};",
        policy.size_limit
    ))
}

/// A small pool of reading connections to one database file, and one writing connection.
#[derive(Clone)]
pub struct EmbeddedDb {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// Keeps the checkpoint thread running while any clone of this handle exists.
    _alive: std::sync::Arc<()>,
    /// The queue of the writer thread, which owns the one connection this process writes
    /// through (see [`group_commit`]).
    writer: std::sync::mpsc::Sender<WriteJob>,
    /// Transactions the writer thread has committed.
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl EmbeddedDb {
    /// Opens (creating if needed) `<data_dir>/leadpush.db` and applies the schema.
    pub fn open(data_dir: &Path) -> Result<Self, EmbeddedError> {
        Self::open_with(data_dir, WalPolicy::default())
    }

    pub fn open_with(data_dir: &Path, policy: WalPolicy) -> Result<Self, EmbeddedError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| EmbeddedError::DataDir { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DB_FILE);
        let manager =
            SqliteConnectionManager::file(&path).with_init(move |c: &mut Connection| configure(c, policy, CACHE_KIB));
        // No test query at each checkout (r2d2's default): a connection to a local file does
        // not go stale, and the test was 3 % of a feedback event's profile (four checkouts).
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(Duration::from_secs(30))
            .test_on_check_out(false)
            .build(manager)?;
        let mut conn = pool.get()?;
        migrate(&mut conn)?;
        conn.execute_batch(SCHEMA)?;
        migrate_email_lookups(&mut conn)?;
        drop(conn);
        let conn = Connection::open(&path)?;
        configure(&conn, policy, WRITER_CACHE_KIB)?;
        // Savepoints of a group (see `group_commit`) journal pages in memory, not a temp file.
        conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
        let (writer, jobs) = std::sync::mpsc::channel();
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = commits.clone();
        let guard = WalGuard { wal: wal_path(&path), restart_at: policy.restart_at, retry_at: None };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || group_commit(conn, jobs, &counted, guard))
            .map_err(|e| EmbeddedError::Join(format!("cannot start the writer thread: {e}")))?;
        let alive = std::sync::Arc::new(());
        checkpointer(path.clone(), policy, std::sync::Arc::downgrade(&alive));
        Ok(Self { pool, path, _alive: alive, writer, commits })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed through this handle's writer so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs blocking SQLite work off the async runtime.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<EmbeddedError> + Send + 'static,
        F: FnOnce(&mut PooledConnection<SqliteConnectionManager>) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(EmbeddedError::from)?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(EmbeddedError::Join(e.to_string())))?
    }

    /// Runs a point read (a few rows by key) on the calling thread when a connection is
    /// free, else like [`Self::run`]. Handing a read to a blocking thread and back costs
    /// more than the read itself: futex wake-ups and pool waits were most of a feedback
    /// event's time. Scans and writes always go through `run`/`write`.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<EmbeddedError> + Send + 'static,
        F: FnOnce(&mut PooledConnection<SqliteConnectionManager>) -> Result<T, E> + Send + 'static,
    {
        match self.pool.try_get() {
            Some(mut conn) => work(&mut conn),
            None => self.run(work).await,
        }
    }

    /// Runs blocking work inside an immediate (write-locking) transaction, committed on
    /// `Ok` and rolled back on `Err`. Writes queued at the same moment share one commit
    /// (see [`group_commit`]); this returns once the commit holding this work is durable.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<EmbeddedError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = outcome.clone();
        let run: Box<dyn FnOnce(&Transaction<'_>) -> bool + Send> = Box::new(move |tx| {
            let result = work(tx);
            let keep = result.is_ok();
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            keep
        });
        let (done, committed) = tokio::sync::oneshot::channel();
        self.writer
            .send(WriteJob { run, done })
            .map_err(|_| EmbeddedError::Join("the writer thread has stopped".into()))?;
        let committed = committed.await.map_err(|_| EmbeddedError::Join("the writer thread has stopped".into()))?;
        let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (result, committed) {
            // Rolled back (its savepoint, or its lone transaction), whatever became of the others.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            // Its group's transaction failed: nothing of it was written.
            (_, Err(e)) => Err(E::from(EmbeddedError::Commit(e))),
            (None, Ok(())) => Err(E::from(EmbeddedError::Join("a write panicked; it was rolled back".into()))),
        }
    }
}

#[cfg(test)]
#[path = "database_tests.rs"]
mod tests;
