//! Package cards over HTTP on every backend: a batch with two card designs, its print files,
//! the landing page counting scans, a one-time SMS code, a claim that joins the buyer as a
//! member and grants the coupon once per card, a claim from a WeChat session, a contact, and
//! the batch report.

mod common;

use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::platform::access::Role;
use siyu::platform::db::sql;

use common::{TestServer, backends, customer_token, make_customers, send, tenant_with_key};

async fn h5(
    c: &reqwest::Client,
    url: String,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut r = c.post(url).json(&body);
    if let Some(t) = token {
        r = r.header("x-siyu-customer", t);
    }
    let r = r.send().await.expect("request");
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// The code the log provider "sent" to the landing page's phone.
async fn sent_code(s: &TestServer) -> String {
    for _ in 0..200 {
        let row: Option<(String,)> = s
            .db()
            .fetch_optional(&sql("SELECT l.content FROM sms_log l JOIN outbox o ON o.id = l.outbox_id WHERE o.purpose = 'verification' ORDER BY l.outbox_id DESC LIMIT 1"))
            .await
            .expect("log");
        if let Some((text,)) = row {
            return text.chars().filter(char::is_ascii_digit).take(6).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no verification SMS was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_is_scanned_verified_claimed_once_and_reported() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
        let c = reqwest::Client::new();
        let (st, t) = send(&c, M::POST, &s.url("/api/v1/coupon-templates"), &key,
            Some(json!({"name": "包裹卡20元券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": 10_000}))).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let (st, bad) = send(
            &c,
            M::POST,
            &s.url("/api/v1/card-batches"),
            &key,
            Some(
                json!({"name": "x", "channel": "tmall", "coupon_template_id": t["id"], "size": 0}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            bad["error"]["message"]
                .as_str()
                .expect("msg")
                .starts_with("size:"),
            "{bad}"
        );
        let (st, b) = send(&c, M::POST, &s.url("/api/v1/card-batches"), &key, Some(json!({
            "name": "天猫11月包裹卡", "channel": "tmall", "coupon_template_id": t["id"], "size": 50,
            "variants": [{"name": "红包卡"}, {"name": "试用装卡"}], "contact_qr_url": "https://work.weixin.qq.com/ca/guide1",
            "cost_per_card": 30}))).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let id = b["batch"]["id"].as_i64().expect("id");

        let csv = c
            .get(s.url(&format!("/api/v1/card-batches/{id}/cards.csv")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("csv")
            .text()
            .await
            .expect("body");
        let codes: Vec<String> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().expect("code").to_string())
            .collect();
        assert_eq!(codes.len(), 50);
        assert!(csv.contains(&format!("{}/c/{}", s.base, codes[0])));
        let pdf = c
            .get(s.url(&format!("/api/v1/card-batches/{id}/cards.pdf")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("pdf");
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        assert!(pdf.bytes().await.expect("body").starts_with(b"%PDF-"));

        // The landing page counts scans; a code with one wrong character never reaches a card.
        let page = c
            .get(s.url(&format!("/c/{}", codes[0])))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.expect("html").contains("获取验证码"));
        let mut typo = codes[0].clone().into_bytes();
        typo[3] = if typo[3] == b'7' { b'8' } else { b'7' };
        let r = c
            .get(s.url(&format!("/c/{}", String::from_utf8(typo).expect("ascii"))))
            .send()
            .await
            .expect("typo");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let phone = "13912345678";
        let (st, v) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/otp", codes[0])),
            json!({"phone": phone}),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let (st, _) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/otp", codes[0])),
            json!({"phone": phone}),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "one code a minute");
        let code = sent_code(&s).await;
        assert_eq!(code.len(), 6);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let (st, v) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/claim", codes[0])),
            json!({"phone": phone, "otp": wrong}),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (st, v) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/claim", codes[0])),
            json!({"phone": phone, "otp": code}),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["contact_qr_url"], "https://work.weixin.qq.com/ca/guide1");
        assert!(v["coupon"]["code"].is_string(), "{v}");
        // Once per card, and the code is used up.
        let (st, _) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/claim", codes[0])),
            json!({"phone": phone, "otp": code}),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (members,): (i64,) = s
            .db()
            .fetch_one(&sql("SELECT COUNT(*) FROM members WHERE tenant_id = $1").bind(tenant))
            .await
            .expect("members");
        assert_eq!(
            members, 1,
            "{backend:?}: claiming joins the buyer as a member"
        );

        // Someone already known arrives from WeChat with a session: no code needed.
        let known = make_customers(&s, &key, 41, 1).await[0];
        let token = customer_token(&s, tenant, known);
        let (st, v) = h5(
            &c,
            s.url(&format!("/h5/v1/cards/{}/claim", codes[1])),
            json!({}),
            Some(&token),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = send(
            &c,
            M::POST,
            &s.url(&format!("/api/v1/cards/{}/contact", codes[1])),
            &key,
            None,
        )
        .await;
        assert_eq!((st, v["recorded"].clone()), (StatusCode::OK, json!(true)));

        let (st, r) = send(
            &c,
            M::GET,
            &s.url(&format!("/api/v1/card-batches/{id}")),
            &key,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["total"]["shipped"], 50);
        assert_eq!(r["total"]["scanned"], 1);
        assert_eq!(r["total"]["claimed"], 2);
        assert_eq!(r["total"]["contacts"], 1);
        assert_eq!(r["total"]["cost"], 50 * 30);
        assert_eq!(r["variants"].as_array().expect("variants").len(), 2);
        assert_eq!(r["ab"]["status"], "not_enough_data");
        let csv = c
            .get(s.url(&format!("/api/v1/card-batches/{id}/report.csv")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("csv")
            .text()
            .await
            .expect("body");
        assert!(
            csv.lines()
                .any(|l| l.starts_with("total,50,1,1,2,1,0.0400,")),
            "{csv}"
        );
    }
}
