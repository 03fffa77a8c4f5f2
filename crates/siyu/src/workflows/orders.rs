//! When orders are stored: pushed through the API (a store's POS included) or paid on an H5
//! activity (flash sale, group buy, bargain), and when an import of exports finishes.
//!
//! After [`orders_stored`] returns, the buyers' figures (first and last order, spend, RFM class,
//! lifecycle stage), members' points (earned once per order, taken back on refund), tiers (up at
//! once; down only at the daily review), the audience index and the rule tags all follow the
//! orders. After [`import_finished`], the figures, RFM and stages of the whole tenant follow and
//! every server rebuilds its index; imported history earns no points (docs/CONVERT.md), and
//! tiers follow at the daily review.

use crate::convert::{points, tiers};
use crate::know::CustomerId;
use crate::know::audience::{self, Audiences, Change};
use crate::know::profile;
use crate::platform::TenantId;
use crate::platform::db::{Backend, Db};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("store: {0}")]
    Db(#[from] crate::platform::db::DbError),
    #[error("points: {0}")]
    Points(#[from] points::PointsError),
    #[error("audience index: {0}")]
    Audience(#[from] audience::AudienceError),
}

/// Orders just stored for one tenant.
#[derive(Debug, Clone, Copy)]
pub struct OrdersStored<'a> {
    pub tenant: TenantId,
    /// The orders, as (channel, order number).
    pub orders: &'a [(String, String)],
    /// Their buyers, before and after the store (an order that moved to another customer
    /// changes both).
    pub buyers: &'a [CustomerId],
    pub now: i64,
}

/// Brings everything that depends on a customer's orders up to date with orders just stored.
pub async fn orders_stored(
    db: &Db,
    audiences: &Audiences,
    o: OrdersStored<'_>,
) -> Result<(), WorkflowError> {
    // Members' points follow their orders (earned once, taken back on refund).
    let member_orders = points::member_orders(db, o.tenant, o.orders).await?;
    points::follow_orders(db, o.tenant, &member_orders, o.now).await?;
    // Members who now qualify for a higher tier move up at once (down only at the daily review).
    tiers::review(db, o.tenant, Some(o.buyers), false, o.now).await?;
    // The index recomputes the buyers' figures, RFM class and stage under its own lock, so that
    // no count sees the new orders with the old figures, then reloads them and the rule tags.
    audiences
        .changed(o.tenant, o.buyers, Change::Customers { orders: true })
        .await?;
    Ok(())
}

/// An order paid on an H5 activity (flash sale, group buy, bargain), stored in the `mall`
/// channel: [`orders_stored`] for its buyer. Best effort: the money and the order are already
/// committed, so a failure here is logged and repaired by the daily recompute and tier review,
/// never answered as a failed purchase.
pub async fn activity_paid(
    db: &Db,
    audiences: &Audiences,
    tenant: TenantId,
    customer: CustomerId,
    order_no: &str,
    now: i64,
) {
    let keys = [("mall".to_owned(), order_no.to_owned())];
    let stored = OrdersStored {
        tenant,
        orders: &keys,
        buyers: &[customer],
        now,
    };
    if let Err(e) = orders_stored(db, audiences, stored).await {
        tracing::error!(tenant = %tenant, customer = %customer, order_no, error = %e, "points, tiers or the index did not follow a paid activity order");
    }
}

/// After a bulk import into a tenant: everyone's figures, RFM model and stages recomputed,
/// PostgreSQL's planner statistics refreshed, and every server on this database asked to
/// rebuild its index of the tenant.
pub async fn import_finished(db: &Db, tenant: TenantId, now: i64) -> Result<(), WorkflowError> {
    profile::recompute_all(db, tenant, now).await?;
    // PostgreSQL plans the console's queries and the reference SQL from statistics that a bulk
    // import leaves stale until autovacuum comes round.
    if db.backend() == Backend::Postgres {
        db.execute_script("ANALYZE customers, identities, orders, order_lines, customer_stats")
            .await
            .map_err(crate::platform::db::DbError::from)?;
    }
    audience::request_rebuild(db, tenant).await?;
    Ok(())
}

/// After the tenant's status map changes: the orders it reads differently now are re-read, and
/// the buyers' figures follow (as after an import). Returns how many orders changed status.
pub async fn status_map_saved(
    db: &Db,
    tenant: TenantId,
    map: &crate::know::import::status_map::StatusMap,
    now: i64,
) -> Result<u64, WorkflowError> {
    let changed = crate::know::import::status_map::save(db, tenant, map, now).await?;
    if changed > 0 {
        import_finished(db, tenant, now).await?;
    }
    Ok(changed)
}
