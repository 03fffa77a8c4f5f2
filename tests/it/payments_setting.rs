//! Payments are an explicit setting. `siyu serve` with no payment provider takes no customer
//! money: H5 flash-sale attempts, group-buy teams and bargain purchases are refused with a clear
//! answer, no stock is taken and no payment is recorded. The local provider, which settles
//! without taking money, serves only when the operator names it (`local-demo`).
//!
//! Each case runs the real binary, as an operator starts it, on both backends.

use crate::common;
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::know::CustomerId;
use siyu::platform::TenantId;
use siyu::platform::crypto::{CustomerClaim, FieldCipher, parse_secret};
use siyu::platform::db::sql;

use common::served::{SECRET, start_with_env, tenant_key};
use common::{Backend, TestDb, send, send_as_customer};

/// A served binary with one tenant, one buyer and one sale of each kind.
struct Shop {
    base: String,
    key: String,
    token: String,
    sale: i64,
    group_buy: i64,
    bargain_item: i64,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

async fn shop(tdb: &TestDb, env: &[(&str, &str)]) -> Shop {
    let dir = tempfile::tempdir().expect("tmp");
    let key = tenant_key(&tdb.url, dir.path(), "shop").await;
    let (child, base) = start_with_env(&tdb.url, dir.path(), env).await;
    let c = reqwest::Client::new();
    let now = siyu::platform::clock::now_ms();
    let api = |path: &str, body: Value| {
        let (c, url, key) = (c.clone(), format!("{base}{path}"), key.clone());
        async move {
            let (st, v) = send(&c, M::POST, &url, &key, Some(body)).await;
            assert!(st.is_success(), "{url}: {st} {v}");
            v
        }
    };
    api(
        "/api/v1/orders",
        json!({"orders": [{"channel": "tmall", "order_no": "T-1", "status": "completed",
            "ordered_at": now - 86_400_000, "amount": 9_900,
            "identities": [{"kind": "phone", "value": "13800002222"}]}]}),
    )
    .await;
    let (st, buyer) = send(
        &c,
        M::GET,
        &format!("{base}/api/v1/customers?phone=13800002222"),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{buyer}");
    let window = json!({"starts_at": now - 1_000, "ends_at": now + 3_600_000});
    let with = |mut v: Value| {
        v.as_object_mut()
            .expect("object")
            .extend(window.as_object().expect("object").clone());
        v
    };
    let sale = api(
        "/api/v1/flash-sales",
        with(
            json!({"name": "秒杀", "sku": "A", "title": "A", "price": 100, "stock": 10, "per_customer": 1}),
        ),
    )
    .await;
    let group_buy = api(
        "/api/v1/group-buys",
        with(json!({"name": "3人团", "sku": "TEA", "title": "茶礼盒", "price": 6_900, "team_size": 3, "team_minutes": 60})),
    )
    .await;
    let item = api(
        "/api/v1/bargain-items",
        with(json!({"name": "砍价", "sku": "MASK", "title": "面膜", "price": 19_900, "floor_price": 990, "assists": 5, "stock": 10})),
    )
    .await;
    let tenant: (TenantId,) = tdb
        .db
        .fetch_one(&sql("SELECT id FROM tenants WHERE name = 'shop'"))
        .await
        .expect("tenant");
    let token =
        FieldCipher::new(&parse_secret(SECRET).expect("secret")).customer_token(CustomerClaim {
            tenant_id: tenant.0,
            customer_id: CustomerId::new(buyer["id"].as_i64().expect("buyer")),
            issued_at: 0,
            expires_at: now + 3_600_000,
        });
    Shop {
        base,
        key,
        token,
        sale: sale["id"].as_i64().expect("sale"),
        group_buy: group_buy["id"].as_i64().expect("group buy"),
        bargain_item: item["id"].as_i64().expect("item"),
        _child: child,
        _dir: dir,
    }
}

impl Shop {
    async fn h5(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send_as_customer(
            &reqwest::Client::new(),
            M::POST,
            &format!("{}{path}", self.base),
            &self.token,
            body,
        )
        .await
    }
}

async fn payments_recorded(tdb: &TestDb) -> i64 {
    let (n,): (i64,) = tdb
        .db
        .fetch_one(&sql("SELECT count(*) FROM payments"))
        .await
        .expect("payments");
    n
}

fn refused_for_payments(what: &str, st: StatusCode, v: &Value) {
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{what}: {v}");
    assert_eq!(v["error"]["code"], "payments_not_configured", "{what}: {v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("nothing was charged"), "{what}: {v}");
}

on_each_backend!(a_server_with_no_payment_provider_takes_no_customer_money);
async fn a_server_with_no_payment_provider_takes_no_customer_money(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let s = shop(&tdb, &[]).await;

    let (st, v) = s
        .h5(
            &format!("/h5/v1/flash-sales/{}/attempts", s.sale),
            Some(json!({"quantity": 1})),
        )
        .await;
    refused_for_payments("flash-sale attempt", st, &v);
    let (st, v) = s
        .h5(&format!("/h5/v1/group-buys/{}/teams", s.group_buy), None)
        .await;
    refused_for_payments("group-buy team", st, &v);
    // Starting a bargain costs nothing; buying it is refused.
    let (st, b) = s
        .h5(
            &format!("/h5/v1/bargain-items/{}/bargains", s.bargain_item),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{backend:?}: {b}");
    let (st, v) = s
        .h5(&format!("/h5/v1/bargains/{}/buy", b["id"]), None)
        .await;
    refused_for_payments("bargain purchase", st, &v);

    assert_eq!(payments_recorded(&tdb).await, 0, "{backend:?}");
    let (st, sale) = send(
        &reqwest::Client::new(),
        M::GET,
        &format!("{}/api/v1/flash-sales/{}", s.base, s.sale),
        &s.key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{sale}");
    assert_eq!(sale["left"], 10, "{backend:?}: no unit was held: {sale}");
}

on_each_backend!(the_local_provider_serves_only_when_named_for_a_demo);
async fn the_local_provider_serves_only_when_named_for_a_demo(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let s = shop(&tdb, &[("SIYU_PAYMENT_PROVIDER", "local-demo")]).await;
    let (st, v) = s
        .h5(&format!("/h5/v1/group-buys/{}/teams", s.group_buy), None)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{backend:?}: {v}");
    assert_eq!(payments_recorded(&tdb).await, 1, "{backend:?}");

    // Any other name is refused at start, with the setting named.
    let dir = tempfile::tempdir().expect("tmp");
    let run = common::served::siyu(&tdb.url, dir.path())
        .env("SIYU_PAYMENT_PROVIDER", "local")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("{backend:?}: siyu serve started and served with `local`"))
        .expect("run siyu serve");
    assert!(!out.status.success(), "{backend:?}: started with `local`");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("payment_provider"), "{backend:?}: {err}");
}
