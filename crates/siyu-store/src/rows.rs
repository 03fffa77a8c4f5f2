//! Bulk writes and key lookups a row at a time, for the writers' hot paths (import, events,
//! the contact policy's reads in a launch's transaction).
//!
//! On SQLite these run on the connection's own handle: one short statement is prepared and
//! stepped once per row, its values bound straight from the caller's data. Against the
//! multi-row statements they replace (`VALUES (…),(…)` and `IN (…)` of up to 32,000 values),
//! SQLite no longer parses and plans a statement of tens of thousands of placeholders for every
//! batch, nor copies every text value twice (into sqlx's arguments, then into SQLite), nor keeps
//! a statement journal: a statement that writes several rows and may fail on a constraint makes
//! SQLite copy every page it touches first, so as to undo just that statement (docs/BENCHMARKS.md).
//! On PostgreSQL, where a round trip per row would be the dear part, the rows go in multi-row
//! statements as before.
//!
//! After an error the transaction must be dropped (rolled back), as every caller does with `?`:
//! on SQLite the rows before the failing one were written in it.

use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use foldhash::HashMap;
use libsqlite3_sys as ffi;

use super::db::{
    DbError, DbResult, MAX_BINDS, Reader, Tx, Value, rewrite_placeholders, sql, values_placeholders,
};

/// A value bound for one row, borrowed from the caller's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl From<Arg<'_>> for Value {
    fn from(a: Arg<'_>) -> Value {
        match a {
            Arg::Int(v) => Value::Int(v),
            Arg::Text(v) => v.into(),
        }
    }
}

/// Rows a PostgreSQL batch statement carries for `cols` columns.
fn rows_per_statement(cols: usize) -> usize {
    (MAX_BINDS / cols.max(1)).max(1)
}

impl Tx {
    /// Inserts `rows` with `head` (`INSERT INTO t (c1, …, cN)`) and `tail` (what follows the
    /// values: `ON CONFLICT …`, or empty; without placeholders). Returns the rows written
    /// (inserted or, through the tail, updated). The rows come as a slice rather than an
    /// iterator: an iterator of closures held across an `.await` makes callers' futures fail to
    /// be `Send` (a limit of today's compiler with higher-ranked lifetimes).
    pub async fn insert_rows<'a, const N: usize>(
        &mut self,
        head: &str,
        tail: &str,
        rows: &[[Arg<'a>; N]],
    ) -> DbResult<u64> {
        let marks: Vec<String> = (1..=N).map(|k| format!("${k}")).collect();
        let each = format!("{head} VALUES ({}) {tail}", marks.join(","));
        self.execute_rows(
            &each,
            |values| format!("{head} VALUES {values} {tail}"),
            rows,
        )
        .await
    }

    /// Runs `each`, a statement over one row's values `$1…$N` (an `UPDATE … WHERE id = $1`),
    /// once per row on SQLite. On PostgreSQL `batched` gives the statement for a batch of rows
    /// from their `($1,…,$N),(…)` list, which it joins as `(VALUES …) AS v` (columns `column1`…).
    /// Returns the rows changed.
    pub async fn execute_rows<'a, const N: usize>(
        &mut self,
        each: &str,
        batched: impl Fn(&str) -> String,
        rows: &[[Arg<'a>; N]],
    ) -> DbResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        match self {
            Tx::Sqlite(t, _) => {
                let text = sqlite_text(each);
                let mut handle = t.lock_handle().await?;
                let db = handle.as_raw_handle();
                blocking(|| {
                    let mut stmt = Statement::prepare(db, &text)?;
                    let mut changed = 0u64;
                    for row in rows {
                        for (i, a) in row.iter().enumerate() {
                            stmt.bind(i + 1, *a)?;
                        }
                        while stmt.step()? {}
                        changed += stmt.changes();
                        stmt.reset();
                    }
                    Ok(changed)
                })
            }
            Tx::Postgres(_) => {
                let stmts = rows.chunks(rows_per_statement(N)).map(|batch| {
                    let mut q = sql(batched(&values_placeholders(batch.len(), N, 1)));
                    for row in batch {
                        for a in row {
                            q.push_arg(*a);
                        }
                    }
                    q
                });
                self.execute_each(stmts).await
            }
        }
    }

    /// For each key, the id that `head` finds for it, or `None`. `head` selects the id and then
    /// the key, and ends with the key's column, which is compared with each key in turn:
    /// `SELECT customer_id, ikey FROM identities WHERE tenant_id = $1 AND ikey`, the `$1…$k`
    /// being `fixed`. A key that finds several rows gets the first.
    pub async fn find_ids(
        &mut self,
        head: &str,
        fixed: &[Arg<'_>],
        keys: &[&str],
    ) -> DbResult<Vec<Option<i64>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Tx::Sqlite(t, _) => {
                let text = sqlite_text(&probe_statement(head, fixed.len()));
                // In key order, so that probes walk the index forwards over pages just read.
                let mut order: Vec<usize> = (0..keys.len()).collect();
                order.sort_unstable_by_key(|&i| keys[i]);
                let mut handle = t.lock_handle().await?;
                let db = handle.as_raw_handle();
                blocking(|| {
                    let mut stmt = Statement::prepare(db, &text)?;
                    for (i, a) in fixed.iter().enumerate() {
                        stmt.bind(i + 1, *a)?;
                    }
                    let key_at = fixed.len() + 1;
                    let mut found = vec![None; keys.len()];
                    for i in order {
                        stmt.bind(key_at, Arg::Text(Some(keys[i])))?;
                        if stmt.step()? {
                            found[i] = stmt.column_i64(0);
                        }
                        stmt.reset();
                    }
                    Ok(found)
                })
            }
            Tx::Postgres(_) => {
                let rows: Vec<(i64, String)> = self
                    .fetch_in(
                        head,
                        &fixed.iter().map(|a| Value::from(*a)).collect::<Vec<_>>(),
                        keys.iter().map(|k| Value::from(*k)).collect(),
                    )
                    .await?;
                let mut by_key: HashMap<String, i64> = HashMap::default();
                for (id, key) in rows {
                    by_key.entry(key).or_insert(id);
                }
                Ok(keys.iter().map(|k| by_key.get(*k).copied()).collect())
            }
        }
    }
}

/// The keys a probe looks up, all of one type.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    Text(&'a [&'a str]),
    Int(&'a [i64]),
}

impl<'a> Keys<'a> {
    fn len(&self) -> usize {
        match self {
            Keys::Text(k) => k.len(),
            Keys::Int(k) => k.len(),
        }
    }

    fn arg(&self, i: usize) -> Arg<'a> {
        match *self {
            Keys::Text(k) => Arg::Text(Some(k[i])),
            Keys::Int(k) => Arg::Int(Some(k[i])),
        }
    }

    /// Indices in key order, so that probes walk an index forwards over pages just read.
    fn in_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        match *self {
            Keys::Text(k) => order.sort_unstable_by(|&a, &b| k[a].cmp(k[b])),
            Keys::Int(k) => order.sort_unstable_by_key(|&i| k[i]),
        }
        order
    }
}

impl Reader<'_> {
    /// For each key, every row `head` finds for it, as (the key's index, the row's first
    /// column as text). `head` selects that column and then the key, and ends with the key's
    /// column: `SELECT content_hash, address_hash FROM outbox WHERE tenant_id = $1 AND
    /// address_hash`, the `$1…$k` being `fixed`. In a SQLite transaction one short statement is
    /// stepped per key on the handle, with no statement of thousands of values for SQLite to
    /// parse and sort into a temporary B-tree first; elsewhere the keys go in `IN` lists.
    pub async fn probe(
        &mut self,
        head: &str,
        fixed: &[Arg<'_>],
        keys: Keys<'_>,
    ) -> DbResult<Vec<(usize, Option<String>)>> {
        if keys.len() == 0 {
            return Ok(Vec::new());
        }
        if let Reader::Tx(Tx::Sqlite(t, _)) = self {
            let text = sqlite_text(&probe_statement(head, fixed.len()));
            let order = keys.in_order();
            let mut handle = t.lock_handle().await?;
            let db = handle.as_raw_handle();
            return blocking(|| {
                let mut stmt = Statement::prepare(db, &text)?;
                for (i, a) in fixed.iter().enumerate() {
                    stmt.bind(i + 1, *a)?;
                }
                let key_at = fixed.len() + 1;
                let mut found = Vec::new();
                for i in order {
                    stmt.bind(key_at, keys.arg(i))?;
                    while stmt.step()? {
                        found.push((i, stmt.column_text(0)));
                    }
                    stmt.reset();
                }
                Ok(found)
            });
        }
        let fixed: Vec<Value> = fixed.iter().map(|a| Value::from(*a)).collect();
        let list: Vec<Value> = (0..keys.len()).map(|i| Value::from(keys.arg(i))).collect();
        Ok(match keys {
            Keys::Text(k) => {
                let rows: Vec<(Option<String>, String)> = self.fetch_in(head, &fixed, list).await?;
                found_at(k, rows.iter().map(|(v, key)| (v.clone(), key.as_str())))
            }
            Keys::Int(k) => found_at(k, self.fetch_in(head, &fixed, list).await?),
        })
    }
}

/// The statement a probe steps once per key: `head` compared with the key, which binds after
/// the `fixed` values.
pub fn probe_statement(head: &str, fixed: usize) -> String {
    format!("{head} = ${}", fixed + 1)
}

/// Rows of (value, key) as (the index of every key equal to theirs, value).
fn found_at<K: Eq + std::hash::Hash>(
    keys: &[K],
    rows: impl IntoIterator<Item = (Option<String>, K)>,
) -> Vec<(usize, Option<String>)> {
    let mut at: HashMap<&K, Vec<usize>> = HashMap::default();
    for (i, key) in keys.iter().enumerate() {
        at.entry(key).or_default().push(i);
    }
    let mut found = Vec::new();
    for (value, key) in rows {
        for &i in at.get(&key).into_iter().flatten() {
            found.push((i, value.clone()));
        }
    }
    found
}

/// SQLite's spelling of a statement: `$k` become `?` when they appear in order 1, 2, 3 …, else
/// `?k`; either way the k-th value binds at k.
fn sqlite_text(text: &str) -> String {
    rewrite_placeholders(text, false)
        .or_else(|| rewrite_placeholders(text, true))
        .unwrap_or_else(|| text.to_owned())
}

/// Runs SQLite work on this thread, letting a multi-threaded runtime move its other tasks to
/// another thread meanwhile (a chunk of an import keeps the handle for a few hundred ms).
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A prepared statement on a locked handle, finalized on drop.
struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    text: &'h str,
    /// Text bound by pointer must outlive the statement's use of it: the rows are borrowed for
    /// longer than the statement lives.
    _borrows: std::marker::PhantomData<&'h ()>,
}

impl<'h> Statement<'h> {
    fn prepare(db: NonNull<ffi::sqlite3>, text: &'h str) -> DbResult<Statement<'h>> {
        let len = c_int::try_from(text.len()).map_err(|_| DbError::Sqlite {
            code: ffi::SQLITE_TOOBIG,
            message: "statement text too long".into(),
            statement: head_of(text),
        })?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is a live connection held locked by the caller; the text pointer and
        // length describe valid UTF-8 for the duration of the call.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                text.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(Statement {
                db,
                stmt,
                text,
                _borrows: std::marker::PhantomData,
            }),
            None if rc == ffi::SQLITE_OK => Err(DbError::Sqlite {
                code: ffi::SQLITE_MISUSE,
                message: "no statement in the text".into(),
                statement: head_of(text),
            }),
            _ => Err(error_of(db, rc, text)),
        }
    }

    fn bind(&mut self, at: usize, a: Arg<'h>) -> DbResult<()> {
        let at = at as c_int;
        let p = self.stmt.as_ptr();
        // SAFETY: the statement is live; bound text is borrowed for 'h, which outlives the
        // statement, so SQLite may read it without a copy (SQLITE_STATIC) until it is rebound
        // or the statement is finalized.
        let rc = unsafe {
            match a {
                Arg::Int(Some(v)) => ffi::sqlite3_bind_int64(p, at, v),
                // An empty string's pointer dangles (it is never read); SQLite gets a real one.
                Arg::Text(Some(s)) => ffi::sqlite3_bind_text64(
                    p,
                    at,
                    if s.is_empty() {
                        c"".as_ptr()
                    } else {
                        s.as_ptr().cast()
                    },
                    s.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                Arg::Int(None) | Arg::Text(None) => ffi::sqlite3_bind_null(p, at),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error_of(self.db, rc, self.text))
        }
    }

    /// Runs the statement to its next row: `true` when a row is ready.
    fn step(&mut self) -> DbResult<bool> {
        // SAFETY: the statement is live and all its parameters are bound.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(error_of(self.db, rc, self.text)),
        }
    }

    fn column_i64(&self, col: c_int) -> Option<i64> {
        // SAFETY: called only after `step` returned a row.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), col) == ffi::SQLITE_NULL {
                None
            } else {
                Some(ffi::sqlite3_column_int64(self.stmt.as_ptr(), col))
            }
        }
    }

    fn column_text(&self, col: c_int) -> Option<String> {
        // SAFETY: called only after `step` returned a row; the text pointer is valid for the
        // byte count SQLite reports until the next step or reset, and is copied before either.
        unsafe {
            let p = self.stmt.as_ptr();
            let text = ffi::sqlite3_column_text(p, col);
            if text.is_null() {
                return None;
            }
            let len = ffi::sqlite3_column_bytes(p, col).max(0) as usize;
            let bytes = std::slice::from_raw_parts(text, len);
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// Rows the last step inserted, updated or deleted.
    fn changes(&self) -> u64 {
        // SAFETY: the connection is live.
        unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }.max(0) as u64
    }

    /// Readies the statement for its next row; the bindings stay. (Its error, if any, was
    /// already returned by `step`.)
    fn reset(&mut self) {
        // SAFETY: the statement is live.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and dropped once.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The statement's first words, for an error message.
fn head_of(text: &str) -> String {
    text.chars().take(80).collect()
}

fn error_of(db: NonNull<ffi::sqlite3>, rc: c_int, text: &str) -> DbError {
    // SAFETY: the connection is live; SQLite's message is a NUL-terminated string it owns,
    // copied before any other call on the connection.
    let (code, message) = unsafe {
        let msg = ffi::sqlite3_errmsg(db.as_ptr());
        let message = if msg.is_null() {
            String::new()
        } else {
            CStr::from_ptr(msg).to_string_lossy().into_owned()
        };
        let extended = ffi::sqlite3_extended_errcode(db.as_ptr());
        (if extended != 0 { extended } else { rc }, message)
    };
    DbError::Sqlite {
        code,
        message,
        statement: head_of(text),
    }
}
