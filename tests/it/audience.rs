//! The audience index against the reference: random rules over random customers must select
//! exactly the customers the same rule selects as SQL on the store, on both backends.

use crate::common;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use siyu::know::CustomerId;
use siyu::platform::TenantId;

use siyu::know::audience::{build_index, sql as rule_sql};
use siyu::know::profile;
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES, DAY_MS};
use siyu::know::rule::{
    AttrTest, BoughtTest, ChannelOrdersTest, EventTest, OrdersTest, Range, RfmTest, Rule, TagTest,
};
use siyu::platform::access::create_tenant;
use siyu::platform::clock::now_ms;
use siyu::platform::db::{Db, sql};

use common::{Backend, TestDb};

const CHANNELS: [&str; 3] = ["tmall", "jd", "pos"];
const STATUSES: [&str; 4] = ["paid", "completed", "refunded", "pending"];
const CATEGORIES: [&str; 3] = ["美妆", "服饰", "食品"];
const SKUS: [&str; 4] = ["S1", "S2", "S3", "S4"];
const CITIES: [&str; 3] = ["上海", "北京", "杭州"];
const KINDS: [&str; 3] = ["phone", "external_userid", "member_no"];
const EVENTS: [&str; 2] = ["view", "cart"];
const TIERS: [&str; 3] = ["银卡", "金卡", "黑金"];

/// A random tenant: customers (some merged away), orders with lines, tags, attributes,
/// identities and events spread over the last 500 days.
async fn seed(db: &Db, tenant: TenantId, seed: u64, n: i64, now: i64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = tenant.get() * 100_000;
    let mut tags = Vec::new();
    for t in 0..5 {
        let (id,): (i64,) = db
            .fetch_one(
                &sql("INSERT INTO tags (tenant_id, group_name, name, created_at) VALUES ($1, 'g', $2, 0) RETURNING id")
                    .bind(tenant)
                    .bind(format!("t{t}")),
            )
            .await
            .expect("tag");
        tags.push(id);
    }
    let mut order_id = base;
    let mut event_id = base;
    for i in 0..n {
        let id = base + i;
        let merged = i > 0 && rng.random_bool(0.05);
        db.execute(
            &sql("INSERT INTO customers (id, tenant_id, created_at, merged_into) VALUES ($1, $2, 0, $3)")
                .bind(id)
                .bind(tenant)
                .bind(if merged { Some(base) } else { None }),
        )
        .await
        .expect("customer");
        for _ in 0..rng.random_range(0..4) {
            order_id += 1;
            let status = STATUSES[rng.random_range(0..STATUSES.len())];
            let amount = rng.random_range(1..100_000i64);
            db.execute(
                &sql("INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, ordered_at, amount, refund_amount, source, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'test', 0)")
                    .bind(order_id)
                    .bind(tenant)
                    .bind(CHANNELS[rng.random_range(0..CHANNELS.len())])
                    .bind(format!("o{order_id}"))
                    .bind(id)
                    .bind(status)
                    .bind(now - rng.random_range(0..500 * DAY_MS))
                    .bind(amount)
                    .bind(if rng.random_bool(0.1) { amount / 2 } else { 0 }),
            )
            .await
            .expect("order");
            for line in 0..rng.random_range(1..3) {
                db.execute(
                    &sql("INSERT INTO order_lines (tenant_id, order_id, line_no, sku, category, quantity, price) VALUES ($1, $2, $3, $4, $5, 1, 100)")
                        .bind(tenant)
                        .bind(order_id)
                        .bind(line)
                        .bind(SKUS[rng.random_range(0..SKUS.len())])
                        .bind(if rng.random_bool(0.8) { Some(CATEGORIES[rng.random_range(0..CATEGORIES.len())]) } else { None }),
                )
                .await
                .expect("line");
            }
        }
        for t in &tags {
            if rng.random_bool(0.3) {
                db.execute(
                    &sql("INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) VALUES ($1, $2, $3, 'test', 0)")
                        .bind(tenant)
                        .bind(id)
                        .bind(*t),
                )
                .await
                .expect("tag");
            }
        }
        if rng.random_bool(0.7) {
            set_attr(
                db,
                tenant,
                id,
                "city",
                CITIES[rng.random_range(0..CITIES.len())],
            )
            .await;
        }
        if rng.random_bool(0.6) {
            set_attr(db, tenant, id, "age", &rng.random_range(18..60).to_string()).await;
        }
        if rng.random_bool(0.5) {
            db.execute(
                &sql("INSERT INTO members (tenant_id, customer_id, member_no, joined_via, joined_at, tier) VALUES ($1, $2, $3, 'phone', 0, $4)")
                    .bind(tenant)
                    .bind(id)
                    .bind(format!("M{id}"))
                    .bind(if rng.random_bool(0.8) { Some(TIERS[rng.random_range(0..TIERS.len())]) } else { None }),
            )
            .await
            .expect("member");
        }
        for k in KINDS {
            if rng.random_bool(0.4) {
                db.execute(
                    &sql("INSERT INTO identities (tenant_id, ikey, kind, customer_id, first_seen) VALUES ($1, $2, $3, $4, 0)")
                        .bind(tenant)
                        .bind(format!("{k}:{id}"))
                        .bind(k)
                        .bind(id),
                )
                .await
                .expect("identity");
            }
        }
        for _ in 0..rng.random_range(0..6) {
            event_id += 1;
            // Mostly recent, some at the edges of day windows, some too old for the index.
            let at = match rng.random_range(0..10) {
                0 => now - rng.random_range(0..800 * DAY_MS),
                1 => siyu::know::audience::event_window_start(rng.random_range(1..40), now),
                _ => now - rng.random_range(0..40 * DAY_MS),
            };
            db.execute(
                &sql("INSERT INTO events (id, tenant_id, event_key, customer_id, type, occurred_at, received_at, properties) VALUES ($1, $2, $3, $4, $5, $6, 0, '{}')")
                    .bind(event_id)
                    .bind(tenant)
                    .bind(format!("e{event_id}"))
                    .bind(id)
                    .bind(EVENTS[rng.random_range(0..EVENTS.len())])
                    .bind(at),
            )
            .await
            .expect("event");
        }
    }
    tags
}

async fn set_attr(db: &Db, tenant: TenantId, id: i64, name: &str, value: &str) {
    db.execute(
        &sql("INSERT INTO customer_attributes (tenant_id, customer_id, name, value, num, updated_at) VALUES ($1, $2, $3, $4, $5, 0)")
            .bind(tenant)
            .bind(id)
            .bind(name)
            .bind(value)
            .bind(value.parse::<i64>().ok()),
    )
    .await
    .expect("attr");
}

fn range(lo: i64, hi: i64) -> impl Strategy<Value = Range> {
    (proptest::option::of(lo..hi), proptest::option::of(lo..hi)).prop_map(move |(a, b)| {
        match (a, b) {
            (None, None) => Range {
                min: Some(lo),
                max: None,
            },
            (Some(a), Some(b)) => Range {
                min: Some(a.min(b)),
                max: Some(a.max(b)),
            },
            (a, b) => Range { min: a, max: b },
        }
    })
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items.clone(), 1..=items.len().min(3))
}

fn leaf(tags: Vec<i64>) -> impl Strategy<Value = Rule> {
    let t2 = tags.clone();
    let t3 = tags.clone();
    prop_oneof![
        (pick(tags.clone()), pick(t2), pick(t3), 0..3usize).prop_map(|(a, b, c, which)| {
            let mut t = TagTest::default();
            match which {
                0 => t.any = a,
                1 => {
                    t.all = b;
                    t.none = c;
                }
                _ => {
                    t.any = a;
                    t.none = c;
                }
            }
            Rule::Tags(t)
        }),
        (
            pick(CITIES.iter().map(|s| s.to_string()).collect()),
            0..3usize,
            range(15, 65)
        )
            .prop_map(|(cities, which, r)| Rule::Attr(match which {
                0 => AttrTest {
                    name: "city".into(),
                    eq: None,
                    in_: Some(cities.into_iter().map(serde_json::Value::from).collect()),
                    range: None,
                    exists: None,
                },
                1 => AttrTest {
                    name: "age".into(),
                    eq: None,
                    in_: None,
                    range: Some(r),
                    exists: None,
                },
                _ => AttrTest {
                    name: "city".into(),
                    eq: None,
                    in_: None,
                    range: None,
                    exists: Some(r.min.unwrap_or(0) % 2 == 0),
                },
            })),
        (
            pick(ALL_CLASSES.to_vec()),
            proptest::option::of(range(1, 6)),
            proptest::option::of(range(1, 6))
        )
            .prop_map(|(class, r, m)| Rule::Rfm(RfmTest {
                class: if r.is_some() && m.is_some() {
                    Vec::new()
                } else {
                    class
                },
                r,
                f: None,
                m
            })),
        pick(ALL_STAGES.to_vec()).prop_map(Rule::Stage),
        pick(CHANNELS.iter().map(|s| s.to_string()).collect()).prop_map(Rule::Channel),
        (
            proptest::option::of(range(0, 5)),
            proptest::option::of(range(0, 150_000)),
            proptest::option::of(range(0, 100_000)),
            proptest::option::of(range(0, 500))
        )
            .prop_map(|(count, spend, aov, last)| {
                let mut o = OrdersTest {
                    count,
                    spend,
                    aov,
                    last_order_days: last,
                };
                if o == OrdersTest::default() {
                    o.count = Some(Range {
                        min: Some(1),
                        max: None,
                    });
                }
                Rule::Orders(o)
            }),
        (
            pick(CATEGORIES.iter().map(|s| s.to_string()).collect()),
            pick(SKUS.iter().map(|s| s.to_string()).collect()),
            any::<bool>()
        )
            .prop_map(|(c, s, by_cat)| Rule::Bought(if by_cat {
                BoughtTest {
                    category: c,
                    sku: Vec::new(),
                }
            } else {
                BoughtTest {
                    category: Vec::new(),
                    sku: s,
                }
            })),
        (0..EVENTS.len(), 1..45u32, 1..4u32, any::<bool>()).prop_map(
            |(k, days, min_times, did)| Rule::Event(EventTest {
                kind: EVENTS[k].into(),
                days,
                min_times,
                did,
            })
        ),
        pick(KINDS.iter().map(|s| s.to_string()).collect()).prop_map(Rule::Identity),
        pick(TIERS.iter().map(|s| s.to_string()).collect()).prop_map(Rule::Tier),
        (
            0..CHANNELS.len(),
            proptest::option::of(range(0, 3)),
            proptest::option::of(range(0, 120_000)),
            proptest::option::of(range(0, 500))
        )
            .prop_map(|(ch, count, spend, last)| {
                let mut o = ChannelOrdersTest {
                    channel: CHANNELS[ch].into(),
                    count,
                    spend,
                    last_order_days: last,
                };
                if o.count.is_none() && o.spend.is_none() && o.last_order_days.is_none() {
                    o.count = Some(Range {
                        min: Some(2),
                        max: None,
                    });
                }
                Rule::ChannelOrders(o)
            }),
    ]
}

fn rule(tags: Vec<i64>) -> impl Strategy<Value = Rule> {
    leaf(tags).prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Rule::And),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Rule::Or),
            inner.prop_map(|r| Rule::Not(Box::new(r))),
        ]
    })
}

async fn index_agrees_with_sql_on_random_rules(backend: Backend) {
    let t = TestDb::new(backend).await;
    let now = now_ms();
    for data_seed in 0..2u64 {
        let tenant = create_tenant(&t.db, &format!("brand{data_seed}"))
            .await
            .expect("tenant")
            .id;
        let tags = seed(&t.db, tenant, data_seed, 120, now).await;
        profile::recompute_all(&t.db, tenant, now)
            .await
            .expect("recompute");
        let ix = build_index(&t.db, tenant, now, |_, _| {})
            .await
            .expect("build");
        let q = ix.query(now);
        let strategy = rule(tags);
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
        );
        let mut nonempty = 0;
        for case in 0..150 {
            let r = strategy.new_tree(&mut runner).expect("rule").current();
            let expect = rule_sql::members(&t.db, tenant, &r, now)
                .await
                .unwrap_or_else(|e| panic!("{backend:?} SQL for {r:?}: {e}"));
            let got: Vec<i64> = q.members(&r).iter().map(i64::from).collect();
            assert_eq!(
                got,
                expect,
                "{backend:?} data {data_seed} case {case}: rule {}",
                r.to_json()
            );
            assert_eq!(q.count(&r), expect.len() as u64, "count of {}", r.to_json());
            if !expect.is_empty() {
                nonempty += 1;
            }
        }
        // The generator must produce rules that select someone, or the test says little.
        assert!(nonempty > 50, "only {nonempty} rules matched anyone");
        // Negations over "no such order" that random draws reach seldom: SQL's NULL must read
        // as false, as the index reads it.
        for json in [
            serde_json::json!({"not": {"channel_orders": {"channel": "jd", "last_order_days": {"max": 60}}}}),
            serde_json::json!({"not": {"channel_orders": {"channel": "tmall", "count": {"min": 1}, "last_order_days": {"min": 10, "max": 400}}}}),
            serde_json::json!({"not": {"orders": {"last_order_days": {"max": 60}}}}),
            serde_json::json!({"and": [{"tags": {"any": [1]}}, {"channel_orders": {"channel": "pos", "spend": {"min": 1}}}]}),
        ] {
            let r = Rule::from_json(&json).expect("rule");
            let expect = rule_sql::members(&t.db, tenant, &r, now)
                .await
                .expect("SQL");
            let got: Vec<i64> = q.members(&r).iter().map(i64::from).collect();
            assert_eq!(got, expect, "{backend:?} data {data_seed}: {json}");
            assert_eq!(q.count(&r), expect.len() as u64, "count of {json}");
        }
    }
}
on_each_backend!(index_agrees_with_sql_on_random_rules);

/// A bulk write from another process (`siyu import`) asks for a rebuild; a server's watch
/// picks it up.
async fn a_requested_rebuild_reaches_a_running_index(backend: Backend) {
    use siyu::know::audience::{Audiences, rebuild_versions, request_rebuild};
    let t = TestDb::new(backend).await;
    let tenant = create_tenant(&t.db, "brand").await.expect("tenant").id;
    let audiences = Audiences::new(t.db.clone());
    let everyone = Rule::And(Vec::new());
    assert_eq!(audiences.count(tenant, &everyone).await.expect("count"), 0);
    let seen = rebuild_versions(&t.db).await.expect("versions");
    audiences.spawn_rebuild_watch(std::time::Duration::from_millis(50), seen);
    // Written behind the index's back, as another process would.
    t.db.execute(
        &sql("INSERT INTO customers (id, tenant_id, created_at) VALUES (77, $1, 0)").bind(tenant),
    )
    .await
    .expect("customer");
    assert_eq!(audiences.count(tenant, &everyone).await.expect("count"), 0);
    request_rebuild(&t.db, tenant).await.expect("request");
    let mut n = 0;
    for _ in 0..100 {
        n = audiences.count(tenant, &everyone).await.expect("count");
        if n == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(n, 1, "{backend:?}: the watch rebuilt the index");
}
on_each_backend!(a_requested_rebuild_reaches_a_running_index);

/// Changes made while a rebuild reads the store are not lost when the new index replaces the
/// old one.
async fn changes_during_a_rebuild_survive_it(backend: Backend) {
    use siyu::know::audience::{Audiences, Change};
    let t = TestDb::new(backend).await;
    let tenant = create_tenant(&t.db, "brand").await.expect("tenant").id;
    let (tag,): (i64,) = t
        .db
        .fetch_one(
            &sql("INSERT INTO tags (tenant_id, group_name, name, created_at) VALUES ($1, 'g', 't', 0) RETURNING id")
                .bind(tenant),
        )
        .await
        .expect("tag");
    t.db.execute(
        &sql("INSERT INTO customers (id, tenant_id, created_at) VALUES (5, $1, 0)").bind(tenant),
    )
    .await
    .expect("customer");
    let audiences = Audiences::new(t.db.clone());
    let rule = Rule::Tags(TagTest {
        any: vec![tag],
        ..TagTest::default()
    });
    assert_eq!(audiences.count(tenant, &rule).await.expect("count"), 0);
    // A customer is tagged after the rebuild read the store and before it swapped in.
    audiences
        .rebuild_then(tenant, async {
            t.db.execute(
                &sql("INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) VALUES ($1, 5, $2, 'test', 0)")
                    .bind(tenant)
                    .bind(tag),
            )
            .await
            .expect("tagged");
            audiences
                .changed(tenant, &[CustomerId::new(5)], Change::Customers { orders: false })
                .await
                .expect("changed");
            // The old index took the change at once.
            assert_eq!(audiences.count(tenant, &rule).await.expect("count"), 1);
        })
        .await
        .expect("rebuild");
    assert_eq!(
        audiences.count(tenant, &rule).await.expect("count"),
        1,
        "{backend:?}: the change made during the rebuild is in the new index"
    );
}
on_each_backend!(changes_during_a_rebuild_survive_it);
