//! Coupons (优惠券): templates, and coupons granted to customers (claimed by them, or issued by
//! the brand to a list or a segment snapshot), redeemed online or in store exactly once.
//!
//! Every grant and every redemption runs under the tenant's write lock, so a template's total
//! and per-customer limits hold however many requests arrive at once, and a code is redeemed
//! at most once.

use crate::platform::refusal::{Refusal, Refuse};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::platform::db::{Db, DbError, Tx, sql};

const DAY_MS: i64 = 86_400_000;
/// Letters and digits a guide can read aloud and type without confusing (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `value` fen off.
    AmountOff,
    /// `value` percent off (1–99).
    PercentOff,
    /// A gift (`gift`), no money off.
    FreeGift,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AmountOff => "amount_off",
            Kind::PercentOff => "percent_off",
            Kind::FreeGift => "free_gift",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::AmountOff, Kind::PercentOff, Kind::FreeGift]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A template as a brand writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub value: i64,
    #[serde(default)]
    pub gift: Option<String>,
    /// Minimum order amount in fen (满 X).
    #[serde(default)]
    pub threshold: i64,
    /// Fixed validity (UTC ms) …
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// … or valid for this many days after it is granted.
    #[serde(default)]
    pub valid_days: Option<i64>,
    #[serde(default = "one")]
    pub per_customer: i64,
    pub total: i64,
    /// Channels and stores where it may be used; empty: everywhere.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub stackable: bool,
    /// Where it may be claimed; a customer's own page claims only `h5` templates.
    #[serde(default)]
    pub claim_via: ClaimVia,
}

/// Where a template may be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimVia {
    /// On a customer's own page (`/h5/coupons/{id}`).
    H5,
    /// With a package card.
    Card,
    /// As a gift for points.
    Points,
    /// By the brand's systems only (claims and issues through the API).
    #[default]
    Api,
}

impl ClaimVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimVia::H5 => "h5",
            ClaimVia::Card => "card",
            ClaimVia::Points => "points",
            ClaimVia::Api => "api",
        }
    }
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub value: i64,
    pub gift: Option<String>,
    pub threshold: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub valid_days: Option<i64>,
    pub per_customer: i64,
    pub total: i64,
    pub issued: i64,
    pub channels: Option<String>,
    pub stores: Option<String>,
    pub stackable: bool,
    pub created_at: i64,
    /// `h5`, `card`, `points` or `api` ([`ClaimVia`]).
    pub claim_via: String,
}

impl Template {
    /// Whether a customer may claim it from their own page.
    pub fn offered_on_h5(&self) -> bool {
        self.claim_via == ClaimVia::H5.as_str()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Coupon {
    pub id: i64,
    pub template_id: i64,
    pub customer_id: i64,
    pub code: String,
    pub status: String,
    pub source: String,
    pub granted_at: i64,
    pub valid_from: i64,
    pub valid_until: i64,
    pub redeemed_at: Option<i64>,
    pub order_ref: Option<String>,
    pub order_amount: Option<i64>,
    pub discount: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CouponError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("template {0} not found")]
    NoTemplate(i64),
    #[error("coupon {0:?} not found")]
    NoCoupon(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for CouponError {
    fn refusal(&self) -> Refusal {
        match self {
            CouponError::Invalid { .. } => Refusal::Invalid,
            CouponError::NoTemplate(_) | CouponError::NoCoupon(_) => Refusal::NotFound("not_found"),
            CouponError::Refused(_) => Refusal::Conflict("refused"),
            CouponError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CouponError {
    CouponError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl TemplateInput {
    /// Names the first field that is wrong.
    pub fn check(&self) -> Result<(), CouponError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(invalid("name", "must be 1–60 characters"));
        }
        match self.kind {
            Kind::AmountOff if self.value <= 0 => {
                return Err(invalid("value", "an amount off must be positive (fen)"));
            }
            Kind::PercentOff if !(1..=99).contains(&self.value) => {
                return Err(invalid("value", "a percentage off must be 1–99"));
            }
            Kind::FreeGift if self.gift.as_deref().is_none_or(|g| g.trim().is_empty()) => {
                return Err(invalid("gift", "a gift coupon names its gift"));
            }
            _ => {}
        }
        if self.threshold < 0 {
            return Err(invalid("threshold", "must not be negative"));
        }
        match (self.starts_at, self.ends_at, self.valid_days) {
            (_, Some(_), Some(_)) => {
                return Err(invalid(
                    "valid_days",
                    "give ends_at or valid_days, not both",
                ));
            }
            (_, None, None) => return Err(invalid("ends_at", "give ends_at or valid_days")),
            (Some(s), Some(e), None) if s >= e => {
                return Err(invalid("ends_at", "must be after starts_at"));
            }
            (_, None, Some(d)) if !(1..=3_650).contains(&d) => {
                return Err(invalid("valid_days", "must be 1–3650"));
            }
            _ => {}
        }
        if self.per_customer < 1 {
            return Err(invalid("per_customer", "must be at least 1"));
        }
        if self.total < 1 {
            return Err(invalid("total", "must be at least 1"));
        }
        Ok(())
    }
}

const TEMPLATE_COLS: &str = "id, name, kind, value, gift, threshold, starts_at, ends_at, valid_days, per_customer, \
     total, issued, channels, stores, CASE WHEN stackable = 1 THEN TRUE ELSE FALSE END AS stackable, created_at, claim_via";
const COUPON_COLS: &str = "id, template_id, customer_id, code, status, source, granted_at, valid_from, valid_until, \
     redeemed_at, order_ref, order_amount, discount";

fn list_text(v: &[String]) -> Option<String> {
    let v: Vec<&str> = v
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

pub async fn create_template(
    db: &Db,
    tenant: i64,
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

pub async fn template(db: &Db, tenant: i64, id: i64) -> Result<Template, CouponError> {
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

pub async fn templates(db: &Db, tenant: i64) -> Result<Vec<Template>, DbError> {
    db.fetch_all(
        &sql(format!(
            "SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 ORDER BY id DESC"
        ))
        .bind(tenant),
    )
    .await
}

fn new_code() -> String {
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
async fn insert_coupon(
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

/// The order a coupon is used on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseOn {
    pub code: String,
    pub order_ref: String,
    /// The order's amount before the coupon, fen.
    pub amount: i64,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub store_id: Option<String>,
}

/// The money a template takes off an order of `amount` fen.
pub fn discount(kind: Kind, value: i64, amount: i64) -> i64 {
    match kind {
        Kind::AmountOff => value.min(amount).max(0),
        // In i128: a large amount times a percentage must not wrap.
        Kind::PercentOff => (i128::from(amount.max(0)) * i128::from(value) / 100) as i64,
        Kind::FreeGift => 0,
    }
}

/// A coupon already redeemed on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    pub discount: i64,
    /// The order amount given with it.
    pub amount: i64,
    pub stackable: bool,
}

/// The discount of one more coupon on an order of `amount` fen that already carries `prior`:
/// taken from what the others left, never below zero; refused when either side does not
/// stack, when the order's amount differs from the one given before, or when nothing is left.
pub fn stacked_discount(
    prior: &[Prior],
    amount: i64,
    kind: Kind,
    value: i64,
    stackable: bool,
) -> Result<i64, String> {
    if !prior.is_empty() {
        if !stackable || prior.iter().any(|p| !p.stackable) {
            return Err("already carries a coupon, and one of them does not stack".into());
        }
        if prior.iter().any(|p| p.amount != amount) {
            return Err("the amount differs from the one given with its first coupon".into());
        }
    }
    let used: i64 = prior.iter().map(|p| p.discount.max(0)).sum();
    let left = (amount - used).max(0);
    if left == 0 && kind != Kind::FreeGift && !prior.is_empty() {
        return Err("nothing is left on the order to take off".into());
    }
    Ok(discount(kind, value, left).clamp(0, left))
}

fn allowed(list: Option<&str>, v: Option<&str>) -> bool {
    match list {
        None => true,
        Some(l) => v.is_some_and(|v| l.split(',').any(|x| x == v)),
    }
}

/// Redeems a coupon on an order, exactly once. Returns the coupon as redeemed.
pub async fn redeem(db: &Db, tenant: i64, u: &UseOn, now: i64) -> Result<Coupon, CouponError> {
    if u.order_ref.trim().is_empty() {
        return Err(invalid("order_ref", "is empty"));
    }
    if u.amount < 0 {
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
    if c.status != "claimed" {
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
    let before: Vec<(i64, i64, bool)> = tx
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
                 channel = $5, store_id = $6 WHERE tenant_id = $7 AND id = $8 AND status = 'claimed' RETURNING {COUPON_COLS}"
            ))
            .bind(now)
            .bind(u.order_ref.as_str())
            .bind(u.amount)
            .bind(off)
            .bind(u.channel.clone())
            .bind(u.store_id.clone())
            .bind(tenant)
            .bind(c.id),
        )
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// An order was refunded: its coupons come back while they are still valid.
pub async fn refund_order(
    db: &Db,
    tenant: i64,
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

/// Issued, redeemed, expired unused, and the GMV of the orders that used them.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub template_id: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub unused: i64,
    pub order_gmv: i64,
    pub discount: i64,
}

pub async fn report(
    db: &Db,
    tenant: i64,
    template_id: i64,
    now: i64,
) -> Result<Report, CouponError> {
    let t = template(db, tenant, template_id).await?;
    let (redeemed, expired, unused, gmv, off): (i64, i64, i64, i64, i64) = db
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

pub async fn coupons_of(db: &Db, tenant: i64, customer: i64) -> Result<Vec<Coupon>, DbError> {
    db.fetch_all(
        &sql(format!(
            "SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 200"
        ))
        .bind(tenant)
        .bind(customer),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_coupons_take_what_the_others_left() {
        let fifty = |prior: &[Prior]| stacked_discount(prior, 10_000, Kind::AmountOff, 5_000, true);
        let first = fifty(&[]).expect("first");
        let p1 = Prior {
            discount: first,
            amount: 10_000,
            stackable: true,
        };
        let second = fifty(&[p1]).expect("second");
        let p2 = Prior {
            discount: second,
            amount: 10_000,
            stackable: true,
        };
        assert_eq!((first, second), (5_000, 5_000));
        assert!(fifty(&[p1, p2]).is_err(), "nothing is left");
        // A percentage applies to what is left, not to the whole order.
        assert_eq!(
            stacked_discount(&[p1], 10_000, Kind::PercentOff, 10, true),
            Ok(500)
        );
        // Either side that does not stack stands alone; the amount is the first one's.
        let alone = Prior {
            discount: 1_000,
            amount: 10_000,
            stackable: false,
        };
        assert!(fifty(&[alone]).is_err());
        assert!(stacked_discount(&[p1], 10_000, Kind::AmountOff, 100, false).is_err());
        assert!(stacked_discount(&[p1], 20_000, Kind::AmountOff, 100, true).is_err());
        // A percentage of a huge amount does not wrap.
        assert_eq!(discount(Kind::PercentOff, 50, i64::MAX), i64::MAX / 2);
    }

    proptest::proptest! {
        /// However many coupons of whatever kinds stack on an order, together they never take
        /// more than the order, and none takes a negative amount.
        #[test]
        fn stacked_coupons_never_take_more_than_the_order(
            amount in 0i64..10_000_000,
            coupons in proptest::collection::vec((0u8..3, 0i64..20_000_000), 0..8),
        ) {
            let mut prior: Vec<Prior> = Vec::new();
            for (k, value) in coupons {
                let kind = [Kind::AmountOff, Kind::PercentOff, Kind::FreeGift][usize::from(k)];
                let value = if kind == Kind::PercentOff { value % 101 } else { value };
                if let Ok(off) = stacked_discount(&prior, amount, kind, value, true) {
                    proptest::prop_assert!(off >= 0);
                    prior.push(Prior { discount: off, amount, stackable: true });
                }
            }
            let total: i64 = prior.iter().map(|p| p.discount).sum();
            proptest::prop_assert!(total <= amount, "{} taken off {}", total, amount);
        }
    }

    #[test]
    fn discounts() {
        assert_eq!(discount(Kind::AmountOff, 3_000, 29_900), 3_000);
        assert_eq!(discount(Kind::AmountOff, 3_000, 2_000), 2_000);
        assert_eq!(discount(Kind::PercentOff, 15, 10_000), 1_500);
        assert_eq!(discount(Kind::FreeGift, 0, 10_000), 0);
    }

    #[test]
    fn codes_are_readable() {
        let c = new_code();
        assert_eq!(c.len(), 10);
        assert!(c.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{c}");
    }

    #[test]
    fn templates_name_what_is_wrong() {
        let ok = TemplateInput {
            name: "满300减30".into(),
            kind: Kind::AmountOff,
            value: 3_000,
            gift: None,
            threshold: 30_000,
            starts_at: None,
            ends_at: None,
            valid_days: Some(30),
            per_customer: 1,
            total: 100,
            channels: Vec::new(),
            stores: Vec::new(),
            stackable: false,
            claim_via: ClaimVia::Api,
        };
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut TemplateInput), field: &str| {
            let mut t = ok.clone();
            f(&mut t);
            match t.check() {
                Err(CouponError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        bad(|t| t.value = 0, "value");
        bad(|t| t.valid_days = None, "ends_at");
        bad(|t| t.ends_at = Some(5), "valid_days");
        bad(|t| t.total = 0, "total");
        bad(
            |t| {
                t.kind = Kind::PercentOff;
                t.value = 100
            },
            "value",
        );
        bad(
            |t| {
                t.kind = Kind::FreeGift;
                t.gift = None
            },
            "gift",
        );
    }
}
