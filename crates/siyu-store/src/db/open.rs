//! Opening the store: `sqlite://PATH` in WAL mode with its pooled readers, writer and
//! checkpointer connections, or `postgres://…`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;

use super::*;

/// Connection settings that matter for correctness.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_connections: 8 }
    }
}

impl Db {
    /// Opens `sqlite://PATH` (created when absent, WAL mode) or `postgres://…`.
    pub async fn connect(url: &str, opts: &ConnectOptions) -> DbResult<Db> {
        Db::connect_restarting_log_at(url, opts, LOG_PAGES_BEFORE_RESTART).await
    }

    /// [`Db::connect`], with the log (SQLite) started over past `restart_pages`.
    pub(super) async fn connect_restarting_log_at(
        url: &str,
        opts: &ConnectOptions,
        restart_pages: i64,
    ) -> DbResult<Db> {
        if url.starts_with("sqlite:") {
            let co = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode: a committed transaction survives a process crash; only an
                // OS crash or power loss can roll back the last commits.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(false)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                // Pages read through the map, not copied by read(): a pooled reader's cache is
                // dropped by every commit, and a launch's reads of the next chunk re-read many.
                .pragma("mmap_size", "1073741824")
                // The checkpointer copies the log (see `WriteGate`); a connection does so
                // itself only as a backstop.
                .pragma("wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES.to_string())
                .pragma("journal_size_limit", LOG_FILE_LIMIT_BYTES.to_string())
                // Rows a query may have ready before its reader takes them (sqlx's default is
                // 50): SQLite's thread finishes a lookup of thousands of keys instead of
                // stopping each time the task reading them is not running (docs/BENCHMARKS.md).
                .row_buffer_size(4096);
            let in_memory = url.contains(":memory:");
            let pool = SqlitePoolOptions::new()
                .max_connections(if in_memory { 1 } else { opts.max_connections })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(3600))
                })
                .connect_with(co.clone())
                .await?;
            // An in-memory database exists once per connection: its writer is the pool's one.
            let writer = if in_memory {
                pool.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(co.clone())
                    .await?
            };
            let (commits, checkpointer) = if in_memory {
                (None, None) // no log to copy
            } else {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(0)
                    .idle_timeout(Some(Duration::from_secs(60)))
                    .connect_with(co.clone())
                    .await?;
                let commits = Arc::new(Notify::new());
                (Some(commits), Some(pool))
            };
            let gate = WriteGate {
                turn: Arc::new(tokio::sync::Mutex::new(commits.clone())),
                writer,
                checkpointer,
            };
            if let (Some(commits), Some(pool)) = (&commits, &gate.checkpointer) {
                spawn_checkpointer(
                    pool.clone(),
                    Arc::downgrade(&gate.turn),
                    Arc::downgrade(commits),
                    restart_pages,
                );
            }
            Ok(Db::Sqlite(pool, gate))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }
}
