//! `siyu shop` and `siyu sync`: marketplace shops whose orders arrive by themselves, from the
//! command line (the console and `/api/v1/shops` do the same).

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use siyu::channels::marketplaces::{ALL_PLATFORMS, Platform};
use siyu::know::import::values::parse_time;
use siyu::know::shops::{self, NewShop};
use siyu::platform::clock::now_ms;
use siyu::platform::config::Settings;
use siyu::platform::runtime::open;
use siyu::workflows::sync::{SyncLimits, sync_shop};

#[derive(Subcommand)]
pub enum ShopCommand {
    /// Connect a shop (or reconnect it with new credentials).
    Connect {
        /// tmall, jd, douyin, pdd or youzan.
        #[arg(long)]
        platform: String,
        /// The platform's id of the shop (Youzan kdt_id, Douyin shop_id, …).
        #[arg(long)]
        shop_ref: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        app_key: String,
        /// The app's secret (or set SIYU_SHOP_APP_SECRET, so it stays out of shell history).
        #[arg(long, env = "SIYU_SHOP_APP_SECRET", hide_env_values = true)]
        app_secret: String,
        #[arg(long, env = "SIYU_SHOP_ACCESS_TOKEN", hide_env_values = true)]
        access_token: Option<String>,
        #[arg(long, env = "SIYU_SHOP_REFRESH_TOKEN", hide_env_values = true)]
        refresh_token: Option<String>,
        /// Where the platform's API answers, when not its public address.
        #[arg(long)]
        api_base: Option<String>,
        /// Sync orders changed from this date (China time, e.g. 2024-06-01); default 90 days ago.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List the tenant's shops with their sync status.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-read the orders changed from a date on (re-stored orders update, never duplicate).
    Backfill {
        id: i64,
        #[arg(long)]
        from: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Stop syncing a shop and forget its tokens; its orders stay.
    Disconnect {
        id: i64,
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn platform(name: &str) -> anyhow::Result<Platform> {
    Platform::parse(name).with_context(|| {
        format!(
            "platform {name:?} is not one of {}",
            ALL_PLATFORMS
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn date(s: &str) -> anyhow::Result<i64> {
    parse_time(s).map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn shop(settings: &Settings, c: ShopCommand) -> anyhow::Result<()> {
    let (db, cipher) = open(settings).await?;
    let now = now_ms();
    match c {
        ShopCommand::Connect {
            platform: p,
            shop_ref,
            name,
            app_key,
            app_secret,
            access_token,
            refresh_token,
            api_base,
            since,
            tenant,
        } => {
            let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
            let p = platform(&p)?;
            let sync_from = match since {
                Some(s) => date(&s)?,
                None => now - 90 * 86_400_000,
            };
            let shop = NewShop {
                platform: p.as_str().to_owned(),
                shop_ref,
                name,
                app_key,
                app_secret,
                access_token,
                refresh_token,
                token_expires_at: None,
                api_base,
                sync_from,
            };
            let id = shops::connect(
                &db,
                &cipher,
                tenant,
                &shop,
                settings.marketplace_allow_api_base,
                now,
            )
            .await?;
            println!(
                "shop {id} connected ({}); `siyu sync` brings its orders in",
                p.zh()
            );
        }
        ShopCommand::List { tenant } => {
            let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
            for s in shops::list(&db, tenant).await? {
                println!(
                    "{:>4}  {:<8} {:<20} synced to {}  lag {} min  {} orders{}{}",
                    s.id,
                    s.platform,
                    s.name,
                    siyu::channels::marketplaces::china_seconds_text(s.sync_cursor),
                    s.lag_ms(now) / 60_000,
                    s.orders_synced,
                    if s.disconnected_at.is_some() {
                        "  (disconnected)"
                    } else {
                        ""
                    },
                    s.last_error
                        .map(|e| format!("\n      last error: {e}"))
                        .unwrap_or_default()
                );
            }
        }
        ShopCommand::Backfill { id, from, tenant } => {
            let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
            shops::rewind(&db, tenant, id, date(&from)?).await?;
            println!("shop {id}: the next sync re-reads orders changed from {from}");
        }
        ShopCommand::Disconnect { id, tenant } => {
            let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
            shops::disconnect(&db, tenant, id, now).await?;
            println!("shop {id} disconnected; its orders stay");
        }
    }
    db.close().await;
    Ok(())
}

/// `siyu sync`: every connected shop of the tenant (or one), once, up to a minute ago.
pub async fn sync(
    settings: &Settings,
    tenant: Option<String>,
    shop: Option<i64>,
) -> anyhow::Result<bool> {
    let (db, cipher) = open(settings).await?;
    let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
    let targets: Vec<i64> = match shop {
        Some(id) => vec![id],
        None => shops::list(&db, tenant)
            .await?
            .into_iter()
            .filter(|s| s.disconnected_at.is_none())
            .map(|s| s.id)
            .collect(),
    };
    if targets.is_empty() {
        bail!("no connected shop: `siyu shop connect` first");
    }
    let mut ok = true;
    for id in targets {
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(format!("shop {id}: asking its platform for changed orders"));
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        let limits = SyncLimits {
            allow_api_base: settings.marketplace_allow_api_base,
            ..SyncLimits::default()
        };
        let run = sync_shop(&db, &cipher, None, tenant, id, &limits).await;
        spinner.finish_and_clear();
        match run {
            Ok(r) => {
                println!(
                    "shop {id}: {} windows, {} calls ({} retried); read {}, imported {}, updated {}, rejected {}",
                    r.windows,
                    r.calls,
                    r.retries,
                    r.summary.read,
                    r.summary.imported,
                    r.summary.updated,
                    r.summary.rejected
                );
                crate::print_summary(&r.summary);
            }
            Err(siyu::workflows::sync::SyncError::Busy(_)) => {
                println!("shop {id}: another server is syncing it now; skipped");
            }
            Err(e) => {
                ok = false;
                eprintln!("shop {id}: {e} (it resumes from its cursor next time)");
            }
        }
    }
    db.close().await;
    Ok(ok)
}
