//! Local marketplace open platforms: one shop of orders served as TOP, JD, PDD, Douyin (抖店) or
//! Youzan (有赞云) serve it, checking what each checks (the signature over the parameters sent,
//! the timestamp's skew, the access token, the query window and page size, the call quota) and
//! answering in each one's shape, errors included. The tests and the sync benchmark run Siyu's
//! clients against it; it never talks to a real platform.
//!
//! Where a platform publishes no code for an error (Douyin's expired token or spent quota, JD's
//! spent quota), the sandbox answers the way the client is written to recognise, and says so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use siyu::channels::marketplaces::Platform;
use siyu::platform::clock::now_ms;

mod authorize;
mod douyin;
mod jd;
mod pdd;
mod top;
mod youzan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Paid,
    Shipped,
    Completed,
    Refunded,
    Closed,
}

impl Status {
    /// Siyu's name for it: what an order synced from the sandbox must read as.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Completed => "completed",
            Status::Refunded => "refunded",
            Status::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLine {
    pub sku: String,
    pub title: String,
    pub quantity: i64,
    /// Unit price in fen.
    pub price: i64,
}

/// An order of the sandbox's shop, in plain terms; each platform renders it its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOrder {
    pub order_no: String,
    pub status: Status,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub modified_at: i64,
    pub amount: i64,
    /// A partial refund is the last line's total (TOP and Douyin say so in their order APIs,
    /// PDD, JD and Youzan in their after-sales APIs); a refunded order's refund is its amount.
    pub refund_amount: i64,
    pub buyer_id: Option<String>,
    pub phone: Option<String>,
    pub lines: Vec<FakeLine>,
}

/// What the sandbox saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub order_calls: u64,
    pub token_refreshes: u64,
    /// Codes of sellers' authorisations exchanged for tokens.
    pub grants: u64,
    pub rate_limited: u64,
    pub bad_signatures: u64,
    pub bad_requests: u64,
    pub token_rejected: u64,
    pub failed_on_purpose: u64,
    /// The most calls accepted in any one second.
    pub peak_per_second: u64,
}

/// The shop and how the sandbox behaves.
#[derive(Debug, Clone)]
pub struct Shop {
    pub platform: Platform,
    pub shop_ref: String,
    pub app_key: String,
    pub app_secret: String,
    pub access_token: String,
    pub refresh_token: String,
    pub orders: Vec<FakeOrder>,
    /// Calls per rolling second before the platform's rate-limit answer.
    pub quota_per_second: u64,
    /// After this many order calls, every call fails with HTTP 500 (a platform outage, or the
    /// sync's process dying mid-run from the sync's point of view).
    pub fail_after_order_calls: Option<u64>,
    /// Every n-th call answers HTTP 503 once.
    pub flaky_every: Option<u64>,
    /// The app has no permission for the after-sales API (PDD, JD, Youzan): those calls are
    /// refused.
    pub refuse_after_sales: bool,
    /// The shop's name as the platform gives it on authorisation.
    pub name: String,
    /// Douyin's service-market listing, which its authorisation page names.
    pub service_id: String,
    /// The callback registered with the app: a `redirect_uri` must sit under it (Douyin sends
    /// every authorisation there).
    pub callback_url: Option<String>,
    /// The seller says no on the authorisation page.
    pub deny_authorization: bool,
}

impl Shop {
    pub fn new(platform: Platform, orders: Vec<FakeOrder>) -> Shop {
        Shop {
            platform,
            shop_ref: "10086".into(),
            app_key: format!("{}-app-key", platform.as_str()),
            app_secret: format!("{}-app-secret", platform.as_str()),
            access_token: "token-1".into(),
            refresh_token: "refresh-1".into(),
            orders,
            quota_per_second: 1_000,
            fail_after_order_calls: None,
            flaky_every: None,
            refuse_after_sales: false,
            name: format!("{}测试旗舰店", platform.zh()),
            service_id: "7001".into(),
            callback_url: None,
            deny_authorization: false,
        }
    }
}

struct Inner {
    shop: Shop,
    stats: Stats,
    recent: VecDeque<Instant>,
    token_serial: u64,
    /// Authorisation codes given and not yet exchanged, with when each runs out.
    codes: std::collections::HashMap<String, i64>,
}

/// A running sandbox.
pub struct Sandbox {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

/// Fen as the platforms write yuan (`1299.00`): the fake orders keep plain fen.
fn yuan(fen: i64) -> String {
    siyu::know::report::plain_yuan(siyu::platform::Fen::new(fen))
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sandbox {
    /// Serves `shop` on a random local port.
    pub async fn start(shop: Shop) -> std::io::Result<Sandbox> {
        let platform = shop.platform;
        let inner = Arc::new(Mutex::new(Inner {
            shop,
            stats: Stats::default(),
            recent: VecDeque::new(),
            token_serial: 1,
            codes: std::collections::HashMap::new(),
        }));
        let router = match platform {
            Platform::Tmall => Router::new()
                .route("/", post(top::top))
                .route("/authorize", get(authorize::page)),
            Platform::Jd => Router::new()
                .route("/", post(jd::jd))
                .route("/oauth2/to_login", get(authorize::page))
                .route("/oauth2/access_token", get(jd::jd_grant))
                .route("/oauth2/refresh_token", get(jd::jd_refresh)),
            Platform::Pdd => Router::new()
                .route("/", post(pdd::pdd))
                .route("/service-market/auth", get(authorize::page)),
            Platform::Douyin => Router::new()
                .route("/order/searchList", post(douyin::douyin_orders))
                .route("/token/refresh", post(douyin::douyin_refresh))
                .route("/token/create", post(douyin::douyin_grant))
                .route("/authorize", get(authorize::page)),
            Platform::Youzan => Router::new()
                .route(
                    "/api/youzan.trades.sold.get/4.0.4",
                    post(youzan::youzan_orders),
                )
                .route(
                    "/api/youzan.trade.refund.search/3.0.1",
                    post(youzan::youzan_refunds),
                )
                .route("/auth/token", post(youzan::youzan_token)),
        }
        .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox {
            base,
            inner,
            stop: Some(tx),
        })
    }

    pub fn stats(&self) -> Stats {
        lock(&self.inner).stats.clone()
    }

    /// Changes the shop (its orders, its faults) while it serves.
    pub fn with_shop<R>(&self, f: impl FnOnce(&mut Shop) -> R) -> R {
        f(&mut lock(&self.inner).shop)
    }

    /// The shop's tokens now (after refreshes).
    pub fn tokens(&self) -> (String, String) {
        let i = lock(&self.inner);
        (i.shop.access_token.clone(), i.shop.refresh_token.clone())
    }

    /// The access token stops working; the refresh token still gives a new one.
    pub fn expire_token(&self) {
        let mut i = lock(&self.inner);
        i.token_serial += 1;
        i.shop.access_token = format!("expired-{}", i.token_serial);
    }
}

/// `n` orders of one shop modified in `[from, to)`, as `platform` can express them (JD's and
/// PDD's order APIs return no unpaid orders; TOP's and Douyin's orders, and the others'
/// after-sales cases, say which lines were refunded).
pub fn generate(platform: Platform, n: usize, seed: u64, from: i64, to: i64) -> Vec<FakeOrder> {
    let mut rng = StdRng::seed_from_u64(seed);
    let unpaid_listed = !matches!(platform, Platform::Jd | Platform::Pdd);
    let span = (to - from).max(1);
    (0..n)
        .map(|i| {
            let created = from + rng.random_range(0..span);
            let modified = (created + rng.random_range(0..3_600_000)).min(to - 1);
            let lines: Vec<FakeLine> = (0..rng.random_range(1..=3))
                .map(|l| FakeLine {
                    sku: format!("SKU-{}", rng.random_range(100..140)),
                    title: format!("商品 {l}"),
                    quantity: rng.random_range(1..=3),
                    price: rng.random_range(10..2_000) * 100 + rng.random_range(0..100),
                })
                .collect();
            let amount: i64 = lines.iter().map(|l| l.price * l.quantity).sum();
            let roll: f64 = rng.random();
            let status = match roll {
                r if r < 0.05 && unpaid_listed => Status::Pending,
                r if r < 0.08 && unpaid_listed => Status::Closed,
                r if r < 0.20 => Status::Paid,
                r if r < 0.35 => Status::Shipped,
                r if r < 0.90 => Status::Completed,
                _ => Status::Refunded,
            };
            let paid = !matches!(status, Status::Pending | Status::Closed);
            let refund_amount = match status {
                Status::Refunded => amount,
                Status::Completed if lines.len() > 1 && rng.random::<f64>() < 0.1 => {
                    lines.last().map(|l| l.price * l.quantity).unwrap_or(0)
                }
                _ => 0,
            };
            let buyer_id = match platform {
                Platform::Pdd => None,
                _ if rng.random::<f64>() < 0.2 => None,
                _ => Some(format!(
                    "{}_buyer_{}",
                    platform.as_str(),
                    rng.random_range(0..(n as u64 / 2 + 1))
                )),
            };
            let digits = rng.random_range(10_000_000u64..99_999_999);
            let phone = Some(format!("138{digits:08}")).map(|p| {
                if rng.random::<f64>() < 0.7 {
                    format!("{}****{}", &p[..3], &p[7..])
                } else {
                    p
                }
            });
            FakeOrder {
                order_no: format!("{}{:09}", 2_400_000 + seed % 1_000, i),
                status,
                created_at: created,
                paid_at: paid.then_some(created + 5_000),
                modified_at: modified.max(created),
                amount,
                refund_amount,
                buyer_id,
                phone,
                lines,
            }
        })
        .collect()
}

/// Moves `k` orders on (paid → shipped → completed; some completed ones refunded), each
/// modified at `at` or a little after: the changes a second sync must pick up.
pub fn change(orders: &mut [FakeOrder], k: usize, at: i64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = orders.len();
    for n in 0..k.min(len) {
        let o = &mut orders[rng.random_range(0..len)];
        o.status = match o.status {
            Status::Paid => Status::Shipped,
            Status::Shipped => Status::Completed,
            Status::Completed | Status::Refunded => {
                o.refund_amount = o.amount;
                Status::Refunded
            }
            Status::Pending => {
                o.paid_at = Some(at);
                Status::Paid
            }
            Status::Closed => Status::Closed,
        };
        o.modified_at = at + n as i64;
    }
}

/// The common gate of every call: faults, then the quota. `Err` is the answer to give (large,
/// and given once per refused call).
#[allow(clippy::result_large_err)]
fn gate(
    inner: &mut Inner,
    order_call: bool,
    limited: impl FnOnce() -> Response,
) -> Result<(), Response> {
    inner.stats.calls += 1;
    if order_call {
        inner.stats.order_calls += 1;
        if inner
            .shop
            .fail_after_order_calls
            .is_some_and(|n| inner.stats.order_calls > n)
        {
            inner.stats.failed_on_purpose += 1;
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "outage").into_response());
        }
    }
    if let Some(k) = inner.shop.flaky_every
        && inner.stats.calls.is_multiple_of(k)
    {
        inner.stats.failed_on_purpose += 1;
        return Err((StatusCode::SERVICE_UNAVAILABLE, "busy").into_response());
    }
    let now = Instant::now();
    while inner
        .recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        inner.recent.pop_front();
    }
    if inner.recent.len() as u64 >= inner.shop.quota_per_second {
        inner.stats.rate_limited += 1;
        return Err(limited());
    }
    inner.recent.push_back(now);
    inner.stats.peak_per_second = inner.stats.peak_per_second.max(inner.recent.len() as u64);
    Ok(())
}

fn new_tokens(inner: &mut Inner) -> (String, String) {
    inner.stats.token_refreshes += 1;
    granted_tokens(inner)
}

/// New tokens for the shop, the old ones no longer good.
fn granted_tokens(inner: &mut Inner) -> (String, String) {
    inner.token_serial += 1;
    inner.shop.access_token = format!("token-{}", inner.token_serial);
    inner.shop.refresh_token = format!("refresh-{}", inner.token_serial);
    (
        inner.shop.access_token.clone(),
        inner.shop.refresh_token.clone(),
    )
}

/// Orders modified in `[from, to]` (ms, both ends inclusive as the platforms' seconds are),
/// sorted by modification time, newest first when `newest_first`; one page of them, and the count.
fn select(
    shop: &Shop,
    from: i64,
    to: i64,
    newest_first: bool,
    page: u64,
    size: u64,
) -> (Vec<FakeOrder>, u64) {
    let mut hits: Vec<&FakeOrder> = shop
        .orders
        .iter()
        .filter(|o| o.modified_at >= from && o.modified_at <= to)
        .collect();
    hits.sort_by_key(|o| (o.modified_at, o.order_no.clone()));
    if newest_first {
        hits.reverse();
    }
    let total = hits.len() as u64;
    let page: Vec<FakeOrder> = hits
        .into_iter()
        .skip((page * size) as usize)
        .take(size as usize)
        .cloned()
        .collect();
    (page, total)
}

/// An after-sales case as the sandbox keeps it: one for each order refunded (in part or in
/// full) that went through, and one refused for some completed orders the buyer asked about and
/// kept. A case changes when its order does.
pub(crate) struct FakeCase<'a> {
    pub order: &'a FakeOrder,
    pub id: u64,
    pub amount: i64,
    pub succeeded: bool,
}

/// The cases changed in `[from, to]` (ms), in change order.
pub(crate) fn cases(shop: &Shop, from: i64, to: i64) -> Vec<FakeCase<'_>> {
    let mut hits: Vec<FakeCase<'_>> = shop
        .orders
        .iter()
        .filter(|o| o.modified_at >= from && o.modified_at <= to)
        .filter_map(|o| {
            let id = case_id(&o.order_no);
            if o.refund_amount > 0 {
                Some(FakeCase {
                    order: o,
                    id,
                    amount: o.refund_amount,
                    succeeded: true,
                })
            } else if o.status == Status::Completed && id.is_multiple_of(7) {
                Some(FakeCase {
                    order: o,
                    id,
                    amount: o.amount,
                    succeeded: false,
                })
            } else {
                None
            }
        })
        .collect();
    hits.sort_by_key(|c| (c.order.modified_at, c.order.order_no.clone()));
    hits
}

/// A case's id, steady for its order (the sandbox keeps one case an order).
fn case_id(order_no: &str) -> u64 {
    order_no
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(7u64, |n, b| {
            n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        })
        % 1_000_000_000_000
}

/// A second-resolution window end: everything within that second is in it.
fn second_end(ms: i64) -> i64 {
    ms / 1000 * 1000 + 999
}

fn skew_ok(at: i64, minutes: i64) -> bool {
    (now_ms() - at).abs() <= minutes * 60_000
}
