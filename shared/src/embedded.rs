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
    /// The group of writes this one was committed with could not be committed.
    #[error("sqlite commit: {0}")]
    Commit(String),
}

/// Items live in a rowid table: secondary index entries then carry an 8-byte rowid instead
/// of the text primary key, and each index is keyed by a 64-bit hash of its partition (the
/// query re-checks the text), so entries are small and a batch of random inserts (email and
/// LinkedIn lookups) dirties far fewer pages. Rows are upserted in place (stable rowids).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1h INTEGER,
    gsi1pk TEXT,
    gsi1sk TEXT,
    gsi2h INTEGER,
    gsi2pk TEXT,
    gsi2sk TEXT,
    gsi3h INTEGER,
    gsi3pk TEXT,
    gsi3sk TEXT,
    gsi4h INTEGER,
    gsi4pk TEXT,
    gsi4sk TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (pk, sk);
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1h, gsi1sk) WHERE gsi1h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2h, gsi2sk) WHERE gsi2h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi3 ON items (gsi3h, gsi3sk) WHERE gsi3h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi4 ON items (gsi4h, gsi4sk) WHERE gsi4h IS NOT NULL;
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

/// Connections in the pool. SQLite allows one writer at a time anyway.
const POOL_SIZE: u32 = 4;
/// Page cache per reading connection. The default 2 MB thrashes once the lead table outgrows it.
const CACHE_KIB: u32 = 8 * 1024;
/// Page cache of the one writing connection. Every ingest touches index pages all over
/// the file (email and LinkedIn lookups); they stay cached between transactions because no
/// other connection of this process writes (which would make SQLite drop the cache).
const WRITER_CACHE_KIB: u32 = 64 * 1024;
/// How often the background thread moves the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Past this size the WAL is checkpointed and truncated (TRUNCATE: wait for readers on old
/// snapshots, so the next commit starts the WAL from its beginning again). PASSIVE
/// checkpoints alone never reset it while some connection is always reading or writing:
/// it grew past 1.6 GB under load. The writer thread checks it after every commit (see
/// [`WalGuard`]); the checkpoint thread's timer alone let it grow to 92-112 MB.
const WAL_RESTART_BYTES: u64 = 32 * 1024 * 1024;
/// `journal_size_limit`: a WAL reset by a complete PASSIVE checkpoint (not truncated) is
/// cut back to this size by the first commit after the reset. It is not a cap: SQLite
/// only applies it then.
const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// The most the WAL file grows to under this process's writes (README, "Bounded WAL"):
/// `WAL_RESTART_BYTES` plus the one group commit that crosses it, while no reader holds
/// a snapshot longer than `WRITER_CHECKPOINT_WAIT` and no other process writes meanwhile.
pub const WAL_BOUND_BYTES: u64 = 64 * 1024 * 1024;
/// How long a writer waits for the write lock (another process: the admin CLI).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Checkpoint ticks without a write after which the WAL is truncated to zero bytes.
const QUIET_TICKS: u32 = 4;

/// The WAL file beside a database file.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// When the checkpoint thread checkpoints how (sizes in bytes).
#[derive(Debug, Clone, Copy)]
pub struct WalPolicy {
    pub restart_at: u64,
    pub size_limit: u64,
}

impl Default for WalPolicy {
    fn default() -> Self {
        Self { restart_at: WAL_RESTART_BYTES, size_limit: WAL_LIMIT_BYTES }
    }
}

/// How long a TRUNCATE checkpoint waits for readers on old snapshots. Writers wait while
/// it does, so it gives up soon and tries again on the next tick.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(1);
/// The same wait for the writer thread's own checkpoints (see [`WalGuard`]): a request's
/// reads end within it; a reader that takes longer (a long scan, another process) costs
/// the writes one such wait per `CHECKPOINT_EVERY`, not a stall at every commit.
const WRITER_CHECKPOINT_WAIT: Duration = Duration::from_millis(100);
/// How long the writer retries while the checkpoint thread holds the checkpoint lock.
const WRITER_CHECKPOINT_LIMIT: Duration = Duration::from_millis(250);

/// Checkpoints the WAL from a thread and connection of its own, so a request's commit
/// never pays for it: PASSIVE while the WAL is small, TRUNCATE once it passes
/// `restart_at` or once no frame was appended for `QUIET_TICKS`. The thread ends
/// once every clone of the `EmbeddedDb` is gone (`alive` cannot upgrade).
fn checkpointer(path: PathBuf, policy: WalPolicy, alive: std::sync::Weak<()>) {
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        let conn = match Connection::open(&path).and_then(|c| {
            c.busy_timeout(CHECKPOINT_WAIT)?;
            c.execute_batch(&format!("PRAGMA journal_size_limit = {};", policy.size_limit))?;
            Ok(c)
        }) {
            Ok(conn) => conn,
            Err(e) => {
                return tracing::warn!(error = %e, "no checkpoint connection; the WAL is truncated at restarts only");
            }
        };
        let wal = wal_path(&path);
        let (mut last_frames, mut quiet) = (-1i64, 0u32);
        while alive.upgrade().is_some() {
            std::thread::sleep(CHECKPOINT_EVERY);
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            // TRUNCATE is RESTART (wait for readers of old snapshots, so the next writer
            // starts the WAL afresh) plus cutting the file to zero bytes.
            let mode =
                if size >= policy.restart_at || (quiet >= QUIET_TICKS && size > 0) { "TRUNCATE" } else { "PASSIVE" };
            match checkpoint(&conn, mode) {
                Ok(state) => {
                    // Quiet: everything is in the database and nothing new was appended.
                    let settled = state.busy == 0 && state.log_frames == state.checkpointed;
                    quiet = if settled && state.log_frames == last_frames { quiet + 1 } else { 0 };
                    last_frames = state.log_frames;
                }
                Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint failed"),
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no checkpoint thread; the WAL will grow until the next start");
    }
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// 1 when readers or a writer kept it from completing.
    pub busy: i64,
    pub log_frames: i64,
    pub checkpointed: i64,
}

fn checkpoint(conn: &Connection, mode: &str) -> Result<Checkpoint, rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok(Checkpoint { busy: r.get(0)?, log_frames: r.get(1)?, checkpointed: r.get(2)? })
    })
}

/// Moves the whole WAL into the database and truncates it to zero bytes: at start-up (a
/// WAL left by a crash) and at shutdown. Waits (busy timeout) for other connections'
/// transactions to end.
pub fn truncate_wal(data_dir: &Path) -> Result<Checkpoint, EmbeddedError> {
    let conn = Connection::open(data_dir.join(DB_FILE))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(checkpoint(&conn, "TRUNCATE")?)
}

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

/// Moves a data file written by an earlier build to the current table layout, in one
/// transaction: the first layout (a WITHOUT ROWID `items` table keyed by text) is copied
/// over; the second only lacks the `gsi4` columns. (Item keys move to the current key
/// scheme separately, through the store: `repo::migrate`.)
fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('items')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if columns.iter().any(|c| c == "gsi1h") && !columns.iter().any(|c| c == "gsi4h") {
        return conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE items ADD COLUMN gsi4h INTEGER;
             ALTER TABLE items ADD COLUMN gsi4pk TEXT;
             ALTER TABLE items ADD COLUMN gsi4sk TEXT;
             COMMIT;",
        );
    }
    if columns.is_empty() || columns.iter().any(|c| c == "gsi1h") {
        return Ok(());
    }
    let has = |name: &str| columns.iter().any(|c| c == name);
    let column = |name: &str| if has(name) { name.to_owned() } else { format!("NULL AS {name}") };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "ALTER TABLE items RENAME TO items_old;
         DROP INDEX IF EXISTS items_gsi1; DROP INDEX IF EXISTS items_gsi2;
         DROP INDEX IF EXISTS items_gsi3; DROP INDEX IF EXISTS items_gsi4;
         DROP INDEX IF EXISTS items_expiry;",
    )?;
    tx.execute_batch(SCHEMA)?;
    {
        let select = format!(
            "SELECT pk, sk, gsi1pk, gsi1sk, {}, {}, {}, {}, expires_at, version, data FROM items_old",
            column("gsi2pk"),
            column("gsi2sk"),
            column("gsi3pk"),
            column("gsi3sk")
        );
        let mut read = tx.prepare(&select)?;
        let mut write = tx.prepare(
            "INSERT INTO items (pk, sk, gsi1h, gsi1pk, gsi1sk, gsi2h, gsi2pk, gsi2sk, gsi3h, gsi3pk, gsi3sk, expires_at, version, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| row.get::<_, Option<String>>(i);
            let (g1, g2, g3) = (text(2)?, text(4)?, text(6)?);
            let hash = |g: &Option<String>| g.as_deref().map(partition_hash);
            write.execute(rusqlite::params![
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                hash(&g1),
                g1,
                text(3)?,
                hash(&g2),
                g2,
                text(5)?,
                hash(&g3),
                g3,
                text(7)?,
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, String>(10)?,
            ])?;
        }
    }
    tx.execute_batch("DROP TABLE items_old;")?;
    tx.commit()
}

/// Moves email lookup keys written by an earlier build (`gsi2` = `W#{ws}#E#{email}` /
/// `LEAD#{lead}`) to the domain listing (`W#{ws}#D#{domain}#{shard}` /
/// `{email}#LEAD#{lead}`, see `repo::lead_lookup`), once per data file.
fn migrate_email_lookups(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    const NAME: &str = "gsi2_email_by_domain";
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")?;
    let done: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM migrations WHERE name = ?1)", [NAME], |r| r.get(0))?;
    if !done {
        let old: Vec<(i64, String, String)> = tx
            .prepare(
                "SELECT id, gsi2pk, gsi2sk FROM items WHERE gsi2pk IS NOT NULL AND substr(gsi2sk, 1, 5) = 'LEAD#'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut update = tx.prepare("UPDATE items SET gsi2h = ?2, gsi2pk = ?3, gsi2sk = ?4 WHERE id = ?1")?;
        for (id, pk, sk) in old {
            let Some((workspace, email)) = pk.strip_prefix("W#").and_then(|rest| rest.split_once("#E#")) else {
                continue;
            };
            let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
            let new_pk = crate::repo::keys::sharded(&format!("W#{workspace}#D#{domain}"), email);
            update.execute(rusqlite::params![id, partition_hash(&new_pk), new_pk, format!("{email}#{sk}")])?;
        }
        drop(update);
        tx.execute("INSERT INTO migrations (name) VALUES (?1)", [NAME])?;
    }
    tx.commit()
}

/// How every connection is set up. WAL lets readers run beside the one writer;
/// busy_timeout makes concurrent writers (another process included) wait instead of
/// failing. Checkpoints run in the background (see `checkpointer`), not inside some
/// request's commit.
fn configure(c: &Connection, policy: WalPolicy, cache_kib: u32) -> Result<(), rusqlite::Error> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{cache_kib};
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

/// One write waiting for the writer thread: `run` does the work and says whether to keep
/// it; `done` hears whether the commit that held it succeeded.
struct WriteJob {
    run: Box<dyn FnOnce(&Transaction<'_>) -> bool + Send>,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// At most this many writes share one commit.
const MAX_GROUP: usize = 64;

/// The writer thread's bound on the WAL. The checkpoint thread alone could not keep it:
/// its PASSIVE checkpoints complete, but a commit restarts the WAL from its beginning only
/// when no reader still reads WAL frames at that instant, which under concurrent requests
/// almost never happens, so the file kept growing; and its size is looked at every 500 ms,
/// in which 8 ingest senders append 20-50 MB past the threshold (92-112 MB peaks, over a
/// 64 MB `journal_size_limit` that SQLite only applies after a reset). Here the one writer
/// of this process checks the file after each commit and, past `restart_at`, checkpoints
/// and truncates it before it writes again: writes wait for that (tens of ms), which is
/// the back-pressure that bounds the file to `restart_at` plus one group commit.
struct WalGuard {
    wal: PathBuf,
    restart_at: u64,
    /// After a checkpoint that waited `WRITER_CHECKPOINT_WAIT` for a reader in vain, the
    /// next attempt waits until then, so a long reader does not stall every write.
    retry_at: Option<std::time::Instant>,
}

impl WalGuard {
    fn after_commit(&mut self, conn: &Connection) {
        let now = std::time::Instant::now();
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        if size < self.restart_at {
            return;
        }
        let outcome = conn.busy_timeout(WRITER_CHECKPOINT_WAIT).map_err(|e| e.to_string()).and_then(|()| {
            let deadline = now + WRITER_CHECKPOINT_LIMIT;
            loop {
                let attempt = std::time::Instant::now();
                match checkpoint(conn, "TRUNCATE") {
                    Ok(state) if state.busy == 0 => return Ok(()),
                    // Busy at once: the checkpoint thread holds the checkpoint lock while it
                    // copies the WAL (tens of ms). Going on would add a group to the WAL.
                    Ok(_) if attempt.elapsed() < WRITER_CHECKPOINT_WAIT / 2 && attempt < deadline => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Ok(_) => return Err("a reader holds an old snapshot, or the checkpoint thread is busy".to_owned()),
                    Err(e) => return Err(e.to_string()),
                }
            }
        });
        if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
            tracing::warn!(error = %e, "cannot restore the writer's busy timeout");
        }
        match outcome {
            Ok(()) => self.retry_at = None,
            Err(why) => {
                tracing::warn!(wal_bytes = size, why, "WAL not truncated yet; the writer tries again soon");
                self.retry_at = Some(std::time::Instant::now() + CHECKPOINT_EVERY);
            }
        }
    }
}

/// The writer thread: takes every write queued at the moment, runs them in one immediate
/// transaction, each in a savepoint when it is not alone (a write that fails rolls back
/// alone), and commits them together. A lone write runs as before; concurrent ones share
/// one commit, so the index pages they all touch reach the WAL once instead of once each. One connection
/// writes, so its page cache survives between transactions (writes from pooled connections
/// made each drop its cache: ingest re-read ~1,500 pages per request), and writers queue
/// here in order instead of meeting SQLite's busy handler, which sleeps up to 100 ms.
/// Ends when every `EmbeddedDb` clone (every sender) is gone.
fn group_commit(
    mut conn: Connection,
    jobs: std::sync::mpsc::Receiver<WriteJob>,
    commits: &std::sync::atomic::AtomicU64,
    mut wal: WalGuard,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (runs, waiting): (Vec<_>, Vec<_>) = group.into_iter().map(|job| (job.run, job.done)).unzip();
        let outcome = (|| {
            // Immediate: take the write lock up front (other processes: the admin CLI).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let keep = |run: Box<dyn FnOnce(&Transaction<'_>) -> bool + Send>, tx: &Transaction<'_>| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(tx))).unwrap_or(false)
            };
            if runs.len() == 1 {
                // Alone: no savepoint, whose sub-journal copies every page the write
                // touches (12 % of a 1000-lead ingest); a failure rolls back the transaction.
                for run in runs {
                    if !keep(run, &tx) {
                        tx.rollback()?;
                        return Ok(false);
                    }
                }
            } else {
                for run in runs {
                    tx.execute_batch("SAVEPOINT job")?;
                    let kept = keep(run, &tx);
                    tx.execute_batch(if kept { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" })?;
                }
            }
            tx.commit().map(|()| true)
        })();
        let outcome = match outcome {
            Ok(committed) => {
                if committed {
                    commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = waiting.len(), "a group of writes could not be committed");
        }
        for done in waiting {
            let _ = done.send(outcome.clone());
        }
        // After the answers: the checkpoint delays the next group, not this one.
        wal.after_commit(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Key, Query, Store};

    fn insert(tx: &Transaction<'_>, id: &str) -> Result<(), EmbeddedError> {
        tx.execute(
            "INSERT INTO queue_messages (id, queue, body, visible_at_ms, sent_at_ms) VALUES (?1, 't', '', 0, 0)",
            [id],
        )?;
        Ok(())
    }

    fn stored(db: &EmbeddedDb) -> Vec<String> {
        let conn = db.pool.get().unwrap();
        let mut stmt = conn.prepare("SELECT id FROM queue_messages WHERE queue = 't' ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// Writes queued while the writer is busy share the next commit; one that fails (or
    /// panics) in that group is rolled back alone and reports its own error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_share_one_commit_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDb::open(dir.path()).unwrap();
        let before = db.commits();
        let (started, running) = tokio::sync::oneshot::channel();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |tx| {
                    let _ = started.send(());
                    let _ = hold.recv();
                    insert(tx, "a-first")
                })
                .await
            }
        });
        running.await.unwrap();
        // Queued (first poll) while the writer is inside the first write.
        let mut ok = Box::pin(db.write(|tx| insert(tx, "b-kept")));
        let mut failing = Box::pin(db.write(|tx| {
            insert(tx, "c-rolled-back")?;
            Err::<(), _>(EmbeddedError::Join("refused by the test".into()))
        }));
        let mut panicking = Box::pin(db.write(|tx| -> Result<(), EmbeddedError> {
            insert(tx, "d-rolled-back")?;
            panic!("a bug in a write")
        }));
        let mut last = Box::pin(db.write(|tx| insert(tx, "e-kept")));
        assert!(futures_util::poll!(&mut ok).is_pending());
        assert!(futures_util::poll!(&mut failing).is_pending());
        assert!(futures_util::poll!(&mut panicking).is_pending());
        assert!(futures_util::poll!(&mut last).is_pending());
        release.send(()).unwrap();

        busy.await.unwrap().unwrap();
        ok.await.unwrap();
        assert_eq!(failing.await.unwrap_err().to_string(), "sqlite worker failed: refused by the test");
        assert!(panicking.await.unwrap_err().to_string().contains("panicked"));
        last.await.unwrap();
        assert_eq!(stored(&db), ["a-first", "b-kept", "e-kept"]);
        assert_eq!(db.commits() - before, 2, "the four queued writes shared one commit");
        // The writer goes on after a panic.
        db.write(|tx| insert(tx, "f-after")).await.unwrap();
        assert_eq!(stored(&db).len(), 4);
        // A lone write (no savepoint) that fails is rolled back with its transaction.
        let commits = db.commits();
        let refused = db.write(|tx| {
            insert(tx, "g-alone")?;
            Err::<(), _>(EmbeddedError::Join("alone and refused".into()))
        });
        assert_eq!(refused.await.unwrap_err().to_string(), "sqlite worker failed: alone and refused");
        assert_eq!((stored(&db).len(), db.commits()), (4, commits));
    }

    #[tokio::test]
    async fn data_files_of_the_first_layout_are_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout the first builds wrote: WITHOUT ROWID, text keys, one index.
            let old = Connection::open(dir.path().join(DB_FILE)).unwrap();
            old.execute_batch(
                "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT, expires_at INTEGER,
                     version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                 CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
                 INSERT INTO items VALUES ('W#1', 'LEAD#a', 'C#1', 'LEAD#a', NULL, 3, '{\"name\":\"A\"}');
                 INSERT INTO items VALUES ('W#1', 'IDEM#x', NULL, NULL, 99, 1, '{}');",
            )
            .unwrap();
        }
        let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
        let lead = store.get(&Key::new("W#1", "LEAD#a")).await.unwrap().unwrap();
        assert_eq!((lead.version, lead.data["name"].as_str()), (3, Some("A")));
        assert_eq!(store.get(&Key::new("W#1", "IDEM#x")).await.unwrap().unwrap().expires_at, Some(99));
        let page = store.query(&Query::gsi1("C#1")).await.unwrap();
        assert_eq!(page.items.len(), 1);
        // Opening again is a no-op.
        drop(store);
        let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
        assert_eq!(store.query(&Query::table("W#1")).await.unwrap().items.len(), 2);
    }

    fn wal_size(dir: &Path) -> u64 {
        std::fs::metadata(wal_path(&dir.join(DB_FILE))).map(|m| m.len()).unwrap_or(0)
    }

    /// A reader that holds an old snapshot stops every checkpoint short; PASSIVE ones alone
    /// then let the WAL grow without bound, and it never shrank afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_after_a_long_reader_and_is_truncated_when_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let policy = WalPolicy { restart_at: 512 * 1024, size_limit: 1024 * 1024 };
        let store = SqliteStore::new(EmbeddedDb::open_with(dir.path(), policy).unwrap());
        let blob = "x".repeat(4000);
        let put = |i: usize| {
            let item = crate::store::Item::new(
                Key::new(format!("P#{}", i % 50), format!("S#{i}")),
                &serde_json::json!({"b": blob}),
            )
            .unwrap();
            store.put(item, crate::store::Condition::Always)
        };
        put(0).await.unwrap();
        // An old snapshot, held while ~4 MB are written.
        let reader = Connection::open(dir.path().join(DB_FILE)).unwrap();
        reader.execute_batch("BEGIN; SELECT COUNT(*) FROM items;").unwrap();
        for i in 1..1000 {
            put(i).await.unwrap();
        }
        let grown = wal_size(dir.path());
        assert!(grown > 3 * 1024 * 1024, "the held snapshot should have kept the WAL growing ({grown} bytes)");
        reader.execute_batch("COMMIT;").unwrap();
        // Bursts of writes beside a busy reader: after each, checkpoints complete and the
        // WAL comes back under its limit (it never shrank before).
        let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let reading = {
            let (store, busy) = (store.clone(), busy.clone());
            tokio::spawn(async move {
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    store.query(&Query::table("P#1")).await.unwrap();
                }
            })
        };
        let mut i = 1000;
        for burst in 0..3 {
            for _ in 0..300 {
                put(i).await.unwrap();
                i += 1;
            }
            let limit = tokio::time::Instant::now() + Duration::from_secs(30);
            while wal_size(dir.path()) > policy.size_limit {
                assert!(tokio::time::Instant::now() < limit, "burst {burst}: WAL still {} bytes", wal_size(dir.path()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        busy.store(false, std::sync::atomic::Ordering::Relaxed);
        reading.await.unwrap();
        // Quiet: truncated to nothing.
        let quiet = tokio::time::Instant::now() + Duration::from_secs(30);
        while wal_size(dir.path()) > 0 {
            assert!(
                tokio::time::Instant::now() < quiet,
                "WAL not truncated when quiet: {} bytes",
                wal_size(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let written = (0..i).filter(|n| n % 50 == 7).count();
        assert_eq!(store.query(&Query::table("P#7")).await.unwrap().items.len(), written, "nothing lost");
    }

    #[tokio::test]
    async fn email_lookup_keys_of_earlier_builds_move_to_the_domain_listing() {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDb::open(dir.path()).unwrap();
        db.run(|conn| {
            conn.execute_batch(
                "INSERT INTO items (pk, sk, gsi2h, gsi2pk, gsi2sk, version, data)
                 VALUES ('W#1', 'LEAD#a', 1, 'W#1#E#jane@acme.com', 'LEAD#a', 1, '{}');
                 DELETE FROM migrations;",
            )
            .map_err(EmbeddedError::from)
        })
        .await
        .unwrap();
        drop(db);
        let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
        let partition = crate::repo::lead_lookup::email_partition("1", "jane@acme.com");
        let page = store.query(&Query::index(crate::store::Index::Gsi2, partition)).await.unwrap();
        let key = page.items[0].index_key(crate::store::Index::Gsi2).unwrap();
        assert_eq!(key.sk, "jane@acme.com#LEAD#a");
        assert!(key.pk.starts_with("W#1#D#acme.com#"), "{}", key.pk);
    }

    #[test]
    fn partition_hashes_are_fnv1a_and_stable() {
        assert_eq!(partition_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(partition_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_ne!(partition_hash("W#1#E#a@b.co"), partition_hash("W#1#E#a@b.cp"));
    }
}
