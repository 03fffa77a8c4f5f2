//! An attempt to buy and its reservation: a unit taken at the gate is handed to the
//! group-commit writer, which stores many reservations in one transaction and moves `sold`.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
use std::collections::HashMap;
use std::sync::Arc;

use siyu_store::group_commit::GroupWriter;

use super::*;
use crate::platform::db::{Db, DbResult, Value, sql, values_placeholders};

/// Reservations taken into one transaction at most.
pub(super) const GROUP: usize = 2_000;

pub(super) struct Job {
    pub(super) tenant: TenantId,
    pub(super) sale_id: i64,
    pub(super) customer: CustomerId,
    pub(super) quantity: i64,
    pub(super) amount: Fen,
    pub(super) now: i64,
    pub(super) expires_at: i64,
}

/// The reservations' side of the store's group-commit writer: every reservation waiting is
/// stored in one transaction and answered only after the commit.
pub(super) struct Reservations {
    pub(super) db: Db,
}

impl GroupWriter for Reservations {
    type Job = Job;
    type Written = Vec<Result<FlashOrder, FlashError>>;
    type Answer = Result<FlashOrder, FlashError>;

    async fn write(&self, jobs: Vec<Job>) -> Self::Written {
        match store_reservations(&self.db, &jobs).await {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, count = jobs.len(), "storing flash reservations failed");
                let e = e.to_string();
                jobs.iter()
                    .map(|_| Err(FlashError::Store(e.clone())))
                    .collect()
            }
        }
    }

    async fn settle(&self, written: Self::Written) -> Vec<Self::Answer> {
        written
    }
}

pub(super) async fn store_reservations(
    db: &Db,
    jobs: &[Job],
) -> DbResult<Vec<Result<FlashOrder, FlashError>>> {
    let mut tx = db.begin().await?;
    // Move `sold` per sale; the condition is the store's own guard against overselling.
    let mut per_sale: HashMap<(TenantId, i64), Vec<usize>> = HashMap::new();
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
                status: FlashOrderStatus::Pending,
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
                FlashOrderStatus::Pending.into(),
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

pub(super) fn take_units(tenant: TenantId, sale: i64, n: i64) -> crate::platform::db::Sql {
    sql("UPDATE flash_sales SET sold = sold + $3 WHERE tenant_id = $1 AND id = $2 AND sold + $3 <= stock")
        .bind(tenant)
        .bind(sale)
        .bind(n)
}

impl FlashSales {
    /// One attempt to buy: a durable reservation, or why not.
    pub async fn attempt(
        self: &Arc<Self>,
        tenant: TenantId,
        sale_id: i64,
        customer: CustomerId,
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
        };
        // From here the unit is taken: the rest runs in its own task, so a client that goes
        // away mid-request cannot leave the unit neither reserved nor given back.
        let me = self.clone();
        let finish = tokio::spawn(async move {
            let outcome = me
                .writer
                .submit(job)
                .await
                .unwrap_or_else(|_| Err(FlashError::Store("the writer stopped".into())));
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
}
