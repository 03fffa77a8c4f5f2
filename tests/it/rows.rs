//! Bulk rows and key lookups (`platform::rows`): SQLite steps one statement per row on its own
//! handle, PostgreSQL sends multi-row statements; both must store and find the same rows, and
//! fail the same way.

use crate::common;
use siyu::platform::TenantId;
use siyu::platform::db::{Db, Reader, sql};
use siyu::platform::rows::{Arg, Keys};

use common::{Backend, TestDb};

/// More identities than one PostgreSQL statement carries (32,000 binds / 6 columns), with the
/// texts a binding could get wrong: empty, non-ASCII, quotes and placeholders inside, and NULL.
fn identity_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..12_000).map(|n| format!("tmall:买家{n:05}")).collect();
    keys.push(String::new());
    keys.push("email:o'brien?$1@example.com".into());
    keys
}

async fn store_identities(db: &Db, tenant: TenantId, keys: &[String]) -> u64 {
    let mut tx = db.begin().await.expect("begin");
    let rows: Vec<[Arg; 6]> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| {
            let value: Option<&str> = if n % 2 == 0 { Some("v1:secret") } else { None };
            [
                tenant.into(),
                k.as_str().into(),
                "tmall".into(),
                (n as i64 + 1).into(),
                value.into(),
                7i64.into(),
            ]
        })
        .collect();
    let written = tx
        .insert_rows(
            "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen)",
            "",
            &rows,
        )
        .await
        .expect("insert identities");
    tx.commit().await.expect("commit");
    written
}

async fn rows_are_stored_and_found_by_key_alike_on_every_backend(backend: Backend) {
    let t = TestDb::new(backend).await;
    let keys = identity_keys();
    assert_eq!(
        store_identities(&t.db, TenantId::new(1), &keys).await,
        keys.len() as u64,
        "{backend:?}"
    );
    // Another tenant's rows are not found.
    store_identities(&t.db, TenantId::new(2), &keys[..10]).await;

    let (count, nulls): (i64, i64) =
        t.db.fetch_one(
            &sql(
                "SELECT COUNT(*), COUNT(*) - COUNT(value_enc) FROM identities WHERE tenant_id = $1",
            )
            .bind(1i64),
        )
        .await
        .expect("count");
    assert_eq!((count, nulls), (keys.len() as i64, keys.len() as i64 / 2));
    let (stored,): (String,) =
        t.db.fetch_one(
            &sql("SELECT ikey FROM identities WHERE tenant_id = 1 AND customer_id = $1")
                .bind(keys.len() as i64),
        )
        .await
        .expect("the key with quotes");
    assert_eq!(stored, "email:o'brien?$1@example.com", "{backend:?}");

    // Lookups: present, missing, repeated, in any order.
    let wanted: Vec<&str> = vec![
        "tmall:买家00042",
        "tmall:nobody",
        "",
        "tmall:买家00042",
        "email:o'brien?$1@example.com",
        "tmall:买家11999",
    ];
    let mut tx = t.db.begin().await.expect("begin");
    let found = tx
        .find_ids(
            "SELECT customer_id, ikey FROM identities WHERE tenant_id = $1 AND ikey",
            &[Arg::from(1i64)],
            &wanted,
        )
        .await
        .expect("find");
    assert_eq!(
        found,
        vec![
            Some(43),
            None,
            Some(12_001),
            Some(43),
            Some(12_002),
            Some(12_000)
        ],
        "{backend:?}"
    );
    // Placeholders out of order bind by number, not by where they stand.
    assert_eq!(
        tx.find_ids(
            "SELECT customer_id, ikey FROM identities WHERE kind = $2 AND tenant_id = $1 AND ikey",
            &[Arg::from(1i64), Arg::from("tmall")],
            &["tmall:买家00042", "tmall:nobody"],
        )
        .await
        .expect("find with reordered placeholders"),
        vec![Some(43), None],
        "{backend:?}"
    );
    assert_eq!(
        tx.find_ids(
            "SELECT customer_id, ikey FROM identities WHERE tenant_id = $1 AND ikey",
            &[Arg::from(3i64)],
            &wanted,
        )
        .await
        .expect("find in a tenant without rows"),
        vec![None; wanted.len()]
    );
    assert!(
        tx.find_ids(
            "SELECT customer_id, ikey FROM identities WHERE tenant_id = $1 AND ikey",
            &[Arg::from(1i64)],
            &[]
        )
        .await
        .expect("no keys")
        .is_empty()
    );
}
on_each_backend!(rows_are_stored_and_found_by_key_alike_on_every_backend);

async fn the_tail_updates_rows_that_exist_and_counts_them(backend: Backend) {
    let t = TestDb::new(backend).await;
    let upsert = "ON CONFLICT (tenant_id, ikey) DO UPDATE SET customer_id = excluded.customer_id";
    let head = "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen)";
    let row = |key: &'static str, customer: i64| -> [Arg<'static>; 6] {
        [
            1i64.into(),
            key.into(),
            "tmall".into(),
            customer.into(),
            Arg::Text(None),
            1i64.into(),
        ]
    };
    let mut tx = t.db.begin().await.expect("begin");
    assert_eq!(
        tx.insert_rows(head, upsert, &[row("tmall:a", 1), row("tmall:b", 2)])
            .await
            .expect("first"),
        2
    );
    assert_eq!(
        tx.insert_rows(head, upsert, &[row("tmall:b", 5), row("tmall:c", 6)])
            .await
            .expect("second"),
        2,
        "{backend:?}: one updated, one inserted"
    );
    tx.commit().await.expect("commit");
    let rows: Vec<(String, i64)> =
        t.db.fetch_all(&sql(
            "SELECT ikey, customer_id FROM identities ORDER BY ikey",
        ))
        .await
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            ("tmall:a".to_owned(), 1),
            ("tmall:b".to_owned(), 5),
            ("tmall:c".to_owned(), 6)
        ],
        "{backend:?}"
    );
}
on_each_backend!(the_tail_updates_rows_that_exist_and_counts_them);

async fn a_row_that_breaks_a_constraint_fails_the_statement_and_keeps_nothing_of_the_transaction(
    backend: Backend,
) {
    let t = TestDb::new(backend).await;
    store_identities(&t.db, TenantId::new(1), &["tmall:kept".to_owned()]).await;
    let mut tx = t.db.begin().await.expect("begin");
    let row = |key: &'static str| -> [Arg<'static>; 6] {
        [
            1i64.into(),
            key.into(),
            "tmall".into(),
            9i64.into(),
            Arg::Text(None),
            1i64.into(),
        ]
    };
    let err = tx
        .insert_rows(
            "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen)",
            "",
            &[row("tmall:new"), row("tmall:kept")],
        )
        .await
        .expect_err("a second row for one key");
    let msg = err.to_string().to_lowercase();
    assert!(
        msg.contains("unique") || msg.contains("duplicate key"),
        "{backend:?}: the reason is named: {msg}"
    );
    if backend == common::Backend::Sqlite {
        assert!(
            msg.contains("insert into identities"),
            "the statement is named: {msg}"
        );
    }
    drop(tx);
    let keys: Vec<(String,)> =
        t.db.fetch_all(&sql("SELECT ikey FROM identities ORDER BY ikey"))
            .await
            .expect("rows");
    assert_eq!(keys, vec![("tmall:kept".to_owned(),)], "{backend:?}");
}
on_each_backend!(
    a_row_that_breaks_a_constraint_fails_the_statement_and_keeps_nothing_of_the_transaction
);

/// `probe` finds every row for every key, repeated keys and NULL columns included, the same in
/// a transaction (SQLite: a statement per key on its handle) as on the pool (`IN` lists).
async fn probes_find_every_row_of_every_key_in_a_transaction_and_on_the_pool(backend: Backend) {
    let t = TestDb::new(backend).await;
    let keys = identity_keys();
    store_identities(&t.db, TenantId::new(1), &keys).await;
    // A second identity for customer 43, so that one key finds two rows.
    store_identities(&t.db, TenantId::new(1), &["tmall:second".to_string()]).await;
    t.db.execute(&sql(
        "UPDATE identities SET customer_id = 43 WHERE ikey = 'tmall:second'",
    ))
    .await
    .expect("second identity");
    let texts: Vec<String> = [
        "tmall:买家00042",
        "tmall:nobody",
        "tmall:买家00043",
        "tmall:买家00042",
    ]
    .map(String::from)
    .to_vec();
    let text_keys: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ints: Vec<i64> = vec![43, 99_999, 44];
    let mut tx = t.db.begin().await.expect("begin");
    for reader in [Reader::Tx(&mut tx), Reader::Pool(&t.db)] {
        let mut reader = reader;
        let mut by_text = reader
            .probe(
                "SELECT value_enc, ikey FROM identities WHERE tenant_id = $1 AND ikey",
                &[Arg::from(1i64)],
                Keys::Text(&text_keys),
            )
            .await
            .expect("probe by text");
        by_text.sort();
        // 00042 is customer 43 (even row: a value), 00043 customer 44 (odd: NULL).
        assert_eq!(
            by_text,
            vec![
                (0, Some("v1:secret".to_string())),
                (2, None),
                (3, Some("v1:secret".to_string())),
            ],
            "{backend:?}"
        );
        let mut by_int = reader
            .probe(
                "SELECT ikey, customer_id FROM identities WHERE tenant_id = $1 AND customer_id",
                &[Arg::from(1i64)],
                Keys::Int(&ints),
            )
            .await
            .expect("probe by id");
        by_int.sort();
        assert_eq!(
            by_int,
            vec![
                (0, Some("tmall:second".to_string())),
                (0, Some("tmall:买家00042".to_string())),
                (2, Some("tmall:买家00043".to_string())),
            ],
            "{backend:?}"
        );
        assert!(
            reader
                .probe(
                    "SELECT ikey, customer_id FROM identities WHERE tenant_id = $1 AND customer_id",
                    &[Arg::from(1i64)],
                    Keys::Int(&[])
                )
                .await
                .expect("no keys")
                .is_empty()
        );
    }
}
on_each_backend!(probes_find_every_row_of_every_key_in_a_transaction_and_on_the_pool);

/// A transaction begun without the log flush (`Db::begin_unflushed`, the sign-in's) commits its
/// rows like any other; on PostgreSQL the setting lasts for that transaction only, so the next
/// one on the same connection waits for the disk again.
async fn a_commit_that_skips_the_flush_keeps_its_rows_and_ends_with_its_transaction(
    backend: common::Backend,
) {
    use siyu::platform::db::ConnectOptions;
    use siyu::platform::limits::{self, Budget, Window};
    let t = TestDb::new(backend).await;
    // One connection, so that the next transaction is on the same one.
    let db = Db::connect(&t.url, &ConnectOptions { max_connections: 1 })
        .await
        .expect("one connection");
    let setting = "SELECT current_setting('synchronous_commit')";
    let mut tx = db.begin_unflushed().await.expect("begin");
    if backend == common::Backend::Postgres {
        let (inside,): (String,) = tx.fetch_one(&sql(setting)).await.expect("setting");
        assert_eq!(inside, "off");
    }
    let budget = Budget::new(
        TenantId::new(0),
        "login_address",
        "subject",
        Window::Minutes(15),
        30,
    );
    assert_eq!(
        limits::take(&mut tx, budget, 1_000).await.expect("take"),
        Some(1)
    );
    tx.commit().await.expect("commit");
    let (n,): (i64,) = db
        .fetch_one(&sql(
            "SELECT n FROM rate_counters WHERE scope = 'login_address' AND subject = 'subject'",
        ))
        .await
        .expect("the count is stored");
    assert_eq!(n, 1);
    if backend == common::Backend::Postgres {
        let mut next = db.begin().await.expect("begin");
        let (after,): (String,) = next.fetch_one(&sql(setting)).await.expect("setting");
        assert_eq!(after, "on", "the setting ended with its transaction");
        next.commit().await.expect("commit");
    }
}
on_each_backend!(a_commit_that_skips_the_flush_keeps_its_rows_and_ends_with_its_transaction);
