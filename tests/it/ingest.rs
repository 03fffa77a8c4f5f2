//! The group-commit writer answers every request, even when the database fails under it, and
//! keeps serving afterwards.

use crate::common;
use siyu::know::CustomerId;
use siyu::know::events::EventInput;
use siyu::know::ingest::{EventWriter, IngestError};
use siyu::platform::TenantId;

use common::{Backend, TestDb, cipher};

fn events(prefix: &str, n: usize) -> Vec<siyu::know::events::Event> {
    let now = siyu::platform::clock::now_ms();
    (0..n)
        .map(|i| {
            let input: EventInput = serde_json::from_value(serde_json::json!({
                "id": format!("{prefix}-{i}"), "type": "visit", "timestamp": now,
                "identities": [{"kind": "phone", "value": "13800138000"}]
            }))
            .expect("event json");
            input.check(now).expect("valid event")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_answered_and_the_writer_goes_on() {
    let tdb = TestDb::new(Backend::Sqlite).await;
    let writer = EventWriter::start(tdb.db.clone(), cipher(), None);
    let ok = writer
        .write(TenantId::new(1), events("a", 10))
        .await
        .expect("stored");
    assert_eq!((ok.stored, ok.duplicates), (10, 0));

    // The database goes away under the writer: each waiting request gets an error, none hangs.
    tdb.db.close().await;
    let mut tasks = Vec::new();
    for k in 0..5 {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            w.write(TenantId::new(1 + k % 2), events(&format!("b{k}"), 5))
                .await
        }));
    }
    for t in tasks {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), t)
            .await
            .expect("answered in time")
            .expect("join");
        assert!(matches!(r, Err(IngestError::Store(_))), "{r:?}");
    }
    // The writer itself is still there to answer.
    let r = writer.write(TenantId::new(1), events("c", 1)).await;
    assert!(matches!(r, Err(IngestError::Store(_))), "{r:?}");
}

/// Requests of events: phones among a few people (some new, some known), a member number that
/// joins two of them (a merge), repeated ids within and across requests, times over 40 days.
fn mixed_requests(now: i64) -> Vec<Vec<siyu::know::events::Event>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..12)
        .map(|r| {
            (0..25)
                .map(|i| {
                    // Every fifth id repeats one seen before.
                    let n = if i % 5 == 4 {
                        rng.random_range(0..=r * 25 + i)
                    } else {
                        r * 25 + i
                    };
                    // The first request meets people 0 and 1; later, member number M1 comes
                    // first with person 1, then with person 0: the two are one.
                    let person = match (r, i) {
                        (0, 0) | (8, 0) => 0,
                        (0, 1) | (6, 0) => 1,
                        _ => rng.random_range(0..20),
                    };
                    let phone = format!("1380013{person:04}");
                    let mut ids = vec![serde_json::json!({"kind": "phone", "value": phone})];
                    if (r, i) == (6, 0) || (r, i) == (8, 0) {
                        ids.push(serde_json::json!({"kind": "member_no", "value": "M1"}));
                    }
                    let input: EventInput = serde_json::from_value(serde_json::json!({
                        "id": format!("e{n}"),
                        "type": if rng.random_bool(0.5) { "view" } else { "cart" },
                        "timestamp": now - rng.random_range(0..40 * 86_400_000i64),
                        "identities": ids,
                    }))
                    .expect("event json");
                    input.check(now).expect("valid event")
                })
                .collect()
        })
        .collect()
}

on_each_backend!(the_index_counts_ingested_events_as_the_store_holds_them);
/// The writer counts each stored event into the audience index instead of reloading its
/// customer: after requests with new and known people, a merge and duplicates, every event
/// rule selects exactly whom the same rule selects as SQL on the store.
async fn the_index_counts_ingested_events_as_the_store_holds_them(backend: common::Backend) {
    use siyu::know::audience::{Audiences, sql as rule_sql};
    use siyu::know::rule::{EventTest, Rule};
    let tdb = TestDb::new(backend).await;
    let tenant = siyu::platform::access::create_tenant(&tdb.db, "brand")
        .await
        .expect("tenant")
        .id;
    let audiences = Audiences::new(tdb.db.clone());
    let writer = EventWriter::start(tdb.db.clone(), cipher(), Some(audiences.clone()));
    let now = siyu::platform::clock::now_ms();
    let requests = mixed_requests(now);
    // The first request alone (new customers, index built), the rest at once (groups).
    let mut rest = requests.into_iter();
    let first = rest.next().expect("a request");
    writer.write(tenant, first).await.expect("stored");
    let tasks: Vec<_> = rest
        .map(|r| {
            let w = writer.clone();
            tokio::spawn(async move { w.write(tenant, r).await })
        })
        .collect();
    let mut duplicates = 0;
    for t in tasks {
        duplicates += t.await.expect("join").expect("stored").duplicates;
    }
    assert!(duplicates > 0, "the requests repeat ids");
    let (merged,): (i64,) = tdb
        .db
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NOT NULL",
            )
            .bind(tenant),
        )
        .await
        .expect("merges");
    assert_eq!(
        merged, 1,
        "{backend:?}: the member number joined two people"
    );
    let mut selective = 0;
    for kind in ["view", "cart"] {
        for days in [1, 7, 30, 90] {
            for min_times in [1, 2, 4] {
                let rule = Rule::Event(EventTest {
                    kind: kind.into(),
                    days,
                    min_times,
                    did: true,
                });
                let expect =
                    rule_sql::members(&tdb.db, tenant, &rule, siyu::platform::clock::now_ms())
                        .await
                        .expect("sql");
                let got: Vec<i64> = audiences
                    .members(tenant, &rule)
                    .await
                    .expect("index")
                    .iter()
                    .map(i64::from)
                    .collect();
                assert_eq!(
                    got, expect,
                    "{backend:?}: {kind} in {days} days ≥ {min_times}"
                );
                if !expect.is_empty() && expect.len() < 21 {
                    selective += 1;
                }
            }
        }
    }
    assert!(selective > 5, "the rules tell people apart ({selective})");
}

on_each_backend!(events_a_reload_has_read_are_not_counted_twice);
/// A read of the store after a write began may have seen its events: a customer reloaded, or
/// an index built, since then has them already, and counting them again would be wrong. Steps
/// that nothing read meanwhile check that events are counted at all.
async fn events_a_reload_has_read_are_not_counted_twice(backend: common::Backend) {
    use siyu::know::audience::{Audiences, EventsWritten, StoredEvent};
    use siyu::know::rule::{EventTest, Rule};
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let tenant = siyu::platform::access::create_tenant(db, "brand")
        .await
        .expect("tenant")
        .id;
    db.execute(
        &siyu::platform::db::sql(
            "INSERT INTO customers (id, tenant_id, created_at) VALUES (5, $1, 0), (6, $1, 0)",
        )
        .bind(tenant),
    )
    .await
    .expect("customers");
    let audiences = Audiences::new(db.clone());
    let views = |min_times| {
        Rule::Event(EventTest {
            kind: "view".into(),
            days: 7,
            min_times,
            did: true,
        })
    };
    assert_eq!(audiences.count(tenant, &views(1)).await.expect("count"), 0);
    let now = siyu::platform::clock::now_ms();
    let key = std::sync::atomic::AtomicU64::new(0);
    // Stores a view of each customer, as a writer's group would, and says what it stored.
    let store = |customers: &'static [i64]| {
        let key = &key;
        async move {
            for c in customers {
                let k = key.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                db.execute(
                    &siyu::platform::db::sql(
                        "INSERT INTO events (id, tenant_id, event_key, customer_id, type, occurred_at, received_at, properties) \
                         VALUES ($1, $2, $3, $4, 'view', $5, $5, '{}')",
                    )
                    .bind(k as i64 + 1)
                    .bind(tenant)
                    .bind(format!("e{k}"))
                    .bind(*c)
                    .bind(now),
                )
                .await
                .expect("event");
            }
            EventsWritten {
                events: customers
                    .iter()
                    .map(|c| StoredEvent {
                        customer: CustomerId::new(*c),
                        kind: "view".into(),
                        at: now,
                    })
                    .collect(),
                ..EventsWritten::default()
            }
        }
    };
    let members = |min_times| {
        let audiences = &audiences;
        async move {
            let m = audiences
                .members(tenant, &views(min_times))
                .await
                .expect("members");
            m.iter().map(i64::from).collect::<Vec<_>>()
        }
    };

    // Nothing read the store meanwhile: both views are counted on top.
    let write = audiences.begin_write();
    let stored = store(&[5, 6]).await;
    audiences
        .events_written(tenant, &stored, write)
        .await
        .expect("counted");
    assert_eq!(members(1).await, vec![5, 6], "{backend:?}");
    assert_eq!(members(2).await, Vec::<i64>::new(), "{backend:?}");

    // Customer 5 is reloaded (its tags changed) after the commit and before the count.
    let write = audiences.begin_write();
    let stored = store(&[5, 6]).await;
    audiences
        .tags_changed(tenant, &[CustomerId::new(5)])
        .await
        .expect("reloaded");
    audiences
        .events_written(tenant, &stored, write)
        .await
        .expect("counted");
    assert_eq!(members(2).await, vec![5, 6], "{backend:?}: two views each");
    assert_eq!(
        members(3).await,
        Vec::<i64>::new(),
        "{backend:?}: not three"
    );

    // The reload is older than the next write: counted on top again.
    let write = audiences.begin_write();
    let stored = store(&[5]).await;
    audiences
        .events_written(tenant, &stored, write)
        .await
        .expect("counted");
    assert_eq!(members(3).await, vec![5], "{backend:?}");

    // The whole index is rebuilt after the commit and before the count.
    let write = audiences.begin_write();
    let stored = store(&[5, 6]).await;
    audiences.rebuild(tenant).await.expect("rebuild");
    audiences
        .events_written(tenant, &stored, write)
        .await
        .expect("counted");
    assert_eq!(members(3).await, vec![5, 6], "{backend:?}");
    assert_eq!(members(4).await, vec![5], "{backend:?}");
    assert_eq!(members(5).await, Vec::<i64>::new(), "{backend:?}");

    // A group is written and counted while a rebuild reads the store: the old index takes
    // it, and the new one has it once.
    audiences
        .rebuild_then(tenant, async {
            let write = audiences.begin_write();
            let stored = store(&[5]).await;
            audiences
                .events_written(tenant, &stored, write)
                .await
                .expect("counted");
            assert_eq!(members(5).await, vec![5], "{backend:?}: the old index");
        })
        .await
        .expect("rebuild");
    assert_eq!(members(5).await, vec![5], "{backend:?}: five views");
    assert_eq!(members(6).await, Vec::<i64>::new(), "{backend:?}: not six");
}
