//! Coupons over HTTP on every backend: a one-unit coupon is granted once under 64 concurrent
//! claims, a code is redeemed once under concurrent redemptions, thresholds, channels and
//! per-customer limits hold, a refund returns the coupon, and a snapshot can be issued to.

use crate::common;
use reqwest::StatusCode;
use serde_json::{Value, json};
use siyu::platform::access::Role;

use common::{Backend, TestServer, send, tenant_with_key};

async fn coupons_never_exceed_their_limits(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let url = |p: &str| s.url(p);

    // 64 customers.
    let orders: Vec<Value> = (0..64)
        .map(|i| {
            json!({"channel": "tmall", "order_no": format!("T-{i}"), "status": "paid",
                   "ordered_at": 1_700_000_000_000i64, "amount": 10_000,
                   "identities": [{"kind": "phone", "value": format!("1380000{i:04}")}]})
        })
        .collect();
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/orders"),
        &key,
        Some(json!({"orders": orders})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = send(
        &c,
        M::GET,
        &url("/api/v1/customers?per_page=100"),
        &key,
        None,
    )
    .await;
    let ids: Vec<i64> = v["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 64);

    // A bad template names its field.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/coupon-templates"),
        &key,
        Some(
            json!({"name": "坏券", "kind": "amount_off", "value": 0, "valid_days": 7, "total": 1}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("value"),
        "{v}"
    );

    // One unit, 64 customers claiming at once: exactly one gets it.
    let (st, one) = send(
        &c,
        M::POST,
        &url("/api/v1/coupon-templates"),
        &key,
        Some(json!({"name": "限量1张", "kind": "amount_off", "value": 5_000, "valid_days": 7, "total": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{one}");
    let claim = url(&format!("/api/v1/coupon-templates/{}/claim", one["id"]));
    let mut tasks = Vec::new();
    for id in &ids {
        let (c, claim, key, id) = (c.clone(), claim.clone(), key.clone(), *id);
        tasks.push(tokio::spawn(async move {
            send(&c, M::POST, &claim, &key, Some(json!({"customer_id": id})))
                .await
                .0
        }));
    }
    let mut granted = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::CREATED => granted += 1,
            StatusCode::CONFLICT => {}
            other => panic!("{backend:?}: unexpected {other}"),
        }
    }
    assert_eq!(granted, 1, "{backend:?}: a one-unit coupon is granted once");

    // 满300减30 in tmall and the store, one per customer.
    let (st, t) = send(
        &c,
        M::POST,
        &url("/api/v1/coupon-templates"),
        &key,
        Some(
            json!({"name": "满300减30", "kind": "amount_off", "value": 3_000, "threshold": 30_000,
                    "valid_days": 30, "total": 50, "channels": ["tmall", "store"]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let claim = url(&format!("/api/v1/coupon-templates/{}/claim", t["id"]));
    let (st, coupon) = send(
        &c,
        M::POST,
        &claim,
        &key,
        Some(json!({"customer_id": ids[0]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{coupon}");
    let code = coupon["code"].as_str().expect("code").to_owned();
    let (st, v) = send(
        &c,
        M::POST,
        &claim,
        &key,
        Some(json!({"customer_id": ids[0]})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 1"),
        "{v}"
    );

    let redeem = url("/api/v1/coupons/redeem");
    let (st, v) = send(
        &c,
        M::POST,
        &redeem,
        &key,
        Some(json!({"code": code, "order_ref": "o-1", "amount": 20_000, "channel": "tmall"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("threshold"),
        "{v}"
    );
    let (st, v) = send(
        &c,
        M::POST,
        &redeem,
        &key,
        Some(json!({"code": code, "order_ref": "o-1", "amount": 35_000, "channel": "jd"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    // 16 tills type the same code at once: one redemption.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, redeem, key, code) = (c.clone(), redeem.clone(), key.clone(), code.to_lowercase());
        tasks.push(tokio::spawn(async move {
            send(&c, M::POST, &redeem, &key, Some(json!({"code": code, "order_ref": format!("pos-{i}"), "amount": 35_000, "channel": "store", "store_id": "SH-01"}))).await
        }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let (st, v) = t.await.expect("task");
        match st {
            StatusCode::OK => ok.push(v),
            StatusCode::CONFLICT => {}
            other => panic!("{backend:?}: unexpected {other} {v}"),
        }
    }
    assert_eq!(ok.len(), 1, "{backend:?}: a code is redeemed once");
    assert_eq!(ok[0]["discount"], 3_000);
    let used_on = ok[0]["order_ref"].as_str().expect("order").to_owned();

    // A refund returns the coupon while it is valid; it can be used again.
    let (st, v) = send(
        &c,
        M::POST,
        &url("/api/v1/coupons/refund"),
        &key,
        Some(json!({"order_ref": used_on})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["returned"], 1);
    let (st, v) = send(
        &c,
        M::POST,
        &redeem,
        &key,
        Some(json!({"code": code, "order_ref": "o-2", "amount": 40_000, "channel": "tmall"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Issue to a segment snapshot: everyone not holding one yet, within the total.
    let (_, seg) = send(
        &c,
        M::POST,
        &url("/api/v1/segments"),
        &key,
        Some(json!({"name": "全部", "rule": {"and": []}})),
    )
    .await;
    let (_, snap) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/segments/{}/snapshots", seg["id"])),
        &key,
        None,
    )
    .await;
    let (st, v) = send(
        &c,
        M::POST,
        &url(&format!("/api/v1/coupon-templates/{}/issue", t["id"])),
        &key,
        Some(json!({"snapshot_id": snap["id"]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // 50 in all, 1 claimed before: 49 granted; the claimer and 14 beyond the total refused.
    assert_eq!(v["granted"], 49, "{v}");
    assert_eq!(v["refused"].as_array().map(Vec::len), Some(15), "{v}");

    let (_, v) = send(&c, M::GET, &url("/api/v1/coupon-templates"), &key, None).await;
    let report = v["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|x| x["template"]["id"] == t["id"])
        .map(|x| x["report"].clone())
        .expect("report");
    assert_eq!(report["issued"], 50, "{report}");
    assert_eq!(report["redeemed"], 1, "{report}");
    assert_eq!(report["order_gmv"], 40_000, "{report}");
    assert_eq!(report["discount"], 3_000, "{report}");
    let (_, v) = send(
        &c,
        M::GET,
        &url(&format!("/api/v1/customers/{}/coupons", ids[0])),
        &key,
        None,
    )
    .await;
    assert_eq!(v["coupons"][0]["status"], "redeemed", "{v}");
}
on_each_backend!(coupons_never_exceed_their_limits);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_claims_a_coupon_from_their_own_page() {
    use reqwest::Method as M;
    let s = TestServer::start(common::Backend::Sqlite).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = common::make_customers(&s, &key, 8, 3).await;
    let c = reqwest::Client::new();
    let (st, t) = send(
        &c,
        M::POST,
        &s.url("/api/v1/coupon-templates"),
        &key,
        Some(
            json!({"name": "新人券", "kind": "amount_off", "value": 1_000, "threshold": 5_000,
                    "valid_days": 7, "total": 2, "claim_via": "h5"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let claim = s.url(&format!("/h5/v1/coupon-templates/{}/claim", t["id"]));
    let page = s.url(&format!("/h5/v1/coupon-templates/{}", t["id"]));
    let tok: Vec<String> = customers
        .iter()
        .map(|&cu| common::customer_token(&s, tenant, cu))
        .collect();
    let (st, v) = common::send_as_customer(&c, M::POST, &claim, &tok[0], None).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["customer_id"].as_i64(), Some(customers[0]));
    assert_eq!(v["source"], "h5");
    let (st, v) = common::send_as_customer(&c, M::POST, &claim, &tok[0], None).await;
    assert_eq!(st, StatusCode::CONFLICT, "one each: {v}");
    let (st, v) = common::send_as_customer(&c, M::GET, &page, &tok[0], None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (v["left"].as_i64(), v["mine"].as_array().map(Vec::len)),
        (Some(1), Some(1))
    );
    let (st, _) = common::send_as_customer(&c, M::POST, &claim, &tok[1], None).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = common::send_as_customer(&c, M::POST, &claim, &tok[2], None).await;
    assert_eq!(st, StatusCode::CONFLICT, "the total is 2: {v}");
    let r = c.post(&claim).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A template made through the API; its id.
async fn template(s: &TestServer, key: &str, body: Value) -> i64 {
    let (st, t) = send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &s.url("/api/v1/coupon-templates"),
        key,
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    t["id"].as_i64().expect("id")
}

/// Claims a coupon of `template` for `customer` through the API; its code.
async fn claimed(s: &TestServer, key: &str, template: i64, customer: i64) -> String {
    let (st, v) = send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &s.url(&format!("/api/v1/coupon-templates/{template}/claim")),
        key,
        Some(json!({ "customer_id": customer })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["code"].as_str().expect("code").to_owned()
}

/// Redeems `code` on an order; the status and the discount given.
async fn redeem(
    s: &TestServer,
    key: &str,
    code: &str,
    order: &str,
    amount: i64,
) -> (StatusCode, i64) {
    let (st, v) = send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &s.url("/api/v1/coupons/redeem"),
        key,
        Some(json!({"code": code, "order_ref": order, "amount": amount, "channel": "tmall"})),
    )
    .await;
    (st, v["discount"].as_i64().unwrap_or(0))
}

on_each_backend!(stacked_coupons_never_take_more_than_the_order);
/// Three "¥50 off" coupons on a ¥100 order take ¥100 at most: each applies to what is left.
/// Once a coupon that does not stack is on an order, no other coupon joins it.
async fn stacked_coupons_never_take_more_than_the_order(backend: common::Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let buyer = common::make_customers(&s, &key, 7, 1).await[0];
    let fifty = template(
        &s,
        &key,
        json!({"name": "立减50", "kind": "amount_off", "value": 5_000,
        "valid_days": 7, "total": 100, "per_customer": 5, "stackable": true}),
    )
    .await;
    let mut taken = 0;
    for _ in 0..3 {
        let code = claimed(&s, &key, fifty, buyer).await;
        let (st, off) = redeem(&s, &key, &code, "o-stack", 10_000).await;
        if st == StatusCode::OK {
            taken += off;
        }
    }
    assert!(
        taken <= 10_000,
        "{backend:?}: three coupons took {taken} fen off a 10,000 fen order"
    );
    assert_eq!(taken, 10_000, "{backend:?}: the first two take it all");

    let alone = template(
        &s,
        &key,
        json!({"name": "不可叠加", "kind": "amount_off", "value": 1_000,
        "valid_days": 7, "total": 100}),
    )
    .await;
    let code = claimed(&s, &key, alone, buyer).await;
    assert_eq!(
        redeem(&s, &key, &code, "o-alone", 10_000).await.0,
        StatusCode::OK
    );
    let code = claimed(&s, &key, fifty, buyer).await;
    assert_eq!(
        redeem(&s, &key, &code, "o-alone", 10_000).await.0,
        StatusCode::CONFLICT,
        "{backend:?}: a stackable coupon joined one that does not stack"
    );
}

on_each_backend!(an_h5_page_claims_only_what_is_offered_there);
/// A customer page names a template by its id, and ids are small counters: only templates the
/// brand offers on H5 can be claimed there, not the package-card coupon, the points gift's or
/// an API-only compensation coupon.
async fn an_h5_page_claims_only_what_is_offered_there(backend: common::Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let buyer = common::make_customers(&s, &key, 9, 1).await[0];
    let token = common::customer_token(&s, tenant, buyer);
    let c = reqwest::Client::new();
    let api_only = template(
        &s,
        &key,
        json!({"name": "补偿券", "kind": "amount_off", "value": 5_000,
        "valid_days": 7, "total": 100}),
    )
    .await;
    for path in [
        format!("/h5/v1/coupon-templates/{api_only}/claim"),
        format!("/h5/v1/coupon-templates/{api_only}"),
    ] {
        let method = if path.ends_with("claim") {
            M::POST
        } else {
            M::GET
        };
        let (st, v) = common::send_as_customer(&c, method, &s.url(&path), &token, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{backend:?}: {path}: {v}");
    }
    let (n,): (i64,) = s
        .db()
        .fetch_one(&siyu::platform::db::sql("SELECT count(*) FROM coupons"))
        .await
        .expect("coupons");
    assert_eq!(n, 0, "{backend:?}: a coupon was issued");

    // The brand offers it on H5 after all (a template made before claim channels existed).
    let (st, v) = send(
        &c,
        M::PUT,
        &s.url(&format!("/api/v1/coupon-templates/{api_only}/claim-via")),
        &key,
        Some(json!({"claim_via": "h5"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    assert_eq!(v["claim_via"], "h5", "{v}");
    let (st, v) = send(
        &c,
        M::PUT,
        &s.url(&format!("/api/v1/coupon-templates/{api_only}/claim-via")),
        &key,
        Some(json!({"claim_via": "anywhere"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{backend:?}: {v}");
    let (st, v) = common::send_as_customer(
        &c,
        M::POST,
        &s.url(&format!("/h5/v1/coupon-templates/{api_only}/claim")),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{backend:?}: {v}");
}

/// A long list is granted a chunk per transaction and still within the template's total and
/// per-customer limit, each coupon with a code of its own; a customer listed twice takes two
/// while the limit allows, and the one past the total is refused by name.
async fn a_long_issue_keeps_every_limit_across_chunks(backend: common::Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let ids = common::make_customers(&s, &key, 3, 2_500).await;
    let t = template(
        &s,
        &key,
        json!({"name": "会员日券", "kind": "amount_off", "value": 500, "valid_days": 7,
               "total": 2_200, "per_customer": 2}),
    )
    .await;
    let mut listed = vec![ids[0], ids[0], ids[0]];
    listed.extend(&ids[1..]);
    let (st, v) = common::post(
        &s,
        &key,
        &format!("/api/v1/coupon-templates/{t}/issue"),
        json!({"customer_ids": listed}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    assert_eq!(v["granted"], 2_200, "{v}");
    let refused = v["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), listed.len() - 2_200);
    assert_eq!(
        refused[0]["customer_id"], ids[0],
        "the third of one customer"
    );
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("already holds 2")),
        "{v}"
    );
    assert_eq!(
        refused.last().map(|r| r["reason"].clone()),
        Some(json!("all coupons of this template are gone"))
    );
    let (coupons, codes, most): (i64, i64, i64) = s
        .db()
        .fetch_one(&siyu::platform::db::sql(
            "SELECT count(*), count(DISTINCT code), (SELECT max(n) FROM (SELECT count(*) AS n FROM coupons GROUP BY customer_id) AS h) FROM coupons",
        ))
        .await
        .expect("coupons");
    assert_eq!((coupons, codes, most), (2_200, 2_200, 2), "{backend:?}");
    let (issued,): (i64,) = s
        .db()
        .fetch_one(&siyu::platform::db::sql(
            "SELECT issued FROM coupon_templates",
        ))
        .await
        .expect("issued");
    assert_eq!(issued, 2_200);
}
on_each_backend!(a_long_issue_keeps_every_limit_across_chunks);
