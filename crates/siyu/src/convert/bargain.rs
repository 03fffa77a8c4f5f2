//! Bargains (砍价): a customer starts a bargain on an item and shares it; each friend's assist
//! cuts a random but bounded amount, so that the floor price is reached exactly at the
//! configured number of assists. One assist per friend; every helper becomes a member with the
//! bargain recorded as where they came from. The customer buys at the price reached, while the
//! item has stock and before the bargain's deadline.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::members::{self, JoinRequest, JoinedVia, MemberError};
use super::payments::{Charge, PaymentError, Payments, insert_paid_order};
use crate::know::identity::{Identity, IdentityKind};
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub name: String,
    pub sku: String,
    pub title: String,
    /// The starting price, fen.
    pub price: Fen,
    /// The lowest price, reached at the last assist.
    pub floor_price: Fen,
    /// Assists needed to reach the floor.
    pub assists: i64,
    /// How long a bargain stays open once started.
    #[serde(default = "day")]
    pub bargain_hours: i64,
    pub stock: i64,
    pub starts_at: i64,
    pub ends_at: i64,
}

fn day() -> i64 {
    24
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: Fen,
    pub floor_price: Fen,
    pub assists: i64,
    pub bargain_hours: i64,
    pub stock: i64,
    pub sold: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_at: i64,
}

crate::platform::text_enum::text_enum! {
    /// Where a bargain stands: `open` while friends cut the price, `reached` at the floor,
    /// `bought` once paid for, `expired` when its time ran out first.
    pub enum BargainStatus {
        Open = "open",
        Reached = "reached",
        Bought = "bought",
        Expired = "expired",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Bargain {
    pub id: i64,
    pub item_id: i64,
    pub customer_id: CustomerId,
    pub price_now: Fen,
    pub assists: i64,
    pub status: BargainStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub order_no: Option<String>,
    pub payment_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Assist {
    pub helper_id: CustomerId,
    pub cut: Fen,
    pub assisted_at: i64,
}

/// What one assist did.
#[derive(Debug, Clone, Serialize)]
pub struct AssistOutcome {
    pub bargain: Bargain,
    pub helper_id: CustomerId,
    pub cut: Fen,
    /// The helper became a member just now.
    pub helper_joined: bool,
}

const ITEM_COLS: &str = "id, name, sku, title, price, floor_price, assists, bargain_hours, stock, sold, starts_at, ends_at, created_at";
const BARGAIN_COLS: &str = "id, item_id, customer_id, price_now, assists, status, created_at, expires_at, order_no, payment_id";

#[derive(Debug, thiserror::Error)]
pub enum BargainError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("bargain item {0} not found")]
    NoItem(i64),
    #[error("bargain {0} not found")]
    NoBargain(i64),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for BargainError {
    fn refusal(&self) -> Refusal {
        match self {
            BargainError::Invalid { .. } => Refusal::Invalid,
            BargainError::NoItem(_) | BargainError::NoBargain(_) => Refusal::NotFound("not_found"),
            BargainError::Refused(_) => Refusal::Conflict("refused"),
            BargainError::Member(m) => m.refusal(),
            BargainError::Payment(p) => p.refusal(),
            BargainError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> BargainError {
    BargainError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl ItemInput {
    pub fn check(&self) -> Result<(), BargainError> {
        super::payments::check_item(&self.name, &self.sku, &self.title, self.price, None)
            .map_err(|(field, reason)| invalid(field, reason))?;
        if !(Fen::ZERO..=self.price).contains(&self.floor_price) {
            return Err(invalid("floor_price", "must be between 0 and price"));
        }
        if !(1..=1_000).contains(&self.assists) {
            return Err(invalid("assists", "must be between 1 and 1000"));
        }
        // Every assist cuts at least one fen.
        if (self.price - self.floor_price).get() < self.assists {
            return Err(invalid(
                "floor_price",
                format!(
                    "price − floor_price must be at least assists ({} fen), so every assist cuts something",
                    self.assists
                ),
            ));
        }
        if !(1..=720).contains(&self.bargain_hours) {
            return Err(invalid("bargain_hours", "must be between 1 and 720"));
        }
        if !(1..=10_000_000).contains(&self.stock) {
            return Err(invalid("stock", "must be between 1 and 10,000,000"));
        }
        if self.ends_at <= self.starts_at {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        Ok(())
    }
}

/// The next assist's cut: about an equal share of what is left (between half and one and a
/// half shares, drawn by `r` in 0..1), never less than a fen, always leaving a fen for each
/// assist still to come; the last assist cuts exactly the rest.
pub fn next_cut(remaining: Fen, assists_left: i64, r: f64) -> Fen {
    Fen::new(cut_in_fen(remaining.get(), assists_left, r))
}

/// [`next_cut`] in whole fen: the remaining fen are counted against the assists left.
fn cut_in_fen(remaining: i64, assists_left: i64, r: f64) -> i64 {
    if assists_left <= 1 || remaining <= assists_left {
        // The last assist, or only a fen each is left.
        return if assists_left <= 1 {
            remaining.max(0)
        } else {
            remaining.clamp(0, 1)
        };
    }
    let share = remaining as f64 / assists_left as f64;
    let most = remaining - (assists_left - 1);
    let hi = ((share * 1.5).ceil() as i64).clamp(1, most);
    let lo = ((share * 0.5).floor() as i64).clamp(1, hi);
    let span = (hi - lo + 1) as f64;
    lo + ((span * r.clamp(0.0, 1.0)) as i64).min(hi - lo)
}

pub async fn create_item(
    db: &Db,
    tenant: TenantId,
    i: &ItemInput,
    now: i64,
) -> Result<Item, BargainError> {
    i.check()?;
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("bargain_item", 1).await?;
    tx.execute(
        &sql("INSERT INTO bargain_items (id, tenant_id, name, sku, title, price, floor_price, assists, bargain_hours, stock, sold, starts_at, ends_at, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13)")
            .bind(id)
            .bind(tenant)
            .bind(i.name.trim())
            .bind(i.sku.trim())
            .bind(i.title.trim())
            .bind(i.price)
            .bind(i.floor_price)
            .bind(i.assists)
            .bind(i.bargain_hours)
            .bind(i.stock)
            .bind(i.starts_at)
            .bind(i.ends_at)
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    item(db, tenant, id).await
}

pub async fn item(db: &Db, tenant: TenantId, id: i64) -> Result<Item, BargainError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {ITEM_COLS} FROM bargain_items WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(BargainError::NoItem(id))
}

pub async fn items(db: &Db, tenant: TenantId) -> Result<Vec<Item>, BargainError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {ITEM_COLS} FROM bargain_items WHERE tenant_id = $1 ORDER BY id DESC"
            ))
            .bind(tenant),
        )
        .await?)
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Bargain, BargainError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {BARGAIN_COLS} FROM bargains WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(BargainError::NoBargain(id))
}

pub async fn assists(db: &Db, tenant: TenantId, bargain: i64) -> Result<Vec<Assist>, BargainError> {
    Ok(db
        .fetch_all(
            &sql("SELECT helper_id, cut, assisted_at FROM bargain_assists WHERE tenant_id = $1 AND bargain_id = $2 ORDER BY assisted_at, helper_id")
                .bind(tenant)
                .bind(bargain),
        )
        .await?)
}

/// Starts the customer's bargain on an item (or returns the one they already have).
pub async fn start(
    db: &Db,
    tenant: TenantId,
    item_id: i64,
    customer: CustomerId,
    now: i64,
) -> Result<Bargain, BargainError> {
    let it = item(db, tenant, item_id).await?;
    if now < it.starts_at {
        return Err(BargainError::Refused("the bargain has not started".into()));
    }
    if now >= it.ends_at {
        return Err(BargainError::Refused("the bargain has ended".into()));
    }
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let existing: Option<(i64,)> = tx
        .fetch_optional(
            &sql("SELECT id FROM bargains WHERE tenant_id = $1 AND item_id = $2 AND customer_id = $3")
                .bind(tenant)
                .bind(item_id)
                .bind(customer),
        )
        .await?;
    let id = match existing {
        Some((id,)) => id,
        None => {
            let id = tx.reserve_ids("bargain", 1).await?;
            let expires_at = (now + it.bargain_hours * 3_600_000).min(it.ends_at);
            tx.execute(
                &sql("INSERT INTO bargains (id, tenant_id, item_id, customer_id, price_now, assists, status, created_at, expires_at) \
                      VALUES ($1, $2, $3, $4, $5, 0, 'open', $6, $7)")
                    .bind(id)
                    .bind(tenant)
                    .bind(item_id)
                    .bind(customer)
                    .bind(it.price)
                    .bind(now)
                    .bind(expires_at),
            )
            .await?;
            id
        }
    };
    tx.commit().await?;
    get(db, tenant, id).await
}

/// A friend helps: they join as a member (source `bargain:{id}`), then cut once.
pub async fn assist(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    bargain_id: i64,
    helper: Identity,
    display_name: Option<String>,
    now: i64,
) -> Result<AssistOutcome, BargainError> {
    let b = get(db, tenant, bargain_id).await?;
    check_open(&b, now)?;
    if b.status != BargainStatus::Open {
        return Err(reached());
    }
    let via = match helper.kind() {
        IdentityKind::Phone => JoinedVia::Phone,
        IdentityKind::Unionid | IdentityKind::Openid => JoinedVia::Wechat,
        _ => {
            return Err(invalid(
                "identity",
                "a helper is known by a phone, unionid or openid",
            ));
        }
    };
    // Refusals that need no membership come before anyone is enrolled.
    let known: Option<(CustomerId,)> = db
        .fetch_optional(
            &sql("SELECT customer_id FROM identities WHERE tenant_id = $1 AND ikey = $2")
                .bind(tenant)
                .bind(helper.lookup_key(&cipher.lookup(tenant))),
        )
        .await?;
    if let Some((c,)) = known {
        if c == b.customer_id {
            return Err(own());
        }
        let helped: Option<(i64,)> = db
            .fetch_optional(
                &sql("SELECT helper_id FROM bargain_assists WHERE tenant_id = $1 AND bargain_id = $2 AND helper_id = $3")
                    .bind(tenant)
                    .bind(bargain_id)
                    .bind(c),
            )
            .await?;
        if helped.is_some() {
            return Err(helped_already());
        }
    }
    let (member, joined) = members::join(
        db,
        cipher,
        tenant,
        &JoinRequest {
            identity: helper,
            via,
            store_id: None,
            birthday_month: None,
            display_name,
        },
        now,
    )
    .await?;
    let helper_id = member.customer_id;
    if helper_id == b.customer_id {
        return Err(own());
    }
    let it = item(db, tenant, b.item_id).await?;
    let r: f64 = rand::rng().random();
    // Under the tenant lock: the cut depends on the assists before it.
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let b: Bargain = tx
        .fetch_one(
            &sql(format!(
                "SELECT {BARGAIN_COLS} FROM bargains WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(bargain_id),
        )
        .await?;
    check_open(&b, now)?;
    if b.status != BargainStatus::Open {
        return Err(reached());
    }
    let cut = next_cut(b.price_now - it.floor_price, it.assists - b.assists, r);
    let inserted = tx
        .execute(
            &sql("INSERT INTO bargain_assists (tenant_id, bargain_id, helper_id, cut, assisted_at) VALUES ($1, $2, $3, $4, $5) \
                  ON CONFLICT DO NOTHING")
                .bind(tenant)
                .bind(bargain_id)
                .bind(helper_id)
                .bind(cut)
                .bind(now),
        )
        .await?;
    if inserted == 0 {
        return Err(helped_already());
    }
    let reached = b.assists + 1 >= it.assists;
    tx.execute(
        &sql("UPDATE bargains SET price_now = price_now - $3, assists = assists + 1, status = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'open'")
            .bind(tenant)
            .bind(bargain_id)
            .bind(cut)
            .bind(if reached {
                BargainStatus::Reached
            } else {
                BargainStatus::Open
            }),
    )
    .await?;
    // A helper who became a member since the bargain started came from it (whichever of their
    // concurrent requests enrolled them).
    tx.execute(
        &sql("UPDATE members SET source = $3 WHERE tenant_id = $1 AND customer_id = $2 AND source IS NULL AND joined_at >= $4")
            .bind(tenant)
            .bind(helper_id)
            .bind(format!("bargain:{bargain_id}"))
            .bind(b.created_at),
    )
    .await?;
    tx.commit().await?;
    Ok(AssistOutcome {
        bargain: get(db, tenant, bargain_id).await?,
        helper_id,
        cut,
        helper_joined: joined,
    })
}

fn reached() -> BargainError {
    BargainError::Refused("the floor price has been reached; no more help is needed".into())
}

fn own() -> BargainError {
    BargainError::Refused("a customer cannot help their own bargain".into())
}

fn helped_already() -> BargainError {
    BargainError::Refused("this friend has already helped".into())
}

fn check_open(b: &Bargain, now: i64) -> Result<(), BargainError> {
    match b.status {
        BargainStatus::Open | BargainStatus::Reached if b.expires_at > now => Ok(()),
        BargainStatus::Open | BargainStatus::Reached => {
            Err(BargainError::Refused("the bargain has expired".into()))
        }
        s @ (BargainStatus::Bought | BargainStatus::Expired) => {
            Err(BargainError::Refused(format!("the bargain is {s}")))
        }
    }
}

/// The customer buys at the price reached. The item's stock is taken in the same transaction
/// as the order; a payment that finds no stock left is refunded.
pub async fn buy(
    db: &Db,
    payments: &Payments,
    tenant: TenantId,
    bargain_id: i64,
    customer: Option<CustomerId>,
    now: i64,
) -> Result<Bargain, BargainError> {
    let b = get(db, tenant, bargain_id).await?;
    if customer.is_some_and(|c| c != b.customer_id) {
        return Err(BargainError::NoBargain(bargain_id));
    }
    check_open(&b, now)?;
    let it = item(db, tenant, b.item_id).await?;
    let payment = payments
        .charge(
            Charge {
                tenant_id: tenant,
                customer_id: b.customer_id,
                amount: b.price_now,
                purpose: format!("bargain:{bargain_id}"),
            },
            now,
        )
        .await?;
    let order_no = format!("SY-BG{bargain_id}");
    let bought = async {
        let mut tx = db.begin().await?;
        // Assists take this lock too: none can change the bargain while it is bought.
        tx.lock_tenant(tenant).await?;
        let stock = tx
            .execute(
                &sql("UPDATE bargain_items SET sold = sold + 1 WHERE tenant_id = $1 AND id = $2 AND sold + 1 <= stock")
                    .bind(tenant)
                    .bind(it.id),
            )
            .await?;
        if stock == 0 {
            return Ok::<Option<&str>, DbError>(Some("sold out"));
        }
        // Same price as charged, still open: a concurrent assist or a second purchase refuses.
        let n = tx
            .execute(
                &sql("UPDATE bargains SET status = 'bought', order_no = $3, payment_id = $4 \
                      WHERE tenant_id = $1 AND id = $2 AND status IN ('open', 'reached') AND price_now = $5 AND expires_at > $6")
                    .bind(tenant)
                    .bind(bargain_id)
                    .bind(&order_no)
                    .bind(payment.id)
                    .bind(b.price_now)
                    .bind(now),
            )
            .await?;
        if n == 0 {
            return Ok(Some("the bargain changed while paying; try again"));
        }
        insert_paid_order(&mut tx, tenant, b.customer_id, &order_no, &it.sku, &it.title, 1, b.price_now, now)
            .await?;
        tx.commit().await?;
        Ok(None)
    }
    .await;
    match bought {
        Ok(None) => get(db, tenant, bargain_id).await,
        Ok(Some(why)) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(BargainError::Refused(why.into()))
        }
        Err(e) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(e.into())
        }
    }
}

/// Ends bargains past their deadline; returns how many.
pub async fn expire_due(db: &Db, now: i64) -> Result<u64, BargainError> {
    Ok(db
        .execute(
            &sql("UPDATE bargains SET status = 'expired' WHERE status IN ('open', 'reached') AND expires_at <= $1")
                .bind(now),
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::{Fen, next_cut};
    use proptest::prelude::*;

    proptest! {
        /// Whatever the draws, the floor is reached exactly at the last assist, every assist
        /// cuts at least a fen, and no assist cuts more than one and a half equal shares.
        #[test]
        fn the_floor_is_reached_exactly_at_the_last_assist(
            diff in 1i64..5_000_000,
            n in 1i64..200,
            draws in proptest::collection::vec(0.0f64..1.0, 200),
        ) {
            prop_assume!(diff >= n);
            let mut remaining = diff;
            for k in 0..n {
                let left = n - k;
                let cut = next_cut(Fen::new(remaining), left, draws[k as usize]).get();
                prop_assert!(cut >= 1, "cut {cut} at assist {k}");
                if left > 1 {
                    let share = remaining as f64 / left as f64;
                    prop_assert!(cut as f64 <= (share * 1.5).ceil(), "cut {cut} > 1.5 shares of {share}");
                }
                remaining -= cut;
                prop_assert!(remaining >= left - 1, "not a fen left for each of the {} to come", left - 1);
            }
            prop_assert_eq!(remaining, 0);
        }
    }
}
