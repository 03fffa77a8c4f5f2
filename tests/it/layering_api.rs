//! Layering over HTTP: tags, attributes, rule tags, segments with live counts, previews,
//! exports and snapshots, against the real server on every backend.

use crate::common;
use reqwest::StatusCode;
use serde_json::{Value, json};
use siyu::platform::access::Role;

use common::{Backend, TestServer, send, tenant_with_key};

fn now_ms() -> i64 {
    siyu::platform::clock::now_ms()
}

fn order(no: &str, phone: &str, amount: i64, days_ago: i64, channel: &str) -> Value {
    json!({
        "channel": channel, "order_no": no, "status": "paid",
        "ordered_at": now_ms() - days_ago * 86_400_000,
        "amount": amount,
        "identities": [{"kind": "phone", "value": phone}],
        "lines": [{"sku": "SK-1", "title": "精华", "category": "护肤", "quantity": 1, "price": amount}]
    })
}

async fn writes_change_segment_counts_at_once(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);

    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [
            order("T-1", "13800000001", 50_000, 120, "tmall"),
            order("T-2", "13800000001", 40_000, 100, "tmall"),
            order("T-3", "13800000002", 10_000, 5, "tmall"),
            order("J-1", "13800000003", 80_000, 10, "jd"),
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // The operator's audience: Tmall buyers with 2+ orders and AOV ≥ 300 yuan, silent
    // 90–180 days.
    let rule = json!({"and": [
        {"channel": ["tmall"]},
        {"orders": {"count": {"min": 2}, "aov": {"min": 30000}, "last_order_days": {"min": 90, "max": 180}}}
    ]});
    let (st, seg) = send(
        &c,
        M::POST,
        &url("/api/v1/segments"),
        &key,
        Some(json!({"name": "天猫高客单沉默", "rule": rule})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{seg}");
    assert_eq!(seg["count"], 1, "{seg}");
    let seg_id = seg["id"].as_i64().expect("id");

    // A new matching buyer counts at once.
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [
            order("T-4", "13800000004", 60_000, 150, "tmall"),
            order("T-5", "13800000004", 30_000, 95, "tmall"),
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/segments/{seg_id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(v["count"], 2, "{v}");
    // A fresh order makes customer 1 active again: out of the silent audience.
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": [order("T-6", "13800000001", 30_000, 1, "tmall")]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/segments/{seg_id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");

    // Tags: create, tag by an uploaded list (one bad line, one unknown phone), count.
    let (st, tag) = send(
        &c,
        M::POST,
        &url("/api/v1/tags"),
        &key,
        Some(json!({"group": "兴趣", "name": "敏感肌"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{tag}");
    let tag_id = tag["id"].as_i64().expect("tag id");
    let (st, v) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"list": "138 0000 0002\n+86 13800000003\nhello\n13900000000\n"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["tagged"], 2, "{v}");
    let missing = v["not_found"].as_array().expect("not_found");
    assert_eq!(missing.len(), 2, "{v}");
    assert_eq!(missing[0]["line"], 3);
    assert_eq!(missing[1]["reason"], "no such customer");
    let tag_rule = json!({"rule": {"tags": {"any": [tag_id]}}});
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(tag_rule.clone()),
    )
    .await;
    assert_eq!(v["count"], 2, "{v}");

    // An event: "viewed in the last 7 days" counts its customer at once.
    let ev_rule = json!({"rule": {"event": {"type": "page_view", "days": 7}}});
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(ev_rule.clone()),
    )
    .await;
    assert_eq!(v["count"], 0, "{v}");
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/events"),
        &key,
        Some(
            json!({"events": [{"id": "ev-1", "type": "page_view", "timestamp": now_ms(),
                                 "identities": [{"kind": "phone", "value": "13800000003"}]}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(ev_rule.clone()),
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");
    // An event from someone new creates a customer who counts too.
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/events"),
        &key,
        Some(
            json!({"events": [{"id": "ev-2", "type": "page_view", "timestamp": now_ms(),
                                 "identities": [{"kind": "phone", "value": "13800000009"}]}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(ev_rule.clone()),
    )
    .await;
    assert_eq!(v["count"], 2, "{v}");
    let prospects = json!({"rule": {"stage": ["prospect"]}});
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(prospects.clone()),
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");

    // An event that links two customers merges them: the newer one leaves every count and
    // its events count for the survivor.
    let everyone = json!({"rule": {"and": []}});
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(everyone.clone()),
    )
    .await;
    let before = v["count"].as_u64().expect("count");
    let (st, _) = send(
        &c,
        M::POST,
        &url("/api/v1/events"),
        &key,
        Some(
            json!({"events": [{"id": "ev-3", "type": "page_view", "timestamp": now_ms(),
                                 "identities": [{"kind": "phone", "value": "13800000002"},
                                                {"kind": "phone", "value": "13800000009"}]}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(everyone),
    )
    .await;
    assert_eq!(v["count"].as_u64(), Some(before - 1), "{v}");
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(prospects),
    )
    .await;
    assert_eq!(v["count"], 0, "{v}");
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(ev_rule),
    )
    .await;
    assert_eq!(v["count"], 2, "{v}");

    // A tag a saved segment uses cannot be deleted from under it.
    let (st, uses) = send(
        &c,
        M::POST,
        &url("/api/v1/segments"),
        &key,
        Some(json!({"name": "敏感肌人群", "rule": {"tags": {"any": [tag_id]}}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{uses}");
    let (st, v) = send(
        &c,
        M::DELETE,
        &url(&format!("/api/v1/tags/{tag_id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("敏感肌人群"),
        "{v}"
    );

    // Untagging changes the count at once; history records both.
    let cust3 = {
        let (_, v) = send(
            &c,
            M::GET,
            &url("/api/v1/customers?phone=13800000003"),
            &key,
            None,
        )
        .await;
        v["id"].as_i64().expect("id")
    };
    let (st, v) = send(
        &c,
        M::DELETE,
        &url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"customer_ids": [cust3]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(tag_rule),
    )
    .await;
    assert_eq!(v["count"], 1, "{v}");
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/customers/{cust3}/tags")),
        &key,
        None,
    )
    .await;
    let hist = v["history"].as_array().expect("history");
    assert_eq!(hist.len(), 2, "{v}");
    assert_eq!(hist[0]["action"], "remove");
    assert_eq!(hist[1]["action"], "add");
    assert!(
        hist[1]["source"]
            .as_str()
            .unwrap_or("")
            .starts_with("upload:"),
        "{v}"
    );

    // Attributes, and a rule tag that follows them.
    let (st, v) = send(
        &c,
        M::PUT,
        &url(&format!("/api/v1/customers/{cust3}/attributes")),
        &key,
        Some(json!({"city": "上海", "age": 31})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, rt) = send(
        &c,
        M::POST,
        &url("/api/v1/tags"),
        &key,
        Some(json!({"group": "规则", "name": "上海客户", "rule": {"attr": {"name": "city", "eq": "上海"}}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{rt}");
    assert_eq!(rt["customers"], 1, "{rt}");
    let rule_tag = rt["id"].as_i64().expect("id");
    let cust1 = {
        let (_, v) = send(
            &c,
            M::GET,
            &url("/api/v1/customers?phone=13800000001"),
            &key,
            None,
        )
        .await;
        v["id"].as_i64().expect("id")
    };
    send(
        &c,
        M::PUT,
        &url(&format!("/api/v1/customers/{cust1}/attributes")),
        &key,
        Some(json!({"city": "上海"})),
    )
    .await;
    let (_, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"tags": {"any": [rule_tag]}}})),
    )
    .await;
    assert_eq!(v["count"], 2, "{v}");
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/customers/{cust1}/tags")),
        &key,
        None,
    )
    .await;
    assert_eq!(v["history"][0]["source"], "rule", "{v}");
    // A rule tag's members cannot be set by hand.
    let (st, _) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/tags/{rule_tag}/customers")),
        &key,
        Some(json!({"customer_ids": [cust3]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Preview and export mask phones; snapshots freeze members.
    let (st, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/segments/{seg_id}/preview")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sample"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["sample"][0]["phone"], "138****0004", "{v}");
    let csv = c
        .get(url(&format!("/api/v1/segments/{seg_id}/export")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    assert!(csv.contains("138****0004"), "{csv}");
    assert!(!csv.contains("13800000004"), "{csv}");
    assert!(csv.contains("900.00"), "spend in yuan: {csv}");
    let (st, snap) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/segments/{seg_id}/snapshots")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{snap}");
    assert_eq!(snap["size"], 1);
    let (st, v) = send(
        &c,
        M::GET,
        &url(&format!(
            "/api/v1/segments/{seg_id}/snapshots/{}",
            snap["id"]
        )),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["customer_ids"].as_array().map(Vec::len), Some(1));

    // RFM distribution covers every buyer.
    let (_, v) = send(&c, M::GET, &url("/api/v1/rfm"), &key, None).await;
    let classes: u64 = v["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["customers"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(classes, 4, "{v}");
    assert_eq!(v["classes"][0]["zh"], "重要价值客户");

    // Bad rules are named by place and reason.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"and": [{"orders": {"count": {"min": 3, "max": 1}}}]}})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("$.and[0].orders.count"), "{msg}");
}
on_each_backend!(writes_change_segment_counts_at_once);

/// A list longer than the server takes is refused whole, naming the field, in the API and in
/// the console; a large one that fits is looked up in batches and tagged a chunk at a time.
async fn long_lists_are_refused_and_large_ones_tag_in_chunks(backend: common::Backend) {
    use reqwest::Method as M;
    use siyu::know::tags::MOST_LISTED;
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let c = reqwest::Client::new();
    let ids = common::make_customers(&s, &key, 7, 6_000).await;
    let (st, tag) = send(
        &c,
        M::POST,
        &s.url("/api/v1/tags"),
        &key,
        Some(json!({"group": "活动", "name": "直播间"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{tag}");
    let tag_id = tag["id"].as_i64().expect("tag id");
    let members = || async {
        let (n,): (i64,) = s
            .db()
            .fetch_one(
                &siyu::platform::db::sql("SELECT count(*) FROM customer_tags WHERE tag_id = $1")
                    .bind(tag_id),
            )
            .await
            .expect("count");
        n
    };

    let too_long = "13900000000\n".repeat(MOST_LISTED + 1);
    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"list": too_long})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{backend:?}: {v}");
    assert!(v.to_string().contains("list: at most"), "{v}");
    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"customer_ids": vec![1; MOST_LISTED + 1]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("customer_ids: at most"), "{v}");
    assert_eq!(members().await, 0, "nothing of a refused list is tagged");

    // 6,000 numbers (the phones `make_customers` gave), one unknown and one by id: more than
    // one write chunk.
    let mut list: Vec<String> = (0..6_000).map(|i| format!("13907{i:06}")).collect();
    list.push("13700000000".into());
    list.push(format!("#{}", ids[0]));
    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"list": list.join("\n")})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    assert_eq!(v["tagged"], 6_000, "{v}");
    assert_eq!(v["not_found"][0]["line"], 6_001, "{v}");
    assert_eq!(v["not_found"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(members().await, 6_000);
    let (st, v) = send(
        &c,
        M::DELETE,
        &s.url(&format!("/api/v1/tags/{tag_id}/customers")),
        &key,
        Some(json!({"customer_ids": ids})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["untagged"], 6_000, "{v}");
    assert_eq!(members().await, 0);

    // The console says it in Chinese and tags nothing.
    siyu::platform::access::create_user(
        s.db(),
        tenant,
        "ops",
        "运营",
        "ops-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let browser = common::no_redirects();
    let cookie = common::console_session(&browser, &s, "brand", "ops", "ops-password").await;
    let r = browser
        .post(s.url("/console/tags/upload"))
        .header("cookie", &cookie)
        .form(&[("tag", tag_id.to_string()), ("list", too_long)])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.expect("page");
    assert!(page.contains("名单超过 100000 行"), "{page}");
    assert_eq!(members().await, 0);

    // A tag deleted meanwhile: said in Chinese, and the list typed is back in its box.
    let r = browser
        .post(s.url("/console/tags/upload"))
        .header("cookie", &cookie)
        .form(&[("tag", "999999"), ("list", "13800138000\n#42")])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page = r.text().await.expect("page");
    assert!(page.contains("所选标签已不存在"), "{page}");
    assert!(page.contains("13800138000\n#42</textarea>"), "{page}");
}
on_each_backend!(long_lists_are_refused_and_large_ones_tag_in_chunks);

/// A segment larger than one piece of the export is sent as it is read (no length known in
/// advance), every member once in id order after the BOM and the header; the console's export
/// gives the same rows with masked phones.
async fn a_large_export_streams_every_member_once(backend: common::Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let ids = common::make_customers(&s, &key, 5, 2_500).await;
    let (st, seg) = common::post(
        &s,
        &key,
        "/api/v1/segments",
        json!({"name": "天猫买家", "rule": {"channel": ["tmall"]}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{seg}");
    let r = reqwest::Client::new()
        .get(s.url(&format!(
            "/api/v1/segments/{}/export?unmask=true",
            seg["id"]
        )))
        .bearer_auth(&key)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.content_length(), None, "streamed, not built whole");
    let body = r.bytes().await.expect("body");
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "a BOM for Excel");
    let text = std::str::from_utf8(&body[3..]).expect("utf-8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,name,phone,stage,rfm_class,orders,spend_yuan,last_order")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let got: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("id")).collect();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(got, want, "{backend:?}: every member once, in order");
    // `make_customers` gave customer i the phone 13905{i:06}, in the order of `ids`.
    let phone_of: std::collections::HashMap<i64, String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("13905{i:06}")))
        .collect();
    for r in &rows {
        let id: i64 = r[0].parse().expect("id");
        assert_eq!(r[2], phone_of[&id], "{backend:?}");
    }
}
on_each_backend!(a_large_export_streams_every_member_once);
