//! Writing messages to the outbox: staging a batch (content hashes, billable parts,
//! template parameters) before the transaction, and inserting rows keyed by their dedupe key.

use sha2::{Digest, Sha256};

use super::*;
use crate::channels::sms::billable_parts;
use crate::platform::db::{Db, DbError};
use crate::platform::rows::Arg;

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
pub(super) async fn queue_new(
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
    pub(super) msgs: Vec<NewMessage>,
    pub(super) derived: Derived,
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
    pub(super) fn as_policy_sees_it(&self) -> Vec<Seen<'_>> {
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
pub(super) struct Derived {
    pub(super) hashes: Vec<String>,
    pub(super) parts: Vec<i64>,
    pub(super) params: Vec<Option<String>>,
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
pub(super) struct Written {
    pub(super) status: &'static str,
    pub(super) attempts: i64,
    pub(super) not_before: i64,
    pub(super) reason: Option<String>,
    pub(super) provider: Option<&'static str>,
    pub(super) provider_ref: Option<String>,
    pub(super) sent_at: Option<i64>,
}

impl Written {
    pub(super) fn queued(not_before: i64) -> Written {
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
pub(super) async fn insert_messages(
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
