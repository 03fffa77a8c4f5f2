//! Connecting a shop from the console by the seller's authorisation (授权), against each
//! platform's sandbox on both backends: the form sends the browser to the platform's page with
//! the app and a one-time state, the platform sends it back with a code, the code becomes the
//! shop's tokens and the shop syncs with them. A state is good once, for its own brand, for ten
//! minutes; a seller's "no", a missing service id and a non-admin are refused in Chinese.

use crate::common;
use reqwest::StatusCode;
use siyu::platform::TenantId;
use siyu::platform::access::{self, Role};
use siyu::platform::clock::now_ms;
use siyu::platform::db::sql;
use siyu::workflows::sync::{SyncLimits, sync_shop};
use siyu_marketplace_sandbox::{Platform, Sandbox, Shop, generate};
use std::time::Duration;

use common::{Backend, TestServer, console_session, no_redirects, tenant_with_key};

const PASSWORD: &str = "a-long-password";
const CALLBACK: &str = "/console/shops/authorized";

fn limits() -> SyncLimits {
    SyncLimits {
        settle_ms: 1_000,
        calls_per_second: Some(2_000),
        first_backoff: Duration::from_millis(20),
        allow_api_base: true,
        ..SyncLimits::default()
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A sandbox shop whose app registered the server's callback, with 200 orders of the last
/// three hours and tokens no one has been given yet.
async fn sandbox_for(s: &TestServer, platform: Platform) -> (Sandbox, Shop) {
    let now = now_ms();
    let mut shop = Shop::new(
        platform,
        generate(platform, 200, 5, now - 3 * 3_600_000, now - 120_000),
    );
    shop.access_token = "not-given-yet".into();
    shop.callback_url = Some(s.url(CALLBACK));
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    (sandbox, shop)
}

async fn send_form(
    c: &reqwest::Client,
    s: &TestServer,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.post(s.url("/console/shops/authorize"))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("authorize")
}

/// The form for `shop`'s app; the browser's trip to the platform; the platform's answer (a
/// redirect back to the callback).
async fn authorise(
    c: &reqwest::Client,
    s: &TestServer,
    cookie: &str,
    sandbox: &Sandbox,
    shop: &Shop,
) -> String {
    let platform = shop.platform.as_str();
    let r = send_form(
        c,
        s,
        cookie,
        &[
            ("platform", platform),
            ("name", ""),
            ("app_key", &shop.app_key),
            ("app_secret", &shop.app_secret),
            ("service_id", &shop.service_id),
            ("shop_ref", ""),
            ("sync_days", "1"),
            ("api_base", &sandbox.base),
        ],
    )
    .await;
    // A page that sends the browser on (a redirect after a form post would break the console's
    // form-action policy), its link the platform's page.
    assert_eq!(r.status(), StatusCode::OK, "{platform}");
    let page = r.text().await.expect("page");
    let to_platform = page
        .split("id=\"to-platform\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&").replace("&#38;", "&"))
        .unwrap_or_else(|| panic!("{platform}: no link on {page}"));
    assert!(
        to_platform.starts_with(&sandbox.base),
        "{platform}: {to_platform}"
    );
    assert!(
        query_param(&to_platform, "state").is_some_and(|st| st.len() >= 32),
        "{platform}: a state of its own: {to_platform}"
    );
    let r = c
        .get(&to_platform)
        .send()
        .await
        .expect("the platform's page");
    assert_eq!(r.status(), StatusCode::FOUND, "{platform}");
    let back = location(&r);
    assert!(back.starts_with(&s.url(CALLBACK)), "{platform}: {back}");
    back
}

async fn open(c: &reqwest::Client, cookie: &str, url: &str) -> (StatusCode, String) {
    let r = c
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    (r.status(), r.text().await.expect("page"))
}

async fn shop_id(s: &TestServer, tenant: TenantId, platform: Platform) -> i64 {
    siyu::know::shops::list(s.db(), tenant)
        .await
        .expect("shops")
        .into_iter()
        .find(|x| x.platform == platform.as_str())
        .map(|x| x.id)
        .unwrap_or_else(|| panic!("{platform:?}: no shop connected"))
}

async fn connects_each_platform_by_authorisation(backend: Backend) {
    let s = TestServer::start_with(backend, |a| a.marketplace_allow_api_base = true).await;
    let c = no_redirects();
    let (tenant, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    for (user, role) in [("boss", Role::Admin), ("ops", Role::Operator)] {
        access::create_user(s.db(), tenant, user, user, PASSWORD, role)
            .await
            .expect("user");
    }
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let ops = console_session(&c, &s, "茶小铺", "ops", PASSWORD).await;

    // The overview offers the form, with the callback to register with the app.
    let (st, page) = open(&c, &boss, &s.url("/console/overview")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(page.contains("connect-shop-form"), "the form is offered");
    assert!(page.contains(&s.url(CALLBACK)), "the callback is shown");
    let (_, page) = open(&c, &ops, &s.url("/console/overview")).await;
    assert!(!page.contains("connect-shop-form"), "not to an operator");

    for platform in [
        Platform::Tmall,
        Platform::Jd,
        Platform::Pdd,
        Platform::Douyin,
    ] {
        let (sandbox, shop) = sandbox_for(&s, platform).await;
        let back = authorise(&c, &s, &boss, &sandbox, &shop).await;
        let r = c
            .get(&back)
            .header("cookie", &boss)
            .send()
            .await
            .expect("callback");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{platform:?}");
        assert_eq!(location(&r), "/console/overview#channel-data");
        // Named as the platform names it (the form left the name empty; JD names none), by the
        // platform's id.
        let name = match platform {
            Platform::Jd => "京东 10086".to_owned(),
            _ => shop.name.clone(),
        };
        let listed = siyu::know::shops::list(s.db(), tenant)
            .await
            .expect("shops");
        let row = listed
            .iter()
            .find(|x| x.platform == platform.as_str())
            .expect("connected");
        assert_eq!(
            (row.name.as_str(), row.shop_ref.as_str()),
            (name.as_str(), "10086")
        );
        // The granted tokens sync the shop.
        let id = shop_id(&s, tenant, platform).await;
        let run = sync_shop(s.db(), &s.cipher, None, tenant, id, &limits())
            .await
            .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: {e}"));
        assert_eq!(run.summary.imported, 200, "{platform:?}: {run:?}");
        let stats = sandbox.stats();
        assert_eq!(
            (
                stats.grants,
                stats.bad_signatures,
                stats.bad_requests,
                stats.token_refreshes
            ),
            (1, 0, 0, 0),
            "{platform:?}: {stats:?}"
        );
        // The same answer again: its state is spent.
        let (st, page) = open(&c, &boss, &back).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{platform:?}");
        assert!(page.contains("已使用、已失效"), "{platform:?}: {page}");
        assert_eq!(sandbox.stats().grants, 1, "the code is not asked for again");
    }

    // Youzan's self-use app connects at once with its shop id, and its token comes from the
    // app's secret.
    let (sandbox, shop) = sandbox_for(&s, Platform::Youzan).await;
    let r = send_form(
        &c,
        &s,
        &boss,
        &[
            ("platform", "youzan"),
            ("name", "有赞微商城"),
            ("app_key", &shop.app_key),
            ("app_secret", &shop.app_secret),
            ("shop_ref", &shop.shop_ref),
            ("sync_days", "1"),
            ("api_base", &sandbox.base),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/console/overview#channel-data");
    let id = shop_id(&s, tenant, Platform::Youzan).await;
    let run = sync_shop(s.db(), &s.cipher, None, tenant, id, &limits())
        .await
        .expect("youzan sync");
    assert_eq!(run.summary.imported, 200);

    // Refusals, in Chinese, naming the field and keeping what was typed (never the secret).
    let r = send_form(
        &c,
        &s,
        &ops,
        &[("platform", "jd"), ("app_key", "k"), ("app_secret", "s")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.expect("page").contains("只有管理员"));
    let r = send_form(
        &c,
        &s,
        &boss,
        &[
            ("platform", "douyin"),
            ("app_key", "douyin-key-typed"),
            ("app_secret", "secret-typed"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("page");
    assert!(page.contains("服务 ID：抖店授权须填写"), "{page}");
    assert!(page.contains("douyin-key-typed"), "what was typed is kept");
    assert!(
        !page.contains("secret-typed"),
        "the secret is not written back"
    );
    let r = send_form(
        &c,
        &s,
        &boss,
        &[
            ("platform", "jd"),
            ("app_key", "k"),
            ("app_secret", "s"),
            ("sync_days", "九十"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("page").contains("同步天数"));
    let (pending,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM shop_authorizations"))
        .await
        .expect("count");
    assert_eq!(pending, 0, "a refused form keeps nothing");
}

on_each_backend!(connects_each_platform_by_authorisation);

/// A seller's "no", another brand's callback, and an authorisation left too long.
async fn an_authorisation_is_its_brands_once_and_briefly(backend: Backend) {
    let s = TestServer::start_with(backend, |a| a.marketplace_allow_api_base = true).await;
    let c = no_redirects();
    let (a, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    let (b, _) = tenant_with_key(s.db(), "咖啡馆", Role::Admin).await;
    access::create_user(s.db(), a, "boss", "boss", PASSWORD, Role::Admin)
        .await
        .expect("user");
    access::create_user(s.db(), b, "other", "other", PASSWORD, Role::Admin)
        .await
        .expect("user");
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let other = console_session(&c, &s, "咖啡馆", "other", PASSWORD).await;

    // Another brand's admin cannot finish this brand's authorisation; its own admin still can.
    let (sandbox, shop) = sandbox_for(&s, Platform::Pdd).await;
    let back = authorise(&c, &s, &boss, &sandbox, &shop).await;
    let (st, page) = open(&c, &other, &back).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("不是本品牌发起的"), "{page}");
    assert!(
        siyu::know::shops::list(s.db(), b)
            .await
            .expect("b")
            .is_empty()
    );
    let r = c
        .get(&back)
        .header("cookie", &boss)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        siyu::know::shops::list(s.db(), a).await.expect("a").len(),
        1
    );

    // The seller says no: nothing is connected and the page says so.
    let (sandbox, shop) = sandbox_for(&s, Platform::Tmall).await;
    sandbox.with_shop(|x| x.deny_authorization = true);
    let back = authorise(&c, &s, &boss, &sandbox, &shop).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let (st, page) = open(&c, &boss, &back).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("卖家在平台上拒绝了授权"), "{page}");
    // Its state is spent: a code sent with it later is refused.
    let state = query_param(&back, "state").expect("state");
    let (st, _) = open(
        &c,
        &boss,
        &s.url(&format!("{CALLBACK}?code=code-99&state={state}")),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A crafted error text is not written into the page.
    let crafted = s.url(&format!(
        "{CALLBACK}?error=%E4%BD%A0%E5%A5%BD%E9%AA%97%E5%AD%90&state=x"
    ));
    let (_, page) = open(&c, &boss, &crafted).await;
    assert!(!page.contains("你好骗子"), "{page}");
    assert_eq!(
        siyu::know::shops::list(s.db(), a).await.expect("a").len(),
        1
    );

    // Left more than ten minutes: refused, and the code is never exchanged.
    let (sandbox, shop) = sandbox_for(&s, Platform::Jd).await;
    let back = authorise(&c, &s, &boss, &sandbox, &shop).await;
    s.db()
        .execute(&sql("UPDATE shop_authorizations SET expires_at = $1").bind(now_ms() - 1))
        .await
        .expect("age it");
    let (st, page) = open(&c, &boss, &back).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("超过 10 分钟"), "{page}");
    assert_eq!(sandbox.stats().grants, 0);
    assert_eq!(
        siyu::know::shops::list(s.db(), a).await.expect("a").len(),
        1
    );
    let (pending,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM shop_authorizations"))
        .await
        .expect("count");
    assert_eq!(pending, 0, "no authorisation is left behind");

    // Authorising the PDD shop again (its token ended): the same shop, its name and cursor kept.
    let before = siyu::know::shops::list(s.db(), a).await.expect("a");
    let (sandbox, shop) = sandbox_for(&s, Platform::Pdd).await;
    let back = authorise(&c, &s, &boss, &sandbox, &shop).await;
    let r = c
        .get(&back)
        .header("cookie", &boss)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = siyu::know::shops::list(s.db(), a).await.expect("a");
    assert_eq!(after.len(), 1);
    assert_eq!(
        (&after[0].name, after[0].sync_cursor),
        (&before[0].name, before[0].sync_cursor)
    );
}

on_each_backend!(an_authorisation_is_its_brands_once_and_briefly);

/// A server that does not allow other API addresses refuses one typed into the form, and keeps
/// nothing.
async fn the_form_takes_no_api_address_the_server_does_not_allow(backend: Backend) {
    let s = TestServer::start_with(backend, |a| a.marketplace_allow_api_base = false).await;
    let c = no_redirects();
    let (a, _) = tenant_with_key(s.db(), "茶小铺", Role::Admin).await;
    access::create_user(s.db(), a, "boss", "boss", PASSWORD, Role::Admin)
        .await
        .expect("user");
    let boss = console_session(&c, &s, "茶小铺", "boss", PASSWORD).await;
    let (_, page) = open(&c, &boss, &s.url("/console/overview")).await;
    assert!(
        !page.contains("name=\"api_base\""),
        "the field is not offered"
    );
    let r = send_form(
        &c,
        &s,
        &boss,
        &[
            ("platform", "pdd"),
            ("app_key", "k"),
            ("app_secret", "s"),
            ("api_base", "http://10.0.0.1:8080"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("page").contains("接口地址："));
    let (pending,): (i64,) = s
        .db()
        .fetch_one(&sql("SELECT COUNT(*) FROM shop_authorizations"))
        .await
        .expect("count");
    assert_eq!(pending, 0);
}

on_each_backend!(the_form_takes_no_api_address_the_server_does_not_allow);
