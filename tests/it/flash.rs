//! Flash sales over HTTP on every backend: attempts hammered by many tasks never sell more than
//! the stock or more than a customer's limit; unpaid reservations expire back to stock; paying
//! makes an order; a second process reading the store sees exactly what is left.

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;
use std::collections::HashMap;
use std::sync::Arc;

use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;

use common::{
    Backend, TestServer, customer_token, make_customers, send, send_as_customer, tenant_with_key,
};

async fn create_sale(s: &TestServer, key: &str, body: Value) -> i64 {
    let c = reqwest::Client::new();
    let (st, v) = send(&c, M::POST, &s.url("/api/v1/flash-sales"), key, Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_i64().expect("sale id")
}

/// Units in pending or paid reservations, by customer, as the store has them.
async fn held(s: &TestServer, sale: i64) -> HashMap<i64, i64> {
    let rows: Vec<(i64, i64)> = s
        .db()
        .fetch_all(
            &sql("SELECT customer_id, CAST(SUM(quantity) AS BIGINT) FROM flash_orders WHERE sale_id = $1 \
                  AND status IN ('pending', 'paid') GROUP BY customer_id")
            .bind(sale),
        )
        .await
        .expect("held");
    rows.into_iter().collect()
}

async fn hammered_attempts_never_oversell(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 1, 120).await;
    let now = now_ms();
    let sale = create_sale(
        &s,
        &key,
        json!({"name": "双11秒杀", "sku": "CREAM-50", "title": "面霜 50ml", "price": 9_900,
               "original_price": 29_900, "stock": 50, "per_customer": 2,
               "starts_at": now - 1_000, "ends_at": now + 3_600_000}),
    )
    .await;
    let tokens: Arc<Vec<(i64, String)>> = Arc::new(
        customers
            .iter()
            .map(|&c| (c, customer_token(&s, tenant, c)))
            .collect(),
    );
    // 64 tasks, each trying for customers in turn, a unit or two at a time: 480 attempts
    // for 50 units, every customer trying to exceed the limit of 2.
    let c = reqwest::Client::new();
    let url = s.url(&format!("/h5/v1/flash-sales/{sale}/attempts"));
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let (c, url, tokens) = (c.clone(), url.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for k in 0..8usize {
                let (customer, token) = &tokens[(t * 7 + k * 13) % tokens.len()];
                let q = 1 + (t + k) % 2;
                let (st, v) =
                    send_as_customer(&c, M::POST, &url, token, Some(json!({"quantity": q}))).await;
                outcomes.push((*customer, q as i64, st, v));
            }
            outcomes
        }));
    }
    let mut sold_to: HashMap<i64, i64> = HashMap::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        for (customer, q, st, v) in t.await.expect("task") {
            if st == StatusCode::CREATED {
                assert_eq!(v["customer_id"].as_i64(), Some(customer));
                *sold_to.entry(customer).or_default() += q;
            } else {
                assert_eq!(st, StatusCode::CONFLICT, "{v}");
                let code = v["error"]["code"].as_str().expect("code").to_owned();
                assert!(
                    code == "sold_out" || code == "limit_reached",
                    "unexpected refusal {v}"
                );
                *codes.entry(code).or_default() += 1;
            }
        }
    }
    let units: i64 = sold_to.values().sum();
    assert_eq!(units, 50, "{backend:?}: every unit sold, none twice");
    assert!(sold_to.values().all(|&q| q <= 2), "{backend:?}: limit held");
    assert!(codes.get("sold_out").copied().unwrap_or(0) > 0);
    // What the clients were told is what the store holds.
    assert_eq!(held(&s, sale).await, sold_to, "{backend:?}");
    let (st, v) = send(
        &c,
        M::GET,
        &s.url(&format!("/api/v1/flash-sales/{sale}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["left"], 0);
    assert_eq!(v["sale"]["sold"], 50);
    assert_eq!(v["orders"]["pending"]["units"], 50);
}
on_each_backend!(hammered_attempts_never_oversell);

async fn reservations_expire_pay_and_cancel(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 2, 3).await;
    let c = reqwest::Client::new();
    let now = now_ms();
    let sale = create_sale(
        &s,
        &key,
        json!({"name": "限时秒杀", "sku": "SERUM", "title": "精华", "price": 5_000,
               "stock": 2, "per_customer": 1, "pay_minutes": 5,
               "starts_at": now - 1_000, "ends_at": now + 3_600_000}),
    )
    .await;
    // The customer-token endpoint mints what the H5 page carries.
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/customer-tokens"),
        &key,
        Some(json!({"customer_id": customers[0], "ttl_minutes": 60})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t0 = v["token"].as_str().expect("token").to_owned();
    let t1 = customer_token(&s, tenant, customers[1]);
    let t2 = customer_token(&s, tenant, customers[2]);
    let attempt = format!("/h5/v1/flash-sales/{sale}/attempts");

    let (st, a) = send_as_customer(&c, M::POST, &s.url(&attempt), &t0, Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let (st, b) = send_as_customer(&c, M::POST, &s.url(&attempt), &t1, Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, v) = send_as_customer(&c, M::POST, &s.url(&attempt), &t2, Some(json!({}))).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("sold_out"))
    );

    // Paying makes an order in the mall channel; another customer cannot pay it.
    let pay_a = format!("/h5/v1/flash-orders/{}/pay", a["id"]);
    let (st, _) = send_as_customer(&c, M::POST, &s.url(&pay_a), &t1, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not the payer's reservation");
    // Four taps on "pay" at once charge once.
    let mut taps = Vec::new();
    for _ in 0..4 {
        let (c, url, t) = (c.clone(), s.url(&pay_a), t0.clone());
        taps.push(tokio::spawn(async move {
            send_as_customer(&c, M::POST, &url, &t, None).await
        }));
    }
    let mut v = Value::Null;
    for tap in taps {
        let (st, r) = tap.await.expect("tap");
        match st {
            StatusCode::OK => v = r,
            StatusCode::CONFLICT => assert!(
                r["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("being paid")),
                "{r}"
            ),
            other => panic!("pay answered {other}: {r}"),
        }
    }
    assert_eq!(v["status"], "paid", "{v}");
    let (charges,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT COUNT(*) FROM payments WHERE purpose = $1")
                .bind(format!("flash:{}", a["id"])),
        )
        .await
        .expect("payments");
    assert_eq!(charges, 1, "{backend:?}: one charge however many taps");
    let order_no = v["order_no"].as_str().expect("order no").to_owned();
    let order: (i64, String, i64) = s
        .db()
        .fetch_one(
            &sql("SELECT customer_id, status, amount FROM orders WHERE channel = 'mall' AND order_no = $1")
                .bind(&order_no),
        )
        .await
        .expect("the paid reservation is an order");
    assert_eq!(order, (customers[0], "paid".into(), 5_000));
    let payment: (String, i64) = s
        .db()
        .fetch_one(
            &sql("SELECT status, amount FROM payments WHERE id = $1")
                .bind(v["payment_id"].as_i64().expect("payment")),
        )
        .await
        .expect("payment recorded");
    assert_eq!(payment, ("paid".into(), 5_000));

    // The unpaid one expires after its deadline; its unit goes back and can be bought.
    let n = s
        .app
        .flash
        .expire_due(now_ms() + 5 * 60_000 + 1)
        .await
        .expect("expire");
    assert_eq!(n, 1);
    let (st, v) = send_as_customer(
        &c,
        M::POST,
        &s.url(&format!("/h5/v1/flash-orders/{}/pay", b["id"])),
        &t1,
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("refused")),
        "{v}"
    );
    let (st, v) = send_as_customer(
        &c,
        M::GET,
        &s.url(&format!("/h5/v1/flash-sales/{sale}")),
        &t2,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["left"], 1);
    let (st, d) = send_as_customer(&c, M::POST, &s.url(&attempt), &t2, Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED, "{d}");

    // Cancelling returns the unit at once; the customer's limit is free again.
    let (st, v) = send_as_customer(
        &c,
        M::POST,
        &s.url(&format!("/h5/v1/flash-orders/{}/cancel", d["id"])),
        &t2,
        None,
    )
    .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (st, _) = send_as_customer(&c, M::POST, &s.url(&attempt), &t2, Some(json!({}))).await;
    assert_eq!(st, StatusCode::CREATED);

    // sold + left = stock, in the store and in memory.
    let sold: (i64, i64) = s
        .db()
        .fetch_one(&sql("SELECT stock, sold FROM flash_sales WHERE id = $1").bind(sale))
        .await
        .expect("sale");
    assert_eq!(sold, (2, 2));
    let units: i64 = held(&s, sale).await.values().sum();
    assert_eq!(units, 2);

    // The orders of a sale by status, and a status that does not exist refused by name.
    let orders = |status: &str| {
        let url = s.url(&format!(
            "/api/v1/flash-sales/{sale}/orders?status={status}"
        ));
        let (c, key) = (c.clone(), key.clone());
        async move { send(&c, M::GET, &url, &key, None).await }
    };
    let (st, v) = orders("cancelled").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cancelled = v["orders"].as_array().expect("orders");
    assert_eq!(cancelled.len(), 1, "{v}");
    assert_eq!(cancelled[0]["status"], "cancelled");
    let (st, v) = orders("refunded").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("status:") && message.contains("refunded"),
        "{v}"
    );
}
on_each_backend!(reservations_expire_pay_and_cancel);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_tokens_and_bad_input_are_refused_plainly() {
    let s = TestServer::start(common::Backend::Sqlite).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 3, 1).await;
    let c = reqwest::Client::new();
    let now = now_ms();
    // A bad sale names its field.
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/flash-sales"),
        &key,
        Some(
            json!({"name": "x", "sku": "x", "title": "x", "price": 100, "stock": 0,
                    "starts_at": now, "ends_at": now + 1}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("stock:"),
        "{v}"
    );

    let later = create_sale(
        &s,
        &key,
        json!({"name": "明晚", "sku": "A", "title": "A", "price": 100, "stock": 5,
               "starts_at": now + 3_600_000, "ends_at": now + 7_200_000}),
    )
    .await;
    let over = create_sale(
        &s,
        &key,
        json!({"name": "昨晚", "sku": "B", "title": "B", "price": 100, "stock": 5,
               "starts_at": now - 7_200_000, "ends_at": now - 3_600_000}),
    )
    .await;
    let token = customer_token(&s, tenant, customers[0]);
    for (sale, code) in [(later, "not_started"), (over, "ended")] {
        let (st, v) = send_as_customer(
            &c,
            M::POST,
            &s.url(&format!("/h5/v1/flash-sales/{sale}/attempts")),
            &token,
            Some(json!({"quantity": 1})),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some(code))
        );
    }
    let url = s.url(&format!("/h5/v1/flash-sales/{later}/attempts"));
    let (st, v) = send_as_customer(&c, M::POST, &url, &token, Some(json!({"quantity": 0}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("quantity")
    );
    // No token, a forged one, another tenant's customer in a genuine token.
    let r = c.post(&url).json(&json!({})).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let forged = token.replacen(&format!("{tenant}."), &format!("{}.", tenant.get() + 1), 1);
    let (st, _) = send_as_customer(&c, M::POST, &url, &forged, Some(json!({}))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let other = customer_token(&s, TenantId::new(tenant.get() + 1), customers[0]);
    let (st, _) = send_as_customer(&c, M::POST, &url, &other, Some(json!({}))).await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another tenant's sale is not there"
    );
    // The JSON does not read a token from the address (links' `?t=` is the page's, once).
    let r = c
        .get(s.url(&format!("/h5/v1/flash-sales/{later}?t={token}")))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_fresh_process_recovers_exactly_what_was_left(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 4, 10).await;
    let now = now_ms();
    let sale = create_sale(
        &s,
        &key,
        json!({"name": "秒杀", "sku": "A", "title": "A", "price": 100, "stock": 7,
               "per_customer": 1, "starts_at": now - 1_000, "ends_at": now + 3_600_000}),
    )
    .await;
    for &cu in &customers[..4] {
        s.app
            .flash
            .attempt(tenant, sale, CustomerId::new(cu), 1, now_ms())
            .await
            .expect("reserved");
    }
    // A second process (its own counters, read from the store) sees 3 left and the
    // customers who hold a unit are still at their limit there.
    let other = siyu::convert::flash::FlashSales::new(s.db().clone());
    assert_eq!(other.left(tenant, sale).await.expect("left"), 3);
    assert!(matches!(
        other
            .attempt(tenant, sale, CustomerId::new(customers[0]), 1, now_ms())
            .await,
        Err(siyu::convert::flash::FlashError::LimitReached(1))
    ));
    for &cu in &customers[4..7] {
        other
            .attempt(tenant, sale, CustomerId::new(cu), 1, now_ms())
            .await
            .expect("reserved");
    }
    // The first process's memory says 3 are left, but the store's guard refuses them.
    let r = s
        .app
        .flash
        .attempt(tenant, sale, CustomerId::new(customers[8]), 1, now_ms())
        .await;
    assert!(
        matches!(r, Err(siyu::convert::flash::FlashError::SoldOut)),
        "{r:?}"
    );
    let units: i64 = held(&s, sale).await.values().sum();
    assert_eq!(units, 7, "{backend:?}: never more than the stock");
}
on_each_backend!(a_fresh_process_recovers_exactly_what_was_left);

/// Redis on this machine, or `None` (and a plain skip) when there is none; in CI it must be there.
async fn redis_url() -> Option<String> {
    let url =
        std::env::var("SIYU_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let reachable = match redis::Client::open(url.as_str()) {
        Ok(c) => c.get_multiplexed_async_connection().await.is_ok(),
        Err(_) => false,
    };
    if reachable {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but Redis is not reachable at {url}"
    );
    eprintln!("SKIPPED the Redis stock gate: no Redis at {url}");
    None
}

async fn the_redis_gate_never_oversells_either(backend: Backend) {
    let Some(url) = redis_url().await else { return };
    use siyu::convert::flash::{FlashError, FlashSales, SaleInput};
    let tdb = common::TestDb::new(backend).await;
    let prefix = format!("siyu:test:{}", siyu::platform::crypto::random_token(6));
    let flash = FlashSales::with_redis(tdb.db.clone(), &url, &prefix)
        .await
        .expect("redis gate");
    assert_eq!(flash.gate_name(), "redis");
    let now = now_ms();
    let sale = flash
        .create(
            TenantId::new(1),
            &SaleInput {
                name: "秒杀".into(),
                sku: "A".into(),
                title: "A".into(),
                price: Fen::new(100),
                original_price: None,
                stock: 30,
                per_customer: 2,
                starts_at: now - 1_000,
                ends_at: now + 3_600_000,
                pay_minutes: 1,
            },
            now,
        )
        .await
        .expect("sale");
    let mut tasks = Vec::new();
    for t in 0..64i64 {
        let flash = flash.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for k in 0..4i64 {
                let customer = 1 + (t * 5 + k) % 40;
                match flash
                    .attempt(
                        TenantId::new(1),
                        sale.id,
                        CustomerId::new(customer),
                        1,
                        now_ms(),
                    )
                    .await
                {
                    Ok(_) => got.push(customer),
                    Err(FlashError::SoldOut | FlashError::LimitReached(_)) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            got
        }));
    }
    let mut per: HashMap<i64, i64> = HashMap::new();
    for t in tasks {
        for c in t.await.expect("task") {
            *per.entry(c).or_default() += 1;
        }
    }
    assert_eq!(per.values().sum::<i64>(), 30, "{backend:?}");
    assert!(
        per.values().all(|&n| n <= 2),
        "{backend:?}: limit held in Redis"
    );
    // Expiry returns every unit to Redis; they sell again.
    assert_eq!(
        flash.expire_due(now_ms() + 61_000).await.expect("expire"),
        30
    );
    let mut again = 0;
    for customer in 100..140 {
        if flash
            .attempt(
                TenantId::new(1),
                sale.id,
                CustomerId::new(customer),
                1,
                now_ms(),
            )
            .await
            .is_ok()
        {
            again += 1;
        }
    }
    assert_eq!(again, 30, "{backend:?}");
}
on_each_backend!(the_redis_gate_never_oversells_either);
