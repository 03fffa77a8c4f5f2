//! Gifts for points (积分兑换): goods or a coupon, each with a points price, a stock and a
//! per-customer limit. One transaction under the tenant lock takes a unit of stock
//! (`redeemed + 1 <= stock`), spends the points (the ledger refuses a short balance) and, for a
//! coupon, grants it, so a redemption happens whole or not at all, and never past the stock.

use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::{Deserialize, Serialize};

use super::coupons::{self, CouponError};
use super::points::{self, Change, PointsError};
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiftKind {
    /// Something shipped or handed over in store.
    Goods,
    /// A coupon of the given template.
    Coupon,
}

impl GiftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GiftKind::Goods => "goods",
            GiftKind::Coupon => "coupon",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftInput {
    pub name: String,
    pub kind: GiftKind,
    #[serde(default)]
    pub template_id: Option<i64>,
    pub points: i64,
    pub stock: i64,
    #[serde(default = "one")]
    pub per_customer: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Gift {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub template_id: Option<i64>,
    pub points: i64,
    pub stock: i64,
    pub redeemed: i64,
    pub per_customer: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Redemption {
    pub id: i64,
    pub gift_id: i64,
    pub customer_id: CustomerId,
    pub points: i64,
    pub coupon_code: Option<String>,
    pub created_at: i64,
}

const GIFT_COLS: &str =
    "id, name, kind, template_id, points, stock, redeemed, per_customer, created_at";

#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("gift {0} not found")]
    NoGift(i64),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error(transparent)]
    Coupon(#[from] CouponError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for GiftError {
    fn refusal(&self) -> Refusal {
        match self {
            GiftError::Invalid { .. } => Refusal::Invalid,
            GiftError::NoGift(_) => Refusal::NotFound("not_found"),
            GiftError::Refused(_) => Refusal::Conflict("refused"),
            GiftError::Points(p) => p.refusal(),
            GiftError::Coupon(c) => c.refusal(),
            GiftError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GiftError {
    GiftError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl GiftInput {
    pub fn check(&self) -> Result<(), GiftError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        match (self.kind, self.template_id) {
            (GiftKind::Coupon, None) => {
                return Err(invalid(
                    "template_id",
                    "a coupon gift names its coupon template",
                ));
            }
            (GiftKind::Goods, Some(_)) => {
                return Err(invalid("template_id", "only a coupon gift has a template"));
            }
            _ => {}
        }
        if self.points < 1 {
            return Err(invalid("points", "must be ≥ 1"));
        }
        if !(1..=10_000_000).contains(&self.stock) {
            return Err(invalid("stock", "must be between 1 and 10,000,000"));
        }
        if self.per_customer < 1 {
            return Err(invalid("per_customer", "must be ≥ 1"));
        }
        Ok(())
    }
}

pub async fn create(db: &Db, tenant: TenantId, g: &GiftInput, now: i64) -> Result<Gift, GiftError> {
    g.check()?;
    if let Some(t) = g.template_id {
        // A gift grants only what the brand set up as gifts for points (`claim_via: points`).
        let template = coupons::template(db, tenant, t).await?;
        if template.claim_via != coupons::ClaimVia::Points.as_str() {
            return Err(invalid(
                "template_id",
                format!(
                    "coupon template {t} is for {}, not gifts for points: make one with claim_via points",
                    template.claim_via
                ),
            ));
        }
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("gift", 1).await?;
    tx.execute(
        &sql("INSERT INTO gifts (id, tenant_id, name, kind, template_id, points, stock, redeemed, per_customer, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9)")
            .bind(id)
            .bind(tenant)
            .bind(g.name.trim())
            .bind(g.kind.as_str())
            .bind(g.template_id)
            .bind(g.points)
            .bind(g.stock)
            .bind(g.per_customer)
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    get(db, tenant, id).await
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Gift, GiftError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {GIFT_COLS} FROM gifts WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(GiftError::NoGift(id))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<Gift>, GiftError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {GIFT_COLS} FROM gifts WHERE tenant_id = $1 ORDER BY id DESC"
            ))
            .bind(tenant),
        )
        .await?)
}

/// A member spends points on a gift.
pub async fn redeem(
    db: &Db,
    tenant: TenantId,
    gift_id: i64,
    customer: CustomerId,
    now: i64,
) -> Result<Redemption, GiftError> {
    let settings = points::settings(db, tenant).await?;
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let g: Gift = tx
        .fetch_optional(
            &sql(format!(
                "SELECT {GIFT_COLS} FROM gifts WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(gift_id),
        )
        .await?
        .ok_or(GiftError::NoGift(gift_id))?;
    let (held,): (i64,) = tx
        .fetch_one(
            &sql("SELECT COUNT(*) FROM gift_redemptions WHERE tenant_id = $1 AND gift_id = $2 AND customer_id = $3")
                .bind(tenant)
                .bind(gift_id)
                .bind(customer),
        )
        .await?;
    if held >= g.per_customer {
        return Err(GiftError::Refused(format!(
            "limit reached: at most {} per customer",
            g.per_customer
        )));
    }
    let taken = tx
        .execute(
            &sql("UPDATE gifts SET redeemed = redeemed + 1 WHERE tenant_id = $1 AND id = $2 AND redeemed + 1 <= stock")
                .bind(tenant)
                .bind(gift_id),
        )
        .await?;
    if taken == 0 {
        return Err(GiftError::Refused("out of stock".into()));
    }
    let id = tx.reserve_ids("gift_redemption", 1).await?;
    points::apply_in(
        &mut tx,
        &settings,
        tenant,
        customer,
        &Change::Redeem {
            points: g.points,
            reference: Some(format!("gift:{id}")),
        },
        &format!("兑换 {}", g.name),
        now,
    )
    .await?;
    let coupon_code = match g.template_id {
        Some(t) => {
            let grant = coupons::grant_in(&mut tx, tenant, t, &[customer], "points", now).await?;
            match (
                grant.granted.into_iter().next(),
                grant.refused.into_iter().next(),
            ) {
                (Some(c), _) => Some(c.code),
                (None, Some((_, why))) => return Err(GiftError::Refused(why)),
                (None, None) => return Err(GiftError::Refused("no coupon was granted".into())),
            }
        }
        None => None,
    };
    tx.execute(
        &sql("INSERT INTO gift_redemptions (id, tenant_id, gift_id, customer_id, points, coupon_code, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(tenant)
            .bind(gift_id)
            .bind(customer)
            .bind(g.points)
            .bind(coupon_code.clone())
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(Redemption {
        id,
        gift_id,
        customer_id: customer,
        points: g.points,
        coupon_code,
        created_at: now,
    })
}
