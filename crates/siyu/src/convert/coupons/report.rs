//! What a template's coupons did, and a customer's coupons.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use serde::Serialize;

use super::*;
use crate::platform::db::{Db, DbError, sql};

/// Issued, redeemed, expired unused, and the GMV of the orders that used them.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub template_id: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub unused: i64,
    pub order_gmv: Fen,
    pub discount: Fen,
}

pub async fn report(
    db: &Db,
    tenant: TenantId,
    template_id: i64,
    now: i64,
) -> Result<Report, CouponError> {
    let t = template(db, tenant, template_id).await?;
    let (redeemed, expired, unused, gmv, off): (i64, i64, i64, Fen, Fen) = db
        .fetch_one(
            &sql(
                "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'redeemed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status <> 'redeemed' AND valid_until <= $3 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status = 'claimed' AND valid_until > $3 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status = 'redeemed' THEN order_amount ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status = 'redeemed' THEN discount ELSE 0 END), 0) AS BIGINT) \
                 FROM coupons WHERE tenant_id = $1 AND template_id = $2",
            )
            .bind(tenant)
            .bind(template_id)
            .bind(now),
        )
        .await?;
    Ok(Report {
        template_id,
        issued: t.issued,
        redeemed,
        expired,
        unused,
        order_gmv: gmv,
        discount: off,
    })
}

pub async fn coupons_of(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<Vec<Coupon>, DbError> {
    db.fetch_all(
        &sql(format!(
            "SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 200"
        ))
        .bind(tenant)
        .bind(customer),
    )
    .await
}

/// One coupon of the tenant by its id.
pub async fn coupon(db: &Db, tenant: TenantId, id: i64) -> Result<Coupon, CouponError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or_else(|| CouponError::NoCoupon(format!("#{id}")))
}
