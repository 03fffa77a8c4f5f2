//! The `log` provider: records each message in `sms_log` instead of sending it, so the demo and
//! tests run offline and an operator can read exactly what would have gone out.

use futures_util::future::BoxFuture;

use super::{BatchResult, SmsMessage, SmsProvider};
use crate::platform::clock::now_ms;
use crate::platform::db::{Db, DbError, Tx};
use crate::platform::rows::Arg;

pub struct LogProvider {
    db: Db,
}

impl LogProvider {
    pub fn new(db: Db) -> Self {
        LogProvider { db }
    }

    async fn record(&self, batch: &[SmsMessage]) -> Result<(), DbError> {
        let mut tx = self.db.begin().await?;
        record_in(&mut tx, batch).await?;
        tx.commit().await
    }
}

/// One `sms_log` row per message; a message logged before (a retry) is not logged again.
async fn record_in(tx: &mut Tx, batch: &[SmsMessage]) -> Result<(), DbError> {
    let now = now_ms();
    // No number here: the outbox row it points at holds it, encrypted.
    let rows: Vec<[Arg; 4]> = batch
        .iter()
        .map(|m| {
            [
                m.outbox_id.into(),
                m.tenant_id.into(),
                m.content.as_str().into(),
                now.into(),
            ]
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO sms_log (outbox_id, tenant_id, content, logged_at)",
        "ON CONFLICT (outbox_id) DO NOTHING",
        &rows,
    )
    .await?;
    Ok(())
}

fn references(batch: &[SmsMessage]) -> BatchResult {
    batch
        .iter()
        .map(|m| Ok(format!("log:{}", m.outbox_id)))
        .collect()
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
                Ok(()) => references(batch),
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
    fn writes_to_database(&self) -> bool {
        true
    }
    fn send_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        batch: &'a [SmsMessage],
    ) -> BoxFuture<'a, Result<BatchResult, DbError>> {
        Box::pin(async move {
            record_in(tx, batch).await?;
            Ok(references(batch))
        })
    }
}
