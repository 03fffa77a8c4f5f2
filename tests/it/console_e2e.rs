//! The console in headless Chromium: login, list, search, customer 360, masking, language,
//! logout. Runs when Chromium, Node and `tests/e2e/node_modules` are there (`.ci/run` installs
//! them); otherwise says plainly that it was skipped.

use crate::common;
use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;
use std::path::Path;
use std::process::Command;

use siyu::know::identity::{Identity, IdentityKind};
use siyu::know::orders::OrderRecord;
use siyu::platform::access::{self, Role};

use common::{Backend, TestServer};

/// A Tmall order: the buyer's phone and their Tmall id.
fn order(no: &str, phone: &str, amount: i64, days_ago: i64) -> OrderRecord {
    let at = siyu::platform::clock::now_ms() - days_ago * 86_400_000;
    let mut o = common::store_order(no, &[phone], amount, at);
    o.channel = "tmall".into();
    o.buyer_name = Some("张三".into());
    o.identities
        .push(Identity::new(IdentityKind::Tmall, &format!("tb-{no}"), None).expect("buyer"));
    o
}

pub async fn seed(s: &TestServer) -> (String, String, String) {
    let t = access::create_tenant(s.db(), "品牌甲")
        .await
        .expect("tenant");
    access::create_user(
        s.db(),
        t.id,
        "admin",
        "管理员",
        "correct-horse",
        Role::Admin,
    )
    .await
    .expect("user");
    let orders = vec![
        order("T-1", "13800138000", 29_900, 30),
        order("T-2", "138 0013 8000", 9_900, 3),
        order("T-3", "13900139000", 5_000, 1),
    ];
    common::store(s.db(), t.id, orders).await;
    siyu::know::profile::recompute_all(s.db(), t.id, siyu::platform::clock::now_ms())
        .await
        .expect("figures");
    // A member who joined in store, and a coupon template.
    let join = siyu::convert::members::JoinRequest {
        identity: siyu::know::identity::Identity::Phone(
            siyu::know::phone::Phone::parse("13800138000").expect("phone"),
        ),
        via: siyu::convert::members::JoinedVia::Store,
        store_id: Some("SH-01".into()),
        birthday_month: None,
        display_name: None,
    };
    siyu::convert::members::join(
        s.db(),
        &s.cipher,
        t.id,
        &join,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("member");
    let template: siyu::convert::coupons::TemplateInput = serde_json::from_value(serde_json::json!({
        "name": "满300减30", "kind": "amount_off", "value": 3000, "threshold": 30000, "valid_days": 30, "total": 100,
        "claim_via": "card"
    }))
    .expect("template");
    siyu::convert::coupons::create_template(
        s.db(),
        t.id,
        &template,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("coupon template");
    seed_wecom(s, t.id).await;
    ("品牌甲".into(), "admin".into(), "correct-horse".into())
}

/// A live code with one add through it, and a VIP group whose members joined six weeks ago, one
/// of whom left a week later: the WeCom page has a code row and a retention table to show.
async fn seed_wecom(s: &TestServer, tenant: TenantId) {
    use siyu::connect::client::{ChatMember, Content, GroupChat};
    use siyu::connect::live_codes::{self, GuideSlot, NewLiveCode, Welcome};
    use siyu::connect::service::CorpSettings;
    use siyu_wecom_sandbox::{Sandbox, SandboxCorp};
    let now = siyu::platform::clock::now_ms();
    let wecom = Sandbox::start(SandboxCorp::default())
        .await
        .expect("sandbox");
    let sc = wecom.corp().clone();
    let corp = s
        .app
        .connect
        .configure(
            tenant,
            CorpSettings {
                corp_id: sc.corp_id,
                secret: sc.secret,
                token: sc.token,
                encoding_aes_key: sc.encoding_aes_key,
                base_url: Some(wecom.url().to_owned()),
            },
            now,
        )
        .await
        .expect("wecom");
    let code = live_codes::create(
        s.db(),
        &corp.api,
        tenant,
        NewLiveCode {
            name: "静安店活码".into(),
            source: "store".into(),
            source_id: None,
            tag_ids: vec![],
            welcome: Welcome {
                content: Content {
                    text: "欢迎".into(),
                    attachments: vec![],
                },
                by_time: vec![],
            },
            guides: vec![GuideSlot {
                userid: "ba_li".into(),
                weekdays: vec![],
                from: None,
                to: None,
                daily_cap: None,
            }],
            backup_userid: "ba_zhao".into(),
        },
        now,
        480,
    )
    .await
    .expect("live code");
    let callback = s.url(&format!("/callbacks/wecom/{tenant}"));
    let weeks6 = (now - 42 * 86_400_000) / 1000;
    siyu::connect::groups::store_snapshot(
        s.db(),
        tenant,
        &GroupChat {
            chat_id: "wrE2E".into(),
            name: "VIP 福利群".into(),
            owner: "ba_li".into(),
            create_time: weeks6,
            member_list: ["wmE2EA", "wmE2EB"]
                .iter()
                .map(|m| ChatMember {
                    userid: (*m).into(),
                    member_type: 2,
                    join_time: weeks6,
                    join_scene: 3,
                })
                .collect(),
        },
        now,
    )
    .await
    .expect("group");
    for env in [
        wecom.customer_adds("ba_li", "wmE2E1", None, Some(&code.state)),
        wecom.leave_group("wrE2E", &["wmE2EB"], weeks6 + 10 * 86_400),
    ] {
        let (st, body) = wecom.deliver(&callback, &env).await.expect("deliver");
        assert_eq!((st, body.as_str()), (200, "success"));
    }
    let drained = s
        .app
        .connect
        .wait_drained(tenant, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(drained, Ok(()), "WeCom callbacks unfinished");
}

/// Chromium and the e2e folder, or `None` (and a plain skip) when they are not installed.
fn browser(test: &str) -> Option<(String, std::path::PathBuf)> {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !Path::new(&chromium).exists()
        || !node_ok
        || !e2e.join("node_modules/playwright-core").exists()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Chromium, node or tests/e2e/node_modules is missing: {test} would be skipped"
        );
        eprintln!(
            "SKIPPED {test}: needs {chromium}, node and tests/e2e/node_modules \
             (apt-get install chromium; npm ci --prefix tests/e2e)"
        );
        return None;
    }
    Some((chromium, e2e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_works_in_headless_chromium() {
    let Some((chromium, e2e)) = browser("console_works_in_headless_chromium") else {
        return;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let (tenant, user, password) = seed(&s).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let base = s.base.clone();
    let shots_arg = shots.display().to_string();
    let args = vec![
        base,
        tenant,
        user,
        password,
        "13800138000".into(),
        shots_arg,
    ];
    run_node(
        &e2e.join("console.mjs"),
        &args,
        &chromium,
        &shots,
        "all console checks passed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h5_pages_work_on_a_phone_screen() {
    let Some((chromium, e2e)) = browser("h5_pages_work_on_a_phone_screen") else {
        return;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let t = access::create_tenant(s.db(), "品牌乙")
        .await
        .expect("tenant");
    let now = siyu::platform::clock::now_ms();
    let sale = |name: &str, starts_at: i64| siyu::convert::flash::SaleInput {
        name: name.into(),
        sku: "CREAM".into(),
        title: "修护面霜 50ml".into(),
        price: Fen::new(9_900),
        original_price: Some(Fen::new(29_900)),
        stock: 5,
        per_customer: 1,
        starts_at,
        ends_at: now + 3_600_000,
        pay_minutes: 15,
    };
    let soon = s
        .app
        .flash
        .create(t.id, &sale("明早秒杀", now + 600_000), now)
        .await
        .expect("sale");
    let live = s
        .app
        .flash
        .create(t.id, &sale("正在秒杀", now - 1_000), now)
        .await
        .expect("sale");
    let orders = vec![order("H-1", "13700137000", 10_000, 3)];
    common::store(s.db(), t.id, orders).await;
    let (customer,): (i64,) = s
        .db()
        .fetch_one(&siyu::platform::db::sql(
            "SELECT customer_id FROM orders WHERE order_no = 'H-1'",
        ))
        .await
        .expect("customer");
    let token = s
        .cipher
        .customer_token(siyu::platform::crypto::CustomerClaim {
            tenant_id: t.id,
            customer_id: CustomerId::new(customer),
            issued_at: 0,
            expires_at: now + 3_600_000,
        });
    let template: siyu::convert::coupons::TemplateInput = serde_json::from_value(serde_json::json!({
        "name": "满300减30", "kind": "amount_off", "value": 3000, "threshold": 30000, "valid_days": 30, "total": 100,
        "claim_via": "h5"
    }))
    .expect("template");
    let template = siyu::convert::coupons::create_template(s.db(), t.id, &template, now)
        .await
        .expect("coupon template");
    let group: siyu::convert::group_buy::GroupBuyInput = serde_json::from_value(serde_json::json!({
        "name": "3人团", "sku": "TEA", "title": "明前龙井礼盒", "price": 6_900, "original_price": 12_900,
        "team_size": 3, "team_minutes": 60, "starts_at": now - 1_000, "ends_at": now + 86_400_000
    }))
    .expect("group buy");
    let group = siyu::convert::group_buy::create(s.db(), t.id, &group, now)
        .await
        .expect("group buy");
    let item: siyu::convert::bargain::ItemInput = serde_json::from_value(serde_json::json!({
        "name": "砍价0元领", "sku": "MASK", "title": "补水面膜", "price": 19_900, "floor_price": 990,
        "assists": 5, "stock": 10, "starts_at": now - 1_000, "ends_at": now + 86_400_000
    }))
    .expect("bargain item");
    let item = siyu::convert::bargain::create_item(s.db(), t.id, &item, now)
        .await
        .expect("bargain item");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("h5-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let args = vec![
        s.base.clone(),
        token,
        soon.id.to_string(),
        live.id.to_string(),
        shots.display().to_string(),
        template.id.to_string(),
        group.id.to_string(),
        item.id.to_string(),
    ];
    run_node(
        &e2e.join("h5.mjs"),
        &args,
        &chromium,
        &shots,
        "all H5 checks passed",
    )
    .await;
    let (paid,): (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT COUNT(*) FROM orders WHERE channel = 'mall' AND customer_id = $1",
            )
            .bind(customer),
        )
        .await
        .expect("orders");
    assert_eq!(paid, 1, "paying on the page made the order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_card_is_claimed_on_a_phone_screen() {
    let Some((chromium, e2e)) = browser("a_package_card_is_claimed_on_a_phone_screen") else {
        return;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, key) = common::tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let c = reqwest::Client::new();
    let (st, t) = common::send(&c, reqwest::Method::POST, &s.url("/api/v1/coupon-templates"), &key,
        Some(serde_json::json!({"name": "包裹卡20元券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": 100, "claim_via": "card"}))).await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{t}");
    let (st, b) = common::send(&c, reqwest::Method::POST, &s.url("/api/v1/card-batches"), &key,
        Some(serde_json::json!({"name": "天猫包裹卡", "channel": "tmall", "coupon_template_id": t["id"], "size": 3,
            "contact_qr_url": "https://work.weixin.qq.com/ca/guide"}))).await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{b}");
    let id = b["batch"]["id"].as_i64().expect("batch");
    let csv = c
        .get(s.url(&format!("/api/v1/card-batches/{id}/cards.csv")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("csv body");
    let card = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a card")
        .to_owned();
    // The code the buyer would receive by SMS, asked for as the page does.
    let phone = "13912345678";
    let (st, v) = common::send(
        &c,
        reqwest::Method::POST,
        &s.url(&format!("/h5/v1/cards/{card}/otp")),
        "",
        Some(common::code_request(&s, phone).await),
    )
    .await;
    assert_eq!(st, reqwest::StatusCode::ACCEPTED, "{v}");
    let otp = common::sent_code(&s).await;
    assert_eq!(otp.len(), 6, "no verification SMS was sent");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("card-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let args = [
        s.base.clone(),
        card,
        phone.to_owned(),
        otp,
        shots.display().to_string(),
    ];
    run_node(
        &e2e.join("card.mjs"),
        &args,
        &chromium,
        &shots,
        "all card checks passed",
    )
    .await;
}

/// Runs an e2e script under Node with Chromium; fails the test with its output (and where the
/// screenshots are) unless it succeeds and prints `done`.
async fn run_node(script: &Path, args: &[String], chromium: &str, shots: &Path, done: &str) {
    let (script, args, chromium) = (script.to_owned(), args.to_vec(), chromium.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args(&args)
            .env("CHROMIUM_PATH", chromium)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    // The failed check first: a CI log that keeps only a line or two still says what broke.
    assert!(
        out.status.success(),
        "e2e failed: {} (screenshots in {}):\n{stdout}\n{stderr}",
        stderr.trim(),
        shots.display()
    );
    assert!(stdout.contains(done), "{stdout}");
}

/// Channel data from the console in Chromium: a shop connected by the seller's authorisation
/// against the Tmall sandbox (the form-action policy holds the browser to the console, so the
/// form answers a page that sends it on), and an order export uploaded with its progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shops_and_exports_from_the_console_in_chromium() {
    use siyu_marketplace_sandbox::{Platform, Sandbox, Shop, generate};
    let Some((chromium, e2e)) = browser("shops_and_exports_from_the_console_in_chromium") else {
        return;
    };
    let s = TestServer::start_with(Backend::Sqlite, |a| a.marketplace_allow_api_base = true).await;
    let t = access::create_tenant(s.db(), "品牌丙")
        .await
        .expect("tenant");
    access::create_user(
        s.db(),
        t.id,
        "admin",
        "管理员",
        "correct-horse",
        Role::Admin,
    )
    .await
    .expect("user");
    let now = siyu::platform::clock::now_ms();
    let mut shop = Shop::new(
        Platform::Tmall,
        generate(Platform::Tmall, 50, 3, now - 3_600_000, now - 120_000),
    );
    shop.callback_url = Some(s.url("/console/shops/authorized"));
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shops-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let export = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exports/jd/orders.csv");
    let args = vec![
        s.base.clone(),
        "品牌丙".into(),
        "admin".into(),
        "correct-horse".into(),
        sandbox.base.clone(),
        shop.app_key.clone(),
        shop.app_secret.clone(),
        export.display().to_string(),
        shots.display().to_string(),
    ];
    run_node(
        &e2e.join("shops.mjs"),
        &args,
        &chromium,
        &shots,
        "all channel data checks passed",
    )
    .await;
    // What the browser did is in the store: the shop with its granted token, the receipt.
    let shops = siyu::know::shops::list(s.db(), t.id).await.expect("shops");
    assert_eq!(shops.len(), 1);
    assert_eq!(sandbox.stats().grants, 1);
    let runs = siyu::know::import::receipts::list(s.db(), t.id, 5)
        .await
        .expect("receipts");
    assert!(runs.iter().any(|r| r.rejected == 1), "{runs:?}");
}

/// The day's operations in Chromium with only the console: WeCom set up against the sandbox (a
/// wrong secret refused first), a live code, a chart bar saved as a segment, a coupon template
/// made and issued to it, and a mass message's reach previewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_operations_in_chromium() {
    use siyu_wecom_sandbox::{Sandbox, SandboxCorp};
    let Some((chromium, e2e)) = browser("the_days_operations_in_chromium") else {
        return;
    };
    let s = TestServer::start(Backend::Sqlite).await;
    let t = access::create_tenant(s.db(), "品牌丁")
        .await
        .expect("tenant");
    for (user, name, role) in [
        ("boss", "店长", Role::Admin),
        ("checker", "审批人", Role::Admin),
        ("clerk", "店员", Role::Guide),
    ] {
        access::create_user(s.db(), t.id, user, name, "correct-horse", role)
            .await
            .expect("user");
    }
    let orders = vec![
        order("D-1", "13800138001", 29_900, 30),
        order("D-2", "13800138002", 9_900, 3),
        order("D-3", "13800138003", 5_000, 200),
    ];
    common::store(s.db(), t.id, orders).await;
    let now = siyu::platform::clock::now_ms();
    siyu::know::profile::recompute_all(s.db(), t.id, now)
        .await
        .expect("figures");
    // A coupon already on a customer's phone, for store staff to redeem.
    let template: siyu::convert::coupons::TemplateInput = serde_json::from_value(serde_json::json!({
        "name": "门店满300减30", "kind": "amount_off", "value": 3000, "threshold": 30000, "valid_days": 30,
        "total": 10, "claim_via": "api"
    }))
    .expect("template");
    let template = siyu::convert::coupons::create_template(s.db(), t.id, &template, now)
        .await
        .expect("coupon template");
    let holder = siyu::know::CustomerId::new(common::order_owner(s.db(), t.id, "D-2").await);
    let granted = siyu::convert::coupons::grant(s.db(), t.id, template.id, &[holder], "test", now)
        .await
        .expect("grant");
    let code = granted.granted[0].code.clone();
    // A customer group the WeCom sync found, of no kind yet.
    siyu::connect::groups::store_snapshot(
        s.db(),
        t.id,
        &siyu::connect::client::GroupChat {
            chat_id: "wrOPS".into(),
            name: "静安店会员群".into(),
            owner: "ba_li".into(),
            create_time: now / 1000 - 86_400,
            member_list: vec![],
        },
        now,
    )
    .await
    .expect("group");
    let wecom = Sandbox::start(SandboxCorp::default())
        .await
        .expect("sandbox");
    let corp = wecom.corp().clone();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("operations-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let args = vec![
        s.base.clone(),
        "品牌丁".into(),
        "correct-horse".into(),
        wecom.url().to_owned(),
        corp.corp_id.clone(),
        corp.secret.clone(),
        corp.token.clone(),
        corp.encoding_aes_key.clone(),
        shots.display().to_string(),
        code.clone(),
    ];
    run_node(
        &e2e.join("operations.mjs"),
        &args,
        &chromium,
        &shots,
        "all operations checks passed",
    )
    .await;
    // What the browser did is in the store.
    let granted: (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND template_id <> $2",
            )
            .bind(t.id)
            .bind(template.id),
        )
        .await
        .expect("coupons");
    let (snapshot_size,): (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT size FROM segment_snapshots WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(t.id),
        )
        .await
        .expect("the bar's snapshot");
    assert!(snapshot_size > 0, "the bar's segment has people");
    assert_eq!(
        granted.0,
        snapshot_size.min(100),
        "one coupon for each person of the snapshot, within the template's 100"
    );
    assert!(
        s.app.connect.settings_view(t.id).await.is_ok(),
        "WeCom is set up"
    );
    let (asked, approved): (Option<String>, Option<String>) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT approval_asked_by, approved_by FROM campaigns WHERE tenant_id = $1",
            )
            .bind(t.id),
        )
        .await
        .expect("the recall");
    let (asked, approved) = (asked.unwrap_or_default(), approved.unwrap_or_default());
    assert!(
        asked.contains("店长") && approved.contains("审批人"),
        "asked by the boss, approved by the checker: {asked} / {approved}"
    );
    let (status, by): (String, Option<String>) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT status, redeemed_by FROM coupons WHERE tenant_id = $1 AND code = $2",
            )
            .bind(t.id)
            .bind(&code),
        )
        .await
        .expect("the shown coupon");
    assert_eq!(
        (status.as_str(), by.as_deref()),
        ("redeemed", Some("console:店员")),
        "store staff redeemed the code shown, and who they were is kept"
    );
}
