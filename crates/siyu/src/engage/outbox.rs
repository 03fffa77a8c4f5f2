//! The outbox: every outbound message is written here first, then sent by a dispatcher that
//! claims due messages in batches, asks the contact policy about each, hands the ones allowed
//! to the channel's provider and records the outcome. Nothing acknowledged is lost: a message
//! is a row before anyone is told it is queued, and a dispatcher that dies mid-batch leaves
//! leases that the next one reclaims.
//!
//! Idempotency: enqueueing is keyed by `dedupe_key` (unique per tenant), and a message whose
//! send was interrupted is sent again only to a provider that dedupes by the outbox id (`log`);
//! for the others it becomes `unknown`, since a second SMS is worse than a missing one.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::policy::{self, ContactPolicy, Facts, PolicyError, Purpose, Verdict};
use crate::channels::sms::{SmsMessage, SmsProvider, billable_parts};
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Backend, Db, DbError, Reader, Tx, sql};
use crate::platform::rows::{Arg, Keys};

/// A claimed message's lease: a dispatcher that has not finished it by then is presumed dead.
pub const LEASE_MS: i64 = 60_000;
/// Attempts before a message that keeps failing is given up.
pub const MAX_ATTEMPTS: i64 = 5;
const WEEK_MS: i64 = 7 * 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(
        "{} of these {expected} messages are in the outbox already (their dedupe keys), so none was sent: \
         another launch of the same campaign is running; let it finish, and launching again then sends only to those it missed",
        expected - written
    )]
    AlreadyQueued { expected: u64, written: u64 },
}

/// A message to write to the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub tenant_id: i64,
    pub purpose: Purpose,
    pub customer_id: Option<i64>,
    pub address: Address,
    pub content: String,
    pub template_code: Option<String>,
    pub template_params: Vec<(String, String)>,
    /// Enqueueing the same key twice writes one message.
    pub dedupe_key: String,
    pub campaign_id: Option<i64>,
    pub variant: Option<String>,
    /// Not sent before this time (a campaign's schedule).
    pub not_before: i64,
}

/// A number as the outbox keeps it: its keyed lookup hash and its ciphertext, never the digits.
#[derive(Debug, Clone)]
pub struct Address {
    pub hash: String,
    pub enc: String,
}

impl Address {
    /// `phone`: an 11-digit mainland number, already normalised.
    pub fn of_phone(cipher: &FieldCipher, phone: &str) -> Address {
        Address {
            hash: cipher.lookup_hash(phone),
            enc: cipher.encrypt(phone),
        }
    }

    /// A phone identity as stored (`phone:HASH`, and its ciphertext) is already both: nothing is
    /// decrypted or hashed again. `None` for any other identity.
    pub fn of_identity(ikey: &str, value_enc: Option<String>) -> Option<Address> {
        Some(Address {
            hash: ikey.strip_prefix("phone:")?.to_owned(),
            enc: value_enc?,
        })
    }
}

pub fn content_hash(content: &str) -> String {
    hex::encode(&Sha256::digest(content.as_bytes())[..16])
}

/// Writes messages to the outbox (`Tx::insert_rows`); returns how many were new (the rest were
/// already there under their dedupe key).
pub async fn enqueue(db: &Db, msgs: &[NewMessage], now: i64) -> Result<u64, DbError> {
    let mut tx = db.begin().await?;
    let n = enqueue_in(&mut tx, msgs, now).await?;
    tx.commit().await?;
    Ok(n)
}

/// [`enqueue`] inside the caller's transaction, so a message commits with what caused it.
pub async fn enqueue_in(
    tx: &mut crate::platform::db::Tx,
    msgs: &[NewMessage],
    now: i64,
) -> Result<u64, DbError> {
    if msgs.is_empty() {
        return Ok(0);
    }
    queue_new(tx, msgs, &Derived::of(msgs), now).await
}

/// [`enqueue_in`] for messages staged before the transaction began.
pub async fn enqueue_staged_in(
    tx: &mut crate::platform::db::Tx,
    staged: &Staged,
    now: i64,
) -> Result<u64, DbError> {
    if staged.msgs.is_empty() {
        return Ok(0);
    }
    queue_new(tx, &staged.msgs, &staged.derived, now).await
}

/// Writes `msgs` queued under ids reserved for them.
async fn queue_new(
    tx: &mut crate::platform::db::Tx,
    msgs: &[NewMessage],
    derived: &Derived,
    now: i64,
) -> Result<u64, DbError> {
    let first = tx.reserve_ids("outbox", msgs.len() as i64).await?;
    insert_messages(tx, first, msgs, derived, now, None).await
}

/// Messages with what their rows store beside their own fields (content hashes, template
/// parameters as JSON), worked out before a transaction takes the writer, which then only
/// writes.
pub struct Staged {
    msgs: Vec<NewMessage>,
    derived: Derived,
}

impl Staged {
    pub fn of(msgs: Vec<NewMessage>) -> Staged {
        let derived = Derived::of(&msgs);
        Staged { msgs, derived }
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The messages as the contact policy reads them.
    fn as_policy_sees_it(&self) -> Vec<Seen<'_>> {
        self.msgs
            .iter()
            .zip(&self.derived.hashes)
            .map(|(m, hash)| Seen {
                tenant_id: m.tenant_id,
                purpose: m.purpose,
                customer_id: m.customer_id,
                address_hash: &m.address.hash,
                content_hash: hash,
            })
            .collect()
    }
}

/// What a message's row stores beside its own fields: its content's hash, its billable parts
/// and its template parameters as JSON.
struct Derived {
    hashes: Vec<String>,
    parts: Vec<i64>,
    params: Vec<Option<String>>,
}

impl Derived {
    fn of(msgs: &[NewMessage]) -> Derived {
        Derived {
            hashes: msgs.iter().map(|m| content_hash(&m.content)).collect(),
            parts: msgs.iter().map(|m| billable_parts(&m.content)).collect(),
            params: msgs
                .iter()
                .map(|m| {
                    (!m.template_params.is_empty()).then(|| {
                        serde_json::to_string(&m.template_params).unwrap_or_else(|_| "[]".into())
                    })
                })
                .collect(),
        }
    }
}

/// The state a message's row is written in.
struct Written {
    status: &'static str,
    attempts: i64,
    not_before: i64,
    reason: Option<String>,
    provider: Option<&'static str>,
    provider_ref: Option<String>,
    sent_at: Option<i64>,
}

impl Written {
    fn queued(not_before: i64) -> Written {
        Written {
            status: "queued",
            attempts: 0,
            not_before,
            reason: None,
            provider: None,
            provider_ref: None,
            sent_at: None,
        }
    }
}

/// Writes `msgs` under ids `first..`, each in its state (queued when `states` is `None`).
async fn insert_messages(
    tx: &mut crate::platform::db::Tx,
    first: i64,
    msgs: &[NewMessage],
    derived: &Derived,
    now: i64,
    states: Option<&[Written]>,
) -> Result<u64, DbError> {
    let queued: Vec<Written>;
    let states = match states {
        Some(s) => s,
        None => {
            queued = msgs.iter().map(|m| Written::queued(m.not_before)).collect();
            &queued
        }
    };
    let rows: Vec<[Arg; 23]> = msgs
        .iter()
        .zip(states)
        .enumerate()
        .map(|(i, (m, w))| {
            [
                (first + i as i64).into(),
                m.tenant_id.into(),
                "sms".into(),
                m.purpose.as_str().into(),
                m.customer_id.into(),
                m.address.hash.as_str().into(),
                m.address.enc.as_str().into(),
                m.content.as_str().into(),
                derived.hashes[i].as_str().into(),
                m.template_code.as_deref().into(),
                derived.params[i].as_deref().into(),
                derived.parts[i].into(),
                m.dedupe_key.as_str().into(),
                m.campaign_id.into(),
                m.variant.as_deref().into(),
                w.not_before.into(),
                w.status.into(),
                w.attempts.into(),
                w.reason.as_deref().into(),
                w.provider.into(),
                w.provider_ref.as_deref().into(),
                w.sent_at.into(),
                now.into(),
            ]
        })
        .collect();
    let written = tx
        .insert_rows(
            "INSERT INTO outbox (id, tenant_id, channel, purpose, customer_id, address_hash, address_enc, content, \
             content_hash, template_code, template_params, parts, dedupe_key, campaign_id, variant, not_before, \
             status, attempts, reason, provider, provider_ref, sent_at, created_at)",
            "ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
            &rows,
        )
        .await?;
    Ok(written)
}

/// What one dispatch round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    pub claimed: u64,
    pub sent: u64,
    pub deferred: u64,
    pub suppressed: u64,
    pub retried: u64,
    pub failed: u64,
    /// Interrupted sends reclaimed from a dispatcher that died.
    pub reclaimed: u64,
}

impl DispatchReport {
    pub fn add(&mut self, o: DispatchReport) {
        self.claimed += o.claimed;
        self.sent += o.sent;
        self.deferred += o.deferred;
        self.suppressed += o.suppressed;
        self.retried += o.retried;
        self.failed += o.failed;
        self.reclaimed += o.reclaimed;
    }
}

#[derive(sqlx::FromRow, Debug)]
struct Claimed {
    id: i64,
    tenant_id: i64,
    purpose: String,
    customer_id: Option<i64>,
    address_hash: String,
    address_enc: String,
    content: String,
    content_hash: String,
    template_code: Option<String>,
    template_params: Option<String>,
    attempts: i64,
}

impl Claimed {
    fn as_policy_sees_it(&self) -> Seen<'_> {
        Seen {
            tenant_id: self.tenant_id,
            purpose: Purpose::parse(&self.purpose).unwrap_or(Purpose::Marketing),
            customer_id: self.customer_id,
            address_hash: &self.address_hash,
            content_hash: &self.content_hash,
        }
    }
}

/// A message as the contact policy reads it (whose, why, which content), borrowed from a
/// claimed row or a staged message: a launch decides 50,000 without copying one.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    tenant_id: i64,
    purpose: Purpose,
    customer_id: Option<i64>,
    address_hash: &'a str,
    content_hash: &'a str,
}

/// Sends what the outbox holds, through one provider.
pub struct Outbox {
    db: Db,
    cipher: FieldCipher,
    provider: Arc<dyn SmsProvider>,
    batch: usize,
    wake: Notify,
    /// Everything dispatched so far, for whoever waits for a launch to go out.
    totals: tokio::sync::watch::Sender<DispatchReport>,
}

impl Outbox {
    pub fn new(db: Db, cipher: FieldCipher, provider: Arc<dyn SmsProvider>) -> Arc<Outbox> {
        Arc::new(Outbox {
            db,
            cipher,
            provider,
            batch: 2_000,
            wake: Notify::new(),
            totals: tokio::sync::watch::Sender::new(DispatchReport::default()),
        })
    }

    /// Whether messages can be sent in the transaction that writes them
    /// ([`Outbox::write_and_send_in`]): on SQLite, when the provider records into this database
    /// (`log`), so a message's row and its send commit together, or neither does, and there is
    /// nothing to lease, claim or send again after a crash. Every other provider, and every
    /// provider on PostgreSQL (where a dispatcher beside the launch writes in parallel, which
    /// measured faster: docs/BENCHMARKS.md), is sent to by the dispatcher after the row is
    /// committed.
    pub fn sends_where_written(&self) -> bool {
        self.db.backend() == Backend::Sqlite && self.provider.writes_to_database()
    }

    /// Writes `staged` in `tx` and, in the same transaction, sends what the contact policy
    /// allows now: each row is written in the state its verdict leaves it (sent, suppressed, or
    /// queued until quiet hours end), as the dispatcher would have left it, except that a
    /// message held back was never attempted (attempts 0). The policy's facts
    /// are read in `tx`, after every send committed before it. What was done comes back, to
    /// pass to [`Outbox::count_sent`] once `tx` commits; `None` when the provider does not send
    /// where it writes, or a message is for another tenant or not due yet: then all are written
    /// queued, as [`enqueue_staged_in`] writes them, for the dispatcher. The messages must be
    /// new: one whose dedupe key is in the outbox already fails the whole call
    /// ([`OutboxError::AlreadyQueued`]), and the caller's transaction must not commit (a launch
    /// skips the customers it recorded before, so it meets this only when launched twice at
    /// once).
    pub async fn write_and_send_in(
        &self,
        tx: &mut Tx,
        staged: &Staged,
        now: i64,
    ) -> Result<Option<DispatchReport>, OutboxError> {
        let Some(tenant) = staged.msgs.first().map(|m| m.tenant_id) else {
            return Ok(None);
        };
        // `now` may be a launch's start, minutes ago for a large one; a send happens now.
        let now = now.max(crate::platform::clock::now_ms());
        let sends_here = self.sends_where_written()
            && staged
                .msgs
                .iter()
                .all(|m| m.tenant_id == tenant && m.not_before <= now);
        if !sends_here {
            enqueue_staged_in(tx, staged, now).await?;
            return Ok(None);
        }
        let n = staged.msgs.len();
        let first = tx.reserve_ids("outbox", n as i64).await?;
        let batch = staged.as_policy_sees_it();
        let verdicts = self.decide(&mut Reader::Tx(tx), &batch, now).await?;
        let mut states: Vec<Written> = staged
            .msgs
            .iter()
            .map(|m| Written::queued(m.not_before))
            .collect();
        let mut report = DispatchReport {
            claimed: n as u64,
            ..Default::default()
        };
        let mut msgs = Vec::new();
        for (i, (m, v)) in staged.msgs.iter().zip(verdicts).enumerate() {
            let w = &mut states[i];
            match v {
                Verdict::Send => match self.cipher.decrypt(&m.address.enc) {
                    Ok(phone) => msgs.push(SmsMessage {
                        outbox_id: first + i as i64,
                        tenant_id: m.tenant_id,
                        phone,
                        content: m.content.clone(),
                        template_code: m.template_code.clone(),
                        template_params: m.template_params.clone(),
                    }),
                    Err(e) => {
                        w.status = "failed";
                        w.attempts = 1;
                        w.reason = Some(format!("address: {e}"));
                        report.failed += 1;
                    }
                },
                Verdict::Defer(until) => {
                    w.not_before = until;
                    report.deferred += 1;
                }
                Verdict::Suppress(why) => {
                    w.status = "suppressed";
                    w.reason = Some(why.as_str().to_owned());
                    report.suppressed += 1;
                }
            }
        }
        let results = self.provider.send_in(tx, &msgs).await?;
        for (msg, r) in msgs.iter().zip(results) {
            let w = &mut states[(msg.outbox_id - first) as usize];
            w.attempts = 1;
            match r {
                Ok(reference) => {
                    w.status = "sent";
                    w.provider = Some(self.provider.name());
                    w.provider_ref = Some(reference);
                    w.sent_at = Some(now);
                    report.sent += 1;
                }
                Err(e) if e.retryable() => {
                    w.not_before = now + retry_wait(1);
                    w.reason = Some(e.to_string());
                    report.retried += 1;
                }
                Err(e) => {
                    w.status = "failed";
                    w.reason = Some(e.to_string());
                    report.failed += 1;
                }
            }
        }
        let written =
            insert_messages(tx, first, &staged.msgs, &staged.derived, now, Some(&states)).await?;
        if written != n as u64 {
            // The caller's transaction must not commit a send without its row.
            return Err(OutboxError::AlreadyQueued {
                expected: n as u64,
                written,
            });
        }
        Ok(Some(report))
    }

    /// Counts what [`Outbox::write_and_send_in`] did, once its transaction committed, and wakes
    /// the dispatcher for what it left queued.
    pub fn count_sent(&self, r: DispatchReport) {
        self.totals.send_modify(|t| t.add(r));
        if r.deferred + r.retried > 0 {
            self.notify();
        }
    }

    /// Waits until `messages` (a launch's queued count, say) have reached an end state since
    /// this dispatcher started: sent, suppressed or failed. The totals then; `None` when that
    /// took longer than `within`.
    pub async fn settled(&self, messages: u64, within: Duration) -> Option<DispatchReport> {
        let mut totals = self.totals.subscribe();
        let done = totals.wait_for(|t| t.sent + t.suppressed + t.failed >= messages);
        match tokio::time::timeout(within, done).await {
            Ok(Ok(t)) => Some(*t),
            _ => None,
        }
    }

    pub fn provider_name(&self) -> &'static str {
        self.provider.name()
    }

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
    async fn drain_by(
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
        let verdicts = match local.as_mut() {
            Some(tx) => self.decide(&mut Reader::Tx(tx), &seen, now).await?,
            None => self.decide(&mut Reader::Pool(&self.db), &seen, now).await?,
        };
        let mut out = Outcomes::default();
        let mut msgs = Vec::new();
        let mut tries = Vec::new();
        for ((m, v), phone) in claimed.iter().zip(verdicts).zip(phones) {
            match (v, phone) {
                (Verdict::Send, Ok(phone)) => {
                    msgs.push(SmsMessage {
                        outbox_id: m.id,
                        tenant_id: m.tenant_id,
                        phone,
                        content: m.content.clone(),
                        template_code: m.template_code.clone(),
                        template_params: m
                            .template_params
                            .as_deref()
                            .and_then(|t| serde_json::from_str(t).ok())
                            .unwrap_or_default(),
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
    async fn any(&self, probe: &str, now: i64) -> Result<bool, DbError> {
        let found: Option<(i64,)> = self.db.fetch_optional(&sql(probe).bind(now)).await?;
        Ok(found.is_some())
    }

    async fn claim(&self, now: i64) -> Result<Vec<Claimed>, DbError> {
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
                               content_hash, template_code, template_params, attempts"
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

    /// The policy's verdict for each claimed message, in order. Facts are read per tenant in a
    /// few queries; messages earlier in the batch count towards caps and dedupe of later ones.
    async fn decide(
        &self,
        reader: &mut Reader<'_>,
        batch: &[Seen<'_>],
        now: i64,
    ) -> Result<Vec<Verdict>, OutboxError> {
        let known = self.read_facts(reader, batch, now).await?;
        Ok(verdicts(batch, known, now))
    }

    /// What the policy needs to know about a batch, per tenant: its policy, and the facts about
    /// its recipients as the database holds them.
    async fn read_facts<'a>(
        &self,
        reader: &mut Reader<'_>,
        batch: &[Seen<'a>],
        now: i64,
    ) -> Result<Known<'a>, OutboxError> {
        let mut known = Known::new();
        let tenants: HashSet<i64> = batch.iter().map(|m| m.tenant_id).collect();
        for tenant in tenants {
            let policy = policy::load_in(reader, tenant).await?;
            let marketing: Vec<Seen<'a>> = batch
                .iter()
                .filter(|m| m.tenant_id == tenant && m.purpose != Purpose::Verification)
                .copied()
                .collect();
            let facts = self.facts(reader, tenant, &policy, &marketing, now).await?;
            known.insert(tenant, (policy, facts));
        }
        Ok(known)
    }

    async fn facts<'a>(
        &self,
        db: &mut Reader<'_>,
        tenant: i64,
        policy: &ContactPolicy,
        msgs: &[Seen<'a>],
        now: i64,
    ) -> Result<BatchFacts<'a>, DbError> {
        let mut f = BatchFacts::default();
        if msgs.is_empty() {
            return Ok(f);
        }
        let addresses: Vec<&'a str> = msgs
            .iter()
            .map(|m| m.address_hash)
            .collect::<FastSet<&str>>()
            .into_iter()
            .collect();
        // In the writer's transaction when the caller sends in it (`log`), so that no send
        // committed meanwhile is missed; else on pooled connections, leaving the writer free.
        let unsub = db
            .probe(UNSUBSCRIBED, &[tenant.into()], Keys::Text(&addresses))
            .await?;
        f.unsubscribed = unsub.into_iter().map(|(i, _)| addresses[i]).collect();
        // Sent marketing in the last 7 days, per customer (or per number without one).
        let customers: Vec<i64> = msgs
            .iter()
            .filter_map(|m| m.customer_id)
            .collect::<FastSet<i64>>()
            .into_iter()
            .collect();
        // One row per message (at most the cap per customer), counted here.
        let week_ago = now - WEEK_MS;
        let by_customer = db
            .probe(
                SENT_TO_CUSTOMER,
                &[tenant.into(), week_ago.into()],
                Keys::Int(&customers),
            )
            .await?;
        for (i, _) in by_customer {
            *f.week.entry(Who::Customer(customers[i])).or_default() += 1;
        }
        // Only numbers sent to without a customer are capped by number.
        let anonymous: Vec<&'a str> = msgs
            .iter()
            .filter(|m| m.customer_id.is_none())
            .map(|m| m.address_hash)
            .collect::<FastSet<&str>>()
            .into_iter()
            .collect();
        let by_address = db
            .probe(
                SENT_TO_NUMBER,
                &[tenant.into(), week_ago.into()],
                Keys::Text(&anonymous),
            )
            .await?;
        for (i, _) in by_address {
            *f.week.entry(Who::Number(anonymous[i])).or_default() += 1;
        }
        if policy.dedupe_hours > 0 {
            let since = now - policy.dedupe_hours * 3_600_000;
            let recent = db
                .probe(
                    SENT_RECENTLY,
                    &[tenant.into(), since.into()],
                    Keys::Text(&addresses),
                )
                .await?;
            f.recent = recent
                .into_iter()
                .filter_map(|(i, hash)| Some((addresses[i], Cow::Owned(hash?))))
                .collect();
        }
        Ok(f)
    }

    /// Records a round's outcomes in one transaction: `tx` when the provider sent in it.
    async fn record(
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

/// How long a message waits after its `tries`-th attempt failed and may be retried: 30 s,
/// 1 min, 2 min, 4 min.
fn retry_wait(tries: i64) -> i64 {
    30_000 << (tries - 1).clamp(0, 4)
}

/// The contact policy's facts, each probed per key ([`Reader::probe`]): whether a number
/// unsubscribed ($1 tenant); marketing sent since $2 to a customer, or to a number without one;
/// anything sent since $2 to a number, with its content's hash (dedupe).
const UNSUBSCRIBED: &str = "SELECT address_hash, address_hash FROM unsubscribes WHERE tenant_id = $1 \
     AND channel = 'sms' AND address_hash";
const SENT_TO_CUSTOMER: &str = "SELECT address_hash, customer_id FROM outbox WHERE tenant_id = $1 \
     AND purpose = 'marketing' AND status IN ('sent', 'delivered', 'undelivered') AND sent_at >= $2 \
     AND customer_id";
const SENT_TO_NUMBER: &str = "SELECT address_hash, address_hash FROM outbox WHERE tenant_id = $1 \
     AND purpose = 'marketing' AND customer_id IS NULL AND status IN ('sent', 'delivered', 'undelivered') \
     AND sent_at >= $2 AND address_hash";
const SENT_RECENTLY: &str = "SELECT content_hash, address_hash FROM outbox WHERE tenant_id = $1 \
     AND status IN ('sent', 'delivered', 'undelivered') AND sent_at >= $2 AND address_hash";

/// Whom a weekly cap counts: the customer, or the number when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who<'a> {
    Customer(i64),
    Number(&'a str),
}

impl<'a> Seen<'a> {
    fn who(&self) -> Who<'a> {
        match self.customer_id {
            Some(c) => Who::Customer(c),
            None => Who::Number(self.address_hash),
        }
    }
}

/// Where each message of a round ended, by outcome.
#[derive(Default)]
struct Outcomes {
    /// With the provider's reference.
    sent: Vec<(i64, String)>,
    /// Until when.
    deferred: Vec<(i64, i64)>,
    /// Why.
    suppressed: Vec<(i64, &'static str)>,
    /// When to try again, and what went wrong.
    retry: Vec<(i64, i64, String)>,
    failed: Vec<(i64, String)>,
}

/// Hashing for the facts' sets: keyed by numbers' hashes already, they need no defence against
/// chosen collisions, and take foldhash as `rows.rs` does.
type FastSet<T> = foldhash::HashSet<T>;

/// What the database holds about a batch's recipients, borrowing the batch's numbers; a
/// recent (number, content hash) pair read from the database owns its hash.
#[derive(Default)]
struct BatchFacts<'a> {
    unsubscribed: FastSet<&'a str>,
    week: foldhash::HashMap<Who<'a>, i64>,
    recent: FastSet<(&'a str, Cow<'a, str>)>,
}

/// Each tenant's policy and facts, for one batch.
type Known<'a> = HashMap<i64, (ContactPolicy, BatchFacts<'a>)>;

/// The policy's verdict for each message of `batch`, in order; messages earlier in the batch
/// count towards caps and dedupe of later ones.
fn verdicts<'a>(batch: &[Seen<'a>], mut known: Known<'a>, now: i64) -> Vec<Verdict> {
    let mut out = vec![Verdict::Send; batch.len()];
    for (i, m) in batch.iter().enumerate() {
        let Some((policy, facts)) = known.get_mut(&m.tenant_id) else {
            continue;
        };
        let purpose = m.purpose;
        let who = m.who();
        let pair = (m.address_hash, Cow::Borrowed(m.content_hash));
        let f = Facts {
            unsubscribed: facts.unsubscribed.contains(m.address_hash),
            sent_this_week: facts.week.get(&who).copied().unwrap_or(0),
            duplicate: policy.dedupe_hours > 0 && facts.recent.contains(&pair),
        };
        let v = policy.decide(purpose, now, f);
        if v == Verdict::Send && purpose != Purpose::Verification {
            facts.recent.insert(pair);
            if purpose == Purpose::Marketing {
                *facts.week.entry(who).or_default() += 1;
            }
        }
        out[i] = v;
    }
    out
}

/// A delivery receipt from a provider's callback: the message reached the phone or did not.
pub async fn record_receipt(
    db: &Db,
    provider: &str,
    provider_ref: &str,
    delivered: bool,
    code: &str,
    at: i64,
) -> Result<bool, DbError> {
    let n = db
        .execute(
            &sql("UPDATE outbox SET status = $3, delivery = $4, delivered_at = $5 \
                  WHERE provider = $1 AND provider_ref = $2 AND status IN ('sent', 'delivered', 'undelivered')")
            .bind(provider)
            .bind(provider_ref)
            .bind(if delivered { "delivered" } else { "undelivered" })
            .bind(code)
            .bind(at),
        )
        .await?;
    Ok(n > 0)
}

/// The tenant that last sent to a number: a provider's reply callback names only the number. No
/// outbox index starts with the number, so the newest send is looked up tenant by tenant through
/// `outbox_address (tenant_id, address_hash, sent_at)` of sent messages, one index probe each, instead of
/// scanning the outbox.
const LAST_SENDER: &str = "SELECT tenant_id FROM (SELECT t.id AS tenant_id, \
     (SELECT MAX(o.sent_at) FROM outbox o WHERE o.tenant_id = t.id AND o.address_hash = $1 \
     AND o.sent_at IS NOT NULL) AS last \
     FROM tenants t) AS s WHERE last IS NOT NULL ORDER BY last DESC, tenant_id LIMIT 1";

/// A reply from a phone: recorded against the tenant that last messaged that number, and an
/// unsubscribe when it says R, TD or 退订. Returns the tenant, if any had messaged it.
pub async fn record_reply(
    db: &Db,
    cipher: &FieldCipher,
    provider: &str,
    phone: &str,
    text: &str,
    at: i64,
) -> Result<Option<(i64, bool)>, DbError> {
    let hash = cipher.lookup_hash(phone);
    let tenant: Option<(i64,)> = db
        .fetch_optional(&sql(LAST_SENDER).bind(hash.clone()))
        .await?;
    let Some((tenant,)) = tenant else {
        return Ok(None);
    };
    let unsubscribe = crate::channels::sms::is_unsubscribe_reply(text);
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("sms_reply", 1).await?;
    tx.execute(
        &sql("INSERT INTO sms_replies (id, tenant_id, provider, address_hash, content, unsubscribed, received_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(tenant)
            .bind(provider)
            .bind(hash.clone())
            .bind(text)
            .bind(unsubscribe as i64)
            .bind(at),
    )
    .await?;
    if unsubscribe {
        tx.execute(
            &sql("INSERT INTO unsubscribes (tenant_id, channel, address_hash, source, created_at) VALUES ($1, 'sms', $2, $3, $4) \
                  ON CONFLICT (tenant_id, channel, address_hash) DO NOTHING")
                .bind(tenant)
                .bind(hash)
                .bind(format!("reply:{provider}"))
                .bind(at),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some((tenant, unsubscribe)))
}

/// Counts of a tenant's outbox by status.
pub async fn counts(db: &Db, tenant: i64) -> Result<Vec<(String, i64)>, DbError> {
    db.fetch_all(
        &sql("SELECT status, COUNT(*) FROM outbox WHERE tenant_id = $1 GROUP BY status ORDER BY status")
            .bind(tenant),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_phone_identity_is_already_the_outbox_address() {
        // A launch takes the address from the identity without decrypting: the identity's key
        // must carry the same hash the outbox (unsubscribes, caps, dedupe) looks numbers up by.
        let cipher = FieldCipher::new(&[3u8; 32]);
        let phone = crate::know::identity::Identity::new(
            crate::know::identity::IdentityKind::Phone,
            "+86 138-0013-8000",
            None,
        )
        .expect("phone");
        let keyed = phone.key(&cipher);
        let from_identity =
            Address::of_identity(&keyed.ikey, keyed.value_enc.clone()).expect("a phone identity");
        let from_number = Address::of_phone(&cipher, "13800138000");
        assert_eq!(from_identity.hash, from_number.hash);
        assert_eq!(
            cipher.decrypt(&from_identity.enc).expect("decrypts"),
            "13800138000"
        );
        assert!(Address::of_identity("email:a@b.cn", None).is_none());
    }

    /// An in-memory database has one connection, which the writer's transaction holds: the
    /// policy and its facts must be read in that transaction, or the read waits for it forever.
    #[tokio::test]
    async fn log_sends_where_written_on_a_database_with_one_connection() {
        let db = crate::platform::migrate::migrated_in_memory().await;
        db.execute(&sql(
            "INSERT INTO tenants (id, name, created_at) VALUES (1, 'a', 0)",
        ))
        .await
        .expect("tenant");
        let cipher = FieldCipher::new(&[3u8; 32]);
        let ob = Outbox::new(
            db.clone(),
            cipher.clone(),
            Arc::new(crate::channels::sms::log::LogProvider::new(db.clone())),
        );
        // 04:00 UTC is noon in Shanghai, outside the default quiet hours.
        let noon = 1_799_121_600_000;
        let msg = |i: i64| NewMessage {
            tenant_id: 1,
            purpose: Purpose::Marketing,
            customer_id: Some(i),
            address: Address::of_phone(&cipher, &format!("1380013800{i}")),
            content: format!("【茶】第{i}条 拒收请回复R"),
            template_code: None,
            template_params: vec![],
            dedupe_key: format!("k{i}"),
            campaign_id: None,
            variant: None,
            not_before: noon,
        };
        let sent = tokio::time::timeout(Duration::from_secs(10), async {
            let mut tx = db.begin().await.expect("tx");
            let r = ob
                .write_and_send_in(&mut tx, &Staged::of(vec![msg(1), msg(2)]), noon)
                .await
                .expect("write")
                .expect("sent where written");
            tx.commit().await.expect("commit");
            // And the dispatcher, which reads its facts in its transaction for `log` too.
            enqueue(&db, &[msg(3)], noon).await.expect("enqueue");
            let d = ob.drain(noon).await.expect("drain");
            r.sent + d.sent
        })
        .await
        .expect("no read waited for the writer's connection");
        assert_eq!(sent, 3);
    }

    #[tokio::test]
    async fn a_reply_goes_to_the_tenant_that_last_sent_to_the_number() {
        let db = crate::platform::migrate::migrated_in_memory().await;
        for (id, name) in [(1, "a"), (2, "b"), (3, "c")] {
            db.execute(
                &sql("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, 0)")
                    .bind(id)
                    .bind(name),
            )
            .await
            .expect("tenant");
        }
        // Tenant 1 wrote to the number first, tenant 2 later; tenant 3's message is unsent.
        for (id, tenant, sent_at) in [(1, 1, Some(100)), (2, 2, Some(200)), (3, 3, None)] {
            db.execute(
                &sql(
                    "INSERT INTO outbox (id, tenant_id, channel, purpose, address_hash, address_enc, \
                     content, content_hash, parts, dedupe_key, status, not_before, created_at, sent_at) \
                     VALUES ($1, $2, 'sms', 'marketing', 'h1', 'x', 'hi', 'c', 1, $3, 'sent', 0, 0, $4)",
                )
                .bind(id)
                .bind(tenant)
                .bind(format!("k{id}"))
                .bind(sent_at),
            )
            .await
            .expect("message");
        }
        let last: Option<(i64,)> = db
            .fetch_optional(&sql(LAST_SENDER).bind("h1"))
            .await
            .expect("last sender");
        assert_eq!(last, Some((2,)));
        let none: Option<(i64,)> = db
            .fetch_optional(&sql(LAST_SENDER).bind("h2"))
            .await
            .expect("no sender");
        assert_eq!(none, None);
        // One index probe per tenant, never a scan of the outbox.
        let plan = crate::platform::db::query_plan(&db, sql(LAST_SENDER).bind("h1")).await;
        assert!(
            plan.iter().any(|t| t.contains("INDEX outbox_address")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|t| t.starts_with("SCAN o")), "{plan:?}");
    }

    /// Each fact is probed once per key of a launch's chunk (5,000 keys): a probe that scanned
    /// instead of searching its partial index would make every chunk quadratic, silently.
    #[tokio::test]
    async fn each_fact_probe_searches_an_index_for_its_key() {
        let db = crate::platform::migrate::migrated_in_memory().await;
        for (head, index, key) in [
            (
                UNSUBSCRIBED,
                "sqlite_autoindex_unsubscribes_1",
                Arg::from("h1"),
            ),
            (SENT_TO_CUSTOMER, "outbox_customer", Arg::from(7i64)),
            (SENT_TO_NUMBER, "outbox_address", Arg::from("h1")),
            (SENT_RECENTLY, "outbox_address", Arg::from("h1")),
        ] {
            let fixed = if head == UNSUBSCRIBED { 1 } else { 2 };
            let mut q = sql(crate::platform::rows::probe_statement(head, fixed));
            q.push_arg(Arg::from(1i64));
            if fixed == 2 {
                q.push_arg(Arg::from(5i64));
            }
            q.push_arg(key);
            let plan = crate::platform::db::query_plan(&db, q).await;
            assert!(
                plan.iter()
                    .any(|t| t.starts_with("SEARCH") && t.contains(&format!("INDEX {index}"))),
                "{head}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|t| t.starts_with("SCAN")),
                "{head}: {plan:?}"
            );
        }
    }
}
