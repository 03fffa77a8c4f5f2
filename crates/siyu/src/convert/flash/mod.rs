//! Flash sales (秒杀): an item at a price, a stock, a window and a per-customer limit.
//!
//! An attempt is decided in memory: the sale's counter (units left, units held per customer)
//! sits behind one short lock, so a sold-out answer costs no I/O. A unit taken there becomes a
//! reservation (`flash_orders`, status `pending`) that a group-commit writer makes durable before
//! the customer is told: many attempts share one transaction and one fsync. The same transaction
//! moves `flash_sales.sold` under the condition `sold + n <= stock`, so the database refuses an
//! oversell even if two processes ran one sale. Unpaid reservations expire and return their
//! units; a restart reads `stock - sold` back, which is exactly what was left.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
mod counter;
mod expiry;
mod input;
mod payment;
mod redis_gate;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use counter::{Counter, Live};
use serde::Serialize;

use super::payments::PaymentError;
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

pub use input::SaleInput;
use redis_gate::RedisGate;
use siyu_store::group_commit::GroupCommit;
use writer::Reservations;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Sale {
    pub id: i64,
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: Fen,
    pub original_price: Fen,
    pub stock: i64,
    pub sold: i64,
    pub per_customer: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub pay_minutes: i64,
    pub created_at: i64,
}

crate::platform::text_enum::text_enum! {
    /// Where a reservation stands. `paying` holds it while the provider charges; `cancelled` is
    /// the buyer's doing, `expired` the clock's.
    pub enum FlashOrderStatus {
        Pending = "pending",
        Paying = "paying",
        Paid = "paid",
        Cancelled = "cancelled",
        Expired = "expired",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FlashOrder {
    pub id: i64,
    pub sale_id: i64,
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub amount: Fen,
    pub status: FlashOrderStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub payment_id: Option<i64>,
    pub order_no: Option<String>,
}

const SALE_COLS: &str = "id, name, sku, title, price, original_price, stock, sold, per_customer, starts_at, ends_at, pay_minutes, created_at";

const ORDER_COLS: &str = "id, sale_id, customer_id, quantity, amount, status, created_at, expires_at, paid_at, payment_id, order_no";

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("flash sale {0} not found")]
    NoSale(i64),
    #[error("flash order {0} not found")]
    NoOrder(i64),
    #[error("the sale has not started")]
    NotStarted,
    #[error("the sale has ended")]
    Ended,
    #[error("sold out")]
    SoldOut,
    #[error("limit reached: at most {0} per customer")]
    LimitReached(i64),
    #[error("{0}")]
    Refused(String),
    #[error("the reservation could not be stored: {0}")]
    Store(String),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for FlashError {
    fn refusal(&self) -> Refusal {
        match self {
            FlashError::Invalid { .. } => Refusal::Invalid,
            FlashError::NoSale(_) | FlashError::NoOrder(_) => Refusal::NotFound(self.code()),
            FlashError::NotStarted
            | FlashError::Ended
            | FlashError::SoldOut
            | FlashError::LimitReached(_)
            | FlashError::Refused(_) => Refusal::Conflict(self.code()),
            FlashError::Store(_) => Refusal::Unavailable(self.code()),
            FlashError::Payment(p) => p.refusal(),
            FlashError::Db(_) => Refusal::Internal,
        }
    }

    fn told(&self) -> String {
        match self {
            // Which store failed (Redis, the writer) is ours to know; the buyer needs the outcome.
            FlashError::Store(_) => {
                "the reservation could not be stored; nothing was reserved, try again".into()
            }
            e => e.to_string(),
        }
    }
}

impl FlashError {
    /// A short code the H5 page and API clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            FlashError::Invalid { .. } => "invalid",
            FlashError::NoSale(_) | FlashError::NoOrder(_) => "not_found",
            FlashError::NotStarted => "not_started",
            FlashError::Ended => "ended",
            FlashError::SoldOut => "sold_out",
            FlashError::LimitReached(_) => "limit_reached",
            FlashError::Refused(_) => "refused",
            FlashError::Store(_) | FlashError::Db(_) => "unavailable",
            FlashError::Payment(_) => "payment_failed",
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> FlashError {
    FlashError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Where attempts are decided: this process's memory (the default), or Redis, where a Lua
/// script checks and decrements (for several processes selling one sale, and the usual
/// alternative `siyu bench --suite flash` compares against).
enum Gate {
    Memory,
    Redis(Box<RedisGate>),
}

/// Every flash sale of every tenant this process sells.
pub struct FlashSales {
    db: Db,
    live: RwLock<HashMap<(TenantId, i64), Arc<Live>>>,
    /// Loading a sale and returning units both go through here, so a sale loaded while units
    /// are being returned cannot count them twice or miss them.
    loading: tokio::sync::Mutex<()>,
    writer: GroupCommit<Reservations>,
    gate: Gate,
}

impl std::fmt::Debug for FlashSales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlashSales(..)")
    }
}

impl FlashSales {
    /// Starts the reservation writer on the current runtime.
    pub fn new(db: Db) -> Arc<FlashSales> {
        Self::with_gate(db, Gate::Memory)
    }

    fn with_gate(db: Db, gate: Gate) -> Arc<FlashSales> {
        let writer = GroupCommit::start(Reservations { db: db.clone() }, writer::GROUP, 4_096);
        Arc::new(FlashSales {
            db,
            live: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
            writer,
            gate,
        })
    }

    /// `memory` or `redis`.
    pub fn gate_name(&self) -> &'static str {
        match self.gate {
            Gate::Memory => "memory",
            Gate::Redis(_) => "redis",
        }
    }

    /// The sale as stored (`sold` counts pending and paid reservations).
    pub async fn get(&self, tenant: TenantId, id: i64) -> Result<Sale, FlashError> {
        self.db
            .fetch_optional(
                &sql(format!(
                    "SELECT {SALE_COLS} FROM flash_sales WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant)
                .bind(id),
            )
            .await?
            .ok_or(FlashError::NoSale(id))
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Sale>, FlashError> {
        Ok(self
            .db
            .fetch_all(
                &sql(format!(
                    "SELECT {SALE_COLS} FROM flash_sales WHERE tenant_id = $1 ORDER BY id DESC"
                ))
                .bind(tenant),
            )
            .await?)
    }

    pub async fn order(&self, tenant: TenantId, id: i64) -> Result<FlashOrder, FlashError> {
        self.db
            .fetch_optional(
                &sql(format!(
                    "SELECT {ORDER_COLS} FROM flash_orders WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant)
                .bind(id),
            )
            .await?
            .ok_or(FlashError::NoOrder(id))
    }

    pub async fn orders(
        &self,
        tenant: TenantId,
        sale_id: i64,
        status: Option<FlashOrderStatus>,
    ) -> Result<Vec<FlashOrder>, FlashError> {
        let filter = if status.is_some() {
            " AND status = $3"
        } else {
            ""
        };
        let mut q = sql(format!(
            "SELECT {ORDER_COLS} FROM flash_orders WHERE tenant_id = $1 AND sale_id = $2{filter} ORDER BY id"
        ))
        .bind(tenant)
        .bind(sale_id);
        if let Some(st) = status {
            q = q.bind(st);
        }
        Ok(self.db.fetch_all(&q).await?)
    }

    /// Reservations and units by status: `(status, reservations, units)`.
    pub async fn counts(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Vec<(FlashOrderStatus, i64, i64)>, FlashError> {
        Ok(self
            .db
            .fetch_all(
                &sql("SELECT status, COUNT(*), CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM flash_orders \
                      WHERE tenant_id = $1 AND sale_id = $2 GROUP BY status ORDER BY status")
                    .bind(tenant)
                    .bind(id),
            )
            .await?)
    }

    /// One customer's reservations in a sale, newest first.
    pub async fn customer_orders(
        &self,
        tenant: TenantId,
        sale_id: i64,
        customer: CustomerId,
    ) -> Result<Vec<FlashOrder>, FlashError> {
        Ok(self
            .db
            .fetch_all(
                &sql(format!(
                    "SELECT {ORDER_COLS} FROM flash_orders WHERE tenant_id = $1 AND sale_id = $2 AND customer_id = $3 ORDER BY id DESC"
                ))
                .bind(tenant)
                .bind(sale_id)
                .bind(customer),
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::input::*;
    use super::*;
    use std::sync::Mutex;

    fn live(stock: i64, per_customer: i64) -> Live {
        Live {
            sale: Sale {
                id: 1,
                name: "n".into(),
                sku: "s".into(),
                title: "t".into(),
                price: Fen::new(100),
                original_price: Fen::new(100),
                stock,
                sold: 0,
                per_customer,
                starts_at: 0,
                ends_at: 10,
                pay_minutes: 15,
                created_at: 0,
            },
            counter: Mutex::new(Counter {
                left: stock,
                held: HashMap::new(),
            }),
        }
    }

    #[test]
    fn the_counter_holds_stock_and_per_customer_limits() {
        let l = live(3, 2);
        assert!(l.take(CustomerId::new(1), 2).is_ok());
        assert!(matches!(
            l.take(CustomerId::new(1), 1),
            Err(FlashError::LimitReached(2))
        ));
        assert!(l.take(CustomerId::new(2), 1).is_ok());
        assert!(matches!(
            l.take(CustomerId::new(3), 1),
            Err(FlashError::SoldOut)
        ));
        l.give_back(CustomerId::new(1), 2, true);
        assert_eq!(l.left(), 2);
        assert!(
            l.take(CustomerId::new(1), 2).is_ok(),
            "returned units and limit are free again"
        );
    }

    #[test]
    fn sale_input_names_the_wrong_field() {
        let ok = SaleInput {
            name: "双11秒杀".into(),
            sku: "A1".into(),
            title: "面霜".into(),
            price: Fen::new(9_900),
            original_price: Some(Fen::new(19_900)),
            stock: 100,
            per_customer: 1,
            starts_at: 0,
            ends_at: 1,
            pay_minutes: 15,
        };
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut SaleInput)| {
            let mut s = ok.clone();
            f(&mut s);
            match s.check() {
                Err(FlashError::Invalid { field, .. }) => field,
                other => panic!("expected invalid, got {other:?}"),
            }
        };
        assert_eq!(bad(|s| s.stock = 0), "stock");
        assert_eq!(bad(|s| s.ends_at = 0), "ends_at");
        assert_eq!(
            bad(|s| s.original_price = Some(Fen::new(1))),
            "original_price"
        );
        assert_eq!(bad(|s| s.pay_minutes = 0), "pay_minutes");
        assert_eq!(bad(|s| s.title = " ".into()), "title");
    }
}
