//! The points ledger (积分): every change is an entry, and a balance is the sum of its entries,
//! never a number kept beside them. Earned points expire; spending uses the points that expire
//! first, so what expires is what was earned and not spent in time.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::{Deserialize, Serialize};

use crate::platform::db::{Db, DbError, Tx, sql};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointsSettings {
    /// Points earned per yuan paid.
    pub points_per_yuan: i64,
    /// Earned points expire this many days after they are earned.
    pub expire_days: i64,
    /// Member tiers (none by default).
    pub tiers: super::tiers::TierSettings,
}

impl Default for PointsSettings {
    fn default() -> Self {
        PointsSettings {
            points_per_yuan: 1,
            expire_days: 365,
            tiers: super::tiers::TierSettings::default(),
        }
    }
}

impl PointsSettings {
    pub fn check(&self) -> Result<(), PointsError> {
        if !(0..=1_000).contains(&self.points_per_yuan) {
            return Err(PointsError::Invalid {
                field: "points_per_yuan",
                reason: "must be 0–1000".into(),
            });
        }
        if !(1..=3_650).contains(&self.expire_days) {
            return Err(PointsError::Invalid {
                field: "expire_days",
                reason: "must be 1–3650".into(),
            });
        }
        self.tiers.check().map_err(|reason| PointsError::Invalid {
            field: "tiers",
            reason,
        })
    }

    /// Points for a payment of `fen`: whole yuan only.
    pub fn points_for(&self, fen: Fen) -> i64 {
        fen.max(Fen::ZERO).get() / 100 * self.points_per_yuan
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("customer {customer} has {balance} points, fewer than the {wanted} asked for")]
    Insufficient {
        customer: CustomerId,
        balance: i64,
        wanted: i64,
    },
    #[error("customer {0} is not a member")]
    NotMember(CustomerId),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for PointsError {
    fn refusal(&self) -> Refusal {
        match self {
            PointsError::Invalid { .. } => Refusal::Invalid,
            PointsError::Insufficient { .. } => Refusal::Conflict("insufficient_points"),
            PointsError::NotMember(_) => Refusal::NotFound("not_a_member"),
            PointsError::Db(_) => Refusal::Internal,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub delta: i64,
    pub kind: String,
    pub reason: String,
    #[sqlx(rename = "ref")]
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// What a change asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Points for a paid order, once per order.
    Earn { order_ref: String, paid_fen: Fen },
    /// Spend points (for a gift or a coupon).
    Redeem {
        points: i64,
        reference: Option<String>,
    },
    /// A correction by an operator, up or down.
    Adjust { points: i64 },
}

pub async fn settings(db: &Db, tenant: TenantId) -> Result<PointsSettings, DbError> {
    let row: Option<(String,)> = db
        .fetch_optional(
            &sql("SELECT settings FROM member_settings WHERE tenant_id = $1").bind(tenant),
        )
        .await?;
    Ok(row
        .and_then(|r| serde_json::from_str(&r.0).ok())
        .unwrap_or_default())
}

pub async fn save_settings(
    db: &Db,
    tenant: TenantId,
    s: &PointsSettings,
    now: i64,
) -> Result<(), PointsError> {
    s.check()?;
    db.execute(
        &sql(
            "INSERT INTO member_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(serde_json::to_string(s).unwrap_or_default())
        .bind(now),
    )
    .await?;
    Ok(())
}

async fn balance_in(tx: &mut Tx, tenant: TenantId, customer: CustomerId) -> Result<i64, DbError> {
    let (b,): (i64,) = tx
        .fetch_one(
            &sql("SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_entries WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(customer),
        )
        .await?;
    Ok(b)
}

pub async fn balance(db: &Db, tenant: TenantId, customer: CustomerId) -> Result<i64, DbError> {
    let (b,): (i64,) = db
        .fetch_one(
            &sql("SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_entries WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(customer),
        )
        .await?;
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    delta: i64,
    kind: &str,
    reason: &str,
    reference: Option<&str>,
    expires_at: Option<i64>,
    now: i64,
) -> Result<Entry, DbError> {
    let id = tx.reserve_ids("points", 1).await?;
    tx.fetch_one(
        &sql(
            "INSERT INTO points_entries (id, tenant_id, customer_id, delta, kind, reason, ref, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, delta, kind, reason, ref, expires_at, created_at",
        )
        .bind(id)
        .bind(tenant)
        .bind(customer)
        .bind(delta)
        .bind(kind)
        .bind(reason)
        .bind(reference)
        .bind(expires_at)
        .bind(now),
    )
    .await
}

/// Applies one change under the tenant lock, so two redemptions can never both spend the same
/// points. Returns the entry (`None`: an order that already earned) and the balance after.
pub async fn apply(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
    change: &Change,
    reason: &str,
    now: i64,
) -> Result<(Option<Entry>, i64), PointsError> {
    let s = settings(db, tenant).await?;
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let out = apply_in(&mut tx, &s, tenant, customer, change, reason, now).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`apply`] inside the caller's transaction, which holds the tenant lock (a gift redeemed for
/// points spends them in the same transaction that takes the gift's stock).
pub async fn apply_in(
    tx: &mut Tx,
    s: &PointsSettings,
    tenant: TenantId,
    customer: CustomerId,
    change: &Change,
    reason: &str,
    now: i64,
) -> Result<(Option<Entry>, i64), PointsError> {
    let member: Option<(i64, Option<String>)> = tx
        .fetch_optional(
            &sql("SELECT customer_id, tier FROM members WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(customer),
        )
        .await?;
    let Some((_, tier)) = member else {
        return Err(PointsError::NotMember(customer));
    };
    let entry = match change {
        Change::Earn {
            order_ref,
            paid_fen,
        } => {
            if order_ref.trim().is_empty() {
                return Err(PointsError::Invalid {
                    field: "order_ref",
                    reason: "is empty".into(),
                });
            }
            let done: Option<(i64,)> = tx
                .fetch_optional(
                    &sql("SELECT id FROM points_entries WHERE tenant_id = $1 AND kind = 'earn' AND ref = $2")
                        .bind(tenant)
                        .bind(order_ref.as_str()),
                )
                .await?;
            let points =
                s.points_for(*paid_fen) * super::tiers::multiplier(&s.tiers, tier.as_deref()) / 100;
            if done.is_some() || points == 0 {
                None
            } else {
                Some(
                    insert(
                        tx,
                        tenant,
                        customer,
                        points,
                        "earn",
                        reason,
                        Some(order_ref),
                        Some(now + s.expire_days * DAY_MS),
                        now,
                    )
                    .await?,
                )
            }
        }
        Change::Redeem { points, reference } => {
            if *points <= 0 {
                return Err(PointsError::Invalid {
                    field: "points",
                    reason: "must be positive".into(),
                });
            }
            // Expired points are gone before anything is spent.
            expire_in(tx, tenant, customer, now).await?;
            let balance = balance_in(tx, tenant, customer).await?;
            if balance < *points {
                return Err(PointsError::Insufficient {
                    customer,
                    balance,
                    wanted: *points,
                });
            }
            Some(
                insert(
                    tx,
                    tenant,
                    customer,
                    -points,
                    "redeem",
                    reason,
                    reference.as_deref(),
                    None,
                    now,
                )
                .await?,
            )
        }
        Change::Adjust { points } => {
            if *points == 0 {
                return Err(PointsError::Invalid {
                    field: "points",
                    reason: "must not be 0".into(),
                });
            }
            if reason.trim().is_empty() {
                return Err(PointsError::Invalid {
                    field: "reason",
                    reason: "an adjustment needs a reason".into(),
                });
            }
            expire_in(tx, tenant, customer, now).await?;
            let balance = balance_in(tx, tenant, customer).await?;
            // Taking points away may not go below zero; adding them always may (paying a debt).
            if *points < 0 && balance + points < 0 {
                return Err(PointsError::Insufficient {
                    customer,
                    balance,
                    wanted: -points,
                });
            }
            Some(
                insert(
                    tx, tenant, customer, *points, "adjust", reason, None, None, now,
                )
                .await?,
            )
        }
    };
    let after = balance_in(tx, tenant, customer).await?;
    Ok((entry, after))
}

/// Points that expired unspent by `now`. Replays the entries in order (delta, expiry):
/// credits are lots (earned points expire, adjustments do not), and every debit (spending,
/// negative adjustments, earlier expiries) takes from the lot that expires first.
fn unspent_expired(entries: &[(i64, Option<i64>)], now: i64) -> i64 {
    use std::collections::BTreeMap;
    let mut lots: BTreeMap<(i64, usize), i64> = BTreeMap::new();
    // What was taken beyond every lot (a refund after the points were spent): the next points
    // earned pay it first, so they cannot expire again.
    let mut debt = 0;
    for (n, (delta, expires)) in entries.iter().enumerate() {
        if *delta > 0 {
            let paid = debt.min(*delta);
            debt -= paid;
            if *delta > paid {
                lots.insert((expires.unwrap_or(i64::MAX), n), *delta - paid);
            }
            continue;
        }
        let mut owed = -delta;
        while owed > 0 {
            let Some(mut lot) = lots.first_entry() else {
                break;
            };
            let take = owed.min(*lot.get());
            *lot.get_mut() -= take;
            owed -= take;
            if *lot.get() == 0 {
                lot.remove();
            }
        }
        debt += owed;
    }
    lots.iter()
        .filter(|((expires, _), _)| *expires <= now)
        .map(|(_, left)| *left)
        .sum()
}

async fn expire_in(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    now: i64,
) -> Result<i64, DbError> {
    let rows: Vec<(i64, Option<i64>)> = tx
        .fetch_all(
            &sql(
                "SELECT delta, expires_at FROM points_entries WHERE tenant_id = $1 AND customer_id = $2 \
                 ORDER BY created_at, id",
            )
            .bind(tenant)
            .bind(customer),
        )
        .await?;
    let n = unspent_expired(&rows, now);
    if n > 0 {
        insert(
            tx,
            tenant,
            customer,
            -n,
            "expire",
            "到期 expired",
            None,
            None,
            now,
        )
        .await?;
    }
    Ok(n)
}

/// Members whose points are expired per transaction: the tenant lock and SQLite's writer are
/// held for one chunk at a time.
const EXPIRE_CHUNK: usize = 500;

/// Expires every member's unspent points that are past their date; returns points expired.
/// A chunk of members per transaction; each member's expiry reads what is left under the lock,
/// so a run cut short is finished by the next.
pub async fn expire_all(db: &Db, tenant: TenantId, now: i64) -> Result<i64, DbError> {
    let customers: Vec<(CustomerId,)> = db
        .fetch_all(
            &sql("SELECT DISTINCT customer_id FROM points_entries WHERE tenant_id = $1 AND kind = 'earn' AND expires_at <= $2")
                .bind(tenant)
                .bind(now),
        )
        .await?;
    let mut total = 0;
    for chunk in customers.chunks(EXPIRE_CHUNK) {
        let mut tx = db.begin().await?;
        tx.lock_tenant(tenant).await?;
        for &(c,) in chunk {
            total += expire_in(&mut tx, tenant, c, now).await?;
        }
        tx.commit().await?;
    }
    Ok(total)
}

/// An order of a member as the store has it now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberOrder {
    pub customer_id: CustomerId,
    pub channel: String,
    pub order_no: String,
    pub status: String,
    pub amount: Fen,
    pub refund_amount: Fen,
}

/// The members' orders among `keys` (channel, order number).
pub async fn member_orders(
    db: &Db,
    tenant: TenantId,
    keys: &[(String, String)],
) -> Result<Vec<MemberOrder>, DbError> {
    let mut by_channel: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for (c, n) in keys {
        by_channel.entry(c.as_str()).or_default().push(n.as_str());
    }
    let mut out = Vec::new();
    for (channel, nos) in by_channel {
        for chunk in nos.chunks(1_000) {
            let mut q = sql(format!(
                "SELECT o.customer_id, o.channel, o.order_no, o.status, o.amount, o.refund_amount FROM orders o \
                 JOIN members m ON m.tenant_id = o.tenant_id AND m.customer_id = o.customer_id \
                 WHERE o.tenant_id = $1 AND o.channel = $2 AND o.order_no IN ({})",
                crate::platform::db::list_placeholders(chunk.len(), 3)
            ))
            .bind(tenant)
            .bind(channel);
            for n in chunk {
                q.push_arg(*n);
            }
            out.extend(db.fetch_all::<MemberOrder>(&q).await?);
        }
    }
    Ok(out)
}

/// Points follow a member's orders: a paid order earns once (by its net amount); a refunded
/// order takes back what it earned, below zero if it was spent. Returns the members touched.
pub async fn follow_orders(
    db: &Db,
    tenant: TenantId,
    orders: &[MemberOrder],
    now: i64,
) -> Result<Vec<CustomerId>, PointsError> {
    let mut touched = Vec::new();
    for o in orders {
        let reference = format!("{}:{}", o.channel, o.order_no);
        use crate::know::orders::OrderStatus;
        match OrderStatus::parse(&o.status) {
            Some(s) if s.is_purchase() => {
                let (entry, _) = apply(
                    db,
                    tenant,
                    o.customer_id,
                    &Change::Earn {
                        order_ref: reference,
                        paid_fen: o.amount - o.refund_amount,
                    },
                    "消费积分 earned",
                    now,
                )
                .await?;
                if entry.is_some() {
                    touched.push(o.customer_id);
                }
            }
            // Refunded, or closed after payment (Tmall closes an order refunded in full): what
            // the order earned goes back (nothing happens when it earned nothing).
            Some(OrderStatus::Refunded | OrderStatus::Closed)
                if take_back(db, tenant, o.customer_id, &reference, now).await? =>
            {
                touched.push(o.customer_id);
            }
            _ => {}
        }
    }
    touched.sort_unstable();
    touched.dedup();
    Ok(touched)
}

/// Takes back an order's earned points once, all of them: points already spent (on a gift, a
/// coupon) leave the balance below zero, a debt that blocks spending and that the next points
/// earned pay first. Taking back only what is left would let a customer pay, spend the points,
/// refund and keep what they bought.
async fn take_back(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
    reference: &str,
    now: i64,
) -> Result<bool, PointsError> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let earned: Option<(i64, Option<i64>)> = tx
        .fetch_optional(
            &sql("SELECT delta, expires_at FROM points_entries WHERE tenant_id = $1 AND kind = 'earn' AND ref = $2")
                .bind(tenant)
                .bind(reference),
        )
        .await?;
    let done: Option<(i64,)> = tx
        .fetch_optional(
            &sql("SELECT id FROM points_entries WHERE tenant_id = $1 AND kind = 'reverse' AND ref = $2")
                .bind(tenant)
                .bind(reference),
        )
        .await?;
    let (Some((earned, expires_at)), None) = (earned, done) else {
        return Ok(false);
    };
    expire_in(&mut tx, tenant, customer, now).await?;
    // Points that were spent are all taken back (a debt if need be); points that already
    // expired are gone once, not again: for an order whose points are past their date, only
    // what is left of the balance.
    let back = if expires_at.is_some_and(|e| e <= now) {
        let balance = balance_in(&mut tx, tenant, customer).await?;
        earned.min(balance.max(0))
    } else {
        earned.max(0)
    };
    // Recorded even when it is zero, so a repeated refund does nothing.
    insert(
        &mut tx,
        tenant,
        customer,
        -back,
        "reverse",
        "退款扣回 refunded",
        Some(reference),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(back > 0)
}

/// Once a day at 03:30 China time (before the audience indexes rebuild at 04:00): expires every
/// tenant's unspent points that are past their date, then reviews tiers, downgrades included.
pub fn spawn_daily_expiry(db: Db) {
    tokio::spawn(async move {
        loop {
            let now = crate::platform::clock::now_ms();
            let china = now + 8 * 3_600_000;
            let today =
                china.div_euclid(DAY_MS) * DAY_MS - 8 * 3_600_000 + 3 * 3_600_000 + 1_800_000;
            let next = if today > now { today } else { today + DAY_MS };
            tokio::time::sleep(std::time::Duration::from_millis(
                u64::try_from(next - now).unwrap_or(0),
            ))
            .await;
            if db.is_closed() {
                return;
            }
            let tenants: Result<Vec<(TenantId,)>, DbError> = db
                .fetch_all(&sql(
                    "SELECT DISTINCT tenant_id FROM members ORDER BY tenant_id",
                ))
                .await;
            for (t,) in tenants.unwrap_or_default() {
                match expire_all(&db, t, crate::platform::clock::now_ms()).await {
                    Ok(n) if n > 0 => tracing::info!(tenant = %t, points = n, "points expired"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(tenant = %t, error = %e, "points expiry failed"),
                }
                match super::tiers::review(&db, t, None, true, crate::platform::clock::now_ms())
                    .await
                {
                    Ok(c) if !c.is_empty() => {
                        tracing::info!(tenant = %t, changes = c.len(), "tiers reviewed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(tenant = %t, error = %e, "tier review failed"),
                }
            }
        }
    });
}

pub async fn entries(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<Vec<Entry>, DbError> {
    db.fetch_all(
        &sql(
            "SELECT id, delta, kind, reason, ref, expires_at, created_at FROM points_entries \
             WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id DESC LIMIT 200",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_per_whole_yuan() {
        let s = PointsSettings::default();
        assert_eq!(s.points_for(Fen::new(29_999)), 299);
        assert_eq!(s.points_for(Fen::new(-5)), 0);
        let double = PointsSettings {
            points_per_yuan: 2,
            ..s
        };
        assert_eq!(double.points_for(Fen::new(1_000)), 20);
    }

    #[test]
    fn spending_uses_the_earliest_expiring_points_first() {
        let now = 1_000;
        // 100 earned (expired), 30 spent: 70 expire.
        assert_eq!(unspent_expired(&[(100, Some(500)), (-30, None)], now), 70);
        // Spent more than what expired, from a later lot too: nothing expires.
        assert_eq!(
            unspent_expired(&[(100, Some(500)), (100, Some(2_000)), (-130, None)], now),
            0
        );
        // An earlier expiry is a debit: replaying expires nothing more.
        assert_eq!(
            unspent_expired(&[(100, Some(500)), (-30, None), (-70, None)], now),
            0
        );
        // Spending before the points were earned came from a non-expiring adjustment, so the
        // later earned points still expire in full.
        assert_eq!(
            unspent_expired(&[(200, None), (-150, None), (100, Some(500))], now),
            100
        );
        // Not yet due: nothing expires.
        assert_eq!(unspent_expired(&[(100, Some(5_000))], now), 0);
        // A refund took back 100 points already spent (a debt of 100); of the 300 earned
        // next, 100 paid the debt, so 200 are left to expire, not 300.
        assert_eq!(
            unspent_expired(
                &[(100, None), (-100, None), (-100, None), (300, Some(500))],
                now
            ),
            200
        );
    }
}
