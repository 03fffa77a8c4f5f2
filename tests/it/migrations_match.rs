//! The two migration sets (`migrations/sqlite`, `migrations/postgres`) must define the same
//! schema (issue #21). Each backend's migrated database is read back as facts, (table, item) →
//! description: the columns in order, each column's type family, NOT NULL and default, the
//! primary key, UNIQUE constraints, indexes (keys, uniqueness, partial WHERE), foreign keys and
//! CHECK constraints. Only dialect differences are normalised away, each where it is read.
//! Not compared: whether an id is generated (SQLite numbers every INTEGER PRIMARY KEY, PostgreSQL
//! only IDENTITY columns; most ids come from `id_counters`), WITHOUT ROWID (SQLite's storage),
//! collations, and PostgreSQL's INCLUDE columns.

use crate::common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use siyu::platform::db::{Db, sql};
use siyu::platform::migrate::MIGRATIONS;

use common::{Backend, TestDb, backends};

/// (table, item) → description; the item is empty for the table itself.
type Schema = BTreeMap<(String, String), String>;

/// A fact as read: (table, item, description, expression). The expression, when there is one,
/// is normalised and appended to the description.
type Fact = (String, String, String, Option<String>);

/// Differences known and not yet fixed, as the report spells them. Each must still be found, so
/// an entry goes with the migration that fixes it.
const ACCEPTED: &[&str] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migration_sets_define_the_same_schema() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("SKIPPED migrations_match: comparing the migration sets needs PostgreSQL");
        return;
    }
    let lite = TestDb::new(Backend::Sqlite).await;
    let pg = TestDb::new(Backend::Postgres).await;
    let (a, b) = (sqlite_schema(&lite.db).await, pg_schema(&pg.db).await);
    assert!(
        a.contains_key(&("outbox".to_owned(), "index outbox_queued".to_owned())),
        "the SQLite model misses what the migrations made: {a:#?}"
    );
    let found = differences(&a, &b);
    let stale: Vec<&&str> = ACCEPTED
        .iter()
        .filter(|k| !found.iter().any(|d| d.as_str() == **k))
        .collect();
    let new: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|d| !ACCEPTED.contains(d))
        .collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "the migration sets differ in {} place(s):\n  {}\n\
         accepted differences no longer found (remove them from ACCEPTED): {stale:?}",
        new.len(),
        new.join("\n  ")
    );

    // The comparison sees an index or a column that only one side has.
    let probe = "CREATE INDEX probe_sqlite_only ON outbox (channel)";
    lite.db.execute(&sql(probe)).await.expect("probe index");
    let probe = "ALTER TABLE outbox ADD COLUMN probe_postgres_only TEXT";
    pg.db.execute(&sql(probe)).await.expect("probe column");
    let probed = differences(&sqlite_schema(&lite.db).await, &pg_schema(&pg.db).await);
    for item in ["index probe_sqlite_only", "column probe_postgres_only"] {
        let prefix = format!("outbox: {item}: ");
        assert!(
            probed.iter().any(|d| d.starts_with(&prefix)),
            "{item} not reported: {probed:#?}"
        );
    }
}

/// Both directories hold the same versions, and `MIGRATIONS` runs exactly those files in order.
#[test]
fn both_directories_hold_the_same_versions() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/siyu-store/migrations");
    let files = |backend: &str| -> Vec<String> {
        let entries = std::fs::read_dir(dir.join(backend)).expect("read the directory");
        let mut names: Vec<String> = entries
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8")
            })
            .collect();
        names.sort();
        names
    };
    let (lite, pg) = (files("sqlite"), files("postgres"));
    assert_eq!(lite, pg, "the two directories hold different files");
    assert_eq!(lite.len(), MIGRATIONS.len(), "files and MIGRATIONS differ");
    for (file, (version, name, sqlite, postgres)) in lite.iter().zip(MIGRATIONS) {
        let number: Option<i64> = file
            .strip_suffix(".sql")
            .and_then(|f| f.split('_').next())
            .and_then(|v| v.parse().ok());
        assert_eq!(number, Some(*version), "{file} is not migration {name}");
        for (backend, script) in [("sqlite", sqlite), ("postgres", postgres)] {
            let text = std::fs::read_to_string(dir.join(backend).join(file)).expect("read");
            assert!(text == *script, "MIGRATIONS does not run {backend}/{file}");
        }
    }
}

/// Every difference, as "table: item: SQLite `…`, PostgreSQL `…`". A table that one side lacks
/// is one line, not one per column.
fn differences(sqlite: &Schema, pg: &Schema) -> Vec<String> {
    let has_table = |s: &Schema, t: &str| s.contains_key(&(t.to_owned(), String::new()));
    let show = |v: Option<&String>| v.map_or("nothing".to_owned(), |v| format!("`{v}`"));
    let keys: BTreeSet<&(String, String)> = sqlite.keys().chain(pg.keys()).collect();
    keys.into_iter()
        .filter(|k| sqlite.get(*k) != pg.get(*k))
        .filter(|(t, item)| item.is_empty() || (has_table(sqlite, t) && has_table(pg, t)))
        .map(|k @ (t, item)| {
            let item = if item.is_empty() { "table" } else { item };
            let (a, b) = (show(sqlite.get(k)), show(pg.get(k)));
            format!("{t}: {item}: SQLite {a}, PostgreSQL {b}")
        })
        .collect()
}

/// The SQLite schema's tables: neither SQLite's own (`sqlite_stat1`, …) nor the migrations' record.
const SQLITE_TABLES: &str = "WITH t AS (SELECT name, wr FROM pragma_table_list \
    WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' \
      AND name <> 'schema_migrations') ";

const SQLITE_FACTS: &str = concat!(
    "SELECT name, '', 'table', NULL FROM t ",
    "UNION ALL SELECT t.name, 'columns', group_concat(c.name, ', ' ORDER BY c.cid), NULL \
       FROM t, pragma_table_info(t.name) c GROUP BY t.name ",
    "UNION ALL SELECT t.name, 'primary key', '(' || group_concat(c.name, ', ' ORDER BY c.pk) \
       || ')', NULL FROM t, pragma_table_info(t.name) c WHERE c.pk > 0 GROUP BY t.name ",
    // Families by SQLite's affinity rules (sqlite.org/datatype3.html 3.1); BOOLEAN kept apart, as
    // the store binds booleans as integers and a BOOLEAN on one side only would be a bug.
    "UNION ALL SELECT t.name, 'column ' || c.name, CASE WHEN c.type LIKE 'bool%' THEN 'boolean' \
       WHEN c.type LIKE '%int%' THEN 'integer' \
       WHEN c.type LIKE '%char%' OR c.type LIKE '%clob%' OR c.type LIKE '%text%' THEN 'text' \
       WHEN c.type = '' OR c.type LIKE '%blob%' THEN 'blob' \
       WHEN c.type LIKE '%real%' OR c.type LIKE '%floa%' OR c.type LIKE '%doub%' THEN 'real' \
       ELSE lower(c.type) END || CASE WHEN c.\"notnull\" ",
    // An INTEGER PRIMARY KEY is the rowid (it has no index of its own) and a WITHOUT ROWID
    // table's key refuses NULL: NOT NULL, as PostgreSQL's keys are, though neither says so.
    "OR (c.pk > 0 AND (t.wr OR NOT EXISTS (SELECT 1 FROM pragma_index_list(t.name) i \
         WHERE i.origin = 'pk'))) THEN ' NOT NULL' ELSE '' END \
       || CASE WHEN c.dflt_value IS NULL THEN '' ELSE ' DEFAULT ' END, c.dflt_value \
       FROM t, pragma_table_info(t.name) c ",
    // Each dialect names a UNIQUE constraint's index its own way: it is known by its columns.
    "UNION ALL SELECT t.name, 'unique (' || group_concat(x.name, ', ' ORDER BY x.seqno) || ')', \
       'constraint', NULL FROM t, pragma_index_list(t.name) l, pragma_index_xinfo(l.name) x \
      WHERE l.origin = 'u' AND x.key GROUP BY t.name, l.name ",
    // An index as written: its keys and WHERE, from the first parenthesis of its CREATE on.
    "UNION ALL SELECT t.name, 'index ' || l.name, CASE WHEN l.\"unique\" THEN 'unique ' ELSE '' \
       END, substr(m.sql, instr(m.sql, '(')) FROM t, pragma_index_list(t.name) l \
       JOIN sqlite_schema m ON m.type = 'index' AND m.name = l.name WHERE l.origin = 'c' ",
    "UNION ALL SELECT t.name, 'foreign key (' || group_concat(f.\"from\", ', ' ORDER BY f.seq) \
       || ')', lower('references ' || f.\"table\" || ' (' || group_concat(f.\"to\", ', ' \
       ORDER BY f.seq) || ') on update ' || f.on_update || ' on delete ' || f.on_delete), NULL \
       FROM t, pragma_foreign_key_list(t.name) f GROUP BY t.name, f.id",
);

const PG_FACTS: &str = concat!(
    "WITH t AS (SELECT oid, relname::text AS name FROM pg_class \
       WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') \
         AND relname <> 'schema_migrations'), \
     col AS (SELECT t.name AS tbl, c.column_name::text AS name, c.ordinal_position AS n, \
       c.data_type::text AS ty, c.is_nullable::text AS nullable, c.column_default::text AS dflt \
       FROM information_schema.columns c JOIN t ON t.name = c.table_name \
      WHERE c.table_schema = 'public'), \
     act(code, name) AS (VALUES ('a', 'no action'), ('r', 'restrict'), ('c', 'cascade'), \
       ('n', 'set null'), ('d', 'set default')) ",
    "SELECT name, '', 'table', NULL::text FROM t ",
    "UNION ALL SELECT tbl, 'columns', string_agg(name, ', ' ORDER BY n), NULL FROM col \
      GROUP BY tbl ",
    // One family per kind of type, whatever its width: SQLite stores any integer in up to
    // eight bytes and any text unbounded.
    "UNION ALL SELECT tbl, 'column ' || name, CASE \
       WHEN ty IN ('bigint', 'integer', 'smallint') THEN 'integer' \
       WHEN ty IN ('text', 'character varying', 'character') THEN 'text' \
       WHEN ty IN ('double precision', 'real') THEN 'real' WHEN ty = 'bytea' THEN 'blob' \
       ELSE ty END || CASE WHEN nullable = 'NO' THEN ' NOT NULL' ELSE '' END \
       || CASE WHEN dflt IS NULL THEN '' ELSE ' DEFAULT ' END, dflt FROM col ",
    // A CHECK's columns sorted by name, as those found in SQLite's text are; its expression
    // without the word CHECK, as SQLite's.
    "UNION ALL SELECT t.name, CASE c.contype WHEN 'p' THEN 'primary key' \
       WHEN 'u' THEN 'unique (' || k.cols || ')' WHEN 'f' THEN 'foreign key (' || k.cols || ')' \
       WHEN 'c' THEN 'check (' || k.sorted || ')' ELSE 'constraint ' || c.conname END, \
       CASE c.contype WHEN 'p' THEN '(' || k.cols || ')' WHEN 'u' THEN 'constraint' \
       WHEN 'f' THEN 'references ' || f.relname || ' (' || k.refs || ') on update ' || u.name \
         || ' on delete ' || d.name ELSE '' END, \
       CASE WHEN c.contype = 'c' THEN substr(pg_get_constraintdef(c.oid), 7) END \
       FROM pg_constraint c JOIN t ON t.oid = c.conrelid \
       LEFT JOIN pg_class f ON f.oid = c.confrelid \
       LEFT JOIN act u ON u.code = c.confupdtype::text \
       LEFT JOIN act d ON d.code = c.confdeltype::text \
       CROSS JOIN LATERAL (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n) AS cols, \
         string_agg(a.attname::text, ', ' ORDER BY a.attname) AS sorted, \
         (SELECT string_agg(b.attname::text, ', ' ORDER BY j.n) \
            FROM unnest(c.confkey) WITH ORDINALITY j(attnum, n) \
            JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = j.attnum) AS refs \
         FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) k ",
    // PostgreSQL 18 lists NOT NULL as constraints too; the columns say it already.
    "WHERE c.contype <> 'n' ",
    // The indexes that back no primary key or UNIQUE constraint, written as SQLite keeps them.
    "UNION ALL SELECT t.name, 'index ' || x.relname, \
       CASE WHEN i.indisunique THEN 'unique ' ELSE '' END, \
       '(' || (SELECT string_agg(pg_get_indexdef(i.indexrelid, k.n, true) \
         || CASE WHEN i.indoption[k.n - 1] & 1 = 1 THEN ' DESC' ELSE '' END, ', ' ORDER BY k.n) \
         FROM generate_series(1, i.indnkeyatts) k(n)) || ')' \
       || COALESCE(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), '') \
       FROM pg_index i JOIN t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid \
      WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c \
        WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))",
);

async fn sqlite_schema(db: &Db) -> Schema {
    let q = sql(format!("{SQLITE_TABLES}{SQLITE_FACTS}"));
    let mut facts: Vec<Fact> = db.fetch_all(&q).await.expect("the SQLite schema");
    // SQLite keeps CHECK constraints only in the text of CREATE TABLE.
    let q = "SELECT t.name, m.sql FROM t JOIN sqlite_schema m \
             ON m.type = 'table' AND m.name = t.name";
    let tables: Vec<(String, String)> = db
        .fetch_all(&sql(format!("{SQLITE_TABLES}{q}")))
        .await
        .expect("the SQLite tables");
    let mut checks = Vec::new();
    for (table, create) in tables {
        let columns: BTreeSet<&str> = facts
            .iter()
            .filter(|f| f.0 == table)
            .filter_map(|f| f.1.strip_prefix("column "))
            .collect();
        let t = tokens(&create);
        for start in (0..t.len()).filter(|&n| t[n] == "check") {
            let (mut depth, mut end) = (0, start + 1);
            for (n, x) in t.iter().enumerate().skip(start + 1) {
                depth += i32::from(x == "(") - i32::from(x == ")");
                if depth == 0 {
                    end = n;
                    break;
                }
            }
            let body = t.get(start + 1..=end).unwrap_or_default();
            let read: BTreeSet<&str> = body
                .iter()
                .map(String::as_str)
                .filter(|x| columns.contains(x))
                .collect();
            let read: Vec<&str> = read.into_iter().collect();
            let item = format!("check ({})", read.join(", "));
            checks.push((table.clone(), item, String::new(), Some(body.join(" "))));
        }
    }
    facts.extend(checks);
    schema(facts)
}

async fn pg_schema(db: &Db) -> Schema {
    let facts = db.fetch_all(&sql(PG_FACTS)).await;
    schema(facts.expect("the PostgreSQL schema"))
}

/// The facts as a schema; several CHECKs on the same columns are one fact.
fn schema(facts: Vec<Fact>) -> Schema {
    let mut s = Schema::new();
    for (table, item, what, expr) in facts {
        let what = match expr {
            Some(e) => format!("{what}{}", normalise(&tokens(&e))),
            None => what,
        };
        s.entry((table, item))
            .and_modify(|v| *v = format!("{v} | {what}"))
            .or_insert(what);
    }
    s
}

/// SQL text as tokens: words lowercased, string literals as written, double-quoted identifiers
/// unquoted, operator characters in runs, comments and white space dropped.
fn tokens(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let start = i;
        i += 1;
        match c[start] {
            w if w.is_whitespace() => {}
            '-' if c.get(i) == Some(&'-') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            q @ ('\'' | '"') => {
                // A doubled quote is one quote inside the literal.
                while i < c.len() && (c[i] != q || c.get(i + 1) == Some(&q)) {
                    i += if c[i] == q { 2 } else { 1 };
                }
                i += 1;
                let s: String = c[start..i.min(c.len())].iter().collect();
                out.push(match q {
                    '"' => s.trim_matches('"').to_lowercase(),
                    _ => s,
                });
            }
            w => {
                let word: fn(char) -> bool = |x| x.is_alphanumeric() || x == '_';
                let op: fn(char) -> bool = |x| "<>=!|:".contains(x);
                if let Some(same) = [word, op].into_iter().find(|f| f(w)) {
                    while i < c.len() && same(c[i]) {
                        i += 1;
                    }
                }
                out.push(c[start..i].iter().collect::<String>().to_lowercase());
            }
        }
    }
    out
}

/// An expression (an index's keys and WHERE, a CHECK, a default) in one spelling: SQLite keeps
/// it as written, PostgreSQL prints it back from its parse tree.
fn normalise(toks: &[String]) -> String {
    // PostgreSQL parenthesises every operation, so neither side's parentheses count (which
    // would also hide a regrouping such as `a AND (b OR c)` against `(a AND b) OR c`).
    let t: Vec<&str> = toks
        .iter()
        .map(String::as_str)
        .filter(|t| !matches!(*t, "(" | ")"))
        .collect();
    let (mut out, mut i, mut in_array) = (Vec::new(), 0, false);
    while i < t.len() {
        match t[i] {
            // PostgreSQL casts every literal to its column's type: 'paid'::text.
            "::" => {
                i += 1;
                while matches!(t.get(i + 1), Some(&("varying" | "precision" | "[" | "]"))) {
                    i += 1;
                }
            }
            // PostgreSQL prints `x IN (a, b)` as `x = ANY (ARRAY[a, b])`.
            "=" if t.get(i + 1..i + 4) == Some(&["any", "array", "["][..]) => {
                out.push("in");
                in_array = true;
                i += 3;
            }
            "]" if in_array => in_array = false,
            // PostgreSQL prints `!=` as `<>`.
            "!=" => out.push("<>"),
            // Ascending is the default order, which PostgreSQL does not print.
            "asc" => {}
            other => out.push(other),
        }
        i += 1;
    }
    out.join(" ").replace(" , ", ", ")
}
