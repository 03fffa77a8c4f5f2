//! Flash sales (秒杀): an item at a price, a stock, a window and a per-customer limit.
//!
//! An attempt is decided in memory: the sale's counter (units left, units held per customer)
//! sits behind one short lock, so a sold-out answer costs no I/O. A unit taken there becomes a
//! reservation (`flash_orders`, status `pending`) that a group-commit writer makes durable before
//! the customer is told: many attempts share one transaction and one fsync. The same transaction
//! moves `flash_sales.sold` under the condition `sold + n <= stock`, so the database refuses an
//! oversell even if two processes ran one sale. Unpaid reservations expire and return their
//! units; a restart reads `stock - sold` back, which is exactly what was left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::payments::{Charge, PaymentError, Payments, insert_paid_order};
use crate::platform::clock::now_ms;
use crate::platform::db::{Db, DbError, DbResult, Value, sql, values_placeholders};

/// Reservations taken into one transaction at most.
const GROUP: usize = 2_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleInput {
    pub name: String,
    pub sku: String,
    pub title: String,
    /// Fen.
    pub price: i64,
    #[serde(default)]
    pub original_price: Option<i64>,
    pub stock: i64,
    #[serde(default = "one")]
    pub per_customer: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Minutes a reservation waits for payment before its units return to stock.
    #[serde(default = "fifteen")]
    pub pay_minutes: i64,
}

fn one() -> i64 {
    1
}
fn fifteen() -> i64 {
    15
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Sale {
    pub id: i64,
    pub name: String,
    pub sku: String,
    pub title: String,
    pub price: i64,
    pub original_price: i64,
    pub stock: i64,
    pub sold: i64,
    pub per_customer: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub pay_minutes: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FlashOrder {
    pub id: i64,
    pub sale_id: i64,
    pub customer_id: i64,
    pub quantity: i64,
    pub amount: i64,
    pub status: String,
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

impl SaleInput {
    pub fn check(&self) -> Result<(), FlashError> {
        super::payments::check_item(
            &self.name,
            &self.sku,
            &self.title,
            self.price,
            self.original_price,
        )
        .map_err(|(field, reason)| invalid(field, reason))?;
        if !(1..=10_000_000).contains(&self.stock) {
            return Err(invalid("stock", "must be between 1 and 10,000,000"));
        }
        if self.per_customer < 1 {
            return Err(invalid("per_customer", "must be ≥ 1"));
        }
        if self.ends_at <= self.starts_at {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        if !(1..=1_440).contains(&self.pay_minutes) {
            return Err(invalid("pay_minutes", "must be between 1 and 1440"));
        }
        Ok(())
    }
}

/// What is known in memory of a sale being sold.
struct Counter {
    left: i64,
    held: HashMap<i64, i64>,
}

struct Live {
    sale: Sale,
    counter: Mutex<Counter>,
}

impl Live {
    /// Takes `qty` units for `customer` if the limit and the stock allow.
    fn take(&self, customer: i64, qty: i64) -> Result<(), FlashError> {
        let mut c = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        let held = c.held.get(&customer).copied().unwrap_or(0);
        if held + qty > self.sale.per_customer {
            return Err(FlashError::LimitReached(self.sale.per_customer));
        }
        if c.left < qty {
            return Err(FlashError::SoldOut);
        }
        c.left -= qty;
        c.held.insert(customer, held + qty);
        Ok(())
    }

    /// Gives units back (a failed write, an expiry, a cancellation).
    fn give_back(&self, customer: i64, qty: i64, to_stock: bool) {
        let mut c = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        if to_stock {
            c.left += qty;
        }
        if let Some(h) = c.held.get_mut(&customer) {
            *h -= qty;
            if *h <= 0 {
                c.held.remove(&customer);
            }
        }
    }

    fn left(&self) -> i64 {
        self.counter.lock().unwrap_or_else(|p| p.into_inner()).left
    }
}

/// Where attempts are decided: this process's memory (the default), or Redis, where a Lua
/// script checks and decrements (for several processes selling one sale, and the usual
/// alternative `siyu bench --suite flash` compares against).
enum Gate {
    Memory,
    Redis(Box<RedisGate>),
}

/// Keys per sale: `{prefix}:{tenant}:{sale}:left` (units) and `…:held` (a hash of units per
/// customer).
struct RedisGate {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
    seed: redis::Script,
    take: redis::Script,
    give: redis::Script,
}

/// Seeds a sale once: a process that finds the keys leaves them (Redis holds the truth).
const SEED_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"#;

/// 1 taken, -1 sold out, -2 the customer's limit.
const TAKE_LUA: &str = r#"
local q = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held + q > tonumber(ARGV[3]) then return -2 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left < q then return -1 end
redis.call('DECRBY', KEYS[1], q)
redis.call('HINCRBY', KEYS[2], ARGV[1], q)
return 1
"#;

const GIVE_LUA: &str = r#"
local q = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('INCRBY', KEYS[1], q) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -q) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"#;

impl RedisGate {
    async fn connect(url: &str, prefix: &str) -> Result<RedisGate, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(RedisGate {
            conn,
            prefix: prefix.to_owned(),
            seed: redis::Script::new(SEED_LUA),
            take: redis::Script::new(TAKE_LUA),
            give: redis::Script::new(GIVE_LUA),
        })
    }

    fn keys(&self, tenant: i64, sale: i64) -> (String, String) {
        let base = format!("{}:{tenant}:{sale}", self.prefix);
        (format!("{base}:left"), format!("{base}:held"))
    }

    async fn seed(&self, tenant: i64, sale: i64, c: &Counter) -> Result<(), FlashError> {
        let (left, held) = self.keys(tenant, sale);
        let mut inv = self.seed.key(left);
        inv.key(held).arg(c.left);
        for (cu, q) in &c.held {
            inv.arg(*cu).arg(*q);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(gate_error)?;
        Ok(())
    }

    async fn take(&self, tenant: i64, s: &Sale, customer: i64, qty: i64) -> Result<(), FlashError> {
        let (left, held) = self.keys(tenant, s.id);
        let r: i64 = self
            .take
            .key(left)
            .key(held)
            .arg(customer)
            .arg(qty)
            .arg(s.per_customer)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(gate_error)?;
        match r {
            1 => Ok(()),
            -2 => Err(FlashError::LimitReached(s.per_customer)),
            _ => Err(FlashError::SoldOut),
        }
    }

    async fn give(&self, tenant: i64, sale: i64, customer: i64, qty: i64, to_stock: bool) {
        let (left, held) = self.keys(tenant, sale);
        let r: Result<i64, _> = self
            .give
            .key(left)
            .key(held)
            .arg(customer)
            .arg(qty)
            .arg(if to_stock { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            // Redis now counts fewer units than the store: the sale undersells, never oversells.
            tracing::error!(error = %e, tenant, sale, "returning units to the Redis gate failed");
        }
    }
}

fn gate_error(e: redis::RedisError) -> FlashError {
    FlashError::Store(format!("the Redis stock gate failed: {e}"))
}

struct Job {
    tenant: i64,
    sale_id: i64,
    customer: i64,
    quantity: i64,
    amount: i64,
    now: i64,
    expires_at: i64,
    reply: oneshot::Sender<Result<FlashOrder, FlashError>>,
}

/// Every flash sale of every tenant this process sells.
pub struct FlashSales {
    db: Db,
    live: RwLock<HashMap<(i64, i64), Arc<Live>>>,
    /// Loading a sale and returning units both go through here, so a sale loaded while units
    /// are being returned cannot count them twice or miss them.
    loading: tokio::sync::Mutex<()>,
    writer: mpsc::Sender<Job>,
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

    /// Counts stock in Redis at `url` under the key prefix `prefix` (see [`Gate`]).
    pub async fn with_redis(
        db: Db,
        url: &str,
        prefix: &str,
    ) -> Result<Arc<FlashSales>, FlashError> {
        let g = RedisGate::connect(url, prefix).await.map_err(gate_error)?;
        Ok(Self::with_gate(db, Gate::Redis(Box::new(g))))
    }

    fn with_gate(db: Db, gate: Gate) -> Arc<FlashSales> {
        let (writer, rx) = mpsc::channel(4_096);
        tokio::spawn(write_reservations(db.clone(), rx));
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

    async fn take(
        &self,
        live: &Live,
        tenant: i64,
        customer: i64,
        qty: i64,
    ) -> Result<(), FlashError> {
        match &self.gate {
            Gate::Memory => live.take(customer, qty),
            Gate::Redis(r) => r.take(tenant, &live.sale, customer, qty).await,
        }
    }

    async fn give_back(&self, live: &Live, tenant: i64, customer: i64, qty: i64, to_stock: bool) {
        match &self.gate {
            Gate::Memory => live.give_back(customer, qty, to_stock),
            Gate::Redis(r) => r.give(tenant, live.sale.id, customer, qty, to_stock).await,
        }
    }

    pub async fn create(&self, tenant: i64, s: &SaleInput, now: i64) -> Result<Sale, FlashError> {
        s.check()?;
        let mut tx = self.db.begin().await?;
        let id = tx.reserve_ids("flash_sale", 1).await?;
        tx.execute(
            &sql("INSERT INTO flash_sales (id, tenant_id, name, sku, title, price, original_price, stock, sold, per_customer, starts_at, ends_at, pay_minutes, created_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13)")
                .bind(id)
                .bind(tenant)
                .bind(s.name.trim())
                .bind(s.sku.trim())
                .bind(s.title.trim())
                .bind(s.price)
                .bind(s.original_price.unwrap_or(s.price))
                .bind(s.stock)
                .bind(s.per_customer)
                .bind(s.starts_at)
                .bind(s.ends_at)
                .bind(s.pay_minutes)
                .bind(now),
        )
        .await?;
        tx.commit().await?;
        self.get(tenant, id).await
    }

    /// The sale as stored (`sold` counts pending and paid reservations).
    pub async fn get(&self, tenant: i64, id: i64) -> Result<Sale, FlashError> {
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

    pub async fn list(&self, tenant: i64) -> Result<Vec<Sale>, FlashError> {
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

    /// Units left as this process sees them (memory when the sale is being sold, else the store).
    pub async fn left(&self, tenant: i64, id: i64) -> Result<i64, FlashError> {
        if let (Gate::Memory, Some(l)) = (&self.gate, self.cached(tenant, id)) {
            return Ok(l.left());
        }
        let s = self.get(tenant, id).await?;
        Ok(s.stock - s.sold)
    }

    fn cached(&self, tenant: i64, id: i64) -> Option<Arc<Live>> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant, id))
            .cloned()
    }

    /// The sale's counter, read from the store on first use (this is the restart recovery).
    async fn live(&self, tenant: i64, id: i64) -> Result<Arc<Live>, FlashError> {
        if let Some(l) = self.cached(tenant, id) {
            return Ok(l);
        }
        let _g = self.loading.lock().await;
        if let Some(l) = self.cached(tenant, id) {
            return Ok(l);
        }
        let sale = self.get(tenant, id).await?;
        let held: Vec<(i64, i64)> = self
            .db
            .fetch_all(
                &sql("SELECT customer_id, CAST(SUM(quantity) AS BIGINT) FROM flash_orders WHERE tenant_id = $1 AND sale_id = $2 \
                      AND status IN ('pending', 'paid') GROUP BY customer_id")
                    .bind(tenant)
                    .bind(id),
            )
            .await?;
        let counter = Counter {
            left: sale.stock - sale.sold,
            held: held.into_iter().collect(),
        };
        if let Gate::Redis(r) = &self.gate {
            r.seed(tenant, id, &counter).await?;
        }
        let live = Arc::new(Live {
            counter: Mutex::new(counter),
            sale,
        });
        self.live
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant, id), live.clone());
        Ok(live)
    }

    /// One attempt to buy: a durable reservation, or why not.
    pub async fn attempt(
        self: &Arc<Self>,
        tenant: i64,
        sale_id: i64,
        customer: i64,
        quantity: i64,
        now: i64,
    ) -> Result<FlashOrder, FlashError> {
        if quantity < 1 {
            return Err(invalid("quantity", "must be ≥ 1"));
        }
        let live = self.live(tenant, sale_id).await?;
        let s = &live.sale;
        if now < s.starts_at {
            return Err(FlashError::NotStarted);
        }
        if now >= s.ends_at {
            return Err(FlashError::Ended);
        }
        // Above the limit on its own: refused before any arithmetic on the customer's number.
        if quantity > s.per_customer {
            return Err(FlashError::LimitReached(s.per_customer));
        }
        self.take(&live, tenant, customer, quantity).await?;
        let job = Job {
            tenant,
            sale_id,
            customer,
            quantity,
            amount: s.price * quantity,
            now,
            expires_at: now + s.pay_minutes * 60_000,
            reply: oneshot::channel().0,
        };
        // From here the unit is taken: the rest runs in its own task, so a client that goes
        // away mid-request cannot leave the unit neither reserved nor given back.
        let me = self.clone();
        let finish = tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            let outcome = match me.writer.send(Job { reply, ..job }).await {
                Ok(()) => answer
                    .await
                    .unwrap_or_else(|_| Err(FlashError::Store("the writer stopped".into()))),
                Err(_) => Err(FlashError::Store("the writer stopped".into())),
            };
            match outcome {
                Ok(o) => Ok(o),
                // The store says no unit is left (another process sold it): memory was behind.
                Err(FlashError::SoldOut) => {
                    me.give_back(&live, tenant, customer, quantity, false).await;
                    Err(FlashError::SoldOut)
                }
                Err(e) => {
                    me.give_back(&live, tenant, customer, quantity, true).await;
                    Err(e)
                }
            }
        });
        finish.await.unwrap_or_else(|e| {
            Err(FlashError::Store(format!(
                "the reservation task failed: {e}"
            )))
        })
    }

    pub async fn order(&self, tenant: i64, id: i64) -> Result<FlashOrder, FlashError> {
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
        tenant: i64,
        sale_id: i64,
        status: Option<&str>,
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
        tenant: i64,
        id: i64,
    ) -> Result<Vec<(String, i64, i64)>, FlashError> {
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
        tenant: i64,
        sale_id: i64,
        customer: i64,
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

    /// Pays a pending reservation through the provider and records the order.
    ///
    /// The reservation is claimed first (`pending → paying`, only before its deadline), so two
    /// payments of one reservation cannot both charge. The charge and its recording run in
    /// their own task: a client that goes away cannot stop them halfway. A charge that cannot
    /// be recorded is refunded; one lost to a crash is refunded by the payments sweep, and a
    /// reservation left `paying` expires 5 minutes after its deadline.
    pub async fn pay(
        self: &Arc<Self>,
        payments: &Payments,
        tenant: i64,
        order_id: i64,
        customer: Option<i64>,
        now: i64,
    ) -> Result<FlashOrder, FlashError> {
        let o = self.order(tenant, order_id).await?;
        if customer.is_some_and(|c| c != o.customer_id) {
            return Err(FlashError::NoOrder(order_id));
        }
        let claimed = self
            .db
            .execute(
                &sql("UPDATE flash_orders SET status = 'paying' WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND expires_at > $3")
                    .bind(tenant)
                    .bind(order_id)
                    .bind(now),
            )
            .await?;
        if claimed == 0 {
            let o = self.order(tenant, order_id).await?;
            return match o.status.as_str() {
                "paid" => Ok(o),
                "paying" => Err(FlashError::Refused("the reservation is being paid".into())),
                "pending" => Err(FlashError::Refused("the reservation has expired".into())),
                s => Err(FlashError::Refused(format!("the reservation is {s}"))),
            };
        }
        let (me, payments) = (self.clone(), payments.clone());
        tokio::spawn(async move { me.charge_and_record(&payments, tenant, o).await })
            .await
            .unwrap_or_else(|e| Err(FlashError::Store(format!("the payment task failed: {e}"))))
    }

    async fn charge_and_record(
        &self,
        payments: &Payments,
        tenant: i64,
        o: FlashOrder,
    ) -> Result<FlashOrder, FlashError> {
        let back_to_pending = || {
            sql("UPDATE flash_orders SET status = 'pending' WHERE tenant_id = $1 AND id = $2 AND status = 'paying'")
                .bind(tenant)
                .bind(o.id)
        };
        let sale = self.get(tenant, o.sale_id).await?;
        let payment = match payments
            .charge(
                Charge {
                    tenant_id: tenant,
                    customer_id: o.customer_id,
                    amount: o.amount,
                    purpose: format!("flash:{}", o.id),
                },
                now_ms(),
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                self.db.execute(&back_to_pending()).await?;
                return Err(e.into());
            }
        };
        let order_no = format!("SY-FS{}", o.id);
        let now = now_ms();
        let recorded = async {
            let mut tx = self.db.begin().await?;
            let n = tx
                .execute(
                    &sql("UPDATE flash_orders SET status = 'paid', paid_at = $3, payment_id = $4, order_no = $5 \
                          WHERE tenant_id = $1 AND id = $2 AND status = 'paying'")
                        .bind(tenant)
                        .bind(o.id)
                        .bind(now)
                        .bind(payment.id)
                        .bind(&order_no),
                )
                .await?;
            if n == 1 {
                insert_paid_order(
                    &mut tx,
                    tenant,
                    o.customer_id,
                    &order_no,
                    &sale.sku,
                    &sale.title,
                    o.quantity,
                    o.amount,
                    now,
                )
                .await?;
                tx.commit().await?;
            }
            Ok::<u64, DbError>(n)
        }
        .await;
        match recorded {
            Ok(1) => self.order(tenant, o.id).await,
            Ok(_) => {
                payments.refund(tenant, payment.id, now).await?;
                Err(FlashError::Refused(
                    "the reservation expired before the payment settled; the payment was refunded"
                        .into(),
                ))
            }
            Err(e) => {
                payments.refund(tenant, payment.id, now).await?;
                let _ = self.db.execute(&back_to_pending()).await;
                Err(e.into())
            }
        }
    }

    /// The customer gives a pending reservation up; its units return to stock at once.
    pub async fn cancel(
        &self,
        tenant: i64,
        order_id: i64,
        customer: Option<i64>,
    ) -> Result<FlashOrder, FlashError> {
        let o = self.order(tenant, order_id).await?;
        if customer.is_some_and(|c| c != o.customer_id) {
            return Err(FlashError::NoOrder(order_id));
        }
        if o.status != "pending" {
            return Err(FlashError::Refused(format!(
                "the reservation is {}",
                o.status
            )));
        }
        self.release(
            "cancelled",
            &sql("UPDATE flash_orders SET status = 'cancelled' WHERE tenant_id = $1 AND id = $2 AND status = 'pending' \
                  RETURNING tenant_id, sale_id, customer_id, quantity")
                .bind(tenant)
                .bind(order_id),
        )
        .await?;
        self.order(tenant, order_id).await
    }

    /// Expires every reservation past its payment deadline; returns how many.
    pub async fn expire_due(&self, now: i64) -> Result<usize, FlashError> {
        self.release(
            "expired",
            &sql("UPDATE flash_orders SET status = 'expired' WHERE (status = 'pending' AND expires_at <= $1) \
                  OR (status = 'paying' AND expires_at <= $2) RETURNING tenant_id, sale_id, customer_id, quantity")
                .bind(now)
                .bind(now - 5 * 60_000),
        )
        .await
    }

    /// Runs `update` (which ends reservations and returns them), moves `sold` back in the same
    /// transaction, then returns the units to the counters in memory.
    async fn release(
        &self,
        why: &str,
        update: &crate::platform::db::Sql,
    ) -> Result<usize, FlashError> {
        let _g = self.loading.lock().await;
        let mut tx = self.db.begin().await?;
        let ended: Vec<(i64, i64, i64, i64)> = tx.fetch_all(update).await?;
        // Sales in id order, as the reservation writer takes them: no deadlock between the two.
        let mut per_sale: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
        for (tenant, sale, _, q) in &ended {
            *per_sale.entry((*tenant, *sale)).or_default() += q;
        }
        for ((tenant, sale), q) in &per_sale {
            tx.execute(
                &sql("UPDATE flash_sales SET sold = sold - $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(*tenant)
                    .bind(*sale)
                    .bind(*q),
            )
            .await?;
        }
        tx.commit().await?;
        for (tenant, sale, customer, q) in &ended {
            match (&self.gate, self.cached(*tenant, *sale)) {
                (Gate::Memory, Some(l)) => l.give_back(*customer, *q, true),
                // A sale not loaded here reads the store when it is (nothing to return to).
                (Gate::Memory, None) => {}
                // Redis outlives this process: its counts get the units back either way.
                (Gate::Redis(r), _) => r.give(*tenant, *sale, *customer, *q, true).await,
            }
        }
        if !ended.is_empty() {
            tracing::debug!(
                count = ended.len(),
                why,
                "flash reservations returned to stock"
            );
        }
        Ok(ended.len())
    }

    /// Expires due reservations every `every`, until the sales are dropped.
    pub fn spawn_expiry(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            // The first run after one period: reservations made at start are not yet due.
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                if let Err(e) = me.expire_due(now_ms()).await {
                    tracing::error!(error = %e, "expiring flash reservations failed; will retry");
                }
            }
        });
    }
}

/// The group-commit writer: takes every reservation waiting, stores them in one transaction,
/// and answers each only after the commit.
async fn write_reservations(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let outcome = store_reservations(&db, &jobs).await;
        match outcome {
            Ok(results) => {
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count = jobs.len(), "storing flash reservations failed");
                for job in jobs {
                    let _ = job.reply.send(Err(FlashError::Store(e.to_string())));
                }
            }
        }
    }
}

async fn store_reservations(
    db: &Db,
    jobs: &[Job],
) -> DbResult<Vec<Result<FlashOrder, FlashError>>> {
    let mut tx = db.begin().await?;
    // Move `sold` per sale; the condition is the store's own guard against overselling.
    let mut per_sale: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        per_sale.entry((j.tenant, j.sale_id)).or_default().push(i);
    }
    let mut accepted = vec![true; jobs.len()];
    let mut sales: Vec<_> = per_sale.into_iter().collect();
    sales.sort_by_key(|(k, _)| *k);
    for ((tenant, sale), idx) in &sales {
        let total: i64 = idx.iter().map(|&i| jobs[i].quantity).sum();
        let n = tx.execute(&take_units(*tenant, *sale, total)).await?;
        if n == 0 {
            // Fewer units in the store than memory thought: take them one reservation at a time.
            for &i in idx {
                accepted[i] = tx
                    .execute(&take_units(*tenant, *sale, jobs[i].quantity))
                    .await?
                    == 1;
            }
        }
    }
    let count = accepted.iter().filter(|a| **a).count();
    let mut first_id = if count > 0 {
        tx.reserve_ids("flash_order", count as i64).await?
    } else {
        0
    };
    let mut orders: Vec<Option<FlashOrder>> = Vec::with_capacity(jobs.len());
    for (j, ok) in jobs.iter().zip(&accepted) {
        if *ok {
            orders.push(Some(FlashOrder {
                id: first_id,
                sale_id: j.sale_id,
                customer_id: j.customer,
                quantity: j.quantity,
                amount: j.amount,
                status: "pending".into(),
                created_at: j.now,
                expires_at: j.expires_at,
                paid_at: None,
                payment_id: None,
                order_no: None,
            }));
            first_id += 1;
        } else {
            orders.push(None);
        }
    }
    const COLS: usize = 9;
    let rows: Vec<(&Job, &FlashOrder)> = jobs
        .iter()
        .zip(&orders)
        .filter_map(|(j, o)| o.as_ref().map(|o| (j, o)))
        .collect();
    for chunk in rows.chunks(crate::platform::db::MAX_BINDS / COLS) {
        let mut q = sql(format!(
            "INSERT INTO flash_orders (id, tenant_id, sale_id, customer_id, quantity, amount, status, created_at, expires_at) VALUES {}",
            values_placeholders(chunk.len(), COLS, 1)
        ));
        for (j, o) in chunk {
            for v in [
                Value::from(o.id),
                j.tenant.into(),
                j.sale_id.into(),
                j.customer.into(),
                j.quantity.into(),
                j.amount.into(),
                "pending".into(),
                j.now.into(),
                j.expires_at.into(),
            ] {
                q.push_arg(v);
            }
        }
        tx.execute(&q).await?;
    }
    tx.commit().await?;
    Ok(orders
        .into_iter()
        .map(|o| o.ok_or(FlashError::SoldOut))
        .collect())
}

fn take_units(tenant: i64, sale: i64, n: i64) -> crate::platform::db::Sql {
    sql("UPDATE flash_sales SET sold = sold + $3 WHERE tenant_id = $1 AND id = $2 AND sold + $3 <= stock")
        .bind(tenant)
        .bind(sale)
        .bind(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(stock: i64, per_customer: i64) -> Live {
        Live {
            sale: Sale {
                id: 1,
                name: "n".into(),
                sku: "s".into(),
                title: "t".into(),
                price: 100,
                original_price: 100,
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
        assert!(l.take(1, 2).is_ok());
        assert!(matches!(l.take(1, 1), Err(FlashError::LimitReached(2))));
        assert!(l.take(2, 1).is_ok());
        assert!(matches!(l.take(3, 1), Err(FlashError::SoldOut)));
        l.give_back(1, 2, true);
        assert_eq!(l.left(), 2);
        assert!(
            l.take(1, 2).is_ok(),
            "returned units and limit are free again"
        );
    }

    #[test]
    fn sale_input_names_the_wrong_field() {
        let ok = SaleInput {
            name: "双11秒杀".into(),
            sku: "A1".into(),
            title: "面霜".into(),
            price: 9_900,
            original_price: Some(19_900),
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
        assert_eq!(bad(|s| s.original_price = Some(1)), "original_price");
        assert_eq!(bad(|s| s.pay_minutes = 0), "pay_minutes");
        assert_eq!(bad(|s| s.title = " ".into()), "title");
    }
}
