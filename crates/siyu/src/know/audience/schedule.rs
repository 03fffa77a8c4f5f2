//! Background upkeep: building every index at start, the daily recompute at 04:00 China time,
//! the hourly rule-tag refresh, and the watch for rebuild requests.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::know::rfm::DAY_MS;
use crate::platform::clock::now_ms;
use crate::platform::db::sql;

impl Audiences {
    /// Builds the index of every tenant now (at start), rather than on first use.
    pub async fn warm(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(TenantId,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        for (t,) in tenants {
            self.built(t).await?;
        }
        Ok(())
    }
}

impl Audiences {
    /// At start: recomputes purchase figures for tenants whose figures are missing or more than
    /// a day old (windows move with time), then builds every tenant's index.
    pub async fn prepare(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(TenantId,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        let now = now_ms();
        for (t,) in tenants {
            let (_, model) = crate::know::profile::settings(&self.db, t).await?;
            if model.is_none_or(|m| now - m.computed_at > DAY_MS) {
                crate::know::profile::recompute_all(&self.db, t, now).await?;
            }
            self.built(t).await?;
        }
        Ok(())
    }

    /// Once a day, at 04:00 China time: recompute every tenant's figures and rebuild its index.
    pub fn spawn_daily(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let now = now_ms();
                let today = day_start(local_day(now)) + 4 * 3_600_000;
                let next = if today > now { today } else { today + DAY_MS };
                let wait = u64::try_from(next - now).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                if me.db.is_closed() {
                    return;
                }
                if let Err(e) = me.recompute_everyone().await {
                    tracing::error!(error = %e, "daily recompute failed");
                }
            }
        });
    }

    /// Every hour: rule tags whose rules look at time windows (days since a purchase, events in
    /// the last N days) follow the clock even when nothing is written.
    pub fn spawn_hourly_rule_tags(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                let tenants: Vec<TenantId> = {
                    let slots = me.slots.lock().unwrap_or_else(|p| p.into_inner());
                    slots.keys().copied().collect()
                };
                for t in tenants {
                    if let Err(e) = me.refresh_rule_tags(t).await {
                        tracing::error!(tenant = %t, error = %e, "rule tag refresh failed");
                    }
                }
            }
        });
    }

    pub(super) async fn recompute_everyone(&self) -> Result<(), AudienceError> {
        let tenants: Vec<(TenantId,)> = self
            .db
            .fetch_all(&sql("SELECT id FROM tenants ORDER BY id"))
            .await?;
        for (t,) in tenants {
            crate::know::profile::recompute_all(&self.db, t, now_ms()).await?;
            self.rebuild(t).await?;
        }
        Ok(())
    }
}

impl Audiences {
    /// Every `every`: rebuilds the tenants whose rebuild version moved past `seen` (the versions
    /// read before this process built its indexes).
    pub fn spawn_rebuild_watch(
        self: &Arc<Self>,
        every: std::time::Duration,
        mut seen: HashMap<TenantId, i64>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if me.db.is_closed() {
                    return;
                }
                let now = match rebuild_versions(&me.db).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read rebuild requests");
                        continue;
                    }
                };
                for (tenant, version) in now {
                    if version > seen.get(&tenant).copied().unwrap_or(0) {
                        tracing::info!(tenant = %tenant, "rebuilding the audience index on request");
                        match me.rebuild(tenant).await {
                            Ok(()) => {
                                seen.insert(tenant, version);
                            }
                            Err(e) => {
                                tracing::error!(tenant = %tenant, error = %e, "audience rebuild failed")
                            }
                        }
                    }
                }
            }
        });
    }
}
