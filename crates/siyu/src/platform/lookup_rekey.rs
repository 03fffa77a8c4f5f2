//! Migration 0021's data step: every lookup hash of a tenant's numbers re-keyed with the
//! tenant's own key. Before it one key served every tenant, so a number had the same hash in
//! every brand and a copy of the database linked customers across brands.
//!
//! The step needs the secret key, so it runs here rather than in SQL, inside the migration's
//! transaction: a crash leaves the old hashes and the migration to run again.
//!
//! What can be re-keyed is re-keyed from the number itself: identities and outbox messages keep
//! it encrypted, and the other tables' hashes are found there. A hash whose number is kept
//! nowhere cannot be re-keyed:
//! - an unsubscribe keeps it as `v1:HASH` and the outbox checks such numbers when it sends
//!   (`engage::outbox::LegacyUnsubscribes`), so no opt-out is lost;
//! - an SMS reply keeps it as `v1:HASH` (history, no longer linked to a number);
//! - a one-time code or a card's texted number is dropped (codes last minutes);
//! - the day's per-number code counters start again (they are kept under the server's budget
//!   hash from now on);
//! - click address hashes stay as they are (the address itself was never kept).

use std::collections::HashMap;

use super::crypto::{FieldCipher, TenantLookup};
use super::db::{DbResult, Sql, Tx, sql};

/// Rows read and rewritten per statement.
const PAGE: i64 = 2_000;

/// The prefix of a hash kept under the key every tenant shared.
pub const LEGACY_PREFIX: &str = "v1:";

/// What the re-key changed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RekeyReport {
    pub tenants: u64,
    pub identities: u64,
    pub messages: u64,
    /// Rows of the smaller tables (unsubscribes, replies, codes) given the tenant's hash.
    pub mapped: u64,
    /// Unsubscribes and replies whose number is kept nowhere, marked `v1:`.
    pub kept_legacy: u64,
    /// Codes and card numbers whose number is kept nowhere, dropped.
    pub dropped: u64,
}

/// Re-keys every tenant's lookup hashes in `tx`.
pub async fn rekey_lookups(tx: &mut Tx, cipher: &FieldCipher) -> DbResult<RekeyReport> {
    let mut report = RekeyReport::default();
    let tenants: Vec<(i64,)> = tx
        .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
        .await?;
    for (tenant,) in tenants {
        let lookup = cipher.lookup(tenant);
        // The smaller tables first: their numbers are found through the old hashes of the
        // identities and messages, which are rewritten after.
        rekey_hashed_tables(tx, cipher, &lookup, &mut report).await?;
        report.identities += rekey_identities(tx, cipher, &lookup).await?;
        report.messages += rekey_outbox(tx, cipher, &lookup).await?;
        report.tenants += 1;
    }
    // Counted across brands under the server's budget hash from now on.
    tx.execute(&sql("DELETE FROM rate_counters WHERE scope = 'otp_phone'"))
        .await?;
    Ok(report)
}

/// The tables that hold a number's hash without the number.
const HASHED: &[(&str, &str)] = &[
    ("unsubscribes", "channel = 'sms'"),
    ("sms_replies", "1 = 1"),
    ("otp_codes", "1 = 1"),
    ("otp_card_numbers", "1 = 1"),
];

async fn rekey_hashed_tables(
    tx: &mut Tx,
    cipher: &FieldCipher,
    lookup: &TenantLookup,
    report: &mut RekeyReport,
) -> DbResult<()> {
    let tenant = lookup.tenant();
    let union: Vec<String> = HASHED
        .iter()
        .map(|(table, only)| {
            format!("SELECT address_hash FROM {table} WHERE tenant_id = $1 AND {only}")
        })
        .collect();
    let olds: Vec<(String,)> = tx
        .fetch_all(&sql(union.join(" UNION ")).bind(tenant))
        .await?;
    let mut map: HashMap<String, String> = HashMap::new();
    let mut unknown = Vec::new();
    for (old,) in olds {
        if old.starts_with(LEGACY_PREFIX) {
            continue;
        }
        match number_of(tx, cipher, tenant, &old).await? {
            Some(phone) => {
                map.insert(old, lookup.hash(&phone));
            }
            None => unknown.push(old),
        }
    }
    let pairs: Vec<(String, String)> = map.into_iter().collect();
    for page in pairs.chunks(PAGE as usize) {
        for (table, only) in HASHED {
            report.mapped += tx
                .execute(&rewrite(
                    &format!("UPDATE {table} SET address_hash = v.new FROM v WHERE {table}.tenant_id = $1 AND {only} AND {table}.address_hash = v.old"),
                    tenant,
                    page,
                ))
                .await?;
        }
    }
    for old in unknown {
        for (table, only) in HASHED {
            if matches!(*table, "unsubscribes" | "sms_replies") {
                report.kept_legacy += tx
                    .execute(
                        &sql(format!("UPDATE {table} SET address_hash = $3 WHERE tenant_id = $1 AND {only} AND address_hash = $2"))
                            .bind(tenant)
                            .bind(old.clone())
                            .bind(format!("{LEGACY_PREFIX}{old}")),
                    )
                    .await?;
            } else {
                report.dropped += tx
                    .execute(
                        &sql(format!("DELETE FROM {table} WHERE tenant_id = $1 AND {only} AND address_hash = $2"))
                            .bind(tenant)
                            .bind(old.clone()),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// The number behind an old hash of `tenant`'s, where the tenant keeps it (encrypted).
async fn number_of(
    tx: &mut Tx,
    cipher: &FieldCipher,
    tenant: i64,
    old: &str,
) -> DbResult<Option<String>> {
    let found: Option<(String,)> = tx
        .fetch_optional(
            &sql("SELECT value_enc FROM identities WHERE tenant_id = $1 AND ikey = $2 AND value_enc IS NOT NULL")
                .bind(tenant)
                .bind(format!("phone:{old}")),
        )
        .await?;
    let found = match found {
        Some(f) => Some(f),
        None => {
            tx.fetch_optional(
                &sql(
                    "SELECT address_enc FROM outbox WHERE tenant_id = $1 AND address_hash = $2 \
                      AND sent_at IS NOT NULL LIMIT 1",
                )
                .bind(tenant)
                .bind(old.to_owned()),
            )
            .await?
        }
    };
    Ok(found.and_then(|(enc,)| cipher.decrypt(&enc).ok()))
}

/// `WITH v(old, new) AS (VALUES …) <update>`, $1 the tenant.
fn rewrite(update: &str, tenant: i64, pairs: &[(String, String)]) -> Sql {
    let values: Vec<String> = (0..pairs.len())
        .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
        .collect();
    let mut q = sql(format!(
        "WITH v(old, new) AS (VALUES {}) {update}",
        values.join(", ")
    ));
    q.push_arg(tenant);
    for (old, new) in pairs {
        q.push_arg(old.clone());
        q.push_arg(new.clone());
    }
    q
}

async fn rekey_identities(
    tx: &mut Tx,
    cipher: &FieldCipher,
    lookup: &TenantLookup,
) -> DbResult<u64> {
    let tenant = lookup.tenant();
    let mut after = String::from("phone:");
    let mut changed = 0;
    loop {
        let rows: Vec<(String, Option<String>)> = tx
            .fetch_all(
                &sql(
                    "SELECT ikey, value_enc FROM identities WHERE tenant_id = $1 AND ikey > $2 \
                      AND ikey < 'phone;' ORDER BY ikey LIMIT $3",
                )
                .bind(tenant)
                .bind(after.clone())
                .bind(PAGE),
            )
            .await?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = last.clone();
        let pairs: Vec<(String, String)> = rows
            .iter()
            .filter_map(|(ikey, enc)| {
                let phone = cipher.decrypt(enc.as_deref()?).ok()?;
                let new = format!("phone:{}", lookup.hash(&phone));
                // Keys rewritten on an earlier page can sort after it: met again, unchanged.
                (*ikey != new).then(|| (ikey.clone(), new))
            })
            .collect();
        if !pairs.is_empty() {
            changed += tx
                .execute(&rewrite(
                    "UPDATE identities SET ikey = v.new FROM v WHERE identities.tenant_id = $1 AND identities.ikey = v.old",
                    tenant,
                    &pairs,
                ))
                .await?;
        }
    }
    Ok(changed)
}

async fn rekey_outbox(tx: &mut Tx, cipher: &FieldCipher, lookup: &TenantLookup) -> DbResult<u64> {
    let tenant = lookup.tenant();
    let mut after = 0i64;
    let mut changed = 0;
    loop {
        let rows: Vec<(i64, String)> = tx
            .fetch_all(
                &sql(
                    "SELECT id, address_enc FROM outbox WHERE tenant_id = $1 AND id > $2 \
                      AND channel = 'sms' ORDER BY id LIMIT $3",
                )
                .bind(tenant)
                .bind(after)
                .bind(PAGE),
            )
            .await?;
        let Some(&(last, _)) = rows.last() else {
            break;
        };
        after = last;
        let pairs: Vec<(String, String)> = rows
            .iter()
            .filter_map(|(id, enc)| {
                let phone = cipher.decrypt(enc).ok()?;
                Some((id.to_string(), lookup.hash(&phone)))
            })
            .collect();
        if !pairs.is_empty() {
            changed += tx
                .execute(&rewrite(
                    "UPDATE outbox SET address_hash = v.new FROM v WHERE outbox.tenant_id = $1 AND outbox.id = CAST(v.old AS BIGINT)",
                    tenant,
                    &pairs,
                ))
                .await?;
        }
    }
    Ok(changed)
}
