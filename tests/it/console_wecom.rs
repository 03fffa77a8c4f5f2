//! WeCom set up from the console (企业微信设置) against the WeCom sandbox, over HTTP with the
//! console session, on both backends: the callback address to paste is shown, saving tests the
//! connection by asking WeCom for a token, a wrong secret is said at once in WeCom's own code,
//! a malformed key is refused by field with what was typed kept (never the secrets), only an
//! admin may hand the secret over, and an operator makes a live code whose contact way WeCom
//! creates at once.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::access::{self, Role};
use siyu_wecom_sandbox::{Sandbox, SandboxCorp};

use common::{
    Backend, TestServer, console_form, console_page, console_session, no_redirects, tenant_with_key,
};

const PASSWORD: &str = "a-long-password";

async fn wecom_is_set_up_and_tested_in_the_console(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("boss", Role::Admin), ("ops", Role::Operator)] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let wecom = Sandbox::start(SandboxCorp::default())
        .await
        .expect("sandbox");
    let corp = wecom.corp().clone();

    let p = console_page(&c, &s, &boss, "/console/connect").await;
    assert!(p.contains("还没有设置企业微信"), "{p}");
    assert!(
        p.contains(&format!("/callbacks/wecom/{tenant}")),
        "the callback to paste"
    );
    assert!(p.contains("id=\"wecom-form\""));
    assert!(
        !console_page(&c, &s, &ops, "/console/connect")
            .await
            .contains("id=\"wecom-form\""),
        "not to an operator"
    );

    let form = |secret: &str, key: String| {
        vec![
            ("corp_id", corp.corp_id.clone()),
            ("secret", secret.to_owned()),
            ("token", corp.token.clone()),
            ("encoding_aes_key", key),
            ("base_url", wecom.url().to_owned()),
        ]
    };

    let code = |guides: &'static str| {
        [
            ("name", "静安店活码"),
            ("source", "store"),
            ("source_id", ""),
            ("guides", guides),
            ("daily_cap", "50"),
            ("backup_userid", "ba_zhao"),
            ("welcome", "欢迎光临茶小铺，回复 1 领新人券"),
        ]
    };
    // A live code before WeCom is set up: said, nothing made.
    let (st, _, p) =
        console_form(&c, &s, &ops, "/console/connect/live-codes", &code("ba_li")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("还没有设置企业微信"), "{p}");

    // A malformed key: refused by field, the corp id kept, no secret written back.
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        "/console/connect/wecom",
        &form("typed-secret-1", "short".into()),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        p.contains("EncodingAESKey：须为企业微信后台生成的 43 位字符"),
        "{p}"
    );
    assert!(
        p.contains(&format!("value=\"{}\"", corp.corp_id)),
        "the corp id is kept"
    );
    assert!(
        !p.contains("typed-secret-1"),
        "the secret is not written back"
    );
    // A wrong secret: WeCom's refusal said at once, and nothing saved (a typo must not replace
    // settings that work) unless the operator insists.
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        "/console/connect/wecom",
        &form("not-the-secret", corp.encoding_aes_key.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY);
    assert!(p.contains("连接失败：企业微信答复 errcode 40001"), "{p}");
    assert!(p.contains("设置没有保存"), "{p}");
    assert!(
        s.app.connect.settings_view(tenant).await.is_err(),
        "nothing saved"
    );
    let mut insisted = form("not-the-secret", corp.encoding_aes_key.clone());
    insisted.push(("save_anyway", "1".to_owned()));
    let (st, _, p) = console_form(&c, &s, &boss, "/console/connect/wecom", &insisted).await;
    assert_eq!(st, StatusCode::BAD_GATEWAY);
    assert!(p.contains("设置已按要求保存"), "{p}");
    assert!(
        s.app.connect.settings_view(tenant).await.is_ok(),
        "saved as asked"
    );
    // The right one: connected.
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        "/console/connect/wecom",
        &form(&corp.secret, corp.encoding_aes_key.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert!(p.contains("连接正常"), "{p}");
    for secret in [&corp.secret, &corp.encoding_aes_key, &corp.token] {
        assert!(
            !p.contains(secret.as_str()),
            "no secret written back into the page"
        );
    }
    assert!(
        p.contains(&format!("已设置：企业 ID {}", corp.corp_id)),
        "{p}"
    );
    // Tested again from the saved settings.
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        "/console/connect/wecom/test",
        &[] as &[(&str, &str)],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(p.contains("连接正常"), "{p}");
    let view = s
        .app
        .connect
        .settings_view(tenant)
        .await
        .expect("configured");
    assert_eq!(view.corp_id, corp.corp_id);

    // A live code made by an operator: WeCom makes the contact way, the code is listed with its
    // QR to download, and a code without guides is refused by field.
    let (st, to, p) = console_form(
        &c,
        &s,
        &ops,
        "/console/connect/live-codes",
        &code("ba_li, ba_wang"),
    )
    .await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/connect#code-table"),
        "{p}"
    );
    let p = console_page(&c, &s, &ops, "/console/connect").await;
    assert!(
        p.contains("静安店活码") && p.contains("企业微信生成的二维码"),
        "{p}"
    );
    let (guides, backup): (String, String) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT guides, backup_userid FROM live_codes WHERE tenant_id = $1",
            )
            .bind(tenant),
        )
        .await
        .expect("code");
    let guides: Vec<siyu::connect::live_codes::GuideSlot> =
        serde_json::from_str(&guides).expect("guides as stored");
    let slots: Vec<(&str, Option<i64>)> = guides
        .iter()
        .map(|g| (g.userid.as_str(), g.daily_cap))
        .collect();
    assert_eq!(
        slots,
        [("ba_li", Some(50)), ("ba_wang", Some(50))],
        "each guide with the daily cap typed"
    );
    assert_eq!(backup, "ba_zhao");
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/live-codes", &code("")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("接待导购：至少填一位导购"), "{p}");
    assert!(p.contains("value=\"静安店活码\""), "what was typed is kept");

    // A code with a rota: two guides on weekdays 09:00–18:00 (30 a day each), one on weekends
    // all day, a night welcome, and a tag for each new contact. A shift with a start and no end
    // is refused by name, with what was typed kept.
    let tag = siyu::know::tags::create(
        s.db(),
        tenant,
        "渠道",
        "夜班进粉",
        None,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("tag");
    let rota = |to: &str| -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = [
            ("name", "夜班活码"),
            ("source", "store"),
            ("guides", "ba_li"),
            ("daily_cap", ""),
            ("backup_userid", "ba_zhao"),
            ("welcome", "欢迎光临"),
            ("shift1_guides", "ba_wang, ba_sun"),
            ("shift1_from", "09:00"),
            ("shift1_to", to),
            ("shift1_cap", "30"),
            ("shift2_guides", "ba_zhou"),
            ("shift2_day", "6"),
            ("shift2_day", "7"),
            ("timed1_from", "21:00"),
            ("timed1_to", "09:00"),
            ("timed1_text", "夜深了，明早回复您"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for d in 1..=5 {
            f.push(("shift1_day".into(), d.to_string()));
        }
        f.push(("tag".into(), tag.id.to_string()));
        f
    };
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/live-codes", &rota("")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{p}");
    assert!(p.contains("班次时间：开始和结束都填"), "{p}");
    assert!(
        p.contains("value=\"ba_wang, ba_sun\"")
            && p.contains("name=\"shift1_day\" value=\"3\" checked")
            && p.contains("夜深了，明早回复您"),
        "the rota typed is kept: {p}"
    );
    let (st, to, p) =
        console_form(&c, &s, &ops, "/console/connect/live-codes", &rota("18:00")).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/connect#code-table"),
        "{p}"
    );
    let (guides, welcome, tags): (String, String, String) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT guides, welcome, tag_ids FROM live_codes WHERE tenant_id = $1 AND name = '夜班活码'",
            )
            .bind(tenant),
        )
        .await
        .expect("the rota's code");
    let guides: Vec<siyu::connect::live_codes::GuideSlot> =
        serde_json::from_str(&guides).expect("guides");
    // (guide, weekdays, from, to, daily cap)
    type Slot<'a> = (
        &'a str,
        Vec<u8>,
        Option<&'a str>,
        Option<&'a str>,
        Option<i64>,
    );
    let shown: Vec<Slot> = guides
        .iter()
        .map(|g| {
            (
                g.userid.as_str(),
                g.weekdays.clone(),
                g.from.as_deref(),
                g.to.as_deref(),
                g.daily_cap,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("ba_li", vec![], None, None, None),
            (
                "ba_wang",
                vec![1, 2, 3, 4, 5],
                Some("09:00"),
                Some("18:00"),
                Some(30)
            ),
            (
                "ba_sun",
                vec![1, 2, 3, 4, 5],
                Some("09:00"),
                Some("18:00"),
                Some(30)
            ),
            ("ba_zhou", vec![6, 7], None, None, None),
        ]
    );
    let welcome: siyu::connect::live_codes::Welcome =
        serde_json::from_str(&welcome).expect("welcome");
    assert_eq!(
        (
            welcome.by_time.len(),
            welcome.by_time[0].from.as_str(),
            welcome.by_time[0].content.text.as_str()
        ),
        (1, "21:00", "夜深了，明早回复您")
    );
    assert!(tags.contains(&tag.id.to_string()), "{tags}");

    // A mass message to a snapshot: previewed (who it would reach, decided as the release
    // decides), then scheduled.
    common::make_customers(&s, &key, 3, 2).await;
    let (st, seg) = common::send(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/segments"),
        &key,
        Some(serde_json::json!({"name": "全部", "rule": {"and": []}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{seg}");
    let (st, snap) = common::send(
        &c,
        reqwest::Method::POST,
        &s.url(&format!("/api/v1/segments/{}/snapshots", seg["id"])),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{snap}");
    let snapshot = snap["id"].as_i64().expect("snapshot").to_string();
    let mass = [
        ("name", "新品上市"),
        ("snapshot_id", snapshot.as_str()),
        ("text", "新品到店，来店试用"),
        ("purpose", "service"),
        ("send_at", ""),
    ];
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/mass/preview", &mass).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert!(
        p.contains("预览：人群 2 人 —— 交给导购发送 0，没有企微好友 2"),
        "{p}"
    );
    assert!(
        p.contains("value=\"新品到店，来店试用\""),
        "the form is kept for the send"
    );
    let (st, to, _) = console_form(&c, &s, &ops, "/console/connect/mass", &mass).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/connect#mass")
    );
    assert!(
        console_page(&c, &s, &ops, "/console/connect")
            .await
            .contains("新品上市")
    );
    let no_text = [
        ("name", "x"),
        ("snapshot_id", snapshot.as_str()),
        ("text", ""),
        ("purpose", "marketing"),
        ("send_at", ""),
    ];
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/mass", &no_text).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("内容：必填"), "{p}");

    // A group SOP post to VIP groups: the form says how many groups and owners that is now.
    wecom.put_group(siyu::connect::client::GroupChat {
        chat_id: "wrVIP1".into(),
        name: "VIP 福利群".into(),
        owner: "ba_li".into(),
        create_time: siyu::platform::clock::now_ms() / 1000,
        member_list: vec![],
    });
    let (st, v) = common::send(
        &c,
        reqwest::Method::POST,
        &s.url("/api/v1/groups/sync"),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = common::send(
        &c,
        reqwest::Method::PUT,
        &s.url("/api/v1/groups/wrVIP1/kind"),
        &key,
        Some(serde_json::json!({"kind": "vip"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let p = console_page(&c, &s, &ops, "/console/connect").await;
    assert!(p.contains("VIP 群 1 个群 / 1 位群主"), "{p}");
    let post = |repeat: &'static str| {
        [
            ("name", "周三会员日"),
            ("group_kind", "vip"),
            ("due_at", "2030-01-02T20:00"),
            ("text", "今晚 8 点会员日，满 300 减 50"),
            ("repeat_every_days", repeat),
        ]
    };
    let mut past = post("7");
    past[2] = ("due_at", "2020-01-01T20:00");
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/sop", &past).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("发送时间：已经过了"), "{p}");
    let mut no_groups = post("7");
    no_groups[1] = ("group_kind", "flash");
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/sop", &no_groups).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("群类型：目前没有这类群"), "{p}");
    let (st, _, p) = console_form(&c, &s, &ops, "/console/connect/sop", &post("0")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(p.contains("每隔几天重复：须为 1–365"), "{p}");
    let (st, to, _) = console_form(&c, &s, &ops, "/console/connect/sop", &post("7")).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/connect#sop")
    );
    let (due, kind, every): (i64, Option<String>, Option<i64>) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT due_at, group_kind, repeat_days FROM sop_posts WHERE tenant_id = $1",
            )
            .bind(tenant),
        )
        .await
        .expect("post");
    assert_eq!(
        siyu::platform::clock::china_seconds_text(due),
        "2030-01-02 20:00:00"
    );
    assert_eq!((kind.as_deref(), every), (Some("vip"), Some(7)));

    // An operator may not hand the secret over.
    let (st, _, p) = console_form(
        &c,
        &s,
        &ops,
        "/console/connect/wecom",
        &form("x", corp.encoding_aes_key.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(p.contains("只有管理员可以设置企业微信"), "{p}");
    let (st, _, _) = console_form(
        &c,
        &s,
        &ops,
        "/console/connect/wecom/test",
        &[] as &[(&str, &str)],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

on_each_backend!(wecom_is_set_up_and_tested_in_the_console);

/// When the snapshots cannot be read, the connect page still opens and the mass form says so in
/// Chinese, rather than offering no snapshot as if the brand had none.
#[tokio::test]
async fn the_mass_form_says_when_snapshots_cannot_be_read() {
    let s = TestServer::start(Backend::Sqlite).await;
    let c = no_redirects();
    let (tenant, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(s.db(), tenant, "ops", "ops", PASSWORD, Role::Operator)
        .await
        .expect("user");
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let p = console_page(&c, &s, &ops, "/console/connect").await;
    assert!(!p.contains("人群快照暂时读不出来"), "{p}");
    const NONE_YET: &str = "先在“人群”或“RFM 分层”页保存一个人群快照";
    assert!(
        p.contains(NONE_YET),
        "a brand without snapshots is told how to make one"
    );
    s.db()
        .execute(&siyu::platform::db::sql(
            "ALTER TABLE segment_snapshots RENAME TO segment_snapshots_away",
        ))
        .await
        .expect("hide the table");
    let p = console_page(&c, &s, &ops, "/console/connect").await;
    assert!(
        p.contains("人群快照暂时读不出来，请稍后刷新页面再试"),
        "{p}"
    );
    assert!(
        !p.contains(NONE_YET),
        "not told it has none when they could not be read"
    );
    assert!(
        p.contains("id=\"new-code\"") && p.contains("id=\"new-sop\""),
        "the rest of the page still shows"
    );
}
