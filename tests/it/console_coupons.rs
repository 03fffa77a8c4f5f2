//! Coupon templates from the console (优惠券), over HTTP with the console session, on both
//! backends: made in yuan and days, shown as operators read them (减 ¥30.00, 8 折, 满 ¥300.00,
//! 领取后 30 天), refused in Chinese by field with what was typed kept, their claim channel
//! changed in place, a card template offered to the package-card form at once, a template
//! issued to a snapshot within its limits, and a coupon redeemed in store once.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{
    Backend, TestServer, console_form, console_page, console_session, make_customers, no_redirects,
    send, tenant_with_key,
};
use reqwest::Method as M;
use serde_json::json;

const PASSWORD: &str = "a-long-password";

fn form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("name", "满300减30"),
        ("kind", "amount_off"),
        ("value", "30"),
        ("zhe", ""),
        ("gift", ""),
        ("threshold", "300"),
        ("valid_days", "30"),
        ("starts_at", ""),
        ("ends_at", ""),
        ("per_customer", "1"),
        ("total", "500"),
        ("channels", ""),
        ("stores", ""),
        ("claim_via", "card"),
    ];
    for (k, v) in changes {
        match f.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => f.push((k, v)),
        }
    }
    f
}

async fn coupon_templates_are_made_and_changed_in_the_console(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("ops", Role::Operator), ("viewer", Role::Viewer)] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;

    let page = console_page(&c, &s, &ops, "/console/coupons").await;
    assert!(page.contains("id=\"no-templates\""), "{page}");
    assert!(page.contains("id=\"new-template\""));
    assert!(
        !console_page(&c, &s, &viewer, "/console/coupons")
            .await
            .contains("id=\"new-template\"")
    );
    // The package-card form says where to make a card template.
    assert!(
        console_page(&c, &s, &ops, "/console/acquire")
            .await
            .contains("href=\"/console/coupons\"")
    );

    // ¥30 off over ¥300, 30 days, 500 of them, claimed with package cards.
    let (st, to, _) = console_form(&c, &s, &ops, "/console/coupons", &form(&[])).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/coupons?created=1")
    );
    let (value, threshold, days, via): (i64, i64, Option<i64>, String) = s
        .db()
        .fetch_one(
            &sql("SELECT value, threshold, valid_days, claim_via FROM coupon_templates WHERE tenant_id = $1")
                .bind(tenant),
        )
        .await
        .expect("template");
    assert_eq!(
        (value, threshold, days, via.as_str()),
        (3_000, 30_000, Some(30), "card")
    );
    // 20% off (8 折) between two dates, stackable, on the H5 page.
    let (st, _, body) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons",
        &form(&[
            ("name", "会员8折"),
            ("kind", "percent_off"),
            ("zhe", "８"),
            ("threshold", ""),
            ("valid_days", ""),
            ("starts_at", "2026-12-01T00:00"),
            ("ends_at", "2026-12-31T23:59"),
            ("stackable", "1"),
            ("channels", "天猫，门店"),
            ("claim_via", "h5"),
        ]),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let page = console_page(&c, &s, &ops, "/console/coupons?created=1").await;
    assert!(page.contains("已创建优惠券模板"));
    for shown in [
        "减 ¥30.00",
        "满 ¥300.00",
        "领取后 30 天",
        "0 / 500",
        "8 折（减 20%）",
        "无门槛",
        "2026-12-01 00:00 – 2026-12-31 23:59",
        "代金券（立减）",
        "折扣券",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    let (pct, chans): (i64, Option<String>) = s
        .db()
        .fetch_one(
            &sql("SELECT value, channels FROM coupon_templates WHERE tenant_id = $1 AND name = '会员8折'")
                .bind(tenant),
        )
        .await
        .expect("template");
    assert_eq!(
        (pct, chans.as_deref()),
        (20, Some("tmall,store")),
        "8 折 is 20% off"
    );
    // 8.5 折 is 15% off.
    let (st, _, body) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons",
        &form(&[
            ("name", "85折"),
            ("kind", "percent_off"),
            ("zhe", "8.5"),
            ("claim_via", "h5"),
        ]),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (pct,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT value FROM coupon_templates WHERE tenant_id = $1 AND name = '85折'")
                .bind(tenant),
        )
        .await
        .expect("template");
    assert_eq!(pct, 15);

    // Refusals in Chinese, by field, with what was typed kept.
    for (changes, said) in [
        (
            vec![("value", "三十"), ("name", "双十二券")],
            "面额：「三十」不是金额（元）",
        ),
        (
            vec![("kind", "percent_off"), ("zhe", "80")],
            "折扣：「80」不是 1–9.9 之间的折数",
        ),
        (
            vec![("kind", "percent_off"), ("zhe", "8.25")],
            "折扣：「8.25」不是 1–9.9 之间的折数",
        ),
        (
            vec![("ends_at", "2026-12-31T00:00")],
            "有效期：领取后天数与结束时间只填一个",
        ),
        (vec![("channels", "火星")], "限用渠道：不认识「火星」"),
        (vec![("total", "")], "发放总量：至少 1 张"),
        (
            vec![("valid_days", ""), ("ends_at", "")],
            "有效期：填写领取后几天有效，或填写结束时间",
        ),
        (
            vec![
                ("valid_days", ""),
                ("starts_at", "2026-12-31T00:00"),
                ("ends_at", "2026-12-01T00:00"),
            ],
            "结束时间：须晚于开始时间",
        ),
        (
            vec![("kind", "free_gift"), ("gift", "")],
            "赠品：赠品券须写明赠品",
        ),
    ] {
        let (st, _, page) = console_form(&c, &s, &ops, "/console/coupons", &form(&changes)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{said}");
        assert!(page.contains(said), "{said} in {page}");
    }
    let (_, _, page) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons",
        &form(&[("value", "三十"), ("name", "双十二券")]),
    )
    .await;
    assert!(
        page.contains("value=\"双十二券\"") && page.contains("value=\"三十\""),
        "what was typed is kept"
    );
    let (st, _, page) = console_form(&c, &s, &viewer, "/console/coupons", &form(&[])).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("只能查看"));

    // The card template is offered to the package-card form; moved to H5, it no longer is.
    let acquire = console_page(&c, &s, &ops, "/console/acquire").await;
    assert!(
        !acquire.contains("id=\"no-offer\""),
        "the card template is offered"
    );
    let (id,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT id FROM coupon_templates WHERE tenant_id = $1 AND name = '满300减30'")
                .bind(tenant),
        )
        .await
        .expect("id");
    let (st, to, _) = console_form(
        &c,
        &s,
        &ops,
        &format!("/console/coupons/{id}/claim-via"),
        &[("claim_via", "h5")],
    )
    .await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/coupons")
    );
    assert!(
        console_page(&c, &s, &ops, "/console/acquire")
            .await
            .contains("id=\"no-offer\"")
    );
    let (st, _, _) = console_form(
        &c,
        &s,
        &viewer,
        &format!("/console/coupons/{id}/claim-via"),
        &[("claim_via", "card")],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons/999999/claim-via",
        &[("claim_via", "card")],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

on_each_backend!(coupon_templates_are_made_and_changed_in_the_console);

async fn coupons_are_issued_to_a_snapshot_and_redeemed_in_store(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [
        ("ops", Role::Operator),
        ("guide", Role::Guide),
        ("viewer", Role::Viewer),
    ] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let guide = console_session(&c, &s, "茶小铺", "guide", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;
    // Five customers, one snapshot of all of them.
    make_customers(&s, &key, 7, 5).await;
    let (st, seg) = send(
        &c,
        M::POST,
        &s.url("/api/v1/segments"),
        &key,
        Some(json!({"name": "全部", "rule": {"and": []}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{seg}");
    let (st, snap) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/segments/{}/snapshots", seg["id"])),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{snap}");
    let snapshot = snap["id"]
        .as_i64()
        .or_else(|| snap["snapshot"]["id"].as_i64())
        .expect("snapshot id")
        .to_string();
    // A template of three coupons, ¥30 off over ¥300, one each.
    let (st, _, _) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons",
        &form(&[("total", "3"), ("claim_via", "api")]),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (id,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT id FROM coupon_templates WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("id");
    let page = console_page(&c, &s, &ops, "/console/coupons").await;
    assert!(
        page.contains(&format!("action=\"/console/coupons/{id}/issue\"")),
        "{page}"
    );

    // Issued to the five: three get one, two are told why not.
    let issue = format!("/console/coupons/{id}/issue");
    let (st, to, _) = console_form(&c, &s, &ops, &issue, &[("snapshot_id", &snapshot)]).await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "answered by a redirect: a reload issues nothing"
    );
    let page = console_page(&c, &s, &ops, &to).await;
    assert!(
        page.contains("已发放 3 张；未发 2 人（券已发完 2）"),
        "{page}"
    );
    let (st, to, _) = console_form(&c, &s, &ops, &issue, &[("snapshot_id", &snapshot)]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        console_page(&c, &s, &ops, &to)
            .await
            .contains("已发放 0 张；未发 5 人")
    );
    // Another brand's snapshot is not found; a guide may not issue.
    let (_, other_key) = tenant_with_key(s.db(), "咖啡馆", Role::Admin).await;
    make_customers(&s, &other_key, 8, 1).await;
    let (_, oseg) = send(
        &c,
        M::POST,
        &s.url("/api/v1/segments"),
        &other_key,
        Some(json!({"name": "他们", "rule": {"and": []}})),
    )
    .await;
    let (_, osnap) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/segments/{}/snapshots", oseg["id"])),
        &other_key,
        None,
    )
    .await;
    let other_snapshot = osnap["id"].as_i64().expect("snapshot").to_string();
    let (st, _, page) =
        console_form(&c, &s, &ops, &issue, &[("snapshot_id", &other_snapshot)]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(page.contains("人群快照：找不到"), "{page}");
    let (st, _, _) = console_form(&c, &s, &guide, &issue, &[("snapshot_id", &snapshot)]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, page) = console_form(&c, &s, &ops, &issue, &[("snapshot_id", "")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("人群快照：请选择"));
    let (st, _, _) = console_form(&c, &s, &viewer, &issue, &[("snapshot_id", &snapshot)]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Redeemed in store by a guide: once, with what it took off; refusals say what to check.
    let (code,): (String,) = s
        .db()
        .fetch_one(
            &sql("SELECT code FROM coupons WHERE tenant_id = $1 ORDER BY id LIMIT 1").bind(tenant),
        )
        .await
        .expect("code");
    // A hand-made link to a coupon not redeemed says nothing of a redemption.
    let (unredeemed,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT id FROM coupons WHERE tenant_id = $1 ORDER BY id LIMIT 1").bind(tenant),
        )
        .await
        .expect("id");
    let page = console_page(
        &c,
        &s,
        &guide,
        &format!("/console/coupons?redeemed={unredeemed}"),
    )
    .await;
    assert!(!page.contains("核销成功"), "{page}");
    let redeem = async |who: &str, code: &str, order: &str, amount: &str| {
        let form = [
            ("code", code),
            ("order_ref", order),
            ("amount", amount),
            ("store_id", "S001"),
        ];
        console_form(&c, &s, who, "/console/coupons/redeem", &form).await
    };
    let (st, _, page) = redeem(&guide, &code.to_lowercase(), "POS-1", "199").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("订单金额：未达到这张券的使用门槛"), "{page}");
    let (st, to, _) = redeem(&guide, &code.to_lowercase(), " POS-1 ", "399.00").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "answered by a redirect");
    let page = console_page(&c, &s, &guide, &to).await;
    assert!(
        page.contains(&format!("核销成功：券码 {code} 抵扣 ¥30.00（订单 POS-1）")),
        "{page}"
    );
    let (by,): (Option<String>,) = s
        .db()
        .fetch_one(
            &sql("SELECT redeemed_by FROM coupons WHERE tenant_id = $1 AND code = $2")
                .bind(tenant)
                .bind(&code),
        )
        .await
        .expect("redeemed");
    assert_eq!(
        by.as_deref(),
        Some("console:guide"),
        "the staff member who typed the code is kept"
    );
    let (st, _, page) = redeem(&guide, &code, "POS-9", "0").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("不是大于 0 的金额"), "{page}");
    let (st, _, page) = redeem(&guide, &code, "POS-2", "399").await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("已经核销过"), "{page}");
    let (st, _, page) = redeem(&guide, "NOSUCHCODE", "POS-3", "399").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(page.contains("券码：找不到「NOSUCHCODE」"), "{page}");
    let (st, _, page) = redeem(&guide, &code, "POS-3", "三百").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("订单金额：「三百」不是大于 0 的金额（元）"),
        "{page}"
    );
    // What store staff typed stands in the form again, to mend rather than retype.
    for typed in [
        "value=\"三百\"",
        "value=\"POS-3\"",
        &format!("value=\"{code}\""),
    ] {
        assert!(page.contains(typed), "{typed} kept: {page}");
    }
    let (st, _, _) = redeem(&viewer, &code, "POS-4", "399").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (status, discount): (String, i64) = s
        .db()
        .fetch_one(
            &sql("SELECT status, discount FROM coupons WHERE tenant_id = $1 AND code = $2")
                .bind(tenant)
                .bind(&code),
        )
        .await
        .expect("coupon");
    assert_eq!((status.as_str(), discount), ("redeemed", 3_000));
    let (order,): (String,) = s
        .db()
        .fetch_one(
            &sql("SELECT order_ref FROM coupons WHERE tenant_id = $1 AND code = $2")
                .bind(tenant)
                .bind(&code),
        )
        .await
        .expect("order");
    assert_eq!(order, "POS-1", "the order number is stored trimmed");
}

on_each_backend!(coupons_are_issued_to_a_snapshot_and_redeemed_in_store);

/// A bar of the RFM page's lifecycle chart becomes a segment with a snapshot in one click, and
/// the coupon page offers that snapshot to issue to.
async fn a_chart_bar_becomes_a_snapshot_to_issue_to(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(s.db(), tenant, "ops", "ops", PASSWORD, Role::Operator)
        .await
        .expect("user");
    access::create_user(s.db(), tenant, "viewer", "viewer", PASSWORD, Role::Viewer)
        .await
        .expect("user");
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;
    make_customers(&s, &key, 9, 4).await;
    let page = console_page(&c, &s, &ops, "/console/rfm").await;
    // The first bar offered: its kind, key, label and count, as the page writes them.
    let form = page
        .split("class=\"inline bar-segment\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no bar offered: {page}"));
    let field = |name: &str| {
        form.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned()
    };
    let (kind, key_, label) = (field("kind"), field("key"), field("label"));
    assert!(!kind.is_empty() && !key_.is_empty(), "{form}");
    assert!(
        !console_page(&c, &s, &viewer, "/console/rfm")
            .await
            .contains("bar-segment"),
        "not offered to a viewer"
    );
    let (st, to, _) = console_form(
        &c,
        &s,
        &ops,
        "/console/rfm/segment",
        &[
            ("kind", kind.as_str()),
            ("key", key_.as_str()),
            ("label", label.as_str()),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/console/segments/"), "{to}");
    let (name, size): (String, i64) = s
        .db()
        .fetch_one(
            &sql(
                "SELECT s.name, n.size FROM segments s JOIN segment_snapshots n ON n.tenant_id = s.tenant_id AND n.segment_id = s.id WHERE s.tenant_id = $1",
            )
            .bind(tenant),
        )
        .await
        .expect("segment and snapshot");
    assert!(name.starts_with(&label), "{name}");
    assert!(size >= 1, "the bar's people are in the snapshot");
    // Offered to issue coupons to.
    let (st, _, _) = console_form(&c, &s, &ops, "/console/coupons", &form_default()).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let coupons = console_page(&c, &s, &ops, "/console/coupons").await;
    assert!(coupons.contains(&format!("{name} · {size} ·")), "{coupons}");
    let (st, _, _) = console_form(
        &c,
        &s,
        &viewer,
        "/console/rfm/segment",
        &[
            ("kind", kind.as_str()),
            ("key", key_.as_str()),
            ("label", label.as_str()),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

fn form_default() -> Vec<(&'static str, &'static str)> {
    form(&[])
}

on_each_backend!(a_chart_bar_becomes_a_snapshot_to_issue_to);

/// A template that ran out gets more coupons, and one that must end stops issuing, from the
/// console: each says what it did by the template's name; a count that is not one is refused
/// with what was typed; a stopped template issues nothing more (console, API or claim) while
/// the coupons already given are still redeemed; a viewer may do neither.
async fn a_template_gets_more_coupons_and_stops_issuing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("ops", Role::Operator), ("viewer", Role::Viewer)] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;
    let customers = make_customers(&s, &key, 6, 3).await;
    let (st, _, _) = console_form(
        &c,
        &s,
        &ops,
        "/console/coupons",
        &form(&[("total", "1"), ("claim_via", "api")]),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (id,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT id FROM coupon_templates WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("id");
    let issue = |who: i64| {
        let (c, key, s) = (&c, &key, &s);
        async move {
            send(
                c,
                M::POST,
                &s.url(&format!("/api/v1/coupon-templates/{id}/issue")),
                key,
                Some(json!({"customer_ids": [who]})),
            )
            .await
            .1
        }
    };
    assert_eq!(issue(customers[0]).await["granted"], 1);
    assert_eq!(
        issue(customers[1]).await["granted"],
        0,
        "the one coupon is gone"
    );

    // More coupons: a count that is not one is refused with what was typed; 2 more are added.
    let total = format!("/console/coupons/{id}/total");
    let (st, _, page) = console_form(&c, &s, &ops, &total, &[("add", "两张")]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("追加张数：请填 1 到 1000000 之间的整数（「两张」）"),
        "{page}"
    );
    let (st, _, _) = console_form(&c, &s, &viewer, &total, &[("add", "2")]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, to, _) = console_form(&c, &s, &ops, &total, &[("add", "2")]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        console_page(&c, &s, &ops, &to)
            .await
            .contains("「满300减30」已追加 2 张，总数 3 张"),
        "{to}"
    );
    assert_eq!(
        issue(customers[1]).await["granted"],
        1,
        "one of the added two"
    );

    // Stopped: it issues nothing more, the page says so and offers no issue form; the coupon
    // given before is still redeemed.
    let stop = format!("/console/coupons/{id}/stop");
    let (st, _, _) = console_form::<&str, &str>(&c, &s, &viewer, &stop, &[]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, to, _) = console_form::<&str, &str>(&c, &s, &ops, &stop, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = console_page(&c, &s, &ops, &to).await;
    assert!(page.contains("已停止发放「满300减30」"), "{page}");
    assert!(
        !page.contains(&format!("/console/coupons/{id}/issue")),
        "{page}"
    );
    let refused = issue(customers[2]).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("has stopped issuing")),
        "a stopped template issues none: {refused}"
    );
    // Its own window stays what it was: stopping is not an end date.
    let (ends, days, stopped): (Option<i64>, Option<i64>, Option<i64>) = s
        .db()
        .fetch_one(
            &sql("SELECT ends_at, valid_days, stopped_at FROM coupon_templates WHERE id = $1")
                .bind(id),
        )
        .await
        .expect("template");
    assert!(stopped.is_some(), "stopped");
    assert!(
        ends.is_none() != days.is_none(),
        "one of ends_at and valid_days, as made: {ends:?} {days:?}"
    );
    let (code,): (String,) = s
        .db()
        .fetch_one(
            &sql("SELECT code FROM coupons WHERE tenant_id = $1 AND customer_id = $2")
                .bind(tenant)
                .bind(customers[0]),
        )
        .await
        .expect("a coupon given before");
    let (st, used) = send(
        &c,
        M::POST,
        &s.url("/api/v1/coupons/redeem"),
        &key,
        Some(json!({"code": code, "order_ref": "POS-1", "amount": 35_000})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "a coupon given before still redeems: {used}"
    );
    // Stopping again changes nothing; another brand's template is not found.
    let (st, _, _) = console_form::<&str, &str>(&c, &s, &ops, &stop, &[]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/coupon-templates/{id}/stop")),
        &tenant_with_key(s.db(), "别家", Role::Admin).await.1,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
on_each_backend!(a_template_gets_more_coupons_and_stops_issuing);
