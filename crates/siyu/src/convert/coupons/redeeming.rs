//! Using a coupon on an order (threshold, channel, store, stacking on what is left) and giving
//! it back when the order is refunded.

use crate::platform::Fen;
use crate::platform::TenantId;
use serde::Deserialize;

use super::*;
use crate::platform::db::{Db, sql};

/// The order a coupon is used on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseOn {
    pub code: String,
    pub order_ref: String,
    /// The order's amount before the coupon, fen.
    pub amount: Fen,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub store_id: Option<String>,
}

/// The money a template takes off an order of `amount` fen.
/// `value` is fen for an amount off and a percentage for a percent off.
pub fn discount(kind: Kind, value: i64, amount: Fen) -> Fen {
    let amount = amount.get();
    Fen::new(match kind {
        Kind::AmountOff => value.min(amount).max(0),
        // In i128: a large amount times a percentage must not wrap.
        Kind::PercentOff => (i128::from(amount.max(0)) * i128::from(value) / 100) as i64,
        Kind::FreeGift => 0,
    })
}

/// A coupon already redeemed on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    pub discount: Fen,
    /// The order amount given with it.
    pub amount: Fen,
    pub stackable: bool,
}

/// The discount of one more coupon on an order of `amount` fen that already carries `prior`:
/// taken from what the others left, never below zero; refused when either side does not
/// stack, when the order's amount differs from the one given before, or when nothing is left.
pub fn stacked_discount(
    prior: &[Prior],
    amount: Fen,
    kind: Kind,
    value: i64,
    stackable: bool,
) -> Result<Fen, String> {
    if !prior.is_empty() {
        if !stackable || prior.iter().any(|p| !p.stackable) {
            return Err("already carries a coupon, and one of them does not stack".into());
        }
        if prior.iter().any(|p| p.amount != amount) {
            return Err("the amount differs from the one given with its first coupon".into());
        }
    }
    let used: Fen = prior.iter().map(|p| p.discount.max(Fen::ZERO)).sum();
    let left = (amount - used).max(Fen::ZERO);
    if left == Fen::ZERO && kind != Kind::FreeGift && !prior.is_empty() {
        return Err("nothing is left on the order to take off".into());
    }
    Ok(discount(kind, value, left).clamp(Fen::ZERO, left))
}

pub(super) fn allowed(list: Option<&str>, v: Option<&str>) -> bool {
    match list {
        None => true,
        Some(l) => v.is_some_and(|v| l.split(',').any(|x| x == v)),
    }
}

/// Redeems a coupon on an order, exactly once. Returns the coupon as redeemed.
pub async fn redeem(
    db: &Db,
    tenant: TenantId,
    u: &UseOn,
    by: &str,
    now: i64,
) -> Result<Coupon, CouponError> {
    if u.order_ref.trim().is_empty() {
        return Err(invalid("order_ref", "is empty"));
    }
    if u.amount < Fen::ZERO {
        return Err(invalid("amount", "must not be negative"));
    }
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let c: Coupon = tx
        .fetch_optional(
            &sql(format!(
                "SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND code = $2"
            ))
            .bind(tenant)
            .bind(u.code.trim().to_uppercase()),
        )
        .await?
        .ok_or_else(|| CouponError::NoCoupon(u.code.clone()))?;
    if c.status != CouponStatus::Claimed {
        return Err(CouponError::Refused(format!(
            "coupon {} was redeemed already (order {})",
            c.code,
            c.order_ref.as_deref().unwrap_or("-")
        )));
    }
    if now < c.valid_from || now >= c.valid_until {
        return Err(CouponError::Refused(format!(
            "coupon {} is not valid now",
            c.code
        )));
    }
    let t: Template = tx
        .fetch_one(
            &sql(format!(
                "SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(c.template_id),
        )
        .await?;
    if u.amount < t.threshold {
        return Err(CouponError::Refused(format!(
            "the order ({} fen) is below the coupon's threshold ({} fen)",
            u.amount, t.threshold
        )));
    }
    if !allowed(t.channels.as_deref(), u.channel.as_deref()) {
        return Err(CouponError::Refused(format!(
            "not usable in channel {}",
            u.channel.as_deref().unwrap_or("-")
        )));
    }
    if !allowed(t.stores.as_deref(), u.store_id.as_deref()) {
        return Err(CouponError::Refused(format!(
            "not usable in store {}",
            u.store_id.as_deref().unwrap_or("-")
        )));
    }
    // Coupons already on this order: each discount applies to what the ones before left, and
    // a coupon that does not stack is alone.
    let before: Vec<(Fen, Fen, bool)> = tx
        .fetch_all(
            &sql("SELECT c.discount, c.order_amount, CASE WHEN t.stackable = 1 THEN TRUE ELSE FALSE END \
                  FROM coupons c JOIN coupon_templates t ON t.tenant_id = c.tenant_id AND t.id = c.template_id \
                  WHERE c.tenant_id = $1 AND c.order_ref = $2 AND c.status = 'redeemed'")
                .bind(tenant)
                .bind(u.order_ref.as_str()),
        )
        .await?;
    let prior: Vec<Prior> = before
        .into_iter()
        .map(|(discount, amount, stackable)| Prior {
            discount,
            amount,
            stackable,
        })
        .collect();
    let kind = Kind::parse(&t.kind).unwrap_or(Kind::FreeGift);
    let off = stacked_discount(&prior, u.amount, kind, t.value, t.stackable)
        .map_err(|why| CouponError::Refused(format!("order {}: {why}", u.order_ref)))?;
    let row: Coupon = tx
        .fetch_one(
            &sql(format!(
                "UPDATE coupons SET status = 'redeemed', redeemed_at = $1, order_ref = $2, order_amount = $3, discount = $4, \
                 channel = $5, store_id = $6, redeemed_by = $9 WHERE tenant_id = $7 AND id = $8 AND status = 'claimed' RETURNING {COUPON_COLS}"
            ))
            .bind(now)
            .bind(u.order_ref.as_str())
            .bind(u.amount)
            .bind(off)
            .bind(u.channel.clone())
            .bind(u.store_id.clone())
            .bind(tenant)
            .bind(c.id)
            .bind(by),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// An order was refunded: its coupons come back while they are still valid.
pub async fn refund_order(
    db: &Db,
    tenant: TenantId,
    order_ref: &str,
    now: i64,
) -> Result<(u64, u64), CouponError> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let back = tx
        .execute(
            &sql(
                "UPDATE coupons SET status = 'claimed', redeemed_at = NULL, order_ref = NULL, order_amount = NULL, \
                 discount = NULL, channel = NULL, store_id = NULL \
                 WHERE tenant_id = $1 AND order_ref = $2 AND status = 'redeemed' AND valid_until > $3",
            )
            .bind(tenant)
            .bind(order_ref)
            .bind(now),
        )
        .await?;
    let lapsed = tx
        .execute(
            &sql("UPDATE coupons SET status = 'refunded' WHERE tenant_id = $1 AND order_ref = $2 AND status = 'redeemed'")
                .bind(tenant)
                .bind(order_ref),
        )
        .await?;
    tx.commit().await?;
    Ok((back, lapsed))
}
