//! Schema migrations: the store applies them (`siyu_store::migrate`); the library adds the data
//! step that needs the field key.

use super::crypto::FieldCipher;
use super::db::{Db, DbResult, Tx};
use super::lookup_rekey::rekey_lookups;
pub use siyu_store::migrate::{MIGRATIONS, seed_planner_stats};

/// The migration whose data step re-keys every tenant's lookup hashes (`lookup_rekey`).
const PER_TENANT_LOOKUPS: i64 = 21;

/// The data steps that need the field key.
struct Rekey<'a>(&'a FieldCipher);

impl siyu_store::migrate::DataStep for Rekey<'_> {
    async fn after(&self, version: i64, tx: &mut Tx) -> DbResult<()> {
        if version != PER_TENANT_LOOKUPS {
            return Ok(());
        }
        let r = rekey_lookups(tx, self.0).await?;
        if r.tenants > 0 {
            tracing::info!(
                tenants = r.tenants,
                identities = r.identities,
                messages = r.messages,
                mapped = r.mapped,
                kept_legacy = r.kept_legacy,
                dropped = r.dropped,
                "lookup hashes re-keyed per tenant"
            );
        }
        Ok(())
    }
}

/// Applies every migration not yet applied, each in its own transaction. Returns how many ran.
/// `cipher` re-keys what a migration's data step hashes again.
pub async fn migrate(db: &Db, cipher: &FieldCipher) -> DbResult<usize> {
    migrate_to(db, cipher, i64::MAX).await
}

/// Applies the migrations up to version `last` (an upgrade's test starts from an older schema).
pub async fn migrate_to(db: &Db, cipher: &FieldCipher, last: i64) -> DbResult<usize> {
    siyu_store::migrate::migrate_to(db, &Rekey(cipher), last).await
}

/// A migrated in-memory SQLite database, for tests that need the schema and nothing else.
#[cfg(test)]
pub(crate) async fn migrated_in_memory() -> Db {
    let db = Db::connect("sqlite::memory:", &Default::default())
        .await
        .expect("db");
    migrate(&db, &FieldCipher::new(&[3u8; 32]))
        .await
        .expect("migrate");
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::db::{query_plan, sql};

    #[tokio::test]
    async fn a_long_customer_list_is_looked_up_through_the_customer_index() {
        let db = migrated_in_memory().await;
        let list = (1..=2000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let plan = query_plan(
            &db,
            sql(format!(
                "SELECT customer_id, ikey, value_enc, first_seen FROM identities \
                  WHERE tenant_id = 1 AND kind = 'phone' AND customer_id IN ({list})"
            )),
        )
        .await
        .expect("query plan");
        assert!(
            plan.iter().any(|t| t.contains("INDEX identities_customer")),
            "{plan:?}"
        );
        // The outbox's weekly cap reads by customer, not through every sent message.
        let plan = query_plan(
            &db,
            sql(format!(
                "SELECT customer_id FROM outbox WHERE tenant_id = 1 \
                  AND purpose = 'marketing' AND status IN ('sent', 'delivered', 'undelivered') \
                  AND sent_at >= 5 AND customer_id IN ({list})"
            )),
        )
        .await
        .expect("query plan");
        assert!(
            plan.iter().any(|t| t.contains("INDEX outbox_customer")),
            "{plan:?}"
        );
        // Rows carry each index's key columns in order, under the name ANALYZE would use.
        for (idx, want) in [
            ("outbox_customer", "1000000 100000 10 2"),
            ("identities", "1000000 100000 1"),
            ("identities_customer", "1000000 100000 10 1"),
        ] {
            let (stat,): (String,) = db
                .fetch_one(&sql("SELECT stat FROM sqlite_stat1 WHERE idx = $1").bind(idx))
                .await
                .expect("stat");
            assert_eq!(stat, want, "{idx}");
        }
        // A second start leaves the hints alone and adds none.
        assert_eq!(seed_planner_stats(&db).await.expect("seed"), 0);
    }

    #[tokio::test]
    async fn each_outbox_reader_finds_the_index_of_the_messages_it_reads() {
        let db = migrated_in_memory().await;
        for (query, index) in [
            (
                "SELECT id FROM outbox WHERE status = 'queued' AND not_before <= 5 \
                 ORDER BY not_before, id LIMIT 2000",
                "outbox_queued",
            ),
            (
                "SELECT id FROM outbox WHERE status = 'sending' AND lease_until < 5",
                "outbox_leased",
            ),
            (
                "SELECT id FROM outbox WHERE provider = 'log' AND provider_ref = 'r1' \
                 AND status IN ('sent', 'delivered', 'undelivered')",
                "outbox_ref",
            ),
            (
                "SELECT address_hash, content_hash FROM outbox WHERE tenant_id = 1 \
                 AND status IN ('sent', 'delivered', 'undelivered') AND sent_at >= 5 \
                 AND address_hash IN ('a', 'b')",
                "outbox_address",
            ),
            (
                // The weekly cap's records merged into a customer.
                "SELECT CAST(id AS TEXT), merged_into FROM customers WHERE tenant_id = 1 AND merged_into = 5",
                "customers_merged",
            ),
        ] {
            let plan = query_plan(&db, sql(query)).await.expect("query plan");
            assert!(
                plan.iter().any(|t| t.contains(&format!("INDEX {index}"))),
                "{query}: {plan:?}"
            );
            // The queue is read in claim order off the index, never sorted.
            assert!(!plan.iter().any(|t| t.contains("TEMP B-TREE")), "{plan:?}");
        }
    }
}
