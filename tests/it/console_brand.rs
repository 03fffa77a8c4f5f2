//! The brand's look set in the console (品牌外观) and worn by its customers' pages, on both
//! backends: a colour white words cannot be read on and a logo not at an https address are
//! refused in Chinese with what was typed kept, only an admin may change it, and the H5 pages'
//! `/h5/v1/brand` and a package card's landing page carry the name, colour and logo.

use crate::common;
use reqwest::{Method as M, StatusCode};
use serde_json::json;
use siyu::platform::access::{self, Role};

use common::{
    Backend, TestServer, console_form, console_page, console_session, customer_token,
    make_customers, no_redirects, send, tenant_with_key,
};

const PASSWORD: &str = "a-long-password";

async fn the_brands_look_reaches_its_customers_pages(backend: Backend) {
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
    let logo = "https://cdn.tea.cn/logo.png";

    // Before anything is set: the default red, no logo.
    let p = console_page(&c, &s, &boss, "/console/brand").await;
    assert!(
        p.contains("value=\"#e4393c\"") && p.contains("茶小铺"),
        "{p}"
    );

    for (color, url, said) in [
        ("#ffe680", logo, "主色：太浅了"),
        ("红色", logo, "主色：请填写如 #e4393c 的颜色值"),
        (
            "#1a7f37",
            "http://cdn.tea.cn/logo.png",
            "标志图片地址：须以 https:// 开头",
        ),
    ] {
        let form = [("color", color), ("logo_url", url)];
        let (st, _, p) = console_form(&c, &s, &boss, "/console/brand", &form).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{color} {url}");
        assert!(p.contains(said), "{said}: {p}");
        assert!(
            p.contains(&format!("value=\"{color}\"")) && p.contains(&format!("value=\"{url}\"")),
            "what was typed is kept: {p}"
        );
    }
    let good = [("color", "#1A7F37"), ("logo_url", logo)];
    let (st, _, _) = console_form(&c, &s, &ops, "/console/brand", &good).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "an operator may not");
    let (st, to, _) = console_form(&c, &s, &boss, "/console/brand", &good).await;
    assert_eq!(
        (st, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/brand?saved=1")
    );
    let p = console_page(&c, &s, &boss, "/console/brand?saved=1").await;
    assert!(
        p.contains("已保存") && p.contains("value=\"#1a7f37\""),
        "{p}"
    );

    // The H5 pages read it with the customer's session.
    make_customers(&s, &key, 1, 1).await;
    let (customer,): (i64,) = s
        .db()
        .fetch_one(&siyu::platform::db::sql("SELECT MIN(id) FROM customers"))
        .await
        .expect("customer");
    let token = customer_token(&s, tenant, customer);
    let b: serde_json::Value = c
        .get(s.url("/h5/v1/brand"))
        .header("x-siyu-customer", &token)
        .send()
        .await
        .expect("brand")
        .json()
        .await
        .expect("json");
    assert_eq!(
        b,
        json!({"name": "茶小铺", "color": "#1a7f37", "logo_url": logo})
    );
    let r = c
        .get(s.url("/h5/v1/brand"))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "only with a session");

    // A package card's landing page wears it.
    let (st, t) = send(&c, M::POST, &s.url("/api/v1/coupon-templates"), &key,
        Some(json!({"name": "包裹卡券", "kind": "amount_off", "value": 1_000, "valid_days": 30, "total": 10, "claim_via": "card"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, batch) = send(
        &c,
        M::POST,
        &s.url("/api/v1/card-batches"),
        &key,
        Some(json!({"name": "卡", "channel": "tmall", "coupon_template_id": t["id"], "size": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{batch}");
    let csv = c
        .get(s.url(&format!(
            "/api/v1/card-batches/{}/cards.csv",
            batch["batch"]["id"]
        )))
        .bearer_auth(&key)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("csv");
    let code = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a card")
        .trim_start_matches('\u{feff}')
        .to_owned();
    let landing = c
        .get(s.url(&format!("/c/{code}")))
        .send()
        .await
        .expect("landing")
        .text()
        .await
        .expect("html");
    assert!(
        landing.contains("--brand:#1a7f37")
            && landing.contains(&format!("<img src=\"{logo}\""))
            && landing.contains("<span>茶小铺</span>"),
        "{landing}"
    );
}
on_each_backend!(the_brands_look_reaches_its_customers_pages);
