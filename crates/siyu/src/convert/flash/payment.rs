//! Paying a pending reservation: claimed `pending → paying`, charged, and recorded as a paid
//! order, or refunded when it cannot be recorded.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::Arc;

use super::*;
use crate::convert::payments::{Charge, Payments, insert_paid_order};
use crate::platform::clock::now_ms;
use crate::platform::db::{DbError, sql};

impl FlashSales {
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
        tenant: TenantId,
        order_id: i64,
        customer: Option<CustomerId>,
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
            return match o.status {
                FlashOrderStatus::Paid => Ok(o),
                FlashOrderStatus::Paying => {
                    Err(FlashError::Refused("the reservation is being paid".into()))
                }
                FlashOrderStatus::Pending => {
                    Err(FlashError::Refused("the reservation has expired".into()))
                }
                s @ (FlashOrderStatus::Cancelled | FlashOrderStatus::Expired) => {
                    Err(FlashError::Refused(format!("the reservation is {s}")))
                }
            };
        }
        let (me, payments) = (self.clone(), payments.clone());
        tokio::spawn(async move { me.charge_and_record(&payments, tenant, o).await })
            .await
            .unwrap_or_else(|e| Err(FlashError::Store(format!("the payment task failed: {e}"))))
    }

    pub(super) async fn charge_and_record(
        &self,
        payments: &Payments,
        tenant: TenantId,
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
}
