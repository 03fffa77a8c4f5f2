//! Granting coupons within a template's total, per-customer limit and dates, each with a
//! readable code.

use crate::know::CustomerId;
use crate::platform::TenantId;
use rand::Rng;
use serde::Serialize;

use super::*;
use std::collections::{HashMap, HashSet};

use crate::platform::db::{Db, DbError, Tx, Value, list_placeholders, sql, values_placeholders};

/// Customers granted per transaction by [`grant`]: the tenant lock and SQLite's writer are held
/// for one chunk at a time.
const GRANT_CHUNK: usize = 1_000;

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
    pub refused: Vec<(CustomerId, String)>,
}

/// Grants the template to each customer (a claim is a grant of one), within the template's
/// dates, its total and its per-customer limit. Customers past a limit are refused by name.
///
/// A long list is granted [`GRANT_CHUNK`] customers per transaction. A chunk refused whole (the
/// template ended meanwhile) refuses its customers by name and the chunks before it stand; a
/// store error stops the grant with the chunks before it granted, and granting the list again
/// gives only what the per-customer limit still allows.
pub async fn grant(
    db: &Db,
    tenant: TenantId,
    template_id: i64,
    customers: &[CustomerId],
    source: &str,
    now: i64,
) -> Result<Grant, CouponError> {
    let mut out = Grant::default();
    for (i, chunk) in customers.chunks(GRANT_CHUNK).enumerate() {
        let mut tx = db.begin().await?;
        tx.lock_tenant(tenant).await?;
        match grant_in(&mut tx, tenant, template_id, chunk, source, now).await {
            Ok(g) => {
                tx.commit().await?;
                out.granted.extend(g.granted);
                out.refused.extend(g.refused);
            }
            Err(CouponError::Refused(why)) if i > 0 => {
                out.refused.extend(chunk.iter().map(|&c| (c, why.clone())));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// [`grant`] inside the caller's transaction, which holds the tenant lock.
pub async fn grant_in(
    tx: &mut Tx,
    tenant: TenantId,
    template_id: i64,
    customers: &[CustomerId],
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
    if t.stopped_at.is_some_and(|s| now >= s) {
        return Err(CouponError::Refused(format!(
            "{} has stopped issuing",
            t.name
        )));
    }
    let mut out = Grant::default();
    let mut held = held_by(tx, tenant, t.id, customers).await?;
    let mut issued = t.issued;
    let mut winners = Vec::new();
    for &c in customers {
        if issued >= t.total {
            out.refused
                .push((c, "all coupons of this template are gone".into()));
            continue;
        }
        // Counted as the list goes: a customer listed twice takes two while the limit allows.
        let n = held.entry(c).or_insert(0);
        if *n >= t.per_customer {
            out.refused.push((
                c,
                format!("already holds {n} (at most {} each)", t.per_customer),
            ));
            continue;
        }
        *n += 1;
        winners.push(c);
        issued += 1;
    }
    let (from, until) = match (t.valid_days, t.ends_at) {
        (Some(d), _) => (now, now + d * DAY_MS),
        (None, Some(e)) => (t.starts_at.unwrap_or(now), e),
        (None, None) => (now, now),
    };
    out.granted = insert_coupons(tx, tenant, t.id, &winners, source, (from, until), now).await?;
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

/// How many coupons of the template each listed customer holds (absent: none).
async fn held_by(
    tx: &mut Tx,
    tenant: TenantId,
    template: i64,
    customers: &[CustomerId],
) -> Result<HashMap<CustomerId, i64>, DbError> {
    let mut distinct = customers.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut held = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(5_000) {
        let mut q = sql(format!(
            "SELECT customer_id, count(*) FROM coupons WHERE tenant_id = $1 AND template_id = $2 \
             AND customer_id IN ({}) GROUP BY customer_id",
            list_placeholders(chunk.len(), 3)
        ))
        .bind(tenant)
        .bind(template);
        for c in chunk {
            q.push_arg(*c);
        }
        held.extend(tx.fetch_all::<(CustomerId, i64)>(&q).await?);
    }
    Ok(held)
}

/// One coupon for each of `customers` (in that order), each with a code no coupon of the tenant
/// has: codes are drawn for the whole list, checked in one lookup, and only the few taken drawn
/// again.
async fn insert_coupons(
    tx: &mut Tx,
    tenant: TenantId,
    template: i64,
    customers: &[CustomerId],
    source: &str,
    (from, until): (i64, i64),
    now: i64,
) -> Result<Vec<Coupon>, DbError> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let mut codes: Vec<String> = Vec::with_capacity(customers.len());
    let mut drawn: HashSet<String> = HashSet::with_capacity(customers.len());
    while codes.len() < customers.len() {
        let fresh: Vec<String> = (codes.len()..customers.len())
            .map(|_| new_code())
            .filter(|c| drawn.insert(c.clone()))
            .collect();
        let taken: HashSet<String> = tx
            .fetch_in::<(String,)>(
                "SELECT code FROM coupons WHERE tenant_id = $1 AND code",
                &[tenant.into()],
                fresh.iter().map(|c| Value::from(c.as_str())).collect(),
            )
            .await?
            .into_iter()
            .map(|(c,)| c)
            .collect();
        codes.extend(fresh.into_iter().filter(|c| !taken.contains(c)));
    }
    let first = tx.reserve_ids("coupon", customers.len() as i64).await?;
    let mut out = Vec::with_capacity(customers.len());
    const COLS: usize = 10;
    let rows: Vec<(i64, (&CustomerId, String))> =
        (first..).zip(customers.iter().zip(codes)).collect();
    for batch in rows.chunks(crate::platform::db::MAX_BINDS / COLS) {
        let mut q = sql(format!(
            "INSERT INTO coupons (id, tenant_id, template_id, customer_id, code, status, source, granted_at, valid_from, valid_until) \
             VALUES {} RETURNING {COUPON_COLS}",
            values_placeholders(batch.len(), COLS, 1)
        ));
        for (id, (customer, code)) in batch {
            q.push_arg(*id);
            q.push_arg(tenant);
            q.push_arg(template);
            q.push_arg(**customer);
            q.push_arg(code.clone());
            q.push_arg(CouponStatus::Claimed);
            q.push_arg(source);
            q.push_arg(now);
            q.push_arg(from);
            q.push_arg(until);
        }
        out.extend(tx.fetch_all::<Coupon>(&q).await?);
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}
