//! The HTTP API against the real server on a random port, on every backend.

use crate::common;
use reqwest::StatusCode;
use serde_json::{Value, json};
use siyu::platform::access::Role;

use common::{Backend, TestServer, tenant_with_key};

fn now_ms() -> i64 {
    siyu::platform::clock::now_ms()
}

async fn post(c: &reqwest::Client, url: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: &str, key: &str) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(key).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn order(no: &str, phone: &str, amount: i64, status: &str) -> Value {
    json!({
        "channel": "mall", "order_no": no, "status": status, "ordered_at": now_ms() - 3_600_000,
        "amount": amount, "refund_amount": if status == "refunded" { amount } else { 0 },
        "identities": [{"kind": "phone", "value": phone}, {"kind": "openid", "app_id": "wxmall", "value": format!("o-{no}")}],
        "lines": [{"sku": "SK-101", "title": "焕亮精华液", "category": "护肤", "quantity": 1, "price": amount}]
    })
}

async fn a_tenant_sees_and_changes_only_its_own_data(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key_a) = tenant_with_key(s.db(), "brand-a", Role::Admin).await;
    let (_, key_b) = tenant_with_key(s.db(), "brand-b", Role::Admin).await;

    let (st, v) = post(
        &c,
        &s.url("/api/v1/orders"),
        &key_a,
        json!({"orders": [order("A-1", "13800138000", 9_900, "paid")]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &key_a).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let id_a = v["id"].as_i64().expect("id");

    // B cannot read A's customer by id, phone, identity or list.
    let (st, _) = get(&c, &s.url(&format!("/api/v1/customers/{id_a}")), &key_b).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{backend:?}");
    let (st, _) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &key_b).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = get(
        &c,
        &s.url("/api/v1/customers?identity=openid:wxmall/o-A-1"),
        &key_b,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = get(&c, &s.url("/api/v1/customers"), &key_b).await;
    assert_eq!(list["total"], 0);

    // B writing the same order number and phone creates B's own records; A's are untouched.
    let (st, v) = post(
        &c,
        &s.url("/api/v1/orders"),
        &key_b,
        json!({"orders": [order("A-1", "13800138000", 1, "refunded")]}),
    )
    .await;
    assert_eq!(
        (st, v["imported"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let (_, a) = get(&c, &s.url(&format!("/api/v1/customers/{id_a}")), &key_a).await;
    assert_eq!(
        (a["order_count"].as_i64(), a["total_spend"].as_i64()),
        (Some(1), Some(9_900)),
        "{a}"
    );
    let (_, b) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &key_b).await;
    assert_ne!(b["id"], a["id"]);
    assert_eq!(b["order_count"], 0);

    // Events are scoped the same way.
    let ev = json!({"events": [{"id": "e-1", "type": "page_view", "timestamp": now_ms(), "identities": [{"kind": "phone", "value": "13800138000"}]}]});
    let (st, _) = post(&c, &s.url("/api/v1/events"), &key_b, ev.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, a) = get(&c, &s.url(&format!("/api/v1/customers/{id_a}")), &key_a).await;
    assert_eq!(
        a["recent_events"].as_array().map(Vec::len),
        Some(0),
        "B's event reached A: {a}"
    );
    // The same event id in A is A's own, not a duplicate of B's.
    let (_, v) = post(&c, &s.url("/api/v1/events"), &key_a, ev).await;
    assert_eq!(v["accepted"], 1, "{v}");
}
on_each_backend!(a_tenant_sees_and_changes_only_its_own_data);

async fn keys_and_roles_are_enforced(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (tenant, admin) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let viewer = siyu::platform::access::create_api_key(s.db(), tenant, "viewer", Role::Viewer)
        .await
        .expect("key");
    let operator = siyu::platform::access::create_api_key(s.db(), tenant, "ops", Role::Operator)
        .await
        .expect("key");

    let r = c.get(s.url("/api/v1/customers")).send().await.expect("req");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (st, v) = get(&c, &s.url("/api/v1/customers"), "sy_not-a-key").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (st, _) = post(
        &c,
        &s.url("/api/v1/orders"),
        &viewer,
        json!({"orders": [order("V-1", "13800138000", 1, "paid")]}),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, _) = post(
        &c,
        &s.url("/api/v1/orders"),
        &operator,
        json!({"orders": [order("O-1", "13800138000", 100, "paid")]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Phones are masked for everyone by default, shown in full only to admins who ask.
    let (_, v) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &operator).await;
    let phone = v["identities"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["kind"] == "phone"))
        .cloned()
        .expect("phone identity");
    assert_eq!(phone["value"], "138****8000");
    let id = v["id"].as_i64().expect("id");
    let (st, _) = get(
        &c,
        &s.url(&format!("/api/v1/customers/{id}?unmask=true")),
        &operator,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = get(
        &c,
        &s.url(&format!("/api/v1/customers/{id}?unmask=true")),
        &admin,
    )
    .await;
    assert!(v["identities"].to_string().contains("13800138000"), "{v}");
    let (_, v) = get(&c, &s.url("/api/v1/customers?per_page=10"), &admin).await;
    assert_eq!(v["customers"][0]["phone"], "138****8000", "{v}");
}
on_each_backend!(keys_and_roles_are_enforced);

async fn events_are_idempotent_and_bad_items_are_named(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let t = now_ms() - 60_000;
    let batch = json!({"events": [
        {"id": "e-1", "type": "page_view", "timestamp": t, "channel": "mall", "touchpoint": "sms",
         "identities": [{"kind": "phone", "value": "+86 139-0013-9000"}], "properties": {"path": "/p/1"}},
        {"id": "e-2", "type": "page_view", "timestamp": t / 1000, "identities": []},
        {"id": "e-3", "type": "add_to_cart", "timestamp": "2024-06-18T10:01:02+08:00",
         "identities": [{"kind": "phone", "value": "12345"}]},
        {"id": "e-4", "type": "bad type!", "timestamp": t},
        {"id": "e-5", "type": "add_to_cart", "timestamp": "2024-06-18T10:01:02+08:00",
         "identities": [{"kind": "unionid", "value": "u-1"}, {"kind": "phone", "value": "13900139000"}]},
        {"oops": true},
        {"id": "e-1", "type": "page_view", "timestamp": t, "identities": [{"kind": "phone", "value": "13900139000"}]}
    ]});
    let (st, v) = post(&c, &s.url("/api/v1/events"), &key, batch.clone()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(2), Some(1)),
        "{v}"
    );
    let rejected: Vec<(i64, String)> = v["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap_or(-1),
                r["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "timestamp".into()),
            (2, "identities[0]".into()),
            (3, "type".into()),
            (5, String::new())
        ],
        "{v}"
    );
    // The same batch again: nothing new.
    let (st, v) = post(&c, &s.url("/api/v1/events"), &key, batch).await;
    assert_eq!(
        (st, v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (StatusCode::ACCEPTED, Some(0), Some(3)),
        "{v}"
    );

    // Both stored events belong to the customer the phone and unionid identify.
    let (_, cust) = get(&c, &s.url("/api/v1/customers?identity=unionid:u-1"), &key).await;
    let events = cust["recent_events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{cust}");
    assert!(events.iter().any(|e| e["touchpoint"] == "sms"));

    // Batches are bounded; malformed bodies get a JSON error.
    let big: Vec<Value> = (0..1001)
        .map(|i| json!({"id": format!("b-{i}"), "type": "x", "timestamp": t}))
        .collect();
    let (st, v) = post(&c, &s.url("/api/v1/events"), &key, json!({"events": big})).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let r = c
        .post(s.url("/api/v1/events"))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.expect("json error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not JSON")
    );
    let (st, v) = post(
        &c,
        &s.url("/api/v1/events"),
        &key,
        json!({"events": [{"id": "z", "type": "x", "timestamp": 1}]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "all invalid is a 400: {v}");
}
on_each_backend!(events_are_idempotent_and_bad_items_are_named);

async fn orders_update_on_repush_and_the_360_adds_up(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let batch = json!({"orders": [
        order("M-1", "13800138000", 29_900, "paid"),
        order("M-2", "138 0013 8000", 10_000, "completed"),
        {"channel": "mall", "order_no": "M-3", "ordered_at": now_ms(), "amount": -1, "identities": [{"kind":"phone","value":"13800138000"}]},
        {"channel": "mall", "order_no": "M-4", "ordered_at": now_ms(), "amount": 5, "identities": []},
        {"channel": "Mall!", "order_no": "M-5", "ordered_at": now_ms(), "amount": 5, "identities": [{"kind":"phone","value":"13800138000"}]}
    ]});
    let (st, v) = post(&c, &s.url("/api/v1/orders"), &key, batch).await;
    assert_eq!(
        (st, v["imported"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let fields: Vec<&str> = v["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .filter_map(|r| r["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["amount", "identities", "channel"]);

    let (_, cust) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &key).await;
    assert_eq!(
        (
            cust["order_count"].as_i64(),
            cust["total_spend"].as_i64(),
            cust["average_order_value"].as_i64()
        ),
        (Some(2), Some(39_900), Some(19_950)),
        "{cust}"
    );
    assert_eq!(cust["channels"], json!(["mall"]));
    // Two openids and one phone: one person.
    assert_eq!(
        cust["identities"].as_array().map(Vec::len),
        Some(3),
        "{cust}"
    );

    // The mall refunds M-1: pushing it again updates it.
    let (_, v) = post(
        &c,
        &s.url("/api/v1/orders"),
        &key,
        json!({"orders": [order("M-1", "13800138000", 29_900, "refunded")]}),
    )
    .await;
    assert_eq!(
        (v["imported"].as_i64(), v["updated"].as_i64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let id = cust["id"].as_i64().expect("id");
    let (_, cust) = get(&c, &s.url(&format!("/api/v1/customers/{id}")), &key).await;
    assert_eq!(
        (cust["order_count"].as_i64(), cust["total_spend"].as_i64()),
        (Some(1), Some(10_000)),
        "{cust}"
    );
    assert_eq!(cust["recent_orders"].as_array().map(Vec::len), Some(2));
    let (st, _) = get(&c, &s.url("/api/v1/customers/abc"), &key).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
on_each_backend!(orders_update_on_repush_and_the_360_adds_up);

async fn a_replayed_event_changes_nothing_and_a_status_push_keeps_lines(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let ev = |phone: &str| json!({"events": [{"id": "same", "type": "x", "timestamp": now_ms(), "identities": [{"kind": "phone", "value": phone}, {"kind": "unionid", "value": "u-9"}]}]});
    post(&c, &s.url("/api/v1/events"), &key, ev("13800138000")).await;
    post(
        &c,
        &s.url("/api/v1/orders"),
        &key,
        json!({"orders": [order("P-1", "13900139000", 100, "paid")]}),
    )
    .await;
    // Replaying event "same" with another phone must not merge the order's buyer in.
    let (_, v) = post(&c, &s.url("/api/v1/events"), &key, ev("13900139000")).await;
    assert_eq!(v["duplicates"], 1);
    let (_, a) = get(&c, &s.url("/api/v1/customers?phone=13800138000"), &key).await;
    let (_, b) = get(&c, &s.url("/api/v1/customers?phone=13900139000"), &key).await;
    assert_ne!(
        a["id"], b["id"],
        "{backend:?}: a duplicate event merged two customers"
    );

    // A status push without lines keeps the order's items.
    let mut push = order("P-1", "13900139000", 100, "completed");
    push["lines"] = json!([]);
    post(
        &c,
        &s.url("/api/v1/orders"),
        &key,
        json!({"orders": [push]}),
    )
    .await;
    let (_, b) = get(&c, &s.url("/api/v1/customers?phone=13900139000"), &key).await;
    assert_eq!(b["recent_orders"][0]["status"], "completed");
    assert_eq!(b["recent_orders"][0]["item_count"], 1, "{b}");
}
on_each_backend!(a_replayed_event_changes_nothing_and_a_status_push_keeps_lines);

async fn concurrent_batches_with_overlapping_ids_store_each_event_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let (_, other_key) = tenant_with_key(s.db(), "other", Role::Admin).await;
    let t = now_ms();
    let mut tasks = Vec::new();
    for k in 0..20u64 {
        let (c, url) = (c.clone(), s.url("/api/v1/events"));
        // Every other request goes to a second tenant, so groups mix tenants.
        let key = if k % 2 == 0 {
            key.clone()
        } else {
            other_key.clone()
        };
        tasks.push(tokio::spawn(async move {
            let events: Vec<Value> = (k * 25..k * 25 + 50)
                .map(|n| json!({"id": format!("ov-{n}"), "type": "visit", "timestamp": t,
                                "identities": [{"kind": "phone", "value": format!("137{:08}", n % 97)}]}))
                .collect();
            let (st, v) = post(&c, &url, &key, json!({"events": events})).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{v}");
            (k % 2, v["accepted"].as_u64().unwrap_or(0), v["duplicates"].as_u64().unwrap_or(0))
        }));
    }
    let mut per_tenant = [(0u64, 0u64); 2];
    for t in tasks {
        let (which, a, d) = t.await.expect("task");
        per_tenant[which as usize].0 += a;
        per_tenant[which as usize].1 += d;
    }
    // Tenant A got requests k = 0, 2, …, 18: ids 0..50, 50..100, …: 500 distinct, no overlap.
    assert_eq!(per_tenant[0], (500, 0), "{backend:?}");
    // Tenant B got k = 1, 3, …, 19: ids 25..75, 75..125, …: also disjoint.
    assert_eq!(per_tenant[1], (500, 0), "{backend:?}");
    let (n,): (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql("SELECT COUNT(*) FROM events WHERE tenant_id = $1")
                .bind(tenant),
        )
        .await
        .expect("count");
    assert_eq!(n, 500);

    // Ten requests at once to tenant A whose ids overlap by half (1000..1050, 1025..1075, …)
    // and repeat ids of the first round: each id is stored once, whichever group it lands in.
    let mut tasks = Vec::new();
    for k in 0..10u64 {
        let (c, url, key) = (c.clone(), s.url("/api/v1/events"), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut events: Vec<Value> = (1000 + k * 25..1000 + k * 25 + 50)
                .map(|n| json!({"id": format!("ov-{n}"), "type": "visit", "timestamp": t}))
                .collect();
            events.push(json!({"id": format!("ov-{}", k * 50), "type": "visit", "timestamp": t}));
            let (_, v) = post(&c, &url, &key, json!({"events": events})).await;
            (
                v["accepted"].as_u64().unwrap_or(0),
                v["duplicates"].as_u64().unwrap_or(0),
            )
        }));
    }
    let (mut a, mut d) = (0, 0);
    for t in tasks {
        let (x, y) = t.await.expect("task");
        a += x;
        d += y;
    }
    // 1000..1275 are 275 new ids among 500 sent; the 10 first-round ids are duplicates.
    assert_eq!((a, d), (275, 235), "{backend:?}");
}
on_each_backend!(concurrent_batches_with_overlapping_ids_store_each_event_once);
