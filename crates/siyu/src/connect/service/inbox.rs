//! The callback inbox: URL verification, and each callback verified, decrypted, parsed and
//! stored before it is acknowledged; its outcome recorded, the unfinished requeued, the counts.

use crate::platform::TenantId;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::*;
use crate::connect::events::{self, CallbackEvent, Envelope, Fields, ParseError};
use crate::platform::clock::now_ms;
use crate::platform::db::{DbError, sql};

/// Unfinished callbacks are retried this many times.
pub(super) const MAX_ATTEMPTS: i64 = 5;

/// The query string WeCom puts on a callback URL.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub msg_signature: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub echostr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Queued,
    /// A retry of a callback already taken.
    Duplicate,
}

impl Connect {
    /// URL verification: the decrypted echostr, which WeCom expects back verbatim.
    pub async fn verify_url(
        &self,
        tenant: TenantId,
        q: &CallbackQuery,
        now: i64,
    ) -> Result<String, ConnectError> {
        let corp = self.corp(tenant).await?;
        let echo = q.echostr.as_deref().ok_or(ConnectError::Invalid {
            field: "echostr",
            reason: "missing".into(),
        })?;
        Ok(corp
            .crypto
            .open(&q.msg_signature, &q.timestamp, &q.nonce, echo, now)?)
    }

    /// Takes a callback: verify, decrypt, parse, store, queue. Returns once it is durable.
    pub async fn receive(
        &self,
        tenant: TenantId,
        q: &CallbackQuery,
        body: &str,
        now: i64,
    ) -> Result<Received, ConnectError> {
        let corp = self.corp(tenant).await?;
        let outer = Fields::parse(body)?;
        let encrypt = outer.get("Encrypt").ok_or(ParseError::Missing("Encrypt"))?;
        let plain = corp
            .crypto
            .open(&q.msg_signature, &q.timestamp, &q.nonce, encrypt, now)?;
        let env = events::parse(&plain)?;
        let key = hex::encode(&Sha256::digest(plain.as_bytes())[..16]);
        let kind = env.event.kind();
        let stored = self
            .db
            .execute(
                &sql("INSERT INTO wecom_inbox (tenant_id, event_key, event, body, received_at) VALUES ($1, $2, $3, $4, $5) \
                      ON CONFLICT (tenant_id, event_key) DO NOTHING")
                    .bind(tenant)
                    .bind(key.as_str())
                    .bind(kind)
                    .bind(serde_json::to_string(&env).unwrap_or_default())
                    .bind(now),
            )
            .await?;
        if stored == 0 {
            return Ok(Received::Duplicate);
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant, key.clone()));
        let job = Job {
            tenant,
            key,
            received_at: now,
            env,
        };
        // The welcome does not wait behind other work, and other work does not wait for it.
        if job.env.event.is_urgent() {
            let _ = self.urgent.send(job.clone());
        }
        self.to_normal_lane(job);
        Ok(Received::Queued)
    }

    pub(super) async fn finish(&self, job: &Job, result: &Result<(), ConnectError>) {
        let q = match result {
            Ok(()) => sql("UPDATE wecom_inbox SET done_at = $3, attempts = attempts + 1, error = NULL WHERE tenant_id = $1 AND event_key = $2")
                .bind(job.tenant)
                .bind(job.key.as_str())
                .bind(now_ms()),
            Err(e) => {
                tracing::warn!(error = %e, event = job.key, "callback work failed; will retry");
                sql("UPDATE wecom_inbox SET attempts = attempts + 1, error = $3 WHERE tenant_id = $1 AND event_key = $2")
                    .bind(job.tenant)
                    .bind(job.key.as_str())
                    .bind(e.to_string())
            }
        };
        if let Err(e) = self.db.execute(&q).await {
            tracing::error!(error = %e, "callback state not recorded");
        }
        // Only now, so the retry sweep cannot take a job whose outcome is not yet written.
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(job.tenant, job.key.clone()));
    }

    /// Requeues callbacks received over a minute ago and not finished (a failure, a restart) on
    /// their lanes; returns how many.
    pub(super) async fn retry_unfinished(
        &self,
        now: i64,
        tenant: Option<TenantId>,
    ) -> Result<usize, DbError> {
        let rows: Vec<(TenantId, String, String, i64)> = self
            .db
            .fetch_all(
                &sql("SELECT tenant_id, event_key, body, received_at FROM wecom_inbox WHERE done_at IS NULL AND received_at < $1 AND attempts < $2 \
                      AND ($3 IS NULL OR tenant_id = $3) ORDER BY received_at LIMIT 1000")
                    .bind(now - 60_000)
                    .bind(MAX_ATTEMPTS)
                    .bind(tenant),
            )
            .await?;
        let mut n = 0;
        for (tenant, key, body, received_at) in rows {
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((tenant, key.clone()))
            {
                continue; // queued in this process already
            }
            n += 1;
            match serde_json::from_str::<Envelope>(&body) {
                Ok(env) => self.to_normal_lane(Job {
                    tenant,
                    key,
                    env,
                    received_at,
                }),
                Err(e) => {
                    let job = Job {
                        tenant,
                        key,
                        env: Envelope {
                            corp_id: String::new(),
                            create_time: 0,
                            event: CallbackEvent::Other {
                                event: String::new(),
                                change_type: String::new(),
                            },
                        },
                        received_at,
                    };
                    let failed = Err(ConnectError::Invalid {
                        field: "body",
                        reason: e.to_string(),
                    });
                    self.finish(&job, &failed).await;
                }
            }
        }
        Ok(n)
    }

    /// Waits until every callback received for the tenant has been worked through; Err with
    /// the number still unfinished when `timeout` passes first.
    pub async fn wait_drained(&self, tenant: TenantId, timeout: Duration) -> Result<(), i64> {
        let until = std::time::Instant::now() + timeout;
        loop {
            match self.inbox_counts(tenant).await {
                Ok((received, done)) if received == done => return Ok(()),
                Ok((received, done)) if std::time::Instant::now() > until => {
                    return Err(received - done);
                }
                Err(e) if std::time::Instant::now() > until => {
                    tracing::warn!(error = %e, "callback counts not read");
                    return Err(-1);
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Counts of the inbox: received, done, unfinished.
    pub async fn inbox_counts(&self, tenant: TenantId) -> Result<(i64, i64), DbError> {
        self.db
            .fetch_one(
                &sql("SELECT COUNT(*), COUNT(done_at) FROM wecom_inbox WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await
    }
}
