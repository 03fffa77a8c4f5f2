//! The `log` provider: records each message in `sms_log` instead of sending it, so the demo and
//! tests run offline and an operator can read exactly what would have gone out.

use futures_util::future::BoxFuture;

use super::{BatchResult, SmsMessage, SmsProvider};
use crate::platform::clock::now_ms;
use crate::platform::db::{Db, MAX_BINDS, sql, values_placeholders};

pub struct LogProvider {
    db: Db,
}

impl LogProvider {
    pub fn new(db: Db) -> Self {
        LogProvider { db }
    }

    async fn record(&self, batch: &[SmsMessage]) -> Result<(), crate::platform::db::DbError> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        for chunk in batch.chunks(MAX_BINDS / 4) {
            let mut q = sql(format!(
                "INSERT INTO sms_log (outbox_id, tenant_id, content, logged_at) VALUES {} \
                 ON CONFLICT (outbox_id) DO NOTHING",
                values_placeholders(chunk.len(), 4, 1)
            ));
            for m in chunk {
                // No number here: the outbox row it points at holds it, encrypted.
                q.push_arg(m.outbox_id);
                q.push_arg(m.tenant_id);
                q.push_arg(m.content.clone());
                q.push_arg(now);
            }
            tx.execute(&q).await?;
        }
        tx.commit().await
    }
}

impl SmsProvider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn rate_per_second(&self) -> u32 {
        u32::MAX
    }
    fn send<'a>(&'a self, batch: &'a [SmsMessage]) -> BoxFuture<'a, BatchResult> {
        Box::pin(async move {
            match self.record(batch).await {
                Ok(()) => batch
                    .iter()
                    .map(|m| Ok(format!("log:{}", m.outbox_id)))
                    .collect(),
                Err(e) => {
                    let text = e.to_string();
                    batch
                        .iter()
                        .map(|_| {
                            Err(super::SmsError::Unavailable {
                                provider: "log",
                                source: text.clone().into(),
                            })
                        })
                        .collect()
                }
            }
        })
    }
}
