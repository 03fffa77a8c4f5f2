//! Payments for activities (flash sales, group buys, bargains) through one adapter trait.
//!
//! Siyu does not hold money: a [`PaymentProvider`] charges and refunds, and Siyu keeps its own
//! record of every payment (`payments`) so that a refund is made once and only for what was paid.
//! The [`LocalProvider`] settles at once, so the demo and the tests run offline; WeChat Pay is a
//! later adapter behind the same trait.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::platform::crypto::random_token;
use crate::platform::db::{Db, DbError, Tx, sql};

/// The highest activity price accepted, in fen (¥1,000,000): far above any item, far below
/// where price × quantity could overflow.
pub const MAX_PRICE: Fen = Fen::new(100_000_000);

/// The item an activity sells, checked alike for flash sales, group buys and bargains: the
/// first wrong field and why.
pub fn check_item(
    name: &str,
    sku: &str,
    title: &str,
    price: Fen,
    original_price: Option<Fen>,
) -> Result<(), (&'static str, String)> {
    for (field, v) in [("name", name), ("sku", sku), ("title", title)] {
        if v.trim().is_empty() {
            return Err((field, "must not be empty".into()));
        }
    }
    if !(Fen::ZERO..=MAX_PRICE).contains(&price) {
        return Err((
            "price",
            "must be between 0 and 100,000,000 fen (¥1,000,000)".into(),
        ));
    }
    if original_price.is_some_and(|p| p < price) {
        return Err(("original_price", "must be ≥ price".into()));
    }
    Ok(())
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment provider declined: {0}")]
    Declined(String),
    #[error("the payment provider could not be reached: {0}")]
    Unavailable(String),
    #[error("payment {0} not found")]
    NotFound(i64),
    #[error(
        "online payment is not set up on this server (payment_provider in siyu.toml); nothing was charged"
    )]
    NotConfigured,
    #[error(
        "payment_provider {0:?} is not a payment provider: leave it unset, or write \"local-demo\" for a demo that takes no money"
    )]
    UnknownProvider(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for PaymentError {
    fn refusal(&self) -> Refusal {
        match self {
            PaymentError::Declined(_) => Refusal::PaymentDeclined,
            PaymentError::Unavailable(_) => Refusal::Unavailable("payment_unavailable"),
            PaymentError::NotFound(_) => Refusal::NotFound("not_found"),
            PaymentError::NotConfigured => Refusal::Unavailable("payments_not_configured"),
            PaymentError::UnknownProvider(_) | PaymentError::Db(_) => Refusal::Internal,
        }
    }
}

/// What a provider is asked to charge.
#[derive(Debug, Clone)]
pub struct Charge {
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    /// Fen.
    pub amount: Fen,
    /// What it pays for, e.g. `flash:12` or `team:3`; the provider shows it as the description.
    pub purpose: String,
}

/// A payment service. Implementations answer only after the provider has settled or refused.
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Charges and returns the provider's reference for the payment.
    fn charge<'a>(&'a self, c: &'a Charge) -> BoxFuture<'a, Result<String, PaymentError>>;
    /// Refunds a whole payment and returns the provider's refund reference. Called at most once
    /// per payment by [`Payments::refund`].
    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: Fen,
    ) -> BoxFuture<'a, Result<String, PaymentError>>;
}

/// Settles every charge and refund at once, in process.
#[derive(Debug, Default)]
pub struct LocalProvider;

impl PaymentProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }
    fn charge<'a>(&'a self, c: &'a Charge) -> BoxFuture<'a, Result<String, PaymentError>> {
        Box::pin(async move {
            if c.amount < Fen::ZERO {
                return Err(PaymentError::Declined("negative amount".into()));
            }
            Ok(format!("local-{}", random_token(12)))
        })
    }
    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        _amount: Fen,
    ) -> BoxFuture<'a, Result<String, PaymentError>> {
        Box::pin(async move { Ok(format!("{provider_ref}-refund")) })
    }
}

crate::platform::text_enum::text_enum! {
    /// Where a payment stands: `refunding` holds it while the provider refunds, so two callers
    /// cannot both send the refund.
    pub enum PaymentStatus {
        Paid = "paid",
        Refunding = "refunding",
        Refunded = "refunded",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Payment {
    pub id: i64,
    pub customer_id: CustomerId,
    pub provider: String,
    pub provider_ref: String,
    pub purpose: String,
    pub amount: Fen,
    pub status: PaymentStatus,
    pub refund_ref: Option<String>,
    pub created_at: i64,
    pub refunded_at: Option<i64>,
}

const PAYMENT_COLS: &str = "id, customer_id, provider, provider_ref, purpose, amount, status, refund_ref, created_at, refunded_at";

/// The name of the setting that turns on the [`LocalProvider`]: it says what it is for.
pub const LOCAL_DEMO: &str = "local-demo";

/// The provider, if one is set up, and Siyu's record of what it did.
#[derive(Clone)]
pub struct Payments {
    db: Db,
    provider: Option<Arc<dyn PaymentProvider>>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payments({})", self.provider_name().unwrap_or("none"))
    }
}

impl Payments {
    pub fn new(db: Db, provider: Arc<dyn PaymentProvider>) -> Payments {
        Payments {
            db,
            provider: Some(provider),
        }
    }

    /// Payments settled by the [`LocalProvider`].
    pub fn local(db: Db) -> Payments {
        Payments::new(db, Arc::new(LocalProvider))
    }

    /// The provider the `payment_provider` setting names: none when unset (every charge is
    /// refused), the [`LocalProvider`] for [`LOCAL_DEMO`].
    pub fn configured(db: Db, name: Option<&str>) -> Result<Payments, PaymentError> {
        match name.map(str::trim) {
            None | Some("") => Ok(Payments { db, provider: None }),
            Some(LOCAL_DEMO) => Ok(Payments::local(db)),
            Some(other) => Err(PaymentError::UnknownProvider(other.to_owned())),
        }
    }

    /// The provider's name (`local` for the local one), or none.
    pub fn provider_name(&self) -> Option<&'static str> {
        self.provider.as_ref().map(|p| p.name())
    }

    /// Refuses at once when no provider is set up, so that a purchase is turned away before it
    /// holds stock it could never pay for.
    pub fn require(&self) -> Result<(), PaymentError> {
        match self.provider {
            Some(_) => Ok(()),
            None => Err(PaymentError::NotConfigured),
        }
    }

    /// Charges the customer and records the payment. A charge the provider took is recorded
    /// even if the caller then fails, so that it can be found and refunded.
    pub async fn charge(&self, c: Charge, _requested_at: i64) -> Result<Payment, PaymentError> {
        let provider = self.provider.as_ref().ok_or(PaymentError::NotConfigured)?;
        let provider_ref = provider.charge(&c).await?;
        // Stamped when recorded, not when asked: the sweep's grace counts from here.
        let now = crate::platform::clock::now_ms();
        let mut tx = self.db.begin().await?;
        let id = tx.reserve_ids("payment", 1).await?;
        tx.execute(
            &sql("INSERT INTO payments (id, tenant_id, customer_id, provider, provider_ref, purpose, amount, status, created_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, 'paid', $8)")
                .bind(id)
                .bind(c.tenant_id)
                .bind(c.customer_id)
                .bind(provider.name())
                .bind(&provider_ref)
                .bind(&c.purpose)
                .bind(c.amount)
                .bind(now),
        )
        .await?;
        tx.commit().await?;
        Ok(Payment {
            id,
            customer_id: c.customer_id,
            provider: provider.name().to_owned(),
            provider_ref,
            purpose: c.purpose,
            amount: c.amount,
            status: PaymentStatus::Paid,
            refund_ref: None,
            created_at: now,
            refunded_at: None,
        })
    }

    /// Refunds a payment in full, once: a payment already refunded is returned as it is.
    pub async fn refund(
        &self,
        tenant: TenantId,
        id: i64,
        now: i64,
    ) -> Result<Payment, PaymentError> {
        let p = self.get(tenant, id).await?;
        if p.status == PaymentStatus::Refunded {
            return Ok(p);
        }
        // Claim the refund first, so two callers cannot both send it to the provider.
        let claimed = self
            .db
            .execute(
                &sql("UPDATE payments SET status = 'refunding' WHERE tenant_id = $1 AND id = $2 AND status = 'paid'")
                    .bind(tenant)
                    .bind(id),
            )
            .await?;
        if claimed == 0 {
            return self.get(tenant, id).await;
        }
        // A local payment took no money and is refunded locally whatever is set up now.
        let provider: Arc<dyn PaymentProvider> =
            match &self.provider {
                _ if p.provider == LocalProvider.name() => Arc::new(LocalProvider),
                Some(configured) if configured.name() == p.provider => configured.clone(),
                _ => {
                    self.db
                    .execute(
                        &sql("UPDATE payments SET status = 'paid' WHERE tenant_id = $1 AND id = $2")
                            .bind(tenant)
                            .bind(id),
                    )
                    .await?;
                    return Err(PaymentError::NotConfigured);
                }
            };
        match provider.refund(&p.provider_ref, p.amount).await {
            Ok(refund_ref) => {
                self.db
                    .execute(
                        &sql("UPDATE payments SET status = 'refunded', refund_ref = $3, refunded_at = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'refunding'")
                            .bind(tenant)
                            .bind(id)
                            .bind(refund_ref)
                            .bind(now),
                    )
                    .await?;
                self.get(tenant, id).await
            }
            Err(e) => {
                // Back to paid, so the refund is tried again later.
                self.db
                    .execute(
                        &sql(
                            "UPDATE payments SET status = 'paid' WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(tenant)
                        .bind(id),
                    )
                    .await?;
                Err(e)
            }
        }
    }

    /// Refunds every payment that bought nothing: paid at least `grace_ms` ago and named by no
    /// reservation, bargain or team seat (the process died between charging and recording, or
    /// a refund failed and waits to be tried again). With `tenant`, only that tenant's.
    pub async fn refund_unclaimed(
        &self,
        tenant: Option<TenantId>,
        now: i64,
        grace_ms: i64,
    ) -> Result<usize, PaymentError> {
        let due: Vec<(TenantId, i64)> = self
            .db
            .fetch_all(
                &sql("SELECT p.tenant_id, p.id FROM payments p WHERE p.status = 'paid' AND p.created_at <= $1 \
                      AND ($2 < 0 OR p.tenant_id = $2) \
                      AND NOT EXISTS (SELECT 1 FROM flash_orders f WHERE f.tenant_id = p.tenant_id AND f.payment_id = p.id) \
                      AND NOT EXISTS (SELECT 1 FROM bargains b WHERE b.tenant_id = p.tenant_id AND b.payment_id = p.id) \
                      AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.tenant_id = p.tenant_id AND m.payment_id = p.id)")
                    .bind(now - grace_ms)
                    .bind(tenant.map_or(-1, TenantId::get)),
            )
            .await?;
        let mut n = 0;
        for (t, id) in due {
            match self.refund(t, id, now).await {
                Ok(_) => n += 1,
                Err(e) => {
                    tracing::warn!(tenant = %t, payment = id, error = %e, "refund failed; will retry")
                }
            }
        }
        Ok(n)
    }

    pub async fn get(&self, tenant: TenantId, id: i64) -> Result<Payment, PaymentError> {
        self.db
            .fetch_optional(
                &sql(format!(
                    "SELECT {PAYMENT_COLS} FROM payments WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant)
                .bind(id),
            )
            .await?
            .ok_or(PaymentError::NotFound(id))
    }
}

/// Records a paid activity order in `orders` (channel `mall`), so that it counts for RFM,
/// points and tiers like any other order. Runs inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn insert_paid_order(
    tx: &mut Tx,
    tenant: TenantId,
    customer_id: CustomerId,
    order_no: &str,
    sku: &str,
    title: &str,
    quantity: i64,
    amount: Fen,
    now: i64,
) -> Result<(), DbError> {
    let id = tx.reserve_ids("order", 1).await?;
    tx.execute(
        &sql("INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, ordered_at, paid_at, amount, refund_amount, item_count, source, updated_at) \
              VALUES ($1, $2, 'mall', $3, $4, 'paid', $5, $5, $6, 0, $7, 'activity', $5)")
            .bind(id)
            .bind(tenant)
            .bind(order_no)
            .bind(customer_id)
            .bind(now)
            .bind(amount)
            .bind(quantity),
    )
    .await?;
    tx.execute(
        &sql("INSERT INTO order_lines (tenant_id, order_id, line_no, sku, title, quantity, price) VALUES ($1, $2, 1, $3, $4, $5, $6)")
            .bind(tenant)
            .bind(id)
            .bind(sku)
            .bind(title)
            .bind(quantity)
            .bind(if quantity > 0 { amount / quantity } else { amount }),
    )
    .await?;
    Ok(())
}
