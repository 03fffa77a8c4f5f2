//! One store, two backends: the same `$N` SQL runs on SQLite (the embedded default) and on
//! PostgreSQL. Repositories build a [`Sql`] (text plus bound values) and run it on a [`Db`] or a
//! [`Tx`]; only genuinely different dialect points are matched on [`Backend`].

mod open;
mod query;
mod respell;
mod statement;
mod text_cache;
mod value;
mod write_gate;

use std::sync::Arc;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Postgres, Sqlite, Transaction};
use tokio::sync::Notify;

pub use open::ConnectOptions;
pub use query::{Reader, Row};
pub(crate) use respell::rewrite_placeholders;
use respell::sqlite_text;
use statement::in_statements;
pub use statement::{MAX_BINDS, Sql, list_placeholders, sql, values_placeholders};
use text_cache::{LIST_TEXT, SQLITE_TEXT, VALUES_TEXT};
pub use value::Value;
pub use write_gate::{BACKSTOP_CHECKPOINT_PAGES, WriteGate};
use write_gate::{LOG_FILE_LIMIT_BYTES, LOG_PAGES_BEFORE_RESTART, spawn_checkpointer};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// An error SQLite reported for a statement run on its handle (`platform::rows`).
    #[error("database error: {message} (SQLite code {code}) in: {statement}")]
    Sqlite {
        code: i32,
        message: String,
        statement: String,
    },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: String,
        source: sqlx::Error,
    },
}

pub type DbResult<T> = Result<T, DbError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool on one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool, WriteGate),
    Postgres(PgPool),
}

/// A transaction on one of the two backends.
pub enum Tx {
    Sqlite(
        Transaction<'static, Sqlite>,
        tokio::sync::OwnedMutexGuard<Option<Arc<Notify>>>,
    ),
    Postgres(Transaction<'static, Postgres>),
}

/// The steps of SQLite's plan for a statement (`EXPLAIN QUERY PLAN`), for tests that hold a
/// query to its index (SQLite only; the `test-util` feature outside this crate's own tests).
#[cfg(any(test, feature = "test-util"))]
pub async fn query_plan(db: &Db, q: Sql) -> DbResult<Vec<String>> {
    let explain = Sql {
        text: format!("EXPLAIN QUERY PLAN {}", q.text),
        args: q.args,
    };
    let rows: Vec<(i64, i64, i64, String)> = db.fetch_all(&explain).await?;
    Ok(rows.into_iter().map(|r| r.3).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{open::*, respell::*, statement::*, text_cache::*, value::*, write_gate::*};
    use std::time::Duration;

    /// A SQLite file in a directory that lives as long as the returned guard.
    async fn file_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url, &ConnectOptions::default())
            .await
            .expect("db");
        (dir, db)
    }

    #[tokio::test]
    async fn sqlite_connections_write_ahead_with_rare_checkpoints() {
        let (_dir, db) = file_db().await;
        let (mode,): (String,) = db
            .fetch_one(&sql("PRAGMA journal_mode"))
            .await
            .expect("mode");
        let (pages,): (i64,) = db
            .fetch_one(&sql("PRAGMA wal_autocheckpoint"))
            .await
            .expect("pages");
        db.close().await;
        assert_eq!((mode.as_str(), pages), ("wal", BACKSTOP_CHECKPOINT_PAGES));
    }

    /// Rows `from..=to` of about 1 KiB each into `t (n, pad)`.
    async fn write_rows(tx: &mut Tx, from: i64, to: i64) {
        tx.execute(
            &sql(
                "WITH RECURSIVE k(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM k WHERE n < $2) \
                 INSERT INTO t SELECT n, printf('%.1000c', 'x') FROM k",
            )
            .bind(from)
            .bind(to),
        )
        .await
        .expect("rows");
    }

    #[tokio::test]
    async fn a_long_log_starts_over_though_the_writer_keeps_committing() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect_restarting_log_at(&url, &ConnectOptions::default(), 100)
            .await
            .expect("db");
        db.execute_script("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT NOT NULL)")
            .await
            .expect("table");
        // About 1,000 pages, past the 100 at which the log is to start over.
        let mut a = db.begin().await.expect("begin");
        write_rows(&mut a, 1, 4_000).await;
        a.commit().await.expect("commit");
        // The next transaction is open while the checkpointer copies, and commits after it:
        // the log is copied but holds more by the time a transaction begins again, so SQLite
        // would not start it over by itself.
        let mut b = db.begin().await.expect("begin");
        write_rows(&mut b, 4_001, 4_010).await;
        tokio::time::sleep(CHECKPOINT_AFTER * 3).await;
        b.commit().await.expect("commit");
        // The checkpointer was waiting for the turn before this transaction, copies the rest
        // holding it, and this transaction starts the log over.
        let mut c = db.begin().await.expect("begin");
        write_rows(&mut c, 4_011, 4_011).await;
        c.commit().await.expect("commit");
        let (_, log, _): (i64, i64, i64) = db
            .fetch_one(&sql("PRAGMA wal_checkpoint(PASSIVE)"))
            .await
            .expect("checkpoint");
        db.close().await;
        assert!(
            (0..20).contains(&log),
            "{log} pages in the log: it did not start over"
        );
    }

    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_the_writer_copying_them() {
        let (dir, db) = file_db().await;
        let file = dir.path().join("t.db");
        db.execute_script("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT NOT NULL)")
            .await
            .expect("table");
        let before = std::fs::metadata(&file).expect("size").len();
        // About 4 MiB in one commit: far below the backstop, so only the checkpointer copies it.
        let mut tx = db.begin().await.expect("begin");
        tx.execute(&sql(
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 4000) \
             INSERT INTO t SELECT n, printf('%.1000c', 'x') FROM k",
        ))
        .await
        .expect("rows");
        tx.commit().await.expect("commit");
        let mut copied = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if std::fs::metadata(&file).expect("size").len() > before + 4_000_000 {
                copied = true;
                break;
            }
        }
        db.close().await;
        assert!(copied, "the log was not copied into {}", file.display());
    }

    #[tokio::test]
    async fn statements_run_in_order_while_the_next_is_built() {
        let (_dir, db) = file_db().await;
        db.execute_script("CREATE TABLE t (n INTEGER PRIMARY KEY, label TEXT NOT NULL)")
            .await
            .expect("table");
        let built = std::cell::Cell::new(0);
        let batch = |from: i64| {
            built.set(built.get() + 1);
            let mut q = sql(format!(
                "INSERT INTO t (n, label) VALUES {}",
                values_placeholders(3, 2, 1)
            ));
            for n in from..from + 3 {
                q.push_arg(n);
                q.push_arg(format!("row {n}"));
            }
            q
        };
        let mut tx = db.begin().await.expect("begin");
        let n = tx
            .execute_each([0, 3, 6].into_iter().map(batch))
            .await
            .expect("inserts");
        tx.commit().await.expect("commit");
        assert_eq!((n, built.get()), (9, 3));
        let rows: Vec<(i64, String)> = db
            .fetch_all(&sql("SELECT n, label FROM t ORDER BY n"))
            .await
            .expect("rows");
        assert_eq!(rows.len(), 9);
        assert_eq!(rows[8], (8, "row 8".to_string()));

        // A statement that fails stops the run with its error; the caller's transaction then
        // rolls back everything, the statements before it included.
        let mut tx = db.begin().await.expect("begin");
        let err = tx
            .execute_each([9, 0, 12].into_iter().map(batch))
            .await
            .expect_err("the second repeats keys");
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        drop(tx);
        let (count,): (i64,) = db
            .fetch_one(&sql("SELECT COUNT(*) FROM t"))
            .await
            .expect("count");
        assert_eq!(count, 9);
        db.close().await;
    }

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(&*values_placeholders(2, 3, 2), "($2,$3,$4),($5,$6,$7)");
        assert_eq!(&*list_placeholders(3, 5), "$5,$6,$7");
        let qs = in_statements(
            "SELECT 1 WHERE t = $1 AND k",
            &[Value::from(7i64)],
            (0..MAX_BINDS as i64 + 5).map(Value::from).collect(),
        );
        assert_eq!(qs.len(), 2);
        assert!(
            qs[1].text.ends_with("k IN ($2,$3,$4,$5,$6,$7)"),
            "{}",
            qs[1].text
        );
        assert_eq!(
            qs.iter().map(|q| q.args.len() - 1).sum::<usize>(),
            MAX_BINDS + 5
        );
        assert_eq!(
            sqlite_text("SELECT $1, '$' || $2 || '中'").as_str(),
            "SELECT ?, '$' || ? || '中'"
        );
        assert_eq!(sqlite_text("SELECT $2, $1").as_str(), "SELECT ?2, ?1");
        assert_eq!(sqlite_text("SELECT $1, $1").as_str(), "SELECT ?1, ?1");
        assert_eq!(sqlite_text("SELECT '$1', $1").as_str(), "SELECT '$1', ?");
    }

    #[test]
    fn kept_statement_text_is_the_text_written_afresh() {
        // More text than the cache keeps, each shape asked for twice, so that answers come
        // from writing, from the cache, and after older text was let go.
        for round in 0..2 {
            for rows in 1..=80 {
                let first = 1 + round;
                assert_eq!(
                    &*values_placeholders(rows, 3, first),
                    write_values_placeholders(rows, 3, first)
                );
                assert_eq!(
                    &*list_placeholders(rows * 40, first),
                    write_list_placeholders(rows * 40, first)
                );
                let text = format!(
                    "INSERT INTO t (a, b, c) VALUES {} ON CONFLICT DO NOTHING",
                    values_placeholders(rows * 40, 3, 1)
                );
                let respelled = rewrite_placeholders(&text, false).expect("in order");
                assert!(respelled.len() >= SQLITE_TEXT_CACHED_FROM || rows < 10);
                assert_eq!(sqlite_text(&text).as_str(), respelled);
                let reordered = format!("SELECT $2, {}", list_placeholders(rows * 1_000, 1));
                assert_eq!(
                    sqlite_text(&reordered).as_str(),
                    rewrite_placeholders(&reordered, true).expect("numbered")
                );
            }
        }
        let kept = SQLITE_TEXT.0.lock().unwrap_or_else(|e| e.into_inner());
        assert!(kept.bytes <= TEXT_CACHE_BYTES, "{} bytes kept", kept.bytes);
        assert_eq!(
            kept.bytes,
            kept.texts
                .iter()
                .map(|(k, t)| k.len() + t.text.len())
                .sum::<usize>()
        );
    }
}
