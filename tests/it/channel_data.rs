//! Channel data in: an export uploaded through the API keeps the rows that real exports carry
//! (unknown statuses, buyers behind masked phones), gives a receipt with the rejected rows as a
//! file, re-reads orders when the tenant maps a status, and links an unidentified buyer's order
//! when an identity for it appears.

use crate::common;
use reqwest::Method;
use serde_json::json;
use siyu::know::report::overview;
use siyu::platform::TenantId;
use siyu::platform::access::Role;
use siyu::platform::db::{Db, sql};

use common::{Backend, TestDb, TestServer, send, tenant_with_key};
use siyu::platform::Fen;
use siyu::platform::clock::now_ms;

const PDD_HEADER: &str = "订单号,订单状态,订单成交时间,支付时间,用户实付金额(元),退款金额(元),买家ID,收货人,手机,省,商品,商品数量(件),商品单价(元),运费(元)";

/// A PDD export: a shipped order (full phone), an order in a status Siyu does not know, an order
/// behind a masked phone with no buyer id, and a row with a date nobody can read.
fn pdd_export() -> String {
    [
        PDD_HEADER,
        "240601-001,\"已发货，待签收\",2024-06-01 10:00:00,2024-06-01 10:00:05,59.90,0.00,,张三,13800138001,浙江省,保湿面霜,1,59.90,0",
        "240601-002,待成团,2024-06-01 11:00:00,2024-06-01 11:00:05,19.90,0.00,,李四,13800138002,江苏省,洁面乳,1,19.90,0",
        "240601-003,交易成功,2024-06-02 09:00:00,2024-06-02 09:00:05,100.00,0.00,,王*,138****0003,广东省,精华液,1,100.00,0",
        "240601-004,交易成功,2024/13/45 09:00,,88.00,0.00,,赵六,13800138004,广东省,精华液,1,88.00,0",
    ]
    .join("\n")
}

async fn upload(s: &TestServer, key: &str, preset: &str, body: String) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/import/orders?preset={preset}")))
        .bearer_auth(key)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201, "upload answered {}", r.status());
    r.json::<serde_json::Value>().await.expect("json")["receipt"].clone()
}

fn channel_gmv(o: &siyu::know::report::Overview, channel: &str) -> (i64, i64) {
    o.channels
        .iter()
        .find(|c| c.channel == channel)
        .map(|c| (c.orders, c.gmv.get()))
        .unwrap_or((0, 0))
}

async fn order_buyer(db: &Db, tenant: TenantId, order_no: &str) -> (i64, i64) {
    db.fetch_one(
        &sql(
            "SELECT customer_id, buyer_unlinked FROM orders WHERE tenant_id = $1 AND order_no = $2",
        )
        .bind(tenant)
        .bind(order_no),
    )
    .await
    .expect("order")
}

async fn exports_keep_what_real_exports_carry(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Operator).await;
    let c = reqwest::Client::new();

    let r = upload(&s, &key, "pdd", pdd_export()).await;
    assert_eq!(
        (
            &r["read"],
            &r["imported"],
            &r["rejected"],
            &r["unknown_status"],
            &r["unlinked"]
        ),
        (&json!(4), &json!(3), &json!(1), &json!(1), &json!(1)),
        "{backend:?}: {r}"
    );
    assert_eq!(r["unknown_texts"], json!("{\"待成团\":1}"), "{r}");
    // The rejected rows come back as a file naming line, column and reason; the rows hold
    // phones as the export wrote them, so only a role that may see phones gets it, and the
    // store keeps it encrypted.
    let file = format!("/api/v1/import/runs/{}/rejected.csv", r["id"]);
    let (status, _) = send(&c, Method::GET, &s.url(&file), &key, None).await;
    assert_eq!(status.as_u16(), 403, "an operator may not see phones");
    let admin = siyu::platform::access::create_api_key(s.db(), tenant, "admin", Role::Admin)
        .await
        .expect("admin key");
    let (stored,): (Option<String>,) = s
        .db()
        .fetch_one(
            &sql("SELECT rejected_csv FROM import_runs WHERE id = $1").bind(r["id"].as_i64()),
        )
        .await
        .expect("run");
    let stored = stored.expect("a rejected file");
    assert!(
        !stored.contains("13800138004") && !stored.contains("240601-004"),
        "kept encrypted"
    );
    let rejected = c
        .get(s.url(&file))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rejected file");
    assert_eq!(rejected.status(), 200);
    let text = rejected.text().await.expect("text");
    let row = text.lines().nth(1).expect("one rejected row");
    assert!(
        row.starts_with("5,订单成交时间,") && row.contains("240601-004"),
        "{text}"
    );

    // The masked-phone order counts in PDD's figures; the unknown one does not yet.
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "pdd"), (2, 5_990 + 10_000), "{backend:?}");

    // The tenant reads 待成团 as paid: the order is re-read and counts.
    let (status, body) = send(
        &c,
        Method::PUT,
        &s.url("/api/v1/import/status-map"),
        &key,
        Some(json!({"待成团": "paid"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["reread"]),
        (200, &json!(1)),
        "{body}"
    );
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "pdd"), (3, 5_990 + 1_990 + 10_000));
    let (_, statuses) = send(
        &c,
        Method::GET,
        &s.url("/api/v1/import/statuses"),
        &key,
        None,
    )
    .await;
    assert_eq!(
        statuses["status_map"],
        json!({"待成团": "paid"}),
        "{statuses}"
    );
    let texts = statuses["texts"].as_array().expect("texts");
    let grouped = texts
        .iter()
        .find(|t| t["text"] == "待成团")
        .expect("待成团 listed");
    assert_eq!(
        (&grouped["status"], &grouped["mapped"], &grouped["orders"]),
        (&json!("paid"), &json!(true), &json!(1)),
        "{statuses}"
    );
    assert!(texts.iter().all(|t| t["status"] != "unknown"), "{statuses}");
    // The map overrides Siyu's own reading too: 交易成功 read as closed re-reads its order, and
    // taking it out of the map gives it back.
    for (map, gmv) in [
        (
            json!({"待成团": "paid", "交易成功": "closed"}),
            5_990 + 1_990,
        ),
        (json!({"待成团": "paid"}), 5_990 + 1_990 + 10_000),
    ] {
        let (status, body) = send(
            &c,
            Method::PUT,
            &s.url("/api/v1/import/status-map"),
            &key,
            Some(map),
        )
        .await;
        assert_eq!(status.as_u16(), 200, "{body}");
        let o = overview(s.db(), tenant).await.expect("overview");
        assert_eq!(channel_gmv(&o, "pdd").1, gmv);
    }
    // A map naming something that is not a status is refused, naming the text.
    let (status, body) = send(
        &c,
        Method::PUT,
        &s.url("/api/v1/import/status-map"),
        &key,
        Some(json!({"待成团": "sold"})),
    )
    .await;
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("待成团"),
        "{body}"
    );

    // The same export again: updated, no new customer (the unlinked buyer is the same one),
    // and the map reads the status at import.
    let (buyer3, unlinked3) = order_buyer(s.db(), tenant, "240601-003").await;
    assert_eq!(unlinked3, 1);
    let again = upload(&s, &key, "pdd", pdd_export()).await;
    assert_eq!(
        (
            &again["imported"],
            &again["updated"],
            &again["customers_created"],
            &again["unknown_status"]
        ),
        (&json!(0), &json!(3), &json!(0), &json!(0)),
        "{again}"
    );
    assert_eq!(order_buyer(s.db(), tenant, "240601-003").await, (buyer3, 1));
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "pdd"), (3, 5_990 + 1_990 + 10_000));

    // The platform later names the buyer of 240601-003 (a buyer id and the full phone, as the
    // open API gives them): the order is theirs, and the unlinked buyer is merged into them.
    let named = [
        PDD_HEADER,
        "240601-003,交易成功,2024-06-02 09:00:00,2024-06-02 09:00:05,100.00,0.00,pdd_u3,王五,13800138001,广东省,精华液,1,100.00,0",
    ]
    .join("\n");
    let r = upload(&s, &key, "pdd", named).await;
    assert_eq!(
        (&r["updated"], &r["unlinked"]),
        (&json!(1), &json!(0)),
        "{r}"
    );
    let (first_buyer, _) = order_buyer(s.db(), tenant, "240601-001").await;
    assert_eq!(
        order_buyer(s.db(), tenant, "240601-003").await,
        (first_buyer, 0),
        "{backend:?}: the order is the customer's who shares the phone"
    );
    let (merged_into,): (Option<i64>,) = s
        .db()
        .fetch_one(
            &sql("SELECT merged_into FROM customers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(buyer3),
        )
        .await
        .expect("customer");
    assert_eq!(merged_into, Some(first_buyer));

    // A customer quotes an order whose buyer is unknown: the service desk links it.
    let walk_in = [
        PDD_HEADER,
        "240601-005,交易成功,2024-06-03 09:00:00,2024-06-03 09:00:05,30.00,0.00,,,,上海,口红,1,30.00,0",
    ]
    .join("\n");
    assert_eq!(upload(&s, &key, "pdd", walk_in).await["unlinked"], json!(1));
    let link = |order_no: &str, customer: i64| json!({"channel": "pdd", "order_no": order_no, "customer_id": customer});
    let (status, body) = send(
        &c,
        Method::POST,
        &s.url("/api/v1/orders/link"),
        &key,
        Some(link("240601-005", first_buyer)),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        order_buyer(s.db(), tenant, "240601-005").await,
        (first_buyer, 0)
    );
    for (order_no, want, code) in [
        ("240601-005", 409, "already_linked"),
        ("240601-999", 404, "order_not_found"),
    ] {
        let (status, body) = send(
            &c,
            Method::POST,
            &s.url("/api/v1/orders/link"),
            &key,
            Some(link(order_no, first_buyer)),
        )
        .await;
        assert_eq!(
            (status.as_u16(), &body["error"]["code"]),
            (want, &json!(code)),
            "{body}"
        );
    }

    // The console's overview shows the receipts and no status left waiting (待成团 is mapped);
    // a new unknown text shows up there until it is read.
    let odd = [
        PDD_HEADER,
        "240601-006,拼单中,2024-06-04 09:00:00,,12.00,0.00,,,,上海,口红,1,12.00,0",
    ]
    .join("\n");
    assert_eq!(
        upload(&s, &key, "pdd", odd).await["unknown_status"],
        json!(1)
    );
    siyu::platform::access::create_user(
        s.db(),
        tenant,
        "ops",
        "运营",
        "ops-password-1",
        Role::Operator,
    )
    .await
    .expect("console user");
    let console = common::no_redirects();
    let cookie = common::console_session(&console, &s, "brand", "ops", "ops-password-1").await;
    let page = console
        .get(s.url("/console/overview"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("overview")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("渠道数据接入") && page.contains("最近的导入与同步"),
        "{page}"
    );
    assert!(
        page.contains("待映射的订单状态") && page.contains("拼单中"),
        "{page}"
    );
    assert!(page.contains("还没有接入店铺"), "{page}");
    assert_eq!(
        page.matches("class=\"receipt-row\"").count(),
        5,
        "the five latest runs"
    );
    // The operator reads the waiting text right there: a forged reading is refused naming the
    // text, a real one re-reads the order, which then counts.
    let read = |status: &'static str| {
        console
            .post(s.url("/console/statuses"))
            .header("cookie", &cookie)
            .form(&[("text", "拼单中"), ("status", status)])
            .send()
    };
    let refused = read("sold").await.expect("post");
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.expect("page");
    assert!(page.contains("状态文字「拼单中」"), "{page}");
    let before = channel_gmv(&overview(s.db(), tenant).await.expect("overview"), "pdd");
    let done = read("paid").await.expect("post");
    assert_eq!(done.status(), 303);
    let after = channel_gmv(&overview(s.db(), tenant).await.expect("overview"), "pdd");
    assert_eq!((after.0, after.1), (before.0 + 1, before.1 + 1_200));
    let page = console
        .get(s.url("/console/overview"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("overview")
        .text()
        .await
        .expect("page");
    assert!(
        !page.contains("待映射的订单状态"),
        "nothing left waiting: {page}"
    );

    // Receipts are listed newest first, and are the tenant's own.
    let (_, runs) = send(&c, Method::GET, &s.url("/api/v1/import/runs"), &key, None).await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(5), "{runs}");
    let (_, other_key) = tenant_with_key(s.db(), "other", Role::Operator).await;
    let (status, _) = send(
        &c,
        Method::GET,
        &s.url(&format!("/api/v1/import/runs/{}", r["id"])),
        &other_key,
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 404);
}
on_each_backend!(exports_keep_what_real_exports_carry);

const POS_HEADER: &str =
    "门店,小票号,单据类型,状态,销售时间,会员手机,品名,数量,零售价,实收金额,原单号,备注";

/// A store's return receipts refund the sales they name, whichever file comes first and however
/// often the files are uploaded: the sale's refund is the sum of its returns, a sale returned in
/// full is refunded (and stays so when a status map is saved), the returns themselves count
/// nothing, a voided return refunds nothing, and a return that names no sale is refused by the
/// column it lacks.
async fn store_returns_refund_the_sales_they_name(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Operator).await;
    let returns = [
        POS_HEADER,
        "S01,0005,退货,已完成,2024-06-18 16:40:00,13312345678,洁面慕斯,-1,-129.00,-129.00,,原单0001退货",
        "S01,0006,退货,已完成,2024-06-18 16:50:00,13312345678,护手霜,1,59.00,-59.00,0002,",
        "S01,0007,退货,已完成,2024-06-18 17:00:00,13312345678,精华水,1,100.00,100.00,0001,",
        "S01,0008,退货,已完成,2024-06-18 17:10:00,13312345678,棉柔巾,1,10.00,-10.00,,顾客退货",
        "S01,0009,退货,已取消,2024-06-18 17:20:00,13312345678,棉柔巾,1,39.80,-39.80,0003,收银员作废",
    ]
    .join("\n");
    let sales = [
        POS_HEADER,
        "S01,0001,销售,已完成,2024-06-18 10:00:00,13312345678,精华水,1,397.00,397.00,,",
        "S01,0002,销售,已完成,2024-06-18 11:00:00,13312345678,护手霜,1,59.00,59.00,,",
        "S01,0003,销售,已完成,2024-06-18 12:00:00,13312345678,棉柔巾,1,39.80,39.80,,",
    ]
    .join("\n");
    let sale = |no: &'static str| {
        let db = s.db().clone();
        async move {
            let row: (String, i64, i64) = db
                .fetch_one(
                    &sql("SELECT status, amount, refund_amount FROM orders WHERE tenant_id = $1 AND order_no = $2")
                        .bind(tenant)
                        .bind(no),
                )
                .await
                .expect("order");
            row
        }
    };

    // The returns come first: they are kept, refunded in full, and count nothing.
    let r = upload(&s, &key, "pos", returns.clone()).await;
    assert_eq!(
        (&r["read"], &r["imported"], &r["rejected"]),
        (&json!(5), &json!(4), &json!(1)),
        "{backend:?}: {r}"
    );
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "store"), (0, 0), "{backend:?}");
    assert_eq!(sale("S01-0005").await, ("refunded".into(), 12_900, 12_900));
    let (voided, _, refund) = sale("S01-0009").await;
    assert!(
        voided != "refunded" && refund == 0,
        "{backend:?}: {voided} {refund}"
    );
    let (lines,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id \
                         WHERE o.tenant_id = $1 AND o.order_no = 'S01-0005' AND l.quantity = 1 AND l.price = 12900").bind(tenant))
        .await
        .expect("lines");
    assert_eq!(
        lines, 1,
        "{backend:?}: a line written -1 × -129.00 is one returned item"
    );

    // Then the sales: each one's refund is what its returns returned.
    upload(&s, &key, "pos", sales.clone()).await;
    let expected = [
        (
            "S01-0001",
            ("completed".to_string(), 39_700, 12_900 + 10_000),
        ),
        ("S01-0002", ("refunded".to_string(), 5_900, 5_900)),
        ("S01-0003", ("completed".to_string(), 3_980, 0)),
    ];
    for (no, want) in &expected {
        assert_eq!(&sale(no).await, want, "{backend:?}: {no}");
    }
    let gmv = (39_700 - 22_900) + 3_980;
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "store"), (2, gmv), "{backend:?}");

    // Both files again, in the other order, and a status map saved: nothing moves.
    upload(&s, &key, "pos", sales).await;
    upload(&s, &key, "pos", returns).await;
    let (status, body) = send(
        &reqwest::Client::new(),
        Method::PUT,
        &s.url("/api/v1/import/status-map"),
        &key,
        Some(json!({"挂单": "pending"})),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    for (no, want) in &expected {
        assert_eq!(
            &sale(no).await,
            want,
            "{backend:?}: {no} after uploading again"
        );
    }
    let o = overview(s.db(), tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "store"), (2, gmv), "{backend:?}");
    let (orders,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM orders WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("count");
    assert_eq!(orders, 7, "three sales and four returns");
}
on_each_backend!(store_returns_refund_the_sales_they_name);

/// A PDD order refunded in part through an after-sales case: the case may come before or after
/// its order, may be read again, and only a case that went through refunds.
async fn after_sales_cases_refund_the_orders_they_name(backend: Backend) {
    use siyu::know::orders::after_sales::{AfterSale, store_after_sales};
    let tdb = TestDb::new(backend).await;
    let db = &tdb.db;
    let (tenant, _) = common::tenant_with_key(db, "pdd-brand", Role::Admin).await;
    let now = now_ms();
    let pdd = |no: &str, amount: i64| {
        let mut o = common::store_order(no, &["13800000021"], amount, now - 3_600_000);
        o.channel = "pdd".into();
        o
    };
    let case = |id: &str, no: &str, fen: i64, succeeded: bool, at: i64| AfterSale {
        channel: "pdd".into(),
        case_ref: id.into(),
        order_no: no.into(),
        amount: Fen::new(fen),
        succeeded,
        updated_at: at,
    };
    let refund = |no: &'static str| async move {
        let (status, refund): (String, i64) = db
            .fetch_one(
                &sql("SELECT status, refund_amount FROM orders WHERE tenant_id = $1 AND channel = 'pdd' AND order_no = $2")
                    .bind(tenant)
                    .bind(no),
            )
            .await
            .expect("order");
        (status, refund)
    };
    // A case read before its order: kept, and the order takes it when it arrives.
    let named = store_after_sales(db, tenant, &[case("C1", "P-1", 3_000, true, now)])
        .await
        .expect("cases");
    assert_eq!(named, vec![("pdd".to_owned(), "P-1".to_owned())]);
    common::store(db, tenant, vec![pdd("P-1", 10_000), pdd("P-2", 5_000)]).await;
    assert_eq!(
        refund("P-1").await,
        ("completed".into(), 3_000),
        "{backend:?}"
    );
    // A second case of the same order adds; one still open, or an older state of a case read
    // late, changes nothing.
    store_after_sales(
        db,
        tenant,
        &[
            case("C2", "P-1", 2_000, true, now),
            case("C3", "P-1", 4_000, false, now),
            case("C1", "P-1", 9_000, true, now - 60_000),
        ],
    )
    .await
    .expect("cases");
    assert_eq!(
        refund("P-1").await,
        ("completed".into(), 5_000),
        "{backend:?}"
    );
    // The order synced again (its own refund column says 0): the cases still stand.
    common::store(db, tenant, vec![pdd("P-1", 10_000)]).await;
    assert_eq!(
        refund("P-1").await,
        ("completed".into(), 5_000),
        "{backend:?}"
    );
    // A case refunding the whole order makes it refunded; cases never refund past the amount.
    store_after_sales(db, tenant, &[case("C4", "P-2", 6_000, true, now)])
        .await
        .expect("cases");
    assert_eq!(
        refund("P-2").await,
        ("refunded".into(), 5_000),
        "{backend:?}"
    );
    // Reading every case again changes nothing; channel GMV is net of what went back.
    store_after_sales(
        db,
        tenant,
        &[
            case("C1", "P-1", 3_000, true, now),
            case("C2", "P-1", 2_000, true, now),
        ],
    )
    .await
    .expect("cases");
    assert_eq!(
        refund("P-1").await,
        ("completed".into(), 5_000),
        "{backend:?}"
    );
    let o = overview(db, tenant).await.expect("overview");
    assert_eq!(channel_gmv(&o, "pdd"), (1, 5_000), "{backend:?}");
}

on_each_backend!(after_sales_cases_refund_the_orders_they_name);
