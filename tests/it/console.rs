//! The console over plain HTTP: sessions, masking and both languages, on every backend.

use crate::common;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use siyu::platform::TenantId;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{Backend, TestServer, session_cookie};

async fn console_sessions_masking_and_languages(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let t = access::create_tenant(s.db(), "brand")
        .await
        .expect("tenant");
    access::create_user(
        s.db(),
        t.id,
        "ops",
        "运营小王",
        "ops-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let key = access::create_api_key(s.db(), t.id, "k", Role::Admin)
        .await
        .expect("key");
    let body = serde_json::json!({"orders": [{"channel": "jd", "order_no": "J-1", "ordered_at": siyu::platform::clock::now_ms(),
        "amount": 129_900, "buyer_name": "<script>alert(1)</script>", "identities": [{"kind": "phone", "value": "13800138000"}]}]});
    let r = c
        .post(s.url("/api/v1/orders"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);

    let r = c
        .get(s.url("/console/customers"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/login");

    let r = c
        .post(s.url("/console/login"))
        .form(&[
            ("tenant", "brand"),
            ("username", "ops"),
            ("password", "nope-nope"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("品牌、用户名或密码不正确")
    );

    let r = c
        .post(s.url("/console/login"))
        .form(&[
            ("tenant", "brand"),
            ("username", "ops"),
            ("password", "ops-password"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r).expect("session cookie");
    let (stored,): (String,) = s
        .db()
        .fetch_one(&sql("SELECT token_hash FROM sessions"))
        .await
        .expect("session");
    assert!(
        !cookie.contains(&stored),
        "the store keeps a hash of the session token, not the token"
    );

    let page = c
        .get(s.url("/console/customers"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("<html lang=\"zh-CN\">") && page.contains("客户"));
    assert!(
        page.contains("138****8000") && !page.contains("13800138000"),
        "operators see masked phones"
    );
    assert!(page.contains("¥1,299.00"));
    assert!(
        !page.contains("<script>alert(1)</script>") && page.contains("&#60;script&#62;"),
        "names are escaped: {page}"
    );

    // An operator may not reveal phones even by asking.
    let (id,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT id FROM customers"))
        .await
        .expect("id");
    let page = c
        .get(s.url(&format!("/console/customers/{id}?unmask=1")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("138****8000") && !page.contains("13800138000"));
    assert!(!page.contains("id=\"unmask\""));

    let r = c
        .get(s.url("/console/customers/999999"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.expect("html").contains("未找到该客户"));

    let r = c
        .get(s.url("/console/lang/en"))
        .header("cookie", &cookie)
        .header("referer", format!("{}/console/customers/{id}", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["location"], format!("/console/customers/{id}"));
    let page = c
        .get(s.url("/console/overview"))
        .header("cookie", format!("{cookie}; siyu_lang=en"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("<html lang=\"en\">") && page.contains("People after OneID"));

    // A viewer may look at tags but not change them, and is told why.
    access::create_user(
        s.db(),
        t.id,
        "viewer",
        "看板",
        "viewer-password",
        Role::Viewer,
    )
    .await
    .expect("viewer");
    let r = c
        .post(s.url("/console/login"))
        .form(&[
            ("tenant", "brand"),
            ("username", "viewer"),
            ("password", "viewer-password"),
        ])
        .send()
        .await
        .expect("post");
    let viewer = session_cookie(&r).expect("viewer session");
    let r = c
        .post(s.url("/console/tags"))
        .header("cookie", &viewer)
        .form(&[("group", "兴趣"), ("name", "敏感肌")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.expect("page");
    assert!(page.contains("你的角色只能查看"), "{page}");
    let (tags,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT count(*) FROM tags"))
        .await
        .expect("tags");
    assert_eq!(tags, 0, "nothing was created");

    let r = c
        .post(s.url("/console/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .get(s.url("/console/customers"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()["location"],
        "/console/login",
        "a logged-out session is gone"
    );
}
on_each_backend!(console_sessions_masking_and_languages);

/// A client that does not follow redirects, and a tenant "brand" with an operator "ops"
/// (password `ops-password`); the tenant's id.
async fn brand_with_ops(s: &TestServer) -> (reqwest::Client, TenantId) {
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let t = access::create_tenant(s.db(), "brand")
        .await
        .expect("tenant");
    access::create_user(s.db(), t.id, "ops", "运营", "ops-password", Role::Operator)
        .await
        .expect("user");
    (c, t.id)
}

/// Tags in the tenant: what a forged form would have made.
async fn tag_count(s: &TestServer) -> i64 {
    let (n,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT count(*) FROM tags"))
        .await
        .expect("tags");
    n
}

on_each_backend!(a_cross_site_form_post_is_refused);
/// A page on another site makes the operator's browser post to the console (the browser sends
/// the session cookie along): the login form and every write are refused unless they come from
/// the console's own pages. Clients that are not browsers send neither header and are let
/// through; they carry no victim's cookie.
async fn a_cross_site_form_post_is_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (c, _) = brand_with_ops(&s).await;
    let login = [
        ("tenant", "brand"),
        ("username", "ops"),
        ("password", "ops-password"),
    ];
    let evil = "https://evil.example";

    let r = c
        .post(s.url("/console/login"))
        .header("origin", evil)
        .header("sec-fetch-site", "cross-site")
        .form(&login)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{backend:?}: login CSRF");
    assert!(
        session_cookie(&r).is_none(),
        "{backend:?}: a session was set"
    );

    let r = c
        .post(s.url("/console/login"))
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&login)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{backend:?}");
    let cookie = session_cookie(&r).expect("session cookie");

    let tag = [("group", "活动"), ("name", "伪造")];
    for headers in [
        vec![("origin", evil), ("sec-fetch-site", "cross-site")],
        vec![("origin", evil)],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let mut req = c
            .post(s.url("/console/tags"))
            .header("cookie", &cookie)
            .form(&tag);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("post");
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{backend:?}: {headers:?}"
        );
    }
    assert_eq!(tag_count(&s).await, 0, "{backend:?}: a forged form wrote");

    let r = c
        .post(s.url("/console/tags"))
        .header("cookie", &cookie)
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&tag)
        .send()
        .await
        .expect("post");
    assert!(r.status().is_redirection(), "{backend:?}: {}", r.status());
    assert_eq!(
        tag_count(&s).await,
        1,
        "{backend:?}: the console's own form"
    );
}

on_each_backend!(sign_in_attempts_are_limited_per_account_and_address);
/// Guessing a password is slow: ten wrong passwords for an account from one address, a hundred
/// from all addresses, and thirty attempts of any kind from one address in fifteen minutes; then
/// the sign-in page asks to wait, even with the right password. But a stranger's guesses do not
/// lock the owner out: from their own address the right password still signs in.
async fn sign_in_attempts_are_limited_per_account_and_address(backend: Backend) {
    // The attempts count in fixed 15-minute windows (`limits::Window::Minutes`): a run that
    // straddled a window's end would see its counts start again. Under a full suite this test
    // takes tens of seconds, so it starts in a fresh window when less than two minutes are left.
    let window = 15 * 60_000;
    let left = window - siyu::platform::clock::now_ms().rem_euclid(window);
    if left < 120_000 {
        tokio::time::sleep(std::time::Duration::from_millis(left.unsigned_abs() + 100)).await;
    }
    // Behind a proxy the server believes, so that a test can come from several addresses.
    let s = TestServer::start_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await;
    let (c, _) = brand_with_ops(&s).await;
    let attempt = |user: &'static str, password: &'static str, from: &'static str| {
        let (c, url) = (c.clone(), s.url("/console/login"));
        async move {
            c.post(url)
                .header("x-forwarded-for", from)
                .form(&[
                    ("tenant", "brand"),
                    ("username", user),
                    ("password", password),
                ])
                .send()
                .await
                .expect("post")
        }
    };
    let guesser = "203.0.113.7";
    for i in 0..access::FAILURES_PER_ACCOUNT_AND_ADDRESS {
        let r = attempt("ops", "wrong-guess", guesser).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{backend:?}: guess {i}"
        );
    }
    let r = attempt("ops", "ops-password", guesser).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
    assert!(session_cookie(&r).is_none(), "{backend:?}");
    assert!(r.text().await.expect("body").contains("尝试次数过多"));

    // The owner, from their own address, is not locked out by the guesser.
    let r = attempt("ops", "ops-password", "198.51.100.20").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{backend:?}: the owner signs in"
    );
    assert!(session_cookie(&r).is_some());
    // Right passwords do not count against the account: the owner signs in again and again.
    for _ in 0..access::FAILURES_PER_ACCOUNT_AND_ADDRESS + 2 {
        let r = attempt("ops", "ops-password", "198.51.100.20").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{backend:?}");
    }

    // From one address, every attempt counts: 30 in all, the 11 from the guesser above included
    // (other accounts, unknown ones too).
    let names = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
    ];
    let mut answered = Vec::new();
    for name in names.iter().cycle().take(20) {
        answered.push(attempt(name, "x", guesser).await.status());
    }
    assert!(
        answered[..19]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{backend:?}: {answered:?}"
    );
    assert_eq!(answered[19], StatusCode::TOO_MANY_REQUESTS, "{backend:?}");

    // Guesses spread over many addresses stop at a hundred failures for the account.
    const FROM: [&str; 11] = [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
        "192.0.2.6",
        "192.0.2.7",
        "192.0.2.8",
        "192.0.2.9",
        "192.0.2.10",
        "192.0.2.11",
    ];
    // The guesser's ten failures above count towards it already.
    let per = (access::FAILURES_PER_ACCOUNT - access::FAILURES_PER_ACCOUNT_AND_ADDRESS)
        / access::FAILURES_PER_ACCOUNT_AND_ADDRESS;
    for from in &FROM[..per as usize] {
        for _ in 0..access::FAILURES_PER_ACCOUNT_AND_ADDRESS {
            assert_eq!(
                attempt("ops", "guess", from).await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let r = attempt("ops", "ops-password", FROM[10]).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "{backend:?}: the account-wide cap"
    );
}

on_each_backend!(pages_carry_the_headers_that_hold_browsers_to_them);
/// The console and the customer pages run only their own scripts, are never framed by another
/// site, and a customer page (whose URL carries the customer's token) sends no Referer; over
/// https the browser is told to stay on https.
async fn pages_carry_the_headers_that_hold_browsers_to_them(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::new();
    for (path, referrer) in [
        ("/console/login", "same-origin"),
        ("/h5/flash/1", "no-referrer"),
    ] {
        let r = c.get(s.url(path)).send().await.expect("get");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("frame-ancestors 'none'"),
            "{backend:?}: {path}: {csp}"
        );
        assert!(
            csp.contains("default-src 'self'"),
            "{backend:?}: {path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], referrer, "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{path}: HSTS over http"
        );
    }
    let s = TestServer::start_with(backend, |a| a.public_url = "https://s.brand.cn".into()).await;
    let r = c.get(s.url("/console/login")).send().await.expect("get");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

on_each_backend!(keys_are_revoked_and_users_disabled_and_it_is_all_in_the_audit_log);
/// An admin creates a key for a partner and revokes it when the partner leaves: it stops
/// working at once. A user who leaves is disabled (their session ends, they cannot sign in); a
/// user whose password leaked gets a new one (the old session ends). Each change is in the
/// audit log, which only admins read.
async fn keys_are_revoked_and_users_disabled_and_it_is_all_in_the_audit_log(backend: Backend) {
    use reqwest::Method as M;
    let s = TestServer::start(backend).await;
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let (tenant, admin) = common::tenant_with_key(s.db(), "brand", Role::Admin).await;
    let api = |m: M, path: &str, key: &str, body: Option<serde_json::Value>| {
        let (c, url, key) = (c.clone(), s.url(path), key.to_owned());
        async move { common::send(&c, m, &url, &key, body).await }
    };
    let (st, v) = api(
        M::POST,
        "/api/v1/access/keys",
        &admin,
        Some(serde_json::json!({"name": "ERP 对接", "role": "viewer"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{backend:?}: {v}");
    let partner = v["key"].as_str().expect("key").to_owned();
    let prefix = v["prefix"].as_str().expect("prefix").to_owned();
    let (st, _) = api(M::GET, "/api/v1/customers", &partner, None).await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: the new key works");
    let (st, _) = api(M::GET, "/api/v1/access/keys", &partner, None).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "{backend:?}: a viewer manages no keys"
    );
    let (st, v) = api(
        M::DELETE,
        &format!("/api/v1/access/keys/{prefix}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{backend:?}: {v}");
    let (st, _) = api(M::GET, "/api/v1/customers", &partner, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{backend:?}: a revoked key");
    let (_, v) = api(M::GET, "/api/v1/access/keys", &admin, None).await;
    let listed = v["keys"].as_array().expect("keys");
    assert!(
        listed
            .iter()
            .any(|k| k["prefix"] == prefix.as_str() && k["revoked_at"].is_i64()),
        "{v}"
    );
    assert!(
        !v.to_string().contains(&partner),
        "{backend:?}: a listed key shows only its prefix"
    );

    access::create_user(
        s.db(),
        tenant,
        "ops",
        "运营",
        "ops-password",
        Role::Operator,
    )
    .await
    .expect("user");
    let sign_in = |password: &'static str| {
        let (c, url) = (c.clone(), s.url("/console/login"));
        async move {
            c.post(url)
                .form(&[
                    ("tenant", "brand"),
                    ("username", "ops"),
                    ("password", password),
                ])
                .send()
                .await
                .expect("login")
        }
    };
    let page = |cookie: String| {
        let (c, url) = (c.clone(), s.url("/console/overview"));
        async move {
            c.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("page")
                .status()
        }
    };
    let old = session_cookie(&sign_in("ops-password").await).expect("session");
    assert_eq!(page(old.clone()).await, StatusCode::OK);
    access::set_password(s.db(), tenant, "ops", "new-password-2", "cli:test")
        .await
        .expect("password");
    assert_eq!(
        page(old).await,
        StatusCode::SEE_OTHER,
        "{backend:?}: the old session ended"
    );
    assert_eq!(
        sign_in("ops-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let new = session_cookie(&sign_in("new-password-2").await).expect("session");
    access::disable_user(s.db(), tenant, "ops", "cli:test")
        .await
        .expect("disable");
    assert_eq!(
        page(new).await,
        StatusCode::SEE_OTHER,
        "{backend:?}: a disabled user's session"
    );
    assert_eq!(
        sign_in("new-password-2").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let (st, v) = api(M::GET, "/api/v1/access/audit", &admin, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "user_disabled",
            "password_changed",
            "key_revoked",
            "key_created"
        ],
        "{backend:?}: {v}"
    );
}
