//! The periodic work, every 30 s or on `POST /api/v1/connect/tick`: lost tasks reconciled,
//! live-code rotas, SOP posts and mass messages released and followed up, callbacks retried.

use crate::platform::TenantId;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::*;
use crate::connect::live_codes;
use crate::connect::{mass, sop};
use crate::platform::clock::now_ms;
use crate::platform::db::sql;

/// What one round of periodic work did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub codes_rotated: usize,
    pub sop_tasks_assigned: usize,
    pub sop_tasks_completed: usize,
    pub sop_reminders: usize,
    pub mass_tasks_assigned: usize,
    pub mass_tasks_completed: usize,
    pub mass_reminders: usize,
    pub callbacks_retried: usize,
    /// Tasks whose creation answer was lost, found in WeCom and adopted.
    pub tasks_adopted: usize,
    /// …or not found there, and handed over again.
    pub tasks_handed_again: usize,
}

pub(super) fn mass_err(e: mass::MassError) -> ConnectError {
    match e {
        mass::MassError::Db(d) => ConnectError::Db(d),
        other => ConnectError::Invalid {
            field: "mass_message",
            reason: other.to_string(),
        },
    }
}

impl Connect {
    /// One round of periodic work for every configured tenant; one tenant's failure is logged
    /// and the others go on.
    pub async fn tick(&self, now: i64) -> Result<TickReport, ConnectError> {
        let _one = self.tick_lock.lock().await;
        let mut r = TickReport {
            callbacks_retried: self.retry_unfinished(now, None).await?,
            ..Default::default()
        };
        let tenants: Vec<(TenantId,)> = self
            .db
            .fetch_all(&sql("SELECT tenant_id FROM wecom_corps"))
            .await?;
        for (tenant,) in tenants {
            if let Err(e) = self.tenant_work(tenant, now, &mut r).await {
                tracing::warn!(tenant = %tenant, error = %e, "connect work for this tenant failed; will retry");
            }
        }
        Ok(r)
    }

    /// One round of periodic work for one tenant (`POST /api/v1/connect/tick`).
    pub async fn tick_tenant(
        &self,
        tenant: TenantId,
        now: i64,
    ) -> Result<TickReport, ConnectError> {
        let _one = self.tick_lock.lock().await;
        let mut r = TickReport {
            callbacks_retried: self.retry_unfinished(now, Some(tenant)).await?,
            ..Default::default()
        };
        self.tenant_work(tenant, now, &mut r).await?;
        Ok(r)
    }

    pub(super) async fn tenant_work(
        &self,
        tenant: TenantId,
        now: i64,
        r: &mut TickReport,
    ) -> Result<(), ConnectError> {
        let corp = self.corp(tenant).await?;
        let (adopted, again) =
            crate::connect::tasks::reconcile(&self.db, &corp.api, tenant, now).await?;
        r.tasks_adopted += adopted;
        r.tasks_handed_again += again;
        for code in live_codes::list(&self.db, tenant).await? {
            match live_codes::rotate(&self.db, &corp.api, &code, now, corp.offset_min).await {
                Ok(true) => r.codes_rotated += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, code = code.id, "rota not updated"),
            }
        }
        r.sop_tasks_assigned += sop::release_due(&self.db, &corp.api, tenant, now).await?;
        let (done, reminded) = sop::follow_up(&self.db, &corp.api, tenant, now).await?;
        r.sop_tasks_completed += done;
        r.sop_reminders += reminded;
        r.mass_tasks_assigned += mass::release_due(&self.db, &corp.api, tenant, now)
            .await
            .map_err(mass_err)?;
        let (done, reminded) = mass::follow_up(&self.db, &corp.api, tenant, now)
            .await
            .map_err(mass_err)?;
        r.mass_tasks_completed += done;
        r.mass_reminders += reminded;
        Ok(())
    }

    /// Runs [`Connect::tick`] every `every` until the service is dropped or the pool closes.
    pub fn spawn_ticks(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                let Some(c) = weak.upgrade() else { return };
                if c.db.is_closed() {
                    return;
                }
                if let Err(e) = c.tick(now_ms()).await {
                    tracing::warn!(error = %e, "connect tick failed; will retry");
                }
            }
        });
    }
}
