//! Schema migrations, kept per backend with the same version numbers and applied on start, and
//! SQLite's planner hints for indexes that have no statistics yet.

use std::future::Future;

use crate::db::{Backend, Db, DbError, DbResult, Tx, sql, values_placeholders};

/// (version, name, SQLite script, PostgreSQL script)
pub const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "lookup indexes",
        include_str!("../migrations/sqlite/0002_lookup_indexes.sql"),
        include_str!("../migrations/postgres/0002_lookup_indexes.sql"),
    ),
    (
        3,
        "layering",
        include_str!("../migrations/sqlite/0003_layering.sql"),
        include_str!("../migrations/postgres/0003_layering.sql"),
    ),
    (
        4,
        "members",
        include_str!("../migrations/sqlite/0004_members.sql"),
        include_str!("../migrations/postgres/0004_members.sql"),
    ),
    (
        5,
        "coupons",
        include_str!("../migrations/sqlite/0005_coupons.sql"),
        include_str!("../migrations/postgres/0005_coupons.sql"),
    ),
    (
        6,
        "tiers",
        include_str!("../migrations/sqlite/0006_tiers.sql"),
        include_str!("../migrations/postgres/0006_tiers.sql"),
    ),
    (
        7,
        "activities",
        include_str!("../migrations/sqlite/0007_activities.sql"),
        include_str!("../migrations/postgres/0007_activities.sql"),
    ),
    (
        8,
        "acquire",
        include_str!("../migrations/sqlite/0008_acquire.sql"),
        include_str!("../migrations/postgres/0008_acquire.sql"),
    ),
    (
        9,
        "connect",
        include_str!("../migrations/sqlite/0009_connect.sql"),
        include_str!("../migrations/postgres/0009_connect.sql"),
    ),
    (
        10,
        "outbox claim order",
        include_str!("../migrations/sqlite/0010_outbox_claim_order.sql"),
        include_str!("../migrations/postgres/0010_outbox_claim_order.sql"),
    ),
    (
        11,
        "outbox partial indexes",
        include_str!("../migrations/sqlite/0011_outbox_partial_indexes.sql"),
        include_str!("../migrations/postgres/0011_outbox_partial_indexes.sql"),
    ),
    (
        12,
        "orders without the order number index",
        include_str!("../migrations/sqlite/0012_orders_without_order_no_index.sql"),
        include_str!("../migrations/postgres/0012_orders_without_order_no_index.sql"),
    ),
    (
        13,
        "orders without the channel and customer index",
        include_str!("../migrations/sqlite/0013_orders_without_channel_customer_index.sql"),
        include_str!("../migrations/postgres/0013_orders_without_channel_customer_index.sql"),
    ),
    (
        14,
        "primary keys not null",
        include_str!("../migrations/sqlite/0014_primary_keys_not_null.sql"),
        include_str!("../migrations/postgres/0014_primary_keys_not_null.sql"),
    ),
    (
        15,
        "abuse limits",
        include_str!("../migrations/sqlite/0015_abuse_limits.sql"),
        include_str!("../migrations/postgres/0015_abuse_limits.sql"),
    ),
    (
        16,
        "coupon claim via",
        include_str!("../migrations/sqlite/0016_coupon_claim_via.sql"),
        include_str!("../migrations/postgres/0016_coupon_claim_via.sql"),
    ),
    (
        17,
        "group buy limits",
        include_str!("../migrations/sqlite/0017_group_buy_limits.sql"),
        include_str!("../migrations/postgres/0017_group_buy_limits.sql"),
    ),
    (
        18,
        "access lifecycle",
        include_str!("../migrations/sqlite/0018_access_lifecycle.sql"),
        include_str!("../migrations/postgres/0018_access_lifecycle.sql"),
    ),
    (
        19,
        "channel data",
        include_str!("../migrations/sqlite/0019_channel_data.sql"),
        include_str!("../migrations/postgres/0019_channel_data.sql"),
    ),
    (
        20,
        "customer sessions",
        include_str!("../migrations/sqlite/0020_customer_sessions.sql"),
        include_str!("../migrations/postgres/0020_customer_sessions.sql"),
    ),
    (
        21, // its data step re-keys lookup hashes (the library's `lookup_rekey`)
        "per-tenant lookup keys",
        include_str!("../migrations/sqlite/0021_per_tenant_lookups.sql"),
        include_str!("../migrations/postgres/0021_per_tenant_lookups.sql"),
    ),
    (
        22,
        "customer rows",
        include_str!("../migrations/sqlite/0022_customer_rows.sql"),
        include_str!("../migrations/postgres/0022_customer_rows.sql"),
    ),
    (
        23,
        "order returns",
        include_str!("../migrations/sqlite/0023_order_returns.sql"),
        include_str!("../migrations/postgres/0023_order_returns.sql"),
    ),
    (
        24,
        "contacts follow merges",
        include_str!("../migrations/sqlite/0024_contacts_follow_merges.sql"),
        include_str!("../migrations/postgres/0024_contacts_follow_merges.sql"),
    ),
    (
        25,
        "after sales",
        include_str!("../migrations/sqlite/0025_after_sales.sql"),
        include_str!("../migrations/postgres/0025_after_sales.sql"),
    ),
    (
        26,
        "shop authorizations",
        include_str!("../migrations/sqlite/0026_shop_authorizations.sql"),
        include_str!("../migrations/postgres/0026_shop_authorizations.sql"),
    ),
    (
        27,
        "campaign approval",
        include_str!("../migrations/sqlite/0027_campaign_approval.sql"),
        include_str!("../migrations/postgres/0027_campaign_approval.sql"),
    ),
    (
        28,
        "overview by date",
        include_str!("../migrations/sqlite/0028_overview_by_date.sql"),
        include_str!("../migrations/postgres/0028_overview_by_date.sql"),
    ),
    (
        29,
        "customer notes",
        include_str!("../migrations/sqlite/0029_customer_notes.sql"),
        include_str!("../migrations/postgres/0029_customer_notes.sql"),
    ),
    (
        30,
        "coupon redeemed by",
        include_str!("../migrations/sqlite/0030_coupon_redeemed_by.sql"),
        include_str!("../migrations/postgres/0030_coupon_redeemed_by.sql"),
    ),
    (
        31,
        "live code disabled",
        include_str!("../migrations/sqlite/0031_live_code_disabled.sql"),
        include_str!("../migrations/postgres/0031_live_code_disabled.sql"),
    ),
    (
        32,
        "coupon template stopped",
        include_str!("../migrations/sqlite/0032_coupon_template_stopped.sql"),
        include_str!("../migrations/postgres/0032_coupon_template_stopped.sql"),
    ),
];

/// What a migration's SQL cannot do alone, run inside its transaction after its script: the
/// library re-keys lookup hashes with the field key, which the store never holds.
pub trait DataStep {
    /// Runs after migration `version`'s script, before it is recorded as applied.
    fn after(&self, version: i64, tx: &mut Tx) -> impl Future<Output = DbResult<()>> + Send;
}

/// No data steps: the schema alone.
pub struct SchemaOnly;

impl DataStep for SchemaOnly {
    async fn after(&self, _version: i64, _tx: &mut Tx) -> DbResult<()> {
        Ok(())
    }
}

/// Applies the migrations up to version `last` not yet applied, each in its own transaction with
/// its data step, and returns how many ran (an upgrade's test starts from an older schema).
pub async fn migrate_to(db: &Db, steps: &impl DataStep, last: i64) -> DbResult<usize> {
    db.execute(&sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    ))
    .await?;
    let mut applied = 0;
    for (version, name, sqlite, postgres) in MIGRATIONS.iter().filter(|m| m.0 <= last) {
        let mut tx = db.begin().await?;
        if let Tx::Postgres(_) = tx {
            // Two processes starting at once on one PostgreSQL must not both migrate.
            tx.execute(&sql("SELECT pg_advisory_xact_lock(7300)"))
                .await?;
        }
        let done: Option<(i64,)> = tx
            .fetch_optional(
                &sql("SELECT version FROM schema_migrations WHERE version = $1").bind(*version),
            )
            .await?;
        if done.is_some() {
            continue;
        }
        let script = match db.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        let run = match &mut tx {
            Tx::Sqlite(t, _) => sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
            Tx::Postgres(t) => sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
        };
        run.map_err(|source| DbError::Migration {
            version: *version,
            name: name.to_string(),
            source,
        })?;
        steps.after(*version, &mut tx).await?;
        tx.execute(
            &sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(*version)
                .bind(*name)
                .bind(now_ms()),
        )
        .await?;
        tx.commit().await?;
        applied += 1;
    }
    if db.backend() == Backend::Sqlite {
        seed_planner_stats(db).await?;
    }
    Ok(applied)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Rows a planner hint assumes an index covers.
const HINT_ROWS: i64 = 1_000_000;
/// Columns that sort rows into a few large groups: a tenant, a status, a kind, a channel.
const CATEGORY_COLUMNS: &[&str] = &["tenant_id", "status", "kind", "channel", "purpose", "type"];

/// The `sqlite_stat1` line for an index without statistics: each category column keeps a tenth
/// of the rows, the first other column about ten, each further one a fifth of that, and the
/// whole key of a unique index one.
fn hint_stat(columns: &[&str], unique: bool) -> String {
    let mut parts = vec![HINT_ROWS];
    let mut rows = HINT_ROWS;
    for (i, c) in columns.iter().enumerate() {
        rows = if unique && i + 1 == columns.len() {
            1
        } else if CATEGORY_COLUMNS.contains(c) {
            (rows / 10).max(1)
        } else if rows > 10 {
            10
        } else {
            (rows / 5).max(1)
        };
        parts.push(rows);
    }
    parts
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// SQLite plans from `sqlite_stat1`. Without it, it assumes an equality on an index's first
/// column leaves about ten rows, and here that column is mostly `tenant_id`, which all of a
/// brand's rows share, or a status: a scan of the whole tenant then looks cheaper than 2,000
/// lookups by customer (a campaign read its recipients' phones that way, at 48 µs a customer
/// at 200,000 customers). Every index without statistics gets a row that says what such an
/// index is like; a real `ANALYZE` replaces them. Returns how many rows were written.
pub async fn seed_planner_stats(db: &Db) -> DbResult<usize> {
    let mut tx = db.begin().await?;
    tx.execute(&sql("ANALYZE sqlite_schema")).await?; // creates sqlite_stat1 when absent
    // (table, name in sqlite_stat1, unique, column): the key columns, in order, of every index
    // without statistics. ANALYZE names a WITHOUT ROWID table's primary key after the table.
    let columns: Vec<(String, String, i64, String)> = tx
        .fetch_all(&sql(
            "SELECT tbl, idx, is_unique, col FROM ( \
               SELECT t.name AS tbl, il.name AS index_name, ii.seqno AS seqno, il.\"unique\" AS is_unique, \
                      ii.name AS col, \
                      CASE WHEN il.origin = 'pk' AND t.wr THEN t.name ELSE il.name END AS idx \
                 FROM pragma_table_list t, pragma_index_list(t.name) il, pragma_index_info(il.name) ii \
                WHERE t.schema = 'main' AND t.type = 'table') \
              WHERE idx NOT IN (SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL) \
              ORDER BY tbl, index_name, seqno",
        ))
        .await?;
    let hints: Vec<(&str, &str, String)> = columns
        .chunk_by(|a, b| (&a.0, &a.1) == (&b.0, &b.1))
        .map(|index| {
            let names: Vec<&str> = index.iter().map(|c| c.3.as_str()).collect();
            (
                index[0].0.as_str(),
                index[0].1.as_str(),
                hint_stat(&names, index[0].2 == 1),
            )
        })
        .collect();
    if !hints.is_empty() {
        let mut q = sql(format!(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES {}",
            values_placeholders(hints.len(), 3, 1)
        ));
        for (table, index, stat) in &hints {
            q.push_arg(*table);
            q.push_arg(*index);
            q.push_arg(stat.as_str());
        }
        tx.execute(&q).await?;
        tx.execute(&sql("ANALYZE sqlite_schema")).await?; // loads them into this connection
    }
    tx.commit().await?;
    Ok(hints.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_say_a_tenant_is_many_rows_and_a_unique_key_one() {
        assert_eq!(hint_stat(&["tenant_id", "ikey"], true), "1000000 100000 1");
        assert_eq!(
            hint_stat(&["tenant_id", "customer_id", "sent_at"], false),
            "1000000 100000 10 2"
        );
        assert_eq!(
            hint_stat(&["status", "not_before"], false),
            "1000000 100000 10"
        );
        assert_eq!(hint_stat(&["provider_ref"], false), "1000000 10");
    }

    #[tokio::test]
    async fn the_schema_alone_migrates_once() {
        let db = Db::connect("sqlite::memory:", &Default::default())
            .await
            .expect("db");
        let ran = migrate_to(&db, &SchemaOnly, i64::MAX)
            .await
            .expect("migrate");
        assert_eq!(ran, MIGRATIONS.len());
        assert_eq!(
            migrate_to(&db, &SchemaOnly, i64::MAX).await.expect("again"),
            0
        );
        let versions: Vec<(i64,)> = db
            .fetch_all(&sql(
                "SELECT version FROM schema_migrations ORDER BY version",
            ))
            .await
            .expect("versions");
        let expected: Vec<(i64,)> = MIGRATIONS.iter().map(|m| (m.0,)).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn versions_are_increasing_and_both_backends_have_each() {
        let mut last = 0;
        for (v, name, sqlite, pg) in MIGRATIONS {
            assert!(*v > last, "migration {name} out of order");
            last = *v;
            assert!(
                !sqlite.trim().is_empty() && !pg.trim().is_empty(),
                "migration {v} missing a backend"
            );
        }
        let files = |dir: &str| -> Vec<String> {
            let mut v: Vec<String> =
                std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
            v.sort();
            v
        };
        assert_eq!(
            files("sqlite"),
            files("postgres"),
            "migration files differ between backends"
        );
        assert_eq!(
            files("sqlite").len(),
            MIGRATIONS.len(),
            "a migration file is not listed in MIGRATIONS"
        );
    }
}
