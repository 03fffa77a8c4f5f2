//! The lanes callbacks are worked on: the urgent lane sending an add's welcome message at once
//! (the code lives 20 s), and the normal lanes, one contact's or one group's callbacks in order.

use std::sync::{Arc, Weak};

use tokio::sync::{Semaphore, mpsc};

use super::*;
use crate::connect::events::CallbackEvent;
use crate::platform::clock::now_ms;
use crate::platform::db::sql;

/// Lanes for callback work other than welcomes.
pub(super) const NORMAL_LANES: usize = 8;

/// Welcome sends in flight at once.
pub(super) const WELCOME_CONCURRENCY: usize = 64;

/// Welcome messages: many in flight at once, each recording its own outcome.
pub(super) async fn urgent_lane(c: Weak<Connect>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(WELCOME_CONCURRENCY));
    while let Some(job) = rx.recv().await {
        let Some(svc) = c.upgrade() else { return };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            svc.send_welcome(&job).await;
            drop(permit);
        });
    }
}

/// Everything else: on each lane one callback at a time, in arrival order.
pub(super) async fn normal_lane(c: Weak<Connect>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let Some(svc) = c.upgrade() else { return };
        let r = svc.handle(&job).await;
        svc.finish(&job, &r).await;
    }
}

impl Connect {
    /// The lane of the contact or group a callback is about, so callbacks about one keep their
    /// order while different ones run side by side.
    pub(super) fn to_normal_lane(&self, job: Job) {
        let subject = match &job.env.event {
            CallbackEvent::ContactAdded {
                external_userid, ..
            }
            | CallbackEvent::ContactEdited {
                external_userid, ..
            }
            | CallbackEvent::ContactDeleted {
                external_userid, ..
            }
            | CallbackEvent::TransferFailed {
                external_userid, ..
            } => external_userid.as_str(),
            CallbackEvent::ChatCreated { chat_id }
            | CallbackEvent::ChatUpdated { chat_id, .. }
            | CallbackEvent::ChatDismissed { chat_id } => chat_id.as_str(),
            _ => "",
        };
        let lane = subject.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % self.normal.len();
        let _ = self.normal[lane].send(job);
    }

    pub(super) async fn send_welcome(&self, job: &Job) {
        let CallbackEvent::ContactAdded {
            state: Some(state),
            welcome_code: Some(code),
            userid,
            external_userid,
            ..
        } = &job.env.event
        else {
            return;
        };
        let (corp, live) = match (
            self.corp(job.tenant).await,
            self.code_by_state(job.tenant, state).await,
        ) {
            (Ok(c), Ok(Some(l))) => (c, l),
            // Not our code (a foreign state), or not loadable: the normal lane records the add.
            _ => return,
        };
        let now = now_ms();
        let outcome = if now - job.received_at > crate::connect::events::WELCOME_CODE_TTL_MS {
            ("expired".to_owned(), None)
        } else {
            match corp
                .api
                .send_welcome_msg(code, live.welcome_at(now, corp.offset_min))
                .await
            {
                Ok(()) => ("sent".to_owned(), Some(now_ms())),
                Err(e) => {
                    tracing::warn!(error = %e, "welcome message not sent");
                    (format!("failed: {e}"), None)
                }
            }
        };
        let recorded = self
            .db
            .execute(
                &sql("INSERT INTO welcome_messages (tenant_id, welcome_code, code_id, external_userid, userid, received_at, sent_at, result) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, welcome_code) DO NOTHING")
                    .bind(job.tenant)
                    .bind(code.as_str())
                    .bind(live.id)
                    .bind(external_userid.as_str())
                    .bind(userid.as_str())
                    .bind(job.received_at)
                    .bind(outcome.1)
                    .bind(outcome.0),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "welcome message outcome not recorded");
        }
    }
}
