//! The acquire page's campaign form and launch button, over plain HTTP, on every backend: a
//! draft made from a segment snapshot, refusals named by field with their status, a read-only
//! role turned away, and a launch that reports what became of each customer, twice the same.

use crate::common;
use reqwest::Method as M;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{Backend, TestServer, make_customers, send, tenant_with_key};

/// Signs `username` in to the console; returns its session cookie.
async fn sign_in(c: &reqwest::Client, s: &TestServer, username: &str, password: &str) -> String {
    common::console_session(c, s, "茶小铺", username, password).await
}

async fn post_form(
    c: &reqwest::Client,
    s: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let r = c
        .post(s.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status();
    (status, r.text().await.expect("page"))
}

/// A segment of everyone in the tenant behind `key`, frozen in a snapshot; its id.
async fn snapshot_of_everyone(c: &reqwest::Client, s: &TestServer, key: &str, name: &str) -> i64 {
    let (st, seg) = send(
        c,
        M::POST,
        &s.url("/api/v1/segments"),
        key,
        Some(json!({"name": name, "rule": {"and": []}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{seg}");
    let (st, snap) = send(
        c,
        M::POST,
        &s.url(&format!("/api/v1/segments/{}/snapshots", seg["id"])),
        key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{snap}");
    snap["id"].as_i64().expect("snapshot id")
}

async fn get_page(c: &reqwest::Client, s: &TestServer, cookie: &str, path: &str) -> String {
    let r = c
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("page")
}

async fn campaigns_stored(s: &TestServer) -> Vec<(i64, String, i64, String)> {
    s.db()
        .fetch_all(&sql(
            "SELECT id, status, cost_per_part, exclude_list FROM campaigns ORDER BY id",
        ))
        .await
        .expect("campaigns")
}

async fn outbox_rows(s: &TestServer, campaign: i64) -> i64 {
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM outbox WHERE campaign_id = $1").bind(campaign))
        .await
        .expect("outbox");
    n
}

async fn a_campaign_is_created_from_a_snapshot_and_launched_from_the_console(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    // Three buyers: 13901000000, 13901000001, 13901000002.
    make_customers(&s, &key, 1, 3).await;
    let snapshot = snapshot_of_everyone(&c, &s, &key, "老客").await.to_string();
    for (user, role) in [("ops", Role::Operator), ("viewer", Role::Viewer)] {
        access::create_user(s.db(), tenant, user, user, "a-long-password", role)
            .await
            .expect("user");
    }
    let ops = sign_in(&c, &s, "ops", "a-long-password").await;
    let viewer = sign_in(&c, &s, "viewer", "a-long-password").await;

    // The form offers the snapshot, by its segment's name and size.
    let page = c
        .get(s.url("/console/acquire"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    assert!(page.contains("新建短信召回"), "{page}");
    assert!(
        page.contains(&format!("<option value=\"{snapshot}\">老客 · 3 · ")),
        "{page}"
    );

    // Refusals name the field in Chinese, are shown on the page with a 400 beside what was
    // typed, and nothing is stored. (The page escapes the quotes around a value it names.)
    let good_a = "【茶小铺】好久不见，20元回归券已到账 {link} 拒收请回复R";
    let good_b = "【茶小铺】新茶到店，老客专享价 {link} 拒收请回复R";
    for (field, value, named) in [
        (
            "variant_c",
            "【茶小铺】好久不见 {link}",
            "文案版本 C（可选）：须写明退订方式",
        ),
        ("holdout_percent", "十", "对照组比例（%）：「十」不是整数"),
        (
            "cost_per_part",
            "五分",
            "每条短信成本（元）：「五分」不是金额",
        ),
        ("scheduled_at", "明天", "定时发送：「明天」不是时间"),
        ("exclude_phones", "12345", "排除号码 第 1 条：有 5 位数字"),
    ] {
        let mut form = vec![
            ("name", "双12召回"),
            ("snapshot_id", snapshot.as_str()),
            ("target_url", "https://shop.tea.cn/welcome"),
            ("variant_a", good_a),
            ("variant_b", good_b),
        ];
        form.push((field, value));
        let (st, page) = post_form(&c, &s, &ops, "/console/acquire/campaigns", &form).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            page.contains("campaign-error") && page.contains(named),
            "{field}: {named}: {page}"
        );
        // The hand-written texts and the bad value are still in the form.
        assert!(
            page.contains(&format!(">{good_a}</textarea>"))
                && page.contains(&format!(">{good_b}</textarea>"))
                && page.contains(value),
            "{field}: the form keeps what was typed: {page}"
        );
        assert!(!page.contains("variants["), "no JSON paths: {page}");
    }
    let (st, page) = post_form(
        &c,
        &s,
        &viewer,
        "/console/acquire/campaigns",
        &[
            ("name", "双12召回"),
            ("snapshot_id", &snapshot),
            ("variant_a", good_a),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("你的角色只能查看"), "{page}");
    assert!(campaigns_stored(&s).await.is_empty(), "nothing was created");

    // A good form: two variants, one number excluded, the cost in yuan.
    let (st, _) = post_form(
        &c,
        &s,
        &ops,
        "/console/acquire/campaigns",
        &[
            ("name", "双12召回"),
            ("snapshot_id", &snapshot),
            ("variant_a", good_a),
            (
                "variant_b",
                "【茶小铺】新茶到店，老客专享价 {link} 拒收请回复R",
            ),
            ("variant_c", "  "),
            ("holdout_percent", "0"),
            ("target_url", "https://shop.tea.cn/welcome"),
            ("scheduled_at", ""),
            ("forbidden_words", "最便宜，第一"),
            ("exclude_phones", "139 0100 0000"),
            ("cost_per_part", "0.06"),
            ("window_days", ""),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let stored = campaigns_stored(&s).await;
    assert_eq!(stored.len(), 1);
    let (id, status, cost, exclude) = stored[0].clone();
    assert_eq!((status.as_str(), cost), ("draft", 6));
    assert_eq!(exclude, "[\"13901000000\"]");
    let (st, v) = send(
        &c,
        M::GET,
        &s.url(&format!("/api/v1/campaigns/{id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["campaign"]["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["A", "B"], "the blank third text is no variant");
    assert_eq!(v["campaign"]["window_days"], 7);

    let page = c
        .get(s.url("/console/acquire"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    let launch = format!("/console/acquire/campaigns/{id}/launch");
    assert!(
        page.contains("双12召回") && page.contains("草稿") && page.contains(&launch),
        "the draft is listed with its launch button: {page}"
    );

    assert!(
        page.contains("data-confirm=\"确定发出？") && page.contains("人数：3\""),
        "the button asks first, naming the audience's size: {page}"
    );
    // A page asked for a draft's counts, or for nonsense, shows none.
    for q in [
        format!("?launched={id}"),
        "?launched=x".into(),
        "?launched=".into(),
    ] {
        let page = get_page(&c, &s, &ops, &format!("/console/acquire{q}")).await;
        assert!(!page.contains("launch-notice"), "{q}: {page}");
    }

    // A viewer sees no forms or buttons, and cannot launch by posting.
    let page = get_page(&c, &s, &viewer, "/console/acquire").await;
    assert!(
        page.contains("双12召回") && !page.contains("new-campaign") && !page.contains(&launch),
        "{page}"
    );
    let (st, page) = post_form(&c, &s, &viewer, &launch, &[]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("你的角色只能查看"), "{page}");
    assert_eq!(outbox_rows(&s, id).await, 0);

    // The operator launches it: two messages, the excluded number counted; the page it
    // returns to says so, and launching again changes nothing.
    for _ in 0..2 {
        let r = c
            .post(s.url(&launch))
            .header("cookie", &ops)
            .send()
            .await
            .expect("launch");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let back = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert_eq!(back, format!("/console/acquire?launched={id}"));
        let page = c
            .get(s.url(&back))
            .header("cookie", &ops)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("page");
        assert!(
            page.contains("launch-notice")
                && page.contains("写入发件箱 2")
                && page.contains("排除名单 1"),
            "{page}"
        );
        assert!(!page.contains(&launch), "a launched campaign has no button");
        assert_eq!(outbox_rows(&s, id).await, 2);
    }
    assert_eq!(campaigns_stored(&s).await[0].1, "launched");

    // Its report downloads with the console's session, under Chinese columns (the API's file
    // takes a key and would answer the browser 401).
    let csv_link = format!("/console/acquire/campaigns/{id}/report.csv");
    assert!(
        get_page(&c, &s, &ops, "/console/acquire")
            .await
            .contains(&csv_link)
    );
    let r = c
        .get(s.url(&csv_link))
        .header("cookie", &ops)
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    let csv = csv.trim_start_matches('\u{feff}');
    assert!(csv.starts_with("文案版本,目标人数,已发送,"), "{csv}");
    assert!(
        csv.lines()
            .last()
            .is_some_and(|l| l.starts_with("合计（不含对照组）,")),
        "{csv}"
    );
    let r = c
        .get(s.url("/console/acquire/campaigns/999999/report.csv"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Another tenant's snapshot and campaign are not there for this one.
    let (_, other_key) = tenant_with_key(s.db(), "别家", Role::Admin).await;
    make_customers(&s, &other_key, 2, 1).await;
    let other_snap = snapshot_of_everyone(&c, &s, &other_key, "别家老客").await;
    let other_snapshot = other_snap.to_string();
    let (st, page) = post_form(
        &c,
        &s,
        &ops,
        "/console/acquire/campaigns",
        &[
            ("name", "借别家的人群"),
            ("snapshot_id", &other_snapshot),
            ("variant_a", good_a),
            ("target_url", "https://shop.tea.cn/welcome"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{page}");
    let (st, other) = send(
        &c,
        M::POST,
        &s.url("/api/v1/campaigns"),
        &other_key,
        Some(
            json!({"name": "别家召回", "snapshot_id": other_snap, "target_url": "https://x.cn/",
            "variants": [{"name": "A", "content": good_a}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    let other_launch = format!(
        "/console/acquire/campaigns/{}/launch",
        other["campaign"]["id"]
    );
    let (st, _) = post_form(&c, &s, &ops, &other_launch, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        outbox_rows(&s, other["campaign"]["id"].as_i64().expect("id")).await,
        0
    );

    // Launching what is not there is refused by name.
    let (st, page) = post_form(&c, &s, &ops, "/console/acquire/campaigns/x/launch", &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("campaign: &#34;x&#34;"), "{page}");
    let (st, _) = post_form(&c, &s, &ops, "/console/acquire/campaigns/999/launch", &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
on_each_backend!(a_campaign_is_created_from_a_snapshot_and_launched_from_the_console);

async fn a_card_batch_is_created_from_the_console(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
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
    access::create_user(
        s.db(),
        tenant,
        "viewer",
        "viewer",
        "a-long-password",
        Role::Viewer,
    )
    .await
    .expect("viewer");
    let ops = sign_in(&c, &s, "ops", "a-long-password").await;
    let viewer = sign_in(&c, &s, "viewer", "a-long-password").await;

    // Without a coupon template there is no hook to offer: the page says how to make one.
    let page = c
        .get(s.url("/console/acquire"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("no-offer") && !page.contains("new-batch"),
        "{page}"
    );
    let (st, t) = send(
        &c,
        M::POST,
        &s.url("/api/v1/coupon-templates"),
        &key,
        Some(json!({"name": "回归礼10元", "kind": "amount_off", "value": 1000, "threshold": 5000, "valid_days": 30, "total": 1000, "claim_via": "card"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let template = t["id"].as_i64().expect("template id").to_string();
    let page = c
        .get(s.url("/console/acquire"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(&format!("<option value=\"{template}\">回归礼10元</option>")),
        "{page}"
    );

    let form = |size: &'static str, cost: &'static str| {
        vec![
            ("name", "双12包裹卡"),
            ("channel", "tmall"),
            ("coupon_template_id", template.as_str()),
            ("size", size),
            ("variants", "红卡，蓝卡"),
            ("contact_qr_url", "https://work.weixin.qq.com/ca/cawcde"),
            ("cost_per_card", cost),
            ("window_days", ""),
        ]
    };
    for (size, cost, named) in [
        ("一千", "0.30", "数量：「一千」不是整数"),
        ("0", "0.30", "数量：须为 1–100000 张"),
        ("50", "三毛", "每张卡成本（元）：「三毛」不是金额"),
    ] {
        let (st, page) = post_form(
            &c,
            &s,
            &ops,
            "/console/acquire/card-batches",
            &form(size, cost),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{size} {cost}");
        assert!(page.contains(named), "{named}: {page}");
        assert!(
            page.contains("value=\"红卡，蓝卡\""),
            "the designs typed are kept: {page}"
        );
    }
    let (st, page) = post_form(
        &c,
        &s,
        &viewer,
        "/console/acquire/card-batches",
        &form("50", "0.30"),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("你的角色只能查看"), "{page}");
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM card_batches"))
        .await
        .expect("batches");
    assert_eq!(n, 0, "nothing was created");

    let (st, _) = post_form(
        &c,
        &s,
        &ops,
        "/console/acquire/card-batches",
        &form("50", "0.30"),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (id, cost, variants): (i64, i64, String) = s
        .db()
        .fetch_one(&sql("SELECT id, cost_per_card, variants FROM card_batches"))
        .await
        .expect("batch");
    assert_eq!(cost, 30);
    assert!(
        variants.contains("红卡") && variants.contains("蓝卡"),
        "{variants}"
    );
    let (cards,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(DISTINCT code) FROM cards WHERE batch_id = $1").bind(id))
        .await
        .expect("cards");
    assert_eq!(cards, 50, "fifty unique codes");
    let page = c
        .get(s.url("/console/acquire"))
        .header("cookie", &ops)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("双12包裹卡")
            && page.contains(&format!("/console/acquire/card-batches/{id}/cards.pdf")),
        "the batch is listed with its PDF for the printing shop: {page}"
    );
}
on_each_backend!(a_card_batch_is_created_from_the_console);

/// A launch that stopped partway (a crash after its first chunk committed) shows as such, and
/// the button resumes it: only the customers not yet recorded get a message.
async fn a_launch_that_stopped_partway_is_shown_and_resumed(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let customers = make_customers(&s, &key, 3, 3).await;
    let snap = snapshot_of_everyone(&c, &s, &key, "老客").await;
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/campaigns"),
        &key,
        Some(
            json!({"name": "双12召回", "snapshot_id": snap, "target_url": "https://shop.tea.cn/",
            "variants": [{"name": "A", "content": "【茶小铺】好久不见 {link} 拒收请回复R"}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["campaign"]["id"].as_i64().expect("campaign id");
    // What a first chunk leaves when the process dies after its commit: a recorded outcome.
    s.db()
        .execute(
            &sql("INSERT INTO campaign_recipients (tenant_id, campaign_id, customer_id, variant, outcome) \
                  VALUES ($1, $2, $3, 'A', 'no_phone')")
                .bind(tenant)
                .bind(id)
                .bind(customers[0]),
        )
        .await
        .expect("recipient");
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
    let ops = sign_in(&c, &s, "ops", "a-long-password").await;
    let page = get_page(&c, &s, &ops, "/console/acquire").await;
    assert!(
        page.contains("发出中断（可继续）") && page.contains("继续发出"),
        "{page}"
    );
    let r = c
        .post(s.url(&format!("/console/acquire/campaigns/{id}/launch")))
        .header("cookie", &ops)
        .send()
        .await
        .expect("resume");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = get_page(&c, &s, &ops, &format!("/console/acquire?launched={id}")).await;
    assert!(
        page.contains("写入发件箱 2") && page.contains("无手机号 1"),
        "the two not recorded get a message, the one recorded keeps its outcome: {page}"
    );
    assert_eq!(outbox_rows(&s, id).await, 2);
    assert!(!page.contains("继续发出"), "{page}");
}
on_each_backend!(a_launch_that_stopped_partway_is_shown_and_resumed);

/// A send of the brand's approval size waits for a second admin (maker-checker): the one who
/// asked may not approve it, the API's launch is refused with `approval_required` meanwhile, and
/// another admin's approval sends it.
async fn a_large_send_waits_for_a_second_admin(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    make_customers(&s, &key, 4, 3).await;
    let snapshot = snapshot_of_everyone(&c, &s, &key, "老客").await.to_string();
    for (user, role) in [
        ("boss", Role::Admin),
        ("boss2", Role::Admin),
        ("ops", Role::Operator),
    ] {
        access::create_user(s.db(), tenant, user, user, "a-long-password", role)
            .await
            .expect("user");
    }
    let boss = sign_in(&c, &s, "boss", "a-long-password").await;
    let boss2 = sign_in(&c, &s, "boss2", "a-long-password").await;
    let ops = sign_in(&c, &s, "ops", "a-long-password").await;

    // The approval size: set by an admin, not by an operator.
    let (st, _) = post_form(
        &c,
        &s,
        &ops,
        "/console/policy/approval",
        &[("approval_from", "2")],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = post_form(
        &c,
        &s,
        &boss,
        "/console/policy/approval",
        &[("approval_from", "零")],
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = post_form(
        &c,
        &s,
        &boss,
        "/console/policy/approval",
        &[("approval_from", "2")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        get_page(&c, &s, &ops, "/console/policy")
            .await
            .contains("达到 2 人时，需另一位管理员批准")
    );

    // The operator's launch of three people waits; nothing is written to the outbox.
    let (st, _) = post_form(
        &c,
        &s,
        &ops,
        "/console/acquire/campaigns",
        &[
            ("name", "双12召回"),
            ("snapshot_id", snapshot.as_str()),
            (
                "variant_a",
                "【茶小铺】好久不见，20元回归券已到账 {link} 拒收请回复R",
            ),
            ("target_url", "https://shop.tea.cn/welcome"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let id = campaigns_stored(&s).await[0].0;
    let launch = format!("/console/acquire/campaigns/{id}/launch");
    let approve = format!("/console/acquire/campaigns/{id}/approve");
    let r = c
        .post(s.url(&launch))
        .header("cookie", &ops)
        .send()
        .await
        .expect("launch");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(to, format!("/console/acquire?asked={id}"));
    let page = get_page(&c, &s, &ops, &to).await;
    assert!(
        page.contains("已提交审批") && page.contains("待审批"),
        "{page}"
    );
    assert!(
        !page.contains(&approve),
        "an operator is offered no approval"
    );
    assert_eq!(outbox_rows(&s, id).await, 0, "nothing sent while it waits");
    // The API may not go round it.
    let (st, v) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/campaigns/{id}/launch")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "approval_required", "{v}");

    // An admin who asked may not approve their own; here the operator asked, so boss may.
    let (st, _) = post_form(&c, &s, &ops, &approve, &[]).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an operator may not approve");
    assert!(
        get_page(&c, &s, &boss, "/console/acquire")
            .await
            .contains(&approve)
    );
    let r = c
        .post(s.url(&approve))
        .header("cookie", &boss)
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(outbox_rows(&s, id).await, 3, "approved: it went out");
    assert_eq!(campaigns_stored(&s).await[0].1, "launched");

    // A campaign asked for by an admin: that admin may not approve it, another may.
    let (st, _) = post_form(
        &c,
        &s,
        &boss,
        "/console/acquire/campaigns",
        &[
            ("name", "元旦召回"),
            ("snapshot_id", snapshot.as_str()),
            (
                "variant_a",
                "【茶小铺】新年快乐，回归券已到账 {link} 拒收请回复R",
            ),
            ("target_url", "https://shop.tea.cn/welcome"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let second = campaigns_stored(&s)
        .await
        .iter()
        .map(|c| c.0)
        .max()
        .expect("id");
    let r = c
        .post(s.url(&format!("/console/acquire/campaigns/{second}/launch")))
        .header("cookie", &boss)
        .send()
        .await
        .expect("launch");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let approve2 = format!("/console/acquire/campaigns/{second}/approve");
    assert!(
        !get_page(&c, &s, &boss, "/console/acquire")
            .await
            .contains(&approve2),
        "not to the asker"
    );
    let (st, page) = post_form(&c, &s, &boss, &approve2, &[]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("不能批准自己提交的发送"), "{page}");
    let r = c
        .post(s.url(&approve2))
        .header("cookie", &boss2)
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(outbox_rows(&s, second).await, 3);
    // Each step is in the audit log.
    let actions: Vec<String> = access::audit_log(s.db(), tenant, 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["approval.size", "campaign.ask_approval", "campaign.approve"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
on_each_backend!(a_large_send_waits_for_a_second_admin);

/// A campaign launched in quiet hours says it is sending and what its messages wait for, with
/// the time they may go, instead of "launched" with nothing sent; once every message has gone
/// it says so, with the count.
async fn a_launched_campaign_says_what_its_messages_wait_for(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    make_customers(&s, &key, 7, 3).await;
    let snapshot = snapshot_of_everyone(&c, &s, &key, "老客").await;
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
    let ops = sign_in(&c, &s, "ops", "a-long-password").await;
    // Quiet hours from half an hour ago to an hour from now, China time.
    let now = siyu::platform::clock::now_ms();
    let minute = (now / 60_000 + 8 * 60).rem_euclid(1440);
    let (st, p) = send(
        &c,
        M::PUT,
        &s.url("/api/v1/contact-policy"),
        &key,
        Some(json!({
        "marketing_per_week": 5, "quiet_start_minute": (minute + 1410) % 1440,
        "quiet_end_minute": (minute + 60) % 1440, "dedupe_hours": 24})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let ends = siyu::engage::policy::load(s.db(), tenant)
        .await
        .expect("policy")
        .quiet_until(now)
        .expect("quiet now");
    let (st, made) = send(
        &c,
        M::POST,
        &s.url("/api/v1/campaigns"),
        &key,
        Some(json!({
        "name": "夜间召回", "snapshot_id": snapshot,
        "variants": [{"name": "A", "content": "【茶小铺】回归券已到账 拒收请回复R"}]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let id = made["campaign"]["id"].as_i64().expect("id");
    let (st, l) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/campaigns/{id}/launch")),
        &key,
        None,
    )
    .await;
    assert!(st.is_success(), "{l}");

    // The dispatcher holds the three until quiet hours end; the page says so.
    let held = format!(
        "等待免打扰时段结束（至 {}）3",
        siyu::platform::clock::format_local(ends)
    );
    let mut page = String::new();
    for _ in 0..100 {
        page = get_page(&c, &s, &ops, "/console/acquire").await;
        if page.contains(&held) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains(&held), "{held} in {page}");
    assert!(
        page.contains("发送中") && page.contains("已发送 0"),
        "{page}"
    );
    assert!(!page.contains("已发完"), "{page}");

    // Every message gone: the campaign reads as sent, with its count.
    s.db()
        .execute(
            &sql("UPDATE outbox SET status = 'sent', sent_at = $2 WHERE campaign_id = $1")
                .bind(id)
                .bind(now),
        )
        .await
        .expect("sent");
    let page = get_page(&c, &s, &ops, "/console/acquire").await;
    assert!(
        page.contains("已发完") && page.contains("已发送 3"),
        "{page}"
    );
    assert!(!page.contains("等待免打扰"), "{page}");
}
on_each_backend!(a_launched_campaign_says_what_its_messages_wait_for);
