//! Keeping the WAL file bounded: a background checkpointer, and the writer truncating the
//! WAL itself past a size when readers hold back the checkpointer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::database::*;

/// How often the background thread moves the WAL into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Past this size the WAL is checkpointed and truncated (TRUNCATE: wait for readers on old
/// snapshots, so the next commit starts the WAL from its beginning again). PASSIVE
/// checkpoints alone never reset it while some connection is always reading or writing:
/// it grew past 1.6 GB under load. The writer thread checks it after every commit (see
/// [`WalGuard`]); the checkpoint thread's timer alone let it grow to 92-112 MB.
pub(super) const WAL_RESTART_BYTES: u64 = 32 * 1024 * 1024;

/// `journal_size_limit`: a WAL reset by a complete PASSIVE checkpoint (not truncated) is
/// cut back to this size by the first commit after the reset. It is not a cap: SQLite
/// only applies it then.
pub(super) const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The most the WAL file grows to under this process's writes (docs/reliability.md,
/// "Bounded WAL"): `WAL_RESTART_BYTES` plus the one group commit that crosses it, while no
/// reader holds a snapshot longer than `WRITER_CHECKPOINT_WAIT` and no other process writes
/// meanwhile.
pub const WAL_BOUND_BYTES: u64 = 64 * 1024 * 1024;

/// Checkpoint ticks without a write after which the WAL is truncated to zero bytes.
pub(super) const QUIET_TICKS: u32 = 4;

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
pub(super) const CHECKPOINT_WAIT: Duration = Duration::from_secs(1);

/// The same wait for the writer thread's own checkpoints (see [`WalGuard`]): a request's
/// reads end within it; a reader that takes longer (a long scan, another process) costs
/// the writes one such wait per `CHECKPOINT_EVERY`, not a stall at every commit.
pub(super) const WRITER_CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// How long the writer retries while the checkpoint thread holds the checkpoint lock.
pub(super) const WRITER_CHECKPOINT_LIMIT: Duration = Duration::from_millis(250);

/// Checkpoints the WAL from a thread and connection of its own, so a request's commit
/// never pays for it: PASSIVE while the WAL is small, TRUNCATE once it passes
/// `restart_at` or once no frame was appended for `QUIET_TICKS`. The thread ends
/// once every clone of the `EmbeddedDb` is gone (`alive` cannot upgrade).
pub(super) fn checkpointer(path: PathBuf, policy: WalPolicy, alive: std::sync::Weak<()>) {
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

pub(super) fn checkpoint(conn: &Connection, mode: &str) -> Result<Checkpoint, rusqlite::Error> {
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

/// The writer thread's bound on the WAL. The checkpoint thread alone could not keep it:
/// its PASSIVE checkpoints complete, but a commit restarts the WAL from its beginning only
/// when no reader still reads WAL frames at that instant, which under concurrent requests
/// almost never happens, so the file kept growing; and its size is looked at every 500 ms,
/// in which 8 ingest senders append 20-50 MB past the threshold (92-112 MB peaks, over a
/// 64 MB `journal_size_limit` that SQLite only applies after a reset). Here the one writer
/// of this process checks the file after each commit and, past `restart_at`, checkpoints
/// and truncates it before it writes again: writes wait for that (tens of ms), which is
/// the back-pressure that bounds the file to `restart_at` plus one group commit.
pub(super) struct WalGuard {
    pub(super) wal: PathBuf,
    pub(super) restart_at: u64,
    /// After a checkpoint that waited `WRITER_CHECKPOINT_WAIT` for a reader in vain, the
    /// next attempt waits until then, so a long reader does not stall every write.
    pub(super) retry_at: Option<std::time::Instant>,
}

impl WalGuard {
    pub(super) fn after_commit(&mut self, conn: &Connection) {
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
