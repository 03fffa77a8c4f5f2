//! Through a provider that records into this database (`log`), a launch sends each chunk in the
//! transaction that writes it, instead of queueing it for the dispatcher to claim. The contact
//! policy still decides every message, each goes out once, quiet hours still queue; a message
//! already in the outbox fails the write and nothing of it is sent; and a provider that sends
//! over the network is still sent to by the dispatcher, after the rows commit.

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use roaring::RoaringBitmap;
use siyu::acquire::campaigns::{self, NewCampaign, VariantSpec};
use siyu::channels::sms::log::LogProvider;
use siyu::channels::sms::{BatchResult, SmsMessage, SmsProvider};
use siyu::engage::outbox::{self, Address, NewMessage, Outbox, OutboxError, Staged};
use siyu::engage::policy::{self, ContactPolicy, Purpose};
use siyu::platform::clock::now_ms;
use siyu::platform::db::{Db, DbError, Tx, sql, values_placeholders};

use common::{Backend, TestDb, cipher};

/// More than two of a launch's chunks.
const N: i64 = 12_000;

fn phone(i: i64) -> String {
    format!("13{i:09}")
}
/// Two marketing messages already this week: the weekly cap of two holds them back.
fn at_cap(i: i64) -> bool {
    i % 40 == 3
}
fn unsubscribed(i: i64) -> bool {
    i % 500 == 7
}

async fn seed(db: &Db, tenant: TenantId, now: i64) -> i64 {
    let c = cipher();
    let ids: Vec<i64> = (1..=N).collect();
    for chunk in ids.chunks(4_000) {
        let mut tx = db.begin().await.expect("tx");
        let mut q = sql(format!(
            "INSERT INTO customers (id, tenant_id, created_at) VALUES {}",
            values_placeholders(chunk.len(), 3, 1)
        ));
        for &i in chunk {
            q.push_arg(i);
            q.push_arg(tenant);
            q.push_arg(0i64);
        }
        tx.execute(&q).await.expect("customers");
        let mut q = sql(format!(
            "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen) VALUES {}",
            values_placeholders(chunk.len(), 6, 1)
        ));
        for &i in chunk {
            q.push_arg(tenant);
            q.push_arg(format!("phone:{}", c.lookup(tenant).hash(&phone(i))));
            q.push_arg("phone");
            q.push_arg(i);
            q.push_arg(c.encrypt(&phone(i)));
            q.push_arg(0i64);
        }
        tx.execute(&q).await.expect("identities");
        tx.commit().await.expect("commit");
    }
    let members: RoaringBitmap = (1..=N as u32).collect();
    let mut blob = Vec::new();
    members.serialize_into(&mut blob).expect("bitmap");
    db.execute(
        &sql("INSERT INTO segment_snapshots (id, tenant_id, segment_id, rule, size, members, taken_by, taken_at) \
              VALUES (77, $1, 1, 'all', $2, $3, 'test', 0)")
            .bind(tenant)
            .bind(N)
            .bind(blob),
    )
    .await
    .expect("snapshot");
    sending_any_hour(db, tenant).await;
    let earlier: Vec<NewMessage> = (1..=N)
        .filter(|&i| at_cap(i))
        .flat_map(|i| (0..2).map(move |k| (i, k)))
        .map(|(i, k)| message(tenant, i, &format!("earlier:{i}:{k}"), now - 86_400_000))
        .collect();
    outbox::enqueue(db, &earlier, now - 86_400_000)
        .await
        .expect("earlier");
    db.execute(
        &sql("UPDATE outbox SET status = 'sent', provider = 'log', sent_at = $1 WHERE tenant_id = $2")
            .bind(now - 86_400_000)
            .bind(tenant),
    )
    .await
    .expect("earlier sent");
    77
}

/// No quiet hours, so a test sends whatever the hour; the weekly cap of two still holds.
async fn sending_any_hour(db: &Db, tenant: TenantId) {
    policy::save(
        db,
        tenant,
        &ContactPolicy {
            quiet_start_minute: 0,
            quiet_end_minute: 0,
            ..ContactPolicy::default()
        },
    )
    .await
    .expect("policy");
}

async fn tenant_sending_any_hour(db: &Db) -> TenantId {
    let tenant = siyu::platform::access::create_tenant(db, "tea")
        .await
        .expect("tenant")
        .id;
    sending_any_hour(db, tenant).await;
    tenant
}

fn message(tenant: TenantId, i: i64, key: &str, not_before: i64) -> NewMessage {
    NewMessage {
        tenant_id: tenant,
        purpose: Purpose::Marketing,
        customer_id: Some(CustomerId::new(i)),
        address: Address::of_phone(&cipher(), &cipher().lookup(tenant), &phone(i)),
        content: format!("【茶小铺】{key} 拒收请回复R"),
        template_code: None,
        template_params: vec![],
        dedupe_key: key.to_string(),
        campaign_id: None,
        variant: None,
        not_before,
    }
}

async fn a_launch_through_log_sends_as_it_writes_and_the_policy_still_decides(backend: Backend) {
    let t = TestDb::new(backend).await;
    let db = &t.db;
    let now = now_ms();
    let tenant = siyu::platform::access::create_tenant(db, "tea")
        .await
        .expect("tenant")
        .id;
    let snapshot = seed(db, tenant, now).await;
    let (c, _) = campaigns::create(
        db,
        tenant,
        &NewCampaign {
            name: "回归".into(),
            snapshot_id: snapshot,
            variants: vec![VariantSpec {
                name: "A".into(),
                content: "【茶小铺】20元回归券已到账 {link} 拒收请回复R".into(),
                weight: 1,
            }],
            holdout_percent: 0,
            seed: Some("s".into()),
            target_url: Some("https://shop.example.cn/back".into()),
            template_code: None,
            exclude_phones: vec![],
            forbidden_words: vec![],
            cost_per_part: None,
            window_days: None,
            scheduled_at: Some(now),
        },
        30,
        now,
    )
    .await
    .expect("campaign");
    let provider = Arc::new(CountingLog::new(db));
    let ob = Outbox::new(db.clone(), cipher(), provider.clone());
    for i in (1..=N).filter(|&i| unsubscribed(i)) {
        policy::unsubscribe_number(db, &cipher(), tenant, &phone(i), "t", now)
            .await
            .expect("unsubscribe");
    }
    ob.spawn(Duration::from_millis(50));
    let launched = campaigns::launch_then(
        db,
        &cipher(),
        "https://s.tea.cn",
        tenant,
        c.id,
        now,
        Some(&ob),
    )
    .await
    .expect("launch");
    // The launch read the unsubscribes itself; those at their cap are the policy's to hold.
    let capped = (1..=N).filter(|&i| at_cap(i) && !unsubscribed(i)).count() as u64;
    assert_eq!(
        launched.queued,
        (1..=N).filter(|&i| !unsubscribed(i)).count() as u64,
        "{backend:?}"
    );
    // On SQLite each chunk was sent as it was written, so by now all are; on PostgreSQL the
    // dispatcher sends them beside the launch.
    let here = backend == common::Backend::Sqlite;
    assert_eq!(ob.sends_where_written(), here);
    let wait = if here {
        Duration::ZERO
    } else {
        Duration::from_secs(120)
    };
    let report = ob
        .settled(launched.queued, wait)
        .await
        .expect("sent by the launch itself, or within two minutes");
    assert_eq!(report.claimed, launched.queued, "{backend:?}");
    assert_eq!(report.suppressed, capped, "{backend:?}");
    assert_eq!(report.sent, launched.queued - capped, "{backend:?}");
    let (logged, distinct): (i64, i64) = db
        .fetch_one(&sql(
            "SELECT COUNT(*), COUNT(DISTINCT o.customer_id) FROM sms_log l JOIN outbox o ON o.id = l.outbox_id \
             WHERE o.campaign_id IS NOT NULL",
        ))
        .await
        .expect("log");
    assert_eq!(logged as u64, report.sent, "{backend:?}");
    assert_eq!(distinct, logged, "{backend:?}: someone got two messages");
    // Nor was any message handed to the provider twice (the log's key would hide that).
    let sends = provider.sends.lock().expect("sends").clone();
    assert_eq!(sends.len() as u64, report.sent, "{backend:?}");
    assert!(
        sends.values().all(|&n| n == 1),
        "{backend:?}: a message went twice"
    );
    // Written in their end states: sent with one attempt, its provider, reference and time;
    // held back with no attempt; nothing leased or left for the dispatcher.
    let rows: Vec<(String, i64, i64)> = db
        .fetch_all(
            &sql(
                "SELECT status, attempts, COUNT(*) FROM outbox WHERE campaign_id IS NOT NULL \
             AND lease_until IS NULL AND (status <> 'sent' OR (provider = 'log' \
             AND provider_ref = 'log:' || id AND sent_at >= $1)) \
             GROUP BY status, attempts ORDER BY status",
            )
            .bind(now),
        )
        .await
        .expect("statuses");
    assert_eq!(
        rows,
        vec![
            ("sent".to_string(), 1, report.sent as i64),
            // A claimed message counts its claim as an attempt.
            (
                "suppressed".to_string(),
                if here { 0 } else { 1 },
                capped as i64
            ),
        ],
        "{backend:?}"
    );
    let again = ob.drain(now_ms()).await.expect("drain");
    assert_eq!(
        again.claimed, 0,
        "{backend:?}: the dispatcher found work left"
    );
}
on_each_backend!(a_launch_through_log_sends_as_it_writes_and_the_policy_still_decides);

/// The `log` provider, counting how often each outbox message is handed to it.
struct CountingLog {
    log: LogProvider,
    sends: Mutex<HashMap<i64, u32>>,
}

impl CountingLog {
    fn new(db: &Db) -> CountingLog {
        CountingLog {
            log: LogProvider::new(db.clone()),
            sends: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, batch: &[SmsMessage]) {
        let mut sends = self.sends.lock().expect("sends");
        for m in batch {
            *sends.entry(m.outbox_id).or_default() += 1;
        }
    }
}

impl SmsProvider for CountingLog {
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
        self.count(batch);
        self.log.send(batch)
    }
    fn writes_to_database(&self) -> bool {
        true
    }
    fn send_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        batch: &'a [SmsMessage],
    ) -> BoxFuture<'a, Result<BatchResult, DbError>> {
        self.count(batch);
        self.log.send_in(tx, batch)
    }
}

/// A provider that sends nothing twice: an interrupted send is not retried.
struct Counting;

impl SmsProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn idempotent(&self) -> bool {
        false
    }
    fn rate_per_second(&self) -> u32 {
        u32::MAX
    }
    fn send<'a>(&'a self, batch: &'a [SmsMessage]) -> BoxFuture<'a, BatchResult> {
        Box::pin(async move {
            batch
                .iter()
                .map(|m| Ok(format!("c:{}", m.outbox_id)))
                .collect()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_leave_messages_queued_for_the_dispatcher() {
    // Only SQLite sends where it writes.
    for backend in [common::Backend::Sqlite] {
        let t = TestDb::new(backend).await;
        let db = &t.db;
        let tenant = siyu::platform::access::create_tenant(db, "tea")
            .await
            .expect("tenant")
            .id;
        // The default policy: no marketing 21:00–09:00 in Shanghai. 14:00 UTC is 22:00 there.
        policy::save(db, tenant, &ContactPolicy::default())
            .await
            .expect("policy");
        let night = 1_799_157_600_000;
        let ob = Outbox::new(db.clone(), cipher(), Arc::new(LogProvider::new(db.clone())));
        let mut tx = db.begin().await.expect("tx");
        let r = ob
            .write_and_send_in(
                &mut tx,
                &Staged::of(vec![
                    message(tenant, 1, "q1", night),
                    message(tenant, 2, "q2", night),
                ]),
                night,
            )
            .await
            .expect("write")
            .expect("sent where written");
        tx.commit().await.expect("commit");
        assert_eq!((r.sent, r.deferred), (0, 2), "{backend:?}");
        ob.count_sent(r);
        let rows: Vec<(String, i64, i64)> = db
            .fetch_all(&sql(
                "SELECT status, attempts, not_before FROM outbox ORDER BY dedupe_key",
            ))
            .await
            .expect("rows");
        let morning = rows[0].2;
        assert!(morning > night, "{backend:?}: {rows:?}");
        assert!(
            rows.iter()
                .all(|r| (r.0.as_str(), r.1, r.2) == ("queued", 0, morning)),
            "{backend:?}: {rows:?}"
        );
        // The dispatcher sends them when the night is over, once each.
        assert_eq!(ob.drain(morning - 1).await.expect("drain").claimed, 0);
        let sent = ob.drain(morning).await.expect("drain");
        assert_eq!(sent.sent, 2, "{backend:?}");
        let (logged,): (i64,) = db
            .fetch_one(&sql("SELECT COUNT(*) FROM sms_log"))
            .await
            .expect("log");
        assert_eq!(logged, 2, "{backend:?}");
        // A message not due yet is written queued, and not sent.
        let mut tx = db.begin().await.expect("tx");
        let r = ob
            .write_and_send_in(
                &mut tx,
                &Staged::of(vec![message(tenant, 3, "later", morning + 86_400_000)]),
                morning,
            )
            .await
            .expect("write");
        tx.commit().await.expect("commit");
        assert!(r.is_none(), "{backend:?}");
        let (status,): (String,) = db
            .fetch_one(&sql("SELECT status FROM outbox WHERE dedupe_key = 'later'"))
            .await
            .expect("later");
        assert_eq!(status, "queued", "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_already_in_the_outbox_fails_the_write_and_nothing_is_sent() {
    for backend in [common::Backend::Sqlite] {
        let t = TestDb::new(backend).await;
        let db = &t.db;
        let now = 1_795_392_000_000;
        let tenant = tenant_sending_any_hour(db).await;
        outbox::enqueue(db, &[message(tenant, 1, "k1", now)], now)
            .await
            .expect("first");
        let ob = Outbox::new(db.clone(), cipher(), Arc::new(LogProvider::new(db.clone())));
        let mut tx = db.begin().await.expect("tx");
        let e = ob
            .write_and_send_in(
                &mut tx,
                &Staged::of(vec![
                    message(tenant, 1, "k1", now),
                    message(tenant, 2, "k2", now),
                ]),
                now,
            )
            .await
            .expect_err("k1 was there before");
        assert!(
            matches!(
                e,
                OutboxError::AlreadyQueued {
                    expected: 2,
                    written: 1
                }
            ),
            "{backend:?}: {e}"
        );
        assert!(e.to_string().contains("1 of these 2"), "{e}");
        drop(tx);
        let rows: Vec<(String, String)> = db
            .fetch_all(&sql(
                "SELECT dedupe_key, status FROM outbox ORDER BY dedupe_key",
            ))
            .await
            .expect("rows");
        assert_eq!(
            rows,
            vec![("k1".to_string(), "queued".to_string())],
            "{backend:?}"
        );
        let (logged,): (i64,) = db
            .fetch_one(&sql("SELECT COUNT(*) FROM sms_log"))
            .await
            .expect("log");
        assert_eq!(logged, 0, "{backend:?}: a send was kept without its row");
        // k1 goes as usual, once.
        let r = ob.drain(now).await.expect("drain");
        assert_eq!(r.sent, 1, "{backend:?}");
    }
}

async fn a_provider_that_sends_over_the_network_is_sent_to_by_the_dispatcher(backend: Backend) {
    let t = TestDb::new(backend).await;
    let db = &t.db;
    let now = 1_795_392_000_000;
    let tenant = tenant_sending_any_hour(db).await;
    let ob = Outbox::new(db.clone(), cipher(), Arc::new(Counting));
    assert!(!ob.sends_where_written());
    let mut tx = db.begin().await.expect("tx");
    let r = ob
        .write_and_send_in(
            &mut tx,
            &Staged::of(
                (1..=3)
                    .map(|i| message(tenant, i, &format!("n{i}"), now))
                    .collect(),
            ),
            now,
        )
        .await
        .expect("write");
    tx.commit().await.expect("commit");
    assert!(r.is_none(), "{backend:?}: sent before the rows committed");
    let (queued,): (i64,) = db
        .fetch_one(&sql(
            "SELECT COUNT(*) FROM outbox WHERE status = 'queued' AND attempts = 0",
        ))
        .await
        .expect("queued");
    assert_eq!(queued, 3, "{backend:?}");
    let r = ob.drain(now).await.expect("drain");
    assert_eq!((r.claimed, r.sent), (3, 3), "{backend:?}");
}
on_each_backend!(a_provider_that_sends_over_the_network_is_sent_to_by_the_dispatcher);
