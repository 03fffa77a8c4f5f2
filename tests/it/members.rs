//! Members and the points ledger over HTTP, on every backend: joining is idempotent, an order
//! earns once, redemptions under load never overdraw, expiry takes what was not spent in time,
//! and the balance is always the sum of the entries.

use crate::common;
use reqwest::StatusCode;
use serde_json::{Value, json};
use siyu::platform::TenantId;
use siyu::platform::access::Role;
use siyu::platform::db::sql;

use common::{Backend, TestServer, send, tenant_with_key};

async fn members_join_once_and_points_always_balance(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);

    // Joining by phone, then again with the phone written another way: one member.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000001"}, "birthday_month": 6})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["member"]["customer_id"].as_i64().expect("id");
    let no = v["member"]["member_no"].as_str().expect("no").to_owned();
    assert!(no.starts_with('M'), "{v}");
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "store", "store_id": "SH-01", "identity": {"kind": "phone", "value": "+86 138 0000 0001"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["member"]["member_no"], no.as_str());
    // The member number is an identity: the customer is found by it, and segments see it.
    let (st, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/customers?identity=member_no:{no}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["id"].as_i64(), Some(id));
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"identity": ["member_no"]}})),
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");

    // Bad requests name the field.
    for (body, field) in [
        (
            json!({"via": "wechat", "identity": {"kind": "phone", "value": "13800000002"}}),
            "identity",
        ),
        (
            json!({"via": "store", "identity": {"kind": "phone", "value": "13800000002"}}),
            "store_id",
        ),
        (
            json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000002"}, "birthday_month": 13}),
            "birthday_month",
        ),
        (
            json!({"via": "phone", "identity": {"kind": "phone", "value": "1380000"}}),
            "identity",
        ),
    ] {
        let (st, v) = send(&c, M::POST, &url("/api/v1/members"), &key, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with(field),
            "{v}"
        );
    }

    // An order earns once: whole yuan, one point each by default.
    let points = url(&format!("/api/v1/members/{id}/points"));
    let earn = json!({"kind": "earn", "order_ref": "tmall:T-1", "paid": 29_999});
    let (st, v) = send(&c, M::POST, &points, &key, Some(earn.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["points"], 299);
    let (_, v) = send(&c, M::POST, &points, &key, Some(earn)).await;
    assert_eq!(v["entry"], Value::Null, "{v}");
    assert_eq!(v["points"], 299);

    // No overdraft; adjustments need a reason and cannot go below zero.
    let (st, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "redeem", "points": 300})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, _) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "redeem", "points": 99, "reference": "gift:G1"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "adjust", "points": 0, "reason": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "adjust", "points": -1000, "reason": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "adjust", "points": 50, "reason": "客诉补偿"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["points"], 250);

    // 40 redemptions of 10 at once against 250: exactly 25 succeed.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (c, points, key) = (c.clone(), points.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            send(
                &c,
                M::POST,
                &points,
                &key,
                Some(json!({"kind": "redeem", "points": 10, "reference": format!("r{i}")})),
            )
            .await
            .0
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("{backend:?}: unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (25, 15), "{backend:?}");
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(v["points"], 0, "{v}");
    let (sum,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_entries WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await
        .expect("sum");
    assert_eq!(sum, 0, "{backend:?}: the balance is the sum of the entries");

    // Expiry takes earned points not spent in time, once.
    let (_, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "earn", "order_ref": "jd:J-1", "paid": 10_000})),
    )
    .await;
    assert_eq!(v["points"], 100);
    let (_, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "redeem", "points": 30})),
    )
    .await;
    assert_eq!(v["points"], 70);
    s.db()
        .execute(
            &sql(
                "UPDATE points_entries SET expires_at = 1 WHERE tenant_id = $1 AND ref = 'jd:J-1'",
            )
            .bind(tenant),
        )
        .await
        .expect("backdate");
    let (st, v) = send(&c, M::POST, &url("/api/v1/points/expire"), &key, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // tmall:T-1 (299) was spent entirely before; of jd:J-1's 100, 30 were spent.
    assert_eq!(v["expired"], 70, "{v}");
    let (_, v) = send(&c, M::POST, &url("/api/v1/points/expire"), &key, None).await;
    assert_eq!(v["expired"], 0, "{v}");
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(v["points"], 0, "{v}");
    assert_eq!(v["entries"][0]["kind"], "expire", "{v}");

    // Two members found to be one person: the older membership stays, the ledger follows.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000002"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = v["member"]["customer_id"].as_i64().expect("id");
    let (_, v) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/members/{second}/points")),
        &key,
        Some(json!({"kind": "earn", "order_ref": "pdd:P-1", "paid": 5_000})),
    )
    .await;
    assert_eq!(v["points"], 50, "{v}");
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [{"channel": "mall", "order_no": "BOTH", "status": "paid", "ordered_at": 1_700_000_000_000i64,
                                 "amount": 50, "identities": [{"kind": "phone", "value": "13800000001"},
                                                               {"kind": "phone", "value": "13800000002"}]}]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/members/{second}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["member"]["customer_id"].as_i64(), Some(id), "{v}");
    assert_eq!(v["member"]["member_no"], no.as_str(), "{v}");
    assert_eq!(
        v["points"], 50,
        "{backend:?}: the merged member's points follow: {v}"
    );
    let (members,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT count(*) FROM members WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("members");
    assert_eq!(members, 1, "{backend:?}: one person, one membership");

    // Someone who did not join has no ledger.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [{"channel": "jd", "order_no": "X", "status": "paid", "ordered_at": 1_700_000_000_000i64,
                                 "amount": 100, "identities": [{"kind": "phone", "value": "13900000009"}]}]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = send(
        &c,
        M::GET,
        &url("/api/v1/customers?phone=13900000009"),
        &key,
        None,
    )
    .await;
    let other = v["id"].as_i64().expect("id");
    let (st, _) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/members/{other}/points")),
        &key,
        Some(json!({"kind": "redeem", "points": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
on_each_backend!(members_join_once_and_points_always_balance);

/// Tiers by spend in a rolling window: up at once, down only at the review; higher tiers earn
/// more points; segments select by tier.
async fn tiers_move_up_at_once_and_down_at_review(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);
    let now = siyu::platform::clock::now_ms();

    let (st, v) = send(
        &c,
        M::PUT,
        &url("/api/v1/points/settings"),
        &key,
        Some(json!({"tiers": {"basis": "spend", "window_days": 365, "tiers": [
            {"name": "银卡", "min": 0},
            {"name": "金卡", "min": 100000, "points_multiplier_pct": 200, "benefits": ["生日礼"]},
            {"name": "金卡", "min": 200000}
        ]}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tiers[2].name"),
        "{v}"
    );
    let (st, v) = send(
        &c,
        M::PUT,
        &url("/api/v1/points/settings"),
        &key,
        Some(json!({"tiers": {"basis": "spend", "window_days": 365, "tiers": [
            {"name": "银卡", "min": 0},
            {"name": "金卡", "min": 100000, "points_multiplier_pct": 200, "benefits": ["生日礼"]}
        ]}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000007"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["member"]["tier"], "银卡", "{v}");
    let id = v["member"]["customer_id"].as_i64().expect("id");

    // 1,200 yuan in the window: gold at once, and gold earns double.
    let order = |no: &str, status: &str| {
        json!({"orders": [{"channel": "mall", "order_no": no, "status": status, "ordered_at": now - 86_400_000,
                           "amount": 120_000, "refund_amount": if status == "refunded" { 120_000 } else { 0 },
                           "identities": [{"kind": "phone", "value": "13800000007"}]}]})
    };
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(order("G-1", "paid")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/members/{id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(v["member"]["tier"], "金卡", "{v}");
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"tier": ["金卡"]}})),
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");
    // The order earned by itself, at the rate of the tier the member had when it came in;
    // asking again earns nothing twice.
    let points = url(&format!("/api/v1/members/{id}/points"));
    let (_, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "earn", "order_ref": "mall:G-1", "paid": 120_000})),
    )
    .await;
    assert_eq!(v["entry"], Value::Null, "{v}");
    assert_eq!(v["points"], 1_200, "{v}");
    // Gold earns double.
    let mut second = order("G-2", "paid");
    second["orders"][0]["amount"] = json!(10_000);
    let (st, _) = send(&c, M::POST, &url("/api/v1/orders"), &key, Some(second)).await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(v["points"], 1_400, "{v}");

    // Refunded: the order's points are taken back once; still gold until the review, then
    // silver (100 yuan left in the window).
    for _ in 0..2 {
        let (st, _) = send(
            &c,
            M::POST,
            &url("/api/v1/orders"),
            &key,
            Some(order("G-1", "refunded")),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(v["points"], 200, "{v}");
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/members/{id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(v["member"]["tier"], "金卡", "{v}");
    let (st, v) = send(&c, M::POST, &url("/api/v1/tiers/review"), &key, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["changes"][0]["to"], "银卡", "{v}");
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"tier": ["金卡"]}})),
    )
    .await;
    assert_eq!(
        v["count"], 0,
        "{backend:?}: the index follows the review: {v}"
    );
}
on_each_backend!(tiers_move_up_at_once_and_down_at_review);

/// A member number the brand's imported data already uses is never given to someone else
/// (that would merge two people).
async fn new_member_numbers_skip_numbers_in_use(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);
    // An order from the brand's old member system carries member number M00000001.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [{"channel": "pos", "order_no": "R-1", "status": "paid", "ordered_at": 1_700_000_000_000i64,
                                 "amount": 100, "identities": [{"kind": "member_no", "value": "M00000001"}]}]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000011"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_ne!(v["member"]["member_no"], "M00000001", "{v}");
    let (_, all) = send(
        &c,
        M::GET,
        &url("/api/v1/customers?per_page=10"),
        &key,
        None,
    )
    .await;
    assert_eq!(all["total"], 2, "{backend:?}: two people stay two: {all}");
}
on_each_backend!(new_member_numbers_skip_numbers_in_use);

on_each_backend!(a_refund_after_the_points_were_spent_leaves_a_debt);
/// Pay, spend the points, refund, keep what the points bought: the refund takes back every
/// point the order earned, so the balance goes below zero and nothing more can be spent until
/// new orders pay the debt.
async fn a_refund_after_the_points_were_spent_leaves_a_debt(backend: common::Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000011"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["member"]["customer_id"].as_i64().expect("id");
    let order = |status: &str| {
        json!({"orders": [{"channel": "mall", "order_no": "D-1", "status": status,
                           "ordered_at": siyu::platform::clock::now_ms() - 60_000, "amount": 50_000,
                           "refund_amount": if status == "refunded" { 50_000 } else { 0 },
                           "identities": [{"kind": "phone", "value": "13800000011"}]}]})
    };
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(order("paid")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let points = url(&format!("/api/v1/members/{id}/points"));
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    let earned = v["points"].as_i64().expect("points");
    assert!(earned > 0, "{backend:?}: {v}");
    let (st, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "redeem", "points": earned, "reason": "兑换礼品"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(order("refunded")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(
        v["points"].as_i64(),
        Some(-earned),
        "{backend:?}: the refund took back only what was left: {v}"
    );
    let (st, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "redeem", "points": 1, "reason": "再兑换"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "{backend:?}: spending from a debt: {v}"
    );
    // An operator may still add points to a member in debt (a goodwill gesture pays part of it).
    let (st, v) = send(
        &c,
        M::POST,
        &points,
        &key,
        Some(json!({"kind": "adjust", "points": 1, "reason": "客诉补偿"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: adding to a debt: {v}");
    assert_eq!(v["points"].as_i64(), Some(1 - earned), "{v}");
}

on_each_backend!(an_order_closed_after_payment_takes_its_points_back);
/// Tmall closes an order refunded in full (交易关闭) instead of marking it refunded: pushed again
/// closed, the order gives back the points it earned.
async fn an_order_closed_after_payment_takes_its_points_back(backend: common::Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/members"),
        &key,
        Some(json!({"via": "phone", "identity": {"kind": "phone", "value": "13800000012"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["member"]["customer_id"].as_i64().expect("id");
    let order = |status: &str| {
        json!({"orders": [{"channel": "tmall", "order_no": "C-1", "status": status,
                           "ordered_at": siyu::platform::clock::now_ms() - 60_000, "amount": 30_000,
                           "identities": [{"kind": "phone", "value": "13800000012"}]}]})
    };
    let points = s.url(&format!("/api/v1/members/{id}/points"));
    let (st, _) = send(
        &c,
        M::POST,
        &s.url("/api/v1/orders"),
        &key,
        Some(order("paid")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert!(
        v["points"].as_i64().is_some_and(|p| p > 0),
        "{backend:?}: {v}"
    );
    let (st, _) = send(
        &c,
        M::POST,
        &s.url("/api/v1/orders"),
        &key,
        Some(order("交易关闭")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(&c, M::GET, &points, &key, None).await;
    assert_eq!(
        v["points"], 0,
        "{backend:?}: the closed order kept its points: {v}"
    );
}

/// The daily review over more members than one chunk gives each the tier its spend in the
/// window earns, computed here from the spends themselves; refunds, orders before the window and
/// other statuses do not count, and a member without orders drops to the lowest tier.
async fn a_review_of_many_members_gives_each_the_tier_its_spend_earns(backend: common::Backend) {
    use siyu::platform::db::{sql, values_placeholders};
    let tdb = common::TestDb::new(backend).await;
    let db = &tdb.db;
    let now = 1_800_000_000_000i64;
    let day = 86_400_000i64;
    db.execute(&sql(
        "INSERT INTO tenants (id, name, created_at) VALUES (1, 'brand', 0)",
    ))
    .await
    .expect("tenant");
    let settings = serde_json::json!({"tiers": {"basis": "spend", "window_days": 365, "tiers": [
        {"name": "银卡", "min": 0}, {"name": "金卡", "min": 100_000}, {"name": "黑金", "min": 500_000}]}});
    db.execute(
        &sql("INSERT INTO member_settings (tenant_id, settings, updated_at) VALUES (1, $1, 0)")
            .bind(settings.to_string()),
    )
    .await
    .expect("settings");
    const N: i64 = 2_600;
    // Spend in the window, by customer: a spread over every tier's edge; every tenth has no
    // orders at all.
    let spend = |c: i64| {
        if c % 10 == 0 {
            0
        } else {
            (c * 7_919) % 700_000
        }
    };
    let mut want = std::collections::BTreeMap::new();
    for chunk in (1..=N).collect::<Vec<_>>().chunks(500) {
        let mut tx = db.begin().await.expect("tx");
        let mut q = sql(format!(
            "INSERT INTO customers (id, tenant_id, created_at) VALUES {}",
            values_placeholders(chunk.len(), 3, 1)
        ));
        let mut m = sql(format!(
            "INSERT INTO members (tenant_id, customer_id, member_no, joined_via, joined_at, tier) VALUES {}",
            values_placeholders(chunk.len(), 6, 1)
        ));
        let with_orders = chunk.iter().filter(|&&c| c % 10 != 0).count();
        let mut o = sql(format!(
            "INSERT INTO orders (id, tenant_id, channel, order_no, customer_id, status, ordered_at, amount, refund_amount, source, updated_at) VALUES {}",
            values_placeholders(with_orders * 3, 11, 1)
        ));
        for &c in chunk {
            q.push_arg(c);
            q.push_arg(1i64);
            q.push_arg(0i64);
            m.push_arg(1i64);
            m.push_arg(c);
            m.push_arg(format!("M{c}"));
            m.push_arg("phone");
            m.push_arg(0i64);
            // Every member starts at the top: the review may move them down.
            m.push_arg("黑金");
            // Counted: a paid order of spend + 1,000 with 1,000 refunded. Not counted: an order
            // before the window and a cancelled one.
            let rows = [
                ("paid", now - 10 * day, spend(c) + 1_000, 1_000),
                ("paid", now - 400 * day, 900_000, 0),
                ("cancelled", now - day, 900_000, 0),
            ];
            let rows = if c % 10 == 0 { &rows[..0] } else { &rows[..] };
            for (k, &(status, at, amount, refund)) in rows.iter().enumerate() {
                o.push_arg(c * 10 + k as i64);
                o.push_arg(1i64);
                o.push_arg("tmall");
                o.push_arg(format!("O{c}-{k}"));
                o.push_arg(c);
                o.push_arg(status);
                o.push_arg(at);
                o.push_arg(amount);
                o.push_arg(refund);
                o.push_arg("test");
                o.push_arg(0i64);
            }
            let s = spend(c);
            want.insert(
                c,
                if s >= 500_000 {
                    "黑金"
                } else if s >= 100_000 {
                    "金卡"
                } else {
                    "银卡"
                },
            );
        }
        tx.execute(&q).await.expect("customers");
        tx.execute(&m).await.expect("members");
        tx.execute(&o).await.expect("orders");
        tx.commit().await.expect("commit");
    }
    let changes = siyu::convert::tiers::review(db, TenantId::new(1), None, true, now)
        .await
        .expect("review");
    let rows: Vec<(i64, Option<String>)> = db
        .fetch_all(&sql(
            "SELECT customer_id, tier FROM members ORDER BY customer_id",
        ))
        .await
        .expect("tiers");
    assert_eq!(rows.len(), N as usize);
    for (c, tier) in &rows {
        assert_eq!(
            tier.as_deref(),
            Some(want[c]),
            "{backend:?}: customer {c} spent {}",
            spend(*c)
        );
    }
    let moved = want.values().filter(|t| **t != "黑金").count();
    assert_eq!(changes.len(), moved, "{backend:?}");
}
on_each_backend!(a_review_of_many_members_gives_each_the_tier_its_spend_earns);

/// The daily expiry over more members than one transaction takes (500) expires each member's
/// unspent points exactly, as worked out here from the entries themselves, and a second run
/// finds nothing left.
async fn expiry_of_more_members_than_one_chunk_takes_each_ones_unspent_points(
    backend: common::Backend,
) {
    use siyu::platform::db::values_placeholders;
    let tdb = common::TestDb::new(backend).await;
    let db = &tdb.db;
    db.execute(&sql(
        "INSERT INTO tenants (id, name, created_at) VALUES (1, 'brand', 0)",
    ))
    .await
    .expect("tenant");
    const MEMBERS: i64 = 1_201;
    /// customer, delta, kind, ref, expires at, created at
    type Entry = (i64, i64, &'static str, Option<String>, Option<i64>, i64);
    // Each earned 100–106 points expiring at 1,000; every third spent 30 of them.
    let mut rows: Vec<Entry> = Vec::new();
    let mut want = 0i64;
    for c in 1..=MEMBERS {
        let earned = 100 + c % 7;
        rows.push((c, earned, "earn", Some(format!("o:{c}")), Some(1_000), 0));
        want += earned;
        if c % 3 == 0 {
            rows.push((c, -30, "redeem", None, None, 10));
            want -= 30;
        }
    }
    // Ids far above what the store's counter hands out, so the expiry's own entries fit.
    for (n, chunk) in rows.chunks(500).enumerate() {
        let mut q = sql(format!(
            "INSERT INTO points_entries (id, tenant_id, customer_id, delta, kind, reason, ref, expires_at, created_at) VALUES {}",
            values_placeholders(chunk.len(), 9, 1)
        ));
        for (i, (c, delta, kind, r, exp, at)) in chunk.iter().enumerate() {
            q.push_arg(10_000_000 + (n * 500 + i) as i64);
            q.push_arg(1i64);
            q.push_arg(*c);
            q.push_arg(*delta);
            q.push_arg(*kind);
            q.push_arg("test");
            q.push_arg(r.clone());
            q.push_arg(*exp);
            q.push_arg(*at);
        }
        db.execute(&q).await.expect("entries");
    }
    let expired = siyu::convert::points::expire_all(db, TenantId::new(1), 2_000)
        .await
        .expect("expire");
    assert_eq!(expired, want, "{backend:?}: the points expired");
    let balances: Vec<(i64, i64)> = db
        .fetch_all(&sql(
            "SELECT customer_id, CAST(SUM(delta) AS BIGINT) FROM points_entries WHERE tenant_id = 1 GROUP BY customer_id",
        ))
        .await
        .expect("balances");
    assert_eq!(balances.len() as i64, MEMBERS, "{backend:?}");
    assert!(
        balances.iter().all(|(_, b)| *b == 0),
        "{backend:?}: every balance is spent or expired: {:?}",
        balances.iter().find(|(_, b)| *b != 0)
    );
    let (entries,): (i64,) = db
        .fetch_one(&sql(
            "SELECT COUNT(*) FROM points_entries WHERE tenant_id = 1 AND kind = 'expire'",
        ))
        .await
        .expect("expiries");
    assert_eq!(entries, MEMBERS, "{backend:?}: one expiry entry per member");
    assert_eq!(
        siyu::convert::points::expire_all(db, TenantId::new(1), 2_000)
            .await
            .expect("again"),
        0,
        "{backend:?}: nothing is left to expire"
    );
}
on_each_backend!(expiry_of_more_members_than_one_chunk_takes_each_ones_unspent_points);
