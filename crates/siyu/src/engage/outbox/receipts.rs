//! What comes back from the providers: delivery receipts, and replies routed to the tenant
//! that last messaged the number (an unsubscribe when they say R, TD or 退订).

use crate::platform::TenantId;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, Sql, sql};

/// A delivery receipt from a provider's callback: the message reached the phone or did not.
pub async fn record_receipt(
    db: &Db,
    provider: &str,
    provider_ref: &str,
    delivered: bool,
    code: &str,
    at: i64,
) -> Result<bool, DbError> {
    let n = db
        .execute(
            &sql("UPDATE outbox SET status = $3, delivery = $4, delivered_at = $5 \
                  WHERE provider = $1 AND provider_ref = $2 AND status IN ('sent', 'delivered', 'undelivered')")
            .bind(provider)
            .bind(provider_ref)
            .bind(if delivered { "delivered" } else { "undelivered" })
            .bind(code)
            .bind(at),
        )
        .await?;
    Ok(n > 0)
}

/// Tenants asked about one number in one statement.
const TENANTS_PER_PROBE: usize = 500;

/// The tenant that last sent to a number, among `probes` (each tenant with its own hash of the
/// number): a provider's reply callback names only the number. Each tenant is one index probe
/// through `outbox_address (tenant_id, address_hash, sent_at)` of sent messages, never a scan of
/// the outbox.
pub(super) fn last_sender(probes: &[(TenantId, String)]) -> Sql {
    let arms: Vec<String> = (0..probes.len())
        .map(|i| {
            let (t, h) = (2 * i + 1, 2 * i + 2);
            format!(
                "SELECT CAST(${t} AS BIGINT) AS tenant_id, (SELECT MAX(o.sent_at) FROM outbox o \
                 WHERE o.tenant_id = ${t} AND o.address_hash = ${h} AND o.sent_at IS NOT NULL) AS last"
            )
        })
        .collect();
    let mut q = sql(format!(
        "SELECT tenant_id, last FROM ({}) AS s WHERE last IS NOT NULL ORDER BY last DESC, tenant_id LIMIT 1",
        arms.join(" UNION ALL ")
    ));
    for (tenant, hash) in probes {
        q.push_arg(*tenant);
        q.push_arg(hash.clone());
    }
    q
}

/// The tenant that last sent to `phone`, hashing it with each tenant's key, and that tenant's
/// hash of it.
async fn last_sender_of(
    db: &Db,
    cipher: &FieldCipher,
    phone: &str,
) -> Result<Option<(TenantId, String)>, DbError> {
    let tenants: Vec<(TenantId,)> = db
        .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
        .await?;
    let mut newest: Option<(TenantId, i64, String)> = None;
    for chunk in tenants.chunks(TENANTS_PER_PROBE) {
        let probes: Vec<(TenantId, String)> = chunk
            .iter()
            .map(|&(t,)| (t, cipher.lookup(t).hash(phone)))
            .collect();
        let found: Option<(TenantId, i64)> = db.fetch_optional(&last_sender(&probes)).await?;
        if let Some((tenant, last)) = found
            && newest.as_ref().is_none_or(|(_, n, _)| last > *n)
            && let Some((_, hash)) = probes.into_iter().find(|(t, _)| *t == tenant)
        {
            newest = Some((tenant, last, hash));
        }
    }
    Ok(newest.map(|(tenant, _, hash)| (tenant, hash)))
}

/// A reply from a phone: recorded against the tenant that last messaged that number, and an
/// unsubscribe when it says R, TD or 退订. Returns the tenant, if any had messaged it.
pub async fn record_reply(
    db: &Db,
    cipher: &FieldCipher,
    provider: &str,
    phone: &str,
    text: &str,
    at: i64,
) -> Result<Option<(TenantId, bool)>, DbError> {
    let Some((tenant, hash)) = last_sender_of(db, cipher, phone).await? else {
        return Ok(None);
    };
    let unsubscribe = crate::channels::sms::is_unsubscribe_reply(text);
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("sms_reply", 1).await?;
    tx.execute(
        &sql("INSERT INTO sms_replies (id, tenant_id, provider, address_hash, content, unsubscribed, received_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(tenant)
            .bind(provider)
            .bind(hash.clone())
            .bind(text)
            .bind(unsubscribe as i64)
            .bind(at),
    )
    .await?;
    if unsubscribe {
        tx.execute(
            &sql("INSERT INTO unsubscribes (tenant_id, channel, address_hash, address_enc, source, created_at) \
                  VALUES ($1, 'sms', $2, $3, $4, $5) ON CONFLICT (tenant_id, channel, address_hash) DO NOTHING")
                .bind(tenant)
                .bind(hash)
                .bind(cipher.encrypt(phone))
                .bind(format!("reply:{provider}"))
                .bind(at),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some((tenant, unsubscribe)))
}
