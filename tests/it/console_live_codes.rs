//! A live code changed, stopped and downloaded from the console against the WeCom sandbox, on
//! both backends: the form opens filled in with the code, a change moves WeCom's contact way to
//! the new rota at once, a bad change is refused in Chinese with what was typed kept, the QR is
//! read from WeCom's own picture and drawn again at print size (PNG and SVG, with the console
//! session and with a key), a stopped code's contact way is deleted in WeCom while its figures
//! stay, and another brand's code is not there.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;
use siyu_wecom_sandbox::{Sandbox, SandboxCorp};

use common::{
    Backend, TestServer, console_form, console_page, console_session, no_redirects, tenant_with_key,
};

const PASSWORD: &str = "a-long-password";

async fn a_live_code_is_changed_downloaded_and_stopped(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("boss", Role::Admin), ("viewer", Role::Viewer)] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;
    let wecom = Sandbox::start(SandboxCorp::default())
        .await
        .expect("sandbox");
    let corp = wecom.corp().clone();
    let settings = [
        ("corp_id", corp.corp_id.clone()),
        ("secret", corp.secret.clone()),
        ("token", corp.token.clone()),
        ("encoding_aes_key", corp.encoding_aes_key.clone()),
        ("base_url", wecom.url().to_owned()),
    ];
    let (st, _, p) = console_form(&c, &s, &boss, "/console/connect/wecom", &settings).await;
    assert_eq!(st, StatusCode::OK, "{p}");

    // Made with a late shift and a welcome for the night.
    let made = [
        ("name", "静安店活码"),
        ("source", "store"),
        ("guides", "ba_li"),
        ("daily_cap", "50"),
        ("backup_userid", "ba_zhao"),
        ("welcome", "欢迎光临茶小铺"),
        ("shift1_guides", "ba_night"),
        ("shift1_day", "6"),
        ("shift1_day", "7"),
        ("shift1_from", "18:00"),
        ("shift1_to", "22:00"),
        ("timed1_from", "22:00"),
        ("timed1_to", "09:00"),
        ("timed1_text", "晚上好，顾问明早回复您"),
    ];
    let (st, _, p) = console_form(&c, &s, &boss, "/console/connect/live-codes", &made).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{p}");
    let (id, config): (i64, String) = s
        .db()
        .fetch_one(&sql("SELECT id, config_id FROM live_codes WHERE tenant_id = $1").bind(tenant))
        .await
        .expect("code");

    // The form opens filled in with the code, saving to it.
    let p = console_page(&c, &s, &boss, &format!("/console/connect?edit={id}")).await;
    assert!(
        p.contains(&format!("action=\"/console/connect/live-codes/{id}\"")),
        "{p}"
    );
    for kept in [
        "value=\"静安店活码\"",
        "value=\"ba_li\"",
        "value=\"50\"",
        "name=\"shift1_guides\" value=\"ba_night\"",
        "name=\"shift1_from\" type=\"time\" value=\"18:00\"",
        "value=\"晚上好，顾问明早回复您\"",
        "name=\"shift1_day\" value=\"6\" checked",
    ] {
        assert!(p.contains(kept), "the form holds {kept}: {p}");
    }
    assert!(p.contains("保存修改"), "{p}");

    // A bad change: refused in Chinese, the form still the code's, nothing changed in WeCom.
    let mut bad: Vec<(&str, &str)> = made.to_vec();
    bad.retain(|(k, _)| *k != "backup_userid");
    bad.push(("backup_userid", ""));
    bad.retain(|(k, _)| *k != "name");
    bad.push(("name", "静安店活码（新）"));
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        &format!("/console/connect/live-codes/{id}"),
        &bad,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{p}");
    assert!(
        p.contains("form-error") && p.contains("备用导购：必填"),
        "{p}"
    );
    assert!(
        p.contains("value=\"静安店活码（新）\"")
            && p.contains(&format!("action=\"/console/connect/live-codes/{id}\"")),
        "what was typed is kept, still changing the code: {p}"
    );

    // A good change: the guides on all day are now ba_wang, and WeCom serves them at once.
    let mut changed: Vec<(&str, &str)> = made
        .iter()
        .copied()
        .filter(|(k, _)| !k.starts_with("shift") && !["guides", "name"].contains(k))
        .collect();
    changed.push(("guides", "ba_wang"));
    changed.push(("name", "静安店活码二期"));
    let (st, to, p) = console_form(
        &c,
        &s,
        &boss,
        &format!("/console/connect/live-codes/{id}"),
        &changed,
    )
    .await;
    assert_eq!(
        (st, to.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/console/connect?saved=code#code-table"
        ),
        "{p}"
    );
    assert_eq!(wecom.contact_way_users(&config), ["ba_wang"]);
    let p = console_page(&c, &s, &boss, "/console/connect?saved=code").await;
    assert!(
        p.contains("活码已保存") && p.contains("静安店活码二期"),
        "{p}"
    );
    let (source, guides): (String, String) = s
        .db()
        .fetch_one(&sql("SELECT source, guides FROM live_codes WHERE id = $1").bind(id))
        .await
        .expect("code");
    assert_eq!(source, "store", "what it was made for stays");
    assert!(
        !guides.contains("ba_night"),
        "the shift was taken off: {guides}"
    );

    // The QR at print size: read from WeCom's picture, drawn again, named after the code.
    let want = format!("https://work.weixin.qq.com/ca/{config}");
    for (path, auth) in [
        (
            format!("/console/connect/live-codes/{id}/qr.png"),
            ("cookie", boss.clone()),
        ),
        (
            format!("/api/v1/live-codes/{id}/qr.png"),
            ("authorization", format!("Bearer {key}")),
        ),
    ] {
        let r = c
            .get(s.url(&path))
            .header(auth.0, &auth.1)
            .send()
            .await
            .expect("png");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "image/png");
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            disposition.starts_with("attachment;")
                && disposition.contains("filename*=UTF-8''%E6%B4%BB%E7%A0%81-"),
            "{disposition}"
        );
        let png = r.bytes().await.expect("png");
        assert_eq!(siyu::acquire::qr::read(&png).expect("a QR"), want);
        let d = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
        assert!(
            d.read_info().expect("png").info().width >= 400,
            "print size"
        );
    }
    let r = c
        .get(s.url(&format!("/console/connect/live-codes/{id}/qr.svg")))
        .header("cookie", &boss)
        .send()
        .await
        .expect("svg");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.expect("svg").contains("<svg"));

    // Another brand's code is not there.
    let (_, other_key) = tenant_with_key(s.db(), "别家", Role::Admin).await;
    let r = c
        .get(s.url(&format!("/api/v1/live-codes/{id}/qr.png")))
        .header("authorization", format!("Bearer {other_key}"))
        .send()
        .await
        .expect("png");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found", "{body}");

    // A viewer may not stop it; an admin does, and WeCom deletes the contact way.
    let none: &[(&str, &str)] = &[];
    let stop = format!("/console/connect/live-codes/{id}/stop");
    let (st, _, _) = console_form(&c, &s, &viewer, &stop, none).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(wecom.contact_way_users(&config), ["ba_wang"]);
    let (st, _, p) = console_form(&c, &s, &boss, &stop, none).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{p}");
    assert!(
        wecom.contact_way_users(&config).is_empty(),
        "deleted in WeCom"
    );
    let p = console_page(&c, &s, &boss, "/console/connect").await;
    assert!(p.contains("已停用"), "{p}");
    assert!(
        !p.contains(&format!("?edit={id}")),
        "a stopped code is not offered to edit"
    );
    // Stopping again changes nothing; a change to a stopped code is refused.
    let (st, _, _) = console_form(&c, &s, &boss, &stop, none).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, p) = console_form(
        &c,
        &s,
        &boss,
        &format!("/console/connect/live-codes/{id}"),
        &changed,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert!(p.contains("这个活码已停用，不能再修改"), "{p}");
    // Nor is its QR given out to print.
    let r = c
        .get(s.url(&format!("/api/v1/live-codes/{id}/qr.png")))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .expect("png");
    assert_eq!(r.status(), StatusCode::CONFLICT);
}
on_each_backend!(a_live_code_is_changed_downloaded_and_stopped);
