//! Customer sessions: a link's token leaves the address for an HttpOnly cookie, writes carried by
//! the cookie must come from the brand's own pages, and a customer's tokens can be revoked.

use crate::common;
use common::{Backend, TestServer, make_customers, send, send_as_customer, tenant_with_key};
use reqwest::{Method as M, StatusCode};
use serde_json::json;
use siyu::platform::access::Role;
use siyu::platform::clock::now_ms;
use siyu::platform::customer_sessions::{CustomerSessions, REFRESH_MS, SessionError};

/// A browser that keeps nothing and follows no redirect, so each answer can be read as sent.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn live_sale(s: &TestServer, key: &str) -> i64 {
    let now = now_ms();
    let (st, v) = send(
        &reqwest::Client::new(),
        M::POST,
        &s.url("/api/v1/flash-sales"),
        key,
        Some(
            json!({"name": "秒杀", "sku": "A", "title": "A", "price": 100, "stock": 5,
                    "per_customer": 1, "starts_at": now - 1_000, "ends_at": now + 3_600_000}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_i64().expect("sale id")
}

async fn mint(s: &TestServer, key: &str, customer: i64, minutes: i64) -> (StatusCode, String) {
    let (st, v) = send(
        &reqwest::Client::new(),
        M::POST,
        &s.url("/api/v1/customer-tokens"),
        key,
        Some(json!({"customer_id": customer, "ttl_minutes": minutes})),
    )
    .await;
    (st, v["token"].as_str().unwrap_or_default().to_owned())
}

fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn a_links_token_becomes_a_cookie_and_leaves_the_address(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 1, 1).await;
    let sale = live_sale(&s, &key).await;
    let (st, token) = mint(&s, &key, customers[0], 60).await;
    assert_eq!(st, StatusCode::CREATED);
    let c = browser();

    let r = c
        .get(s.url(&format!("/h5/flash/{sale}?t={token}&from=sms")))
        .send()
        .await
        .expect("open link");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().expect("location");
    assert_eq!(
        to,
        format!("/h5/flash/{sale}?from=sms"),
        "the address keeps the rest"
    );
    let cookie = set_cookie(&r).expect("a session cookie");
    for part in ["siyu_customer=", "HttpOnly", "SameSite=Strict", "Path=/h5"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let jar = cookie.split(';').next().expect("pair").to_owned();

    // The page's own calls carry the cookie; the token in an address is not read by the JSON.
    let sale_url = s.url(&format!("/h5/v1/flash-sales/{sale}"));
    let r = c
        .get(&sale_url)
        .header("cookie", &jar)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{sale_url}?t={token}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A write carried by the cookie must come from our pages.
    let attempt = s.url(&format!("/h5/v1/flash-sales/{sale}/attempts"));
    let r = c
        .post(&attempt)
        .header("cookie", &jar)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another site's post");
    let r = c
        .post(&attempt)
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED, "the page's own post");

    // A forged link opens the page signed out rather than as whoever used the browser before.
    let r = c
        .get(s.url(&format!("/h5/flash/{sale}?t=3.4.0.99999999999999.AAAA")))
        .header("cookie", &jar)
        .send()
        .await
        .expect("forged link");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("/h5/flash/{sale}").as_str()
    );
    let cleared = set_cookie(&r).expect("the cookie is cleared");
    assert!(
        cleared.starts_with("siyu_customer=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // A page without a token is served as it is.
    let r = c
        .get(s.url(&format!("/h5/flash/{sale}")))
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), StatusCode::OK);
}
on_each_backend!(a_links_token_becomes_a_cookie_and_leaves_the_address);

async fn revoked_tokens_stop_working_and_new_ones_start(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (tenant, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let reader = siyu::platform::access::create_api_key(s.db(), tenant, "reader", Role::Viewer)
        .await
        .expect("viewer key");
    let customers = make_customers(&s, &key, 2, 2).await;
    let (_, token) = mint(&s, &key, customers[0], 60).await;
    let (_, neighbour) = mint(&s, &key, customers[1], 60).await;
    let c = reqwest::Client::new();
    let gifts = s.url("/h5/v1/gifts");
    let (st, _) = send_as_customer(&c, M::GET, &gifts, &token, None).await;
    assert_eq!(st, StatusCode::OK);

    let revoke = s.url(&format!("/api/v1/customers/{}/sessions", customers[0]));
    let (st, _) = send(&c, M::DELETE, &revoke, &reader, None).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a read-only key cannot sign customers out"
    );
    let (st, v) = send(&c, M::DELETE, &revoke, &key, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    let (st, v) = send_as_customer(&c, M::GET, &gifts, &token, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, _) = send_as_customer(&c, M::GET, &gifts, &neighbour, None).await;
    assert_eq!(st, StatusCode::OK, "another customer's session stands");
    let (_, fresh) = mint(&s, &key, customers[0], 60).await;
    let (st, _) = send_as_customer(&c, M::GET, &gifts, &fresh, None).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "a token issued after the revocation works"
    );

    let (st, _) = send(
        &c,
        M::DELETE,
        &s.url("/api/v1/customers/999999/sessions"),
        &key,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = send(&c, M::GET, &s.url("/api/v1/access/audit"), &key, None).await;
    assert_eq!(st, StatusCode::OK);
    let subject = format!("customer {}", customers[0]);
    assert!(
        v["entries"].as_array().expect("entries").iter().any(|e| {
            e["action"] == "customer_sessions_revoked" && e["subject"] == subject.as_str()
        }),
        "the revocation is in the audit log: {v}"
    );
}
on_each_backend!(revoked_tokens_stop_working_and_new_ones_start);

async fn another_server_sees_a_revocation_within_its_memory_time(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 3, 1).await;
    let (_, token) = mint(&s, &key, customers[0], 60).await;
    // Another server: its own memory of versions, the same store.
    let other = CustomerSessions::new(s.cipher.clone());
    let now = now_ms();
    other
        .verify(s.db(), &token, now)
        .await
        .expect("good at first");

    let c = reqwest::Client::new();
    let revoke = s.url(&format!("/api/v1/customers/{}/sessions", customers[0]));
    let (st, _) = send(&c, M::DELETE, &revoke, &key, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    assert!(
        other.verify(s.db(), &token, now + 1).await.is_ok(),
        "until it reads the store again the other server does not know"
    );
    assert!(matches!(
        other.verify(s.db(), &token, now + REFRESH_MS).await,
        Err(SessionError::Invalid)
    ));
}
on_each_backend!(another_server_sees_a_revocation_within_its_memory_time);

async fn tokens_live_a_week_at_most(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (_, key) = tenant_with_key(s.db(), "brand", Role::Admin).await;
    let customers = make_customers(&s, &key, 4, 1).await;
    let (st, _) = mint(&s, &key, customers[0], 7 * 1_440).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = send(
        &reqwest::Client::new(),
        M::POST,
        &s.url("/api/v1/customer-tokens"),
        &key,
        Some(json!({"customer_id": customers[0], "ttl_minutes": 7 * 1_440 + 1})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ttl_minutes")),
        "{v}"
    );
}
on_each_backend!(tokens_live_a_week_at_most);
