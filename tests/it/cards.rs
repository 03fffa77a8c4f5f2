//! Package cards over HTTP on every backend: a batch with two card designs, its print files,
//! the landing page counting scans, a one-time SMS code, a claim that joins the buyer as a
//! member and grants the coupon once per card, a claim from a WeChat session, a contact, and
//! the batch report.

use crate::common;
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};
use siyu::platform::access::Role;
use siyu::platform::db::sql;

use common::{Backend, TestServer, customer_token, make_customers, send, tenant_with_key};

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

async fn a_card_is_scanned_verified_claimed_once_and_reported(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let c = reqwest::Client::new();
    let (st, t) = send(&c, M::POST, &s.url("/api/v1/coupon-templates"), &key,
        Some(json!({"name": "包裹卡20元券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": 10_000, "claim_via": "card"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, bad) = send(
        &c,
        M::POST,
        &s.url("/api/v1/card-batches"),
        &key,
        Some(json!({"name": "x", "channel": "tmall", "coupon_template_id": t["id"], "size": 0})),
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
    // A template not set up for cards (the brand's API-only compensation coupon) is refused.
    let (_, api_only) = send(&c, M::POST, &s.url("/api/v1/coupon-templates"), &key,
        Some(json!({"name": "补偿券", "kind": "amount_off", "value": 5_000, "valid_days": 7, "total": 10}))).await;
    let (st, bad) = send(&c, M::POST, &s.url("/api/v1/card-batches"), &key,
        Some(json!({"name": "x", "channel": "tmall", "coupon_template_id": api_only["id"], "size": 10}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("coupon_template_id:"),
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
    // Opened again from the same address soon after: the same scan, not another write.
    for _ in 0..3 {
        let again = c.get(s.url(&format!("/c/{}", codes[0]))).send().await;
        assert_eq!(again.expect("page").status(), StatusCode::OK);
    }
    let (scans,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT scans FROM cards WHERE code = $1").bind(&codes[0]))
        .await
        .expect("scans");
    assert_eq!(scans, 1, "{backend:?}");
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
        common::code_request(&s, phone).await,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let (st, _) = h5(
        &c,
        s.url(&format!("/h5/v1/cards/{}/otp", codes[0])),
        common::code_request(&s, phone).await,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "one code a minute");
    let code = common::sent_code(&s).await;
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
on_each_backend!(a_card_is_scanned_verified_claimed_once_and_reported);

/// A batch of `size` cards over a coupon template of `total` coupons, made through the API with
/// `key`; the batch's id and the cards' codes.
async fn batch(s: &TestServer, key: &str, total: i64, size: i64) -> (i64, Vec<String>) {
    let c = reqwest::Client::new();
    let (st, t) = send(&c, M::POST, &s.url("/api/v1/coupon-templates"), key,
        Some(json!({"name": "包裹卡20元券", "kind": "amount_off", "value": 2_000, "valid_days": 30, "total": total, "claim_via": "card"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let (st, b) = send(
        &c,
        M::POST,
        &s.url("/api/v1/card-batches"),
        key,
        Some(
            json!({"name": "包裹卡", "channel": "tmall", "coupon_template_id": t["id"], "size": size}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id = b["batch"]["id"].as_i64().expect("batch");
    let csv = c
        .get(s.url(&format!("/api/v1/card-batches/{id}/cards.csv")))
        .bearer_auth(key)
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("body");
    let codes = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().expect("code").to_string())
        .collect();
    (id, codes)
}

/// A tenant with a batch of `size` cards over a coupon; the cards' codes.
async fn card_codes(s: &TestServer, size: i64) -> Vec<String> {
    let (_, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    batch(s, &key, 10_000, size).await.1
}

on_each_backend!(parallel_guesses_get_at_most_the_allowed_tries);
/// Someone who found a card guesses the code sent to the buyer's phone from many connections at
/// once: only five guesses are ever compared, then the number is locked for a while, even for
/// the right code and for a new one.
async fn parallel_guesses_get_at_most_the_allowed_tries(backend: Backend) {
    let s = TestServer::start(backend).await;
    let codes = card_codes(&s, 1).await;
    let c = reqwest::Client::new();
    let phone = "13912345678";
    let otp = s.url(&format!("/h5/v1/cards/{}/otp", codes[0]));
    let claim = s.url(&format!("/h5/v1/cards/{}/claim", codes[0]));
    let (st, v) = h5(&c, otp.clone(), common::code_request(&s, phone).await, None).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let code = common::sent_code(&s).await;
    // Stored nowhere: the outbox holds a placeholder, and so does what the log provider sent.
    for _ in 0..200 {
        let logged: Option<(String,)> = s
            .db()
            .fetch_optional(&sql("SELECT content FROM sms_log"))
            .await
            .expect("log");
        if let Some((text,)) = logged {
            assert!(
                !text.contains(&code),
                "{backend:?}: the code is in sms_log: {text}"
            );
            assert!(text.contains("{code}"), "{text}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (content, params): (String, String) = s
        .db()
        .fetch_one(&sql(
            "SELECT content, template_params FROM outbox WHERE purpose = 'verification'",
        ))
        .await
        .expect("outbox");
    assert!(
        !content.contains(&code) && !params.contains(&code),
        "{backend:?}: {content} {params}"
    );
    let guesses: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "{:06}",
                (code.parse::<u32>().expect("digits") + 1 + i) % 1_000_000
            )
        })
        .collect();
    let tasks: Vec<_> = guesses
        .into_iter()
        .map(|g| {
            let (c, url) = (c.clone(), claim.clone());
            tokio::spawn(async move { h5(&c, url, json!({"phone": phone, "otp": g}), None).await })
        })
        .collect();
    let mut compared = 0;
    for t in tasks {
        let (st, v) = t.await.expect("guess");
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {v}");
        if v["error"]["message"] == "the code is wrong" {
            compared += 1;
        }
    }
    assert!(
        compared <= 5,
        "{backend:?}: {compared} parallel guesses were compared with the code"
    );
    let (st, v) = h5(&c, claim, json!({"phone": phone, "otp": code}), None).await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{backend:?}: the right code after five wrong ones: {v}"
    );
    let (st, v) = h5(&c, otp, common::code_request(&s, phone).await, None).await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "{backend:?}: a new code for a locked number: {v}"
    );
}

on_each_backend!(no_code_is_texted_without_the_human_check);
/// A script that posts phone numbers straight to the code route texts nobody: the page's proof
/// of work is asked for, checked against the phone it was solved for, and cannot be forged.
async fn no_code_is_texted_without_the_human_check(backend: Backend) {
    let s = TestServer::start(backend).await;
    let codes = card_codes(&s, 1).await;
    let c = reqwest::Client::new();
    let otp = s.url(&format!("/h5/v1/cards/{}/otp", codes[0]));
    let (st, v) = h5(&c, otp.clone(), json!({"phone": "13912345678"}), None).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {v}");
    assert_eq!(v["error"]["code"], "human_check");
    // Solved for another number.
    let mut other = common::code_request(&s, "13987654321").await;
    other["phone"] = json!("13912345678");
    let (st, v) = h5(&c, otp.clone(), other, None).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "human_check", "{v}");
    // A challenge we did not sign, solved.
    let forged = "1.AAAA.0123456789abcdef0123456789abcdef";
    let nonce = siyu::acquire::human_check::solve(forged, "13912345678", common::TEST_WORK_BITS);
    let body = json!({"phone": "13912345678", "challenge": forged, "nonce": nonce});
    let (st, v) = h5(&c, otp.clone(), body, None).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "human_check", "{v}");
    let (queued,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM outbox"))
        .await
        .expect("outbox");
    assert_eq!(queued, 0, "{backend:?}: nothing was texted");
    let (st, v) = h5(&c, otp, common::code_request(&s, "13912345678").await, None).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: the page's way: {v}");
}

on_each_backend!(one_card_texts_at_most_three_numbers);
/// SMS pumping through one card: a found or photographed card asks for codes to number after
/// number. The first three numbers get theirs; the fourth is refused and nothing is sent to it.
async fn one_card_texts_at_most_three_numbers(backend: Backend) {
    let s = TestServer::start(backend).await;
    let codes = card_codes(&s, 1).await;
    let c = reqwest::Client::new();
    let otp = s.url(&format!("/h5/v1/cards/{}/otp", codes[0]));
    for i in 0..3 {
        let (st, v) = h5(
            &c,
            otp.clone(),
            common::code_request(&s, &format!("1391234000{i}")).await,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: number {i}: {v}");
    }
    let (st, v) = h5(&c, otp, common::code_request(&s, "13912340009").await, None).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{backend:?}: {v}");
    assert_eq!(v["error"]["code"], "card_limit", "{backend:?}: {v}");
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql(
            "SELECT count(*) FROM outbox WHERE purpose = 'verification'",
        ))
        .await
        .expect("outbox");
    assert_eq!(n, 3, "{backend:?}: texts queued");
}

/// Asks for a code to `phone` from `card`'s page, as `from` says it is (a header anyone can
/// send).
async fn ask(s: &TestServer, card: &str, phone: &str, from: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(s.url(&format!("/h5/v1/cards/{card}/otp")))
        .header("x-forwarded-for", from)
        .json(&common::code_request(s, phone).await)
        .send()
        .await
        .expect("request");
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

on_each_backend!(a_tenants_day_of_codes_and_one_address_are_budgeted);
/// A brand's day of codes ends at its budget, whichever cards ask; one address asking through
/// many cards is stopped however it names itself in `X-Forwarded-For` (no proxy is trusted);
/// and every tenant's hour ends at the circuit breaker.
async fn a_tenants_day_of_codes_and_one_address_are_budgeted(backend: Backend) {
    let s = TestServer::start_with(backend, |a| a.sms.otp_per_tenant_day = Some(5)).await;
    let cards = card_codes(&s, 3).await;
    let mut sent = 0;
    for (card, numbers) in [(&cards[0], 3), (&cards[1], 2)] {
        for i in 0..numbers {
            let phone = format!("1391234{sent:04}");
            let (st, v) = ask(&s, card, &phone, &format!("198.51.100.{i}")).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: code {sent}: {v}");
            sent += 1;
        }
    }
    let (st, v) = ask(&s, &cards[2], "13912349999", "198.51.100.77").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{backend:?}: {v}");
    assert_eq!(v["error"]["code"], "sms_budget", "{backend:?}: {v}");
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql(
            "SELECT count(*) FROM outbox WHERE purpose = 'verification'",
        ))
        .await
        .expect("outbox");
    assert_eq!(n, 5, "{backend:?}: the tenant's day");

    let s = TestServer::start_with(backend, |a| a.sms.otp_per_address_hour = Some(2)).await;
    let cards = card_codes(&s, 3).await;
    for (i, card) in cards.iter().enumerate() {
        let (st, v) = ask(
            &s,
            card,
            &format!("1381234000{i}"),
            &format!("203.0.113.{i}"),
        )
        .await;
        let want = if i < 2 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(st, want, "{backend:?}: ask {i} from one address: {v}");
    }

    let s = TestServer::start_with(backend, |a| a.sms.otp_global_per_hour = Some(1)).await;
    let scrape = || async {
        reqwest::get(s.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    // Counters are the process's: other tests may add to them meanwhile, never take away.
    let before = scrape().await;
    let budget = "siyu_otp_requests_total{outcome=\"budget\"}";
    let cards = card_codes(&s, 2).await;
    let (st, v) = ask(&s, &cards[0], "13712340000", "192.0.2.1").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: {v}");
    let (st, v) = ask(&s, &cards[1], "13712340001", "192.0.2.2").await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("sms_budget")),
        "{backend:?}: past the breaker: {v}"
    );
    let text = scrape().await;
    for name in ["siyu_sms_circuit_open_total", budget] {
        assert!(
            counter(&text, name) >= counter(&before, name) + 1.0,
            "{backend:?}: {name} counts this test's: {text}"
        );
    }
    // Never through a proxy: whoever is behind it could be anyone.
    let r = reqwest::Client::new()
        .get(s.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .expect("proxied");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A counter's value in Prometheus text (`name` with its labels as written); 0 when absent.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

on_each_backend!(a_numbers_codes_for_the_day_count_across_brands);
/// One number's codes for the day are counted across brands, although each brand hashes the
/// number with a key of its own: a second brand's card cannot text it past the day's budget.
async fn a_numbers_codes_for_the_day_count_across_brands(backend: Backend) {
    let s = TestServer::start_with(backend, |a| a.sms.otp_per_phone_day = Some(1)).await;
    let first = card_codes(&s, 1).await;
    let (_, other) = tenant_with_key(s.db(), "另一家", Role::Admin).await;
    let second = batch(&s, &other, 10_000, 1).await.1;
    let (st, v) = ask(&s, &first[0], "13912340000", "192.0.2.1").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: {v}");
    let (st, v) = ask(&s, &second[0], "13912340000", "192.0.2.2").await;
    assert_eq!(
        (st, v["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("phone_limit")),
        "{backend:?}: the same number from another brand: {v}"
    );
    let (st, v) = ask(&s, &second[0], "13912340001", "192.0.2.3").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{backend:?}: another number: {v}");
}

on_each_backend!(the_public_cannot_send_large_bodies);
/// What the internet may send is small: a customer page's request over 16 KiB and a provider
/// callback over 256 KiB are refused (413) before they are read, and a callback to a URL
/// without the token is refused (404) before its body is parsed.
async fn the_public_cannot_send_large_bodies(backend: Backend) {
    let s = TestServer::start(backend).await;
    let codes = card_codes(&s, 1).await;
    let c = reqwest::Client::new();
    // The server may answer 413 and close before a large body is all written: that, too, is
    // the body refused unread.
    let refused = |r: Result<reqwest::Response, reqwest::Error>| match r {
        Ok(r) => r.status(),
        Err(e) if e.is_request() => StatusCode::PAYLOAD_TOO_LARGE,
        Err(e) => panic!("{e}"),
    };
    let big = format!("{{\"phone\": \"{}\"}}", "1".repeat(64 * 1024));
    let r = c
        .post(s.url(&format!("/h5/v1/cards/{}/otp", codes[0])))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    assert_eq!(refused(r), StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}");

    let receipts = format!("[{}]", vec!["{}"; 150_000].join(","));
    let token = common::SMS_CALLBACK_TOKEN;
    let r = c
        .post(s.url(&format!("/callbacks/sms/aliyun/{token}/report")))
        .header("content-type", "application/json")
        .body(receipts)
        .send()
        .await;
    assert_eq!(refused(r), StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}");
    // Not even JSON: with a wrong token it is never parsed (404, not 400).
    let r = c
        .post(s.url("/callbacks/sms/aliyun/not-the-token/report"))
        .header("content-type", "application/json")
        .body("x".repeat(8 * 1024))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{backend:?}");
}

on_each_backend!(a_hundred_concurrent_card_claims_never_pass_a_coupons_limits);
/// A hundred buyers claim a hundred cards of one batch at once, and the batch's coupon has ten:
/// ten coupons are granted, the template counts ten, and the other claims are refused whole
/// (their cards stay unclaimed).
async fn a_hundred_concurrent_card_claims_never_pass_a_coupons_limits(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "品牌", Role::Admin).await;
    let c = reqwest::Client::new();
    let (_, cards) = batch(&s, &key, 10, 100).await;
    let buyers = make_customers(&s, &key, 51, 100).await;
    let tasks: Vec<_> = cards
        .iter()
        .zip(&buyers)
        .map(|(card, &buyer)| {
            let (c, url, token) = (
                c.clone(),
                s.url(&format!("/h5/v1/cards/{card}/claim")),
                customer_token(&s, tenant, buyer),
            );
            tokio::spawn(async move { h5(&c, url, json!({}), Some(&token)).await.0 })
        })
        .collect();
    let mut claimed = 0;
    for t in tasks {
        if t.await.expect("claim") == StatusCode::OK {
            claimed += 1;
        }
    }
    let (coupons,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT count(*) FROM coupons"))
        .await
        .expect("coupons");
    let (issued,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT issued FROM coupon_templates"))
        .await
        .expect("issued");
    assert_eq!(coupons, 10, "{backend:?}: coupons granted");
    assert_eq!(issued, 10, "{backend:?}: the template's count");
    assert_eq!(claimed, 10, "{backend:?}: claims answered as granted");
}

on_each_backend!(card_codes_are_for_roles_that_may_write);
/// Each card's code claims its coupon, so the print files are bearer secrets: a read-only key
/// or console user cannot download them; an operator downloads them from the console, signed
/// in by the session.
async fn card_codes_are_for_roles_that_may_write(backend: Backend) {
    use siyu::platform::access;
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let c = common::no_redirects();
    let (id, _) = batch(&s, &key, 100, 3).await;
    let viewer = access::create_api_key(s.db(), tenant, "看板", Role::Viewer)
        .await
        .expect("key");
    for file in ["cards.csv", "cards.pdf"] {
        let (st, v) = send(
            &c,
            M::GET,
            &s.url(&format!("/api/v1/card-batches/{id}/{file}")),
            &viewer,
            None,
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{backend:?}: a viewer key got {file}: {v}"
        );
    }
    let session = |user: &'static str| {
        let (c, url) = (c.clone(), s.url("/console/login"));
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("tenant", "茶小铺"),
                    ("username", user),
                    ("password", "password-1"),
                ])
                .send()
                .await
                .expect("login");
            common::session_cookie(&r).expect("session")
        }
    };
    access::create_user(s.db(), tenant, "ops", "运营", "password-1", Role::Operator)
        .await
        .expect("user");
    access::create_user(s.db(), tenant, "boss", "老板", "password-1", Role::Viewer)
        .await
        .expect("user");
    let pdf = format!("/console/acquire/card-batches/{id}/cards.pdf");
    let r = c
        .get(s.url(&pdf))
        .header("cookie", session("ops").await)
        .send()
        .await
        .expect("pdf");
    assert_eq!(r.status(), StatusCode::OK, "{backend:?}");
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.bytes().await.expect("body").starts_with(b"%PDF-"));
    let r = c
        .get(s.url(&pdf))
        .header("cookie", session("boss").await)
        .send()
        .await
        .expect("pdf");
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "{backend:?}: a viewer's console session"
    );
}

on_each_backend!(a_claim_links_the_parcels_order_when_its_masked_phone_is_the_claimants);
/// A Tmall order whose export showed only a masked phone belongs to an unlinked buyer. The
/// buyer claims the card in its parcel with their verified phone and the order number: the order
/// becomes theirs. Someone else naming that order gets the same coupon flow and no order.
async fn a_claim_links_the_parcels_order_when_its_masked_phone_is_the_claimants(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    let (tenant, key) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let (_, codes) = batch(&s, &key, 100, 3).await;
    let masked = |no: &str, hint: &str| {
        let mut o = common::store_order(no, &[], 25_800, siyu::platform::clock::now_ms());
        o.channel = "tmall".into();
        o.phone_hint = Some(hint.into());
        o
    };
    common::store(
        s.db(),
        tenant,
        vec![masked("T-1", "139****5678"), masked("T-2", "139****5678")],
    )
    .await;
    let db = s.db();
    let owner = |no: &'static str| async move {
        let (c, unlinked): (i64, i64) = db
            .fetch_one(
                &sql("SELECT customer_id, buyer_unlinked FROM orders WHERE tenant_id = $1 AND order_no = $2")
                    .bind(tenant)
                    .bind(no),
            )
            .await
            .expect("order");
        (c, unlinked)
    };
    let (stranger_buyer, unlinked) = owner("T-2").await;
    assert_eq!(unlinked, 1, "a masked phone alone makes an unlinked buyer");
    let claim = |card: String, phone: &'static str, order_no: Option<&'static str>| {
        let (s, c) = (&s, &c);
        async move {
            let (st, v) = h5(
                c,
                s.url(&format!("/h5/v1/cards/{card}/otp")),
                common::code_request(s, phone).await,
                None,
            )
            .await;
            assert_eq!(st, StatusCode::ACCEPTED, "{v}");
            let code = common::sent_code(s).await;
            let (st, v) = h5(
                c,
                s.url(&format!("/h5/v1/cards/{card}/claim")),
                json!({"phone": phone, "otp": code, "order_no": order_no}),
                None,
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v
        }
    };
    // The buyer: their number is the one the mask hides.
    let v = claim(codes[0].clone(), "13912345678", Some("T-1")).await;
    assert_eq!(v["order"]["linked"], true, "{backend:?}: {v}");
    let (buyer,): (i64,) = s
        .db()
        .fetch_one(
            &sql("SELECT i.customer_id FROM identities i JOIN customers c ON c.tenant_id = i.tenant_id AND c.id = i.customer_id \
                  WHERE i.tenant_id = $1 AND i.kind = 'phone' AND c.merged_into IS NULL")
                .bind(tenant),
        )
        .await
        .expect("the claimant");
    assert_eq!(
        owner("T-1").await,
        (buyer, 0),
        "{backend:?}: the order is the claimant's"
    );
    // Someone else naming the other order of that mask: the coupon, no order, and the words
    // say nothing of whose it is.
    let v = claim(codes[1].clone(), "13800001111", Some("T-2")).await;
    assert_eq!(v["order"]["linked"], false, "{backend:?}: {v}");
    assert!(v["coupon"]["code"].is_string(), "{v}");
    let unknown = claim(codes[2].clone(), "13800002222", Some("NO-SUCH")).await;
    assert_eq!(unknown["order"]["said"], v["order"]["said"], "{backend:?}");
    assert_eq!(
        owner("T-2").await,
        (stranger_buyer, 1),
        "{backend:?}: still unlinked"
    );
}
