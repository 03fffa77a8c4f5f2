//! The outbox: every outbound message is written here first, then sent by a dispatcher that
//! claims due messages in batches, asks the contact policy about each, hands the ones allowed
//! to the channel's provider and records the outcome. Nothing acknowledged is lost: a message
//! is a row before anyone is told it is queued, and a dispatcher that dies mid-batch leaves
//! leases that the next one reclaims.
//!
//! Idempotency: enqueueing is keyed by `dedupe_key` (unique per tenant), and a message whose
//! send was interrupted is sent again only to a provider that dedupes by the outbox id (`log`);
//! for the others it becomes `unknown`, since a second SMS is worse than a missing one.

use crate::know::CustomerId;
use crate::platform::TenantId;
mod dispatch;
mod legacy_unsubscribes;
mod policy_facts;
pub mod progress;
mod receipts;
mod staging;
mod where_written;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::policy::{PolicyError, Purpose};
use crate::channels::sms::SmsProvider;
use crate::platform::crypto::{FieldCipher, TenantLookup};
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

pub use dispatch::{LEASE_MS, MAX_ATTEMPTS};
pub use receipts::{record_receipt, record_reply};
pub use staging::{Staged, content_hash, enqueue, enqueue_in, enqueue_staged_in};
use staging::{Written, insert_messages};

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

impl Refuse for OutboxError {
    fn refusal(&self) -> Refusal {
        match self {
            OutboxError::Db(_) => Refusal::Internal,
            OutboxError::Policy(e) => e.refusal(),
            OutboxError::AlreadyQueued { .. } => Refusal::Conflict("conflict"),
        }
    }
}

/// A message to write to the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub tenant_id: TenantId,
    pub purpose: Purpose,
    pub customer_id: Option<CustomerId>,
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
    pub fn of_phone(cipher: &FieldCipher, lookup: &TenantLookup, phone: &str) -> Address {
        Address {
            hash: lookup.hash(phone),
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

/// A message as the contact policy reads it (whose, why, which content), borrowed from a
/// claimed row or a staged message: a launch decides 50,000 without copying one.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    tenant_id: TenantId,
    purpose: Purpose,
    customer_id: Option<CustomerId>,
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
    /// Read at the first send (in the sender's transaction, which may hold the only connection).
    legacy: tokio::sync::OnceCell<legacy_unsubscribes::LegacyUnsubscribes>,
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
            legacy: tokio::sync::OnceCell::new(),
        })
    }

    async fn legacy_unsubscribes(
        &self,
        reader: &mut crate::platform::db::Reader<'_>,
    ) -> Result<&legacy_unsubscribes::LegacyUnsubscribes, OutboxError> {
        Ok(self
            .legacy
            .get_or_try_init(|| legacy_unsubscribes::LegacyUnsubscribes::read(reader))
            .await?)
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
}

/// How long a message waits after its `tries`-th attempt failed and may be retried: 30 s,
/// 1 min, 2 min, 4 min.
fn retry_wait(tries: i64) -> i64 {
    30_000 << (tries - 1).clamp(0, 4)
}

/// Counts of a tenant's outbox by status.
pub async fn counts(db: &Db, tenant: TenantId) -> Result<Vec<(String, i64)>, DbError> {
    db.fetch_all(
        &sql("SELECT status, COUNT(*) FROM outbox WHERE tenant_id = $1 GROUP BY status ORDER BY status")
            .bind(tenant),
    )
    .await
}

/// Where a one-time code stands in a verification message as stored: the code itself is put
/// in only when the message is handed to the provider.
pub const CODE_PLACEHOLDER: &str = "{code}";

/// The dedupe keys of one-time codes start with this.
pub const CODE_KEY_PREFIX: &str = "otp:";

/// The seed a one-time code is derived from ([`FieldCipher::one_time_code`]): the tenant and
/// the message's dedupe key, unique per code sent.
pub fn code_seed(tenant: TenantId, dedupe_key: &str) -> String {
    format!("{tenant}:{dedupe_key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{policy_facts::*, receipts::*};
    use crate::platform::rows::Arg;

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
        let lookup = cipher.lookup(TenantId::new(1));
        let keyed = phone.key(&cipher, &lookup);
        let from_identity =
            Address::of_identity(&keyed.ikey, keyed.value_enc.clone()).expect("a phone identity");
        let from_number = Address::of_phone(&cipher, &lookup, "13800138000");
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
            tenant_id: TenantId::new(1),
            purpose: Purpose::Marketing,
            customer_id: Some(CustomerId::new(i)),
            address: Address::of_phone(
                &cipher,
                &cipher.lookup(TenantId::new(1)),
                &format!("1380013800{i}"),
            ),
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
        let probes = |h: &str| -> Vec<(TenantId, String)> {
            (1..=3).map(|t| (TenantId::new(t), h.to_owned())).collect()
        };
        let last: Option<(i64, i64)> = db
            .fetch_optional(&last_sender(&probes("h1")))
            .await
            .expect("last sender");
        assert_eq!(last, Some((2, 200)));
        let none: Option<(i64, i64)> = db
            .fetch_optional(&last_sender(&probes("h2")))
            .await
            .expect("no sender");
        assert_eq!(none, None);
        // One index probe per tenant, never a scan of the outbox.
        let plan = crate::platform::db::query_plan(&db, last_sender(&probes("h1")))
            .await
            .expect("query plan");
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
            let plan = crate::platform::db::query_plan(&db, q)
                .await
                .expect("query plan");
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
