//! Sending where written: on SQLite with a provider that records into this database, a
//! message's row and its send commit in one transaction, in the state its verdict leaves it.

use super::*;
use crate::channels::sms::SmsMessage;
use crate::engage::policy::{Suppressed, Verdict};
use crate::platform::db::{Backend, Reader, Tx};

impl Outbox {
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
        let legacy = self.legacy_unsubscribes(&mut Reader::Tx(tx)).await?;
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
                    Ok(phone)
                        if legacy.suppresses(
                            &self.cipher,
                            m.tenant_id,
                            m.purpose.as_str(),
                            &phone,
                        ) =>
                    {
                        w.status = "suppressed";
                        w.reason = Some(Suppressed::Unsubscribed.as_str().to_owned());
                        report.suppressed += 1;
                    }
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
}
