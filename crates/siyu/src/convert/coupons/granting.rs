//! Granting coupons within a template's total, per-customer limit and dates, each with a
//! readable code.

use rand::Rng;
use serde::Serialize;

use super::*;
use crate::platform::db::{Db, DbError, Tx, sql};

pub(super) fn new_code() -> String {
    let mut r = rand::rng();
    (0..10)
        .map(|_| char::from(CODE_ALPHABET[r.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// What granting to a list did.
#[derive(Debug, Default, Serialize)]
pub struct Grant {
    pub granted: Vec<Coupon>,
    /// (customer, why not)
    pub refused: Vec<(i64, String)>,
}

/// Grants the template to each customer (a claim is a grant of one), within the template's
/// dates, its total and its per-customer limit. Customers past a limit are refused by name.
pub async fn grant(
    db: &Db,
    tenant: i64,
    template_id: i64,
    customers: &[i64],
    source: &str,
    now: i64,
) -> Result<Grant, CouponError> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let out = grant_in(&mut tx, tenant, template_id, customers, source, now).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`grant`] inside the caller's transaction, which holds the tenant lock.
pub async fn grant_in(
    tx: &mut Tx,
    tenant: i64,
    template_id: i64,
    customers: &[i64],
    source: &str,
    now: i64,
) -> Result<Grant, CouponError> {
    let t: Template = tx
        .fetch_optional(
            &sql(format!(
                "SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(template_id),
        )
        .await?
        .ok_or(CouponError::NoTemplate(template_id))?;
    if t.starts_at.is_some_and(|s| now < s) {
        return Err(CouponError::Refused(format!("{} has not started", t.name)));
    }
    if t.ends_at.is_some_and(|e| now >= e) {
        return Err(CouponError::Refused(format!("{} has ended", t.name)));
    }
    let mut out = Grant::default();
    let mut issued = t.issued;
    for &c in customers {
        if issued >= t.total {
            out.refused
                .push((c, "all coupons of this template are gone".into()));
            continue;
        }
        let (held,): (i64,) = tx
            .fetch_one(
                &sql("SELECT count(*) FROM coupons WHERE tenant_id = $1 AND template_id = $2 AND customer_id = $3")
                    .bind(tenant)
                    .bind(t.id)
                    .bind(c),
            )
            .await?;
        if held >= t.per_customer {
            out.refused.push((
                c,
                format!("already holds {held} (at most {} each)", t.per_customer),
            ));
            continue;
        }
        let (from, until) = match (t.valid_days, t.ends_at) {
            (Some(d), _) => (now, now + d * DAY_MS),
            (None, Some(e)) => (t.starts_at.unwrap_or(now), e),
            (None, None) => (now, now),
        };
        let coupon = insert_coupon(tx, tenant, t.id, c, source, from, until, now).await?;
        out.granted.push(coupon);
        issued += 1;
    }
    // Counted relatively and guarded, so the total holds even for a caller that forgot the
    // tenant lock: the transaction is refused whole rather than over-issue.
    let granted = out.granted.len() as i64;
    if granted > 0 {
        let counted = tx
            .execute(
                &sql("UPDATE coupon_templates SET issued = issued + $1 WHERE tenant_id = $2 AND id = $3 AND issued + $1 <= total")
                    .bind(granted)
                    .bind(tenant)
                    .bind(t.id),
            )
            .await?;
        if counted == 0 {
            return Err(CouponError::Refused(
                "all coupons of this template are gone".into(),
            ));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_coupon(
    tx: &mut Tx,
    tenant: i64,
    template: i64,
    customer: i64,
    source: &str,
    from: i64,
    until: i64,
    now: i64,
) -> Result<Coupon, DbError> {
    let id = tx.reserve_ids("coupon", 1).await?;
    // A random code could repeat one already given (1 in 31^10 per pair): try another.
    loop {
        let code = new_code();
        let taken: Option<(i64,)> = tx
            .fetch_optional(
                &sql("SELECT id FROM coupons WHERE tenant_id = $1 AND code = $2")
                    .bind(tenant)
                    .bind(code.as_str()),
            )
            .await?;
        if taken.is_some() {
            continue;
        }
        return tx
            .fetch_one(
                &sql(format!(
                    "INSERT INTO coupons (id, tenant_id, template_id, customer_id, code, status, source, granted_at, valid_from, valid_until) \
                     VALUES ($1, $2, $3, $4, $5, 'claimed', $6, $7, $8, $9) RETURNING {COUPON_COLS}"
                ))
                .bind(id)
                .bind(tenant)
                .bind(template)
                .bind(customer)
                .bind(code)
                .bind(source)
                .bind(now)
                .bind(from)
                .bind(until),
            )
            .await;
    }
}
