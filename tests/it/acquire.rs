//! Acquire over HTTP on every backend: tracking links redirect and count clicks and visitors,
//! QR codes render; an SMS campaign is checked, launched, sent through the outbox, clicked,
//! bought from and reported (JSON and CSV); replies of 退订 unsubscribe; and the Aliyun and
//! Tencent Cloud providers talk to local fakes that verify signatures as the real services do.

use crate::common;
use siyu::platform::TenantId;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::{Method as M, StatusCode};
use roaring::RoaringBitmap;
use serde_json::{Value, json};
use siyu::channels::sms::aliyun::{self, Aliyun, AliyunConfig};
use siyu::channels::sms::tencent::{self, Tencent, TencentConfig};
use siyu::channels::sms::{SmsMessage, SmsProvider};
use siyu::engage::outbox::{Address, NewMessage, Outbox, enqueue};
use siyu::engage::policy::Purpose;
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;

use common::{
    Backend, SMS_CALLBACK_TOKEN, TestServer, make_customers, no_redirects, send, tenant_with_key,
};

async fn tracking_links_redirect_and_count_visitors(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let c = reqwest::Client::new();
    let (st, v) = send(
        &c,
        M::POST,
        &s.url("/api/v1/links"),
        &key,
        Some(json!({"target": "https://shop.example.cn/new?from=card", "channel": "package_card"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().expect("url").to_string();
    assert!(url.starts_with(&s.url("/t/")), "{url}");
    // Not a javascript: open redirect; the error names the field.
    let (st, bad) = send(
        &c,
        M::POST,
        &s.url("/api/v1/links"),
        &key,
        Some(json!({"target": "javascript:alert(1)"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("target:"),
        "{bad}"
    );

    let nr = no_redirects();
    let r = nr
        .get(&url)
        .header("user-agent", "MicroMessenger")
        .send()
        .await
        .expect("click");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        "https://shop.example.cn/new?from=card"
    );
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("kv")
        .to_string();
    assert!(cookie.starts_with("sy_v="), "{cookie}");
    // The same visitor again, then someone else.
    let r = nr
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("again");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(r.headers().get("set-cookie").is_none());
    nr.get(&url).send().await.expect("another");
    let r = nr.get(s.url("/t/ZZZZZZZZ")).send().await.expect("unknown");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let id = v["link"]["id"].as_i64().expect("id");
    let (st, v) = send(
        &c,
        M::GET,
        &s.url(&format!("/api/v1/links/{id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["clicks"],
        json!({"clicks": 3, "visitors": 2}),
        "{backend:?}"
    );

    // A code's picture never changes, so phones and proxies keep it for a day; the redirect is
    // never kept (each visit must reach the server to count).
    let svg = c.get(format!("{url}/qr.svg")).send().await.expect("svg");
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert_eq!(svg.headers()["cache-control"], "public, max-age=86400");
    assert!(svg.text().await.expect("body").contains("<svg"));
    let png = c.get(format!("{url}/qr.png")).send().await.expect("png");
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.headers()["cache-control"], "public, max-age=86400");
    assert_eq!(&png.bytes().await.expect("body")[..4], b"\x89PNG");
    let hop = no_redirects()
        .get(url.as_str())
        .send()
        .await
        .expect("redirect");
    assert_eq!(hop.status(), StatusCode::FOUND, "{backend:?}");
    assert_eq!(hop.headers()["cache-control"], "no-store", "{backend:?}");
}
on_each_backend!(tracking_links_redirect_and_count_visitors);

/// Waits until the outbox has nothing queued for now or being sent.
async fn settle(s: &TestServer) {
    for _ in 0..200 {
        let (n,): (i64,) = s
            .db()
            .fetch_one(&sql("SELECT COUNT(*) FROM outbox WHERE status = 'sending' OR (status = 'queued' AND not_before <= $1)").bind(now_ms()))
            .await
            .expect("count");
        if n == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the outbox did not settle");
}

async fn snapshot(s: &TestServer, tenant: TenantId, customers: &[i64]) -> i64 {
    let members: RoaringBitmap = customers.iter().map(|&c| c as u32).collect();
    let mut blob = Vec::new();
    members.serialize_into(&mut blob).expect("bitmap");
    s.db()
        .execute(
            &sql("INSERT INTO segment_snapshots (id, tenant_id, segment_id, rule, size, members, taken_by, taken_at) \
                  VALUES (77, $1, 1, 'all', $2, $3, 'test', $4)")
                .bind(tenant)
                .bind(customers.len() as i64)
                .bind(blob)
                .bind(now_ms()),
        )
        .await
        .expect("snapshot");
    77
}

async fn a_campaign_is_checked_sent_clicked_and_reported(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "tea", Role::Admin).await;
    let customers = make_customers(&s, &key, 31, 300).await;
    let snap = snapshot(&s, tenant, &customers).await;
    let c = reqwest::Client::new();
    // No quiet hours, so the test runs at any hour.
    let (st, p) = send(&c, M::PUT, &s.url("/api/v1/contact-policy"), &key,
        Some(json!({"marketing_per_week": 2, "quiet_start_minute": 0, "quiet_end_minute": 0, "dedupe_hours": 24}))).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, p) = send(&c, M::PUT, &s.url("/api/v1/contact-policy"), &key,
        Some(json!({"marketing_per_week": 2, "quiet_start_minute": 1500, "quiet_end_minute": 0, "dedupe_hours": 24}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        p["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("quiet_start_minute:"),
        "{p}"
    );

    let body = |second: &str| {
        json!({
            "name": "老客召回", "snapshot_id": snap, "holdout_percent": 20, "seed": "t",
            "target_url": "https://shop.example.cn/back",
            "variants": [
                {"name": "A", "content": "【茶小铺】老朋友，回归券已到账 {link} 拒收请回复R"},
                {"name": "B", "content": second}
            ]
        })
    };
    let (st, bad) = send(
        &c,
        M::POST,
        &s.url("/api/v1/campaigns"),
        &key,
        Some(body("【茶小铺】全网最佳好茶 {link} 拒收请回复R")),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("variants[1].content: contains the forbidden word"),
        "{bad}"
    );
    let (st, made) = send(
        &c,
        M::POST,
        &s.url("/api/v1/campaigns"),
        &key,
        Some(body("【茶小铺】新茶给您留了一份 {link} 回T退订")),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    assert_eq!(made["content"][0]["parts"], 1);
    let id = made["campaign"]["id"].as_i64().expect("id");

    let (st, l) = send(
        &c,
        M::POST,
        &s.url(&format!("/api/v1/campaigns/{id}/launch")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let queued = l["launch"]["queued"].as_i64().expect("queued");
    let control = l["launch"]["control"].as_i64().expect("control");
    assert_eq!(queued + control, 300, "{l}");
    assert!(control > 30 && control < 90, "{l}");
    let (st, d) = send(&c, M::POST, &s.url("/api/v1/outbox/dispatch"), &key, None).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    // The server's own dispatcher may hold part of the batch; wait for it to finish.
    settle(&s).await;
    let (_, counts) = send(&c, M::GET, &s.url("/api/v1/outbox"), &key, None).await;
    assert_eq!(
        counts["by_status"]["sent"].as_i64(),
        Some(queued),
        "{counts}"
    );

    // Each message carries its recipient's own tracking link; two recipients click, one buys.
    let sent: Vec<(i64, String)> = s.db()
        .fetch_all(&sql("SELECT o.customer_id, l.content FROM sms_log l JOIN outbox o ON o.id = l.outbox_id WHERE o.campaign_id = $1 ORDER BY o.customer_id").bind(id))
        .await
        .expect("log");
    assert_eq!(sent.len() as i64, queued);
    let links: HashSet<String> = sent
        .iter()
        .map(|(_, t)| {
            t.split_whitespace()
                .find(|w| w.contains("/t/"))
                .expect("link")
                .to_string()
        })
        .collect();
    assert_eq!(links.len(), sent.len(), "one link per recipient");
    let nr = no_redirects();
    for (_, text) in sent.iter().take(2) {
        let link = text
            .split_whitespace()
            .find(|w| w.contains("/t/"))
            .expect("link");
        let r = nr.get(link).send().await.expect("click");
        assert_eq!(r.headers()["location"], "https://shop.example.cn/back");
    }
    let buyer = sent[0].0;
    let (st, v) = send(&c, M::POST, &s.url("/api/v1/orders"), &key, Some(json!({"orders": [{
        "channel": "mall", "order_no": "BACK-1", "status": "paid", "ordered_at": now_ms(), "amount": 25_800,
        "identities": [{"kind": "phone", "value": format!("13931{:06}", customers.iter().position(|&c| c == buyer).expect("idx"))}]}]}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, r) = send(
        &c,
        M::GET,
        &s.url(&format!("/api/v1/campaigns/{id}/report")),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["total"]["sent"].as_i64(), Some(queued), "{r}");
    assert_eq!(r["total"]["clicks"], 2, "{r}");
    assert_eq!(r["total"]["visitors"], 2, "{r}");
    assert_eq!(r["total"]["orders"], 1, "{r}");
    assert_eq!(r["total"]["gmv"], 25_800, "{r}");
    assert_eq!(r["total"]["cost"].as_i64(), Some(queued * 5), "{r}");
    assert_eq!(r["total"]["series"][0]["hours"], 3);
    assert_eq!(r["total"]["series"][0]["clicks"], 2);
    assert_eq!(r["variants"].as_array().expect("variants").len(), 3);
    assert_eq!(r["variants"][2]["variant"], "control");
    assert_eq!(r["variants"][2]["sent"], 0);
    // 300 people cannot call a winner.
    assert_eq!(r["ab"]["status"], "not_enough_data", "{}", r["ab"]);
    let csv = c
        .get(s.url(&format!("/api/v1/campaigns/{id}/report.csv")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("csv");
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("body");
    assert!(
        text.lines()
            .next()
            .expect("header")
            .contains("variant,eligible,sent"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("total,") && l.contains(",258.00,")),
        "{text}"
    );

    // The buyer's number replies 退订 through Tencent's callback: their next message is held.
    let phone = format!(
        "13931{:06}",
        customers.iter().position(|&c| c == buyer).expect("idx")
    );
    let (st, ack) = send(&c, M::POST, &s.url(&format!("/callbacks/sms/tencent/{SMS_CALLBACK_TOKEN}/reply")), "",
        Some(json!({"extend": "", "mobile": phone, "nationcode": "86", "sign": "茶小铺", "text": "退订", "time": now_ms() / 1000}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ack, json!({"result": 0, "errmsg": "OK"}));
    let (st, _) = send(
        &c,
        M::POST,
        &s.url("/callbacks/sms/tencent/wrong/reply"),
        "",
        Some(json!({"mobile": phone, "text": "R"})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "a callback without the token is refused"
    );
    let (st, m) = send(&c, M::POST, &s.url("/api/v1/messages"), &key,
        Some(json!({"phone": phone, "content": "【茶小铺】周末上新，拒收请回复R", "purpose": "marketing", "dedupe_key": "weekend-1"}))).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{m}");
    let (st, _) = send(&c, M::POST, &s.url("/api/v1/messages"), &key,
        Some(json!({"phone": phone, "content": "【茶小铺】周末上新，拒收请回复R", "purpose": "marketing", "dedupe_key": "weekend-1"}))).await;
    assert_eq!(st, StatusCode::OK, "the same key is queued once");
    let (st, m) = send(
        &c,
        M::POST,
        &s.url("/api/v1/messages"),
        &key,
        Some(json!({"phone": "12345", "content": "x", "purpose": "service"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        m["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("phone:"),
        "{m}"
    );
    send(&c, M::POST, &s.url("/api/v1/outbox/dispatch"), &key, None).await;
    settle(&s).await;
    let (reason,): (Option<String>,) = s
        .db()
        .fetch_one(&sql(
            "SELECT reason FROM outbox WHERE dedupe_key = 'api:weekend-1'",
        ))
        .await
        .expect("held");
    assert_eq!(reason.as_deref(), Some("unsubscribed"), "{backend:?}");
}
on_each_backend!(a_campaign_is_checked_sent_clicked_and_reported);

const SECRET: &str = "fake-secret";

/// A local Aliyun dysmsapi: checks the parameters, the timestamp, the nonce and the signature
/// the way the real gateway does, and answers as it does.
async fn aliyun_fake(
    State(seen): State<Arc<Mutex<HashSet<String>>>>,
    body: String,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let params: BTreeMap<String, String> = url_form(&body);
    let err = |code: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"Code": code, "Message": code, "RequestId": "r"})),
        )
    };
    for k in [
        "AccessKeyId",
        "Action",
        "PhoneNumbers",
        "SignName",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "TemplateCode",
        "Timestamp",
        "Version",
        "Signature",
    ] {
        if !params.contains_key(k) {
            return err("MissingParameter");
        }
    }
    let ts = chrono::NaiveDateTime::parse_from_str(&params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        .map(|t| t.and_utc().timestamp_millis());
    if ts.map_or(true, |t| (t - now_ms()).abs() > 15 * 60_000) {
        return err("InvalidTimeStamp.Expired");
    }
    if aliyun::signature("POST", &params, SECRET) != params["Signature"] {
        return err("SignatureDoesNotMatch");
    }
    if !seen
        .lock()
        .expect("lock")
        .insert(params["SignatureNonce"].clone())
    {
        return err("SignatureNonceUsed");
    }
    (
        axum::http::StatusCode::OK,
        axum::Json(
            json!({"Code": "OK", "Message": "OK", "BizId": format!("biz-{}", params["OutId"]), "RequestId": "r"}),
        ),
    )
}

fn url_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf8")
}

/// A local Tencent Cloud SMS: recomputes TC3-HMAC-SHA256 over the body and Host it received.
async fn tencent_fake(headers: HeaderMap, body: String) -> axum::Json<Value> {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let fail = |code: &str| {
        axum::Json(
            json!({"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "r"}}),
        )
    };
    let ts: i64 = h("x-tc-timestamp").parse().unwrap_or(0);
    if (ts - now_ms() / 1000).abs() > 300 {
        return fail("AuthFailure.SignatureExpire");
    }
    if h("x-tc-action") != "SendSms"
        || h("x-tc-version") != "2021-01-11"
        || h("content-type") != tencent::CONTENT_TYPE
    {
        return fail("InvalidParameter");
    }
    let auth = h("authorization");
    let Some(secret_id) = auth
        .strip_prefix("TC3-HMAC-SHA256 Credential=")
        .and_then(|r| r.split('/').next())
    else {
        return fail("AuthFailure.InvalidAuthorization");
    };
    if auth != tencent::authorization(secret_id, SECRET, "sms", &h("host"), &body, ts) {
        return fail("AuthFailure.SignatureFailure");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    axum::Json(
        json!({"Response": {"SendStatusSet": [{"SerialNo": format!("serial-{}", v["SessionContext"].as_str().unwrap_or("")),
        "PhoneNumber": v["PhoneNumberSet"][0], "Fee": 1, "Code": "Ok", "Message": "send success"}], "RequestId": "r"}}),
    )
}

async fn start_fakes() -> String {
    let app = axum::Router::new()
        .route("/aliyun/", axum::routing::post(aliyun_fake))
        .route("/tencent/", axum::routing::post(tencent_fake))
        .with_state(Arc::new(Mutex::new(HashSet::new())));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn msg(id: i64) -> SmsMessage {
    SmsMessage {
        outbox_id: id,
        tenant_id: TenantId::new(1),
        phone: "13800138000".into(),
        content: "【茶小铺】您的验证码是 1234".into(),
        template_code: Some("SMS_1".into()),
        template_params: vec![("code".into(), "1234".into())],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_sign_requests_the_fakes_accept_and_refuse_a_wrong_key() {
    let base = start_fakes().await;
    let aliyun = |secret: &str| {
        Aliyun::new(AliyunConfig {
            endpoint: format!("{base}/aliyun/"),
            access_key_id: "id".into(),
            access_key_secret: secret.into(),
            sign_name: "茶小铺".into(),
            rate_per_second: 100,
        })
    };
    let tencent = |secret: &str| {
        Tencent::new(TencentConfig {
            endpoint: format!("{base}/tencent/"),
            secret_id: "AKIDtest".into(),
            secret_key: secret.into(),
            sign_name: "茶小铺".into(),
            app_id: "1400006666".into(),
            region: "ap-guangzhou".into(),
            rate_per_second: 100,
        })
    };
    let ok = aliyun(SECRET).send(&[msg(1), msg(2)]).await;
    assert_eq!(
        ok.into_iter().map(|r| r.expect("sent")).collect::<Vec<_>>(),
        ["biz-1", "biz-2"]
    );
    let bad = aliyun("other").send(&[msg(3)]).await;
    let e = bad.into_iter().next().expect("one").expect_err("wrong key");
    assert!(
        e.to_string().contains("SignatureDoesNotMatch") && !e.retryable(),
        "{e}"
    );
    let ok = tencent(SECRET).send(&[msg(4)]).await;
    assert_eq!(
        ok.into_iter().next().expect("one").expect("sent"),
        "serial-4"
    );
    let bad = tencent("other").send(&[msg(5)]).await;
    let e = bad.into_iter().next().expect("one").expect_err("wrong key");
    assert!(
        e.to_string().contains("AuthFailure.SignatureFailure"),
        "{e}"
    );
}

on_each_backend!(an_aliyun_receipt_marks_the_outbox_message_delivered);
/// A one-time code goes out through the outbox to the Aliyun fake, and its delivery receipt then
/// arrives by Aliyun's callback and marks the message delivered.
async fn an_aliyun_receipt_marks_the_outbox_message_delivered(backend: common::Backend) {
    let base = start_fakes().await;
    let aliyun = |secret: &str| {
        Aliyun::new(AliyunConfig {
            endpoint: format!("{base}/aliyun/"),
            access_key_id: "id".into(),
            access_key_secret: secret.into(),
            sign_name: "茶小铺".into(),
            rate_per_second: 100,
        })
    };
    let s = TestServer::start(backend).await;
    let (tenant, _) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let now = now_ms();
    enqueue(
        s.db(),
        &[NewMessage {
            tenant_id: tenant,
            purpose: Purpose::Verification,
            customer_id: None,
            address: Address::of_phone(&s.cipher, &s.cipher.lookup(tenant), "13800138000"),
            content: "【茶小铺】验证码 1234".into(),
            template_code: Some("SMS_1".into()),
            template_params: vec![("code".into(), "1234".into())],
            dedupe_key: "otp-1".into(),
            campaign_id: None,
            variant: None,
            // Due only at the time this test's own dispatcher is run for, so the server's
            // dispatcher (the log provider) cannot take it first.
            not_before: now + 3_600_000,
        }],
        now,
    )
    .await
    .expect("enqueue");
    let outbox = Outbox::new(s.db().clone(), s.cipher.clone(), Arc::new(aliyun(SECRET)));
    let r = outbox.drain(now + 3_600_000).await.expect("drain");
    assert_eq!(r.sent, 1, "{backend:?}: {r:?}");
    let (id, reference): (i64, String) = s
        .db()
        .fetch_one(&sql(
            "SELECT id, provider_ref FROM outbox WHERE dedupe_key = 'otp-1'",
        ))
        .await
        .expect("row");
    assert_eq!(reference, format!("biz-{id}"));
    let c = reqwest::Client::new();
    let (st, ack) = send(&c, M::POST, &s.url(&format!("/callbacks/sms/aliyun/{SMS_CALLBACK_TOKEN}/report")), "",
        Some(json!([{"phone_number": "13800138000", "send_time": "2026-11-23 10:00:00", "report_time": "2026-11-23 10:00:05",
            "success": true, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1", "biz_id": reference, "out_id": id.to_string()}]))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ack["code"], 0);
    let (status, delivery): (String, Option<String>) = s
        .db()
        .fetch_one(&sql("SELECT status, delivery FROM outbox WHERE id = $1").bind(id))
        .await
        .expect("row");
    assert_eq!(
        (status.as_str(), delivery.as_deref()),
        ("delivered", Some("DELIVERED")),
        "{backend:?}"
    );
}

on_each_backend!(colliding_codes_are_drawn_again);
/// A drawn code some row already holds, or one drawn twice in a batch, is drawn again.
async fn colliding_codes_are_drawn_again(backend: common::Backend) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // One count per backend: the two run at once.
    static N: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    // Draws AAAA0000 three times (one taken in the table, then a repeat in the batch), then
    // fresh codes.
    fn draw<const B: usize>() -> String {
        let n = N[B].fetch_add(1, Ordering::SeqCst);
        if n < 3 {
            "AAAA0000".into()
        } else {
            format!("BBBB{n:04}")
        }
    }
    let draw: fn() -> String = match backend {
        common::Backend::Sqlite => draw::<0>,
        common::Backend::Postgres => draw::<1>,
    };
    let s = TestServer::start(backend).await;
    s.db()
        .execute(&sql("INSERT INTO links (id, tenant_id, code, target, channel, created_at) VALUES (999, 1, 'AAAA0000', 'https://a.cn/', 'x', 0)"))
        .await
        .expect("a link holding the code");
    let mut tx = s.db().begin().await.expect("tx");
    let codes =
        siyu::acquire::codes::unused(siyu::platform::db::Reader::Tx(&mut tx), "links", 3, draw)
            .await
            .expect("codes");
    assert_eq!(codes.len(), 3);
    assert!(
        !codes.contains(&"AAAA0000".to_string()),
        "{backend:?}: {codes:?}"
    );
    assert_eq!(
        codes.iter().collect::<HashSet<_>>().len(),
        3,
        "{backend:?}: {codes:?}"
    );
}

on_each_backend!(an_api_key_cannot_send_marketing_past_the_contact_policy);
/// A write key cannot dress marketing up as a one-time code or a service notice to get past
/// unsubscribes, weekly caps and quiet hours: `verification` is the server's own, and `service`
/// needs the provider's approved template (and is logged).
async fn an_api_key_cannot_send_marketing_past_the_contact_policy(backend: common::Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let c = reqwest::Client::new();
    let send_as = |purpose: &'static str, template: Option<&'static str>| {
        let (c, url, key) = (c.clone(), s.url("/api/v1/messages"), key.clone());
        async move {
            let mut body = json!({"phone": "13912345678", "content": "【茶小铺】双12 全场5折，拒收请回复R", "purpose": purpose});
            if let Some(t) = template {
                body["template_code"] = json!(t);
            }
            send(&c, M::POST, &url, &key, Some(body)).await
        }
    };
    let (st, v) = send_as("verification", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{backend:?}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("purpose:"),
        "{v}"
    );
    let (st, v) = send_as("service", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{backend:?}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("template_code:"),
        "{v}"
    );
    let (st, v) = send_as("service", Some("SMS_1234")).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: {v}");
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT count(*) FROM outbox"))
        .await
        .expect("outbox");
    assert_eq!(
        n, 1,
        "{backend:?}: only the service notice with its template is queued"
    );
}
