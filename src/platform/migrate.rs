//! Schema migrations, kept per backend with the same version numbers and applied on start.

use super::clock::now_ms;
use super::db::{Backend, Db, DbError, DbResult, sql};

/// (version, name, SQLite script, PostgreSQL script)
pub const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "lookup indexes",
        include_str!("../../migrations/sqlite/0002_lookup_indexes.sql"),
        include_str!("../../migrations/postgres/0002_lookup_indexes.sql"),
    ),
    (
        3,
        "layering",
        include_str!("../../migrations/sqlite/0003_layering.sql"),
        include_str!("../../migrations/postgres/0003_layering.sql"),
    ),
    (
        4,
        "members",
        include_str!("../../migrations/sqlite/0004_members.sql"),
        include_str!("../../migrations/postgres/0004_members.sql"),
    ),
    (
        5,
        "coupons",
        include_str!("../../migrations/sqlite/0005_coupons.sql"),
        include_str!("../../migrations/postgres/0005_coupons.sql"),
    ),
    (
        6,
        "tiers",
        include_str!("../../migrations/sqlite/0006_tiers.sql"),
        include_str!("../../migrations/postgres/0006_tiers.sql"),
    ),
    (
        7,
        "activities",
        include_str!("../../migrations/sqlite/0007_activities.sql"),
        include_str!("../../migrations/postgres/0007_activities.sql"),
    ),
    (
        8,
        "acquire",
        include_str!("../../migrations/sqlite/0008_acquire.sql"),
        include_str!("../../migrations/postgres/0008_acquire.sql"),
    ),
    (
        9,
        "connect",
        include_str!("../../migrations/sqlite/0009_connect.sql"),
        include_str!("../../migrations/postgres/0009_connect.sql"),
    ),
];

/// Applies every migration not yet applied, each in its own transaction. Returns how many ran.
pub async fn migrate(db: &Db) -> DbResult<usize> {
    db.execute(&sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    ))
    .await?;
    let mut applied = 0;
    for (version, name, sqlite, postgres) in MIGRATIONS {
        let mut tx = db.begin().await?;
        if let super::db::Tx::Postgres(_) = tx {
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
            super::db::Tx::Sqlite(t, _) => sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
            super::db::Tx::Postgres(t) => sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()))
                .execute(&mut **t)
                .await
                .map(|_| ()),
        };
        run.map_err(|source| DbError::Migration {
            version: *version,
            name: name.to_string(),
            source,
        })?;
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
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

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
