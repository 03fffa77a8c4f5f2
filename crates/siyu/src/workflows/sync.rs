//! Orders arriving by themselves: each connected shop's orders are asked of its platform for
//! every modification-time window from the shop's cursor to a minute ago, page by page, paced
//! under the platform's quota, retried with backoff, and stored by (channel, order number) so
//! that asking twice changes nothing. The cursor moves only when a whole window is stored: a run
//! stopped in the middle (a crash, a deploy) asks that window again and loses nothing.

use crate::platform::Fen;
use crate::platform::TenantId;
use std::time::{Duration, Instant};

use crate::channels::marketplaces::{
    AfterSalePage, Client, Credentials, MarketAfterSale, MarketError, MarketOrder, OrderPage,
    Platform,
};
use crate::know::audience::Audiences;
use crate::know::identity::{Identity, IdentityError, IdentityKind};
use crate::know::import::rows::{RowError, check_order_no};
use crate::know::import::status_map::{self, StatusMap};
use crate::know::import::{FileSummary, receipts};
use crate::know::orders::after_sales::{AfterSale, store_after_sales};
use crate::know::orders::{
    MAX_FEN, OrderLine, OrderRecord, dedupe_orders, key_identities, owners_of, owners_of_numbers,
    settle_amounts, store_orders,
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
    #[error("shop {0} is being synced by another run")]
    Busy(i64),
    #[error(
        "shop {0}: its api_base is not the platform's own address, and the server allows no other (marketplace_allow_api_base)"
    )]
    ApiBaseNotAllowed(i64),
    #[error("storing synced orders: {0}")]
    Store(#[from] DbError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

/// The run's after-sales cases from which PostgreSQL's statistics of them are refreshed.
const ANALYZE_FROM: u64 = 1_000;

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
    /// A run ends at the first window boundary after this long, the rest left to the next run
    /// (so that one shop's long backfill does not hold up the others).
    pub max_run: Option<Duration>,
    /// Whether a shop's own `api_base` is called (`marketplace_allow_api_base`).
    pub allow_api_base: bool,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            settle_ms: 60_000,
            calls_per_second: None,
            max_tries: 6,
            first_backoff: Duration::from_millis(500),
            batch: 2_000,
            max_run: None,
            allow_api_base: false,
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
    /// After-sales cases read (PDD's refunds), each stored by its case id.
    pub after_sales: u64,
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

/// How long a run holds a shop before it must renew (it renews at every window).
const LEASE_MS: i64 = 15 * 60_000;

/// Syncs one shop up to a minute ago, holding it so that no other run (another server, the
/// console's "sync now") syncs it at the same time. With `audiences` (inside `siyu serve`) the
/// buyers' figures, points and the index follow each stored batch; without (the CLI), the
/// tenant is recomputed once at the end, as after an import.
pub async fn sync_shop(
    db: &Db,
    cipher: &FieldCipher,
    audiences: Option<&Audiences>,
    tenant: TenantId,
    shop_id: i64,
    limits: &SyncLimits,
) -> Result<SyncRun, SyncError> {
    let Some(lease) = shops::take_lease(db, tenant, shop_id, now_ms(), LEASE_MS).await? else {
        return Err(SyncError::Busy(shop_id));
    };
    let result = sync_held(db, cipher, audiences, tenant, shop_id, limits, lease).await;
    let lease = match &result {
        Ok((_, l)) => *l,
        Err((_, l)) => *l,
    };
    if let Some(l) = lease {
        shops::release_lease(db, tenant, shop_id, l).await?;
    }
    result.map(|(r, _)| r).map_err(|(e, _)| e)
}

type Held<T> = Result<(T, Option<shops::Lease>), (SyncError, Option<shops::Lease>)>;

async fn sync_held(
    db: &Db,
    cipher: &FieldCipher,
    audiences: Option<&Audiences>,
    tenant: TenantId,
    shop_id: i64,
    limits: &SyncLimits,
    lease: shops::Lease,
) -> Held<SyncRun> {
    let keep = Some(lease);
    let shop = match shops::load(db, cipher, tenant, shop_id).await {
        Ok(s) => s,
        Err(e) => return Err((e.into(), keep)),
    };
    let Some(platform) = Platform::parse(&shop.platform) else {
        return Err((SyncError::NoClient(shop.id, shop.platform.clone()), keep));
    };
    if shop.api_base.is_some() && !limits.allow_api_base {
        return Err((SyncError::ApiBaseNotAllowed(shop.id), keep));
    }
    let map = match status_map::load(db, tenant).await {
        Ok(m) => m,
        Err(e) => return Err((SyncError::Store(e), keep)),
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
        map,
        lease: Some(lease),
        summary: FileSummary {
            file: format!("{}:{}", platform.as_str(), shop.shop_ref),
            ..FileSummary::default()
        },
        calls: 0,
        retries: 0,
        stored_any: false,
        after_sales: 0,
        cases_at_analyze: 0,
    };
    let result = run.all_windows(started).await;
    let lease = run.lease;
    let (windows, cursor) = match result {
        Ok(done) => done,
        Err(e) => {
            if let Err(e) = shops::record_error(db, &shop, &e.to_string(), now_ms()).await {
                return Err((e.into(), lease));
            }
            if let Err(e) = run.finish(started).await {
                return Err((e, lease));
            }
            return Err((e, lease));
        }
    };
    if let Err(e) = run.finish(started).await {
        return Err((e, lease));
    }
    Ok((
        SyncRun {
            shop: shop.id,
            windows,
            calls: run.calls,
            retries: run.retries,
            cursor,
            summary: run.summary,
            after_sales: run.after_sales,
        },
        lease,
    ))
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
    /// This run's hold on the shop; `None` once lost.
    lease: Option<shops::Lease>,
    summary: FileSummary,
    calls: u32,
    retries: u32,
    stored_any: bool,
    after_sales: u64,
    /// The run's cases when PostgreSQL's statistics were last refreshed.
    cases_at_analyze: u64,
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
        let deadline = self.limits.max_run.map(|d| std::time::Instant::now() + d);
        let mut cursor = self.shop.sync_cursor;
        let mut windows = 0;
        // Platforms take whole seconds and want the end after the start: a window under a
        // second waits for the next run.
        while until - cursor >= 1_000 {
            // Still this run's shop? (A lease runs out; a shop may be disconnected.)
            let Some(lease) = self.lease else { break };
            self.lease = shops::renew_lease(self.db, self.shop, lease, now_ms(), LEASE_MS).await?;
            if self.lease.is_none() {
                break;
            }
            let end = (cursor + self.platform.max_window_ms()).min(until);
            let n = self.window(cursor, end).await?;
            if self.platform.after_sales_api() {
                self.after_sales_window(cursor, end).await?;
            }
            if !shops::advance(self.db, self.shop, cursor, end, n, now_ms()).await? {
                // The cursor was moved meanwhile (a backfill asked during the run): it wins.
                break;
            }
            cursor = end;
            windows += 1;
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                break; // the rest is the next run's (a run always moves one window on)
            }
        }
        Ok((windows, cursor))
    }

    /// Every page of one window, stored in batches; returns how many orders were stored. Pages
    /// are read from the last back to the first: an order changed again while the window is
    /// read moves out of it and shifts the rest towards the first page, so reading backwards
    /// sees a shifted order twice rather than never (TOP's and PDD's advice).
    async fn window(&mut self, from: i64, to: i64) -> Result<u64, SyncError> {
        let size = u64::from(self.platform.page_size());
        let first = self.orders_page(from, to, 1).await?;
        let mut pages = first.total.div_ceil(size).max(1);
        let max_pages = u64::from(self.platform.max_pages());
        if pages > max_pages {
            // More than the platform will page through: two halves, on whole seconds.
            let whole_seconds = (to - from) / 1_000;
            if whole_seconds >= 2 {
                let mid = from + whole_seconds / 2 * 1_000;
                let a = Box::pin(self.window(from, mid)).await?;
                let b = Box::pin(self.window(mid, to)).await?;
                return Ok(a + b);
            }
            // A second holding more orders than the platform pages through: read what it
            // gives and say what it would not.
            self.summary.rejected += first.total - max_pages * size;
            self.note_rejected(
                "window",
                format!(
                    "{} orders changed within one second from {}; the platform pages through {} of them",
                    first.total,
                    crate::channels::marketplaces::china_seconds_text(from),
                    max_pages * size
                ),
            );
            pages = max_pages;
        }
        let mut batch: Vec<OrderRecord> = Vec::new();
        let mut stored = 0;
        if pages == 1 {
            self.take(first, &mut batch);
        } else {
            for page in (1..=pages as u32).rev() {
                let p = self.orders_page(from, to, page).await?;
                self.take(p, &mut batch);
                if batch.len() >= self.limits.batch {
                    stored += self.store(std::mem::take(&mut batch)).await?;
                }
            }
        }
        stored += self.store(batch).await?;
        Ok(stored)
    }

    /// A page's orders in Siyu's terms; the ones that cannot be read are counted as rejected.
    fn take(&mut self, page: OrderPage, batch: &mut Vec<OrderRecord>) {
        for (at, why) in page.unreadable {
            self.summary.read += 1;
            self.summary.rejected += 1;
            self.note_rejected("order", format!("{at}: {why}"));
        }
        for o in page.items {
            self.summary.read += 1;
            match to_record(self.platform, o, &self.map) {
                Ok(r) => batch.push(r),
                Err(e) => {
                    self.summary.rejected += 1;
                    if self.summary.errors.len() < 20 {
                        self.summary.errors.push(e);
                    }
                }
            }
        }
    }

    fn note_rejected(&mut self, column: &str, reason: String) {
        if self.summary.errors.len() < 20 {
            self.summary.errors.push(RowError {
                line: 0,
                column: column.to_owned(),
                reason,
            });
        }
    }

    async fn orders_page(&mut self, from: i64, to: i64, page: u32) -> Result<OrderPage, SyncError> {
        self.call(|c| async move { c.changed_orders(from, to, page, now_ms()).await })
            .await
    }

    /// Every page of the after-sales cases changed in one window, read as orders are (the first
    /// page for the count, then every page from the last back), stored by case. A platform that
    /// refuses the after-sales call (an app without that permission) or answers it in a shape
    /// the client cannot read does not stop the orders: the refusal is noted on the run's
    /// receipt and the window's cases are passed over.
    async fn after_sales_window(&mut self, from: i64, to: i64) -> Result<(), SyncError> {
        match self.after_sales_pages(from, to).await {
            Ok(cases) => self.store_cases(cases).await,
            Err(SyncError::Market {
                error: e @ (MarketError::Refused { .. } | MarketError::Shape { .. }),
                ..
            }) => {
                self.summary.rejected += 1;
                self.note_rejected(
                    "after_sales",
                    format!(
                        "the after-sales cases changed from {} were not read: {e}",
                        crate::channels::marketplaces::china_seconds_text(from)
                    ),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn after_sales_pages(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<MarketAfterSale>, SyncError> {
        let size = u64::from(self.platform.after_sales_page_size());
        let ask = |page: u32| {
            move |c: Client| async move { c.changed_after_sales(from, to, page, now_ms()).await }
        };
        let first: AfterSalePage = self.call(ask(1)).await?;
        let mut pages = first.total.div_ceil(size).max(1);
        let max_pages = u64::from(self.platform.after_sales_max_pages());
        if pages > max_pages {
            // More than the platform will page through: two halves, on whole seconds.
            let whole_seconds = (to - from) / 1_000;
            if whole_seconds >= 2 {
                let mid = from + whole_seconds / 2 * 1_000;
                let mut cases = Box::pin(self.after_sales_pages(from, mid)).await?;
                cases.extend(Box::pin(self.after_sales_pages(mid, to)).await?);
                return Ok(cases);
            }
            // Counted, as orders past the platform's last page are: the cursor moves on.
            self.summary.rejected += first.total - max_pages * size;
            self.note_rejected(
                "after_sales",
                format!(
                    "{} after-sales cases changed within one second from {}; the platform pages through {}",
                    first.total,
                    crate::channels::marketplaces::china_seconds_text(from),
                    max_pages * size
                ),
            );
            pages = max_pages;
        }
        let mut cases = Vec::new();
        if pages == 1 {
            self.take_cases(first, &mut cases);
        } else {
            // A case changed while the window is read shifts the rest towards the first page:
            // read backwards, it is seen twice (the store keeps one) rather than never.
            for page in (1..=pages as u32).rev() {
                let p = self.call(ask(page)).await?;
                self.take_cases(p, &mut cases);
            }
        }
        Ok(cases)
    }

    fn take_cases(&mut self, page: AfterSalePage, cases: &mut Vec<MarketAfterSale>) {
        for (at, why) in page.unreadable {
            self.summary.rejected += 1;
            self.note_rejected("after_sales", format!("{at}: {why}"));
        }
        cases.extend(page.items);
    }

    /// Stores the cases; the orders they refund (and their buyers' figures, points and index
    /// entries) follow at once.
    async fn store_cases(&mut self, cases: Vec<MarketAfterSale>) -> Result<(), SyncError> {
        if cases.is_empty() {
            return Ok(());
        }
        let tenant = self.shop.tenant_id;
        let channel = self.platform.as_str();
        let cases: Vec<AfterSale> = cases
            .into_iter()
            .map(|c| AfterSale {
                channel: channel.to_owned(),
                case_ref: c.case_ref,
                order_no: c.order_no,
                amount: c.amount,
                succeeded: c.succeeded,
                updated_at: c.modified_at,
            })
            .collect();
        self.after_sales += cases.len() as u64;
        let named = store_after_sales(self.db, tenant, &cases).await?;
        // PostgreSQL plans the cases' lookups (by order number, as every later batch of orders
        // asks) from statistics that a new shop's cases leave stale until autovacuum comes
        // round; with them stale it read every case of the channel for each batch (PDD's
        // 100,000-order bench: 344 orders/s on PostgreSQL before, 5,351 after). Refreshed each
        // time the run's cases double, so a run refreshes them about log2(cases) times; a run of
        // fewer than ANALYZE_FROM cases (a routine five-minute sync) refreshes nothing, leaving it
        // to autovacuum (ANALYZE samples every tenant's rows of both tables).
        if self.db.backend() == crate::platform::db::Backend::Postgres
            && self.after_sales >= ANALYZE_FROM
            && self.after_sales >= 2 * self.cases_at_analyze
        {
            self.db
                .execute_script("ANALYZE after_sales, orders")
                .await
                .map_err(DbError::from)?;
            self.cases_at_analyze = self.after_sales;
        }
        self.stored_any = true;
        if let Some(audiences) = self.audiences {
            let buyers = owners_of_numbers(
                self.db,
                tenant,
                named.iter().map(|(c, n)| (c.as_str(), n.as_str())),
            )
            .await?;
            // As in `store`: orders from before the shop was connected are history, and their
            // points are not touched; the buyers' figures and the index follow all of them.
            let keys = since_connected(self.db, self.shop, &named).await?;
            let stored = OrdersStored {
                tenant,
                orders: &keys,
                buyers: &buyers,
                now: now_ms(),
            };
            orders_stored(self.db, audiences, stored).await?;
        }
        Ok(())
    }

    /// One call, paced, retried on transient errors, with one token refresh on expiry.
    async fn call<T, F, Fut>(&mut self, ask: F) -> Result<T, SyncError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, MarketError>>,
    {
        let mut backoff = self.limits.first_backoff;
        let mut refreshed = false;
        let mut tries = 0;
        loop {
            self.pace.wait().await;
            self.calls += 1;
            tries += 1;
            match ask(self.client.clone()).await {
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
        self.client.set_tokens(t.access_token, t.refresh_token);
        Ok(())
    }

    async fn store(&mut self, batch: Vec<OrderRecord>) -> Result<u64, SyncError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let tenant = self.shop.tenant_id;
        let orders = dedupe_orders(batch);
        let keyed = key_identities(self.cipher, &self.cipher.lookup(tenant), &orders);
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
            // Orders placed before the shop was connected are its history: like imported
            // history they earn no points (docs/CONVERT.md); the buyers' figures, tiers and the
            // index follow all of them.
            let keys: Vec<(String, String)> = orders
                .iter()
                .filter(|o| o.ordered_at >= self.shop.connected_at)
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
        if self.summary.read == 0 && self.summary.rejected == 0 && !self.stored_any {
            return Ok(()); // nothing changed: no receipt for an empty poll
        }
        let id = receipts::record(
            self.db,
            self.cipher,
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

/// Of the stored orders named, those placed since the shop was connected (the ones whose points
/// follow them), as (channel, order number).
async fn since_connected(
    db: &Db,
    shop: &Shop,
    named: &[(String, String)],
) -> Result<Vec<(String, String)>, DbError> {
    let mut keys = Vec::new();
    let mut by_channel: std::collections::BTreeMap<&str, Vec<crate::platform::db::Value>> =
        Default::default();
    for (channel, no) in named {
        by_channel
            .entry(channel)
            .or_default()
            .push(no.as_str().into());
    }
    for (channel, nos) in by_channel {
        let rows: Vec<(String,)> = db
            .fetch_in(
                "SELECT order_no FROM orders WHERE tenant_id = $1 AND channel = $2 AND ordered_at >= $3 AND order_no",
                &[shop.tenant_id.into(), channel.into(), shop.connected_at.into()],
                nos,
            )
            .await?;
        keys.extend(rows.into_iter().map(|(no,)| (channel.to_owned(), no)));
    }
    Ok(keys)
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
    if !(Fen::ZERO..=MAX_FEN).contains(&o.amount) || o.refund_amount < Fen::ZERO {
        return Err(err("amount", format!("must be fen, from 0 to {MAX_FEN}")));
    }
    let (amount, refund_amount) =
        settle_amounts(o.amount, o.refund_amount).map_err(|r| err("refund_amount", r.into()))?;
    let channel = platform.as_str();
    let mut identities = Vec::new();
    let mut phone_hint = None;
    if let Some(kind) = IdentityKind::buyer_id_of(channel) {
        for id in &o.buyer_ids {
            match Identity::new(kind, id, None) {
                Ok(i) => identities.push(i),
                Err(IdentityError::Masked(_)) => {}
                Err(e) => return Err(err("buyer_id", e.to_string())),
            }
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
        refund_of: None,
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
