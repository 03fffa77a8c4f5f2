//! Orders arriving by themselves: each platform's client syncs a sandbox shop (the platform's
//! API as it checks signatures, timestamps, tokens, windows and quotas) into the store, picks up
//! three pages of changes, changes nothing when asked again, survives a run stopped half-way,
//! refreshes an expired token, and keeps under the platform's quota, on both backends.

use crate::common;
use siyu::platform::TenantId;
use std::collections::BTreeMap;
use std::time::Duration;

use siyu::know::shops::{self, NewShop};
use siyu::platform::clock::now_ms;
use siyu::platform::db::{Db, sql};
use siyu::workflows::sync::{SyncLimits, sync_shop};
use siyu_marketplace_sandbox::{FakeOrder, Platform, Sandbox, Shop, change, generate};

use common::{Backend, TestDb, cipher};

const TENANT: TenantId = TenantId::new(1);

/// Orders per sandbox shop; `SIYU_SYNC_TEST_ORDERS` raises it (`siyu bench sync` runs 100,000).
fn orders_per_shop() -> usize {
    std::env::var("SIYU_SYNC_TEST_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500)
}

fn limits() -> SyncLimits {
    SyncLimits {
        settle_ms: 1_000,
        calls_per_second: Some(2_000),
        first_backoff: Duration::from_millis(20),
        allow_api_base: true,
        ..SyncLimits::default()
    }
}

async fn connect(db: &Db, sandbox: &Sandbox, shop: &Shop, from: i64) -> i64 {
    let new = NewShop {
        platform: shop.platform.as_str().into(),
        shop_ref: shop.shop_ref.clone(),
        name: format!("{} 旗舰店", shop.platform.zh()),
        app_key: shop.app_key.clone(),
        app_secret: shop.app_secret.clone(),
        access_token: Some(shop.access_token.clone()),
        refresh_token: Some(shop.refresh_token.clone()),
        token_expires_at: Some(now_ms() + 86_400_000),
        api_base: Some(sandbox.base.clone()),
        sync_from: from,
    };
    shops::connect(db, &cipher(), TENANT, &new, true, now_ms())
        .await
        .expect("connect the shop")
}

/// The store's orders of a channel: order number → (status, amount, refund, lines).
async fn stored(db: &Db, channel: &str) -> BTreeMap<String, (String, i64, i64, i64)> {
    let rows: Vec<(String, String, i64, i64, i64)> = db
        .fetch_all(
            &sql(
                "SELECT o.order_no, o.status, o.amount, o.refund_amount, \
                 (SELECT COUNT(*) FROM order_lines l WHERE l.tenant_id = o.tenant_id AND l.order_id = o.id) \
                 FROM orders o WHERE o.tenant_id = $1 AND o.channel = $2",
            )
            .bind(TENANT)
            .bind(channel),
        )
        .await
        .expect("orders");
    rows.into_iter()
        .map(|(no, s, a, r, l)| (no, (s, a, r, l)))
        .collect()
}

/// What the store must hold: the sandbox's orders in Siyu's terms.
fn expected(orders: &[FakeOrder]) -> BTreeMap<String, (String, i64, i64, i64)> {
    orders
        .iter()
        .map(|o| {
            (
                o.order_no.clone(),
                (
                    o.status.as_str().to_owned(),
                    o.amount,
                    o.refund_amount,
                    o.lines.len() as i64,
                ),
            )
        })
        .collect()
}

fn first_difference(
    got: &BTreeMap<String, (String, i64, i64, i64)>,
    want: &BTreeMap<String, (String, i64, i64, i64)>,
) -> String {
    for (k, w) in want {
        if got.get(k) != Some(w) {
            return format!("order {k}: stored {:?}, platform has {w:?}", got.get(k));
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) {
            return format!("order {k} stored but not on the platform");
        }
    }
    "none".into()
}

async fn syncs_changes_and_repeats(backend: Backend, platform: Platform) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 6 * 3_600_000;
    let n = orders_per_shop();
    let shop = Shop::new(platform, generate(platform, n, 7, start, now - 120_000));
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    let ch = platform.as_str();

    // The token expired before the first run: the client refreshes it and carries on.
    sandbox.expire_token();
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {ch}: first sync: {e}"));
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    let got = stored(&tdb.db, ch).await;
    assert_eq!(got.len(), n, "{backend:?} {ch}: every order stored");
    assert!(
        got == want,
        "{backend:?} {ch}: {}",
        first_difference(&got, &want)
    );
    assert_eq!(run.summary.imported, n as u64);
    // Parts of orders were refunded (TOP and Douyin say which in their order APIs, the others
    // in their after-sales APIs), and the store holds those parts, not the whole nor nothing.
    let partly = want
        .values()
        .filter(|(_, amount, refund, _)| *refund > 0 && refund < amount)
        .count();
    assert!(partly > 0, "{ch}: the sandbox refunded no order in part");
    if platform.after_sales_api() {
        // Neighbouring windows share their boundary second, so a case may be read twice; the
        // store keeps one row a case. Refused cases (JD lists every status) refund nothing:
        // the store equalling the platform above says so.
        let refunded = want
            .values()
            .filter(|(_, _, refund, _)| *refund > 0)
            .count();
        let (cases,): (i64,) = tdb
            .db
            .fetch_one(
                &sql("SELECT COUNT(*) FROM after_sales WHERE tenant_id = $1 AND succeeded = 1")
                    .bind(TENANT),
            )
            .await
            .expect("cases");
        assert_eq!(cases, refunded as i64, "{ch}: one case an order refunded");
        assert!(
            run.after_sales >= refunded as u64,
            "{ch}: {}",
            run.after_sales
        );
    }
    let stats = sandbox.stats();
    assert_eq!(
        (stats.bad_signatures, stats.bad_requests),
        (0, 0),
        "{ch}: {stats:?}"
    );
    assert_eq!(stats.token_refreshes, 1, "{ch}: {stats:?}");
    // The new tokens are kept, encrypted.
    let (access, refresh) = sandbox.tokens();
    let (enc,): (String,) = tdb
        .db
        .fetch_one(&sql("SELECT access_token_enc FROM shops WHERE id = $1").bind(id))
        .await
        .expect("shop");
    assert!(!enc.contains(&access), "tokens are stored encrypted");
    let loaded = shops::load(&tdb.db, &cipher(), TENANT, id)
        .await
        .expect("load");
    assert_eq!(
        (loaded.access_token, loaded.refresh_token),
        (Some(access), Some(refresh))
    );

    // Three pages of changes (250 orders moved on), picked up by the next run.
    let changed_at = now_ms();
    sandbox.with_shop(|s| change(&mut s.orders, 250, changed_at, 11));
    // Past the settle time of the run (each change is a millisecond after the one before).
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {ch}: second sync: {e}"));
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    let got = stored(&tdb.db, ch).await;
    assert!(
        got == want,
        "{backend:?} {ch} after changes: {}",
        first_difference(&got, &want)
    );
    assert_eq!(run.summary.imported, 0, "{ch}: changes update, never add");
    assert!(run.summary.updated >= 200, "{ch}: {:?}", run.summary);

    // Asked again from the start (a backfill): the same store, nothing added.
    let customers = |db: &Db| {
        let db = db.clone();
        async move {
            let (n,): (i64,) = db
                .fetch_one(&sql("SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL").bind(TENANT))
                .await
                .expect("count");
            n
        }
    };
    let before = customers(&tdb.db).await;
    shops::rewind(&tdb.db, TENANT, id, start - 60_000)
        .await
        .expect("rewind");
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {ch}: backfill: {e}"));
    assert_eq!(run.summary.imported, 0);
    assert!(
        stored(&tdb.db, ch).await == want,
        "{ch}: a repeated sync changes nothing"
    );
    assert_eq!(
        customers(&tdb.db).await,
        before,
        "{ch}: no customer added by a repeat"
    );
    // A receipt for each run that read something.
    let (receipts,): (i64,) = tdb
        .db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM import_runs WHERE tenant_id = $1 AND source = 'sync'")
                .bind(TENANT),
        )
        .await
        .expect("receipts");
    assert_eq!(receipts, 3);
}

async fn survives_a_stop_half_way(backend: Backend, platform: Platform) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 6 * 3_600_000;
    let n = orders_per_shop();
    let mut shop = Shop::new(platform, generate(platform, n, 21, start, now - 120_000));
    // The platform stops answering part-way: the run stops, keeping what it stored.
    shop.fail_after_order_calls = Some(8);
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    let quick = SyncLimits {
        max_tries: 2,
        ..limits()
    };
    let err = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &quick).await;
    assert!(err.is_err(), "{platform:?}: the outage stops the run");
    let part = stored(&tdb.db, platform.as_str()).await.len();
    assert!(
        part < n,
        "{platform:?}: {part} of {n} stored before the stop"
    );
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    assert!(
        status.last_error.is_some() && status.sync_cursor < now,
        "{status:?}"
    );

    // The platform answers again: the next run resumes from the cursor and completes.
    sandbox.with_shop(|s| s.fail_after_order_calls = None);
    sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: resumed sync: {e}"));
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    let got = stored(&tdb.db, platform.as_str()).await;
    assert!(
        got == want,
        "{backend:?} {platform:?}: {}",
        first_difference(&got, &want)
    );
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    assert!(status.last_error.is_none(), "{status:?}");
    // A missing permission is not taken for an expired token: nothing was refreshed for it.
    assert_eq!(sandbox.stats().token_refreshes, 0, "{platform:?}");
}

async fn keeps_under_the_quota(backend: Backend, platform: Platform) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 2 * 3_600_000;
    let mut shop = Shop::new(platform, generate(platform, 400, 5, start, now - 120_000));
    shop.quota_per_second = 5;
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    // Paced under the quota, the platform never says "too many".
    let paced = SyncLimits {
        calls_per_second: Some(4),
        ..limits()
    };
    sync_shop(&tdb.db, &cipher(), None, TENANT, id, &paced)
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: paced sync: {e}"));
    let s = sandbox.stats();
    assert_eq!(s.rate_limited, 0, "{platform:?}: {s:?}");
    assert!(s.peak_per_second <= 5, "{s:?}");

    // Paced too fast, it is told so in the platform's own words, backs off, and still
    // completes with every order.
    shops::rewind(&tdb.db, TENANT, id, start - 60_000)
        .await
        .expect("rewind");
    let hurried = SyncLimits {
        calls_per_second: Some(100),
        max_tries: 30,
        ..limits()
    };
    sync_shop(&tdb.db, &cipher(), None, TENANT, id, &hurried)
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: hurried sync: {e}"));
    let s = sandbox.stats();
    assert!(s.rate_limited > 0, "{platform:?}: {s:?}");
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    assert!(stored(&tdb.db, platform.as_str()).await == want);
}

macro_rules! each_platform {
    ($test:ident) => {
        mod $test {
            use super::*;
            async fn tmall(b: Backend) {
                super::$test(b, Platform::Tmall).await
            }
            async fn jd(b: Backend) {
                super::$test(b, Platform::Jd).await
            }
            async fn pdd(b: Backend) {
                super::$test(b, Platform::Pdd).await
            }
            async fn douyin(b: Backend) {
                super::$test(b, Platform::Douyin).await
            }
            async fn youzan(b: Backend) {
                super::$test(b, Platform::Youzan).await
            }
            on_each_backend!(tmall);
            on_each_backend!(jd);
            on_each_backend!(pdd);
            on_each_backend!(douyin);
            on_each_backend!(youzan);
        }
    };
}

each_platform!(syncs_changes_and_repeats);
each_platform!(survives_a_stop_half_way);
each_platform!(keeps_under_the_quota);

/// The shops API: admins connect and disconnect (secrets never come back), anyone who may
/// write syncs now and backfills, and the list shows cursor and lag.
async fn shops_are_run_from_the_api(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    use siyu::platform::access::Role;

    let s = common::TestServer::start(backend).await;
    let (tenant, admin) = common::tenant_with_key(s.db(), "brand", Role::Admin).await;
    let op = siyu::platform::access::create_api_key(s.db(), tenant, "ops", Role::Operator)
        .await
        .expect("operator key");
    let now = now_ms();
    let start = now - 3_600_000;
    let shop = Shop::new(
        Platform::Youzan,
        generate(Platform::Youzan, 120, 3, start, now - 120_000),
    );
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let c = reqwest::Client::new();
    let body = json!({
        "platform": "youzan", "shop_ref": shop.shop_ref, "name": "有赞微商城", "app_key": shop.app_key,
        "app_secret": shop.app_secret, "api_base": sandbox.base, "sync_from": start - 60_000,
    });
    let (status, _) = common::send(
        &c,
        Method::POST,
        &s.url("/api/v1/shops"),
        &op,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status.as_u16(), 403, "operators do not hand over secrets");
    let (status, bad) = common::send(
        &c,
        Method::POST,
        &s.url("/api/v1/shops"),
        &admin,
        Some(json!({"platform": "taobao2", "shop_ref": "1", "name": "x", "app_key": "k", "app_secret": "s", "sync_from": start})),
    )
    .await;
    assert_eq!(status.as_u16(), 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("platform"),
        "{bad}"
    );
    let (status, made) = common::send(
        &c,
        Method::POST,
        &s.url("/api/v1/shops"),
        &admin,
        Some(body),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{made}");
    let id = made["id"].as_i64().expect("id");

    // Youzan's token comes from the app's secret: the first sync asks for it.
    let (status, run) = common::send(
        &c,
        Method::POST,
        &s.url(&format!("/api/v1/shops/{id}/sync")),
        &op,
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), &run["imported"]),
        (200, &json!(120)),
        "{run}"
    );
    let (_, listed) = common::send(&c, Method::GET, &s.url("/api/v1/shops"), &op, None).await;
    let text = listed.to_string();
    assert!(
        !text.contains(&shop.app_secret) && !text.contains("token-"),
        "no secret comes back: {text}"
    );
    assert_eq!(
        listed["shops"][0]["shop"]["orders_synced"],
        json!(120),
        "{listed}"
    );
    assert!(
        listed["shops"][0]["lag_ms"].as_i64().unwrap_or(i64::MAX) < 120_000,
        "{listed}"
    );
    // The same status on /metrics, read from the store.
    let metrics = || async {
        c.get(s.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let labels = format!("{{tenant=\"{tenant}\",shop=\"{id}\",platform=\"youzan\"}}");
    let text = metrics().await;
    for line in [
        format!("siyu_sync_orders_synced_total{labels} 120"),
        format!("siyu_sync_failing{labels} 0"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let lag: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("siyu_sync_lag_seconds{labels} ")))
        .and_then(|v| v.parse().ok())
        .expect("a lag");
    assert!((0.0..120.0).contains(&lag), "{lag}");

    let (status, _) = common::send(
        &c,
        Method::POST,
        &s.url(&format!("/api/v1/shops/{id}/backfill")),
        &op,
        Some(json!({"from": start - 60_000})),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    let (_, again) = common::send(
        &c,
        Method::POST,
        &s.url(&format!("/api/v1/shops/{id}/sync")),
        &op,
        None,
    )
    .await;
    assert_eq!(
        (&again["imported"], &again["updated"]),
        (&json!(0), &json!(120)),
        "{again}"
    );

    let (status, _) = common::send(
        &c,
        Method::DELETE,
        &s.url(&format!("/api/v1/shops/{id}")),
        &admin,
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 204);
    assert!(
        !metrics().await.contains(&labels),
        "a disconnected shop is not reported"
    );
    let (status, gone) = common::send(
        &c,
        Method::POST,
        &s.url(&format!("/api/v1/shops/{id}/sync")),
        &op,
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), &gone["error"]["code"]),
        (404, &json!("shop_not_found")),
        "{gone}"
    );
}
on_each_backend!(shops_are_run_from_the_api);

/// An app without the after-sales permission (PDD, JD, Youzan): its orders still sync, and the
/// run's receipt says which cases were not read.
async fn a_refused_after_sales_call_does_not_stop_the_orders(backend: Backend) {
    for platform in [Platform::Pdd, Platform::Jd, Platform::Youzan] {
        refused_after_sales(backend, platform).await;
    }
}

async fn refused_after_sales(backend: Backend, platform: Platform) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 3 * 3_600_000;
    let mut shop = Shop::new(platform, generate(platform, 300, 9, start, now - 120_000));
    shop.refuse_after_sales = true;
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: the sync stopped: {e}"));
    assert_eq!(
        run.summary.imported, 300,
        "{backend:?} {platform:?}: every order stored"
    );
    assert_eq!(run.after_sales, 0);
    // Three hours of orders: every window of the platform's width was passed.
    let windows = (3 * 3_600_000 / platform.max_window_ms()) as u32;
    assert!(
        run.windows >= windows,
        "{backend:?} {platform:?}: the cursor moved on: {run:?}"
    );
    assert!(
        run.summary
            .errors
            .iter()
            .any(|e| e.column == "after_sales" && e.reason.contains("not read")),
        "{backend:?}: {:?}",
        run.summary.errors
    );
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    assert!(status.last_error.is_none(), "{status:?}");
    // A missing permission is not taken for an expired token: nothing was refreshed for it.
    assert_eq!(sandbox.stats().token_refreshes, 0, "{platform:?}");
}

on_each_backend!(a_refused_after_sales_call_does_not_stop_the_orders);

/// Cases over several pages of one window (PDD, JD and Youzan): every case is read and the
/// store equals the platform.
async fn after_sales_cases_over_several_pages(backend: Backend, platform: Platform) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    // 2,000 orders changed within 25 minutes: one window, about 280 refunded (three pages,
    // six of JD's).
    let start = now - 27 * 60_000;
    let orders = generate(platform, 2_000, 13, start, now - 120_000);
    let refunded = orders.iter().filter(|o| o.refund_amount > 0).count();
    assert!(refunded > 200, "{refunded}");
    let shop = Shop::new(platform, orders);
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?} {platform:?}: {e}"));
    assert!(run.windows <= 2, "{run:?}");
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    let got = stored(&tdb.db, platform.as_str()).await;
    assert!(
        got == want,
        "{backend:?} {platform:?}: {}",
        first_difference(&got, &want)
    );
    let (cases,): (i64,) = tdb
        .db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM after_sales WHERE tenant_id = $1 AND succeeded = 1")
                .bind(TENANT),
        )
        .await
        .expect("cases");
    assert_eq!(cases, refunded as i64, "{backend:?} {platform:?}");
    let stats = sandbox.stats();
    assert_eq!(
        (stats.bad_signatures, stats.bad_requests),
        (0, 0),
        "{platform:?}: {stats:?}"
    );
}

async fn after_sales_cases_over_several_pages_pdd(backend: Backend) {
    after_sales_cases_over_several_pages(backend, Platform::Pdd).await
}
on_each_backend!(after_sales_cases_over_several_pages_pdd);

async fn after_sales_cases_over_several_pages_jd(backend: Backend) {
    after_sales_cases_over_several_pages(backend, Platform::Jd).await
}
on_each_backend!(after_sales_cases_over_several_pages_jd);

async fn after_sales_cases_over_several_pages_youzan(backend: Backend) {
    after_sales_cases_over_several_pages(backend, Platform::Youzan).await
}
on_each_backend!(after_sales_cases_over_several_pages_youzan);

/// A window holding more cases than Youzan's refund search reads (3,000 deep) is split, as a
/// window of orders is: every case is read, none counted as rejected.
async fn a_window_of_more_cases_than_the_platform_pages_is_split(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 27 * 60_000;
    let mut orders = generate(Platform::Youzan, 3_200, 17, start, now - 120_000);
    // A promotion's aftermath: every order refunded in full.
    for o in &mut orders {
        o.status = siyu_marketplace_sandbox::Status::Refunded;
        o.paid_at = Some(o.created_at);
        o.refund_amount = o.amount;
    }
    let shop = Shop::new(Platform::Youzan, orders);
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
    assert_eq!(run.summary.rejected, 0, "{:?}", run.summary.errors);
    let (cases,): (i64,) = tdb
        .db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM after_sales WHERE tenant_id = $1 AND succeeded = 1")
                .bind(TENANT),
        )
        .await
        .expect("cases");
    assert_eq!(cases, 3_200, "{backend:?}");
    let stats = sandbox.stats();
    assert_eq!(stats.bad_requests, 0, "never asked past 3,000: {stats:?}");
}

on_each_backend!(a_window_of_more_cases_than_the_platform_pages_is_split);

/// A shop's own `api_base` is called only when the server allows it: else the sync would call
/// any address a tenant admin typed (an internal host). Connecting refuses it, and a shop stored
/// with one while it was allowed is not synced once it no longer is.
async fn api_base_needs_the_servers_leave(backend: Backend) {
    use serde_json::json;
    use siyu::platform::access::Role;

    let s = common::TestServer::start_with(backend, |a| a.marketplace_allow_api_base = false).await;
    let (_, admin) = common::tenant_with_key(s.db(), "brand", Role::Admin).await;
    let (status, body) = common::send(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &s.url("/api/v1/shops"),
        &admin,
        Some(json!({"platform": "pdd", "shop_ref": "1", "name": "x", "app_key": "k", "app_secret": "s",
                    "api_base": "http://169.254.169.254", "sync_from": now_ms() - 3_600_000})),
    )
    .await;
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("api_base"),
        "{body}"
    );

    let tdb = TestDb::new(backend).await;
    let shop = Shop::new(Platform::Pdd, Vec::new());
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, now_ms() - 3_600_000).await;
    let strict = SyncLimits {
        allow_api_base: false,
        ..limits()
    };
    let refused = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &strict).await;
    assert!(
        matches!(
            refused,
            Err(siyu::workflows::sync::SyncError::ApiBaseNotAllowed(_))
        ),
        "{refused:?}"
    );
    assert_eq!(sandbox.stats().calls, 0, "nothing was called");
}
on_each_backend!(api_base_needs_the_servers_leave);

/// A failed call's error is kept on the shop and shown to every role: it must not carry the
/// URL, whose query holds tokens (and, for JD's refresh, the app secret).
async fn errors_keep_no_secret(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let shop = Shop::new(Platform::Jd, Vec::new());
    // Nothing listens here: the refresh fails to connect.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let new = NewShop {
        platform: "jd".into(),
        shop_ref: shop.shop_ref.clone(),
        name: "京东".into(),
        app_key: shop.app_key.clone(),
        app_secret: "jd-secret-that-must-not-show".into(),
        access_token: Some("jd-access-token-that-must-not-show".into()),
        refresh_token: Some("jd-refresh-token-that-must-not-show".into()),
        token_expires_at: Some(now_ms()),
        api_base: Some(format!("http://{closed}")),
        sync_from: now_ms() - 3_600_000,
    };
    let id = shops::connect(&tdb.db, &cipher(), TENANT, &new, true, now_ms())
        .await
        .expect("connect");
    let quick = SyncLimits {
        max_tries: 1,
        ..limits()
    };
    let err = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &quick)
        .await
        .expect_err("nothing answers");
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    let kept = status.last_error.clone().unwrap_or_default();
    for shown in [err.to_string(), kept] {
        assert!(!shown.is_empty());
        assert!(!shown.contains("must-not-show"), "{shown}");
    }
}
on_each_backend!(errors_keep_no_secret);

/// One run at a time per shop: a second run asked while the first holds the shop is told so
/// and calls nothing; a backfill asked during a run is not overwritten by it.
async fn one_run_at_a_time(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 4 * 3_600_000;
    let shop = Shop::new(
        Platform::Pdd,
        generate(Platform::Pdd, 300, 9, start, now - 120_000),
    );
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    // Paced to take a few seconds.
    let slow = SyncLimits {
        calls_per_second: Some(4),
        ..limits()
    };
    let (db, first_limits) = (tdb.db.clone(), slow.clone());
    let first =
        tokio::spawn(
            async move { sync_shop(&db, &cipher(), None, TENANT, id, &first_limits).await },
        );
    // Once the first run holds the shop and has stored its first window (a rewind before that
    // would set the cursor to where it already is, and prove nothing):
    let mut ready = false;
    for _ in 0..100 {
        let (held, cursor): (Option<i64>, i64) = tdb
            .db
            .fetch_one(
                &sql("SELECT sync_lease_until, sync_cursor FROM shops WHERE id = $1").bind(id),
            )
            .await
            .expect("shop");
        if held.is_some() && sandbox.stats().calls > 0 && cursor > start - 60_000 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "{backend:?}: the first run stored no window in 5 s");
    let second = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &slow).await;
    assert!(
        matches!(second, Err(siyu::workflows::sync::SyncError::Busy(_))),
        "{second:?}"
    );
    // A backfill asked now wins over the running sync's next window.
    shops::rewind(&tdb.db, TENANT, id, start - 60_000)
        .await
        .expect("rewind");
    let run = first.await.expect("join").expect("first run");
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    assert_eq!(
        status.sync_cursor,
        start - 60_000,
        "the backfill stands: {status:?} {run:?}"
    );
    // The shop is free again, and the next run reads from the backfill's start.
    let again = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits())
        .await
        .expect("next run");
    assert!(
        again.summary.imported + again.summary.updated >= 300,
        "{:?}",
        again.summary
    );
}
on_each_backend!(one_run_at_a_time);

/// A run inside `serve` ends at a window boundary once its time is up (the rest is the next
/// run's), and a lease left by a server that died runs out, so the shop is synced again.
async fn runs_end_on_time_and_dead_leases_run_out(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let now = now_ms();
    let start = now - 3 * 3_600_000;
    let shop = Shop::new(
        Platform::Pdd,
        generate(Platform::Pdd, 200, 4, start, now - 120_000),
    );
    let sandbox = Sandbox::start(shop.clone()).await.expect("sandbox");
    let id = connect(&tdb.db, &sandbox, &shop, start - 60_000).await;
    // No time left: one window, then the run ends; the next run goes on from there.
    let brief = SyncLimits {
        max_run: Some(Duration::ZERO),
        ..limits()
    };
    let run = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &brief)
        .await
        .expect("a run with no time left");
    assert_eq!(run.windows, 1, "{run:?}");
    let next = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &brief)
        .await
        .expect("the next run");
    assert_eq!(next.windows, 1, "{next:?}");
    let status = &shops::list(&tdb.db, TENANT).await.expect("list")[0];
    assert!(
        status.sync_cursor > run.cursor && status.sync_cursor < now - 60_000,
        "{status:?}"
    );

    // A server took the shop and died: until its lease runs out the shop is busy…
    let taken = shops::take_lease(&tdb.db, TENANT, id, now_ms(), 15 * 60_000)
        .await
        .expect("lease");
    assert!(taken.is_some());
    let busy = sync_shop(&tdb.db, &cipher(), None, TENANT, id, &limits()).await;
    assert!(
        matches!(busy, Err(siyu::workflows::sync::SyncError::Busy(_))),
        "{busy:?}"
    );
    // …and once it has, another run takes it.
    let later = now_ms() + 16 * 60_000;
    assert!(
        shops::take_lease(&tdb.db, TENANT, id, later, 15 * 60_000)
            .await
            .expect("lease")
            .is_some(),
        "a lease runs out"
    );
}
on_each_backend!(runs_end_on_time_and_dead_leases_run_out);
