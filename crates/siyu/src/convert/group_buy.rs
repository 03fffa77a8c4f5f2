//! Group buys (拼团): a leader opens a team, others join by its link, and a full team becomes
//! orders. A team that is not full by its deadline is cancelled and everyone in it refunded.
//!
//! Everyone pays when they open or join (through the payment adapter), then takes a seat in one
//! transaction whose conditional update (`members < team_size`) makes a team of more than N
//! impossible however many join at once. A payment that did not get a seat (the team filled or
//! expired meanwhile, or the process died between the two) is refunded: at once, or by the
//! sweep that also cancels expired teams.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use serde::{Deserialize, Serialize};

use super::payments::{Charge, PaymentError, Payments, insert_paid_order};
use crate::platform::db::{Db, DbError, sql};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBuyInput {
    pub name: String,
    pub sku: String,
    pub title: String,
    /// The team price per person, fen.
    pub price: Fen,
    #[serde(default)]
    pub original_price: Option<Fen>,
    pub team_size: i64,
    /// How long a team has to fill, from when it is opened.
    #[serde(default = "day")]
    pub team_minutes: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Seats all teams together may hold (units to sell); none: no limit.
    #[serde(default)]
    pub stock: Option<i64>,
    /// Teams one customer may be in.
    #[serde(default = "one")]
    pub per_customer: i64,
}

fn day() -> i64 {
    1_440
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GroupBuy {
    pub id: i64,
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: Fen,
    pub original_price: Fen,
    pub team_size: i64,
    pub team_minutes: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_at: i64,
    pub stock: Option<i64>,
    pub per_customer: i64,
}

crate::platform::text_enum::text_enum! {
    /// Where a team stands: `open` until its seats fill (`full`) or its time runs out
    /// (`cancelled`, its members refunded).
    pub enum TeamStatus {
        Open = "open",
        Full = "full",
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Team {
    pub id: i64,
    pub group_buy_id: i64,
    pub leader_id: CustomerId,
    pub team_size: i64,
    pub members: i64,
    pub status: TeamStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TeamMember {
    pub customer_id: CustomerId,
    pub payment_id: i64,
    pub joined_at: i64,
    pub order_no: Option<String>,
}

const BUY_COLS: &str = "id, name, sku, title, price, original_price, team_size, team_minutes, starts_at, ends_at, created_at, \
     stock, per_customer";
const TEAM_COLS: &str =
    "id, group_buy_id, leader_id, team_size, members, status, created_at, expires_at, closed_at";

#[derive(Debug, thiserror::Error)]
pub enum GroupBuyError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("group buy {0} not found")]
    NoGroupBuy(i64),
    #[error("team {0} not found")]
    NoTeam(i64),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for GroupBuyError {
    fn refusal(&self) -> Refusal {
        match self {
            GroupBuyError::Invalid { .. } => Refusal::Invalid,
            GroupBuyError::NoGroupBuy(_) | GroupBuyError::NoTeam(_) => {
                Refusal::NotFound("not_found")
            }
            GroupBuyError::Refused(_) => Refusal::Conflict("refused"),
            GroupBuyError::Payment(p) => p.refusal(),
            GroupBuyError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GroupBuyError {
    GroupBuyError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl GroupBuyInput {
    pub fn check(&self) -> Result<(), GroupBuyError> {
        super::payments::check_item(
            &self.name,
            &self.sku,
            &self.title,
            self.price,
            self.original_price,
        )
        .map_err(|(field, reason)| invalid(field, reason))?;
        if !(2..=100).contains(&self.team_size) {
            return Err(invalid("team_size", "must be between 2 and 100"));
        }
        if !(1..=10_080).contains(&self.team_minutes) {
            return Err(invalid(
                "team_minutes",
                "must be between 1 and 10080 (7 days)",
            ));
        }
        if self.ends_at <= self.starts_at {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        if self.stock.is_some_and(|s| !(1..=10_000_000).contains(&s)) {
            return Err(invalid("stock", "must be between 1 and 10000000"));
        }
        if self.stock.is_some_and(|s| s < self.team_size) {
            return Err(invalid(
                "stock",
                "must hold at least one team (team_size units)",
            ));
        }
        if !(1..=100).contains(&self.per_customer) {
            return Err(invalid("per_customer", "must be between 1 and 100"));
        }
        Ok(())
    }
}

/// Units the group buy's teams hold, not cancelled: a team holds all its seats from when it is
/// opened, so that every team opened can fill.
fn seats_held(tenant: TenantId, group_buy: i64) -> crate::platform::db::Sql {
    sql(
        "SELECT CAST(COALESCE(SUM(team_size), 0) AS BIGINT) FROM teams \
         WHERE tenant_id = $1 AND group_buy_id = $2 AND status <> 'cancelled'",
    )
    .bind(tenant)
    .bind(group_buy)
}

/// Teams of the group buy, not cancelled, that the customer is in.
fn teams_of(tenant: TenantId, group_buy: i64, customer: CustomerId) -> crate::platform::db::Sql {
    sql("SELECT count(*) FROM team_members m JOIN teams t ON t.tenant_id = m.tenant_id AND t.id = m.team_id \
         WHERE m.tenant_id = $1 AND t.group_buy_id = $2 AND m.customer_id = $3 AND t.status <> 'cancelled'")
    .bind(tenant)
    .bind(group_buy)
    .bind(customer)
}

/// Why one more seat for this customer does not fit the group buy, if it does not. Opening a
/// team needs a whole team's units left; joining takes a seat the team already holds.
fn no_room(g: &GroupBuy, held: i64, mine: i64, opening: bool) -> Option<String> {
    if opening && g.stock.is_some_and(|stock| held + g.team_size > stock) {
        return Some("sold out".into());
    }
    (mine >= g.per_customer)
        .then(|| format!("limit reached: at most {} per customer", g.per_customer))
}

/// [`no_room`] read in the transaction that takes the seat, under the tenant lock, so that
/// seats taken at once cannot pass the stock or a customer's limit.
async fn no_room_in(
    tx: &mut crate::platform::db::Tx,
    g: &GroupBuy,
    tenant: TenantId,
    customer: CustomerId,
    opening: bool,
) -> Result<Option<String>, DbError> {
    tx.lock_tenant(tenant).await?;
    let (held,): (i64,) = tx.fetch_one(&seats_held(tenant, g.id)).await?;
    let (mine,): (i64,) = tx.fetch_one(&teams_of(tenant, g.id, customer)).await?;
    Ok(no_room(g, held, mine, opening))
}

/// [`no_room`] read before charging, so that most refusals take no money at all.
async fn no_room_now(
    db: &Db,
    g: &GroupBuy,
    tenant: TenantId,
    customer: CustomerId,
    opening: bool,
) -> Result<Option<String>, DbError> {
    let (held,): (i64,) = db.fetch_one(&seats_held(tenant, g.id)).await?;
    let (mine,): (i64,) = db.fetch_one(&teams_of(tenant, g.id, customer)).await?;
    Ok(no_room(g, held, mine, opening))
}

pub async fn create(
    db: &Db,
    tenant: TenantId,
    g: &GroupBuyInput,
    now: i64,
) -> Result<GroupBuy, GroupBuyError> {
    g.check()?;
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("group_buy", 1).await?;
    tx.execute(
        &sql("INSERT INTO group_buys (id, tenant_id, name, sku, title, price, original_price, team_size, team_minutes, starts_at, ends_at, created_at, \
              stock, per_customer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(id)
            .bind(tenant)
            .bind(g.name.trim())
            .bind(g.sku.trim())
            .bind(g.title.trim())
            .bind(g.price)
            .bind(g.original_price.unwrap_or(g.price))
            .bind(g.team_size)
            .bind(g.team_minutes)
            .bind(g.starts_at)
            .bind(g.ends_at)
            .bind(now)
            .bind(g.stock)
            .bind(g.per_customer),
    )
    .await?;
    tx.commit().await?;
    get(db, tenant, id).await
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<GroupBuy, GroupBuyError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {BUY_COLS} FROM group_buys WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(GroupBuyError::NoGroupBuy(id))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<GroupBuy>, GroupBuyError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {BUY_COLS} FROM group_buys WHERE tenant_id = $1 ORDER BY id DESC"
            ))
            .bind(tenant),
        )
        .await?)
}

pub async fn team(db: &Db, tenant: TenantId, id: i64) -> Result<Team, GroupBuyError> {
    db.fetch_optional(
        &sql(format!(
            "SELECT {TEAM_COLS} FROM teams WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?
    .ok_or(GroupBuyError::NoTeam(id))
}

pub async fn teams(db: &Db, tenant: TenantId, group_buy: i64) -> Result<Vec<Team>, GroupBuyError> {
    Ok(db
        .fetch_all(
            &sql(format!(
                "SELECT {TEAM_COLS} FROM teams WHERE tenant_id = $1 AND group_buy_id = $2 ORDER BY id DESC"
            ))
            .bind(tenant)
            .bind(group_buy),
        )
        .await?)
}

pub async fn team_members(
    db: &Db,
    tenant: TenantId,
    team: i64,
) -> Result<Vec<TeamMember>, GroupBuyError> {
    Ok(db
        .fetch_all(
            &sql("SELECT customer_id, payment_id, joined_at, order_no FROM team_members WHERE tenant_id = $1 AND team_id = $2 ORDER BY joined_at, customer_id")
                .bind(tenant)
                .bind(team),
        )
        .await?)
}

/// A leader opens a team and pays for their place in it.
pub async fn open_team(
    db: &Db,
    payments: &Payments,
    tenant: TenantId,
    group_buy: i64,
    leader: CustomerId,
    now: i64,
) -> Result<Team, GroupBuyError> {
    let g = get(db, tenant, group_buy).await?;
    if now < g.starts_at {
        return Err(GroupBuyError::Refused(
            "the group buy has not started".into(),
        ));
    }
    if now >= g.ends_at {
        return Err(GroupBuyError::Refused("the group buy has ended".into()));
    }
    if let Some(why) = no_room_now(db, &g, tenant, leader, true).await? {
        return Err(GroupBuyError::Refused(why));
    }
    let payment = payments
        .charge(
            Charge {
                tenant_id: tenant,
                customer_id: leader,
                amount: g.price,
                purpose: format!("group_buy:{group_buy}"),
            },
            now,
        )
        .await?;
    let opened = async {
        let mut tx = db.begin().await?;
        if let Some(why) = no_room_in(&mut tx, &g, tenant, leader, true).await? {
            return Ok(Err(why));
        }
        let id = tx.reserve_ids("team", 1).await?;
        // A team never outlives its group buy.
        let expires_at = (now + g.team_minutes * 60_000).min(g.ends_at);
        tx.execute(
            &sql("INSERT INTO teams (id, tenant_id, group_buy_id, leader_id, team_size, members, status, created_at, expires_at) \
                  VALUES ($1, $2, $3, $4, $5, 1, 'open', $6, $7)")
                .bind(id)
                .bind(tenant)
                .bind(group_buy)
                .bind(leader)
                .bind(g.team_size)
                .bind(now)
                .bind(expires_at),
        )
        .await?;
        tx.execute(
            &sql("INSERT INTO team_members (tenant_id, team_id, customer_id, payment_id, joined_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(tenant)
                .bind(id)
                .bind(leader)
                .bind(payment.id)
                .bind(now),
        )
        .await?;
        tx.commit().await?;
        Ok::<Result<i64, String>, DbError>(Ok(id))
    }
    .await;
    match opened {
        Ok(Ok(id)) => team(db, tenant, id).await,
        Ok(Err(why)) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(GroupBuyError::Refused(why))
        }
        Err(e) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(e.into())
        }
    }
}

/// A customer joins a team by its link and pays; the last seat turns the team into orders.
pub async fn join_team(
    db: &Db,
    payments: &Payments,
    tenant: TenantId,
    team_id: i64,
    customer: CustomerId,
    now: i64,
) -> Result<Team, GroupBuyError> {
    let t = team(db, tenant, team_id).await?;
    if let Some(why) = refusal(&t, now) {
        return Err(GroupBuyError::Refused(why));
    }
    let already: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT customer_id FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND customer_id = $3")
                .bind(tenant)
                .bind(team_id)
                .bind(customer),
        )
        .await?;
    if already.is_some() {
        return Err(GroupBuyError::Refused("already in this team".into()));
    }
    let g = get(db, tenant, t.group_buy_id).await?;
    if let Some(why) = no_room_now(db, &g, tenant, customer, false).await? {
        return Err(GroupBuyError::Refused(why));
    }
    let payment = payments
        .charge(
            Charge {
                tenant_id: tenant,
                customer_id: customer,
                amount: g.price,
                purpose: format!("team:{team_id}"),
            },
            now,
        )
        .await?;
    // The seat is taken at the time it is taken: a slow charge cannot seat into an expired team.
    let now = crate::platform::clock::now_ms();
    let seated = take_seat(db, tenant, &g, team_id, customer, payment.id, now).await;
    match seated {
        Ok(None) => team(db, tenant, team_id).await,
        Ok(Some(why)) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(GroupBuyError::Refused(why))
        }
        Err(e) => {
            payments.refund(tenant, payment.id, now).await?;
            Err(e.into())
        }
    }
}

fn refusal(t: &Team, now: i64) -> Option<String> {
    match t.status {
        TeamStatus::Open if t.expires_at <= now => Some("the team has expired".into()),
        TeamStatus::Open => None,
        TeamStatus::Full => Some("the team is full".into()),
        TeamStatus::Cancelled => Some("the team is cancelled".into()),
    }
}

/// The seat, in one transaction: `None` when taken, or why not.
async fn take_seat(
    db: &Db,
    tenant: TenantId,
    g: &GroupBuy,
    team_id: i64,
    customer: CustomerId,
    payment: i64,
    now: i64,
) -> Result<Option<String>, DbError> {
    let mut tx = db.begin().await?;
    if let Some(why) = no_room_in(&mut tx, g, tenant, customer, false).await? {
        return Ok(Some(why));
    }
    let n = tx
        .execute(
            &sql(
                "UPDATE teams SET members = members + 1 WHERE tenant_id = $1 AND id = $2 \
                  AND status = 'open' AND members < team_size AND expires_at > $3",
            )
            .bind(tenant)
            .bind(team_id)
            .bind(now),
        )
        .await?;
    if n == 0 {
        drop(tx); // rolls back
        let t = team(db, tenant, team_id).await.ok();
        return Ok(Some(
            t.and_then(|t| refusal(&t, now))
                .unwrap_or_else(|| "the team is full".into()),
        ));
    }
    let inserted = tx
        .execute(
            &sql("INSERT INTO team_members (tenant_id, team_id, customer_id, payment_id, joined_at) VALUES ($1, $2, $3, $4, $5) \
                  ON CONFLICT DO NOTHING")
                .bind(tenant)
                .bind(team_id)
                .bind(customer)
                .bind(payment)
                .bind(now),
        )
        .await?;
    if inserted == 0 {
        drop(tx); // rolls back
        return Ok(Some("already in this team".into()));
    }
    let (members, size): (i64, i64) = tx
        .fetch_one(
            &sql("SELECT members, team_size FROM teams WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(team_id),
        )
        .await?;
    if members == size {
        // Full: everyone's payment becomes an order, in this same transaction.
        tx.execute(
            &sql(
                "UPDATE teams SET status = 'full', closed_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(team_id)
            .bind(now),
        )
        .await?;
        let everyone: Vec<(CustomerId,)> = tx
            .fetch_all(
                &sql("SELECT customer_id FROM team_members WHERE tenant_id = $1 AND team_id = $2 ORDER BY customer_id")
                    .bind(tenant)
                    .bind(team_id),
            )
            .await?;
        for (c,) in everyone {
            let order_no = format!("SY-GB{team_id}-{c}");
            insert_paid_order(
                &mut tx, tenant, c, &order_no, &g.sku, &g.title, 1, g.price, now,
            )
            .await?;
            tx.execute(
                &sql("UPDATE team_members SET order_no = $4 WHERE tenant_id = $1 AND team_id = $2 AND customer_id = $3")
                    .bind(tenant)
                    .bind(team_id)
                    .bind(c)
                    .bind(order_no),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(None)
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sweep {
    pub teams_cancelled: usize,
    pub refunds: usize,
}

/// Cancels teams past their deadline and refunds their members, then refunds every payment
/// left without a seat, reservation or bargain for longer than `grace_ms` (the process died
/// between charging and seating). With `tenant`, only that tenant's.
pub async fn sweep(
    db: &Db,
    payments: &Payments,
    tenant: Option<TenantId>,
    now: i64,
    grace_ms: i64,
) -> Result<Sweep, GroupBuyError> {
    let t = tenant.map_or(-1, TenantId::get);
    let cancelled = db
        .execute(
            &sql("UPDATE teams SET status = 'cancelled', closed_at = $1 WHERE status = 'open' AND expires_at <= $1 \
                  AND ($2 < 0 OR tenant_id = $2)")
                .bind(now)
                .bind(t),
        )
        .await? as usize;
    let due: Vec<(TenantId, i64)> = db
        .fetch_all(
            &sql("SELECT p.tenant_id, p.id FROM payments p \
                  JOIN team_members m ON m.tenant_id = p.tenant_id AND m.payment_id = p.id \
                  JOIN teams t ON t.tenant_id = m.tenant_id AND t.id = m.team_id \
                  WHERE t.status = 'cancelled' AND p.status = 'paid' AND ($1 < 0 OR p.tenant_id = $1)")
                .bind(t),
        )
        .await?;
    let mut refunds = 0;
    for (tenant, id) in due {
        match payments.refund(tenant, id, now).await {
            Ok(_) => refunds += 1,
            Err(e) => {
                tracing::warn!(tenant = %tenant, payment = id, error = %e, "refund failed; will retry")
            }
        }
    }
    refunds += payments.refund_unclaimed(tenant, now, grace_ms).await?;
    Ok(Sweep {
        teams_cancelled: cancelled,
        refunds,
    })
}
