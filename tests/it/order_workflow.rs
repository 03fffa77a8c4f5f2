//! Whatever brings an order in (the push API, an import, a flash sale, a group buy, a bargain),
//! the buyer's last order, lifecycle stage and RFM class follow it at once, and so do the
//! audience's counts: a customer who bought today is no longer in "90 天没买".
//!
//! Each entry point is one test per backend (`…::sqlite`, `…::postgres`), so a failure on one
//! backend names itself.

use crate::common;
use siyu::platform::TenantId;
use std::time::{Duration, Instant};

use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;

use common::{Backend, TestServer, customer_token, post, send, send_as_customer, tenant_with_key};

const DAY_MS: i64 = 86_400_000;

/// Who has not bought for 90 days or more.
fn lapsed() -> Value {
    json!({"orders": {"last_order_days": {"min": 90}}})
}

/// A brand whose customers bought two years ago and 200 days ago, and not since.
struct Brand {
    s: TestServer,
    tenant: TenantId,
    key: String,
    /// The lapsed buyers, in the order their phones were given.
    buyers: Vec<i64>,
}

async fn lapsed_brand(backend: Backend, phones: &[&str]) -> Brand {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "品牌", Role::Admin).await;
    let now = now_ms();
    let orders: Vec<Value> = phones
        .iter()
        .enumerate()
        .flat_map(|(i, phone)| {
            [(730, "A"), (200, "B")].map(|(days, n)| {
                json!({"channel": "tmall", "order_no": format!("OLD-{i}-{n}"), "status": "completed",
                       "ordered_at": now - days * DAY_MS, "amount": 25_000,
                       "identities": [{"kind": "phone", "value": phone}]})
            })
        })
        .collect();
    let (st, v) = post(&s, &key, "/api/v1/orders", json!({ "orders": orders })).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut buyers = Vec::new();
    for phone in phones {
        let (st, v) = send(
            &reqwest::Client::new(),
            M::GET,
            &s.url(&format!("/api/v1/customers?phone={phone}")),
            &key,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        buyers.push(v["id"].as_i64().expect("customer id"));
    }
    let b = Brand {
        s,
        tenant,
        key,
        buyers,
    };
    for &c in &b.buyers {
        let f = b.figures(c).await;
        assert!(
            ["silent", "dormant"].contains(&f.stage.as_str()),
            "{backend:?}: a buyer of 200 days ago starts {f:?}"
        );
    }
    assert_eq!(b.count(&lapsed()).await, phones.len() as i64, "{backend:?}");
    b
}

#[derive(Debug)]
struct Figures {
    last_order_at: i64,
    stage: String,
    r_score: i64,
}

impl Brand {
    async fn figures(&self, customer: i64) -> Figures {
        let (last_order_at, stage, r_score): (i64, String, i64) = self
            .s
            .db()
            .fetch_one(
                &sql("SELECT last_order_at, stage, r_score FROM customer_stats WHERE tenant_id = $1 AND customer_id = $2")
                    .bind(self.tenant)
                    .bind(customer),
            )
            .await
            .expect("the buyer's figures");
        Figures {
            last_order_at,
            stage,
            r_score,
        }
    }

    async fn count(&self, rule: &Value) -> i64 {
        let (st, v) = post(
            &self.s,
            &self.key,
            "/api/v1/audience/count",
            json!({ "rule": rule }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["count"].as_i64().expect("count")
    }

    /// Makes the buyer a member (one point per whole yuan by default); their balance.
    async fn join(&self, phone: &str) -> i64 {
        let (st, v) = post(
            &self.s,
            &self.key,
            "/api/v1/members",
            json!({"via": "phone", "identity": {"kind": "phone", "value": phone}}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        self.points(v["member"]["customer_id"].as_i64().expect("member"))
            .await
    }

    async fn points(&self, customer: i64) -> i64 {
        let (st, v) = send(
            &reqwest::Client::new(),
            M::GET,
            &self.s.url(&format!("/api/v1/members/{customer}")),
            &self.key,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["points"].as_i64().expect("points")
    }

    fn token(&self, customer: i64) -> String {
        customer_token(&self.s, self.tenant, customer)
    }

    /// The buyer bought at `since` or later: their figures show it, and they left the lapsed.
    async fn assert_followed(&self, what: &str, customer: i64, since: i64, lapsed_left: i64) {
        let f = self.figures(customer).await;
        assert!(
            f.last_order_at >= since,
            "{what}: the last order is still {f:?}"
        );
        assert_eq!(f.stage, "active", "{what}: {f:?}");
        assert_eq!(
            f.r_score, 5,
            "{what}: bought today is the best recency: {f:?}"
        );
        assert_eq!(
            self.count(&lapsed()).await,
            lapsed_left,
            "{what}: the audience still counts the buyer as lapsed"
        );
        assert_eq!(
            self.count(&json!({"stage": ["active"]})).await,
            (self.buyers.len() as i64) - lapsed_left,
            "{what}: the audience's stage counts"
        );
    }
}

on_each_backend!(an_order_pushed_through_the_api);
async fn an_order_pushed_through_the_api(backend: Backend) {
    let b = lapsed_brand(backend, &["13800000001"]).await;
    let before = b.join("13800000001").await;
    let now = now_ms();
    let (st, v) = post(
        &b.s,
        &b.key,
        "/api/v1/orders",
        json!({"orders": [{"channel": "store", "order_no": "POS-1", "status": "paid", "ordered_at": now,
                           "amount": 9_900, "store_id": "S01",
                           "identities": [{"kind": "phone", "value": "138 0000 0001"}]}]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    b.assert_followed("api", b.buyers[0], now, 0).await;
    assert_eq!(
        b.points(b.buyers[0]).await,
        before + 99,
        "the member earned for ¥99"
    );
}

on_each_backend!(an_imported_export);
async fn an_imported_export(backend: Backend) {
    let b = lapsed_brand(backend, &["13800000002"]).await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tmall.csv");
    // The export writes whole seconds.
    let bought = (now_ms() - 60_000).div_euclid(1000) * 1000;
    let at = export_time(bought);
    std::fs::write(
        &file,
        format!(
            "订单编号,买家会员名,收货人姓名,联系手机,订单状态,订单创建时间,订单付款时间,买家实际支付金额,退款金额,宝贝标题,商家编码,宝贝类目,宝贝总数量,宝贝单价\n\
             2026120400001,tb_buyer,张三,13800000002,交易成功,{at},{at},199.00,0.00,面霜,SK-102,护肤,1,199\n"
        ),
    )
    .expect("write the export");
    // The real command, on the server's database, as an operator would run it beside the server.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(["import", "orders", "--preset", "tmall", "--tenant", "品牌"])
        .arg(&file)
        .env("SIYU_DATABASE_URL", &b.s.tdb.url)
        .env("SIYU_SECRET_KEY", hex::encode([42u8; 32]))
        .env("SIYU_DATA_DIR", dir.path())
        .output()
        .expect("run siyu import");
    assert!(
        out.status.success(),
        "{backend:?}: siyu import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The import asks every server on the database to rebuild its index; this one watches for
    // that every 2 s.
    let until = Instant::now() + Duration::from_secs(20);
    while b.count(&lapsed()).await != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.assert_followed("import", b.buyers[0], bought, 0).await;
}

/// A time as the Tmall export writes it: China time, `2024/6/18 10:01:02`.
fn export_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .with_timezone(&siyu::platform::clock::china())
        .format("%Y/%-m/%-d %H:%M:%S")
        .to_string()
}

on_each_backend!(a_flash_sale_paid_on_its_page);
async fn a_flash_sale_paid_on_its_page(backend: Backend) {
    let b = lapsed_brand(backend, &["13800000003"]).await;
    let before = b.join("13800000003").await;
    let now = now_ms();
    let (st, sale) = post(
        &b.s,
        &b.key,
        "/api/v1/flash-sales",
        json!({"name": "秒杀", "sku": "SKU-1", "title": "精华", "price": 9_900, "stock": 5, "per_customer": 1,
               "starts_at": now - 1_000, "ends_at": now + 3_600_000, "pay_minutes": 15}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{sale}");
    let c = reqwest::Client::new();
    let t = b.token(b.buyers[0]);
    let (st, r) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/flash-sales/{}/attempts", sale["id"])),
        &t,
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let (st, paid) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/flash-orders/{}/pay", r["id"])),
        &t,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{paid}");
    b.assert_followed("flash sale", b.buyers[0], now, 0).await;
    assert_eq!(
        b.points(b.buyers[0]).await,
        before + 99,
        "the member earned for ¥99"
    );
}

on_each_backend!(a_group_buy_team_filled_on_its_page);
async fn a_group_buy_team_filled_on_its_page(backend: Backend) {
    let b = lapsed_brand(backend, &["13800000004", "13800000005", "13800000006"]).await;
    let now = now_ms();
    let (st, g) = post(
        &b.s,
        &b.key,
        "/api/v1/group-buys",
        json!({"name": "2人团", "sku": "TEA", "title": "茶礼盒", "price": 6_900, "team_size": 2,
               "team_minutes": 60, "starts_at": now - 1_000, "ends_at": now + 86_400_000}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let c = reqwest::Client::new();
    let (st, t) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/group-buys/{}/teams", g["id"])),
        &b.token(b.buyers[0]),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, v) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/teams/{}/join", t["team"]["id"])),
        &b.token(b.buyers[1]),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Both members of the full team bought; the third customer did not.
    b.assert_followed("group buy, leader", b.buyers[0], now, 1)
        .await;
    b.assert_followed("group buy, member", b.buyers[1], now, 1)
        .await;
    let f = b.figures(b.buyers[2]).await;
    assert_ne!(f.stage, "active", "{f:?}");
}

on_each_backend!(a_bargain_bought_on_its_page);
async fn a_bargain_bought_on_its_page(backend: Backend) {
    let b = lapsed_brand(backend, &["13800000007"]).await;
    let now = now_ms();
    let (st, item) = post(
        &b.s,
        &b.key,
        "/api/v1/bargain-items",
        json!({"name": "砍价", "sku": "MASK", "title": "面膜", "price": 19_900, "floor_price": 990,
               "assists": 1, "stock": 10, "starts_at": now - 1_000, "ends_at": now + 86_400_000}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{item}");
    let c = reqwest::Client::new();
    let owner = b.token(b.buyers[0]);
    let (st, bargain) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/bargain-items/{}/bargains", item["id"])),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{bargain}");
    let (st, v) = post(
        &b.s,
        &b.key,
        &format!("/api/v1/bargains/{}/assists", bargain["id"]),
        json!({"identity": {"kind": "unionid", "value": "o6_friend"}, "name": "小王"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = send_as_customer(
        &c,
        M::POST,
        &b.s.url(&format!("/h5/v1/bargains/{}/buy", bargain["id"])),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The friend who helped joined as a customer without an order; the lapsed count is the
    // owner's alone.
    b.assert_followed("bargain", b.buyers[0], now, 0).await;
}

on_each_backend!(orders_synced_from_a_marketplace_shop);
/// A shop's orders synced from its platform are followed as pushed orders are (figures, stage,
/// the audience, points); orders placed before the shop was connected are its history and, like
/// an import, earn no points.
async fn orders_synced_from_a_marketplace_shop(backend: Backend) {
    use siyu_marketplace_sandbox::{FakeLine, FakeOrder, Platform, Sandbox, Shop, Status};
    let b = lapsed_brand(backend, &["13800000001"]).await;
    let before = b.join("13800000001").await;
    let now = now_ms();
    let order = |no: &str, at: i64, amount: i64| FakeOrder {
        order_no: no.into(),
        status: Status::Paid,
        created_at: at,
        paid_at: Some(at + 1_000),
        modified_at: at + 1_000,
        amount,
        refund_amount: 0,
        buyer_id: None,
        phone: Some("13800000001".into()),
        lines: vec![FakeLine {
            sku: "SKU-1".into(),
            title: "面霜".into(),
            quantity: 1,
            price: amount,
        }],
    };
    // One order from before the shop was connected (ten minutes ago), one since.
    let shop = Shop::new(
        Platform::Youzan,
        vec![
            order("E-HISTORY", now - 2 * DAY_MS, 12_300),
            order("E-LIVE", now - 5 * 60_000, 9_900),
        ],
    );
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let (st, made) = post(
        &b.s,
        &b.key,
        "/api/v1/shops",
        json!({"platform": "youzan", "shop_ref": shop.shop_ref, "name": "有赞微商城", "app_key": shop.app_key,
               "app_secret": shop.app_secret, "api_base": sandbox.base, "sync_from": now - 3 * DAY_MS}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().expect("shop id");
    b.s.db()
        .execute(
            &sql("UPDATE shops SET created_at = $1 WHERE id = $2")
                .bind(now - 10 * 60_000)
                .bind(id),
        )
        .await
        .expect("connected ten minutes ago");
    let (st, run) = post(&b.s, &b.key, &format!("/api/v1/shops/{id}/sync"), json!({})).await;
    assert_eq!((st, &run["imported"]), (StatusCode::OK, &json!(2)), "{run}");
    // Youzan gives times to the second.
    b.assert_followed("sync", b.buyers[0], now - 5 * 60_000 - 1_000, 0)
        .await;
    assert_eq!(
        b.points(b.buyers[0]).await,
        before + 99,
        "the live order earned for ¥99, the history none"
    );
}
