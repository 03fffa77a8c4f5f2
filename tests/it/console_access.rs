//! The console's access page: an admin makes, rotates and revokes API keys, adds users, gives
//! them new passwords and disables them, and reads it all in the audit log; anyone else is
//! refused.

use crate::common;
use common::{Backend, TestServer, session_cookie};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use siyu::platform::access::{self, Role};

struct Console {
    c: reqwest::Client,
    base: String,
    cookie: String,
}

impl Console {
    async fn sign_in(s: &TestServer, username: &str, password: &str) -> Option<Console> {
        let c = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        let r = c
            .post(s.url("/console/login"))
            .form(&[
                ("tenant", "brand"),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .expect("sign in");
        let cookie = session_cookie(&r)?;
        Some(Console {
            c,
            base: s.base.clone(),
            cookie,
        })
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.expect("text"))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .c
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("post");
        (r.status(), r.text().await.expect("text"))
    }
}

/// The key the page shows once.
fn shown_key(page: &str) -> String {
    let start = page
        .find("id=\"new-key-value\">")
        .expect("a new key on the page")
        + 19;
    page[start..]
        .split('<')
        .next()
        .expect("key")
        .trim()
        .to_owned()
}

async fn api_status(s: &TestServer, key: &str) -> StatusCode {
    reqwest::Client::new()
        .get(s.url("/api/v1/tags"))
        .bearer_auth(key)
        .send()
        .await
        .expect("api")
        .status()
}

async fn an_admin_runs_keys_and_users_from_the_console(backend: Backend) {
    let s = TestServer::start(backend).await;
    let t = access::create_tenant(s.db(), "brand")
        .await
        .expect("tenant");
    access::create_user(s.db(), t.id, "boss", "老板", "boss-password", Role::Admin)
        .await
        .expect("admin");
    access::create_user(s.db(), t.id, "ops", "运营", "ops-password", Role::Operator)
        .await
        .expect("operator");
    let admin = Console::sign_in(&s, "boss", "boss-password")
        .await
        .expect("admin signs in");

    let (st, page) = admin.get("/console/access").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains("API 密钥") && page.contains("控制台账号"),
        "{page}"
    );

    // A key for the ERP: shown once, and it works.
    let (st, page) = admin
        .post(
            "/console/access/keys",
            &[("name", "ERP 对接"), ("role", "operator")],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("密钥只显示这一次"));
    let erp = shown_key(&page);
    assert_eq!(api_status(&s, &erp).await, StatusCode::OK);
    let (_, page) = admin.get("/console/access").await;
    assert!(!page.contains(&erp), "a listed key shows only its prefix");
    assert!(page.contains(&erp[..10]));

    // A key without a name is refused, naming the field; the role chosen stays chosen.
    let (st, page) = admin
        .post("/console/access/keys", &[("name", " "), ("role", "viewer")])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("用途：请填写"), "{page}");
    assert!(page.contains(r#"value="viewer" selected"#));

    // Rotating: the new key works, the old one stops.
    let (st, page) = admin
        .post(&format!("/console/access/keys/{}/rotate", &erp[..10]), &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    let rotated = shown_key(&page);
    assert_ne!(rotated, erp);
    assert_eq!(api_status(&s, &erp).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api_status(&s, &rotated).await, StatusCode::OK);
    let (st, _) = admin
        .post(&format!("/console/access/keys/{}/rotate", &erp[..10]), &[])
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a revoked key cannot be rotated");

    // Revoking.
    let (st, _) = admin
        .post(
            &format!("/console/access/keys/{}/revoke", &rotated[..10]),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(api_status(&s, &rotated).await, StatusCode::UNAUTHORIZED);

    // A user with a short password is refused, naming the field and keeping what was typed.
    let (st, page) = admin
        .post(
            "/console/access/users",
            &[
                ("username", "guide1"),
                ("display_name", "小李"),
                ("role", "guide"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("密码：至少 8 位"), "{page}");
    assert!(page.contains(r#"value="guide1""#) && page.contains(r#"value="小李""#));
    assert!(!page.contains("short"), "a password is never typed back");
    let (st, _) = admin
        .post(
            "/console/access/users",
            &[
                ("username", "guide1"),
                ("display_name", "小李"),
                ("role", "guide"),
                ("password", "guide-password"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, page) = admin
        .post(
            "/console/access/users",
            &[
                ("username", "guide1"),
                ("role", "guide"),
                ("password", "another-one"),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("已有同名账号"));

    // A new password ends the old one; disabling ends the sessions.
    let guide = Console::sign_in(&s, "guide1", "guide-password")
        .await
        .expect("the new user signs in");
    let (st, _) = admin
        .post(
            "/console/access/users/guide1/password",
            &[("password", "new-guide-password")],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        Console::sign_in(&s, "guide1", "guide-password")
            .await
            .is_none()
    );
    let guide2 = Console::sign_in(&s, "guide1", "new-guide-password")
        .await
        .expect("the new password");
    let (st, _) = guide.get("/console/overview").await;
    assert_eq!(
        st,
        StatusCode::SEE_OTHER,
        "the session of the old password ended"
    );
    let (st, _) = admin
        .post("/console/access/users/guide1/disable", &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = guide2.get("/console/overview").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "a disabled user's session ends");
    assert!(
        Console::sign_in(&s, "guide1", "new-guide-password")
            .await
            .is_none()
    );
    let (st, page) = admin.post("/console/access/users/boss/disable", &[]).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(page.contains("不能停用自己"));

    // Everything is in the audit log, in words (read from the log's own table: the buttons share
    // some of the words).
    let (_, page) = admin.get("/console/access").await;
    let log = &page[page.find("id=\"audit-table\"").expect("the audit log")..];
    for action in [
        "创建密钥",
        "轮换密钥",
        "吊销密钥",
        "添加账号",
        "重设密码",
        "停用账号",
    ] {
        assert!(log.contains(action), "{action} in the audit log");
    }
    // The actor by name, without the store's `console:` prefix.
    assert!(
        log.contains("<td>老板</td>") && !log.contains("console:"),
        "{log}"
    );

    // An operator may not.
    let ops = Console::sign_in(&s, "ops", "ops-password")
        .await
        .expect("operator");
    let (st, page) = ops.get("/console/access").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(page.contains("只有管理员"));
    let (st, _) = ops
        .post(
            "/console/access/keys",
            &[("name", "mine"), ("role", "admin")],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let keys = access::api_keys(s.db(), t.id).await.expect("keys");
    assert_eq!(keys.len(), 2, "the operator made no key: {keys:?}");
}
on_each_backend!(an_admin_runs_keys_and_users_from_the_console);
