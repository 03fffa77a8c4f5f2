//! Rebuilding a tenant's index from the store while the old one keeps answering, and rebuild
//! requests passed between processes as per-tenant versions.

use crate::platform::TenantId;
use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::know::rule::MAX_EVENT_DAYS;
use crate::platform::clock::now_ms;
use crate::platform::db::{Db, DbResult, sql};

/// Asks every running server to rebuild the tenant's index (after a bulk write such as an
/// import in another process): bumps the tenant's rebuild version.
pub async fn request_rebuild(db: &Db, tenant: TenantId) -> DbResult<()> {
    db.execute(
        &sql(
            "INSERT INTO audience_rebuilds (tenant_id, version, requested_at) VALUES ($1, 1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET version = audience_rebuilds.version + 1, \
             requested_at = excluded.requested_at",
        )
        .bind(tenant)
        .bind(now_ms()),
    )
    .await?;
    Ok(())
}

/// Rebuild versions now, per tenant: read before building, so that a request made during the
/// build is acted on after it.
pub async fn rebuild_versions(db: &Db) -> DbResult<HashMap<TenantId, i64>> {
    let rows: Vec<(TenantId, i64)> = db
        .fetch_all(&sql("SELECT tenant_id, version FROM audience_rebuilds"))
        .await?;
    Ok(rows.into_iter().collect())
}

impl Audiences {
    /// Rebuilds a tenant's index from the store (after a bulk change such as an import or the
    /// daily recompute).
    ///
    /// The old index keeps answering and taking changes while the new one is read from the
    /// store (minutes for millions of customers), so writers never wait for a rebuild; the
    /// customers changed meanwhile are reloaded into the new index once it is in place.
    pub async fn rebuild(&self, tenant: TenantId) -> Result<(), AudienceError> {
        self.rebuild_then(tenant, async {}).await
    }

    /// [`Self::rebuild`], running `meanwhile` after the store was read and before the new index
    /// replaces the old one (tests use it to write in that window).
    pub async fn rebuild_then(
        &self,
        tenant: TenantId,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> Result<(), AudienceError> {
        let slot = self.slot_entry(tenant);
        let _one = slot.rebuilding.lock().await;
        *slot.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let now = now_ms();
        let built = build_index(&self.db, tenant, now, |_, _| {}).await;
        meanwhile.await;
        let pending = {
            let _lock = owned_lock(Arc::clone(&slot)).await;
            let pending = slot
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            let mut ix = built?;
            ix.prune_events(local_day(now) - MAX_EVENT_DAYS as i32);
            *slot.index.write().unwrap_or_else(|p| p.into_inner()) = Some(ix);
            self.cover_all(&slot);
            *slot.rule_tags.write().unwrap_or_else(|p| p.into_inner()) =
                crate::know::tags::rule_tags(&self.db, tenant).await?;
            pending
        };
        // Also refreshes the rule tags.
        let pending: Vec<CustomerId> = pending.into_iter().map(CustomerId::new).collect();
        self.changed(tenant, &pending, Change::Customers { orders: false })
            .await?;
        if pending.is_empty() {
            self.refresh_rule_tags(tenant).await?;
        }
        Ok(())
    }
}
