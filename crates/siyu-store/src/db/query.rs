//! Running statements on the pool ([`Db`]) or in a write transaction ([`Tx`]), or on whichever
//! a [`Reader`] holds; rows decoded from either backend.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow};

use super::*;

macro_rules! bound_query {
    (sqlite, $sql:expr) => {{
        let mut q = sqlx::query(sqlite_text(&$sql.text));
        for a in &$sql.args {
            q = match a {
                Value::Int(v) => q.bind(*v),
                Value::Text(v) => q.bind(v.clone()),
                Value::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
    ($sql:expr) => {{
        // Long generated statements (bulk inserts, IN lists) are planned afresh each time: a
        // plan cached while a table was empty must not outlive the table's growth.
        let mut q = sqlx::query(AssertSqlSafe($sql.text.clone())).persistent($sql.args.len() <= 16);
        for a in &$sql.args {
            q = match a {
                Value::Int(v) => q.bind(*v),
                Value::Text(v) => q.bind(v.clone()),
                Value::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

macro_rules! bound_query_as {
    (sqlite, $t:ty, $sql:expr) => {{
        let mut q = sqlx::query_as::<_, $t>(sqlite_text(&$sql.text));
        for a in &$sql.args {
            q = match a {
                Value::Int(v) => q.bind(*v),
                Value::Text(v) => q.bind(v.clone()),
                Value::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
    ($t:ty, $sql:expr) => {{
        let mut q = sqlx::query_as::<_, $t>(AssertSqlSafe($sql.text.clone()))
            .persistent($sql.args.len() <= 16);
        for a in &$sql.args {
            q = match a {
                Value::Int(v) => q.bind(*v),
                Value::Text(v) => q.bind(v.clone()),
                Value::Bytes(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// Where a lookup runs: inside the caller's write transaction, or on a pooled connection, so
/// that work done before a transaction does not hold the writer.
pub enum Reader<'a> {
    Tx(&'a mut Tx),
    Pool(&'a Db),
}

impl Reader<'_> {
    pub async fn fetch_optional<T: Row>(&mut self, s: &Sql) -> DbResult<Option<T>> {
        match self {
            Reader::Tx(tx) => tx.fetch_optional(s).await,
            Reader::Pool(db) => db.fetch_optional(s).await,
        }
    }

    pub async fn fetch_all<T: Row>(&mut self, s: &Sql) -> DbResult<Vec<T>> {
        match self {
            Reader::Tx(tx) => tx.fetch_all(s).await,
            Reader::Pool(db) => db.fetch_all(s).await,
        }
    }

    pub async fn fetch_in<T: Row>(
        &mut self,
        head: &str,
        fixed: &[Value],
        list: Vec<Value>,
    ) -> DbResult<Vec<T>> {
        match self {
            Reader::Tx(tx) => tx.fetch_in(head, fixed, list).await,
            Reader::Pool(db) => db.fetch_in(head, fixed, list).await,
        }
    }
}

/// Rows decodable from either backend.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`)
    /// so that two writers never deadlock upgrading read locks.
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(_, gate) => {
                let guard = gate.turn.clone().lock_owned().await;
                Tx::Sqlite(gate.writer.begin_with("BEGIN IMMEDIATE").await?, guard)
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A write transaction whose commit returns before PostgreSQL has flushed it to disk: a
    /// crash may lose it, and the database stays consistent. For writes whose loss costs little
    /// (a sign-in's budget counts and its session: one more sign-in), so that a flood of them
    /// does not queue in front of the log flushes of work that must be durable. The setting is
    /// sent with `BEGIN`, in the same round trip. SQLite has nothing to skip: [`Db::begin`].
    pub async fn begin_unflushed(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(..) => self.begin().await?,
            Db::Postgres(p) => Tx::Postgres(
                p.begin_with("BEGIN; SET LOCAL synchronous_commit TO OFF")
                    .await?,
            ),
        })
    }

    pub async fn execute(&self, s: &Sql) -> DbResult<u64> {
        Ok(match self {
            Db::Sqlite(p, _) => bound_query!(sqlite, s).execute(p).await?.rows_affected(),
            Db::Postgres(p) => bound_query!(s).execute(p).await?.rows_affected(),
        })
    }

    pub async fn fetch_all<T: Row>(&self, s: &Sql) -> DbResult<Vec<T>> {
        Ok(match self {
            Db::Sqlite(p, _) => bound_query_as!(sqlite, T, s).fetch_all(p).await?,
            Db::Postgres(p) => bound_query_as!(T, s).fetch_all(p).await?,
        })
    }

    pub async fn fetch_optional<T: Row>(&self, s: &Sql) -> DbResult<Option<T>> {
        Ok(match self {
            Db::Sqlite(p, _) => bound_query_as!(sqlite, T, s).fetch_optional(p).await?,
            Db::Postgres(p) => bound_query_as!(T, s).fetch_optional(p).await?,
        })
    }

    pub async fn fetch_one<T: Row>(&self, s: &Sql) -> DbResult<T> {
        Ok(match self {
            Db::Sqlite(p, _) => bound_query_as!(sqlite, T, s).fetch_one(p).await?,
            Db::Postgres(p) => bound_query_as!(T, s).fetch_one(p).await?,
        })
    }

    /// [`Tx::fetch_in`] outside a transaction: `HEAD IN (…list…)` in as many statements as the
    /// bind limit needs.
    pub async fn fetch_in<T: Row>(
        &self,
        head: &str,
        fixed: &[Value],
        list: Vec<Value>,
    ) -> DbResult<Vec<T>> {
        let mut out = Vec::new();
        for q in in_statements(head, fixed, list) {
            out.extend(self.fetch_all::<T>(&q).await?);
        }
        Ok(out)
    }

    /// Runs a script of `;`-separated statements without binds (migrations).
    pub async fn execute_script(&self, script: &str) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(p, _) => sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
            Db::Postgres(p) => sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
        }
    }

    /// Whether [`Db::close`] has been called (background loops stop then).
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(p, _) => p.is_closed(),
            Db::Postgres(p) => p.is_closed(),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p, gate) => {
                if let Some(c) = &gate.checkpointer {
                    c.close().await;
                }
                gate.writer.close().await;
                p.close().await
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(..) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn execute(&mut self, s: &Sql) -> DbResult<u64> {
        Ok(match self {
            Tx::Sqlite(t, _) => bound_query!(sqlite, s)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => bound_query!(s).execute(&mut **t).await?.rows_affected(),
        })
    }

    /// Runs statements in order, building and binding each while the database runs the one
    /// before: one connection takes one statement at a time, and a bulk insert's values took
    /// about two fifths as long to build as SQLite took to store them (import profile,
    /// docs/BENCHMARKS.md). Returns the rows affected.
    pub async fn execute_each(&mut self, mut stmts: impl Iterator<Item = Sql>) -> DbResult<u64> {
        macro_rules! run_each {
            ($conn:expr, $bind:expr) => {{
                let mut total = 0;
                let mut next = stmts.next().map(|s| $bind(&s));
                while let Some(q) = next {
                    let mut running = std::pin::pin!(q.execute(&mut **$conn));
                    // The first poll hands the statement to the database (SQLite's worker
                    // thread, or PostgreSQL's socket); the next one is made while it runs.
                    let started = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(std::future::Future::poll(running.as_mut(), cx))
                    })
                    .await;
                    next = stmts.next().map(|s| $bind(&s));
                    total += match started {
                        std::task::Poll::Ready(done) => done?,
                        std::task::Poll::Pending => running.await?,
                    }
                    .rows_affected();
                }
                Ok(total)
            }};
        }
        match self {
            Tx::Sqlite(t, _) => run_each!(t, |s: &Sql| bound_query!(sqlite, s)),
            Tx::Postgres(t) => run_each!(t, |s: &Sql| bound_query!(s)),
        }
    }

    pub async fn fetch_all<T: Row>(&mut self, s: &Sql) -> DbResult<Vec<T>> {
        Ok(match self {
            Tx::Sqlite(t, _) => bound_query_as!(sqlite, T, s).fetch_all(&mut **t).await?,
            Tx::Postgres(t) => bound_query_as!(T, s).fetch_all(&mut **t).await?,
        })
    }

    pub async fn fetch_optional<T: Row>(&mut self, s: &Sql) -> DbResult<Option<T>> {
        Ok(match self {
            Tx::Sqlite(t, _) => {
                bound_query_as!(sqlite, T, s)
                    .fetch_optional(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => bound_query_as!(T, s).fetch_optional(&mut **t).await?,
        })
    }

    pub async fn fetch_one<T: Row>(&mut self, s: &Sql) -> DbResult<T> {
        Ok(match self {
            Tx::Sqlite(t, _) => bound_query_as!(sqlite, T, s).fetch_one(&mut **t).await?,
            Tx::Postgres(t) => bound_query_as!(T, s).fetch_one(&mut **t).await?,
        })
    }

    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t, turn) => {
                t.commit().await?;
                if let Some(commits) = turn.as_ref() {
                    commits.notify_one();
                }
            }
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Serialises writers of one tenant across processes (PostgreSQL); on SQLite the
    /// `BEGIN IMMEDIATE` write lock already does.
    pub async fn lock_tenant(&mut self, tenant_id: crate::TenantId) -> DbResult<()> {
        if let Tx::Postgres(_) = self {
            self.execute(&sql("SELECT pg_advisory_xact_lock(7301, $1::int4)").bind(tenant_id))
                .await?;
        }
        Ok(())
    }

    /// Runs `HEAD IN (…list…)` in as many statements as the bind limit needs and returns all
    /// rows. `head` uses `$1…$k` for the `fixed` values, e.g.
    /// `"SELECT ikey, customer_id FROM identities WHERE tenant_id = $1 AND ikey"`.
    pub async fn fetch_in<T: Row>(
        &mut self,
        head: &str,
        fixed: &[Value],
        list: Vec<Value>,
    ) -> DbResult<Vec<T>> {
        let mut out = Vec::new();
        for q in in_statements(head, fixed, list) {
            out.extend(self.fetch_all::<T>(&q).await?);
        }
        Ok(out)
    }

    /// [`Tx::fetch_in`] for statements without rows (`DELETE … WHERE … IN`); returns rows affected.
    pub async fn execute_in(
        &mut self,
        head: &str,
        fixed: &[Value],
        list: Vec<Value>,
    ) -> DbResult<u64> {
        let mut n = 0;
        for q in in_statements(head, fixed, list) {
            n += self.execute(&q).await?;
        }
        Ok(n)
    }

    /// Reserves `n` consecutive ids from the named counter and returns the first.
    pub async fn reserve_ids(&mut self, counter: &str, n: i64) -> DbResult<i64> {
        let (next,): (i64,) = self
            .fetch_one(
                &sql("UPDATE id_counters SET next_id = next_id + $2 WHERE name = $1 RETURNING next_id")
                    .bind(counter)
                    .bind(n),
            )
            .await?;
        Ok(next - n)
    }
}
