//! The segment builder's pickers on every backend: categories and SKUs (and member tiers) come from
//! the brand's own data with how many customers each names, the most bought first; a category
//! picked counts the same as the API's rule.

use crate::common;
use reqwest::{Method as M, StatusCode};
use serde_json::json;
use siyu::platform::access::{self, Role};

use common::{
    Backend, TestServer, console_page, console_session, no_redirects, send, tenant_with_key,
};

async fn the_builder_offers_the_brands_categories_and_skus(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(
        s.db(),
        tenant,
        "ops",
        "ops",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let ops = console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    // Three buyers of 绿茶 (one of them also of 花茶), one of 花茶 alone.
    let line =
        |sku: &str, cat: &str| json!({"sku": sku, "category": cat, "quantity": 1, "price": 5_000});
    let orders: Vec<_> = [
        ("B-1", "13900000001", vec![line("LJ-250", "绿茶"), line("MH-100", "花茶")]),
        ("B-2", "13900000002", vec![line("LJ-250", "绿茶")]),
        ("B-3", "13900000003", vec![line("BLC-50", "绿茶")]),
        ("B-4", "13900000004", vec![line("MH-100", "花茶")]),
    ]
    .into_iter()
    .map(|(no, phone, lines)| {
        json!({"channel": "tmall", "order_no": no, "status": "completed", "ordered_at": 1_760_000_000_000i64,
               "amount": 10_000, "identities": [{"kind": "phone", "value": phone}], "lines": lines})
    })
    .collect();
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/orders"),
        &key,
        Some(json!({"orders": orders})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let page = console_page(&c, &s, &ops, "/console/segments/new").await;
    let start = page
        .find("<script id=\"builder-options\" type=\"application/json\">")
        .expect("options")
        + "<script id=\"builder-options\" type=\"application/json\">".len();
    let end = start + page[start..].find("</script>").expect("end");
    let opts: serde_json::Value = serde_json::from_str(&page[start..end]).expect("json");
    assert_eq!(
        opts["categories"],
        json!([{"value": "绿茶", "label": "绿茶（3）"}, {"value": "花茶", "label": "花茶（2）"}])
    );
    assert_eq!(
        opts["skus"][0],
        json!({"value": "LJ-250", "label": "LJ-250（2）"})
    );
    assert_eq!(opts["skus"].as_array().expect("skus").len(), 3);
    assert!(
        opts["labels"]["sku"]
            .as_str()
            .is_some_and(|l| l.contains("SKU"))
    );

    // What the picker names counts as the rule does.
    let (st, n) = send(
        &c,
        M::POST,
        &s.url("/api/v1/audience/count"),
        &key,
        Some(json!({"rule": {"bought": {"category": ["绿茶"]}}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{n}");
    assert_eq!(n["count"], 3);
}
on_each_backend!(the_builder_offers_the_brands_categories_and_skus);
