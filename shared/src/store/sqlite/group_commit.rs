//! Group commit: one writer thread commits queued writes together, up to a group size.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::checkpoint::*;

/// One write waiting for the writer thread: `run` does the work and says whether to keep
/// it; `done` hears whether the commit that held it succeeded.
pub(super) struct WriteJob {
    pub(super) run: Box<dyn FnOnce(&Transaction<'_>) -> bool + Send>,
    pub(super) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// At most this many writes share one commit.
pub(super) const MAX_GROUP: usize = 64;

/// The writer thread: takes every write queued at the moment, runs them in one immediate
/// transaction, each in a savepoint when it is not alone (a write that fails rolls back
/// alone), and commits them together. A lone write runs as before; concurrent ones share
/// one commit, so the index pages they all touch reach the WAL once instead of once each. One connection
/// writes, so its page cache survives between transactions (writes from pooled connections
/// made each drop its cache: ingest re-read ~1,500 pages per request), and writers queue
/// here in order instead of meeting SQLite's busy handler, which sleeps up to 100 ms.
/// Ends when every `EmbeddedDb` clone (every sender) is gone.
pub(super) fn group_commit(
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
