//! Uploading an order export from the console, over HTTP with the console session, on both
//! backends: the overview offers the form with the presets named in Chinese, the JD fixture
//! export lands with its receipt, its rejected row downloads with Chinese leading columns, and
//! refusals (a viewer, an unknown preset, an empty file, the wrong preset) are answered in
//! Chinese naming what to mend.

use crate::common;
use reqwest::StatusCode;
use serde_json::Value;
use siyu::platform::access::{self, Role};

use common::{Backend, TestServer, console_page, console_session, no_redirects, tenant_with_key};

const PASSWORD: &str = "a-long-password";

async fn upload(
    c: &reqwest::Client,
    s: &TestServer,
    cookie: &str,
    query: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let r = c
        .post(s.url(&format!("/console/imports?{query}")))
        .header("cookie", cookie)
        // What a browser's same-origin script sends.
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = r.status();
    (status, r.json().await.expect("json"))
}

async fn uploads_an_export_and_downloads_its_rejected_rows(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = no_redirects();
    let (tenant, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [
        ("boss", Role::Admin),
        ("ops", Role::Operator),
        ("viewer", Role::Viewer),
    ] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;
    let viewer = console_session(&c, &s, "茶小铺", "viewer", PASSWORD).await;

    let p = console_page(&c, &s, &ops, "/console/overview").await;
    assert!(p.contains("id=\"upload-form\""), "offered to an operator");
    assert!(
        p.contains("<option value=\"jd\">京东</option>"),
        "presets by their Chinese names"
    );
    // A generic file's channel is picked by name, not typed as a code.
    let channel_box = p
        .split("id=\"upload-channel\">")
        .nth(1)
        .and_then(|r| r.split("</select>").next())
        .unwrap_or_default();
    assert!(
        channel_box.starts_with("<option value=\"\">按文件里的渠道列</option>")
            && channel_box.contains("<option value=\"mall\">小程序商城</option>")
            && channel_box.contains("<option value=\"store\">门店</option>"),
        "{channel_box}"
    );
    assert!(
        !console_page(&c, &s, &viewer, "/console/overview")
            .await
            .contains("id=\"upload-form\""),
        "not to a viewer"
    );

    // The JD fixture: 13 rows read, one refused for its amount.
    let file = std::fs::read("tests/fixtures/exports/jd/orders.csv").expect("fixture");
    let (st, body) = upload(&c, &s, &ops, "preset=jd&name=jd-orders.csv", file.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let receipt = &body["receipt"];
    assert_eq!(receipt["name"], "jd-orders.csv");
    assert_eq!(receipt["read"], 13, "{receipt}");
    assert_eq!(receipt["rejected"], 1, "{receipt}");
    assert!(receipt["imported"].as_i64().unwrap_or(0) > 0, "{receipt}");
    let id = receipt["id"].as_i64().expect("id");
    let (orders,): (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT COUNT(*) FROM orders WHERE tenant_id = $1 AND channel = 'jd'",
            )
            .bind(tenant),
        )
        .await
        .expect("orders");
    assert_eq!(orders, receipt["imported"].as_i64().unwrap_or(-1));

    // The receipt is listed with its rejected rows, for an admin (they carry phones).
    let link = format!("/console/imports/{id}/rejected.csv");
    assert!(
        console_page(&c, &s, &boss, "/console/overview")
            .await
            .contains(&link),
        "the admin's link"
    );
    assert!(
        !console_page(&c, &s, &ops, "/console/overview")
            .await
            .contains(&link),
        "no link for an operator"
    );
    let r = c
        .get(s.url(&link))
        .header("cookie", &boss)
        .send()
        .await
        .expect("rejected");
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    let csv = csv.trim_start_matches('\u{feff}');
    assert!(csv.starts_with("行号,列,原因,"), "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("11,应付金额,")),
        "{csv}"
    );
    let r = c
        .get(s.url(&link))
        .header("cookie", &ops)
        .send()
        .await
        .expect("rejected");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The same file again: updates, never duplicates.
    let (st, body) = upload(&c, &s, &ops, "preset=jd", file.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["receipt"]["imported"], 0, "{body}");

    // Refusals, in Chinese.
    let (st, body) = upload(&c, &s, &viewer, "preset=jd", file.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("只能查看")),
        "{body}"
    );
    let (st, body) = upload(&c, &s, &ops, "preset=taobao-old", file.clone()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("导出模板：")),
        "{body}"
    );
    let (st, body) = upload(&c, &s, &ops, "preset=jd", b"  \n".to_vec()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("是空的")),
        "{body}"
    );
    let (st, body) = upload(&c, &s, &ops, "preset=tmall", file).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("表头里没有")),
        "{body}"
    );
}

on_each_backend!(uploads_an_export_and_downloads_its_rejected_rows);
