//! A recall campaign to a snapshot of 100,000 customers, with frequency caps, quiet hours,
//! unsubscribes (before launch and after), an exclusion list, customers with two numbers and
//! customers with none, sends exactly the messages the contact policy allows, once each, even
//! though the dispatcher dies in the middle of a batch and another takes over.

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;
use std::collections::HashSet;

use roaring::RoaringBitmap;
use siyu::acquire::campaigns::{self, CONTROL, NewCampaign, VariantSpec, assign};
use siyu::channels::sms::log::LogProvider;
use siyu::engage::outbox::{self, LEASE_MS, NewMessage, Outbox};
use siyu::engage::policy::{self, Purpose};
use siyu::platform::db::{Db, sql, values_placeholders};

use common::{Backend, TestDb, cipher};

const N: i64 = 100_000;
const HOUR: i64 = 3_600_000;
/// 2026-11-23 23:00 in China: quiet hours.
const LAUNCH: i64 = 1_795_392_000_000 + 15 * HOUR;
/// 09:00 the next morning in China, when quiet hours end.
const MORNING: i64 = 1_795_392_000_000 + 25 * HOUR;

fn phone(i: i64) -> String {
    format!("13{i:09}")
}
fn second_phone(i: i64) -> String {
    format!("15{i:09}")
}
fn has_no_phone(i: i64) -> bool {
    i % 1000 == 8
}
fn has_two_phones(i: i64) -> bool {
    i % 100 == 7
}
fn unsubscribed_early(i: i64) -> bool {
    i % 1000 == 5
}
fn unsubscribed_late(i: i64) -> bool {
    i % 1000 == 6
}
/// Already sent two marketing messages this week: capped.
fn at_cap(i: i64) -> bool {
    i % 50 == 3
}
/// Sent one this week: one more is allowed.
fn one_sent(i: i64) -> bool {
    i % 50 == 4
}
fn excluded(i: i64) -> bool {
    i % 10_000 == 70
}

async fn seed_customers(db: &Db, tenant: TenantId) {
    let c = cipher();
    let ids: Vec<i64> = (1..=N).collect();
    for chunk in ids.chunks(5_000) {
        let mut tx = db.begin().await.expect("tx");
        let mut q = sql(format!(
            "INSERT INTO customers (id, tenant_id, display_name, created_at) VALUES {}",
            values_placeholders(chunk.len(), 4, 1)
        ));
        for &i in chunk {
            q.push_arg(i);
            q.push_arg(tenant);
            q.push_arg(format!("顾客{i}"));
            q.push_arg(LAUNCH - 100 * 86_400_000);
        }
        tx.execute(&q).await.expect("customers");
        let mut rows: Vec<(String, i64, String, i64)> = Vec::new();
        for &i in chunk {
            if has_no_phone(i) {
                continue;
            }
            rows.push((phone(i), i, c.encrypt(&phone(i)), 1));
            if has_two_phones(i) {
                rows.push((second_phone(i), i, c.encrypt(&second_phone(i)), 2));
            }
        }
        let mut q = sql(format!(
            "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen) VALUES {}",
            values_placeholders(rows.len(), 6, 1)
        ));
        for (p, i, enc, seen) in rows {
            q.push_arg(tenant);
            q.push_arg(format!("phone:{}", c.lookup(tenant).hash(&p)));
            q.push_arg("phone");
            q.push_arg(i);
            q.push_arg(enc);
            q.push_arg(seen);
        }
        tx.execute(&q).await.expect("identities");
        tx.commit().await.expect("commit");
    }
}

async fn snapshot_of_everyone(db: &Db, tenant: TenantId) -> i64 {
    let members: RoaringBitmap = (1..=N as u32).collect();
    let mut blob = Vec::new();
    members.serialize_into(&mut blob).expect("bitmap");
    db.execute(
        &sql("INSERT INTO segment_snapshots (id, tenant_id, segment_id, rule, size, members, taken_by, taken_at) \
              VALUES (9001, $1, 1, 'all', $2, $3, 'test', $4)")
            .bind(tenant)
            .bind(N)
            .bind(blob)
            .bind(LAUNCH - HOUR),
    )
    .await
    .expect("snapshot");
    9001
}

/// Marketing messages this week before the campaign, so some customers are at their cap.
async fn earlier_sends(db: &Db, tenant: TenantId) {
    let c = cipher();
    let mut msgs = Vec::new();
    for i in 1..=N {
        let n = if at_cap(i) {
            2
        } else if one_sent(i) {
            1
        } else {
            0
        };
        for k in 0..n {
            msgs.push(NewMessage {
                tenant_id: tenant,
                purpose: Purpose::Marketing,
                customer_id: Some(CustomerId::new(i)),
                address: outbox::Address::of_phone(&c, &c.lookup(tenant), &phone(i)),
                content: format!("【茶小铺】上周上新第{k}弹，拒收请回复R"),
                template_code: None,
                template_params: vec![],
                dedupe_key: format!("earlier:{i}:{k}"),
                campaign_id: None,
                variant: None,
                not_before: LAUNCH + 365 * 24 * HOUR,
            });
        }
    }
    outbox::enqueue(db, &msgs, LAUNCH - 2 * 24 * HOUR)
        .await
        .expect("earlier");
    db.execute(
        &sql("UPDATE outbox SET status = 'sent', provider = 'log', sent_at = $1 WHERE tenant_id = $2 AND dedupe_key LIKE 'earlier:%'")
            .bind(LAUNCH - 2 * 24 * HOUR)
            .bind(tenant),
    )
    .await
    .expect("mark earlier sent");
}

async fn a_100k_campaign_sends_exactly_what_the_policy_allows_across_a_restart(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let c = cipher();
    let tenant = siyu::platform::access::create_tenant(db, "tea")
        .await
        .expect("tenant")
        .id;
    seed_customers(db, tenant).await;
    let snapshot = snapshot_of_everyone(db, tenant).await;
    earlier_sends(db, tenant).await;
    for i in (1..=N).filter(|&i| unsubscribed_early(i)) {
        policy::unsubscribe_number(db, &c, tenant, &phone(i), "test", LAUNCH - HOUR)
            .await
            .expect("unsubscribe");
    }
    let variants = vec![
        VariantSpec {
            name: "A".into(),
            content: "【茶小铺】老朋友，20元回归券已到账 {link} 拒收请回复R".into(),
            weight: 1,
        },
        VariantSpec {
            name: "B".into(),
            content: "【茶小铺】新茶到了，给您留了一份 {link} 拒收请回复R".into(),
            weight: 1,
        },
    ];
    let new = NewCampaign {
        name: "双11后召回".into(),
        snapshot_id: snapshot,
        variants: variants.clone(),
        holdout_percent: 10,
        seed: Some("recall-1".into()),
        target_url: Some("https://shop.example.cn/back".into()),
        template_code: None,
        exclude_phones: (1..=N).filter(|&i| excluded(i)).map(phone).collect(),
        forbidden_words: vec![],
        cost_per_part: Some(Fen::new(5)),
        window_days: Some(7),
        scheduled_at: Some(LAUNCH),
    };
    let (campaign, _) = campaigns::create(db, tenant, &new, 30, LAUNCH)
        .await
        .expect("create");
    let launched = campaigns::launch(db, &c, "https://s.tea.cn", tenant, campaign.id, LAUNCH)
        .await
        .expect("launch");
    assert_eq!(launched.audience, N as u64, "{backend:?}");
    assert_eq!(launched.no_phone, 100, "{backend:?}");
    assert_eq!(launched.unsubscribed, 100, "{backend:?}");
    assert_eq!(launched.excluded, 10, "{backend:?}");
    // Launching again changes nothing.
    let again = campaigns::launch(db, &c, "https://s.tea.cn", tenant, campaign.id, LAUNCH + 1)
        .await
        .expect("relaunch");
    assert_eq!(again, launched);

    // 23:00: quiet hours. Everything waits for the morning; nothing is dropped.
    let night = Outbox::new(
        db.clone(),
        c.clone(),
        std::sync::Arc::new(LogProvider::new(db.clone())),
    );
    let r = night.drain(LAUNCH).await.expect("night");
    assert_eq!(r.sent, 0, "{backend:?}: nothing goes out at night");
    assert_eq!(r.deferred, launched.queued, "{backend:?}");
    let (early,): (i64,) = db
        .fetch_one(&sql("SELECT COUNT(*) FROM outbox WHERE tenant_id = $1 AND campaign_id = $2 AND not_before <> $3").bind(tenant).bind(campaign.id).bind(MORNING))
        .await
        .expect("deferred");
    assert_eq!(early, 0, "{backend:?}: every message waits until 09:00");
    // Overnight, some reply 退订.
    for i in (1..=N).filter(|&i| unsubscribed_late(i)) {
        policy::unsubscribe_number(db, &c, tenant, &phone(i), "reply:test", LAUNCH + HOUR)
            .await
            .expect("late unsubscribe");
    }

    // What the policy allows, worked out from the rules.
    let expected: HashSet<i64> = (1..=N)
        .filter(|&i| {
            !has_no_phone(i)
                && !excluded(i)
                && !unsubscribed_early(i)
                && !unsubscribed_late(i)
                && !at_cap(i)
                && assign("recall-1", CustomerId::new(i), 10, &variants) != CONTROL
        })
        .collect();
    // Morning: a dispatcher sends three batches, then dies holding a fourth, half of whose
    // messages the provider had already accepted.
    let first = Outbox::new(
        db.clone(),
        c.clone(),
        std::sync::Arc::new(LogProvider::new(db.clone())),
    );
    for _ in 0..3 {
        first.dispatch_batch(MORNING).await.expect("batch");
    }
    drop(first);
    let held: Vec<(i64, i64, String)> = db
        .fetch_all(
            &sql("UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $1 \
                  WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND not_before <= $2 ORDER BY not_before, id LIMIT 2000) \
                  RETURNING id, customer_id, content")
                .bind(MORNING + LEASE_MS)
                .bind(MORNING),
        )
        .await
        .expect("a dispatcher's claim");
    assert_eq!(held.len(), 2000);
    // It had sent every other message it decided to send (the policy holds the rest).
    for (id, _, content) in held.iter().filter(|h| expected.contains(&h.1)).step_by(2) {
        db.execute(
            &sql("INSERT INTO sms_log (outbox_id, tenant_id, content, logged_at) VALUES ($1, $2, $3, $4)")
                .bind(*id)
                .bind(tenant)
                .bind(content.clone())
                .bind(MORNING),
        )
        .await
        .expect("accepted before the crash");
    }
    // A new process: the lease runs out, the held messages go again, the rest follow.
    let second = Outbox::new(
        db.clone(),
        c.clone(),
        std::sync::Arc::new(LogProvider::new(db.clone())),
    );
    let r = second
        .drain(MORNING + LEASE_MS + 1_000)
        .await
        .expect("drain");
    assert_eq!(r.reclaimed, 2000, "{backend:?}");

    let logged: Vec<(i64, i64, String, i64)> = db
        .fetch_all(
            &sql("SELECT o.customer_id, o.id, o.address_hash, o.sent_at FROM sms_log l JOIN outbox o ON o.id = l.outbox_id \
                  WHERE o.tenant_id = $1 AND o.campaign_id = $2")
                .bind(tenant)
                .bind(campaign.id),
        )
        .await
        .expect("log");
    let customers: HashSet<i64> = logged.iter().map(|r| r.0).collect();
    assert_eq!(
        logged.len(),
        customers.len(),
        "{backend:?}: someone got two messages"
    );
    assert_eq!(customers.len(), expected.len(), "{backend:?}");
    assert!(
        customers == expected,
        "{backend:?}: a different set of people was messaged"
    );
    for (cust, _, address, sent_at) in &logged {
        // Customers with two numbers get one message, at the number they gave first.
        assert_eq!(
            address,
            &c.lookup(tenant).hash(&phone(*cust)),
            "{backend:?}"
        );
        assert!(*sent_at >= MORNING, "{backend:?}: sent in quiet hours");
    }
    let by_status: Vec<(String, Option<String>, i64)> = db
        .fetch_all(
            &sql("SELECT status, reason, COUNT(*) FROM outbox WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status, reason ORDER BY status, reason")
                .bind(tenant)
                .bind(campaign.id),
        )
        .await
        .expect("statuses");
    let count = |s: &str, r: Option<&str>| {
        by_status
            .iter()
            .find(|(st, re, _)| st == s && re.as_deref() == r)
            .map_or(0, |x| x.2)
    };
    let treated = |f: fn(i64) -> bool| {
        (1..=N)
            .filter(|&i| f(i) && !has_no_phone(i) && !excluded(i) && !unsubscribed_early(i))
            .filter(|&i| assign("recall-1", CustomerId::new(i), 10, &variants) != CONTROL)
            .count() as i64
    };
    assert_eq!(
        count("sent", None),
        expected.len() as i64,
        "{backend:?}: {by_status:?}"
    );
    assert_eq!(
        count("suppressed", Some("capped")),
        treated(at_cap),
        "{backend:?}"
    );
    assert_eq!(
        count("suppressed", Some("unsubscribed")),
        treated(unsubscribed_late),
        "{backend:?}"
    );
    let left: i64 = by_status
        .iter()
        .filter(|(s, _, _)| s == "queued" || s == "sending")
        .map(|x| x.2)
        .sum();
    assert_eq!(left, 0, "{backend:?}: {by_status:?}");
    // Nothing more to do, however often it is asked.
    let r = second.drain(MORNING + 2 * HOUR).await.expect("again");
    assert_eq!(r.claimed, 0);
    drop(tdb);
}
on_each_backend!(a_100k_campaign_sends_exactly_what_the_policy_allows_across_a_restart);

/// A person OneID finds under two records is one person for the weekly cap: marketing sent to the
/// record merged away counts against the record that is kept, and a message queued to the
/// merged-away record before the merge counts for the person too.
async fn the_weekly_cap_counts_a_person_across_merged_records(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let tenant = siyu::platform::access::create_tenant(db, "brand")
        .await
        .expect("tenant")
        .id;
    let c = cipher();
    let store = |no: &'static str, phones: &'static [&'static str]| {
        let order = common::store_order(no, phones, 100, LAUNCH - 200 * 24 * HOUR);
        common::store(db, tenant, vec![order])
    };
    let owner = |no: &'static str| common::order_owner(db, tenant, no);
    const OLD: &str = "13800000001";
    const NEW: &str = "13900000002";
    store("A-1", &[OLD]).await;
    store("B-1", &[NEW]).await;
    let (kept, merged) = (owner("A-1").await, owner("B-1").await);
    let message = |customer: i64, phone: &str, key: &str, not_before: i64| NewMessage {
        tenant_id: tenant,
        purpose: Purpose::Marketing,
        customer_id: Some(CustomerId::new(customer)),
        address: outbox::Address::of_phone(&c, &c.lookup(tenant), phone),
        content: format!("【茶小铺】{key}，拒收请回复R"),
        template_code: None,
        template_params: vec![],
        dedupe_key: key.into(),
        campaign_id: None,
        variant: None,
        not_before,
    };
    let send_at = |at: i64| {
        let db = db.clone();
        async move {
            Outbox::new(
                db.clone(),
                cipher(),
                std::sync::Arc::new(LogProvider::new(db.clone())),
            )
            .drain(at)
            .await
            .expect("drain")
        }
    };
    // Two this week to the newer record (the default cap), and one queued to it for later.
    outbox::enqueue(
        db,
        &[
            message(merged, NEW, "周一上新", MORNING),
            message(merged, NEW, "周二上新", MORNING),
            message(merged, NEW, "周三上新", MORNING + 4 * HOUR),
        ],
        LAUNCH,
    )
    .await
    .expect("enqueue");
    let r = send_at(MORNING + HOUR).await;
    assert_eq!(r.sent, 2, "{backend:?}: {r:?}");
    // Then one order names both numbers: the newer record is merged into the older one.
    store("AB-1", &[OLD, NEW]).await;
    assert_eq!(owner("B-1").await, kept, "{backend:?}: merged");
    // A message to the kept record, and the one queued to the merged record, are both capped.
    outbox::enqueue(
        db,
        &[message(kept, OLD, "周三清仓", MORNING + 4 * HOUR)],
        LAUNCH,
    )
    .await
    .expect("enqueue");
    let r = send_at(MORNING + 5 * HOUR).await;
    assert_eq!((r.sent, r.suppressed), (0, 2), "{backend:?}: {r:?}");
    let (capped,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM outbox WHERE tenant_id = $1 AND status = 'suppressed' AND reason = 'capped'")
                .bind(tenant),
        )
        .await
        .expect("capped");
    assert_eq!(capped, 2, "{backend:?}");
}
on_each_backend!(the_weekly_cap_counts_a_person_across_merged_records);
