//! One store, two backends: the same `$N` SQL runs on SQLite (the embedded default) and on
//! PostgreSQL. Repositories build a [`Sql`] (text plus bound values) and run it on a [`Db`] or a
//! [`Tx`]; only genuinely different dialect points are matched on [`Backend`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, FromRow, Postgres, SqlSafeStr, SqlStr, Sqlite, Transaction};

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
    turn: Arc<Turn>,
    writer: SqlitePool,
    checkpointer: Option<SqlitePool>,
}

/// After a commit, the checkpointer waits this long for more before it copies the log: a page
/// that several transactions changed is copied once per checkpoint.
const CHECKPOINT_AFTER: Duration = Duration::from_millis(500);

/// Without commits, the checkpointer still looks this often (writes that bypass the gate, such
/// as single statements on pooled connections, or another process).
const CHECKPOINT_IDLE: Duration = Duration::from_secs(5);

/// SQLite starts the log over only when a write transaction begins right after a checkpoint
/// copied all of it, which under steady writes never happens by itself: the writer commits
/// more between the checkpoint and its next transaction (measured: the log grew to the
/// backstop in a 1,000,000-row import). Past this many pages (100 MiB), the checkpointer copies
/// again holding the writer's turn, so the next transaction starts the log over.
const LOG_PAGES_BEFORE_RESTART: i64 = 25_000;

/// A connection checkpoints by itself only when the log reaches this many pages (400 MiB): the
/// bound on the log should the checkpointer fall behind.
pub const BACKSTOP_CHECKPOINT_PAGES: i64 = 100_000;

/// The log file is cut back to this size when it starts over (SQLite keeps it at its largest
/// otherwise). Above what a long import reaches between restarts: cutting the file to 64 MiB
/// and growing it again cost an import a fifth more CPU in the file system.
const LOG_FILE_LIMIT_BYTES: i64 = 256 * 1024 * 1024;

type Turn = tokio::sync::Mutex<Option<Arc<Notify>>>;

/// Copies the log into the database after commits, on `pool`'s one connection, until the
/// database is closed or every handle to it is dropped. `PASSIVE` neither waits for nor blocks
/// the writer or readers; whatever a reader still needs is copied by a later checkpoint.
fn spawn_checkpointer(
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
async fn checkpoint(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    let (busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    tracing::debug!(busy, log, copied, "WAL checkpoint");
    Ok((log, copied))
}

/// A transaction on one of the two backends.
pub enum Tx {
    Sqlite(
        Transaction<'static, Sqlite>,
        tokio::sync::OwnedMutexGuard<Option<Arc<Notify>>>,
    ),
    Postgres(Transaction<'static, Postgres>),
}

/// A bound value. Integers, text and bytes are all the schema uses: money is fen, times are
/// UTC milliseconds, JSON and ids are text.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    /// Shared, so binding hands SQLite and PostgreSQL the same bytes without copying them.
    Text(Option<Arc<str>>),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v.into()))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.as_str().into()))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.into()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v.map(Arc::from))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(Arc::from))
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Some(v))
    }
}

/// SQL text with `$1…$N` placeholders and its values.
#[derive(Debug, Clone)]
pub struct Sql {
    text: String,
    args: Vec<Value>,
}

/// Starts a statement.
pub fn sql(text: impl Into<String>) -> Sql {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl Sql {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }
    pub fn push_arg(&mut self, v: impl Into<Value>) {
        self.args.push(v.into());
    }
}

/// Statement text generated for bulk statements, kept because they repeat their shapes: every
/// full batch of an import is the same 32,000 placeholders, and writing them out and
/// respelling them for SQLite took a fifth of the writers' own time (docs/BENCHMARKS.md).
/// Bounded by the bytes it holds; the text used longest ago goes first.
struct TextCache<K>(std::sync::LazyLock<std::sync::Mutex<Kept<K>>>);

struct Kept<K> {
    texts: foldhash::HashMap<K, KeptText>,
    bytes: usize,
    uses: u64,
}

struct KeptText {
    text: Arc<str>,
    used: u64,
    bytes: usize,
}

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept {
            texts: Default::default(),
            bytes: 0,
            uses: 0,
        }
    }
}

/// The text of the largest statements a few times over (a full batch is about 200 KiB).
const TEXT_CACHE_BYTES: usize = 8 << 20;

impl<K: std::hash::Hash + Eq + Clone> TextCache<K> {
    const fn new() -> Self {
        TextCache(std::sync::LazyLock::new(Default::default))
    }

    /// The text kept for `key`, or the one `make` writes (with the key to keep it under and the
    /// bytes that key holds).
    fn get_or_make<Q>(&self, key: &Q, make: impl FnOnce() -> (K, usize, String)) -> Arc<str>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut kept = lock();
            kept.uses += 1;
            let now = kept.uses;
            if let Some(k) = kept.texts.get_mut(key) {
                k.used = now;
                return k.text.clone();
            }
        }
        let (key, key_bytes, text) = make();
        let text: Arc<str> = text.into();
        let bytes = key_bytes + text.len();
        if bytes > TEXT_CACHE_BYTES / 4 {
            return text;
        }
        let mut kept = lock();
        while kept.bytes + bytes > TEXT_CACHE_BYTES {
            let Some(oldest) = kept
                .texts
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(gone) = kept.texts.remove::<K>(&oldest) {
                kept.bytes -= gone.bytes;
            }
        }
        let used = kept.uses;
        kept.bytes += bytes;
        let entry = KeptText {
            text: text.clone(),
            used,
            bytes,
        };
        if let Some(raced) = kept.texts.insert(key, entry) {
            kept.bytes -= raced.bytes; // another thread wrote the same text meanwhile
        }
        text
    }
}

static VALUES_TEXT: TextCache<(usize, usize, usize)> = TextCache::new();
static LIST_TEXT: TextCache<(usize, usize)> = TextCache::new();
static SQLITE_TEXT: TextCache<Box<str>> = TextCache::new();

/// Statements shorter than this are respelled for SQLite each time: they are quick to respell,
/// and many are one of a kind.
const SQLITE_TEXT_CACHED_FROM: usize = 2_048;

/// Writes `($k,$k+1,…),(…)` for `rows` rows of `cols` columns starting at placeholder `first`.
pub fn values_placeholders(rows: usize, cols: usize, first: usize) -> Arc<str> {
    let key = (rows, cols, first);
    VALUES_TEXT.get_or_make(&key, || {
        (key, 0, write_values_placeholders(rows, cols, first))
    })
}

fn write_values_placeholders(rows: usize, cols: usize, first: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(rows * cols * 7);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            let _ = write!(s, "${n}");
            n += 1;
        }
        s.push(')');
    }
    s
}

/// Writes `$k,$k+1,…` for an `IN (…)` list of `n` values.
pub fn list_placeholders(n: usize, first: usize) -> Arc<str> {
    let key = (n, first);
    LIST_TEXT.get_or_make(&key, || (key, 0, write_list_placeholders(n, first)))
}

fn write_list_placeholders(n: usize, first: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(n * 7);
    for i in first..first + n {
        if i > first {
            s.push(',');
        }
        let _ = write!(s, "${i}");
    }
    s
}

/// SQLite (and sqlx's binding on top of it) looks numbered parameters up in a linear list, so a
/// statement with thousands of `$N` or `?N` takes quadratic time to prepare and bind; a plain
/// `?` is an index. When the `$N` appear exactly in the order 1, 2, 3 … they become `?`;
/// otherwise `?N`, which SQLite also accepts.
fn sqlite_text(text: &str) -> SqlStr {
    let respell = || {
        rewrite_placeholders(text, false)
            .unwrap_or_else(|| rewrite_placeholders(text, true).unwrap_or_else(|| text.to_owned()))
    };
    // Short text goes to sqlx as the `String` just written, not copied again into an `Arc`.
    if text.len() < SQLITE_TEXT_CACHED_FROM {
        return AssertSqlSafe(respell()).into_sql_str();
    }
    AssertSqlSafe(SQLITE_TEXT.get_or_make(text, || (text.into(), text.len(), respell())))
        .into_sql_str()
}

/// One pass over `text` copying the runs between placeholders: `$N` becomes `?` (`None` as
/// soon as a number is out of sequence) or, when `numbered`, `?N`. Quotes and `$` are ASCII, so
/// walking bytes never splits a character.
pub(crate) fn rewrite_placeholders(text: &str, numbered: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut expected = 1u64;
    let mut copied = 0;
    let mut quote: Option<u8> = None; // inside '…' or "…": copied as is
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else if b == b'\'' || b == b'"' {
            quote = Some(b);
        } else if b == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            out.push_str(&text[copied..i]);
            out.push('?');
            if numbered {
                out.push_str(&text[start..end]);
            } else if text[start..end].parse::<u64>().ok() != Some(expected) {
                return None;
            }
            expected += 1;
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

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
    async fn connect_restarting_log_at(
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
    pub async fn lock_tenant(&mut self, tenant_id: i64) -> DbResult<()> {
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

/// `HEAD IN (…)` statements covering `list`, each within the bind limit.
fn in_statements(head: &str, fixed: &[Value], list: Vec<Value>) -> Vec<Sql> {
    let per = MAX_BINDS - fixed.len();
    let mut out = Vec::with_capacity(list.len().div_ceil(per));
    let mut list = list.into_iter().peekable();
    while list.peek().is_some() {
        let batch: Vec<Value> = list.by_ref().take(per).collect();
        let mut q = sql(format!(
            "{head} IN ({})",
            list_placeholders(batch.len(), fixed.len() + 1)
        ));
        q.args.extend(fixed.iter().cloned());
        q.args.extend(batch);
        out.push(q);
    }
    out
}

/// The largest number of bound values one statement may carry on both backends
/// (PostgreSQL: 65,535; SQLite as bundled: 32,766).
pub const MAX_BINDS: usize = 32_000;

/// The steps of SQLite's plan for a statement (`EXPLAIN QUERY PLAN`), for tests that hold a
/// query to its index.
#[cfg(test)]
pub(crate) async fn query_plan(db: &Db, q: Sql) -> Vec<String> {
    let explain = Sql {
        text: format!("EXPLAIN QUERY PLAN {}", q.text),
        args: q.args,
    };
    let rows: Vec<(i64, i64, i64, String)> = db.fetch_all(&explain).await.expect("query plan");
    rows.into_iter().map(|r| r.3).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
