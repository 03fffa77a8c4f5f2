//! OneID against a plain reference: random identity graphs, fed in random chunks, must end as
//! exactly the connected components, on every backend.

use crate::common;
use proptest::prelude::*;
use siyu::know::identity::{IdentityKind, KeyedIdentity};
use siyu::know::oneid::{IdentityRecord, resolve};
use siyu::platform::TenantId;
use siyu::platform::db::{Db, sql};

use common::{Backend, TestDb, partition};

fn reference(records: &[Vec<usize>]) -> Vec<Vec<String>> {
    common::connected_components(records, key)
}

fn key(n: usize) -> String {
    format!("tmall:k{n}")
}

async fn run_case(db: &Db, tenant: TenantId, records: &[Vec<usize>], chunks: &[usize]) {
    let recs: Vec<IdentityRecord> = records
        .iter()
        .map(|r| IdentityRecord {
            identities: r
                .iter()
                .map(|&n| KeyedIdentity {
                    ikey: key(n),
                    kind: IdentityKind::Tmall,
                    value_enc: None,
                })
                .collect(),
            name: None,
        })
        .collect();
    let mut at = 0;
    let mut ci = 0;
    while at < recs.len() {
        let size = chunks[ci % chunks.len()].max(1);
        let end = (at + size).min(recs.len());
        let mut tx = db.begin().await.expect("begin");
        tx.lock_tenant(tenant).await.expect("lock");
        let (owners, _) = resolve(&mut tx, tenant, &recs[at..end], 1_000 + at as i64)
            .await
            .expect("resolve");
        tx.commit().await.expect("commit");
        // Every record with identities got a customer that now holds its first key.
        for (r, o) in recs[at..end].iter().zip(owners) {
            assert_eq!(o.is_some(), !r.identities.is_empty());
        }
        at = end;
        ci += 1;
    }
}

async fn check_invariants(db: &Db, tenant: TenantId, want_components: usize) {
    let (live,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM customers c WHERE c.tenant_id = $1 AND c.merged_into IS NULL \
                  AND EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id)")
                .bind(tenant),
        )
        .await
        .expect("count");
    assert_eq!(
        live as usize, want_components,
        "one live customer per component"
    );
    let (empty_live,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM customers c WHERE c.tenant_id = $1 AND c.merged_into IS NULL \
                  AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = c.tenant_id AND i.customer_id = c.id)")
                .bind(tenant),
        )
        .await
        .expect("count");
    assert_eq!(
        empty_live, 0,
        "a live customer without identities was left behind"
    );
    let (chained,): (i64,) = db
        .fetch_one(
            &sql(
                "SELECT COUNT(*) FROM customers a JOIN customers b ON a.merged_into = b.id \
                  WHERE a.tenant_id = $1 AND b.merged_into IS NOT NULL",
            )
            .bind(tenant),
        )
        .await
        .expect("count");
    assert_eq!(chained, 0, "merged_into must point at a surviving customer");
    let (merged,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NOT NULL")
                .bind(tenant),
        )
        .await
        .expect("count");
    let (recorded,): (i64,) = db
        .fetch_one(&sql("SELECT COUNT(*) FROM customer_merges WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("count");
    assert_eq!(merged, recorded, "every merge is recorded once");
    let (kept_older,): (i64,) = db
        .fetch_one(
            &sql(
                "SELECT COUNT(*) FROM customer_merges WHERE tenant_id = $1 AND kept_id > merged_id",
            )
            .bind(tenant),
        )
        .await
        .expect("count");
    assert_eq!(kept_older, 0, "the older (smaller) id is kept");
}

fn graphs() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<usize>)> {
    (2usize..40).prop_flat_map(|keys| {
        (
            prop::collection::vec(prop::collection::vec(0..keys, 1..4), 1..40),
            prop::collection::vec(1usize..8, 1..6),
        )
    })
}

mod oneid_matches_connected_components {
    use crate::common::Backend;

    #[test]
    fn sqlite() {
        super::oneid_matches_connected_components(Backend::Sqlite)
    }

    #[test]
    fn postgres() {
        if let Some(b) = crate::common::postgres() {
            super::oneid_matches_connected_components(b)
        }
    }
}

/// Runs its own runtime: proptest's runner calls each case synchronously.
fn oneid_matches_connected_components(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new(backend));
    let cases = if backend == Backend::Postgres { 24 } else { 64 };
    let tenant = std::cell::Cell::new(0i64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    runner
        .run(&graphs(), |(records, chunks)| {
            tenant.set(tenant.get() + 1);
            let tenant = TenantId::new(tenant.get());
            rt.block_on(async {
                run_case(&tdb.db, tenant, &records, &chunks).await;
                let want = reference(&records);
                let got = partition(&tdb.db, tenant).await;
                assert_eq!(
                    got, want,
                    "{backend:?}: records {records:?} in chunks {chunks:?}"
                );
                check_invariants(&tdb.db, tenant, want.len()).await;
            });
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
}

on_each_backend!(order_of_records_does_not_change_customers);
async fn order_of_records_does_not_change_customers(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    // A chain a–b, c–d, then b–c joins two customers; reversed, no merge is needed.
    let records = vec![vec![0, 1], vec![2, 3], vec![1, 2], vec![4]];
    let mut reversed = records.clone();
    reversed.reverse();
    run_case(&tdb.db, TenantId::new(1), &records, &[1]).await;
    run_case(&tdb.db, TenantId::new(2), &reversed, &[1]).await;
    run_case(&tdb.db, TenantId::new(3), &records, &[10]).await;
    let a = partition(&tdb.db, TenantId::new(1)).await;
    assert_eq!(a, partition(&tdb.db, TenantId::new(2)).await);
    assert_eq!(a, partition(&tdb.db, TenantId::new(3)).await);
    assert_eq!(a.len(), 2);
    // Resolving the same records again changes nothing.
    run_case(&tdb.db, TenantId::new(1), &records, &[2]).await;
    assert_eq!(a, partition(&tdb.db, TenantId::new(1)).await);
    check_invariants(&tdb.db, TenantId::new(1), 2).await;
    let (merges,): (i64,) = tdb
        .db
        .fetch_one(&sql(
            "SELECT COUNT(*) FROM customer_merges WHERE tenant_id = 1",
        ))
        .await
        .expect("merges");
    assert_eq!(
        merges, 1,
        "{backend:?}: the bridging record merged two customers once"
    );
}

async fn a_merge_moves_tags_and_keeps_one_of_each(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    run_case(&tdb.db, TenantId::new(9), &[vec![0, 1], vec![2, 3]], &[1]).await;
    let owners: Vec<(i64,)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT DISTINCT customer_id FROM identities WHERE tenant_id = 9 ORDER BY customer_id",
        ))
        .await
        .expect("owners");
    let (a, b) = (owners[0].0, owners[1].0);
    // Both carry tag 1; only the newer one carries tag 2.
    for (customer, tag) in [(a, 1i64), (b, 1), (b, 2)] {
        tdb.db
            .execute(
                &sql("INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) VALUES (9, $1, $2, 'manual', 0)")
                    .bind(customer)
                    .bind(tag),
            )
            .await
            .expect("tag");
    }
    // Both have a city; only the newer one has an age.
    for (customer, name, value) in [(a, "city", "上海"), (b, "city", "北京"), (b, "age", "31")]
    {
        tdb.db
            .execute(
                &sql("INSERT INTO customer_attributes (tenant_id, customer_id, name, value, updated_at) VALUES (9, $1, $2, $3, 0)")
                    .bind(customer)
                    .bind(name)
                    .bind(value),
            )
            .await
            .expect("attribute");
    }
    run_case(&tdb.db, TenantId::new(9), &[vec![1, 2]], &[1]).await;
    let attrs: Vec<(i64, String, String)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT customer_id, name, value FROM customer_attributes WHERE tenant_id = 9 ORDER BY name",
        ))
        .await
        .expect("attributes");
    assert_eq!(
        attrs,
        vec![
            (a, "age".into(), "31".into()),
            (a, "city".into(), "上海".into())
        ],
        "{backend:?}: attributes move to the kept customer, whose own values win"
    );
    let tags: Vec<(i64, i64)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT customer_id, tag_id FROM customer_tags WHERE tenant_id = 9 ORDER BY tag_id",
        ))
        .await
        .expect("tags");
    assert_eq!(
        tags,
        vec![(a, 1), (a, 2)],
        "{backend:?}: the older customer keeps one of each tag"
    );
}
on_each_backend!(a_merge_moves_tags_and_keeps_one_of_each);

/// A merge leaves one membership per person: the kept customer had none, so it takes the
/// earliest-joined of the two merged into it (by `customer_rows`, not by OneID naming the
/// table), and the other is gone.
async fn a_merge_keeps_the_earliest_membership_of_those_merged(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    run_case(
        &tdb.db,
        TenantId::new(7),
        &[vec![0], vec![1], vec![2]],
        &[3],
    )
    .await;
    let owners: Vec<(i64,)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT DISTINCT customer_id FROM identities WHERE tenant_id = 7 ORDER BY customer_id",
        ))
        .await
        .expect("owners");
    assert_eq!(owners.len(), 3, "{backend:?}: three people first");
    let (a, b, c) = (owners[0].0, owners[1].0, owners[2].0);
    for (customer, no, joined) in [(b, "M-B", 200i64), (c, "M-C", 100)] {
        tdb.db
            .execute(
                &sql("INSERT INTO members (tenant_id, customer_id, member_no, joined_via, joined_at) VALUES (7, $1, $2, 'phone', $3)")
                    .bind(customer)
                    .bind(no)
                    .bind(joined),
            )
            .await
            .expect("member");
    }
    // One record names all three: the oldest customer is kept.
    run_case(&tdb.db, TenantId::new(7), &[vec![0, 1, 2]], &[1]).await;
    let members: Vec<(i64, String)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT customer_id, member_no FROM members WHERE tenant_id = 7",
        ))
        .await
        .expect("members");
    assert_eq!(
        members,
        vec![(a, "M-C".to_owned())],
        "{backend:?}: one membership, the earliest joined, now the kept customer's"
    );

    // When the kept customer has a membership of its own, it stays, however late it joined,
    // and the merged ones' are dropped.
    run_case(&tdb.db, TenantId::new(8), &[vec![0], vec![1]], &[2]).await;
    let owners: Vec<(i64,)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT DISTINCT customer_id FROM identities WHERE tenant_id = 8 ORDER BY customer_id",
        ))
        .await
        .expect("owners");
    let (kept, merged) = (owners[0].0, owners[1].0);
    for (customer, no, joined) in [(kept, "M-KEPT", 900i64), (merged, "M-EARLY", 10)] {
        tdb.db
            .execute(
                &sql("INSERT INTO members (tenant_id, customer_id, member_no, joined_via, joined_at) VALUES (8, $1, $2, 'phone', $3)")
                    .bind(customer)
                    .bind(no)
                    .bind(joined),
            )
            .await
            .expect("member");
    }
    run_case(&tdb.db, TenantId::new(8), &[vec![0, 1]], &[1]).await;
    let members: Vec<(i64, String)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT customer_id, member_no FROM members WHERE tenant_id = 8",
        ))
        .await
        .expect("members");
    assert_eq!(
        members,
        vec![(kept, "M-KEPT".to_owned())],
        "{backend:?}: the kept customer's own membership stays"
    );
}
on_each_backend!(a_merge_keeps_the_earliest_membership_of_those_merged);

/// A merged record's WeCom contacts move to the customer that is kept, so guides and mass
/// messages still reach the person; contacts of records merged before the upgrade move with it.
async fn wecom_contacts_follow_the_person(backend: Backend) {
    use siyu::platform::migrate::migrate;
    let tdb = TestDb::migrated_to(backend, 23).await;
    let db = &tdb.db;
    run_case(
        db,
        TenantId::new(7),
        &[vec![0], vec![1], vec![2], vec![3]],
        &[4],
    )
    .await;
    let owners: Vec<(i64,)> = db
        .fetch_all(&sql(
            "SELECT DISTINCT customer_id FROM identities WHERE tenant_id = 7 ORDER BY customer_id",
        ))
        .await
        .expect("owners");
    let ids: Vec<i64> = owners.iter().map(|o| o.0).collect();
    assert_eq!(ids.len(), 4, "{backend:?}: four people first");
    let contact = |external: &'static str, customer: i64| {
        sql("INSERT INTO wecom_contacts (tenant_id, external_userid, userid, customer_id, added_at) VALUES (7, $1, 'guide-1', $2, 0)")
            .bind(external)
            .bind(customer)
    };
    let contacts = || async {
        let rows: Vec<(String, i64)> = db
            .fetch_all(&sql(
                "SELECT external_userid, customer_id FROM wecom_contacts WHERE tenant_id = 7 ORDER BY external_userid",
            ))
            .await
            .expect("contacts");
        rows
    };
    // Before the upgrade: the second record merges into the first, and its contact stays.
    db.execute(&contact("wm-before", ids[1]))
        .await
        .expect("contact");
    run_case(db, TenantId::new(7), &[vec![0, 1]], &[1]).await;
    assert_eq!(contacts().await, vec![("wm-before".to_owned(), ids[1])]);
    migrate(db, &common::cipher()).await.expect("upgrade");
    assert_eq!(
        contacts().await,
        vec![("wm-before".to_owned(), ids[0])],
        "{backend:?}: the upgrade moved the merged record's contact"
    );
    // After it: the fourth record's contact follows its merge into the third.
    db.execute(&contact("wm-after", ids[3]))
        .await
        .expect("contact");
    run_case(db, TenantId::new(7), &[vec![2, 3]], &[1]).await;
    assert_eq!(
        contacts().await,
        vec![
            ("wm-after".to_owned(), ids[2]),
            ("wm-before".to_owned(), ids[0])
        ],
        "{backend:?}"
    );
}
on_each_backend!(wecom_contacts_follow_the_person);

/// Every table with a `customer_id` column says what a merge does with its rows: OneID moves
/// its own (identities, orders, events, tags, attributes), and every other capability's table
/// is declared in `customer_rows` by its migration. A new table that says nothing fails here.
async fn every_table_of_customer_rows_says_what_a_merge_does_with_them(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let with_a_customer: Vec<(String,)> = match backend {
        Backend::Sqlite => tdb
            .db
            .fetch_all(&sql(
                "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name = 'customer_id' ORDER BY m.name",
            ))
            .await
            .expect("tables"),
        Backend::Postgres => tdb
            .db
            .fetch_all(&sql(
                "SELECT table_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = 'customer_id' ORDER BY 1",
            ))
            .await
            .expect("tables"),
    };
    let declared: Vec<(String, String, Option<String>)> = tdb
        .db
        .fetch_all(&sql(
            "SELECT table_name, keeps, ordered_by FROM customer_rows ORDER BY table_name",
        ))
        .await
        .expect("customer_rows");
    let own = [
        "customer_attributes",
        "customer_tags",
        "events",
        "identities",
        "orders",
    ];
    let unsaid: Vec<&str> = with_a_customer
        .iter()
        .map(|(t,)| t.as_str())
        .filter(|t| !own.contains(t) && !declared.iter().any(|(d, _, _)| d == t))
        .collect();
    assert!(
        unsaid.is_empty(),
        "{backend:?}: tables with customer rows that say nothing of merges: {unsaid:?}"
    );
    // And what is declared is there, scoped by tenant, with the integer column it is ordered
    // by (OneID reads it as one).
    for (table, keeps, ordered_by) in &declared {
        assert!(
            with_a_customer.iter().any(|(t,)| t == table),
            "{backend:?}: customer_rows names {table}, which has no customer_id"
        );
        let col = ordered_by.as_deref().unwrap_or("customer_id");
        let probe = format!("SELECT COALESCE(MAX({col}), 0) FROM {table} WHERE tenant_id = 0");
        let (_,): (i64,) = tdb
            .db
            .fetch_one(&sql(probe))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {table} ({keeps}) by {col}: {e}"));
    }
}
on_each_backend!(every_table_of_customer_rows_says_what_a_merge_does_with_them);
