//! The console over plain HTTP: sessions, masking and both languages, on every backend.

mod common;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use siyu::platform::access::{self, Role};
use siyu::platform::db::sql;

use common::{TestServer, backends, session_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_masking_and_languages() {
    for backend in backends() {
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
}
