//! Test harness: a fresh database per test on SQLite (always) and PostgreSQL (when
//! `SIYU_TEST_DATABASE_URL` is set), and the real server on a random port.
#![allow(dead_code)]
use siyu::know::CustomerId;
use siyu::platform::Fen;
use siyu::platform::TenantId;

pub mod served;

use siyu::app::{App, AppSettings};
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{ConnectOptions, Db};
use siyu::platform::migrate::migrate_to;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run tests: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    match std::env::var("SIYU_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            // In CI everything is installed: a skip there would hide a missing backend.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but SIYU_TEST_DATABASE_URL is not: PostgreSQL would be skipped"
            );
            eprintln!("SKIPPED on PostgreSQL: SIYU_TEST_DATABASE_URL is not set (SQLite only)");
            vec![Backend::Sqlite]
        }
    }
}

/// PostgreSQL when configured; otherwise None, after saying so (a test run in CI fails instead).
pub fn postgres() -> Option<Backend> {
    match std::env::var("SIYU_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(Backend::Postgres),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but SIYU_TEST_DATABASE_URL is not: PostgreSQL would be skipped"
            );
            eprintln!("SKIPPED on PostgreSQL: SIYU_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// `on_each_backend!(name)` beside `async fn name(backend: Backend)`: the body runs once per
/// backend as tests of their own (`name::sqlite`, `name::postgres`), so a failure on one backend
/// names itself.
#[macro_export]
macro_rules! on_each_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = $crate::common::postgres() {
                    super::$name(b).await
                }
            }
        }
    };
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub db: Db,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>, // (admin url, database name)
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + r.random_range(0..26u8)))
        .collect()
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        TestDb::migrated_to(backend, i64::MAX).await
    }

    /// A database whose schema stops at migration `last`: an upgrade's starting point.
    pub async fn migrated_to(backend: Backend, last: i64) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("siyu.db").display());
                let db = Db::connect(&url, &ConnectOptions::default())
                    .await
                    .expect("open sqlite");
                migrate_to(&db, &cipher(), last)
                    .await
                    .expect("migrate sqlite");
                TestDb {
                    db,
                    url,
                    _dir: Some(dir),
                    pg_drop: None,
                }
            }
            Backend::Postgres => {
                let admin =
                    std::env::var("SIYU_TEST_DATABASE_URL").expect("SIYU_TEST_DATABASE_URL");
                let name = format!("siyu_test_{}", random_suffix());
                let admin_db = Db::connect(&admin, &ConnectOptions { max_connections: 1 })
                    .await
                    .expect("connect to PostgreSQL");
                admin_db
                    .execute_script(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin_db.close().await;
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .expect("URL with a database");
                let url = format!("{base}/{name}");
                let db = Db::connect(&url, &ConnectOptions::default())
                    .await
                    .expect("open test database");
                migrate_to(&db, &cipher(), last)
                    .await
                    .expect("migrate postgres");
                TestDb {
                    db,
                    url,
                    _dir: None,
                    pg_drop: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            let db = self.db.clone();
            // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        db.close().await;
                        if let Ok(a) =
                            Db::connect(&admin, &ConnectOptions { max_connections: 1 }).await
                        {
                            let _ = a
                                .execute_script(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                            a.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub fn cipher() -> FieldCipher {
    FieldCipher::new(&[42u8; 32])
}

/// The token in the test server's SMS callback URLs.
pub const SMS_CALLBACK_TOKEN: &str = "cb-test-token";

/// The real server on 127.0.0.1 and a random port.
pub struct TestServer {
    pub base: String,
    pub tdb: TestDb,
    pub cipher: FieldCipher,
    /// The server's own state (its flash-sale counters, …), for tests that look inside.
    pub app: App,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, |_| {}).await
    }

    /// [`TestServer::start`] with settings changed by `change` (a limit, a provider).
    pub async fn start_with(backend: Backend, change: impl FnOnce(&mut AppSettings)) -> TestServer {
        let tdb = TestDb::new(backend).await;
        let cipher = cipher();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // WeCom calls go wherever a tenant points them: the local sandbox.
        let mut settings = AppSettings::local(format!("http://{addr}"));
        settings.sms.callback_token = Some(SMS_CALLBACK_TOKEN.into());
        // The human check as served, at 12 zero bits rather than 16: the same proof, solved in
        // milliseconds by the tests' unoptimised solver (and by the e2e page's script).
        settings.sms.otp_work_bits = Some(TEST_WORK_BITS);
        change(&mut settings);
        let app = App::build(tdb.db.clone(), cipher.clone(), settings)
            .await
            .expect("build the app");
        let served = app.clone();
        tokio::spawn(async move {
            let _ = siyu_web::serve(listener, served, async {
                let _ = rx.await;
            })
            .await;
        });
        let base = format!("http://{addr}");
        wait_ready(&base).await;
        TestServer {
            base,
            tdb,
            cipher,
            app,
            stop: Some(tx),
        }
    }

    pub fn db(&self) -> &Db {
        &self.tdb.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A tenant with an API key of the given role.
pub async fn tenant_with_key(
    db: &Db,
    name: &str,
    role: siyu::platform::access::Role,
) -> (TenantId, String) {
    let t = siyu::platform::access::create_tenant(db, name)
        .await
        .expect("tenant");
    let key = siyu::platform::access::create_api_key(db, t.id, "test", role)
        .await
        .expect("key");
    (t.id, key)
}

/// The customers of a tenant as sets of identity keys, sorted: comparable across runs whatever
/// the ids.
pub async fn partition(db: &Db, tenant_id: TenantId) -> Vec<Vec<String>> {
    let rows: Vec<(i64, String, Option<String>)> = db
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT customer_id, ikey, value_enc FROM identities WHERE tenant_id = $1",
            )
            .bind(tenant_id),
        )
        .await
        .expect("identities");
    let mut by: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for (c, k, enc) in rows {
        // Phones by number: each tenant hashes them with its own key.
        let k = match enc {
            Some(enc) if k.starts_with("phone:") => {
                format!("phone:{}", cipher().decrypt(&enc).expect("decrypts"))
            }
            _ => k,
        };
        by.entry(c).or_default().push(k);
    }
    let mut parts: Vec<Vec<String>> = by
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    parts.sort();
    parts
}

/// Serves an app on a database of the caller's (e.g. a second pool on the same database, as a
/// second process would have). Returns the base URL and a sender that stops it.
pub async fn serve_on(db: Db, cipher: FieldCipher) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = App::build(db, cipher, AppSettings::local(format!("http://{addr}")))
        .await
        .expect("build the app");
    tokio::spawn(async move {
        let _ = siyu_web::serve(listener, app, async {
            let _ = rx.await;
        })
        .await;
    });
    let base = format!("http://{addr}");
    wait_ready(&base).await;
    (base, tx)
}

/// Waits until the server's `/readyz` answers 200: its audience indexes are built, so what a
/// test writes next is not raced by the start-up build.
pub async fn wait_ready(base: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{base}/readyz did not answer 200"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Connected components of keys linked by records, computed the obvious way (the reference
/// OneID is tested against). `key` names node `n` as an identity key.
pub fn connected_components(
    records: &[Vec<usize>],
    key: impl Fn(usize) -> String,
) -> Vec<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut adj: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for r in records {
        for &a in r {
            let e = adj.entry(a).or_default();
            e.extend(r.iter().copied().filter(|&b| b != a));
        }
    }
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for &start in adj.keys() {
        if !seen.insert(start) {
            continue;
        }
        let (mut stack, mut comp) = (vec![start], Vec::new());
        while let Some(n) = stack.pop() {
            comp.push(key(n));
            for &m in &adj[&n] {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        comp.sort();
        parts.push(comp);
    }
    parts.sort();
    parts
}

/// A JSON POST to the test server with a bearer key: the status and the body.
pub async fn post(
    s: &TestServer,
    key: &str,
    path: &str,
    body: serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &s.url(path),
        key,
        Some(body),
    )
    .await
}

/// One JSON request with a bearer key: the status and the body (`null` when not JSON).
pub async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut r = c.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `n` customers of the tenant behind `key`, made by pushing one order each (phones
/// 139{prefix}{i}), returned by id.
pub async fn make_customers(s: &TestServer, key: &str, prefix: u32, n: usize) -> Vec<i64> {
    let c = reqwest::Client::new();
    let orders: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"channel": "tmall", "order_no": format!("MK-{prefix}-{i}"), "status": "paid",
                   "ordered_at": 1_700_000_000_000i64, "amount": 10_000,
                   "identities": [{"kind": "phone", "value": format!("139{prefix:02}{i:06}")}]})
        })
        .collect();
    for chunk in orders.chunks(500) {
        let (st, v) = send(
            &c,
            reqwest::Method::POST,
            &s.url("/api/v1/orders"),
            key,
            Some(serde_json::json!({"orders": chunk})),
        )
        .await;
        assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    }
    let tenant: (i64,) = s
        .db()
        .fetch_one(
            &siyu::platform::db::sql("SELECT tenant_id FROM orders WHERE order_no = $1")
                .bind(format!("MK-{prefix}-0")),
        )
        .await
        .expect("tenant of the orders");
    let rows: Vec<(i64,)> = s
        .db()
        .fetch_all(
            &siyu::platform::db::sql(
                "SELECT DISTINCT customer_id FROM orders WHERE tenant_id = $1 AND order_no LIKE $2 ORDER BY customer_id",
            )
            .bind(tenant.0)
            .bind(format!("MK-{prefix}-%")),
        )
        .await
        .expect("customers");
    assert_eq!(rows.len(), n);
    rows.into_iter().map(|r| r.0).collect()
}

/// The human check's zero bits on test servers.
pub const TEST_WORK_BITS: u32 = 12;

/// A customer token for the tenant's customer, valid for an hour.
pub fn customer_token(s: &TestServer, tenant: TenantId, customer: i64) -> String {
    s.cipher
        .customer_token(siyu::platform::crypto::CustomerClaim {
            tenant_id: tenant,
            customer_id: CustomerId::new(customer),
            issued_at: siyu::platform::clock::now_ms(),
            expires_at: siyu::platform::clock::now_ms() + 3_600_000,
        })
}

/// A request from a customer's own page (H5): `X-Siyu-Customer: token`.
pub async fn send_as_customer(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut r = c.request(method, url).header("x-siyu-customer", token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A client that does not follow redirects: a test reads the 303 and its cookie itself.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs `username` of `tenant` in to the console through `c` (see [`no_redirects`]); its
/// session cookie.
pub async fn console_session(
    c: &reqwest::Client,
    s: &TestServer,
    tenant: &str,
    username: &str,
    password: &str,
) -> String {
    let r = c
        .post(s.url("/console/login"))
        .form(&[
            ("tenant", tenant),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "{username} signs in"
    );
    session_cookie(&r).expect("session cookie")
}

/// A console page as a signed-in browser gets it (`cookie` from [`console_session`]).
pub async fn console_page(c: &reqwest::Client, s: &TestServer, cookie: &str, path: &str) -> String {
    c.get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("console page")
        .text()
        .await
        .expect("page text")
}

/// A console form sent as a browser sends it: the status, where it redirects, and the page.
pub async fn console_form<K: serde::Serialize, V: serde::Serialize>(
    c: &reqwest::Client,
    s: &TestServer,
    cookie: &str,
    path: &str,
    form: &[(K, V)],
) -> (reqwest::StatusCode, String, String) {
    let r = c
        .post(s.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("console form");
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("page text"))
}

/// The console session a login answer sets, as a `cookie` header value.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("siyu_session=") && !v.starts_with("siyu_session=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The one-time code last sent by SMS, as the buyer's phone would show it. The outbox holds
/// only a placeholder: the code is derived from the message's key with the server's secret.
pub async fn sent_code(s: &TestServer) -> String {
    let (tenant, key): (TenantId, String) = s
        .db()
        .fetch_one(&siyu::platform::db::sql(
            "SELECT tenant_id, dedupe_key FROM outbox WHERE purpose = 'verification' ORDER BY id DESC LIMIT 1",
        ))
        .await
        .expect("a verification message");
    s.cipher
        .one_time_code(&siyu::engage::outbox::code_seed(tenant, &key))
}

/// The body a card page posts to ask for a code: the phone, with the human check solved as the
/// page's script solves it.
pub async fn code_request(s: &TestServer, phone: &str) -> serde_json::Value {
    let v: serde_json::Value = reqwest::get(s.url("/h5/v1/human-check"))
        .await
        .expect("challenge")
        .json()
        .await
        .expect("challenge json");
    let challenge = v["challenge"].as_str().expect("challenge").to_owned();
    let bits = v["bits"].as_u64().expect("bits") as u32;
    let normalised = siyu::know::phone::Phone::parse(phone)
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|_| phone.to_owned());
    let nonce = siyu::acquire::human_check::solve(&challenge, &normalised, bits);
    serde_json::json!({"phone": phone, "challenge": challenge, "nonce": nonce})
}

/// A completed store order of `amount` fen at `at`, whose buyer is named by `phones`.
pub fn store_order(
    no: &str,
    phones: &[&str],
    amount: i64,
    at: i64,
) -> siyu::know::orders::OrderRecord {
    use siyu::know::identity::{Identity, IdentityKind};
    siyu::know::orders::OrderRecord {
        channel: "store".into(),
        order_no: no.into(),
        status: siyu::know::orders::OrderStatus::Completed,
        status_text: None,
        ordered_at: at,
        paid_at: None,
        amount: Fen::new(amount),
        refund_amount: Fen::ZERO,
        refund_of: None,
        store_id: None,
        guide_id: None,
        buyer_name: None,
        phone_hint: None,
        province: None,
        identities: phones
            .iter()
            .map(|p| Identity::new(IdentityKind::Phone, p, None).expect("phone"))
            .collect(),
        lines: vec![],
    }
}

/// Stores orders as an import chunk does (OneID included), with the test cipher.
pub async fn store(db: &Db, tenant_id: TenantId, orders: Vec<siyu::know::orders::OrderRecord>) {
    use siyu::know::orders::{key_identities, store_orders};
    let keyed = key_identities(&cipher(), &cipher().lookup(tenant_id), &orders);
    store_orders(
        db,
        tenant_id,
        "test",
        &orders,
        &keyed,
        siyu::platform::clock::now_ms(),
    )
    .await
    .expect("store orders");
}

/// The customer an order of the tenant belongs to now.
pub async fn order_owner(db: &Db, tenant_id: TenantId, order_no: &str) -> i64 {
    let (c,): (i64,) = db
        .fetch_one(
            &siyu::platform::db::sql(
                "SELECT customer_id FROM orders WHERE tenant_id = $1 AND order_no = $2",
            )
            .bind(tenant_id)
            .bind(order_no),
        )
        .await
        .expect("order");
    c
}
