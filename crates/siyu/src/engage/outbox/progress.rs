//! Where a campaign's messages stand, so that a page says what a send waits for instead of
//! "launched" with nothing sent: queued for their turn, held until quiet hours end, waiting to
//! retry, with the provider now, sent, failed, or not sent by the contact policy.

use serde::Serialize;

use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Due now, waiting their turn.
    pub queued: i64,
    /// Held by quiet hours (or a send time still to come).
    pub held: i64,
    /// When the first held message may go (UTC ms).
    pub held_until: Option<i64>,
    /// Refused or failed for a moment by the provider, to be tried again.
    pub retrying: i64,
    /// Handed to the provider, its answer awaited.
    pub sending: i64,
    /// Accepted by the provider (delivered or not, as receipts later tell).
    pub sent: i64,
    pub failed: i64,
    /// Not sent by the contact policy (capped, unsubscribed, quiet hours for a code).
    pub suppressed: i64,
}

impl Progress {
    /// Nothing left to send.
    pub fn finished(&self) -> bool {
        self.queued + self.held + self.retrying + self.sending == 0
    }
}

/// The campaign's messages by where they stand at `now`.
pub async fn campaign_progress(
    db: &Db,
    tenant: TenantId,
    campaign: i64,
    now: i64,
) -> Result<Progress, DbError> {
    let rows: Vec<(String, i64, Option<i64>)> = db
        .fetch_all(
            &sql(
                "SELECT CASE WHEN status = 'queued' AND not_before > $3 AND reason IS NULL THEN 'held' \
                 WHEN status = 'queued' AND reason IS NOT NULL THEN 'retrying' ELSE status END AS s, \
                 COUNT(*), MIN(not_before) FROM outbox WHERE tenant_id = $1 AND campaign_id = $2 \
                 GROUP BY CASE WHEN status = 'queued' AND not_before > $3 AND reason IS NULL THEN 'held' \
                 WHEN status = 'queued' AND reason IS NOT NULL THEN 'retrying' ELSE status END",
            )
            .bind(tenant)
            .bind(campaign)
            .bind(now),
        )
        .await?;
    let mut p = Progress::default();
    for (status, n, first) in rows {
        match status.as_str() {
            "queued" => p.queued += n,
            "held" => {
                p.held += n;
                p.held_until = first;
            }
            "retrying" => p.retrying += n,
            "sending" => p.sending += n,
            "sent" | "delivered" | "undelivered" => p.sent += n,
            "failed" => p.failed += n,
            "suppressed" => p.suppressed += n,
            _ => {}
        }
    }
    Ok(p)
}

/// A message sent (or to be sent) to one customer, as their page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Received {
    pub created_at: i64,
    pub channel: String,
    pub purpose: String,
    pub campaign_id: Option<i64>,
    pub status: String,
    pub not_before: i64,
    pub reason: Option<String>,
    pub sent_at: Option<i64>,
}

/// The latest `limit` messages to a customer, newest first.
pub async fn received_by(
    db: &Db,
    tenant: TenantId,
    customer: crate::know::CustomerId,
    limit: i64,
) -> Result<Vec<Received>, DbError> {
    db.fetch_all(
        &sql(
            "SELECT created_at, channel, purpose, campaign_id, status, not_before, reason, sent_at FROM outbox \
             WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(customer)
        .bind(limit.clamp(1, 200)),
    )
    .await
}
