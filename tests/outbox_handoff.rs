//! A launch beside this process's dispatcher writes each chunk already leased to it and hands
//! the chunk over, instead of queueing it for the dispatcher to claim. The contact policy still
//! decides every message; each goes out once; a chunk that was written leased but never handed
//! over (the process died) goes out after its lease, as a claimed one would; and a chunk some of
//! whose messages were already in the outbox is queued instead.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use roaring::RoaringBitmap;
use siyu::acquire::campaigns::{self, NewCampaign, VariantSpec};
use siyu::channels::sms::log::LogProvider;
use siyu::channels::sms::{BatchResult, SmsMessage, SmsProvider};
use siyu::engage::outbox::{self, Address, LEASE_MS, NewMessage, Outbox};
use siyu::engage::policy::{self, ContactPolicy, Purpose};
use siyu::platform::clock::now_ms;
use siyu::platform::db::{Db, DbError, Tx, sql, values_placeholders};

use common::{TestDb, backends, cipher};

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

async fn seed(db: &Db, tenant: i64, now: i64) -> i64 {
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
            q.push_arg(format!("phone:{}", c.lookup_hash(&phone(i))));
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
async fn sending_any_hour(db: &Db, tenant: i64) {
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

async fn tenant_sending_any_hour(db: &Db) -> i64 {
    let tenant = siyu::platform::access::create_tenant(db, "tea")
        .await
        .expect("tenant")
        .id;
    sending_any_hour(db, tenant).await;
    tenant
}

fn message(tenant: i64, i: i64, key: &str, not_before: i64) -> NewMessage {
    NewMessage {
        tenant_id: tenant,
        purpose: Purpose::Marketing,
        customer_id: Some(i),
        address: Address::of_phone(&cipher(), &phone(i)),
        content: format!("【茶小铺】{key} 拒收请回复R"),
        template_code: None,
        template_params: vec![],
        dedupe_key: key.to_string(),
        campaign_id: None,
        variant: None,
        not_before,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_hands_its_chunks_to_the_dispatcher_and_the_policy_still_decides() {
    for backend in backends() {
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
        // Not running: nothing would be handed over.
        assert!(ob.room_for(10).await.is_none(), "{backend:?}");
        for i in (1..=N).filter(|&i| unsubscribed(i)) {
            policy::unsubscribe(
                db,
                tenant,
                "sms",
                &cipher().lookup_hash(&phone(i)),
                "t",
                now,
            )
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
        let report = ob
            .settled(launched.queued, Duration::from_secs(120))
            .await
            .expect("sent within two minutes");
        // Chunks of 5,000 (a chunk finding no room within seconds on a slow machine is queued).
        assert!(report.handed >= 5_000, "{backend:?}: {report:?}");
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
        // As a claim would leave them: one attempt each, no lease left.
        let rows: Vec<(String, i64, i64)> = db
            .fetch_all(&sql(
                "SELECT status, attempts, COUNT(*) FROM outbox WHERE campaign_id IS NOT NULL \
                 AND lease_until IS NULL GROUP BY status, attempts ORDER BY status",
            ))
            .await
            .expect("statuses");
        assert_eq!(
            rows,
            vec![
                ("sent".to_string(), 1, report.sent as i64),
                ("suppressed".to_string(), 1, capped as i64),
            ],
            "{backend:?}"
        );
    }
}

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
async fn a_chunk_written_leased_but_never_handed_over_goes_after_its_lease() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let db = &t.db;
        // A day ahead, so the lease runs from this time rather than the clock.
        let now = now_ms() + 86_400_000;
        let tenant = tenant_sending_any_hour(db).await;
        // A chunk of a launch that began ten minutes ago is leased from when it is written.
        let before = now_ms();
        let mut tx = db.begin().await.expect("tx");
        outbox::enqueue_leased_in(
            &mut tx,
            vec![message(tenant, 900, "late", before - 600_000)],
            before - 600_000,
        )
        .await
        .expect("enqueue")
        .expect("leased");
        tx.commit().await.expect("commit");
        let (lease,): (i64,) = db
            .fetch_one(&sql(
                "SELECT lease_until FROM outbox WHERE dedupe_key = 'late'",
            ))
            .await
            .expect("lease");
        assert!(
            lease >= before + LEASE_MS,
            "{backend:?}: lease {lease} counted from the launch's start"
        );
        // Out of the way of the day-ahead drains below.
        db.execute(&sql("DELETE FROM outbox WHERE dedupe_key = 'late'"))
            .await
            .expect("delete");
        for (provider, idempotent) in [
            (
                Arc::new(LogProvider::new(db.clone())) as Arc<dyn SmsProvider>,
                true,
            ),
            (Arc::new(Counting), false),
        ] {
            let first = if idempotent { 1 } else { 101 };
            let msgs: Vec<NewMessage> = (first..first + 50)
                .map(|i| message(tenant, i, &format!("crash:{i}"), now))
                .collect();
            let mut tx = db.begin().await.expect("tx");
            let leased = outbox::enqueue_leased_in(&mut tx, msgs, now)
                .await
                .expect("enqueue")
                .expect("all new, so leased");
            assert_eq!(leased.len(), 50);
            tx.commit().await.expect("commit");
            // The process dies before its dispatcher sees the chunk.
            drop(leased);
            let next = Outbox::new(db.clone(), cipher(), provider);
            let r = next.drain(now + 1_000).await.expect("drain");
            assert_eq!(
                r.claimed, 0,
                "{backend:?}: still leased to the dead process"
            );
            let r = next.drain(now + LEASE_MS + 1_000).await.expect("drain");
            assert_eq!(r.reclaimed, 50, "{backend:?}");
            let (status, n): (String, i64) = db
                .fetch_one(
                    &sql(
                        "SELECT MIN(status), COUNT(*) FROM outbox WHERE dedupe_key LIKE 'crash:%' \
                          AND customer_id >= $1 AND customer_id < $2",
                    )
                    .bind(first)
                    .bind(first + 50),
                )
                .await
                .expect("statuses");
            // Sent again only where a second send cannot deliver twice.
            let expected = if idempotent { "sent" } else { "unknown" };
            assert_eq!((status.as_str(), n), (expected, 50), "{backend:?}");
            assert_eq!(r.sent, if idempotent { 50 } else { 0 }, "{backend:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_with_a_message_already_in_the_outbox_is_queued_not_leased() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let db = &t.db;
        let now = 1_795_392_000_000;
        let tenant = tenant_sending_any_hour(db).await;
        outbox::enqueue(db, &[message(tenant, 1, "k1", now)], now)
            .await
            .expect("first");
        let mut tx = db.begin().await.expect("tx");
        let leased = outbox::enqueue_leased_in(
            &mut tx,
            vec![message(tenant, 1, "k1", now), message(tenant, 2, "k2", now)],
            now,
        )
        .await
        .expect("enqueue");
        tx.commit().await.expect("commit");
        assert!(leased.is_none(), "{backend:?}: k1 was there before");
        let rows: Vec<(String, String, i64, Option<i64>)> = db
            .fetch_all(&sql(
                "SELECT dedupe_key, status, attempts, lease_until FROM outbox ORDER BY dedupe_key",
            ))
            .await
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                ("k1".to_string(), "queued".to_string(), 0, None),
                ("k2".to_string(), "queued".to_string(), 0, None),
            ],
            "{backend:?}"
        );
        // Claimed and sent as usual, each once.
        let ob = Outbox::new(db.clone(), cipher(), Arc::new(LogProvider::new(db.clone())));
        let r = ob.drain(now).await.expect("drain");
        assert_eq!((r.sent, r.handed), (2, 0), "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_provider_that_dedupes_and_keeps_up_is_handed_chunks() {
    struct Slow;
    impl SmsProvider for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn idempotent(&self) -> bool {
            true
        }
        fn rate_per_second(&self) -> u32 {
            100
        }
        fn send<'a>(&'a self, batch: &'a [SmsMessage]) -> BoxFuture<'a, BatchResult> {
            Box::pin(async move { batch.iter().map(|_| Ok(String::new())).collect() })
        }
    }
    let t = TestDb::new(common::Backend::Sqlite).await;
    // A chunk left leased by a crash would become `unknown` for a provider that does not dedupe,
    // though it was never sent: such a provider claims as before.
    let once = Outbox::new(t.db.clone(), cipher(), Arc::new(Counting));
    once.spawn(Duration::from_secs(60));
    assert!(once.room_for(100).await.is_none());
    // 100 a second sends a chunk of 100 within a second, not one of 5,000.
    let slow = Outbox::new(t.db.clone(), cipher(), Arc::new(Slow));
    slow.spawn(Duration::from_secs(60));
    assert!(slow.room_for(5_000).await.is_none());
    assert!(slow.room_for(100).await.is_some());
    // Room for one chunk beside the one being sent. Nobody takes it here, so the next launch
    // chunk finds no room within a few seconds and is queued instead of waiting on.
    let log = Outbox::new(
        t.db.clone(),
        cipher(),
        Arc::new(LogProvider::new(t.db.clone())),
    );
    log.spawn(Duration::from_secs(60));
    let _room = log.room_for(5_000).await.expect("room");
    assert!(log.room_for(5_000).await.is_none());
}
