//! Local marketplace open platforms: one shop of orders served as TOP, JD, PDD, Douyin (抖店) or
//! Youzan (有赞云) serve it, checking what each checks (the signature over the parameters sent,
//! the timestamp's skew, the access token, the query window and page size, the call quota) and
//! answering in each one's shape, errors included. The tests and the sync benchmark run Siyu's
//! clients against it; it never talks to a real platform.
//!
//! Where a platform publishes no code for an error (Douyin's expired token or spent quota, JD's
//! spent quota), the sandbox answers the way the client is written to recognise, and says so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub use siyu::channels::marketplaces::Platform;
use siyu::channels::marketplaces::sign::{douyin_hmac_sha256, douyin_md5, md5_sorted};
use siyu::channels::marketplaces::{china_time_ms, china_time_text};
use siyu::platform::clock::now_ms;

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
    /// A partial refund is the last line's total (only TOP and Douyin say so in their order
    /// APIs); a refunded order's refund is its amount.
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
        }
    }
}

struct Inner {
    shop: Shop,
    stats: Stats,
    recent: VecDeque<Instant>,
    token_serial: u64,
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
        }));
        let router = match platform {
            Platform::Tmall => Router::new().route("/", post(top)),
            Platform::Jd => Router::new()
                .route("/", post(jd))
                .route("/oauth2/refresh_token", get(jd_refresh)),
            Platform::Pdd => Router::new().route("/", post(pdd)),
            Platform::Douyin => Router::new()
                .route("/order/searchList", post(douyin_orders))
                .route("/token/refresh", post(douyin_refresh)),
            Platform::Youzan => Router::new()
                .route("/api/youzan.trades.sold.get/4.0.4", post(youzan_orders))
                .route("/auth/token", post(youzan_token)),
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
/// PDD's order APIs return no unpaid orders; only TOP's and Douyin's say which lines were
/// refunded).
pub fn generate(platform: Platform, n: usize, seed: u64, from: i64, to: i64) -> Vec<FakeOrder> {
    let mut rng = StdRng::seed_from_u64(seed);
    let partial_refunds = matches!(platform, Platform::Tmall | Platform::Douyin);
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
                Status::Completed
                    if partial_refunds && lines.len() > 1 && rng.random::<f64>() < 0.1 =>
                {
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

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
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
    inner.token_serial += 1;
    inner.stats.token_refreshes += 1;
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

/// A second-resolution window end: everything within that second is in it.
fn second_end(ms: i64) -> i64 {
    ms / 1000 * 1000 + 999
}

fn skew_ok(at: i64, minutes: i64) -> bool {
    (now_ms() - at).abs() <= minutes * 60_000
}

// ---- TOP ----

fn top_error(code: i64, msg: &str, sub_code: &str) -> Response {
    axum::Json(json!({"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "request_id": "sandbox"}})).into_response()
}

async fn top(State(s): State<Shared>, Form(params): Form<Vec<(String, String)>>) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let method = p.get("method").copied().unwrap_or("");
    for k in ["method", "app_key", "timestamp", "v", "sign_method", "sign"] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return top_error(40, &format!("Missing required arguments:{k}"), "");
        }
    }
    if p["app_key"] != inner.shop.app_key {
        inner.stats.bad_requests += 1;
        return top_error(29, "Invalid app Key", "");
    }
    if p["v"] != "2.0" || p["sign_method"] != "md5" {
        inner.stats.bad_requests += 1;
        return top_error(41, "Invalid arguments:v or sign_method", "");
    }
    if !china_time_ms(p["timestamp"]).is_some_and(|t| skew_ok(t, 10)) {
        inner.stats.bad_requests += 1;
        return top_error(43, "Invalid timestamp", "");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return top_error(25, "Invalid signature", "");
    }
    let order_call = method == "taobao.trades.sold.increment.get";
    if let Err(r) = gate(&mut inner, order_call, || {
        top_error(
            7,
            "App Call Limited",
            "accesscontrol.limited-by-app-access-count",
        )
    }) {
        return r;
    }
    if method == "taobao.top.auth.token.refresh" {
        if p.get("refresh_token").copied() != Some(inner.shop.refresh_token.as_str()) {
            inner.stats.token_rejected += 1;
            return top_error(15, "Remote service error", "isv.refresh-token-invalid");
        }
        let (access, refresh) = new_tokens(&mut inner);
        let result = json!({"access_token": access, "refresh_token": refresh, "expire_time": now_ms() + 86_400_000}).to_string();
        return axum::Json(json!({"top_auth_token_refresh_response": {"token_result": result}}))
            .into_response();
    }
    if p.get("session").copied() != Some(inner.shop.access_token.as_str()) {
        inner.stats.token_rejected += 1;
        return top_error(27, "Invalid session", "invalid-sessionkey");
    }
    if !order_call {
        inner.stats.bad_requests += 1;
        return top_error(22, "Invalid method", "");
    }
    let (Some(from), Some(to)) = (
        p.get("start_modified").and_then(|t| china_time_ms(t)),
        p.get("end_modified").and_then(|t| china_time_ms(t)),
    ) else {
        inner.stats.bad_requests += 1;
        return top_error(
            41,
            "Invalid arguments:start_modified/end_modified",
            "isv.invalid-parameter",
        );
    };
    let page: u64 = p.get("page_no").and_then(|v| v.parse().ok()).unwrap_or(1);
    let size: u64 = p
        .get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    if to < from || to - from > 86_400_000 || size > 100 || page < 1 || !p.contains_key("fields") {
        inner.stats.bad_requests += 1;
        return top_error(41, "Invalid arguments", "isv.invalid-parameter");
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), true, page - 1, size);
    let trades: Vec<Value> = orders
        .iter()
        .map(|o| {
            let status = match o.status {
                Status::Pending => "WAIT_BUYER_PAY",
                Status::Paid => "WAIT_SELLER_SEND_GOODS",
                Status::Shipped => "WAIT_BUYER_CONFIRM_GOODS",
                Status::Completed => "TRADE_FINISHED",
                Status::Refunded => "TRADE_CLOSED",
                Status::Closed => "TRADE_CLOSED_BY_TAOBAO",
            };
            let last = o.lines.len().saturating_sub(1);
            let lines: Vec<Value> = o.lines.iter().enumerate().map(|(i, l)| {
                let refunded = i == last && o.status == Status::Completed && o.refund_amount > 0;
                json!({"oid": format!("{}{i}", o.order_no), "title": l.title, "num": l.quantity, "price": yuan(l.price),
                       "outer_sku_id": l.sku, "payment": yuan(l.price * l.quantity),
                       "refund_status": if refunded { "SUCCESS" } else { "NO_REFUND" }})
            }).collect();
            json!({
                "tid": o.order_no.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(o.order_no.clone())),
                "status": status, "created": china_time_text(o.created_at), "modified": china_time_text(o.modified_at),
                "pay_time": o.paid_at.map(china_time_text), "payment": yuan(o.amount),
                "buyer_open_uid": o.buyer_id, "receiver_mobile": o.phone, "receiver_state": "浙江省",
                "orders": {"order": lines},
            })
        })
        .collect();
    axum::Json(json!({"trades_sold_increment_get_response": {"total_results": total, "trades": {"trade": trades}, "request_id": "sandbox"}})).into_response()
}

// ---- JD ----

fn jd_error(code: &str, zh: &str) -> Response {
    axum::Json(json!({"error_response": {"code": code, "zh_desc": zh, "en_desc": zh}}))
        .into_response()
}

async fn jd(State(s): State<Shared>, Form(params): Form<Vec<(String, String)>>) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for k in [
        "360buy_param_json",
        "access_token",
        "app_key",
        "method",
        "timestamp",
        "v",
        "sign",
    ] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return jd_error("2", &format!("缺少参数 {k}"));
        }
    }
    if p["app_key"] != inner.shop.app_key || p["v"] != "2.0" {
        inner.stats.bad_requests += 1;
        return jd_error("12", "app_key 或 v 不正确");
    }
    if !china_time_ms(p["timestamp"]).is_some_and(|t| skew_ok(t, 6)) {
        inner.stats.bad_requests += 1;
        return jd_error("8", "时间戳超出允许范围");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return jd_error("14", "签名无效");
    }
    // JD publishes no code for a spent quota: the sandbox answers HTTP 429.
    if let Err(r) = gate(&mut inner, true, || {
        (StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response()
    }) {
        return r;
    }
    if p["access_token"] != inner.shop.access_token {
        inner.stats.token_rejected += 1;
        return jd_error("19", "token已过期或者不存在，请重新授权访问");
    }
    let Ok(b) = serde_json::from_str::<Value>(p["360buy_param_json"]) else {
        inner.stats.bad_requests += 1;
        return jd_error("2", "360buy_param_json 不是 JSON");
    };
    let field = |k: &str| b[k].as_str().unwrap_or("").to_owned();
    let (from, to) = (
        china_time_ms(&field("start_date")),
        china_time_ms(&field("end_date")),
    );
    let page: u64 = field("page").parse().unwrap_or(0);
    let size: u64 = field("page_size").parse().unwrap_or(0);
    let (Some(from), Some(to)) = (from, to) else {
        inner.stats.bad_requests += 1;
        return jd_error("2", "start_date/end_date 格式错误");
    };
    if p["method"] != "jingdong.pop.order.search"
        || field("dateType") != "0"
        || field("order_state").is_empty()
        || field("optional_fields").is_empty()
        || to < from
        || to - from > 31 * 86_400_000
        || page < 1
        || size > 100
    {
        inner.stats.bad_requests += 1;
        return jd_error("2", "参数错误");
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), false, page - 1, size);
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let state = match o.status {
                Status::Paid => "WAIT_SELLER_STOCK_OUT",
                Status::Shipped => "WAIT_GOODS_RECEIVE_CONFIRM",
                Status::Completed => "FINISHED_L",
                Status::Refunded | Status::Closed | Status::Pending => "TRADE_CANCELED",
            };
            json!({
                "orderId": o.order_no, "orderState": state, "orderStartTime": china_time_text(o.created_at),
                "paymentConfirmTime": o.paid_at.map(china_time_text).unwrap_or_default(),
                "modified": china_time_text(o.modified_at), "orderPayment": yuan(o.amount), "pin": o.buyer_id,
                "consigneeInfo": {"fullname": "AAS/ZFJFsandboxciphertext", "mobile": o.phone, "province": "广东"},
                "itemInfoList": o.lines.iter().map(|l| json!({"skuId": "10054887745652", "outerSkuId": l.sku, "skuName": l.title,
                    "jdPrice": yuan(l.price), "itemTotal": l.quantity.to_string()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(
        json!({"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result": {
        "apiResult": {"success": true, "englishErrCode": "", "chineseErrCode": "", "numberCode": 0},
        "orderTotal": total, "orderInfoList": list}}}),
    )
    .into_response()
}

async fn jd_refresh(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let ok = q.get("app_key") == Some(&inner.shop.app_key)
        && q.get("app_secret") == Some(&inner.shop.app_secret)
        && q.get("grant_type").map(String::as_str) == Some("refresh_token")
        && q.get("refresh_token") == Some(&inner.shop.refresh_token);
    if !ok {
        inner.stats.token_rejected += 1;
        return axum::Json(json!({"code": 1003, "msg": "refresh_token 无效"})).into_response();
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"access_token": access, "expires_in": 86_400, "refresh_token": refresh, "scope": "snsapi_base", "time": now_ms()})).into_response()
}

// ---- PDD ----

fn pdd_error(code: i64, msg: &str) -> Response {
    axum::Json(
        json!({"error_response": {"error_code": code, "error_msg": msg, "request_id": "sandbox"}}),
    )
    .into_response()
}

async fn pdd(State(s): State<Shared>, Form(params): Form<Vec<(String, String)>>) -> Response {
    let mut inner = lock(&s);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for k in ["type", "client_id", "timestamp", "sign"] {
        if !p.contains_key(k) {
            inner.stats.bad_requests += 1;
            return pdd_error(10000, &format!("参数错误: {k}"));
        }
    }
    if p["client_id"] != inner.shop.app_key {
        inner.stats.bad_requests += 1;
        return pdd_error(10016, "client_id 不存在");
    }
    let ts: Option<i64> = p["timestamp"].parse().ok();
    if p["timestamp"].len() != 10 || !ts.is_some_and(|t| skew_ok(t * 1000, 10)) {
        inner.stats.bad_requests += 1;
        return pdd_error(10001, "timestamp 超出范围");
    }
    if md5_sorted(&inner.shop.app_secret, &params) != p["sign"] {
        inner.stats.bad_signatures += 1;
        return pdd_error(20004, "签名校验失败");
    }
    let order_call = p["type"] == "pdd.order.number.list.increment.get";
    if let Err(r) = gate(&mut inner, order_call, || {
        pdd_error(52101, "当前接口您调用过于频繁，请稍后再试")
    }) {
        return r;
    }
    if p["type"] == "pdd.pop.auth.token.refresh" {
        if p.get("refresh_token").copied() != Some(inner.shop.refresh_token.as_str()) {
            inner.stats.token_rejected += 1;
            return pdd_error(10019, "refresh_token 无效");
        }
        let (access, refresh) = new_tokens(&mut inner);
        return axum::Json(json!({"pop_auth_token_refresh_response": {"access_token": access, "refresh_token": refresh,
            "expires_at": now_ms() / 1000 + 86_400, "expires_in": 86_400, "owner_id": inner.shop.shop_ref}}))
        .into_response();
    }
    if p.get("access_token").copied() != Some(inner.shop.access_token.as_str()) {
        inner.stats.token_rejected += 1;
        return pdd_error(10019, "access_token已过期");
    }
    let num = |k: &str| p.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(from), Some(to), Some(page), Some(size)) = (
        num("start_updated_at"),
        num("end_updated_at"),
        num("page"),
        num("page_size"),
    ) else {
        inner.stats.bad_requests += 1;
        return pdd_error(10000, "参数错误");
    };
    if !order_call
        || to < from
        || to - from > 1_800
        || page < 1
        || !(1..=100).contains(&size)
        || ["is_lucky_flag", "order_status", "refund_status"]
            .iter()
            .any(|k| num(k).is_none())
    {
        inner.stats.bad_requests += 1;
        return pdd_error(10000, "参数错误");
    }
    let (orders, total) = select(
        &inner.shop,
        from * 1000,
        to * 1000 + 999,
        false,
        page as u64 - 1,
        size as u64,
    );
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let (order_status, refund_status) = match o.status {
                Status::Paid => (1, 1),
                Status::Shipped => (2, 1),
                Status::Completed => (3, 1),
                Status::Refunded => (3, 4),
                Status::Pending | Status::Closed => (1, 1),
            };
            json!({
                "order_sn": o.order_no, "order_status": order_status, "refund_status": refund_status, "confirm_status": 1,
                "group_status": 1, "created_time": china_time_text(o.created_at),
                "confirm_time": o.paid_at.map(china_time_text).unwrap_or_default(),
                "pay_time": o.paid_at.map(china_time_text).unwrap_or_default(),
                "updated_at": china_time_text(o.modified_at),
                "pay_amount": o.amount as f64 / 100.0, "receiver_phone": "~AgAAAAsandbox~", "province": "江苏省",
                "item_list": o.lines.iter().map(|l| json!({"goods_name": l.title, "goods_count": l.quantity,
                    "goods_price": l.price as f64 / 100.0, "outer_id": l.sku})).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({"order_sn_increment_get_response": {"total_count": total, "has_next": false, "order_sn_list": list}})).into_response()
}

// ---- Douyin ----

/// Douyin's envelope. It publishes no numeric codes for an expired token or a spent quota;
/// the sandbox names them in `sub_code`, as the client reads them.
fn douyin_error(code: i64, sub_code: &str, msg: &str) -> Response {
    axum::Json(json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": msg, "log_id": "sandbox"})).into_response()
}

#[allow(clippy::result_large_err)]
fn douyin_check(
    inner: &mut Inner,
    q: &HashMap<String, String>,
    body: &str,
    method: &str,
) -> Result<(), Response> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("app_key") != inner.shop.app_key || get("method") != method || get("v") != "2" {
        inner.stats.bad_requests += 1;
        return Err(douyin_error(
            40001,
            "isv.parameter-invalid",
            "app_key, method or v",
        ));
    }
    let ts = get("timestamp");
    if !ts.parse::<i64>().is_ok_and(|t| skew_ok(t * 1000, 10)) {
        inner.stats.bad_requests += 1;
        return Err(douyin_error(40001, "isv.timestamp-invalid", "timestamp"));
    }
    let secret = inner.shop.app_secret.clone();
    let want = match get("sign_method") {
        "hmac-sha256" => douyin_hmac_sha256(&secret, get("app_key"), method, body, ts),
        _ => douyin_md5(&secret, get("app_key"), method, body, ts),
    };
    if want != get("sign") {
        inner.stats.bad_signatures += 1;
        return Err(douyin_error(40003, "isv.sign-invalid", "签名错误"));
    }
    Ok(())
}

async fn douyin_orders(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = douyin_check(&mut inner, &q, &body, "order.searchList") {
        return r;
    }
    if let Err(r) = gate(&mut inner, true, || {
        douyin_error(50002, "isv.request-limit-exceeded", "请求过于频繁")
    }) {
        return r;
    }
    if q.get("access_token") != Some(&inner.shop.access_token) {
        inner.stats.token_rejected += 1;
        return douyin_error(30002, "isv.access-token-expired", "access_token 已过期");
    }
    let Ok(b) = serde_json::from_str::<Value>(&body) else {
        inner.stats.bad_requests += 1;
        return douyin_error(40001, "isv.parameter-invalid", "param_json");
    };
    let n = |k: &str| b[k].as_i64();
    let (Some(from), Some(to), Some(page), Some(size)) = (
        n("update_time_start"),
        n("update_time_end"),
        n("page"),
        n("size"),
    ) else {
        inner.stats.bad_requests += 1;
        return douyin_error(
            40001,
            "isv.parameter-invalid",
            "update_time_start/end, page, size",
        );
    };
    if to < from || page < 0 || !(1..=100).contains(&size) || b["order_by"] != "update_time" {
        inner.stats.bad_requests += 1;
        return douyin_error(40001, "isv.parameter-invalid", "window, page or size");
    }
    let newest_first = b["order_asc"] != true;
    let (orders, total) = select(
        &inner.shop,
        from * 1000,
        to * 1000 + 999,
        newest_first,
        page as u64,
        size as u64,
    );
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let status = match o.status {
                Status::Pending => 1,
                Status::Paid => 2,
                Status::Shipped => 3,
                Status::Completed => 5,
                Status::Refunded | Status::Closed => 4,
            };
            let last = o.lines.len().saturating_sub(1);
            json!({
                "order_id": o.order_no, "order_status": status, "create_time": o.created_at / 1000,
                "update_time": o.modified_at / 1000, "pay_time": o.paid_at.map(|t| t / 1000).unwrap_or(0),
                "pay_amount": o.amount, "doudian_open_id": o.buyer_id, "mask_post_tel": o.phone, "mask_post_receiver": "张*",
                "encrypt_post_tel": "#sandbox#",
                "sku_order_list": o.lines.iter().enumerate().map(|(i, l)| {
                    let refunded = i == last && o.status == Status::Completed && o.refund_amount > 0;
                    json!({"order_id": format!("{}{i}", o.order_no), "product_name": l.title, "out_sku_id": l.sku,
                           "item_num": l.quantity, "origin_amount": l.price * l.quantity, "pay_amount": l.price * l.quantity,
                           "after_sale_info": {"refund_status": if refunded { 3 } else { 0 }}})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(
        json!({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "sandbox",
        "data": {"total": total, "page": page, "size": size, "shop_order_list": list}}),
    )
    .into_response()
}

async fn douyin_refresh(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = douyin_check(&mut inner, &q, &body, "token.refresh") {
        return r;
    }
    inner.stats.calls += 1;
    let b: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if b["grant_type"] != "refresh_token" || b["refresh_token"] != inner.shop.refresh_token.as_str()
    {
        inner.stats.token_rejected += 1;
        return douyin_error(30001, "isv.refresh-token-invalid", "refresh_token 无效");
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"code": 10000, "msg": "success", "data": {"access_token": access, "expires_in": 604_800,
        "refresh_token": refresh, "shop_id": inner.shop.shop_ref}}))
    .into_response()
}

// ---- Youzan ----

async fn youzan_orders(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(b): axum::Json<Value>,
) -> Response {
    let mut inner = lock(&s);
    if let Err(r) = gate(&mut inner, true, || {
        axum::Json(json!({"code": 4101, "msg": "请求太频繁"})).into_response()
    }) {
        return r;
    }
    if q.get("access_token") != Some(&inner.shop.access_token) {
        inner.stats.token_rejected += 1;
        return axum::Json(
            json!({"gw_err_resp": {"err_code": 4203, "err_msg": "access_token 不存在或已过期"}}),
        )
        .into_response();
    }
    let t = |k: &str| b[k].as_str().and_then(china_time_ms);
    let (Some(from), Some(to)) = (t("start_update"), t("end_update")) else {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502001, "message": "start_update 与 end_update 须成对出现"})).into_response();
    };
    let page = b["page_no"].as_u64().unwrap_or(1);
    let size = b["page_size"].as_u64().unwrap_or(20);
    if to <= from
        || to - from > 92 * 86_400_000
        || !(1..=100).contains(&page)
        || !(1..=100).contains(&size)
    {
        inner.stats.bad_requests += 1;
        return axum::Json(json!({"success": false, "code": 141502002, "message": "参数错误"}))
            .into_response();
    }
    let (orders, total) = select(&inner.shop, from, second_end(to), false, page - 1, size);
    let list: Vec<Value> = orders
        .iter()
        .map(|o| {
            let (status, refund_state) = match o.status {
                Status::Pending => ("WAIT_BUYER_PAY", 0),
                Status::Paid => ("WAIT_SELLER_SEND_GOODS", 0),
                Status::Shipped => ("WAIT_BUYER_CONFIRM_GOODS", 0),
                Status::Completed => ("TRADE_SUCCESS", 0),
                Status::Refunded => ("TRADE_CLOSED", 12),
                Status::Closed => ("TRADE_CLOSED", 0),
            };
            json!({"full_order_info": {
                "order_info": {"tid": o.order_no, "status": status, "created": china_time_text(o.created_at),
                    "update_time": china_time_text(o.modified_at), "pay_time": o.paid_at.map(china_time_text), "refund_state": refund_state},
                "buyer_info": {"yz_open_id": o.buyer_id, "buyer_phone": o.phone},
                "pay_info": {"payment": yuan(o.amount), "total_fee": yuan(o.amount), "post_fee": "0.00"},
                "address_info": {"receiver_name": "王*", "delivery_province": "上海市"},
                "orders": o.lines.iter().map(|l| json!({"title": l.title, "num": l.quantity, "price": yuan(l.price), "outer_sku_id": l.sku})).collect::<Vec<_>>(),
            }})
        })
        .collect();
    axum::Json(
        json!({"success": true, "code": 200, "message": "successful", "trace_id": "sandbox",
        "data": {"total_results": total, "full_order_info_list": list}}),
    )
    .into_response()
}

async fn youzan_token(State(s): State<Shared>, axum::Json(b): axum::Json<Value>) -> Response {
    let mut inner = lock(&s);
    inner.stats.calls += 1;
    let grant = match &b["grant_id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let ok = b["authorize_type"] == "silent"
        && b["client_id"] == inner.shop.app_key.as_str()
        && b["client_secret"] == inner.shop.app_secret.as_str()
        && grant == inner.shop.shop_ref;
    if !ok {
        inner.stats.token_rejected += 1;
        return axum::Json(json!({"success": false, "code": 40001, "message": "client_id、client_secret 或 grant_id 不正确"})).into_response();
    }
    let (access, refresh) = new_tokens(&mut inner);
    axum::Json(json!({"success": true, "code": 200, "data": {"access_token": access, "expires": now_ms() + 7 * 86_400_000,
        "refresh_token": refresh, "authority_id": inner.shop.shop_ref}}))
    .into_response()
}
