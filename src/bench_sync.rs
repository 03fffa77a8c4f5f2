//! `siyu bench --suite sync`: marketplace order sync against each platform's sandbox, in
//! orders/s. Two figures per platform and backend: paced at the platform's default quota (what
//! a shop sees: the quota bounds it), and unpaced against a sandbox with no quota to speak of
//! (what Siyu itself can take: the store bounds it).

use std::time::{Duration, Instant};

use siyu::channels::marketplaces::ALL_PLATFORMS;
use siyu::know::shops::{self, NewShop};
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::workflows::sync::{SyncLimits, sync_shop};
use siyu_marketplace_sandbox::{Platform, Sandbox, Shop, generate};

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
        1,
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
        now,
    )
    .await?;
    let limits = SyncLimits {
        calls_per_second: Some(calls_per_second.unwrap_or(100_000)),
        first_backoff: Duration::from_millis(50),
        ..SyncLimits::default()
    };
    let begun = Instant::now();
    let run = sync_shop(&s.db, &cipher, None, 1, id, &limits).await?;
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

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() {
        backends.push("postgres");
    }
    println!("| measurement | backend | amount | seconds | rate |");
    println!("|---|---|---:|---:|---:|");
    for b in &backends {
        for &p in ALL_PLATFORMS {
            let (n, secs, calls) = one(b, a.postgres.as_deref(), p, a.sync_orders, None).await?;
            println!(
                "| {} order sync, unpaced ({} calls) | {b} | {n} orders | {secs:.2} | {:.0} orders/s |",
                p.zh(),
                calls,
                n as f64 / secs
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
