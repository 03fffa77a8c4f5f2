//! Every loop a running server keeps going by itself, started in one place.
//!
//! The writers that answer requests (events, clicks, flash reservations, WeCom callbacks) start
//! with their parts in [`App::build`]; they are named in [`WRITERS`] so that `/readyz` shows the
//! whole set. (SQLite's checkpointer belongs to the store and starts with its pool.)

use std::time::Duration;

use super::App;
use crate::platform::clock::now_ms;

/// The writers [`App::build`] starts with their parts.
pub const WRITERS: &[&str] = &[
    "event writer",
    "click writer",
    "flash reservation writer",
    "wecom callback lanes",
];

/// The loops [`Workers::start`] starts, in the order it starts them.
pub const LOOPS: &[&str] = &[
    "outbox dispatcher",
    "wecom ticks",
    "flash reservation expiry",
    "group-buy and bargain sweeps",
    "audience indexes",
    "daily recompute",
    "hourly rule tags",
    "audience rebuild requests",
    "points expiry and tier review",
    "spent budgets and ended sessions sweep",
    "marketplace order sync",
];

/// How often the loops run.
#[derive(Debug, Clone)]
pub struct Cadence {
    pub outbox: Duration,
    pub wecom: Duration,
    pub flash_expiry: Duration,
    pub activity_sweeps: Duration,
    pub rebuild_requests: Duration,
    /// How often connected shops' orders are asked of their platforms.
    pub shop_sync: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            outbox: Duration::from_secs(1),
            wecom: Duration::from_secs(30),
            flash_expiry: Duration::from_secs(1),
            activity_sweeps: Duration::from_secs(30),
            rebuild_requests: Duration::from_secs(2),
            shop_sync: Duration::from_secs(300),
        }
    }
}

/// The background loops of one running app.
#[derive(Debug, Clone)]
pub struct Workers {
    /// True once the audience indexes of the tenants that existed at start are built.
    audiences_ready: tokio::sync::watch::Receiver<bool>,
}

impl Workers {
    /// Starts every background loop on the current runtime. Each stops by itself when the
    /// pool closes (or with the runtime).
    pub async fn start(app: &App) -> Result<Workers, crate::platform::db::DbError> {
        Self::start_with(app, &Cadence::default()).await
    }

    pub async fn start_with(
        app: &App,
        every: &Cadence,
    ) -> Result<Workers, crate::platform::db::DbError> {
        app.outbox.spawn(every.outbox);
        app.connect.spawn_ticks(every.wecom);
        app.flash.spawn_expiry(every.flash_expiry);
        spawn_activity_sweeps(app, every.activity_sweeps);
        // Read before building, so that a rebuild asked for during the build is acted on after.
        let versions = crate::know::audience::rebuild_versions(&app.db).await?;
        // Indexes build in the background so the server answers at once (a large tenant takes
        // minutes); a count for a tenant still building waits for its index.
        let audiences = app.audiences.clone();
        let watch_every = every.rebuild_requests;
        let (ready, audiences_ready) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let begun = std::time::Instant::now();
            match audiences.prepare().await {
                Ok(()) => tracing::info!(
                    ms = begun.elapsed().as_millis() as u64,
                    "audience indexes ready"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "building audience indexes failed; they build on first use")
                }
            }
            let _ = ready.send(true);
            audiences.spawn_daily();
            audiences.spawn_hourly_rule_tags();
            audiences.spawn_rebuild_watch(watch_every, versions);
        });
        crate::convert::points::spawn_daily_expiry(app.db.clone());
        spawn_budget_sweep(app);
        spawn_shop_sync(app, every.shop_sync);
        Ok(Workers { audiences_ready })
    }

    /// What the process still waits for before it answers with every index built: `None`
    /// when ready.
    pub fn waiting_for(&self) -> Option<&'static str> {
        (!*self.audiences_ready.borrow()).then_some("audience indexes")
    }

    /// The loops this app started, in order: every one of [`LOOPS`].
    pub fn loops(&self) -> &'static [&'static str] {
        LOOPS
    }
}

/// Forgets the public's budgets (one-time codes and the like) whose windows ended days ago, and
/// console sessions that ended, hourly. Stops when the pool closes.
fn spawn_budget_sweep(app: &App) {
    let db = app.db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3_600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.is_closed() {
                return;
            }
            if let Err(e) = crate::platform::limits::sweep(&db, now_ms()).await {
                tracing::error!(error = %e, "sweeping spent budgets failed; will retry");
            }
            if let Err(e) = crate::platform::access::purge_sessions(&db, now_ms()).await {
                tracing::error!(error = %e, "purging ended sessions failed; will retry");
            }
        }
    });
}

/// Cancels group-buy teams past their deadline and refunds their members (and any payment left
/// without a seat), and ends bargains past theirs. Stops when the pool closes.
fn spawn_activity_sweeps(app: &App, every: Duration) {
    let db = app.db.clone();
    let payments = app.payments.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.is_closed() {
                return;
            }
            let now = now_ms();
            if let Err(e) =
                crate::convert::group_buy::sweep(&db, &payments, None, now, 600_000).await
            {
                tracing::error!(error = %e, "group-buy sweep failed; will retry");
            }
            if let Err(e) = crate::convert::bargain::expire_due(&db, now).await {
                tracing::error!(error = %e, "bargain expiry failed; will retry");
            }
        }
    });
}

/// Asks every connected shop's platform for the orders changed since its cursor, one shop at a
/// time; each run holds its shop (another server skips it) and ends after a few minutes at a
/// window boundary, so a long backfill goes on at the next tick without holding up the other
/// shops. Stops when the pool closes.
fn spawn_shop_sync(app: &App, every: Duration) {
    let (db, cipher, audiences) = (app.db.clone(), app.cipher.clone(), app.audiences.clone());
    let limits = crate::workflows::sync::SyncLimits {
        max_run: Some(Duration::from_secs(240)),
        allow_api_base: app.marketplace_allow_api_base,
        ..Default::default()
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if db.is_closed() {
                return;
            }
            let shops = match crate::know::shops::connected(&db).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "listing shops to sync failed; will retry");
                    continue;
                }
            };
            for (tenant, shop) in shops {
                let run = crate::workflows::sync::sync_shop(
                    &db,
                    &cipher,
                    Some(&audiences),
                    tenant,
                    shop,
                    &limits,
                )
                .await;
                match run {
                    Ok(r) if r.summary.read > 0 => tracing::info!(
                        tenant = %tenant,
                        shop,
                        read = r.summary.read,
                        imported = r.summary.imported,
                        updated = r.summary.updated,
                        "shop orders synced"
                    ),
                    Ok(_) => {}
                    // Held by another server, or disconnected since the list was read.
                    Err(crate::workflows::sync::SyncError::Busy(_))
                    | Err(crate::workflows::sync::SyncError::Shop(
                        crate::know::shops::ShopError::NotFound(_),
                    )) => {}
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, shop, error = %e, "shop sync stopped; it resumes from its cursor")
                    }
                }
            }
        }
    });
}
