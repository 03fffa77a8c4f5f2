//! SQLite's one writer: the gate writers queue at for a connection of their own, and the
//! checkpointer that copies the write-ahead log into the database behind them.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use tokio::sync::Notify;

/// SQLite has one writer at a time. Writers queue here, in the process, instead of in SQLite's
/// busy handler, which sleeps and retries and so wastes most of the time a lock is free.
///
/// Every transaction through the gate runs on one connection of its own. SQLite drops a
/// connection's whole page cache when it finds the database changed by another connection;
/// a writer that took whichever pooled connection was free found its cache stale after every
/// commit and read its indexes back from the file (docs/BENCHMARKS.md).
///
/// The write-ahead log is copied into the database file by a checkpointer on a connection of
/// its own, not by the writer when a commit finds the log long: a checkpoint waits for two
/// `fsync`s, and the writer, which checkpointed itself before, stood still for them (an import
/// ran 20% faster with no checkpoints at all; docs/BENCHMARKS.md). The turn holds what wakes it.
#[derive(Clone, Debug)]
pub struct WriteGate {
    pub(super) turn: Arc<Turn>,
    pub(super) writer: SqlitePool,
    pub(super) checkpointer: Option<SqlitePool>,
}

/// After a commit, the checkpointer waits this long for more before it copies the log: a page
/// that several transactions changed is copied once per checkpoint.
pub(super) const CHECKPOINT_AFTER: Duration = Duration::from_millis(500);

/// Without commits, the checkpointer still looks this often (writes that bypass the gate, such
/// as single statements on pooled connections, or another process).
pub(super) const CHECKPOINT_IDLE: Duration = Duration::from_secs(5);

/// SQLite starts the log over only when a write transaction begins right after a checkpoint
/// copied all of it, which under steady writes never happens by itself: the writer commits
/// more between the checkpoint and its next transaction (measured: the log grew to the
/// backstop in a 1,000,000-row import). Past this many pages (100 MiB), the checkpointer copies
/// again holding the writer's turn, so the next transaction starts the log over.
pub(super) const LOG_PAGES_BEFORE_RESTART: i64 = 25_000;

/// A connection checkpoints by itself only when the log reaches this many pages (400 MiB): the
/// bound on the log should the checkpointer fall behind.
pub const BACKSTOP_CHECKPOINT_PAGES: i64 = 100_000;

/// The log file is cut back to this size when it starts over (SQLite keeps it at its largest
/// otherwise). Above what a long import reaches between restarts: cutting the file to 64 MiB
/// and growing it again cost an import a fifth more CPU in the file system.
pub(super) const LOG_FILE_LIMIT_BYTES: i64 = 256 * 1024 * 1024;

pub(super) type Turn = tokio::sync::Mutex<Option<Arc<Notify>>>;

/// Copies the log into the database after commits, on `pool`'s one connection, until the
/// database is closed or every handle to it is dropped. `PASSIVE` neither waits for nor blocks
/// the writer or readers; whatever a reader still needs is copied by a later checkpoint.
pub(super) fn spawn_checkpointer(
    pool: SqlitePool,
    turn: std::sync::Weak<Turn>,
    commits: std::sync::Weak<Notify>,
    restart_pages: i64,
) {
    tokio::spawn(async move {
        while let Some(signal) = commits.upgrade() {
            let woken = tokio::time::timeout(CHECKPOINT_IDLE, signal.notified())
                .await
                .is_ok();
            drop(signal);
            if pool.is_closed() {
                break;
            }
            if woken {
                tokio::time::sleep(CHECKPOINT_AFTER).await;
            }
            match checkpoint(&pool).await {
                // Even when all of it was copied: the writer committed more since, so its next
                // transaction would not start the log over.
                Ok((log, _)) if log >= restart_pages => {
                    let Some(turn) = turn.upgrade() else { break };
                    let _writers_wait = turn.lock().await;
                    if let Err(e) = checkpoint(&pool).await {
                        tracing::warn!(error = %e, "WAL checkpoint failed; the next commit tries again");
                    }
                }
                Ok(_) => {}
                Err(_) if pool.is_closed() => break,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next commit tries again")
                }
            }
        }
        pool.close().await;
    });
}

/// One `PASSIVE` checkpoint: (pages in the log, pages copied into the database).
pub(super) async fn checkpoint(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    let (busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    tracing::debug!(busy, log, copied, "WAL checkpoint");
    Ok((log, copied))
}
