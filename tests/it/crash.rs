//! Nothing acknowledged is lost: the server is killed with SIGKILL while clients post events (or
//! attempt a flash sale), restarted, and every event that got a 202 (every reservation a
//! customer was told of) is there. On every backend. (A process crash: the
//! OS keeps its page cache, so power loss is not what this covers; see README on durability.)

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::TenantId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use common::served::{SECRET, siyu, start, start_with_env, tenant_key};
use common::{Backend, TestDb};

/// Customers buy on the H5 page, which needs a payment provider.
const PAYING: &[(&str, &str)] = &[("SIYU_PAYMENT_PROVIDER", "local-demo")];

async fn a_flash_sale_killed_mid_sale_loses_no_unit(backend: Backend) {
    use siyu::platform::crypto::{CustomerClaim, FieldCipher, parse_secret};
    const STOCK: i64 = 5_000;
    let tdb = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let key = tenant_key(&tdb.url, dir.path(), "crash").await;
    let (mut child, base) = start_with_env(
        &tdb.url,
        dir.path(),
        &[("SIYU_PAYMENT_PROVIDER", "local-demo")],
    )
    .await;
    let client = reqwest::Client::new();
    let now = siyu::platform::clock::now_ms();
    let r = client
        .post(format!("{base}/api/v1/flash-sales"))
        .bearer_auth(&key)
        .json(
            &json!({"name": "秒杀", "sku": "A", "title": "A", "price": 100, "stock": STOCK,
                      "per_customer": 1, "starts_at": now - 1_000, "ends_at": now + 3_600_000}),
        )
        .send()
        .await
        .expect("create sale");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let v: serde_json::Value = r.json().await.expect("sale");
    let sale = v["id"].as_i64().expect("id");
    let tenant: (TenantId,) = tdb
        .db
        .fetch_one(&siyu::platform::db::sql(
            "SELECT id FROM tenants WHERE name = 'crash'",
        ))
        .await
        .expect("tenant");
    // The server's own key signs these; tokens are what the H5 page carries.
    let cipher = FieldCipher::new(&parse_secret(SECRET).expect("secret"));
    let expires_at = now + 3_600_000;

    // Customers (each may buy one) try concurrently; the server dies with about half sold.
    let told: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default(); // (flash order id, customer)
    let odd: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..16i64 {
        let (client, base, told, odd, cipher) = (
            client.clone(),
            base.clone(),
            told.clone(),
            odd.clone(),
            cipher.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let customer = 1 + w + 16 * i;
                let token = cipher.customer_token(CustomerClaim {
                    tenant_id: tenant.0,
                    customer_id: CustomerId::new(customer),
                    issued_at: 0,
                    expires_at,
                });
                let r = client
                    .post(format!("{base}/h5/v1/flash-sales/{sale}/attempts"))
                    .header("x-siyu-customer", token)
                    .json(&json!({"quantity": 1}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => return, // killed while answering: not told
                        };
                        told.lock()
                            .expect("lock")
                            .push((v["id"].as_i64().expect("id"), customer));
                    }
                    Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => return,
                    Ok(r) => {
                        let line =
                            format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        odd.lock().expect("lock").push(line);
                        return;
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (told.lock().expect("lock").len() as i64) < STOCK / 2
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    for t in tasks {
        let _ = t.await;
    }
    let odd = odd.lock().expect("lock").clone();
    assert!(
        odd.is_empty(),
        "{backend:?}: unexpected answers before the kill: {odd:?}"
    );
    let told = told.lock().expect("lock").clone();
    assert!(
        (told.len() as i64) >= STOCK / 2 && (told.len() as i64) < STOCK,
        "{backend:?}: {} successes before the kill",
        told.len()
    );

    // Restart and count.
    let (_child, base) = start_with_env(&tdb.url, dir.path(), PAYING).await;
    let stored: Vec<(i64, i64)> = tdb
        .db
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT id, customer_id FROM flash_orders WHERE sale_id = $1 AND status = 'pending'",
            )
            .bind(sale),
        )
        .await
        .expect("orders");
    let stored: HashSet<(i64, i64)> = stored.into_iter().collect();
    let missing: Vec<_> = told
        .iter()
        .filter(|o| !stored.contains(o))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{backend:?}: successes the clients saw but the store lost: {missing:?}"
    );
    let r = client
        .get(format!("{base}/api/v1/flash-sales/{sale}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sale");
    let v: serde_json::Value = r.json().await.expect("sale json");
    let (sold, left) = (
        v["sale"]["sold"].as_i64().expect("sold"),
        v["left"].as_i64().expect("left"),
    );
    assert_eq!(
        sold,
        stored.len() as i64,
        "{backend:?}: sold counts the reservations"
    );
    assert_eq!(
        sold + left,
        STOCK,
        "{backend:?}: sold + left = initial stock"
    );
    // And the restarted server sells exactly what is left, no more.
    let mut sold_after = 0;
    for customer in 1_000_000..1_000_000 + left + 10 {
        let token = cipher.customer_token(CustomerClaim {
            tenant_id: tenant.0,
            customer_id: CustomerId::new(customer),
            issued_at: 0,
            expires_at,
        });
        let r = client
            .post(format!("{base}/h5/v1/flash-sales/{sale}/attempts"))
            .header("x-siyu-customer", token)
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .expect("attempt");
        if r.status() == reqwest::StatusCode::CREATED {
            sold_after += 1;
        }
    }
    assert_eq!(
        sold_after, left,
        "{backend:?}: the rest sells, then sold out"
    );
    eprintln!(
        "{backend:?}: {} told before SIGKILL, {} stored, {left} left, {sold_after} sold after restart",
        told.len(),
        stored.len()
    );
}
on_each_backend!(a_flash_sale_killed_mid_sale_loses_no_unit);

async fn acknowledged_events_survive_sigkill(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let out = siyu(&tdb.url, dir.path())
        .args(["tenant", "create", "crash"])
        .output()
        .await
        .expect("tenant create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = stdout
        .lines()
        .find_map(|l| l.split("store it now): ").nth(1))
        .expect("API key printed")
        .trim()
        .to_owned();

    let (mut child, base) = start(&tdb.url, dir.path()).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base, key, acked, refused) = (
            client.clone(),
            base.clone(),
            key.clone(),
            acked.clone(),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for b in 0.. {
                let ids: Vec<String> = (0..50).map(|i| format!("w{w}-b{b}-{i}")).collect();
                let events: Vec<_> = ids
                    .iter()
                    .map(|id| json!({"id": id, "type": "visit", "timestamp": siyu::platform::clock::now_ms(),
                                     "identities": [{"kind": "phone", "value": format!("136{:08}", (w * 1000 + b) % 5000)}]}))
                    .collect();
                match client.post(format!("{base}/api/v1/events")).bearer_auth(&key).json(&json!({"events": events})).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => acked.lock().expect("lock").extend(ids),
                    // An answer other than 202 while the server is up is a failure, not the kill.
                    Ok(r) => {
                        let line = format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        refused.lock().expect("lock").push(line);
                        return;
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill the server without warning once a good amount of work has been acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 2_000 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    for t in tasks {
        let _ = t.await;
    }
    let refused = refused.lock().expect("lock").clone();
    assert!(
        refused.is_empty(),
        "{backend:?}: requests refused before the kill: {refused:?}"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 2_000,
        "{backend:?}: only {} events were acknowledged before the kill",
        acked.len()
    );

    // Restart: the server comes back and every acknowledged event is stored.
    let (_child, base) = start(&tdb.url, dir.path()).await;
    let r = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert!(r.status().is_success());
    let stored: Vec<(String,)> = tdb
        .db
        .fetch_all(&siyu::platform::db::sql("SELECT event_key FROM events"))
        .await
        .expect("events");
    let stored: HashSet<String> = stored.into_iter().map(|r| r.0).collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(*id))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "{backend:?}: acknowledged events lost after SIGKILL: {lost:?}"
    );
    eprintln!(
        "{backend:?}: {} acknowledged, {} stored after SIGKILL",
        acked.len(),
        stored.len()
    );
}
on_each_backend!(acknowledged_events_survive_sigkill);
