//! The sale's counter in memory: units left and units held per customer behind one short
//! lock, loaded from `stock - sold` on first use, taken from and given back to through the gate.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::platform::db::sql;

/// What is known in memory of a sale being sold.
pub(super) struct Counter {
    pub(super) left: i64,
    pub(super) held: HashMap<CustomerId, i64>,
}

pub(super) struct Live {
    pub(super) sale: Sale,
    pub(super) counter: Mutex<Counter>,
}

impl Live {
    /// Takes `qty` units for `customer` if the limit and the stock allow.
    pub(super) fn take(&self, customer: CustomerId, qty: i64) -> Result<(), FlashError> {
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
    pub(super) fn give_back(&self, customer: CustomerId, qty: i64, to_stock: bool) {
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

    pub(super) fn left(&self) -> i64 {
        self.counter.lock().unwrap_or_else(|p| p.into_inner()).left
    }
}

impl FlashSales {
    pub(super) async fn take(
        &self,
        live: &Live,
        tenant: TenantId,
        customer: CustomerId,
        qty: i64,
    ) -> Result<(), FlashError> {
        match &self.gate {
            Gate::Memory => live.take(customer, qty),
            Gate::Redis(r) => r.take(tenant, &live.sale, customer, qty).await,
        }
    }

    pub(super) async fn give_back(
        &self,
        live: &Live,
        tenant: TenantId,
        customer: CustomerId,
        qty: i64,
        to_stock: bool,
    ) {
        match &self.gate {
            Gate::Memory => live.give_back(customer, qty, to_stock),
            Gate::Redis(r) => r.give(tenant, live.sale.id, customer, qty, to_stock).await,
        }
    }

    /// Units left as this process sees them (memory when the sale is being sold, else the store).
    pub async fn left(&self, tenant: TenantId, id: i64) -> Result<i64, FlashError> {
        if let (Gate::Memory, Some(l)) = (&self.gate, self.cached(tenant, id)) {
            return Ok(l.left());
        }
        let s = self.get(tenant, id).await?;
        Ok(s.stock - s.sold)
    }

    pub(super) fn cached(&self, tenant: TenantId, id: i64) -> Option<Arc<Live>> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant, id))
            .cloned()
    }

    /// The sale's counter, read from the store on first use (this is the restart recovery).
    pub(super) async fn live(&self, tenant: TenantId, id: i64) -> Result<Arc<Live>, FlashError> {
        if let Some(l) = self.cached(tenant, id) {
            return Ok(l);
        }
        let _g = self.loading.lock().await;
        if let Some(l) = self.cached(tenant, id) {
            return Ok(l);
        }
        let sale = self.get(tenant, id).await?;
        let held: Vec<(CustomerId, i64)> = self
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
}
