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
//! - a one-time code waiting to be typed is dropped (its own hash was keyed the old way; codes
//!   last minutes), and so is a card's texted number kept nowhere; a lockout stays;
//! - the day's per-number code counters start again (they are kept under the server's budget
//!   hash from now on);
//! - click address hashes stay as they are (the address itself was never kept).

use crate::platform::TenantId;
use std::collections::HashMap;

use super::crypto::{FieldCipher, TenantLookup};
use super::db::{DbResult, Sql, Tx, Value, sql, values_placeholders};

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
    // A code waiting to be typed was hashed with the shared key and can no longer match: it is
    // asked for again (codes last minutes), so it is dropped before anything is re-keyed. A
    // lockout stays, and is re-keyed below.
    report.dropped += tx
        .execute(
            &sql("DELETE FROM otp_codes WHERE locked_until <= $1").bind(super::clock::now_ms()),
        )
        .await?;
    let tenants: Vec<(TenantId,)> = tx
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
    let olds: Vec<String> = olds
        .into_iter()
        .map(|(old,)| old)
        .filter(|old| !old.starts_with(LEGACY_PREFIX))
        .collect();
    let numbers = numbers_of(tx, cipher, tenant, &olds).await?;
    // old hash → (new hash, the number encrypted anew)
    let mut map: HashMap<String, (String, String)> = HashMap::new();
    let mut unknown = Vec::new();
    for old in olds {
        match numbers.get(&old) {
            Some(phone) => {
                map.insert(old, (lookup.hash(phone), cipher.encrypt(phone)));
            }
            None => unknown.push(Value::from(old)),
        }
    }
    let rows: Vec<Vec<String>> = map
        .into_iter()
        .map(|(old, (new, enc))| vec![old, new, enc])
        .collect();
    for page in rows.chunks(PAGE as usize) {
        for (table, only) in HASHED {
            // An unsubscribe keeps its number from now on, so that a later key can re-key it.
            let set = if *table == "unsubscribes" {
                "address_hash = v.new, address_enc = v.enc"
            } else {
                "address_hash = v.new"
            };
            report.mapped += tx
                .execute(&rewrite(
                    "v(old, new, enc)",
                    &format!("UPDATE {table} SET {set} FROM v WHERE {table}.tenant_id = $1 AND {only} AND {table}.address_hash = v.old"),
                    tenant,
                    page,
                ))
                .await?;
        }
    }
    for (table, only) in HASHED {
        let fixed = [Value::from(tenant)];
        if matches!(*table, "unsubscribes" | "sms_replies") {
            report.kept_legacy += tx
                .execute_in(
                    &format!("UPDATE {table} SET address_hash = '{LEGACY_PREFIX}' || address_hash WHERE tenant_id = $1 AND {only} AND address_hash"),
                    &fixed,
                    unknown.clone(),
                )
                .await?;
        } else {
            report.dropped += tx
                .execute_in(
                    &format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND {only} AND address_hash"
                    ),
                    &fixed,
                    unknown.clone(),
                )
                .await?;
        }
    }
    Ok(())
}

/// The numbers behind old hashes of `tenant`'s, where the tenant keeps them (encrypted): its
/// identities first, then the messages it sent.
async fn numbers_of(
    tx: &mut Tx,
    cipher: &FieldCipher,
    tenant: TenantId,
    olds: &[String],
) -> DbResult<HashMap<String, String>> {
    let mut found = HashMap::new();
    let by_identity: Vec<(String, Option<String>)> = tx
        .fetch_in(
            "SELECT ikey, value_enc FROM identities WHERE tenant_id = $1 AND ikey",
            &[tenant.into()],
            olds.iter()
                .map(|o| Value::from(format!("phone:{o}")))
                .collect(),
        )
        .await?;
    for (ikey, enc) in by_identity {
        if let (Some(old), Some(phone)) = (
            ikey.strip_prefix("phone:"),
            enc.and_then(|e| cipher.decrypt(&e).ok()),
        ) {
            found.insert(old.to_owned(), phone);
        }
    }
    let rest: Vec<Value> = olds
        .iter()
        .filter(|o| !found.contains_key(*o))
        .map(|o| Value::from(o.as_str()))
        .collect();
    let by_message: Vec<(String, String)> = tx
        .fetch_in(
            "SELECT address_hash, address_enc FROM outbox WHERE tenant_id = $1 AND sent_at IS NOT NULL AND address_hash",
            &[tenant.into()],
            rest,
        )
        .await?;
    for (old, enc) in by_message {
        if !found.contains_key(&old)
            && let Ok(phone) = cipher.decrypt(&enc)
        {
            found.insert(old, phone);
        }
    }
    Ok(found)
}

/// `WITH <columns> AS (VALUES …) <update>`, $1 the tenant; every row has a text per column.
fn rewrite(columns: &str, update: &str, tenant: TenantId, rows: &[Vec<String>]) -> Sql {
    let width = rows.first().map_or(0, Vec::len);
    let mut q = sql(format!(
        "WITH {columns} AS (VALUES {}) {update}",
        values_placeholders(rows.len(), width, 2)
    ));
    q.push_arg(tenant);
    for row in rows {
        for cell in row {
            q.push_arg(cell.clone());
        }
    }
    q
}

async fn rekey_identities(
    tx: &mut Tx,
    cipher: &FieldCipher,
    lookup: &TenantLookup,
) -> DbResult<u64> {
    let tenant = lookup.tenant();
    // By kind, not by a range of `ikey` text: a range's ends sort differently under a
    // database's language-aware collation. Paged by `ikey` in the database's own order.
    let mut after = String::new();
    let (mut changed, mut unreadable) = (0, 0);
    loop {
        let rows: Vec<(String, Option<String>)> = tx
            .fetch_all(
                &sql(
                    "SELECT ikey, value_enc FROM identities WHERE tenant_id = $1 AND kind = 'phone' \
                     AND ikey > $2 ORDER BY ikey LIMIT $3",
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
        let mut pairs: Vec<Vec<String>> = Vec::with_capacity(rows.len());
        for (ikey, enc) in &rows {
            let Some(phone) = enc.as_deref().and_then(|e| cipher.decrypt(e).ok()) else {
                unreadable += 1;
                continue;
            };
            let new = format!("phone:{}", lookup.hash(&phone));
            // Keys rewritten on an earlier page can sort after it: met again, unchanged.
            if *ikey != new {
                pairs.push(vec![ikey.clone(), new]);
            }
        }
        if !pairs.is_empty() {
            changed += tx
                .execute(&rewrite(
                    "v(old, new)",
                    "UPDATE identities SET ikey = v.new FROM v WHERE identities.tenant_id = $1 AND identities.ikey = v.old",
                    tenant,
                    &pairs,
                ))
                .await?;
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            tenant = %tenant,
            identities = unreadable,
            "phone identities without a readable number keep their old hash: no lookup by number finds them"
        );
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
        let pairs: Vec<Vec<String>> = rows
            .iter()
            .filter_map(|(id, enc)| {
                let phone = cipher.decrypt(enc).ok()?;
                Some(vec![id.to_string(), lookup.hash(&phone)])
            })
            .collect();
        if !pairs.is_empty() {
            changed += tx
                .execute(&rewrite(
                    "v(old, new)",
                    "UPDATE outbox SET address_hash = v.new FROM v WHERE outbox.tenant_id = $1 AND outbox.id = CAST(v.old AS BIGINT)",
                    tenant,
                    &pairs,
                ))
                .await?;
        }
    }
    Ok(changed)
}
