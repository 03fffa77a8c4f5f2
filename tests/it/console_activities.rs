//! The activities page's four forms over plain HTTP, on every backend: each refusal names its
//! field in Chinese with the domain's reason, answers 400 and keeps what was typed; a good form
//! makes the activity.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{Backend, TestServer, console_form, console_session, no_redirects};

async fn count(s: &TestServer, table: &str) -> i64 {
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql(format!("SELECT COUNT(*) FROM {table}")))
        .await
        .expect("count");
    n
}

/// A form's path, its fields, the words its refusal must show and a value it must keep.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

async fn activity_forms_refuse_in_chinese_and_keep_what_was_typed(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let t = access::create_tenant(s.db(), "茶小铺")
        .await
        .expect("tenant");
    access::create_user(
        s.db(),
        t.id,
        "ops",
        "运营",
        "a-long-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let ops = console_session(&c, &s, "茶小铺", "ops", "a-long-password").await;
    let when = [
        ("starts_at", "2026-12-12T20:00"),
        ("ends_at", "2026-12-12T22:00"),
    ];
    let item = [("sku", "TEA-1"), ("title", "明前龙井礼盒")];

    // Each form, a bad field, the words it must show, the value it must keep.
    let cases: Vec<Case> = vec![
        (
            "/console/activities/flash",
            vec![
                ("name", "双12秒杀"),
                ("price", "九十九"),
                ("stock", "100"),
                ("per_customer", "1"),
                ("pay_minutes", "15"),
            ],
            "价格：「九十九」不是金额（元）",
            "value=\"明前龙井礼盒\"",
        ),
        (
            "/console/activities/flash",
            vec![
                ("name", "双12秒杀"),
                ("price", "99"),
                ("stock", "0"),
                ("per_customer", "1"),
                ("pay_minutes", "15"),
            ],
            "库存：须在 1 到 10,000,000 之间",
            "value=\"双12秒杀\"",
        ),
        (
            "/console/activities/group-buys",
            vec![
                ("name", "三人团"),
                ("price", "69"),
                ("team_size", "3"),
                ("team_minutes", "60"),
                ("stock", "2"),
            ],
            "库存：至少要够一个团",
            "value=\"三人团\"",
        ),
        (
            "/console/activities/bargains",
            vec![
                ("name", "砍价"),
                ("price", "19.9"),
                ("floor_price", "29.9"),
                ("assists", "5"),
                ("bargain_hours", "24"),
                ("stock", "10"),
            ],
            "底价：须在 0 与价格之间",
            "value=\"29.9\"",
        ),
        (
            "/console/activities/gifts",
            vec![
                ("name", "积分换券"),
                ("kind", "coupon"),
                ("template_id", ""),
                ("points", "100"),
                ("stock", "10"),
                ("per_customer", "1"),
            ],
            "优惠券模板：券类礼品须选择优惠券模板",
            "<option value=\"coupon\" selected>",
        ),
    ];
    for (path, mut form, said, kept) in cases {
        if !path.ends_with("gifts") {
            form.extend(item);
            form.extend(when);
        }
        let (st, _, page) = console_form(&c, &s, &ops, path, &form).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path} {said}");
        assert!(
            page.contains("activity-error") && page.contains(said),
            "{said}: {page}"
        );
        assert!(page.contains(kept), "{path} keeps {kept}: {page}");
        for english in ["must be", "price:", "stock:", "template_id:"] {
            assert!(!page.contains(english), "{english} shown: {page}");
        }
    }
    for table in ["flash_sales", "group_buys", "bargain_items", "gifts"] {
        assert_eq!(count(&s, table).await, 0, "{table}: nothing was made");
    }

    let mut good = vec![
        ("name", "双12秒杀"),
        ("price", "99"),
        ("original_price", "299"),
        ("stock", "100"),
        ("per_customer", "1"),
        ("pay_minutes", "15"),
    ];
    good.extend(item);
    good.extend(when);
    let (st, to, _) = console_form(&c, &s, &ops, "/console/activities/flash", &good).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/activities")
    );
    assert_eq!(count(&s, "flash_sales").await, 1);
}
on_each_backend!(activity_forms_refuse_in_chinese_and_keep_what_was_typed);
