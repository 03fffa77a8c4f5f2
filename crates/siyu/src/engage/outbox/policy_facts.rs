//! The contact policy's facts for a batch (unsubscribes, the week's marketing, recent
//! duplicates), probed per tenant, and each message's verdict in batch order.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::*;
use crate::engage::policy::{self, ContactPolicy, Facts, Purpose, Verdict};
use crate::platform::db::{DbError, Reader};
use crate::platform::rows::Keys;

pub(super) const WEEK_MS: i64 = 7 * 86_400_000;

/// The contact policy's facts, each probed per key ([`Reader::probe`]): whether a number
/// unsubscribed ($1 tenant); marketing sent since $2 to a customer, or to a number without one;
/// anything sent since $2 to a number, with its content's hash (dedupe).
pub(super) const UNSUBSCRIBED: &str = "SELECT address_hash, address_hash FROM unsubscribes WHERE tenant_id = $1 \
     AND channel = 'sms' AND address_hash";

pub(super) const SENT_TO_CUSTOMER: &str = "SELECT address_hash, customer_id FROM outbox WHERE tenant_id = $1 \
     AND purpose = 'marketing' AND status IN ('sent', 'delivered', 'undelivered') AND sent_at >= $2 \
     AND customer_id";

pub(super) const SENT_TO_NUMBER: &str = "SELECT address_hash, address_hash FROM outbox WHERE tenant_id = $1 \
     AND purpose = 'marketing' AND customer_id IS NULL AND status IN ('sent', 'delivered', 'undelivered') \
     AND sent_at >= $2 AND address_hash";

/// The customer a message's customer was merged into by OneID ($1 tenant), and the records
/// merged into a customer: the weekly cap counts a person's marketing under every record of them.
pub(super) const MERGED_INTO: &str = "SELECT CAST(merged_into AS TEXT), id FROM customers \
     WHERE tenant_id = $1 AND merged_into IS NOT NULL AND id";

pub(super) const MERGED_FROM: &str =
    "SELECT CAST(id AS TEXT), merged_into FROM customers WHERE tenant_id = $1 AND merged_into";

pub(super) const SENT_RECENTLY: &str = "SELECT content_hash, address_hash FROM outbox WHERE tenant_id = $1 \
     AND status IN ('sent', 'delivered', 'undelivered') AND sent_at >= $2 AND address_hash";

/// Whom a weekly cap counts: the customer, or the number when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Who<'a> {
    Customer(i64),
    Number(&'a str),
}

impl<'a> Seen<'a> {
    /// Whom the cap counts for this message: the person its customer is now (a record OneID
    /// merged away since it was queued counts as the record it was merged into).
    fn who(&self, facts: &BatchFacts<'a>) -> Who<'a> {
        match self.customer_id {
            Some(c) => {
                let c = c.get();
                Who::Customer(facts.person.get(&c).copied().unwrap_or(c))
            }
            None => Who::Number(self.address_hash),
        }
    }
}

/// Hashing for the facts' sets: keyed by numbers' hashes already, they need no defence against
/// chosen collisions, and take foldhash as `rows.rs` does.
pub(super) type FastSet<T> = foldhash::HashSet<T>;

/// What the database holds about a batch's recipients, borrowing the batch's numbers; a
/// recent (number, content hash) pair read from the database owns its hash.
#[derive(Default)]
pub(super) struct BatchFacts<'a> {
    pub(super) unsubscribed: FastSet<&'a str>,
    pub(super) week: foldhash::HashMap<Who<'a>, i64>,
    pub(super) recent: FastSet<(&'a str, Cow<'a, str>)>,
    /// The customer each merged-away customer of the batch is now.
    pub(super) person: foldhash::HashMap<i64, i64>,
}

/// Each tenant's policy and facts, for one batch.
pub(super) type Known<'a> = HashMap<TenantId, (ContactPolicy, BatchFacts<'a>)>;

/// The policy's verdict for each message of `batch`, in order; messages earlier in the batch
/// count towards caps and dedupe of later ones.
pub(super) fn verdicts<'a>(batch: &[Seen<'a>], mut known: Known<'a>, now: i64) -> Vec<Verdict> {
    let mut out = vec![Verdict::Send; batch.len()];
    for (i, m) in batch.iter().enumerate() {
        let Some((policy, facts)) = known.get_mut(&m.tenant_id) else {
            continue;
        };
        let purpose = m.purpose;
        let who = m.who(facts);
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

impl Outbox {
    /// The policy's verdict for each claimed message, in order. Facts are read per tenant in a
    /// few queries; messages earlier in the batch count towards caps and dedupe of later ones.
    pub(super) async fn decide(
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
    pub(super) async fn read_facts<'a>(
        &self,
        reader: &mut Reader<'_>,
        batch: &[Seen<'a>],
        now: i64,
    ) -> Result<Known<'a>, OutboxError> {
        let mut known = Known::new();
        let tenants: HashSet<TenantId> = batch.iter().map(|m| m.tenant_id).collect();
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

    pub(super) async fn facts<'a>(
        &self,
        db: &mut Reader<'_>,
        tenant: TenantId,
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
            .filter_map(|m| m.customer_id.map(CustomerId::get))
            .collect::<FastSet<i64>>()
            .into_iter()
            .collect();
        // A person OneID found under several records is one person for the cap: the batch's
        // customers as the records they are now, and every record merged into those.
        for (i, into) in db
            .probe(MERGED_INTO, &[tenant.into()], Keys::Int(&customers))
            .await?
        {
            if let Some(into) = into.and_then(|v| v.parse().ok()) {
                f.person.insert(customers[i], into);
            }
        }
        let persons: Vec<i64> = customers
            .iter()
            .map(|c| f.person.get(c).copied().unwrap_or(*c))
            .collect::<FastSet<i64>>()
            .into_iter()
            .collect();
        let mut records: Vec<(i64, i64)> = persons.iter().map(|&p| (p, p)).collect();
        for (i, from) in db
            .probe(MERGED_FROM, &[tenant.into()], Keys::Int(&persons))
            .await?
        {
            if let Some(from) = from.and_then(|v| v.parse().ok()) {
                records.push((from, persons[i]));
            }
        }
        let record_ids: Vec<i64> = records.iter().map(|r| r.0).collect();
        // One row per message (at most the cap per record), counted for its person.
        let week_ago = now - WEEK_MS;
        let by_customer = db
            .probe(
                SENT_TO_CUSTOMER,
                &[tenant.into(), week_ago.into()],
                Keys::Int(&record_ids),
            )
            .await?;
        for (i, _) in by_customer {
            *f.week.entry(Who::Customer(records[i].1)).or_default() += 1;
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
}
