//! Orders arriving by themselves: each connected shop's orders are asked of its platform for
//! every modification-time window from the shop's cursor to a minute ago, page by page, paced
//! under the platform's quota, retried with backoff, and stored by (channel, order number) so
//! that asking twice changes nothing. The cursor moves only when a whole window is stored: a run
//! stopped in the middle (a crash, a deploy) asks that window again and loses nothing.

use std::time::{Duration, Instant};

use crate::channels::marketplaces::{Client, Credentials, MarketError, MarketOrder, Platform};
use crate::know::audience::Audiences;
use crate::know::identity::{Identity, IdentityError, IdentityKind};
use crate::know::import::rows::{RowError, check_order_no};
use crate::know::import::status_map::{self, StatusMap};
use crate::know::import::{FileSummary, receipts};
use crate::know::orders::{
    MAX_FEN, OrderLine, OrderRecord, dedupe_orders, key_identities, owners_of, settle_amounts,
    store_orders,
};
use crate::know::phone::{PhoneError, PhoneInput, parse_phone};
use crate::know::shops::{self, Shop, ShopError};
use crate::platform::clock::now_ms;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError};

use super::orders::{OrdersStored, WorkflowError, import_finished, orders_stored};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Shop(#[from] ShopError),
    #[error("shop {shop}: {error}")]
    Market { shop: i64, error: MarketError },
    #[error("shop {0}: no client for platform {1:?}")]
    NoClient(i64, String),
    #[error("storing synced orders: {0}")]
    Store(#[from] DbError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

/// How a run paces and retries.
#[derive(Debug, Clone)]
pub struct SyncLimits {
    /// Changes younger than this are left for the next run: platforms index changes with a
    /// delay, and a window asked too early would miss some for good.
    pub settle_ms: i64,
    /// Calls per second, when not the platform's default.
    pub calls_per_second: Option<u32>,
    /// Tries of one call before the run stops (transient errors only).
    pub max_tries: u32,
    pub first_backoff: Duration,
    /// Orders stored per transaction.
    pub batch: usize,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            settle_ms: 60_000,
            calls_per_second: None,
            max_tries: 6,
            first_backoff: Duration::from_millis(500),
            batch: 2_000,
        }
    }
}

/// What one run of one shop did.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub shop: i64,
    pub windows: u32,
    pub calls: u32,
    pub retries: u32,
    pub cursor: i64,
    pub summary: FileSummary,
}

/// Spaces calls at least `interval` apart.
struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    fn new(calls_per_second: u32) -> Pace {
        Pace {
            interval: Duration::from_secs(1) / calls_per_second.max(1),
            next: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep(self.next - now).await;
        }
        self.next = Instant::now() + self.interval;
    }
}

/// Syncs one shop up to a minute ago. With `audiences` (inside `siyu serve`) the buyers'
/// figures, points and the index follow each stored batch; without (the CLI), the tenant is
/// recomputed once at the end, as after an import.
pub async fn sync_shop(
    db: &Db,
    cipher: &FieldCipher,
    audiences: Option<&Audiences>,
    tenant: i64,
    shop_id: i64,
    limits: &SyncLimits,
) -> Result<SyncRun, SyncError> {
    let shop = shops::load(db, cipher, tenant, shop_id).await?;
    let Some(platform) = Platform::parse(&shop.platform) else {
        return Err(SyncError::NoClient(shop.id, shop.platform.clone()));
    };
    let started = now_ms();
    let mut run = Running {
        db,
        cipher,
        audiences,
        shop: &shop,
        platform,
        client: Client::new(platform, credentials(&shop), shop.api_base.as_deref()),
        pace: Pace::new(
            limits
                .calls_per_second
                .unwrap_or(platform.calls_per_second()),
        ),
        limits,
        map: status_map::load(db, tenant).await?,
        summary: FileSummary {
            file: format!("{}:{}", platform.as_str(), shop.shop_ref),
            ..FileSummary::default()
        },
        calls: 0,
        retries: 0,
        stored_any: false,
    };
    let result = run.all_windows(started).await;
    let (windows, cursor) = match result {
        Ok(done) => done,
        Err(e) => {
            shops::record_error(db, &shop, &e.to_string(), now_ms()).await?;
            run.finish(started).await?;
            return Err(e);
        }
    };
    run.finish(started).await?;
    Ok(SyncRun {
        shop: shop.id,
        windows,
        calls: run.calls,
        retries: run.retries,
        cursor,
        summary: run.summary,
    })
}

fn credentials(shop: &Shop) -> Credentials {
    Credentials {
        shop_ref: shop.shop_ref.clone(),
        app_key: shop.app_key.clone(),
        app_secret: shop.app_secret.clone(),
        access_token: shop.access_token.clone(),
        refresh_token: shop.refresh_token.clone(),
    }
}

struct Running<'a> {
    db: &'a Db,
    cipher: &'a FieldCipher,
    audiences: Option<&'a Audiences>,
    shop: &'a Shop,
    platform: Platform,
    client: Client,
    pace: Pace,
    limits: &'a SyncLimits,
    map: StatusMap,
    summary: FileSummary,
    calls: u32,
    retries: u32,
    stored_any: bool,
}

impl Running<'_> {
    async fn all_windows(&mut self, started: i64) -> Result<(u32, i64), SyncError> {
        // A token about to expire is refreshed first (Youzan's comes from the app's secret).
        let expiring = self
            .shop
            .token_expires_at
            .is_some_and(|t| t < started + 600_000);
        if expiring || self.shop.access_token.is_none() {
            self.refresh().await?;
        }
        let until = started - self.limits.settle_ms;
        let mut cursor = self.shop.sync_cursor;
        let mut windows = 0;
        // Platforms take whole seconds and want the end after the start: a window under a
        // second waits for the next run.
        while until - cursor >= 1_000 {
            let end = (cursor + self.platform.max_window_ms()).min(until);
            let n = self.window(cursor, end).await?;
            shops::advance(self.db, self.shop, end, n, now_ms()).await?;
            cursor = end;
            windows += 1;
        }
        Ok((windows, cursor))
    }

    /// Every page of one window, stored in batches; returns how many orders were stored. Pages
    /// are read from the last back to the first: an order changed again while the window is
    /// read moves out of it and shifts the rest towards the first page, so reading backwards
    /// sees a shifted order twice rather than never (TOP's and PDD's advice).
    async fn window(&mut self, from: i64, to: i64) -> Result<u64, SyncError> {
        let size = u64::from(self.platform.page_size());
        let first = self.call(from, to, 1).await?;
        let pages = first.total.div_ceil(size).max(1);
        if pages > u64::from(self.platform.max_pages()) && to - from > 1_000 {
            // More than the platform will page through: two halves.
            let mid = from + (to - from) / 2;
            let a = Box::pin(self.window(from, mid)).await?;
            let b = Box::pin(self.window(mid, to)).await?;
            return Ok(a + b);
        }
        let mut batch: Vec<OrderRecord> = Vec::new();
        let mut stored = 0;
        let take = |run: &mut Self, orders: Vec<MarketOrder>, batch: &mut Vec<OrderRecord>| {
            for o in orders {
                run.summary.read += 1;
                match to_record(run.platform, o, &run.map) {
                    Ok(r) => batch.push(r),
                    Err(e) => {
                        run.summary.rejected += 1;
                        if run.summary.errors.len() < 20 {
                            run.summary.errors.push(e);
                        }
                    }
                }
            }
        };
        if pages == 1 {
            take(self, first.orders, &mut batch);
        } else {
            for page in (1..=pages as u32).rev() {
                let p = self.call(from, to, page).await?;
                take(self, p.orders, &mut batch);
                if batch.len() >= self.limits.batch {
                    stored += self.store(std::mem::take(&mut batch)).await?;
                }
            }
        }
        stored += self.store(batch).await?;
        Ok(stored)
    }

    /// One page, paced, retried on transient errors, with one token refresh on expiry.
    async fn call(
        &mut self,
        from: i64,
        to: i64,
        page: u32,
    ) -> Result<crate::channels::marketplaces::OrderPage, SyncError> {
        let mut backoff = self.limits.first_backoff;
        let mut refreshed = false;
        let mut tries = 0;
        loop {
            self.pace.wait().await;
            self.calls += 1;
            tries += 1;
            match self.client.changed_orders(from, to, page, now_ms()).await {
                Ok(p) => return Ok(p),
                Err(MarketError::TokenExpired { .. }) if !refreshed => {
                    refreshed = true;
                    self.refresh().await?;
                }
                Err(e) if e.is_transient() && tries < self.limits.max_tries => {
                    self.retries += 1;
                    tracing::warn!(shop = self.shop.id, error = %e, "marketplace call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Err(error) => {
                    return Err(SyncError::Market {
                        shop: self.shop.id,
                        error,
                    });
                }
            }
        }
    }

    async fn refresh(&mut self) -> Result<(), SyncError> {
        self.pace.wait().await;
        self.calls += 1;
        let t = self
            .client
            .refresh_token(now_ms())
            .await
            .map_err(|error| SyncError::Market {
                shop: self.shop.id,
                error,
            })?;
        shops::save_tokens(
            self.db,
            self.cipher,
            self.shop,
            &t.access_token,
            t.refresh_token.as_deref(),
            t.expires_at,
        )
        .await?;
        self.client.set_access_token(t.access_token);
        Ok(())
    }

    async fn store(&mut self, batch: Vec<OrderRecord>) -> Result<u64, SyncError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let tenant = self.shop.tenant_id;
        let orders = dedupe_orders(batch);
        let keyed = key_identities(self.cipher, &orders);
        let mut buyers = match self.audiences {
            Some(_) => owners_of(self.db, tenant, &orders).await?,
            None => Vec::new(),
        };
        let now = now_ms();
        let out = store_orders(self.db, tenant, "sync", &orders, &keyed, now).await?;
        self.summary.imported += out.imported;
        self.summary.updated += out.updated;
        self.summary.customers_created += out.customers_created;
        self.summary.customers_merged += out.customers_merged;
        self.summary.unknown_status += out.unknown_status;
        self.summary.unlinked += out.unlinked;
        self.summary.buyers_linked += out.buyers_linked;
        for o in &orders {
            if let (crate::know::orders::OrderStatus::Unknown, Some(t)) = (o.status, &o.status_text)
            {
                *self.summary.unknown_texts.entry(t.clone()).or_default() += 1;
            }
        }
        self.stored_any = true;
        if let Some(audiences) = self.audiences {
            buyers.extend(owners_of(self.db, tenant, &orders).await?);
            let keys: Vec<(String, String)> = orders
                .iter()
                .map(|o| (o.channel.clone(), o.order_no.clone()))
                .collect();
            let stored = OrdersStored {
                tenant,
                orders: &keys,
                buyers: &buyers,
                now,
            };
            orders_stored(self.db, audiences, stored).await?;
        }
        Ok(orders.len() as u64)
    }

    /// The run's receipt; without an index to follow batch by batch, the tenant's figures
    /// follow once.
    async fn finish(&mut self, started: i64) -> Result<(), SyncError> {
        if self.summary.read == 0 && self.summary.rejected == 0 {
            return Ok(()); // nothing changed: no receipt for an empty poll
        }
        let id = receipts::record(
            self.db,
            self.shop.tenant_id,
            "sync",
            &self.summary,
            started,
            now_ms(),
            None,
        )
        .await?;
        self.summary.receipt = Some(id);
        if self.stored_any && self.audiences.is_none() {
            import_finished(self.db, self.shop.tenant_id, now_ms()).await?;
        }
        Ok(())
    }
}

/// A platform's order in Siyu's terms, checked as an imported row is; an error names the field.
pub fn to_record(
    platform: Platform,
    o: MarketOrder,
    map: &StatusMap,
) -> Result<OrderRecord, RowError> {
    let err = |column: &str, reason: String| RowError {
        line: 0,
        column: column.to_owned(),
        reason: format!("order {}: {reason}", o.order_no),
    };
    let order_no = check_order_no(&o.order_no).map_err(|r| err("order_no", r))?;
    let (status, status_text) = map.read(&o.status);
    if !(0..=MAX_FEN).contains(&o.amount) || o.refund_amount < 0 {
        return Err(err("amount", format!("must be fen, from 0 to {MAX_FEN}")));
    }
    let (amount, refund_amount) =
        settle_amounts(o.amount, o.refund_amount).map_err(|r| err("refund_amount", r.into()))?;
    let channel = platform.as_str();
    let mut identities = Vec::new();
    let mut phone_hint = None;
    if let (Some(id), Some(kind)) = (&o.buyer_id, IdentityKind::buyer_id_of(channel)) {
        match Identity::new(kind, id, None) {
            Ok(i) => identities.push(i),
            Err(IdentityError::Masked(_)) => {}
            Err(e) => return Err(err("buyer_id", e.to_string())),
        }
    }
    if let Some(p) = &o.phone {
        match parse_phone(p) {
            Ok(PhoneInput::Phone(p)) => identities.push(Identity::Phone(p)),
            Ok(PhoneInput::Masked(m)) => phone_hint = Some(m),
            // Platforms send encrypted or unreadable numbers too: they say nothing of the buyer.
            Err(PhoneError::BadMask) | Err(_) => {}
        }
    }
    Ok(OrderRecord {
        channel: channel.to_owned(),
        order_no,
        status,
        status_text,
        ordered_at: o.created_at,
        paid_at: o.paid_at,
        amount,
        refund_amount,
        store_id: None,
        guide_id: None,
        buyer_name: o.buyer_name,
        phone_hint,
        province: o.province,
        identities,
        lines: o
            .lines
            .into_iter()
            .map(|l| OrderLine {
                sku: l.sku,
                title: l.title,
                category: None,
                quantity: l.quantity,
                price: l.price,
            })
            .collect(),
    })
}
