//! An order whose buyer could not be identified (a masked phone and no buyer id) has a customer
//! of its own, an unlinked buyer. It is linked when an identity for it appears: a later import or
//! sync of the same order that names the buyer (`know::orders::store_orders`), a customer who
//! quotes the order number to a guide or the service desk, who links it here, or a customer who
//! claims a package card with a verified phone and the order number from the parcel, when the
//! order's masked phone is theirs.

use super::oneid;
use super::phone::Phone;
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
    /// The order's masked phone (`138****8000`) is not the claimant's verified number, or the
    /// order has none to check it against.
    #[error("order {channel}/{order_no} was not placed with this phone number")]
    PhoneDiffers { channel: String, order_no: String },
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
            LinkError::PhoneDiffers { .. } => Refusal::Rejected("phone_differs"),
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
    link(db, tenant, channel, order_no, customer, None, now).await
}

/// [`link_order`] asked by the customer themselves (a package card's claim): only when the
/// order was placed with their verified phone, which the platform's export or API showed
/// masked (`138****8000`). An order number alone proves nothing: anyone holding a parcel, or
/// guessing numbers, could take a stranger's order into their profile.
pub async fn link_order_by_phone(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    order_no: &str,
    customer: CustomerId,
    verified: &Phone,
    now: i64,
) -> Result<CustomerId, LinkError> {
    link(db, tenant, channel, order_no, customer, Some(verified), now).await
}

async fn link(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    order_no: &str,
    customer: CustomerId,
    verified: Option<&Phone>,
    now: i64,
) -> Result<CustomerId, LinkError> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let order: Option<(CustomerId, i64, Option<String>)> = tx
        .fetch_optional(
            &sql(
                "SELECT customer_id, buyer_unlinked, phone_hint FROM orders \
                 WHERE tenant_id = $1 AND channel = $2 AND order_no = $3",
            )
            .bind(tenant)
            .bind(channel)
            .bind(order_no),
        )
        .await?;
    let Some((buyer, unlinked, hint)) = order else {
        return Err(LinkError::NoOrder {
            channel: channel.into(),
            order_no: order_no.into(),
        });
    };
    if let Some(phone) = verified
        && hint.as_deref() != Some(phone.masked().as_str())
    {
        return Err(LinkError::PhoneDiffers {
            channel: channel.into(),
            order_no: order_no.into(),
        });
    }
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
