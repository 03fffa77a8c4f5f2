//! `siyu bench --suite sync`: marketplace order sync against each platform's sandbox, in
//! orders/s. Two figures per platform and backend: paced at the platform's default quota (what
//! a shop sees: the quota bounds it), and unpaced against a sandbox with no quota to speak of
//! (what Siyu itself can take: the store bounds it).

use siyu::platform::TenantId;
use std::time::{Duration, Instant};

use siyu::channels::marketplaces::ALL_PLATFORMS;
use siyu::know::shops::{self, NewShop};
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{Db, sql};
use siyu::workflows::sync::{SyncLimits, sync_shop};
use siyu_marketplace_sandbox::{FakeOrder, Platform, Sandbox, Shop, change, generate};

use crate::bench::{BenchArgs, scratch};

async fn one(
    backend: &str,
    pg: Option<&str>,
    platform: Platform,
    orders: usize,
    calls_per_second: Option<u32>,
) -> anyhow::Result<(u64, f64, u32)> {
    let s = scratch(backend, pg).await?;
    let cipher = FieldCipher::new(&[9u8; 32]);
    let now = now_ms();
    let start = now - 3 * 86_400_000;
    let mut shop = Shop::new(
        platform,
        generate(platform, orders, 3, start, now - 120_000),
    );
    shop.quota_per_second = u64::from(calls_per_second.unwrap_or(100_000));
    let sandbox = Sandbox::start(shop.clone()).await?;
    let id = shops::connect(
        &s.db,
        &cipher,
        TenantId::new(1),
        &NewShop {
            platform: platform.as_str().into(),
            shop_ref: shop.shop_ref.clone(),
            name: "bench".into(),
            app_key: shop.app_key.clone(),
            app_secret: shop.app_secret.clone(),
            access_token: Some(shop.access_token.clone()),
            refresh_token: Some(shop.refresh_token.clone()),
            token_expires_at: Some(now + 86_400_000),
            api_base: Some(sandbox.base.clone()),
            sync_from: start - 60_000,
        },
        true,
        now,
    )
    .await?;
    let limits = SyncLimits {
        calls_per_second: Some(calls_per_second.unwrap_or(100_000)),
        first_backoff: Duration::from_millis(50),
        allow_api_base: true,
        ..SyncLimits::default()
    };
    let begun = Instant::now();
    let run = sync_shop(&s.db, &cipher, None, TenantId::new(1), id, &limits).await?;
    let secs = begun.elapsed().as_secs_f64();
    anyhow::ensure!(
        run.summary.imported == orders as u64,
        "{platform:?}: imported {} of {orders}",
        run.summary.imported
    );
    anyhow::ensure!(
        sandbox.stats().rate_limited == 0,
        "the sync went over the quota"
    );
    s.finish().await?;
    Ok((run.summary.imported, secs, run.calls))
}

type Digest = std::collections::BTreeMap<String, (String, i64, i64, i64)>;

async fn stored(db: &Db, channel: &str) -> anyhow::Result<Digest> {
    let rows: Vec<(String, String, i64, i64, i64)> = db
        .fetch_all(
            &sql(
                "SELECT o.order_no, o.status, o.amount, o.refund_amount, \
                 (SELECT COUNT(*) FROM order_lines l WHERE l.tenant_id = o.tenant_id AND l.order_id = o.id) \
                 FROM orders o WHERE o.tenant_id = 1 AND o.channel = $1",
            )
            .bind(channel),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(n, s, a, r, l)| (n, (s, a, r, l)))
        .collect())
}

fn expected(orders: &[FakeOrder]) -> Digest {
    orders
        .iter()
        .map(|o| {
            let v = (
                o.status.as_str().to_owned(),
                o.amount,
                o.refund_amount,
                o.lines.len() as i64,
            );
            (o.order_no.clone(), v)
        })
        .collect()
}

/// The whole story at size: an outage half-way and a resumed run, 250 orders changed (three
/// pages) and synced, then everything asked again from the start; after each, the store must
/// equal the platform. Returns the seconds of the four runs.
async fn story(
    backend: &str,
    pg: Option<&str>,
    platform: Platform,
    orders: usize,
) -> anyhow::Result<f64> {
    let s = scratch(backend, pg).await?;
    let cipher = FieldCipher::new(&[9u8; 32]);
    let now = now_ms();
    let start = now - 3 * 86_400_000;
    let mut shop = Shop::new(
        platform,
        generate(platform, orders, 5, start, now - 120_000),
    );
    shop.quota_per_second = 100_000;
    shop.fail_after_order_calls = Some(300);
    let sandbox = Sandbox::start(shop.clone()).await?;
    let new = NewShop {
        platform: platform.as_str().into(),
        shop_ref: shop.shop_ref.clone(),
        name: "bench".into(),
        app_key: shop.app_key.clone(),
        app_secret: shop.app_secret.clone(),
        access_token: Some(shop.access_token.clone()),
        refresh_token: Some(shop.refresh_token.clone()),
        token_expires_at: Some(now + 86_400_000),
        api_base: Some(sandbox.base.clone()),
        sync_from: start - 60_000,
    };
    let id = shops::connect(&s.db, &cipher, TenantId::new(1), &new, true, now).await?;
    let limits = SyncLimits {
        settle_ms: 1_000,
        calls_per_second: Some(100_000),
        max_tries: 2,
        first_backoff: Duration::from_millis(20),
        allow_api_base: true,
        ..SyncLimits::default()
    };
    let ch = platform.as_str();
    let begun = Instant::now();
    anyhow::ensure!(
        sync_shop(&s.db, &cipher, None, TenantId::new(1), id, &limits)
            .await
            .is_err(),
        "{ch}: the outage should stop the run"
    );
    sandbox.with_shop(|s| s.fail_after_order_calls = None);
    sync_shop(&s.db, &cipher, None, TenantId::new(1), id, &limits).await?;
    let check = |stage: &'static str, got: Digest, want: Digest| {
        anyhow::ensure!(
            got.len() == orders,
            "{ch} {stage}: {} of {orders} orders stored",
            got.len()
        );
        anyhow::ensure!(
            got == want,
            "{ch} {stage}: the store differs from the platform"
        );
        Ok(())
    };
    check(
        "after the resumed run",
        stored(&s.db, ch).await?,
        expected(&sandbox.with_shop(|s| s.orders.clone())),
    )?;
    let at = now_ms();
    sandbox.with_shop(|s| change(&mut s.orders, 250, at, 9));
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    sync_shop(&s.db, &cipher, None, TenantId::new(1), id, &limits).await?;
    let want = expected(&sandbox.with_shop(|s| s.orders.clone()));
    check("after the changes", stored(&s.db, ch).await?, want.clone())?;
    shops::rewind(&s.db, TenantId::new(1), id, start - 60_000).await?;
    let repeat = sync_shop(&s.db, &cipher, None, TenantId::new(1), id, &limits).await?;
    anyhow::ensure!(repeat.summary.imported == 0, "{ch}: a repeat added orders");
    check("after the repeat", stored(&s.db, ch).await?, want)?;
    let secs = begun.elapsed().as_secs_f64() - 1.6;
    s.finish().await?;
    Ok(secs)
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!("| measurement | backend | amount | seconds | rate |");
    println!("|---|---|---:|---:|---:|");
    for name in &a.sync_platforms {
        anyhow::ensure!(
            Platform::parse(name).is_some(),
            "--platform {name:?} is not one of tmall, jd, pdd, douyin, youzan"
        );
    }
    let chosen = |p: Platform| {
        a.sync_platforms.is_empty() || a.sync_platforms.iter().any(|n| n == p.as_str())
    };
    for b in &backends {
        for &p in ALL_PLATFORMS.iter().filter(|&&p| chosen(p)) {
            let (n, secs, calls) = one(b, a.postgres.as_deref(), p, a.sync_orders, None).await?;
            println!(
                "| {} order sync, unpaced ({} calls) | {b} | {n} orders | {secs:.2} | {:.0} orders/s |",
                p.zh(),
                calls,
                n as f64 / secs
            );
            let secs = story(b, a.postgres.as_deref(), p, a.sync_orders).await?;
            println!(
                "| {} shop of {} orders: outage half-way then resumed, 250 changes, a full repeat; the store equals the platform after each | {b} | 4 runs | {secs:.2} | — |",
                p.zh(),
                a.sync_orders
            );
            let quota = p.calls_per_second();
            let paced = a.sync_orders.min(20_000);
            let (n, secs, calls) = one(b, a.postgres.as_deref(), p, paced, Some(quota)).await?;
            println!(
                "| {} order sync at {quota} calls/s ({} calls, none over the quota) | {b} | {n} orders | {secs:.2} | {:.0} orders/s |",
                p.zh(),
                calls,
                n as f64 / secs
            );
        }
    }
    Ok(())
}
