//! Ids in a request that name another tenant's rows (ids are small shared counters, easy to
//! guess) are refused, never stored in the caller's rows.

use crate::common;
use common::{Backend, TestServer, make_customers, send, tenant_with_key};
use reqwest::{Method as M, StatusCode};
use serde_json::json;
use siyu::platform::access::Role;
use siyu::platform::db::sql;

async fn coupons_and_messages_take_only_the_tenants_own_customers(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand-a", Role::Admin).await;
    let (_, other) = tenant_with_key(s.db(), "brand-b", Role::Admin).await;
    let mine = make_customers(&s, &key, 1, 1).await;
    let theirs = make_customers(&s, &other, 2, 1).await;
    let c = reqwest::Client::new();
    let (st, t) = send(
        &c,
        M::POST,
        &s.url("/api/v1/coupon-templates"),
        &key,
        Some(json!({"name": "满100减10", "kind": "amount_off", "value": 1_000, "valid_days": 7, "total": 100})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let template = t["id"].as_i64().expect("template");

    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/coupon-templates/{template}/issue")),
        &key,
        Some(json!({"customer_ids": [mine[0], theirs[0], 987_654_321]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    assert_eq!(v["granted"], 1, "{v}");
    let refused: Vec<i64> = v["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .filter(|r| r["reason"] == "no such customer")
        .filter_map(|r| r["customer_id"].as_i64())
        .collect();
    assert_eq!(refused, [theirs[0], 987_654_321], "{v}");
    let (stored,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM coupons WHERE customer_id = $1").bind(theirs[0]))
        .await
        .expect("coupons");
    assert_eq!(
        stored, 0,
        "{backend:?}: no coupon points at the other brand's customer"
    );

    let too_many: Vec<i64> = (0..10_001).collect();
    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/coupon-templates/{template}/issue")),
        &key,
        Some(json!({ "customer_ids": too_many })),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("customer_ids")),
        "{v}"
    );

    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/messages"),
        &key,
        Some(json!({"phone": "13912345678", "customer_id": theirs[0],
                    "content": "【品牌甲】新品上市，拒收请回复R"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{backend:?}: {v}");
    let (queued,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM outbox"))
        .await
        .expect("outbox");
    assert_eq!(queued, 0);
}
on_each_backend!(coupons_and_messages_take_only_the_tenants_own_customers);
