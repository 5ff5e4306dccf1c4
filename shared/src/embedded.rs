//! The embedded database behind `leadpush serve`: one SQLite file in WAL mode, shared by the
//! store and the queue, and safe for several processes at once (server + `leadpush admin`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

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
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    gsi2pk TEXT,
    gsi2sk TEXT,
    gsi3pk TEXT,
    gsi3sk TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages (queue, visible_at_ms);
CREATE INDEX IF NOT EXISTS queue_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
";

/// Brings a data file written by an older build up to date (columns added later).
fn migrate(conn: &Connection) -> Result<(), rusqlite::Error> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('items')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for column in ["gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE items ADD COLUMN {column} TEXT"))?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL;
         CREATE INDEX IF NOT EXISTS items_gsi3 ON items (gsi3pk, gsi3sk, pk, sk) WHERE gsi3pk IS NOT NULL;",
    )
}

/// A small pool of connections to one database file.
#[derive(Clone)]
pub struct EmbeddedDb {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl EmbeddedDb {
    /// Opens (creating if needed) `<data_dir>/leadpush.db` and applies the schema.
    pub fn open(data_dir: &Path) -> Result<Self, EmbeddedError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| EmbeddedError::DataDir { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DB_FILE);
        let manager = SqliteConnectionManager::file(&path).with_init(|c: &mut Connection| {
            // WAL lets readers run beside the one writer; busy_timeout makes concurrent
            // writers (another process included) wait instead of failing.
            c.busy_timeout(Duration::from_secs(30))?;
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        });
        let pool = Pool::builder().max_size(8).connection_timeout(Duration::from_secs(30)).build(manager)?;
        let conn = pool.get()?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Self { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// Runs blocking work inside an immediate (write-locking) transaction, committed on `Ok`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<EmbeddedError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.run(move |conn| {
            // Immediate: take the write lock up front so two writers never deadlock upgrading.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(EmbeddedError::from)?;
            let out = work(&tx)?;
            tx.commit().map_err(EmbeddedError::from)?;
            Ok(out)
        })
        .await
    }
}
