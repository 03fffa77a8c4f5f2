//! What comes back from the providers: delivery receipts, and replies routed to the tenant
//! that last messaged the number (an unsubscribe when they say R, TD or 退订).

use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, sql};

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

/// The tenant that last sent to a number: a provider's reply callback names only the number. No
/// outbox index starts with the number, so the newest send is looked up tenant by tenant through
/// `outbox_address (tenant_id, address_hash, sent_at)` of sent messages, one index probe each, instead of
/// scanning the outbox.
pub(super) const LAST_SENDER: &str = "SELECT tenant_id FROM (SELECT t.id AS tenant_id, \
     (SELECT MAX(o.sent_at) FROM outbox o WHERE o.tenant_id = t.id AND o.address_hash = $1 \
     AND o.sent_at IS NOT NULL) AS last \
     FROM tenants t) AS s WHERE last IS NOT NULL ORDER BY last DESC, tenant_id LIMIT 1";

/// A reply from a phone: recorded against the tenant that last messaged that number, and an
/// unsubscribe when it says R, TD or 退订. Returns the tenant, if any had messaged it.
pub async fn record_reply(
    db: &Db,
    cipher: &FieldCipher,
    provider: &str,
    phone: &str,
    text: &str,
    at: i64,
) -> Result<Option<(i64, bool)>, DbError> {
    let hash = cipher.lookup_hash(phone);
    let tenant: Option<(i64,)> = db
        .fetch_optional(&sql(LAST_SENDER).bind(hash.clone()))
        .await?;
    let Some((tenant,)) = tenant else {
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
            &sql("INSERT INTO unsubscribes (tenant_id, channel, address_hash, source, created_at) VALUES ($1, 'sms', $2, $3, $4) \
                  ON CONFLICT (tenant_id, channel, address_hash) DO NOTHING")
                .bind(tenant)
                .bind(hash)
                .bind(format!("reply:{provider}"))
                .bind(at),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some((tenant, unsubscribe)))
}
