//! Making a coupon template and reading templates back.

use super::*;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};

pub async fn create_template(
    db: &Db,
    tenant: TenantId,
    t: &TemplateInput,
    now: i64,
) -> Result<Template, CouponError> {
    t.check()?;
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("coupon_template", 1).await?;
    let row = tx
        .fetch_one(
            &sql(format!(
                "INSERT INTO coupon_templates (id, tenant_id, name, kind, value, gift, threshold, starts_at, ends_at, \
                 valid_days, per_customer, total, issued, channels, stores, stackable, created_at, claim_via) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14, $15, $16, $17) RETURNING {TEMPLATE_COLS}"
            ))
            .bind(id)
            .bind(tenant)
            .bind(t.name.trim())
            .bind(t.kind.as_str())
            .bind(if t.kind == Kind::FreeGift { 0 } else { t.value })
            .bind(t.gift.clone())
            .bind(t.threshold)
            .bind(t.starts_at)
            .bind(t.ends_at)
            .bind(t.valid_days)
            .bind(t.per_customer)
            .bind(t.total)
            .bind(list_text(&t.channels))
            .bind(list_text(&t.stores))
            .bind(t.stackable)
            .bind(now)
            .bind(t.claim_via.as_str()),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn template(db: &Db, tenant: TenantId, id: i64) -> Result<Template, CouponError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(CouponError::NoTemplate(id))
}

pub async fn templates(db: &Db, tenant: TenantId) -> Result<Vec<Template>, DbError> {
    db.fetch_all(
        &sql(format!(
            "SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 ORDER BY id DESC"
        ))
        .bind(tenant),
    )
    .await
}

/// Changes where a template may be claimed (a template made before claim channels existed is
/// `api` until the brand says otherwise). Coupons already granted are not touched.
pub async fn set_claim_via(
    db: &Db,
    tenant: TenantId,
    id: i64,
    via: ClaimVia,
) -> Result<Template, CouponError> {
    let n = db
        .execute(
            &sql("UPDATE coupon_templates SET claim_via = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .bind(via.as_str()),
        )
        .await?;
    if n == 0 {
        return Err(CouponError::NoTemplate(id));
    }
    template(db, tenant, id).await
}

/// The most coupons one change may add to a template.
pub const MOST_ADDED: i64 = 1_000_000;

/// Stops a template issuing (停止发放) from `now`: no claim, issue or card hands out another of
/// it. Its own window and the coupons already granted keep their validity and are redeemed as
/// before. Stopping a stopped template changes nothing.
pub async fn stop_issuing(
    db: &Db,
    tenant: TenantId,
    id: i64,
    now: i64,
) -> Result<Template, CouponError> {
    db.execute(
        &sql("UPDATE coupon_templates SET stopped_at = $3 WHERE tenant_id = $1 AND id = $2 AND stopped_at IS NULL")
            .bind(tenant)
            .bind(id)
            .bind(now),
    )
    .await?;
    template(db, tenant, id).await
}

/// Adds `more` coupons to a template's total (追加数量), for a template whose coupons ran out
/// sooner than planned.
pub async fn add_to_total(
    db: &Db,
    tenant: TenantId,
    id: i64,
    more: i64,
) -> Result<Template, CouponError> {
    if !(1..=MOST_ADDED).contains(&more) {
        return Err(CouponError::Invalid {
            field: "add",
            reason: format!("{more} is not between 1 and {MOST_ADDED}"),
        });
    }
    let n = db
        .execute(
            &sql("UPDATE coupon_templates SET total = total + $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .bind(more),
        )
        .await?;
    if n == 0 {
        return Err(CouponError::NoTemplate(id));
    }
    template(db, tenant, id).await
}
