//! Two servers on one database (as two processes behind a load balancer would be) ingest events
//! whose identities link customers, concurrently: the customers are still exactly the connected
//! components. On SQLite (two pools on one file) and PostgreSQL.

use crate::common;
use rand::{Rng, SeedableRng};
use serde_json::json;
use siyu::platform::access::Role;
use siyu::platform::db::{ConnectOptions, Db};

use common::{Backend, TestDb, cipher, partition, serve_on, tenant_with_key};

fn components(records: &[(usize, usize)]) -> Vec<Vec<String>> {
    let records: Vec<Vec<usize>> = records.iter().map(|&(a, b)| vec![a, b]).collect();
    common::connected_components(&records, |n| format!("unionid:u{n}"))
}

async fn two_servers_on_one_database_resolve_the_same_customers(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let (tenant, key) = tenant_with_key(&tdb.db, "brand", Role::Admin).await;
    let second = Db::connect(&tdb.url, &ConnectOptions::default())
        .await
        .expect("second pool");
    let (a, _stop_a) = serve_on(tdb.db.clone(), cipher()).await;
    let (b, _stop_b) = serve_on(second, cipher()).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let records: Vec<(usize, usize)> = (0..400)
        .map(|_| (rng.random_range(0..300), rng.random_range(0..300)))
        .collect();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (t, chunk) in records.chunks(10).enumerate() {
        let base = if t % 2 == 0 { a.clone() } else { b.clone() };
        let (client, key, chunk) = (client.clone(), key.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let events: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, (x, y))| {
                    json!({"id": format!("c{t}-{i}"), "type": "link", "timestamp": siyu::platform::clock::now_ms(),
                           "identities": [{"kind": "unionid", "value": format!("u{x}")}, {"kind": "unionid", "value": format!("u{y}")}]})
                })
                .collect();
            let r = client.post(format!("{base}/api/v1/events")).bearer_auth(&key).json(&json!({"events": events})).send().await.expect("post");
            assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED, "{}", r.text().await.unwrap_or_default());
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let want = components(&records);
    let got = partition(&tdb.db, tenant).await;
    assert_eq!(got.len(), want.len(), "{backend:?}: customer count");
    assert_eq!(
        got, want,
        "{backend:?}: customers differ from the connected components"
    );
    let (events,): (i64,) = tdb
        .db
        .fetch_one(&siyu::platform::db::sql("SELECT COUNT(*) FROM events"))
        .await
        .expect("count");
    assert_eq!(events, 400);
    let (merges,): (i64,) = tdb
        .db
        .fetch_one(&siyu::platform::db::sql(
            "SELECT COUNT(*) FROM customer_merges",
        ))
        .await
        .expect("merges");
    assert!(
        merges > 10,
        "{backend:?}: the graph is built so that customers merge across requests ({merges})"
    );
}
on_each_backend!(two_servers_on_one_database_resolve_the_same_customers);
