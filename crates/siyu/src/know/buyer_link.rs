//! An order whose buyer could not be identified (a masked phone and no buyer id) has a customer
//! of its own, an unlinked buyer. It is linked when an identity for it appears: a later import or
//! sync of the same order that names the buyer (`know::orders::store_orders`), or a customer who
//! quotes the order number to a guide or the service desk, who links it here.

use super::oneid;
use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("order {channel}/{order_no} not found")]
    NoOrder { channel: String, order_no: String },
    #[error("customer {0} not found")]
    NoCustomer(CustomerId),
    #[error("order {channel}/{order_no} already belongs to customer {customer}")]
    AlreadyLinked {
        channel: String,
        order_no: String,
        customer: CustomerId,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for LinkError {
    fn refusal(&self) -> Refusal {
        match self {
            LinkError::NoOrder { .. } => Refusal::NotFound("order_not_found"),
            LinkError::NoCustomer(_) => Refusal::NotFound("customer_not_found"),
            LinkError::AlreadyLinked { .. } => Refusal::Conflict("already_linked"),
            LinkError::Db(_) => Refusal::Internal,
        }
    }
}

/// Gives an unlinked buyer's order to `customer`: the unlinked buyer is merged into them, with
/// everything that followed the order. Returns the unlinked buyer's id (now merged).
pub async fn link_order(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    order_no: &str,
    customer: CustomerId,
    now: i64,
) -> Result<CustomerId, LinkError> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let order: Option<(CustomerId, i64)> = tx
        .fetch_optional(
            &sql("SELECT customer_id, buyer_unlinked FROM orders \
                 WHERE tenant_id = $1 AND channel = $2 AND order_no = $3")
            .bind(tenant)
            .bind(channel)
            .bind(order_no),
        )
        .await?;
    let Some((buyer, unlinked)) = order else {
        return Err(LinkError::NoOrder {
            channel: channel.into(),
            order_no: order_no.into(),
        });
    };
    if unlinked == 0 {
        return Err(LinkError::AlreadyLinked {
            channel: channel.into(),
            order_no: order_no.into(),
            customer: buyer,
        });
    }
    let live: Option<(i64,)> = tx
        .fetch_optional(
            &sql(
                "SELECT id FROM customers WHERE tenant_id = $1 AND id = $2 AND merged_into IS NULL",
            )
            .bind(tenant)
            .bind(customer),
        )
        .await?;
    if live.is_none() || customer == buyer {
        return Err(LinkError::NoCustomer(customer));
    }
    oneid::link_unlinked_buyers(&mut tx, tenant, &[(buyer.get(), customer.get())], now).await?;
    tx.execute(
        &sql("UPDATE orders SET buyer_unlinked = 0, updated_at = $4 \
             WHERE tenant_id = $1 AND channel = $2 AND order_no = $3")
        .bind(tenant)
        .bind(channel)
        .bind(order_no)
        .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(buyer)
}
