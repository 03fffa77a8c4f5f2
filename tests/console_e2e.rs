//! The console in headless Chromium: login, list, search, customer 360, masking, language,
//! logout. Runs when Chromium, Node and `tests/e2e/node_modules` are there (`.ci/run` installs
//! them); otherwise says plainly that it was skipped.

mod common;

use std::path::Path;
use std::process::Command;

use siyu::know::identity::{Identity, IdentityKind};
use siyu::know::orders::{OrderRecord, OrderStatus, key_identities, store_orders};
use siyu::platform::access::{self, Role};

use common::{Backend, TestServer};

fn order(no: &str, phone: &str, amount: i64, days_ago: i64) -> OrderRecord {
    OrderRecord {
        channel: "tmall".into(),
        order_no: no.into(),
        status: OrderStatus::Completed,
        ordered_at: siyu::platform::clock::now_ms() - days_ago * 86_400_000,
        paid_at: None,
        amount,
        refund_amount: 0,
        store_id: None,
        guide_id: None,
        buyer_name: Some("张三".into()),
        phone_hint: None,
        province: None,
        identities: vec![
            Identity::new(IdentityKind::Phone, phone, None).expect("phone"),
            Identity::new(IdentityKind::Tmall, &format!("tb-{no}"), None).expect("buyer"),
        ],
        lines: vec![],
    }
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
    let keyed = key_identities(&s.cipher, &orders);
    store_orders(
        s.db(),
        t.id,
        "test",
        &orders,
        &keyed,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("orders");
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
        "name": "满300减30", "kind": "amount_off", "value": 3000, "threshold": 30000, "valid_days": 30, "total": 100
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
    ("品牌甲".into(), "admin".into(), "correct-horse".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_works_in_headless_chromium() {
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
            "CI is set but Chromium, node or tests/e2e/node_modules is missing: the console test would be skipped"
        );
        eprintln!(
            "SKIPPED console_works_in_headless_chromium: needs {chromium}, node and tests/e2e/node_modules \
             (apt-get install chromium; npm ci --prefix tests/e2e)"
        );
        return;
    }
    let s = TestServer::start(Backend::Sqlite).await;
    let (tenant, user, password) = seed(&s).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let base = s.base.clone();
    let shots_arg = shots.display().to_string();
    let script = e2e.join("console.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args([&base, &tenant, &user, &password, "13800138000", &shots_arg])
            .env("CHROMIUM_PATH", chromium)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "console e2e failed (screenshots in {}):\n{stdout}\n{stderr}",
        shots.display()
    );
    assert!(stdout.contains("all console checks passed"));
}
