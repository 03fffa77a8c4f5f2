//! Reservations that end unpaid: cancelled by the customer or expired past their deadline,
//! with their units returned to `sold` and to the gate.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::platform::clock::now_ms;
use crate::platform::db::sql;

impl FlashSales {
    /// The customer gives a pending reservation up; its units return to stock at once.
    pub async fn cancel(
        &self,
        tenant: TenantId,
        order_id: i64,
        customer: Option<CustomerId>,
    ) -> Result<FlashOrder, FlashError> {
        let o = self.order(tenant, order_id).await?;
        if customer.is_some_and(|c| c != o.customer_id) {
            return Err(FlashError::NoOrder(order_id));
        }
        if o.status != FlashOrderStatus::Pending {
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
    pub(super) async fn release(
        &self,
        why: &str,
        update: &crate::platform::db::Sql,
    ) -> Result<usize, FlashError> {
        let _g = self.loading.lock().await;
        let mut tx = self.db.begin().await?;
        let ended: Vec<(TenantId, i64, CustomerId, i64)> = tx.fetch_all(update).await?;
        // Sales in id order, as the reservation writer takes them: no deadlock between the two.
        let mut per_sale: std::collections::BTreeMap<(TenantId, i64), i64> = Default::default();
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
