//! The dispatcher: reclaims expired leases, claims due messages in batches, sends the allowed
//! ones at the provider's rate, and records each round's outcomes (sent, deferred, retried...).

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::channels::sms::SmsMessage;
use crate::engage::policy::{Purpose, Suppressed, Verdict};
use crate::platform::db::{Backend, DbError, Reader, sql};
use crate::platform::rows::Arg;

/// A claimed message's lease: a dispatcher that has not finished it by then is presumed dead.
pub const LEASE_MS: i64 = 60_000;

/// Attempts before a message that keeps failing is given up.
pub const MAX_ATTEMPTS: i64 = 5;

#[derive(sqlx::FromRow, Debug)]
pub(super) struct Claimed {
    pub(super) id: i64,
    pub(super) tenant_id: TenantId,
    pub(super) purpose: String,
    pub(super) customer_id: Option<CustomerId>,
    pub(super) address_hash: String,
    pub(super) address_enc: String,
    pub(super) content: String,
    pub(super) content_hash: String,
    pub(super) template_code: Option<String>,
    pub(super) template_params: Option<String>,
    pub(super) attempts: i64,
    pub(super) dedupe_key: String,
}

impl Outbox {
    /// A one-time code's message carries a placeholder as stored; the code is derived and put
    /// into the template's parameters only on its way to the provider. The content keeps the
    /// placeholder, so the log provider's `sms_log` never holds a code either.
    fn put_code_in(&self, m: &Claimed, params: &mut [(String, String)]) {
        if m.purpose != Purpose::Verification.as_str() || !m.dedupe_key.starts_with(CODE_KEY_PREFIX)
        {
            return;
        }
        let code = self
            .cipher
            .one_time_code(&code_seed(m.tenant_id, &m.dedupe_key));
        for (_, v) in params.iter_mut().filter(|(_, v)| v == CODE_PLACEHOLDER) {
            v.clone_from(&code);
        }
        if self.provider.writes_to_database() {
            // The log provider sends nothing: whoever develops against it reads the code here.
            tracing::info!(
                outbox_id = m.id,
                code,
                "one-time code (the log provider sends nothing)"
            );
        }
    }
}

impl Claimed {
    pub(super) fn as_policy_sees_it(&self) -> Seen<'_> {
        Seen {
            tenant_id: self.tenant_id,
            purpose: Purpose::parse(&self.purpose).unwrap_or(Purpose::Marketing),
            customer_id: self.customer_id,
            address_hash: &self.address_hash,
            content_hash: &self.content_hash,
        }
    }
}

/// Where each message of a round ended, by outcome.
#[derive(Default)]
pub(super) struct Outcomes {
    /// With the provider's reference.
    pub(super) sent: Vec<(i64, String)>,
    /// Until when.
    pub(super) deferred: Vec<(i64, i64)>,
    /// Why.
    pub(super) suppressed: Vec<(i64, &'static str)>,
    /// When to try again, and what went wrong.
    pub(super) retry: Vec<(i64, i64, String)>,
    pub(super) failed: Vec<(i64, String)>,
}

impl Outbox {
    /// Tells the dispatcher that messages were queued, so it does not wait for its next tick.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Dispatches until nothing is due at `now`; returns the totals.
    pub async fn drain(&self, now: i64) -> Result<DispatchReport, OutboxError> {
        self.drain_by(&|| now).await
    }

    /// [`Outbox::drain`] reading the clock for each batch: a drain can last as long as a large
    /// launch, and quiet hours, `sent_at` and leases must not use its start.
    pub(super) async fn drain_by(
        &self,
        now: &(dyn Fn() -> i64 + Sync),
    ) -> Result<DispatchReport, OutboxError> {
        let mut total = self.reclaim(now()).await?;
        loop {
            let r = self.dispatch_batch(now()).await?;
            total.add(r);
            if r.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs the dispatcher until the pool closes: woken by [`Outbox::notify`] or every `tick`.
    pub fn spawn(self: &Arc<Self>, tick: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if me.db.is_closed() {
                    return;
                }
                if let Err(e) = me.drain_by(&crate::platform::clock::now_ms).await {
                    tracing::error!(error = %e, "outbox dispatch failed; will retry");
                }
                let _ = tokio::time::timeout(tick, me.wake.notified()).await;
            }
        });
    }

    /// Leases that ran out belong to a dispatcher that died mid-send: the message goes again
    /// if the provider dedupes, and is marked `unknown` otherwise.
    pub async fn reclaim(&self, now: i64) -> Result<DispatchReport, OutboxError> {
        let (status, reason) = if self.provider.idempotent() {
            ("queued", None)
        } else {
            (
                "unknown",
                Some("interrupted while sending; not sent again to avoid a duplicate"),
            )
        };
        if !self
            .any(
                "SELECT id FROM outbox WHERE status = 'sending' AND lease_until < $1 LIMIT 1",
                now,
            )
            .await?
        {
            return Ok(DispatchReport::default());
        }
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                &sql(
                    "UPDATE outbox SET status = $1, reason = $2, lease_until = NULL \
                      WHERE status = 'sending' AND lease_until < $3",
                )
                .bind(status)
                .bind(reason.map(str::to_string))
                .bind(now),
            )
            .await?;
        tx.commit().await?;
        if n > 0 {
            tracing::warn!(messages = n, status, "reclaimed interrupted sends");
        }
        Ok(DispatchReport {
            reclaimed: n,
            ..Default::default()
        })
    }

    /// Claims up to one batch of due messages, and takes each message to its end state for
    /// this round.
    pub async fn dispatch_batch(&self, now: i64) -> Result<DispatchReport, OutboxError> {
        let claimed = self.claim(now).await?;
        let mut report = DispatchReport {
            claimed: claimed.len() as u64,
            ..Default::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        // Numbers are decrypted before any transaction: SQLite's writer should only write
        // while it is held.
        let phones: Vec<_> = claimed
            .iter()
            .map(|m| self.cipher.decrypt(&m.address_enc))
            .collect();
        // A provider that writes to this database sends inside the transaction that records
        // the outcomes, and the policy's facts are read in it too: then no send committed
        // meanwhile (a launch sending where it writes) is missed.
        let mut local = if self.provider.writes_to_database() {
            Some(self.db.begin().await?)
        } else {
            None
        };
        let seen: Vec<Seen> = claimed.iter().map(Claimed::as_policy_sees_it).collect();
        let mut reader = match local.as_mut() {
            Some(tx) => Reader::Tx(tx),
            None => Reader::Pool(&self.db),
        };
        let verdicts = self.decide(&mut reader, &seen, now).await?;
        let legacy = self.legacy_unsubscribes(&mut reader).await?;
        let mut out = Outcomes::default();
        let mut msgs = Vec::new();
        let mut tries = Vec::new();
        for ((m, v), phone) in claimed.iter().zip(verdicts).zip(phones) {
            match (v, phone) {
                (Verdict::Send, Ok(phone))
                    if legacy.suppresses(&self.cipher, m.tenant_id, &m.purpose, &phone) =>
                {
                    out.suppressed
                        .push((m.id, Suppressed::Unsubscribed.as_str()));
                }
                (Verdict::Send, Ok(phone)) => {
                    let mut template_params: Vec<(String, String)> = m
                        .template_params
                        .as_deref()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or_default();
                    self.put_code_in(m, &mut template_params);
                    msgs.push(SmsMessage {
                        outbox_id: m.id,
                        tenant_id: m.tenant_id,
                        phone,
                        content: m.content.clone(),
                        template_code: m.template_code.clone(),
                        template_params,
                    });
                    tries.push(m.attempts);
                }
                (Verdict::Send, Err(e)) => out.failed.push((m.id, format!("address: {e}"))),
                (Verdict::Defer(until), _) => out.deferred.push((m.id, until)),
                (Verdict::Suppress(why), _) => out.suppressed.push((m.id, why.as_str())),
            }
        }
        report.deferred = out.deferred.len() as u64;
        report.suppressed = out.suppressed.len() as u64;
        let rate = self.provider.rate_per_second().max(1) as usize;
        let per_send = rate.min(self.batch);
        for (chunk, chunk_tries) in msgs.chunks(per_send).zip(tries.chunks(per_send)) {
            let started = Instant::now();
            let results = match local.as_mut() {
                Some(tx) => self.provider.send_in(tx, chunk).await?,
                None => self.provider.send(chunk).await,
            };
            for ((msg, &tries), r) in chunk.iter().zip(chunk_tries).zip(results) {
                match r {
                    Ok(reference) => out.sent.push((msg.outbox_id, reference)),
                    Err(e) => {
                        if e.retryable() && tries < MAX_ATTEMPTS {
                            out.retry
                                .push((msg.outbox_id, now + retry_wait(tries), e.to_string()));
                        } else {
                            out.failed.push((msg.outbox_id, e.to_string()));
                        }
                    }
                }
            }
            // Stay under the provider's rate: a chunk of `rate` messages takes a second.
            if rate < usize::MAX / 2 && chunk.len() >= rate {
                let floor = Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
                if let Some(rest) = floor.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
            }
        }
        report.sent = out.sent.len() as u64;
        report.retried = out.retry.len() as u64;
        report.failed = out.failed.len() as u64;
        self.record(local, now, &out).await?;
        self.totals.send_modify(|t| t.add(report));
        Ok(report)
    }

    /// Whether `probe` (bound to `now`) finds a row, read on a pooled connection: the writer
    /// is taken only when there is something to change, not on every wake while a launch
    /// writes.
    pub(super) async fn any(&self, probe: &str, now: i64) -> Result<bool, DbError> {
        let found: Option<(i64,)> = self.db.fetch_optional(&sql(probe).bind(now)).await?;
        Ok(found.is_some())
    }

    pub(super) async fn claim(&self, now: i64) -> Result<Vec<Claimed>, DbError> {
        if !self
            .any(
                "SELECT id FROM outbox WHERE status = 'queued' AND not_before <= $1 LIMIT 1",
                now,
            )
            .await?
        {
            return Ok(Vec::new());
        }
        let next = "SELECT id FROM outbox WHERE status = 'queued' AND not_before <= $2 \
                    ORDER BY not_before, id LIMIT $3";
        // PostgreSQL joins `id IN (subquery)` by hashing the whole outbox; `= ANY(ARRAY(…))`
        // looks the batch up by primary key. SQLite looks `IN` up by rowid. (Leasing a row at a
        // time through `execute_rows` on SQLite measured no faster: docs/BENCHMARKS.md.)
        let claimed = match self.db.backend() {
            Backend::Postgres => format!("id = ANY(ARRAY({next} FOR UPDATE SKIP LOCKED))"),
            Backend::Sqlite => format!("id IN ({next})"),
        };
        // Through the write gate like every other writer: on a pooled connection the claim
        // met a launch's transaction in SQLite's busy handler, which sleeps milliseconds at a
        // time, and read its pages back after every commit of the writer's connection.
        let mut tx = self.db.begin().await?;
        let mut rows: Vec<Claimed> = tx
            .fetch_all(
                &sql(format!(
                    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1 \
                     WHERE {claimed} \
                     RETURNING id, tenant_id, purpose, customer_id, address_hash, address_enc, content, \
                               content_hash, template_code, template_params, attempts, dedupe_key"
                ))
                .bind(now + LEASE_MS)
                .bind(now)
                .bind(self.batch as i64),
            )
            .await?;
        tx.commit().await?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records a round's outcomes in one transaction: `tx` when the provider sent in it.
    pub(super) async fn record(
        &self,
        tx: Option<crate::platform::db::Tx>,
        now: i64,
        out: &Outcomes,
    ) -> Result<(), DbError> {
        let Outcomes {
            sent,
            deferred,
            suppressed,
            retry,
            failed,
        } = out;
        let mut tx = match tx {
            Some(tx) => tx,
            None => self.db.begin().await?,
        };
        let provider = self.provider.name();
        let rows: Vec<[Arg; 4]> = sent
            .iter()
            .map(|(id, r)| [(*id).into(), provider.into(), r.as_str().into(), now.into()])
            .collect();
        tx.execute_rows(
            "UPDATE outbox SET status = 'sent', provider = $2, provider_ref = $3, sent_at = $4, \
             lease_until = NULL WHERE id = $1",
            |values| {
                format!(
                    "UPDATE outbox SET status = 'sent', provider = v.column2, provider_ref = v.column3, \
                     sent_at = v.column4, lease_until = NULL FROM (VALUES {values}) AS v WHERE outbox.id = v.column1"
                )
            },
            &rows,
        )
        .await?;
        // Deferring is not an attempt.
        let rows: Vec<[Arg; 2]> = deferred
            .iter()
            .map(|(id, until)| [(*id).into(), (*until).into()])
            .collect();
        tx.execute_rows(
            "UPDATE outbox SET status = 'queued', attempts = attempts - 1, not_before = $2, \
             lease_until = NULL WHERE id = $1",
            |values| {
                format!(
                    "UPDATE outbox SET status = 'queued', attempts = attempts - 1, not_before = v.column2, \
                     lease_until = NULL FROM (VALUES {values}) AS v WHERE outbox.id = v.column1"
                )
            },
            &rows,
        )
        .await?;
        let rows: Vec<[Arg; 2]> = suppressed
            .iter()
            .map(|(id, why)| [(*id).into(), (*why).into()])
            .collect();
        tx.execute_rows(
            "UPDATE outbox SET status = 'suppressed', reason = $2, lease_until = NULL WHERE id = $1",
            |values| {
                format!(
                    "UPDATE outbox SET status = 'suppressed', reason = v.column2, lease_until = NULL \
                     FROM (VALUES {values}) AS v WHERE outbox.id = v.column1"
                )
            },
            &rows,
        )
        .await?;
        for (id, at, why) in retry {
            tx.execute(
                &sql("UPDATE outbox SET status = 'queued', not_before = $2, reason = $3, lease_until = NULL WHERE id = $1")
                    .bind(*id)
                    .bind(*at)
                    .bind(why.clone()),
            )
            .await?;
        }
        for (id, why) in failed {
            tx.execute(
                &sql("UPDATE outbox SET status = 'failed', reason = $2, lease_until = NULL WHERE id = $1")
                    .bind(*id)
                    .bind(why.clone()),
            )
            .await?;
        }
        tx.commit().await
    }
}
