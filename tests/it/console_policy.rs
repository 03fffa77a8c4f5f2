//! The contact policy from the console (触达策略), over HTTP with the console session, on both
//! backends: the rules in force read as a sentence in the brand's time zone, a save replaces them
//! (and the store's policy, which every send path decides by, says the same), refusals name the
//! field in Chinese with what was typed kept, and a viewer may only read them.

use crate::common;
use reqwest::StatusCode;
use siyu::engage::policy;
use siyu::platform::access::{self, Role};

use common::{
    Backend, TestServer, console_form, console_page, console_session, no_redirects, tenant_with_key,
};

const PASSWORD: &str = "a-long-password";

async fn the_contact_policy_is_set_in_the_console(backend: Backend) {
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

    // The defaults, as a sentence, and the form filled with them; linked from the send pages.
    let page = console_page(&c, &s, &ops, "/console/policy").await;
    assert!(
        page.contains("7 天内最多 2 条营销消息；21:00–09:00 为免打扰时段（UTC+08:00）"),
        "{page}"
    );
    assert!(page.contains("value=\"21:00\"") && page.contains("value=\"09:00\""));
    assert!(
        console_page(&c, &s, &ops, "/console/acquire")
            .await
            .contains("id=\"policy-link\"")
    );
    assert!(
        !console_page(&c, &s, &viewer, "/console/policy")
            .await
            .contains("id=\"policy-form\"")
    );

    // Saved: the store's policy says the same, and the page reads it back.
    let form =
        |per_week: &'static str, start: &'static str, end: &'static str, dedupe: &'static str| {
            [
                ("marketing_per_week", per_week),
                ("quiet_start", start),
                ("quiet_end", end),
                ("dedupe_hours", dedupe),
            ]
        };
    let save = async |who: &str, f: [(&'static str, &'static str); 4]| {
        console_form(&c, &s, who, "/console/policy", &f).await
    };
    let (st, to, _) = save(&ops, form("3", "22:30", "08:00", "48")).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/policy?saved=1")
    );
    let p = policy::load(s.db(), tenant).await.expect("policy");
    assert_eq!(
        (
            p.marketing_per_week,
            p.quiet_start_minute,
            p.quiet_end_minute,
            p.dedupe_hours
        ),
        (3, 22 * 60 + 30, 8 * 60, 48)
    );
    let page = console_page(&c, &s, &ops, &to).await;
    assert!(page.contains("已保存"), "{page}");
    assert!(
        page.contains("最多 3 条营销消息；22:30–08:00 为免打扰时段"),
        "{page}"
    );
    // 23:00 China time falls in the new quiet hours: a message then waits until 08:00.
    let at_23 = siyu::platform::clock::from_china_seconds_text("2026-12-05 23:00:00").expect("t");
    let until = p.quiet_until(at_23).expect("quiet");
    assert_eq!(
        siyu::platform::clock::china_seconds_text(until),
        "2026-12-06 08:00:00"
    );
    // Equal ends: no quiet hours.
    let (st, _, _) = save(&ops, form("3", "00:00", "00:00", "0")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = console_page(&c, &s, &ops, "/console/policy").await;
    assert!(
        page.contains("没有免打扰时段") && page.contains("短信不去重"),
        "{page}"
    );
    // A cap of 0 is said to send nothing, not taken for "no limit".
    let (st, _, _) = save(&ops, form("0", "21:00", "09:00", "24")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let page = console_page(&c, &s, &ops, "/console/policy").await;
    assert!(page.contains("不发任何营销消息"), "{page}");
    let (st, _, _) = save(&ops, form("3", "00:00", "00:00", "0")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);

    // Refusals by field, in Chinese, what was typed kept.
    for (f, said) in [
        (
            form("三", "21:00", "09:00", "24"),
            "7 天内最多：「三」不是整数",
        ),
        (
            form("101", "21:00", "09:00", "24"),
            "7 天内最多：须为 0–100 条",
        ),
        (
            form("2", "25:00", "09:00", "24"),
            "免打扰开始：「25:00」不是时间",
        ),
        (
            form("2", "21:00", "09:00", "999"),
            "相同内容去重小时数：须为 0–720",
        ),
    ] {
        let (st, _, page) = save(&ops, f).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{said}");
        assert!(page.contains(said), "{said} in {page}");
        assert!(
            page.contains(&format!("value=\"{}\"", f[0].1)),
            "typed kept"
        );
    }
    let (st, _, page) = save(&viewer, form("9", "21:00", "09:00", "24")).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("只能查看触达策略"));
    assert_eq!(
        policy::load(s.db(), tenant)
            .await
            .expect("policy")
            .marketing_per_week,
        3
    );
}

on_each_backend!(the_contact_policy_is_set_in_the_console);
